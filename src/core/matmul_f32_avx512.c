/*
 * matmul_f32_avx512.c — the AVX-512 micro-kernels of the float32 products
 * (see matmul_f32_kernels.h): nt tiles up to 4 x 6, nn tiles up to 4 rows x
 * 4 vectors, the packed-X tiles and the transposes that pack X for them.
 * Intrinsics in functions with target attributes: no -m flag needed; the
 * drivers of matmul_f32.c call them only when the CPU has AVX-512.
 */
#include "matmul_f32_kernels.h"

#ifdef CB_HAVE_X86_KERNELS

#include <immintrin.h>

/* the four sums of a, b, c, d */
static ALWAYS_INLINE TARGET_AVX512 __m128
sum4_512(__m512 a, __m512 b, __m512 c, __m512 d)
{
	__m256		a8 = _mm256_add_ps(_mm512_castps512_ps256(a),
								   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
	__m256		b8 = _mm256_add_ps(_mm512_castps512_ps256(b),
								   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b), 1)));
	__m256		c8 = _mm256_add_ps(_mm512_castps512_ps256(c),
								   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c), 1)));
	__m256		d8 = _mm256_add_ps(_mm512_castps512_ps256(d),
								   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(d), 1)));
	__m256		abcd = _mm256_hadd_ps(_mm256_hadd_ps(a8, b8), _mm256_hadd_ps(c8, d8));

	return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

static ALWAYS_INLINE TARGET_AVX512 void
nt_tile_512(const float *x, size_t ldx, const float *w, size_t ldw, size_t k,
			float *y, size_t ldy, const float *bias, float alpha, int acc,
			const int mr, const int nr)
{
	__m512		c[4][6];
	size_t		kk = 0;

#pragma GCC unroll 4
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 6
		for (int j = 0; j < nr; j++)
			c[i][j] = _mm512_setzero_ps();
	for (; kk + 16 <= k; kk += 16)
	{
		__m512		wv[6];

#pragma GCC unroll 6
		for (int j = 0; j < nr; j++)
			wv[j] = _mm512_loadu_ps(w + j * ldw + kk);
#pragma GCC unroll 4
		for (int i = 0; i < mr; i++)
		{
			__m512		xv = _mm512_loadu_ps(x + i * ldx + kk);

#pragma GCC unroll 6
			for (int j = 0; j < nr; j++)
				c[i][j] = _mm512_fmadd_ps(xv, wv[j], c[i][j]);
		}
	}
	if (kk < k)
	{
		__mmask16	m = (__mmask16) ((1u << (k - kk)) - 1);
		__m512		wv[6];

#pragma GCC unroll 6
		for (int j = 0; j < nr; j++)
			wv[j] = _mm512_maskz_loadu_ps(m, w + j * ldw + kk);
#pragma GCC unroll 4
		for (int i = 0; i < mr; i++)
		{
			__m512		xv = _mm512_maskz_loadu_ps(m, x + i * ldx + kk);

#pragma GCC unroll 6
			for (int j = 0; j < nr; j++)
				c[i][j] = _mm512_fmadd_ps(xv, wv[j], c[i][j]);
		}
	}
#pragma GCC unroll 4
	for (int i = 0; i < mr; i++)
	{
		float		s[8];
		float	   *yr = y + i * ldy;
		int			j = 0;

		if (nr >= 4)
		{
			_mm_storeu_ps(s, sum4_512(c[i][0], c[i][1], c[i][2], c[i][3]));
			j = 4;
		}
#pragma GCC unroll 6
		for (; j < nr; j++)
			s[j] = _mm512_reduce_add_ps(c[i][j]);
#pragma GCC unroll 6
		for (j = 0; j < nr; j++)
		{
			if (acc)
				yr[j] += alpha * s[j];
			else
				yr[j] = alpha * s[j] + (bias != NULL ? bias[j] : 0.0f);
		}
	}
}

#define NT512(MR, NR) \
static TARGET_AVX512 void \
nt512_##MR##x##NR(const float *x, size_t ldx, const float *w, size_t ldw, size_t k, \
				  float *y, size_t ldy, const float *bias, float alpha, int acc) \
{ \
	nt_tile_512(x, ldx, w, ldw, k, y, ldy, bias, alpha, acc, MR, NR); \
}
#define NT512_ROW(MR) NT512(MR, 1) NT512(MR, 2) NT512(MR, 3) NT512(MR, 4) NT512(MR, 5) NT512(MR, 6)
NT512_ROW(1)
NT512_ROW(2)
NT512_ROW(3)
NT512_ROW(4)

