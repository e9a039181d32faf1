/*
 * matmul_bf16_avx2.c — the CB_MATRIX_BF16_PACKED product on AVX2 + FMA (see
 * matmul_bf16.h and matmul_bf16_avx512.c, whose method this is on 8 lanes):
 * a block of 16 rows at a column pair is two 8-lane vectors, each widened
 * into its odd and even columns; a tile keeps MR tokens x 16 outputs (NV = 1
 * block: 2 vectors) in registers, within AVX2's 16.
 */
#include "matmul_bf16.h"

#ifdef CB_HAVE_X86_KERNELS

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

#ifndef W256_MR
#define W256_MR 5				/* tokens per tile */
#endif
#ifndef W256_KC
#define W256_KC 384				/* column pairs per k chunk */
#endif

static ALWAYS_INLINE TARGET __m256i
mask8(size_t n)					/* lanes < n all ones (n <= 8) */
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int) n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* cb_bf16_round_bits on 8 lanes */
static ALWAYS_INLINE TARGET __m256i
round8(__m256i u)
{
	__m256i		a = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
	__m256i		nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7F800000));
	__m256i		tiny = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x00800000), a);
	__m256i		odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
	__m256i		r = _mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF)));
	__m256i		q = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));

	r = _mm256_blendv_epi8(r, q, nan);
	r = _mm256_and_si256(r, _mm256_set1_epi32((int) 0xFFFF0000u));
	return _mm256_blendv_epi8(r, _mm256_and_si256(u, _mm256_set1_epi32((int) 0x80000000u)), tiny);
}

static TARGET void
convert_f32(const float *x, size_t ldx, size_t n, size_t cols, void *xs, size_t ldxs)
{
	size_t		cols2 = (cols + 1) & ~(size_t) 1;

	for (size_t t = 0; t < n; t++)
	{
		const float *src = x + t * ldx;
		float	   *dst = (float *) xs + t * ldxs;
		size_t		c = 0;

		for (; c + 8 <= cols; c += 8)
			_mm256_storeu_si256((__m256i *) (dst + c),
								round8(_mm256_loadu_si256((const __m256i *) (src + c))));
		if (c < cols2)
		{
			__m256i		u = _mm256_castps_si256(_mm256_maskload_ps(src + c, mask8(cols - c)));

			_mm256_maskstore_ps(dst + c, mask8(cols2 - c), _mm256_castsi256_ps(round8(u)));
		}
	}
}

static ALWAYS_INLINE TARGET void
tile_w256(const float *x, size_t ldx, const uint16_t *w, size_t pairs,
		  float *y, size_t ldy, const float *bias, int flags, size_t last, const int mr)
{
	__m256		c[6][2];
	__m256i		m0 = mask8(last < 8 ? last : 8),
				m1 = mask8(last > 8 ? last - 8 : 0);
	const __m256i hi = _mm256_set1_epi32((int) 0xFFFF0000u);

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
	{
		if (flags & CB_BF16_FIRST)
			c[i][0] = c[i][1] = _mm256_setzero_ps();
		else
		{
			c[i][0] = _mm256_maskload_ps(y + i * ldy, m0);
			c[i][1] = _mm256_maskload_ps(y + i * ldy + 8, m1);
		}
	}
	for (size_t p = 0; p < pairs; p++)
	{
		__m256i		r0 = _mm256_loadu_si256((const __m256i *) (w + 32 * p)),
					r1 = _mm256_loadu_si256((const __m256i *) (w + 32 * p + 16));
		__m256		wo0 = _mm256_castsi256_ps(_mm256_and_si256(r0, hi)),
					we0 = _mm256_castsi256_ps(_mm256_slli_epi32(r0, 16)),
					wo1 = _mm256_castsi256_ps(_mm256_and_si256(r1, hi)),
					we1 = _mm256_castsi256_ps(_mm256_slli_epi32(r1, 16));

#pragma GCC unroll 8
		for (int i = 0; i < mr; i++)
		{
			__m256		xo = _mm256_broadcast_ss(x + i * ldx + 2 * p + 1);
			__m256		xe = _mm256_broadcast_ss(x + i * ldx + 2 * p);

			c[i][0] = _mm256_fmadd_ps(xe, we0, _mm256_fmadd_ps(xo, wo0, c[i][0]));
			c[i][1] = _mm256_fmadd_ps(xe, we1, _mm256_fmadd_ps(xo, wo1, c[i][1]));
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
	{
		__m256		r0 = c[i][0],
					r1 = c[i][1];

		if ((flags & CB_BF16_LAST) && bias != NULL)
		{
			r0 = _mm256_add_ps(r0, _mm256_maskload_ps(bias, m0));
			r1 = _mm256_add_ps(r1, _mm256_maskload_ps(bias + 8, m1));
		}
		_mm256_maskstore_ps(y + i * ldy, m0, r0);
		_mm256_maskstore_ps(y + i * ldy + 8, m1, r1);
	}
}

#define TILE(MR) \
static TARGET void \
tile_##MR(const float *x, size_t ldx, const uint16_t *w, size_t pairs, \
		  float *y, size_t ldy, const float *bias, int flags, size_t last) \
{ \
	tile_w256(x, ldx, w, pairs, y, ldy, bias, flags, last, MR); \
}
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)

typedef void (*tile_fn) (const float *x, size_t ldx, const uint16_t *w, size_t pairs,
						 float *y, size_t ldy, const float *bias, int flags, size_t last);

static const tile_fn tiles[6] = {tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

static void
tile(int mr, int nv, const void *x, size_t ldx, const uint16_t *w, size_t ldw, size_t pairs,
	 float *y, size_t ldy, const float *bias, int flags, size_t last)
{
	(void) nv;					/* always 1 */
	(void) ldw;
	tiles[mr - 1] (x, ldx, w, pairs, y, ldy, bias, flags, last);
}

const cb_bf16_kernel cb_bf16_avx2 = {
	.name = "avx2",
	.mr = W256_MR,
	.nv = 1,
	.kc = W256_KC,
	.x_bytes = 4,
	.convert = convert_f32,
	.tile = tile,
};

#endif							/* CB_HAVE_X86_KERNELS */
