/*
 * matmul_widen.c — products with CB_MATRIX_F16 / CB_MATRIX_BF16 weights
 * (kept as the file stores them): blocks of rows widened exactly to float32
 * into scratch, then the float32 product on them (matrix.h: bit-identical to
 * the widened matrix's product).
 *
 * The threads share the blocks (cb_kernel_parallel_for); each widens its
 * block into its own part of the scratch, with vector code (F16C or AVX-512
 * vcvtph2ps; bfloat16 is a shift), and runs cb_kernel_matmul_nt on it, alone
 * on its thread, with its own packing scratch.
 *
 * Bit-identity: cb_kernel_matmul_nt sums each output in an order that
 * depends on the output's place in its tiles of 6 (dot-product kernel) or
 * 12 (packed kernel) rows of W, counted from the first row it is given, and
 * on the ragged tiles at the end.  Blocks of a multiple of 12 rows, the last
 * one ending at the matrix's end, keep both as the whole matrix has them.
 * OpenBLAS's sums depend on the shape of the call (its kernels for small
 * and ragged products differ): on the cblas path (CAMEMBERT_KERNELS=blas,
 * or a CPU without AVX2, arm64 among them) blocks of 384 rows give results
 * equal to float32's up to float rounding, not bit for bit.  Widening the
 * whole matrix for one sgemm would make them identical, at the price of
 * rows x cols floats of scratch per call (98 MB for camembert-base's LM
 * decoder): the scratch stays bounded instead.
 */
#include "matrix_kernels.h"
#include "cpu_features.h"
#include "kernels.h"

#include <stdbool.h>
#include <string.h>

#ifdef CB_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/*
 * Rows of W per block.  From 13 rows of X up, cb_kernel_matmul_nt packs X
 * on every call: the blocks are large (up to 384 rows, fewer when threads
 * share them: two per thread), as every block costs a packing of X.  Below,
 * it reads X in place: blocks of 12 rows stay in L1 (768 columns) or L2
 * while the product reads them.
 *
 * Measured on Zen 5 (one thread, 768x768, 3072x768, 768x3072): 1.02-1.07x
 * the float32 product's time at n = 2048, 1.10-1.18x at n = 64, 1.2-1.8x at
 * n = 1..16 (with the weights in L3; from memory, half the bytes help).
 * The cost is the widening pass (store-bound: ~0.5 ns per 16 values into
 * L2, 1 ns beyond) and one packing of X per block; avoiding both needs a
 * float32 product on X packed once (kernels.c).
 */
#ifndef WIDEN_SMALL_ROWS
#define WIDEN_SMALL_ROWS 12
#endif
#ifndef WIDEN_LARGE_ROWS
#define WIDEN_LARGE_ROWS 384
#endif
#define WIDEN_SMALL_N 13		/* kernels.c's MM_PACK_MIN_ROWS */

#if WIDEN_SMALL_ROWS % 12 != 0 || WIDEN_LARGE_ROWS % 12 != 0
#error "blocks of rows must be multiples of 12 (see the top of the file)"
#endif

/* true on the cblas path of cb_kernel_matmul_nt */
static bool
on_blas(void)
{
	return strcmp(cb_kernel_isa(), "blas") == 0;
}

/* Rows per block for n rows of X on `threads` threads: a multiple of 12 (or
 * all the rows), never fewer for a larger n (the scratch sized for n serves
 * smaller n). */
static size_t
block_rows(size_t rows, size_t n, int threads)
{
	size_t		share,
				r;

	if (on_blas())
		return WIDEN_LARGE_ROWS;
	if (n < WIDEN_SMALL_N)
		return WIDEN_SMALL_ROWS;
	share = threads > 1 ? 2 * (size_t) threads : 1;
	r = ((rows + share - 1) / share + 11) / 12 * 12;
	return r < WIDEN_SMALL_ROWS ? WIDEN_SMALL_ROWS : (r > WIDEN_LARGE_ROWS ? WIDEN_LARGE_ROWS : r);
}

/* ---- widening ------------------------------------------------------------- */

static inline float
bits_f32(uint32_t u)
{
	float		f;

	memcpy(&f, &u, 4);
	return f;
}

/* binary16 -> float32, exactly (cb_f16_to_f32 without its loop) */
static inline float
f16_to_f32(uint16_t h)
{
	uint32_t	sign = (uint32_t) (h & 0x8000) << 16;
	uint32_t	a = h & 0x7FFF;

	if (a >= 0x7C00)			/* inf / nan (payload kept) */
		return bits_f32(sign | 0x7F800000u | ((a & 0x3FF) << 13));
	if (a >= 0x0400)			/* normal: rebias the exponent */
		return bits_f32(sign | ((a << 13) + 0x38000000u));
	else
	{
		/* subnormal or zero: a * 2^-24, exact */
		float		v = (float) a * 0x1p-24f;

		return sign ? -v : v;
	}
}