const nt_tile_fn cb_nt512_tiles[4][6] = {
	{nt512_1x1, nt512_1x2, nt512_1x3, nt512_1x4, nt512_1x5, nt512_1x6},
	{nt512_2x1, nt512_2x2, nt512_2x3, nt512_2x4, nt512_2x5, nt512_2x6},
	{nt512_3x1, nt512_3x2, nt512_3x3, nt512_3x4, nt512_3x5, nt512_3x6},
	{nt512_4x1, nt512_4x2, nt512_4x3, nt512_4x4, nt512_4x5, nt512_4x6},
};

static ALWAYS_INLINE TARGET_AVX512 void
nn_tile_512(const float *p, size_t ldp, const float *v, size_t ldv, size_t k,
			float *y, size_t ldy, size_t cols, const int mr, const int nv)
{
	__m512		c[4][4];
	size_t		rest = cols - 16 * (size_t) (nv - 1);
	__mmask16	last = rest >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << rest) - 1);

#pragma GCC unroll 4
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
		for (int j = 0; j < nv; j++)
			c[i][j] = _mm512_setzero_ps();
	for (size_t kk = 0; kk < k; kk++)
	{
		__m512		vv[4];

#pragma GCC unroll 4
		for (int j = 0; j < nv; j++)
			vv[j] = j + 1 < nv ? _mm512_loadu_ps(v + kk * ldv + 16 * j)
				: _mm512_maskz_loadu_ps(last, v + kk * ldv + 16 * j);
#pragma GCC unroll 4
		for (int i = 0; i < mr; i++)
		{
			__m512		b = _mm512_set1_ps(p[i * ldp + kk]);

#pragma GCC unroll 4
			for (int j = 0; j < nv; j++)
				c[i][j] = _mm512_fmadd_ps(b, vv[j], c[i][j]);
		}
	}
#pragma GCC unroll 4
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
		for (int j = 0; j < nv; j++)
		{
			if (j + 1 < nv)
				_mm512_storeu_ps(y + i * ldy + 16 * j, c[i][j]);
			else
				_mm512_mask_storeu_ps(y + i * ldy + 16 * j, last, c[i][j]);
		}
}

#define NN512(MR, NV) \
static TARGET_AVX512 void \
nn512_##MR##x##NV(const float *p, size_t ldp, const float *v, size_t ldv, size_t k, \
				  float *y, size_t ldy, size_t cols) \
{ \
	nn_tile_512(p, ldp, v, ldv, k, y, ldy, cols, MR, NV); \
}
#define NN512_ROW(MR) NN512(MR, 1) NN512(MR, 2) NN512(MR, 3) NN512(MR, 4)
NN512_ROW(1)
NN512_ROW(2)
NN512_ROW(3)
NN512_ROW(4)

const nn_tile_fn cb_nn512_tiles[4][4] = {
	{nn512_1x1, nn512_1x2, nn512_1x3, nn512_1x4},
	{nn512_2x1, nn512_2x2, nn512_2x3, nn512_2x4},
	{nn512_3x1, nn512_3x2, nn512_3x3, nn512_3x4},
	{nn512_4x1, nn512_4x2, nn512_4x3, nn512_4x4},
};

/* ---- the packed-X kernel (matmul_f32_kernels.h) ---- */

static ALWAYS_INLINE TARGET_AVX512 void
op_tile_512(const float *xt, const float *w, size_t ldw, size_t k, float *y, size_t ldy,
			const float *bias, float alpha, int acc, size_t ntok, const int mr, const int nv)
{
	__m512		c[OP_MR][2];
	float		buf[OP_MR][OP_TB] __attribute__((aligned(64)));

#pragma GCC unroll 12
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			c[i][v] = _mm512_setzero_ps();
	for (size_t kk = 0; kk < k; kk++)
	{
		__m512		xv[2];

#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			xv[v] = _mm512_load_ps(xt + kk * OP_TB + 16 * v);
#pragma GCC unroll 12
		for (int i = 0; i < mr; i++)
		{
			__m512		b = _mm512_set1_ps(w[i * ldw + kk]);

#pragma GCC unroll 2
			for (int v = 0; v < nv; v++)
				c[i][v] = _mm512_fmadd_ps(b, xv[v], c[i][v]);
		}
	}
#pragma GCC unroll 12
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			_mm512_store_ps(&buf[i][16 * v], c[i][v]);
	for (size_t t = 0; t < ntok; t++)
	{
		float	   *yr = y + t * ldy;

#pragma GCC unroll 12
		for (int i = 0; i < mr; i++)
		{
			if (acc)
				yr[i] += alpha * buf[i][t];
			else
				yr[i] = alpha * buf[i][t] + (bias != NULL ? bias[i] : 0.0f);
		}
	}
}

