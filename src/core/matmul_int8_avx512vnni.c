/*
 * matmul_int8_avx512vnni.c — the int8 product's kernel on AVX512_VNNI
 * (see matmul_int8.h, matrix.h).
 *
 * An outer-product micro-kernel over the packed weights: a 16-row block of
 * W holds, per 4 columns, one 64-byte vector (16 outputs x 4 k).  A tile
 * computes MR rows of activations by NV blocks (16 NV outputs): per step of
 * 4 k it loads NV weight vectors, broadcasts each row's 4 activation bytes
 * (q + 128, unsigned) and accumulates MR x NV vpdpbusd in int32 over the
 * whole shared dimension; no horizontal sums.  Then
 *     y = (float) (acc - 128 * sums[j]) * (sx[i] * scale[j]) + bias[j]
 * 16 outputs at a time, in exactly the portable path's float operations
 * (no fused multiply-add).  The int32 sums wrap around on overflow, so the
 * compensated result is exact whenever the true sum fits in int32
 * (127 * 127 * cols4 < 2^31: cols4 < 133 144).
 */
#include "matmul_int8.h"
#include "cpu_features.h"

#ifdef CB_HAVE_X86_KERNELS

#include <immintrin.h>
#include <string.h>

#define TARGET_VNNI512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* 6 x 4 tiles (24 accumulators) measured best here (Zen 5), 8 x 3 and
 * 6 x 3 within a few %, 12 x 2 ~10 % slower (more broadcasts per vpdpbusd) */
#ifndef I8Z_MR
#define I8Z_MR 6				/* rows of activations per tile */
#endif
#ifndef I8Z_NV
#define I8Z_NV 4				/* 16-row blocks of W per tile */
#endif

/*
 * acc += the dot products of the unsigned bytes of a with the signed bytes
 * of b, 4 by 4.  Inline assembly: GCC 12 compiles _mm512_dpbusd_epi32 with a
 * register copy (and spills) per accumulator and step.
 */
#define DPBUSD(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

static ALWAYS_INLINE TARGET_VNNI512 __m512i
bcast4(const uint8_t *p)
{
	int32_t		v;

	memcpy(&v, p, 4);
	return _mm512_set1_epi32(v);
}

static ALWAYS_INLINE TARGET_VNNI512 void
tile_512(const cb_int8_job *jb, size_t i0, size_t b, const int mr, const int nv)
{
	const cb_matrix *w = jb->w;
	size_t		ldq = jb->cols4,
				bs = jb->cols4 * CB_MATRIX_BLOCK,	/* bytes per block of W */
				steps = jb->cols4 / 4;
	const int8_t *wp = (const int8_t *) w->data + b * bs;
	const uint8_t *xp = jb->qx + i0 * ldq;
	__m512i		acc[I8Z_MR][I8Z_NV];

#pragma GCC unroll 16
	for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
			acc[r][v] = _mm512_setzero_si512();
	for (size_t s = 0; s < steps; s++)
	{
		__m512i		wv[I8Z_NV];

#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
			wv[v] = _mm512_load_si512((const void *) (wp + v * bs + s * 64));
#pragma GCC unroll 16
		for (int r = 0; r < mr; r++)
		{
			__m512i		a = bcast4(xp + r * ldq + s * 4);

#pragma GCC unroll 4
			for (int v = 0; v < nv; v++)
				DPBUSD(acc[r][v], a, wv[v]);
		}
	}

#pragma GCC unroll 4
	for (int v = 0; v < nv; v++)
	{
		size_t		j0 = (b + (size_t) v) * CB_MATRIX_BLOCK;
		size_t		valid = w->rows - j0 < CB_MATRIX_BLOCK ? w->rows - j0 : CB_MATRIX_BLOCK;
		__mmask16	m = (__mmask16) ((1u << valid) - 1);
		__m512		scale = _mm512_loadu_ps(w->scale + j0);
		__m512i		comp = _mm512_slli_epi32(_mm512_loadu_si512((const void *) (w->sums + j0)), 7);
		__m512		bias = jb->bias != NULL ? _mm512_maskz_loadu_ps(m, jb->bias + j0) : _mm512_setzero_ps();

#pragma GCC unroll 16
		for (int r = 0; r < mr; r++)
		{
			__m512		s = _mm512_mul_ps(_mm512_set1_ps(jb->sx[i0 + (size_t) r]), scale);
			__m512		f = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][v], comp));
			/* the rounded product, then the sum: never contracted to an FMA */
			__m512		p = _mm512_mul_round_ps(f, s, _MM_FROUND_CUR_DIRECTION);
			__m512		y = _mm512_add_ps(p, bias);

			_mm512_mask_storeu_ps(jb->y + (i0 + (size_t) r) * jb->ldy + j0, m, y);
		}
	}
}

