/*
 * matmul_bf16_avx512.c — the CB_MATRIX_BF16_PACKED product on AVX-512F
 * without AVX512_BF16 (see matmul_bf16.h): the weights are widened to
 * float32 in registers and multiplied by fused multiply-adds, in the order
 * vdpbf16ps uses (the odd column of a pair, then the even one), which gives
 * the same numbers.
 *
 * A weight vector (16 rows x one column pair, 64 bytes) widens into two:
 * the odd columns are its dwords' high halves (a mask), the even ones their
 * low halves shifted left 16 bits.  The activations are converted to
 * float32 holding their bfloat16 values, and broadcast from memory.  A tile
 * keeps MR tokens x NV blocks of 16 outputs in registers: per column pair,
 * NV loads, 2 NV widening operations and 2 MR NV fused multiply-adds.
 */
#include "matmul_bf16.h"

#ifdef CB_HAVE_X86_KERNELS

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

#ifndef W512_MR
#define W512_MR 4				/* tokens per tile */
#endif
#ifndef W512_NV
#define W512_NV 4				/* blocks of 16 outputs per tile */
#endif
#ifndef W512_KC
#define W512_KC 384				/* column pairs per k chunk */
#endif

/* cb_bf16_round_bits on 16 lanes */
static ALWAYS_INLINE TARGET __m512i
round16(__m512i u)
{
	__m512i		a = _mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF));
	__m512i		hi = _mm512_set1_epi32((int) 0xFFFF0000u);
	__mmask16	nan = _mm512_cmpgt_epu32_mask(a, _mm512_set1_epi32(0x7F800000));
	__mmask16	tiny = _mm512_cmplt_epu32_mask(a, _mm512_set1_epi32(0x00800000));
	__m512i		odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
	__m512i		r = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));

	r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
	r = _mm512_and_si512(r, hi);
	return _mm512_mask_and_epi32(r, tiny, u, _mm512_set1_epi32((int) 0x80000000u));
}

static TARGET void
convert_f32(const float *x, size_t ldx, size_t n, size_t cols, void *xs, size_t ldxs)
{
	size_t		cols2 = (cols + 1) & ~(size_t) 1;

	for (size_t t = 0; t < n; t++)
	{
		const float *src = x + t * ldx;
		float	   *dst = (float *) xs + t * ldxs;

		for (size_t c = 0; c < cols2; c += 16)
		{
			size_t		r = cols - c < 16 ? cols - c : 16;
			__mmask16	in = (__mmask16) ((1u << r) - 1);
			__mmask16	out = (__mmask16) ((1u << (cols2 - c < 16 ? cols2 - c : 16)) - 1);
			__m512i		u = _mm512_castps_si512(_mm512_maskz_loadu_ps(in, src + c));

			_mm512_mask_storeu_ps(dst + c, out, _mm512_castsi512_ps(round16(u)));
		}
	}
}

static ALWAYS_INLINE TARGET void
tile_w512(const float *x, size_t ldx, const uint16_t *w, size_t ldw, size_t pairs,
		  float *y, size_t ldy, const float *bias, int flags, size_t last,
		  const int mr, const int nv)
{
	__m512		c[8][4];
	__mmask16	m = (__mmask16) ((1u << last) - 1);
	const __m512i hi = _mm512_set1_epi32((int) 0xFFFF0000u);

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
		{
			if (flags & CB_BF16_FIRST)
				c[i][v] = _mm512_setzero_ps();
			else if (v + 1 < nv)
				c[i][v] = _mm512_loadu_ps(y + i * ldy + 16 * v);
			else
				c[i][v] = _mm512_maskz_loadu_ps(m, y + i * ldy + 16 * v);
		}
	for (size_t p = 0; p < pairs; p++)
	{
		__m512		wo[4],
					we[4];

#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
		{
			__m512i		raw = _mm512_loadu_si512(w + v * ldw + 32 * p);

			wo[v] = _mm512_castsi512_ps(_mm512_and_si512(raw, hi));
			we[v] = _mm512_castsi512_ps(_mm512_slli_epi32(raw, 16));
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++)
		{
			__m512		xo = _mm512_set1_ps(x[i * ldx + 2 * p + 1]);
			__m512		xe = _mm512_set1_ps(x[i * ldx + 2 * p]);

#pragma GCC unroll 4
			for (int v = 0; v < nv; v++)
				c[i][v] = _mm512_fmadd_ps(xe, we[v], _mm512_fmadd_ps(xo, wo[v], c[i][v]));
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
		{
			__m512		r = c[i][v];

			if ((flags & CB_BF16_LAST) && bias != NULL)
				r = _mm512_add_ps(r, v + 1 < nv ? _mm512_loadu_ps(bias + 16 * v)
								  : _mm512_maskz_loadu_ps(m, bias + 16 * v));
			if (v + 1 < nv)
				_mm512_storeu_ps(y + i * ldy + 16 * v, r);
			else
				_mm512_mask_storeu_ps(y + i * ldy + 16 * v, m, r);
		}
}

#define TILE(MR, NV) \
static TARGET void \
tile_##MR##x##NV(const float *x, size_t ldx, const uint16_t *w, size_t ldw, size_t pairs, \
				 float *y, size_t ldy, const float *bias, int flags, size_t last) \
{ \
	tile_w512(x, ldx, w, ldw, pairs, y, ldy, bias, flags, last, MR, NV); \
}
#define TILE_ROW(MR) TILE(MR, 1) TILE(MR, 2) TILE(MR, 3) TILE(MR, 4)
TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_ROW(6)

typedef void (*tile_fn) (const float *x, size_t ldx, const uint16_t *w, size_t ldw,
						 size_t pairs, float *y, size_t ldy, const float *bias, int flags,
						 size_t last);

#define TILES_ROW(MR) {tile_##MR##x1, tile_##MR##x2, tile_##MR##x3, tile_##MR##x4}
static const tile_fn tiles[6][4] = {
	TILES_ROW(1), TILES_ROW(2), TILES_ROW(3), TILES_ROW(4), TILES_ROW(5), TILES_ROW(6),
};

static void
tile(int mr, int nv, const void *x, size_t ldx, const uint16_t *w, size_t ldw, size_t pairs,
	 float *y, size_t ldy, const float *bias, int flags, size_t last)
{
	tiles[mr - 1][nv - 1] (x, ldx, w, ldw, pairs, y, ldy, bias, flags, last);
}

const cb_bf16_kernel cb_bf16_avx512 = {
	.name = "avx512",
	.mr = W512_MR,
	.nv = W512_NV,
	.kc = W512_KC,
	.x_bytes = 4,
	.convert = convert_f32,
	.tile = tile,
};

#endif							/* CB_HAVE_X86_KERNELS */
