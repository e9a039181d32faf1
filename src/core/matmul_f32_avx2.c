/*
 * matmul_f32_avx2.c — the AVX2 + FMA micro-kernels of the float32 products
 * (see matmul_f32_kernels.h): nt tiles up to 4 x 3, nn tiles up to 4 rows x
 * 2 vectors.  Intrinsics in functions with target attributes: no -m flag
 * needed; the drivers of matmul_f32.c call them only when the CPU has AVX2
 * and FMA (and not AVX-512).
 */
#include "matmul_f32_kernels.h"

#ifdef CB_HAVE_X86_KERNELS

#include <immintrin.h>

static ALWAYS_INLINE TARGET_AVX2 __m256i
mask_256(size_t n)				/* lanes < n all ones (n <= 8) */
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int) n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static ALWAYS_INLINE TARGET_AVX2 float
sum_256(__m256 a)
{
	__m128		s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static ALWAYS_INLINE TARGET_AVX2 void
nt_tile_256(const float *x, size_t ldx, const float *w, size_t ldw, size_t k,
			float *y, size_t ldy, const float *bias, float alpha, int acc,
			const int mr, const int nr)
{
	__m256		c[4][3];
	size_t		kk = 0;

#pragma GCC unroll 4
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 3
		for (int j = 0; j < nr; j++)
			c[i][j] = _mm256_setzero_ps();
	for (; kk + 8 <= k; kk += 8)
	{
		__m256		wv[3];

#pragma GCC unroll 3
		for (int j = 0; j < nr; j++)
			wv[j] = _mm256_loadu_ps(w + j * ldw + kk);
#pragma GCC unroll 4
		for (int i = 0; i < mr; i++)
		{
			__m256		xv = _mm256_loadu_ps(x + i * ldx + kk);

#pragma GCC unroll 3
			for (int j = 0; j < nr; j++)
				c[i][j] = _mm256_fmadd_ps(xv, wv[j], c[i][j]);
		}
	}
	if (kk < k)
	{
		__m256i		m = mask_256(k - kk);
		__m256		wv[3];

#pragma GCC unroll 3
		for (int j = 0; j < nr; j++)
			wv[j] = _mm256_maskload_ps(w + j * ldw + kk, m);
#pragma GCC unroll 4
		for (int i = 0; i < mr; i++)
		{
			__m256		xv = _mm256_maskload_ps(x + i * ldx + kk, m);

#pragma GCC unroll 3
			for (int j = 0; j < nr; j++)
				c[i][j] = _mm256_fmadd_ps(xv, wv[j], c[i][j]);
		}
	}
#pragma GCC unroll 4
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 3
		for (int j = 0; j < nr; j++)
		{
			float		s = sum_256(c[i][j]);
			float	   *yp = y + i * ldy + j;

			if (acc)
				*yp += alpha * s;
			else
				*yp = alpha * s + (bias != NULL ? bias[j] : 0.0f);
		}
}

#define NT256(MR, NR) \
static TARGET_AVX2 void \
nt256_##MR##x##NR(const float *x, size_t ldx, const float *w, size_t ldw, size_t k, \
				  float *y, size_t ldy, const float *bias, float alpha, int acc) \
{ \
	nt_tile_256(x, ldx, w, ldw, k, y, ldy, bias, alpha, acc, MR, NR); \
}
#define NT256_ROW(MR) NT256(MR, 1) NT256(MR, 2) NT256(MR, 3)
NT256_ROW(1)
NT256_ROW(2)
NT256_ROW(3)
NT256_ROW(4)

const nt_tile_fn cb_nt256_tiles[4][3] = {
	{nt256_1x1, nt256_1x2, nt256_1x3},
	{nt256_2x1, nt256_2x2, nt256_2x3},
	{nt256_3x1, nt256_3x2, nt256_3x3},
	{nt256_4x1, nt256_4x2, nt256_4x3},
};

static ALWAYS_INLINE TARGET_AVX2 void
nn_tile_256(const float *p, size_t ldp, const float *v, size_t ldv, size_t k,
			float *y, size_t ldy, size_t cols, const int mr, const int nv)
{
	__m256		c[4][2];
	__m256i		last = mask_256(cols - 8 * (size_t) (nv - 1));

#pragma GCC unroll 4
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
		for (int j = 0; j < nv; j++)
			c[i][j] = _mm256_setzero_ps();
	for (size_t kk = 0; kk < k; kk++)
	{
		__m256		vv[2];

#pragma GCC unroll 2
		for (int j = 0; j < nv; j++)
			vv[j] = j + 1 < nv ? _mm256_loadu_ps(v + kk * ldv + 8 * j)
				: _mm256_maskload_ps(v + kk * ldv + 8 * j, last);
#pragma GCC unroll 4
		for (int i = 0; i < mr; i++)
		{
			__m256		b = _mm256_broadcast_ss(p + i * ldp + kk);

#pragma GCC unroll 2
			for (int j = 0; j < nv; j++)
				c[i][j] = _mm256_fmadd_ps(b, vv[j], c[i][j]);
		}
	}
#pragma GCC unroll 4
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
		for (int j = 0; j < nv; j++)
		{
			if (j + 1 < nv)
				_mm256_storeu_ps(y + i * ldy + 8 * j, c[i][j]);
			else
				_mm256_maskstore_ps(y + i * ldy + 8 * j, last, c[i][j]);
		}
}

#define NN256(MR, NV) \
static TARGET_AVX2 void \
nn256_##MR##x##NV(const float *p, size_t ldp, const float *v, size_t ldv, size_t k, \
				  float *y, size_t ldy, size_t cols) \
{ \
	nn_tile_256(p, ldp, v, ldv, k, y, ldy, cols, MR, NV); \
}
NN256(1, 1) NN256(1, 2)
NN256(2, 1) NN256(2, 2)
NN256(3, 1) NN256(3, 2)
NN256(4, 1) NN256(4, 2)

const nn_tile_fn cb_nn256_tiles[4][2] = {
	{nn256_1x1, nn256_1x2},
	{nn256_2x1, nn256_2x2},
	{nn256_3x1, nn256_3x2},
	{nn256_4x1, nn256_4x2},
};

#endif							/* CB_HAVE_X86_KERNELS */