typedef void (*tile_fn) (const cb_int8_job *jb, size_t i0, size_t b);

#define TILE(MR, NV) \
static TARGET_VNNI512 void \
tile_##MR##x##NV(const cb_int8_job *jb, size_t i0, size_t b) \
{ \
	tile_512(jb, i0, b, MR, NV); \
}

#if I8Z_NV == 2
#define TILE_ROW(MR) TILE(MR, 1) TILE(MR, 2)
#define TILE_FNS(MR) {tile_##MR##x1, tile_##MR##x2}
#elif I8Z_NV == 3
#define TILE_ROW(MR) TILE(MR, 1) TILE(MR, 2) TILE(MR, 3)
#define TILE_FNS(MR) {tile_##MR##x1, tile_##MR##x2, tile_##MR##x3}
#elif I8Z_NV == 4
#define TILE_ROW(MR) TILE(MR, 1) TILE(MR, 2) TILE(MR, 3) TILE(MR, 4)
#define TILE_FNS(MR) {tile_##MR##x1, tile_##MR##x2, tile_##MR##x3, tile_##MR##x4}
#else
#error "I8Z_NV: 2, 3 or 4"
#endif

TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_ROW(6)
#if I8Z_MR >= 8
TILE_ROW(7) TILE_ROW(8)
#endif
#if I8Z_MR >= 12
TILE_ROW(9) TILE_ROW(10) TILE_ROW(11) TILE_ROW(12)
#endif

static const tile_fn tiles[I8Z_MR][I8Z_NV] = {
	TILE_FNS(1), TILE_FNS(2), TILE_FNS(3), TILE_FNS(4), TILE_FNS(5), TILE_FNS(6),
#if I8Z_MR >= 8
	TILE_FNS(7), TILE_FNS(8),
#endif
#if I8Z_MR >= 12
	TILE_FNS(9), TILE_FNS(10), TILE_FNS(11), TILE_FNS(12),
#endif
};

#ifndef I8Z_RB
#define I8Z_RB 96				/* rows of activations per pass over the blocks (cache) */
#endif

void
cb_int8_blocks_avx512vnni(const cb_int8_job *jb, size_t b0, size_t b1)
{
	for (size_t i0 = 0; i0 < jb->n; i0 += I8Z_RB)
	{
		size_t		i1 = jb->n - i0 < I8Z_RB ? jb->n : i0 + I8Z_RB;

		for (size_t b = b0; b < b1; b += I8Z_NV)
		{
			size_t		nv = b1 - b < I8Z_NV ? b1 - b : I8Z_NV;

			for (size_t i = i0; i < i1; i += I8Z_MR)
			{
				size_t		mr = i1 - i < I8Z_MR ? i1 - i : I8Z_MR;

				tiles[mr - 1][nv - 1] (jb, i, b);
			}
		}
	}
}

#else

typedef int cb_int8_avx512vnni_not_built;	/* ISO C: a translation unit is never empty */

#endif							/* CB_HAVE_X86_KERNELS */
