/*
 * matmul_bf16_avx512bf16.c — the CB_MATRIX_BF16_PACKED product on
 * AVX512_BF16 (see matmul_bf16.h).
 *
 * The packed layout is vdpbf16ps's operand: the 64 bytes of a block of 16
 * rows at a column pair hold the pair of each of the 16 rows, one per dword
 * lane.  A tile keeps MR tokens x NV blocks of 16 outputs in MR x NV
 * accumulators; per column pair it loads NV weight vectors and, per token,
 * broadcasts the token's bf16 pair (one dword) into NV vdpbf16ps.  Each lane
 * is one output: no horizontal sums, and the results store straight into
 * the rows of y.  Activations are converted 32 at a time by vcvtne2ps2bf16.
 */
#include "matmul_bf16.h"

#ifdef CB_HAVE_X86_KERNELS

#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

#ifndef BF16_MR
#define BF16_MR 6				/* tokens per tile */
#endif
#ifndef BF16_NV
#define BF16_NV 4				/* blocks of 16 outputs per tile */
#endif
#ifndef BF16_KC
#define BF16_KC 384			/* column pairs per k chunk */
#endif

static TARGET void
convert_bf16(const float *x, size_t ldx, size_t n, size_t cols, void *xs, size_t ldxs)
{
	size_t		cols2 = (cols + 1) & ~(size_t) 1;

	for (size_t t = 0; t < n; t++)
	{
		const float *src = x + t * ldx;
		uint16_t   *dst = (uint16_t *) xs + t * ldxs;
		size_t		c = 0;

		for (; c + 32 <= cols; c += 32)
		{
			__m512bh	h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + c + 16), _mm512_loadu_ps(src + c));

			_mm512_storeu_si512(dst + c, (__m512i) h);
		}
		if (c < cols2)
		{
			size_t		r = cols - c;	/* 1..31 floats left, cols2 - c bf16 to write */
			__mmask16	lo = (__mmask16) (r >= 16 ? 0xFFFF : (1u << r) - 1);
			__mmask16	hi = (__mmask16) (r > 16 ? (1u << (r - 16)) - 1 : 0);
			__mmask32	out = (__mmask32) ((1ull << (cols2 - c)) - 1);
			__m512bh	h = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + c + 16),
											   _mm512_maskz_loadu_ps(lo, src + c));

			_mm512_mask_storeu_epi16(dst + c, out, (__m512i) h);
		}
	}
}

static ALWAYS_INLINE TARGET void
tile_bf16(const uint16_t *x, size_t ldx, const uint16_t *w, size_t ldw, size_t pairs,
		  float *y, size_t ldy, const float *bias, int flags, size_t last,
		  const int mr, const int nv)
{
	__m512		c[8][4];
	__mmask16	m = (__mmask16) ((1u << last) - 1);

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
		__m512i		wv[4];

#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
			wv[v] = _mm512_loadu_si512(w + v * ldw + 32 * p);
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++)
		{
			int32_t		pair;
			__m512i		xb;

			memcpy(&pair, x + i * ldx + 2 * p, 4);
			xb = _mm512_set1_epi32(pair);
#pragma GCC unroll 4
			for (int v = 0; v < nv; v++)
				c[i][v] = _mm512_dpbf16_ps(c[i][v], (__m512bh) wv[v], (__m512bh) xb);
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
tile_##MR##x##NV(const uint16_t *x, size_t ldx, const uint16_t *w, size_t ldw, size_t pairs, \
				 float *y, size_t ldy, const float *bias, int flags, size_t last) \
{ \
	tile_bf16(x, ldx, w, ldw, pairs, y, ldy, bias, flags, last, MR, NV); \
}
#define TILE_ROW(MR) TILE(MR, 1) TILE(MR, 2) TILE(MR, 3) TILE(MR, 4)
TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_ROW(6) TILE_ROW(7) TILE_ROW(8)

typedef void (*tile_fn) (const uint16_t *x, size_t ldx, const uint16_t *w, size_t ldw,
						 size_t pairs, float *y, size_t ldy, const float *bias, int flags,
						 size_t last);

#define TILES_ROW(MR) {tile_##MR##x1, tile_##MR##x2, tile_##MR##x3, tile_##MR##x4}
static const tile_fn tiles[8][4] = {
	TILES_ROW(1), TILES_ROW(2), TILES_ROW(3), TILES_ROW(4),
	TILES_ROW(5), TILES_ROW(6), TILES_ROW(7), TILES_ROW(8),
};

static void
tile(int mr, int nv, const void *x, size_t ldx, const uint16_t *w, size_t ldw, size_t pairs,
	 float *y, size_t ldy, const float *bias, int flags, size_t last)
{
	tiles[mr - 1][nv - 1] (x, ldx, w, ldw, pairs, y, ldy, bias, flags, last);
}

const cb_bf16_kernel cb_bf16_avx512bf16 = {
	.name = "avx512-bf16",
	.mr = BF16_MR,
	.nv = BF16_NV,
	.kc = BF16_KC,
	.x_bytes = 2,
	.convert = convert_bf16,
	.tile = tile,
};

#endif							/* CB_HAVE_X86_KERNELS */