#define OP512(MR, NV) \
static TARGET_AVX512 void \
op512_##MR##x##NV(const float *xt, const float *w, size_t ldw, size_t k, float *y, size_t ldy, \
				  const float *bias, float alpha, int acc, size_t ntok) \
{ \
	op_tile_512(xt, w, ldw, k, y, ldy, bias, alpha, acc, ntok, MR, NV); \
}
#define OP512_ROW(MR) OP512(MR, 1) OP512(MR, 2)
OP512_ROW(1) OP512_ROW(2) OP512_ROW(3) OP512_ROW(4) OP512_ROW(5) OP512_ROW(6)
OP512_ROW(7) OP512_ROW(8) OP512_ROW(9) OP512_ROW(10) OP512_ROW(11) OP512_ROW(12)

const op_tile_fn cb_op512_tiles[OP_MR][2] = {
	{op512_1x1, op512_1x2}, {op512_2x1, op512_2x2}, {op512_3x1, op512_3x2},
	{op512_4x1, op512_4x2}, {op512_5x1, op512_5x2}, {op512_6x1, op512_6x2},
	{op512_7x1, op512_7x2}, {op512_8x1, op512_8x2}, {op512_9x1, op512_9x2},
	{op512_10x1, op512_10x2}, {op512_11x1, op512_11x2}, {op512_12x1, op512_12x2},
};

/* Transpose the 16 x 16 floats of r[0..16) in place. */
static ALWAYS_INLINE TARGET_AVX512 void
transpose16_512(__m512 r[16])
{
	__m512		t[16];

#pragma GCC unroll 8
	for (int i = 0; i < 8; i++)
	{
		t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
	}
	/* r[4i + c], 128-bit lane L: column 4L + c of rows 4i .. 4i+3 */
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++)
	{
		__m512d		a = _mm512_castps_pd(t[4 * i]),
					b = _mm512_castps_pd(t[4 * i + 1]),
					c = _mm512_castps_pd(t[4 * i + 2]),
					d = _mm512_castps_pd(t[4 * i + 3]);

		r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
		r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
		r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
		r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
	}
#pragma GCC unroll 4
	for (int c = 0; c < 4; c++)
	{
		__m512		a = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88),
					b = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD),
					d = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88),
					e = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);

		t[c] = _mm512_shuffle_f32x4(a, d, 0x88);
		t[8 + c] = _mm512_shuffle_f32x4(a, d, 0xDD);
		t[4 + c] = _mm512_shuffle_f32x4(b, e, 0x88);
		t[12 + c] = _mm512_shuffle_f32x4(b, e, 0xDD);
	}
#pragma GCC unroll 16
	for (int i = 0; i < 16; i++)
		r[i] = t[i];
}

/* xt[b][k][32] = x[32 b + t][k] for the ntok rows of x (zeros past them). */
TARGET_AVX512 void
cb_op_pack_512(const float *x, size_t ldx, size_t ntok, size_t in, float *xt)
{
	size_t		blocks = (ntok + OP_TB - 1) / OP_TB;

	for (size_t b = 0; b < blocks; b++)
		for (size_t half = 0; half < 2; half++)
		{
			size_t		t0 = b * OP_TB + 16 * half;
			size_t		rows = t0 < ntok ? (ntok - t0 < 16 ? ntok - t0 : 16) : 0;
			float	   *dst = xt + b * in * OP_TB + 16 * half;

			if (rows == 0)
				continue;		/* a one-vector block: its second half is never read */
			for (size_t k0 = 0; k0 < in; k0 += 16)
			{
				size_t		kk = in - k0 < 16 ? in - k0 : 16;
				__mmask16	m = (__mmask16) ((1u << kk) - 1);
				__m512		r[16];

#pragma GCC unroll 16
				for (size_t i = 0; i < 16; i++)
					r[i] = i < rows ? _mm512_maskz_loadu_ps(m, x + (t0 + i) * ldx + k0)
						: _mm512_setzero_ps();
				transpose16_512(r);
				for (size_t c = 0; c < kk; c++)
					_mm512_store_ps(dst + (k0 + c) * OP_TB, r[c]);
			}
		}
}

#endif							/* CB_HAVE_X86_KERNELS */