static void
widen_portable(cb_matrix_format f, const uint16_t *src, size_t count, float *dst)
{
	if (f == CB_MATRIX_BF16)
		for (size_t i = 0; i < count; i++)
			dst[i] = bits_f32((uint32_t) src[i] << 16);
	else
		for (size_t i = 0; i < count; i++)
			dst[i] = f16_to_f32(src[i]);
}

#ifdef CB_HAVE_X86_KERNELS
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void
widen_512(cb_matrix_format f, const uint16_t *src, size_t count, float *dst)
{
	size_t		i = 0;

	if (f == CB_MATRIX_BF16)
	{
		for (; i + 16 <= count; i += 16)
		{
			__m256i		h = _mm256_loadu_si256((const __m256i *) (src + i));

			_mm512_storeu_si512(dst + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
		}
		if (i < count)
		{
			__mmask16	m = (__mmask16) ((1u << (count - i)) - 1);
			__m256i		h = _mm256_maskz_loadu_epi16(m, src + i);

			_mm512_mask_storeu_epi32(dst + i, m, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
		}
	}
	else
	{
		for (; i + 16 <= count; i += 16)
			_mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (src + i))));
		if (i < count)
		{
			__mmask16	m = (__mmask16) ((1u << (count - i)) - 1);

			_mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
		}
	}
}

__attribute__((target("avx2,fma,f16c")))
static void
widen_256(cb_matrix_format f, const uint16_t *src, size_t count, float *dst)
{
	size_t		i = 0;

	if (f == CB_MATRIX_BF16)
		for (; i + 8 <= count; i += 8)
		{
			__m128i		h = _mm_loadu_si128((const __m128i *) (src + i));

			_mm256_storeu_si256((__m256i *) (dst + i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
		}
	else
		for (; i + 8 <= count; i += 8)
			_mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (src + i))));
	widen_portable(f, src + i, count - i, dst + i);
}
#endif

/* dst[0 .. count) = the widened values of src */
static void
widen(cb_matrix_format f, const uint16_t *src, size_t count, float *dst)
{
#ifdef CB_HAVE_X86_KERNELS
	const cb_cpu_features *cpu = cb_cpu();

	if (cpu->avx512)
	{
		widen_512(f, src, count, dst);
		return;
	}
	if (cpu->avx2)
	{
		widen_256(f, src, count, dst);
		return;
	}
#endif
	widen_portable(f, src, count, dst);
}

/* ---- the product ------------------------------------------------------------ */

/* floats of scratch per worker: a block of rows and the packing of X, whole
 * 64-byte lines */
static size_t
worker_floats(const cb_matrix *w, size_t n, size_t block)
{
	size_t		rows = w->rows < block ? w->rows : block;

	return cb_round_up(rows * w->cols + (on_blas() ? 0 : cb_kernel_matmul_pack_floats(n, w->cols)), 16);
}

size_t
cb_widen_product_scratch(const cb_matrix *w, size_t n, int threads)
{
	threads = cb_kernel_clamp_threads(threads);

	return (size_t) threads * worker_floats(w, n, block_rows(w->rows, n, threads)) * sizeof(float) + 64;
}

typedef struct widen_job
{
	const float *x;
	size_t		ldx;
	const cb_matrix *w;
	const float *bias;
	float	   *y;
	size_t		ldy;
	size_t		n;
	size_t		block;			/* rows per item */
	float	   *scratch;		/* 64-byte aligned, per_worker floats per worker */
	size_t		per_worker;
} widen_job;

static void
widen_item(void *arg, size_t item, int worker)
{
	const widen_job *jb = arg;
	const cb_matrix *w = jb->w;
	size_t		j = item * jb->block;
	size_t		m = w->rows - j < jb->block ? w->rows - j : jb->block;
	float	   *wide = jb->scratch + (size_t) worker * jb->per_worker;
	float	   *pack = on_blas() ? NULL : wide + m * w->cols;

	widen(w->format, (const uint16_t *) w->data + j * w->cols, m * w->cols, wide);
	/* on this thread alone: the items share the threads */
	cb_kernel_matmul_nt(jb->x, jb->ldx, wide, w->cols, jb->bias != NULL ? jb->bias + j : NULL, 1.0f,
						jb->y + j, jb->ldy, jb->n, m, w->cols, pack, 1);
}

void
cb_widen_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
				 float *y, size_t ldy, size_t n, void *scratch, int threads)
{
	widen_job	jb;

	if (n == 0 || w->rows == 0)
		return;
	threads = cb_kernel_clamp_threads(threads);
	jb.x = x;
	jb.ldx = ldx;
	jb.w = w;
	jb.bias = bias;
	jb.y = y;
	jb.ldy = ldy;
	jb.n = n;
	jb.block = block_rows(w->rows, n, threads);
	jb.scratch = cb_align64(scratch);
	jb.per_worker = worker_floats(w, n, jb.block);
	cb_kernel_parallel_for((w->rows + jb.block - 1) / jb.block, threads,
						   2.0 * (double) n * (double) w->rows * (double) w->cols, widen_item, &jb);
}

const char *
cb_widen_path(void)
{
	return cb_kernel_isa();
}
