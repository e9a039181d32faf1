/*
 * matmul_int8_avxvnni.c — the int8 product's kernel on AVX-VNNI: 256-bit
 * VEX vpdpbusd, the AVX2 CPUs' VNNI (see matmul_int8.h, matrix.h).
 *
 * The same outer-product kernel as matmul_int8_avx512vnni.c in 16 ymm
 * registers: a 16-row block of W is two vectors per 4 columns (outputs 0-7
 * and 8-15, 4 k each); a tile computes MR rows of activations by one block
 * (2 MR accumulators), broadcasting each row's 4 activation bytes (q + 128)
 * per step.  The scaling is the portable path's float operations, 8 outputs
 * at a time, the product kept from being fused with the bias addition.
 */
#include "matmul_int8.h"
#include "cpu_features.h"

#ifdef CB_HAVE_X86_KERNELS

#include <immintrin.h>
#include <string.h>

#define TARGET_AVXVNNI __attribute__((target("avx2,fma,avxvnni")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

#define I8Y_MR 6				/* rows of activations per tile */

/*
 * acc += the dot products of the unsigned bytes of a with the signed bytes
 * of b, 4 by 4, VEX-encoded (an assembler picks the EVEX form, AVX512_VNNI,
 * unless told).  Inline assembly: GCC 12 compiles _mm256_dpbusd_avx_epi32
 * with a register copy (and spills) per accumulator and step.
 */
#define DPBUSD(acc, a, b) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b))

static ALWAYS_INLINE TARGET_AVXVNNI __m256i
bcast4(const uint8_t *p)
{
	int32_t		v;

	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

/* lanes < n all ones (0 <= n <= 8) */
static ALWAYS_INLINE TARGET_AVXVNNI __m256i
lanes_below(size_t n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int) n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static ALWAYS_INLINE TARGET_AVXVNNI void
tile_256(const cb_int8_job *jb, size_t i0, size_t b, const int mr)
{
	const cb_matrix *w = jb->w;
	size_t		ldq = jb->cols4,
				steps = jb->cols4 / 4;
	const int8_t *wp = (const int8_t *) w->data + b * jb->cols4 * CB_MATRIX_BLOCK;
	const uint8_t *xp = jb->qx + i0 * ldq;
	__m256i		acc[I8Y_MR][2];

#pragma GCC unroll 8
	for (int r = 0; r < mr; r++)
	{
		acc[r][0] = _mm256_setzero_si256();
		acc[r][1] = _mm256_setzero_si256();
	}
	for (size_t s = 0; s < steps; s++)
	{
		__m256i		w0 = _mm256_load_si256((const void *) (wp + s * 64)),
					w1 = _mm256_load_si256((const void *) (wp + s * 64 + 32));

#pragma GCC unroll 8
		for (int r = 0; r < mr; r++)
		{
			__m256i		a = bcast4(xp + r * ldq + s * 4);

			DPBUSD(acc[r][0], a, w0);
			DPBUSD(acc[r][1], a, w1);
		}
	}

	/* (unrolled: acc must stay in registers, never indexed at run time) */
#pragma GCC unroll 2
	for (int h = 0; h < 2; h++)
	{
		size_t		j0 = b * CB_MATRIX_BLOCK + 8 * (size_t) h;

		if (j0 < w->rows)
		{
			size_t		valid = w->rows - j0 < 8 ? w->rows - j0 : 8;
			__m256i		m = lanes_below(valid);
			__m256		scale = _mm256_loadu_ps(w->scale + j0);
			__m256i		comp = _mm256_slli_epi32(_mm256_loadu_si256((const void *) (w->sums + j0)), 7);
			__m256		bias = jb->bias != NULL ? _mm256_maskload_ps(jb->bias + j0, m) : _mm256_setzero_ps();

#pragma GCC unroll 8
			for (int r = 0; r < mr; r++)
			{
				__m256		s = _mm256_mul_ps(_mm256_set1_ps(jb->sx[i0 + (size_t) r]), scale);
				__m256		p = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][h], comp)), s);
				float	   *yr = jb->y + (i0 + (size_t) r) * jb->ldy + j0;

				__asm__("" : "+x"(p));	/* the rounded product: no FMA with the sum */
				if (valid == 8)
					_mm256_storeu_ps(yr, _mm256_add_ps(p, bias));
				else
					_mm256_maskstore_ps(yr, m, _mm256_add_ps(p, bias));
			}
		}
	}
}

typedef void (*tile_fn) (const cb_int8_job *jb, size_t i0, size_t b);

#define TILE(MR) \
static TARGET_AVXVNNI void \
tile_##MR(const cb_int8_job *jb, size_t i0, size_t b) \
{ \
	tile_256(jb, i0, b, MR); \
}
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)

static const tile_fn tiles[I8Y_MR] = {tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

#ifndef I8Y_RB
#define I8Y_RB 96				/* rows of activations per pass over the blocks (cache) */
#endif

void
cb_int8_blocks_avxvnni(const cb_int8_job *jb, size_t b0, size_t b1)
{
	for (size_t i0 = 0; i0 < jb->n; i0 += I8Y_RB)
	{
		size_t		i1 = jb->n - i0 < I8Y_RB ? jb->n : i0 + I8Y_RB;

		for (size_t b = b0; b < b1; b++)
			for (size_t i = i0; i < i1; i += I8Y_MR)
			{
				size_t		mr = i1 - i < I8Y_MR ? i1 - i : I8Y_MR;

				tiles[mr - 1] (jb, i, b);
			}
	}
}

#else

typedef int cb_int8_avxvnni_not_built;	/* ISO C: a translation unit is never empty */

#endif							/* CB_HAVE_X86_KERNELS */
