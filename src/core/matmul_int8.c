/*
 * matmul_int8.c — products with CB_MATRIX_INT8_PACKED weights (see
 * matrix.h): each row of activations quantized to int8 at run time, exact
 * int32 dot products, one float scaling.  The driver (scratch, activation
 * quantization, threads, choice of kernel) and the portable path; the
 * kernels for AVX512_VNNI and AVX-VNNI are in matmul_int8_avx512vnni.c and
 * matmul_int8_avxvnni.c (matmul_int8.h).
 *
 * Quantization of a row of x (identical on every path):
 *     amax = max_k |x[k]|  (the largest |x| bit pattern: exact)
 *     finite, 127 / amax finite:  inv = 127 / amax, sx = amax / 127,
 *                                 q[k] = clamp(rne(x[k] * inv), -127, 127)
 *     amax = 0, or so small (< 3.8e-37) that 127 / amax overflows:
 *                                 q = 0, sx = 0 (y = bias)
 *     a NaN or an infinity in the row: q = 0, sx = NaN (y = NaN, as the
 *                                 float32 product gives a NaN or an inf)
 * The per-row decisions are scalar code shared by every path; only the
 * element-wise steps run 16 (AVX-512) or 8 (AVX2) lanes wide, with the same
 * float multiply and the same rounding (the current mode: to nearest even).
 */
#include "matrix_kernels.h"
#include "matmul_int8.h"
#include "cpu_features.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

#ifdef CB_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

typedef enum int8_path
{
	PATH_PORTABLE,
	PATH_AVXVNNI,
	PATH_AVX512VNNI
} int8_path;

static int8_path
current_path(void)
{
#ifdef CB_HAVE_X86_KERNELS
	const cb_cpu_features *cpu = cb_cpu();

	if (cpu->avx512_vnni)
		return PATH_AVX512VNNI;
	if (cpu->avx_vnni)
		return PATH_AVXVNNI;
#endif
	return PATH_PORTABLE;
}

const char *
cb_int8_path(void)
{
	switch (current_path())
	{
		case PATH_AVX512VNNI:
			return "avx512-vnni";
		case PATH_AVXVNNI:
			return "avx-vnni";
		case PATH_PORTABLE:
			break;
	}
	return "portable";
}

size_t
cb_int8_product_scratch(const cb_matrix *w, size_t n)
{
	/* sx[n] and qx[n][cols4], each 64-byte aligned */
	return n * cb_round_up(w->cols, 4) + n * sizeof(float) + 128;
}

/* ---- activation quantization ------------------------------------------------ */

static inline uint32_t
abs_bits(float f)
{
	uint32_t	u;

	memcpy(&u, &f, 4);
	return u & 0x7FFFFFFFu;
}

static inline float
bits_float(uint32_t u)
{
	float		f;

	memcpy(&f, &u, 4);
	return f;
}

/*
 * The row's scale from its largest |x| bit pattern (NaNs above +inf): sets
 * *sx, returns the factor 127 / amax, or 0 when the row quantizes to zeros.
 */
static float
row_scale(uint32_t amax_bits, float *sx)
{
	float		amax,
				inv;

	if (amax_bits >= 0x7F800000u)	/* inf or NaN */
	{
		*sx = NAN;
		return 0.0f;
	}
	amax = bits_float(amax_bits);
	inv = amax > 0.0f ? 127.0f / amax : 0.0f;
	if (inv == 0.0f || isinf(inv))
	{
		*sx = 0.0f;
		return 0.0f;
	}
	*sx = amax / 127.0f;
	return inv;
}

/* clamp(rne(v), -127, 127): lrintf rounds in the current mode, as cvtps2dq */
static inline int32_t
quantize(float v)
{
	int32_t		q = (int32_t) lrintf(v);

	return q > 127 ? 127 : (q < -127 ? -127 : q);
}

/* One row, plain C.  offset: 0 (q as int8) or 128 (q + 128 as uint8). */
static void
quantize_row_c(const float *x, size_t cols, size_t cols4, int offset, float *sx, uint8_t *qx)
{
	uint32_t	amax = 0;
	float		inv;

	for (size_t c = 0; c < cols; c++)
		if (abs_bits(x[c]) > amax)
			amax = abs_bits(x[c]);
	inv = row_scale(amax, sx);
	if (inv == 0.0f)
	{
		memset(qx, offset, cols4);
		return;
	}
	for (size_t c = 0; c < cols; c++)
		qx[c] = (uint8_t) (quantize(x[c] * inv) + offset);
	memset(qx + cols, offset, cols4 - cols);
}

#ifdef CB_HAVE_X86_KERNELS

#define TARGET_Q512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define TARGET_Q256 __attribute__((target("avx2,fma")))

static TARGET_Q512 void
quantize_row_512(const float *x, size_t cols, size_t cols4, int offset, float *sx, uint8_t *qx)
{
	__m512i		vmax = _mm512_setzero_si512();
	const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF);
	float		inv;
	size_t		c;

	for (c = 0; c + 16 <= cols; c += 16)
		vmax = _mm512_max_epu32(vmax, _mm512_and_si512(_mm512_loadu_si512((const void *) (x + c)), absmask));
	if (c < cols)
	{
		__mmask16	m = (__mmask16) ((1u << (cols - c)) - 1);

		vmax = _mm512_max_epu32(vmax, _mm512_and_si512(_mm512_maskz_loadu_epi32(m, x + c), absmask));
	}
	inv = row_scale((uint32_t) _mm512_reduce_max_epu32(vmax), sx);
	if (inv == 0.0f)
	{
		memset(qx, offset, cols4);
		return;
	}
	{
		const __m512 vinv = _mm512_set1_ps(inv);
		const __m512i lo = _mm512_set1_epi32(-127),
					hi = _mm512_set1_epi32(127),
					off = _mm512_set1_epi32(offset);

		/* 16 at a time; the last step loads the columns left (zeros past
		 * them: q = 0 for the padding) and stores up to cols4 */
		for (c = 0; c < cols4; c += 16)
		{
			size_t		left = cols - c < 16 ? cols - c : 16,
						out = cols4 - c < 16 ? cols4 - c : 16;
			__m512		v = _mm512_maskz_loadu_ps((__mmask16) ((1u << left) - 1), x + c);
			__m512i		q = _mm512_cvtps_epi32(_mm512_mul_ps(v, vinv));

			q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), off);
			_mm_mask_storeu_epi8(qx + c, (__mmask16) ((1u << out) - 1), _mm512_cvtepi32_epi8(q));
		}
	}
}

static TARGET_Q256 void
quantize_row_256(const float *x, size_t cols, size_t cols4, int offset, float *sx, uint8_t *qx)
{
	__m256i		vmax = _mm256_setzero_si256();
	const __m256i absmask = _mm256_set1_epi32(0x7FFFFFFF);
	uint32_t	lanes[8];
	uint32_t	amax = 0;
	float		inv;
	size_t		c;

	for (c = 0; c + 8 <= cols; c += 8)
		vmax = _mm256_max_epu32(vmax, _mm256_and_si256(_mm256_loadu_si256((const void *) (x + c)), absmask));
	_mm256_storeu_si256((void *) lanes, vmax);
	for (int l = 0; l < 8; l++)
		amax = lanes[l] > amax ? lanes[l] : amax;
	for (; c < cols; c++)
		amax = abs_bits(x[c]) > amax ? abs_bits(x[c]) : amax;
	inv = row_scale(amax, sx);
	if (inv == 0.0f)
	{
		memset(qx, offset, cols4);
		return;
	}
	{
		const __m256 vinv = _mm256_set1_ps(inv);
		const __m256i lo = _mm256_set1_epi32(-127),
					hi = _mm256_set1_epi32(127),
					off = _mm256_set1_epi8((char) offset),
					order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);

		for (c = 0; c + 32 <= cols; c += 32)
		{
			__m256i		q[4];

#pragma GCC unroll 4
			for (int g = 0; g < 4; g++)
			{
				q[g] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + c + 8 * g), vinv));
				q[g] = _mm256_min_epi32(_mm256_max_epi32(q[g], lo), hi);
			}
			/* to int16 then int8 (no saturation: |q| <= 127), per 128-bit
			 * lane; the permutation puts the 32 bytes back in order */
			{
				__m256i		b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
												   _mm256_packs_epi32(q[2], q[3]));

				b = _mm256_permutevar8x32_epi32(b, order);
				_mm256_storeu_si256((void *) (qx + c), _mm256_add_epi8(b, off));
			}
		}
		for (; c < cols; c++)
			qx[c] = (uint8_t) (quantize(x[c] * inv) + offset);
		memset(qx + cols, offset, cols4 - cols);
	}
}

#endif							/* CB_HAVE_X86_KERNELS */

static void
quantize_rows(int8_path path, const float *x, size_t ldx, size_t n, size_t cols, size_t cols4,
			  float *sx, uint8_t *qx)
{
	int			offset = path == PATH_PORTABLE ? 0 : 128;
	void		(*row) (const float *x, size_t cols, size_t cols4, int offset, float *sx, uint8_t *qx)
	= quantize_row_c;

#ifdef CB_HAVE_X86_KERNELS
	if (cb_cpu()->avx512)
		row = quantize_row_512;
	else if (cb_cpu()->avx2)
		row = quantize_row_256;
#endif
	for (size_t i = 0; i < n; i++)
		row(x + i * ldx, cols, cols4, offset, sx + i, qx + i * cols4);
}

/* ---- the portable kernel ------------------------------------------------------- */

/* v, kept from being fused with a following addition (the result must be
 * the rounded product, as on the vector paths) */
static inline float
rounded(float v)
{
#if defined(__GNUC__) && defined(__x86_64__)
	__asm__("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
	__asm__("" : "+w"(v));
#endif
	return v;
}

/*
 * Per row of x and block of 16 outputs: per step of 4 k, each output's 4
 * weights times the row's 4 activations, in int32: plain C that compilers
 * vectorize at -O2 (the 16 outputs are the lanes; ~12 GOP/s on one core
 * here, against 2 for the loop in k order; more rows per weight load gain
 * nothing).
 */
void
cb_int8_blocks_portable(const cb_int8_job *jb, size_t b0, size_t b1)
{
	const cb_matrix *w = jb->w;
	size_t		steps = jb->cols4 / 4;

	for (size_t b = b0; b < b1; b++)
	{
		const int8_t *blk = (const int8_t *) w->data + b * jb->cols4 * CB_MATRIX_BLOCK;
		size_t		j0 = b * CB_MATRIX_BLOCK;
		size_t		valid = w->rows - j0 < CB_MATRIX_BLOCK ? w->rows - j0 : CB_MATRIX_BLOCK;

		for (size_t i = 0; i < jb->n; i++)
		{
			const int8_t *xr = (const int8_t *) jb->qx + i * jb->cols4;
			int32_t		acc[CB_MATRIX_BLOCK] = {0};

			for (size_t s = 0; s < steps; s++)
			{
				const int8_t *ws = blk + s * 64;
				int32_t		x0 = xr[4 * s],
							x1 = xr[4 * s + 1],
							x2 = xr[4 * s + 2],
							x3 = xr[4 * s + 3];

				for (size_t l = 0; l < CB_MATRIX_BLOCK; l++)
					acc[l] += x0 * ws[4 * l] + x1 * ws[4 * l + 1] + x2 * ws[4 * l + 2] + x3 * ws[4 * l + 3];
			}
			for (size_t l = 0; l < valid; l++)
			{
				size_t		j = j0 + l;

				jb->y[i * jb->ldy + j] = rounded((float) acc[l] * (jb->sx[i] * w->scale[j])) +
					(jb->bias != NULL ? jb->bias[j] : 0.0f);
			}
		}
	}
}

/* ---- the driver ---------------------------------------------------------------- */

typedef struct int8_work
{
	cb_int8_job job;
	size_t		blocks,
				panel;			/* 16-row blocks of W per work item */
	void		(*kernel) (const cb_int8_job *job, size_t b0, size_t b1);
} int8_work;

static void
int8_item(void *arg, size_t item, int worker)
{
	const int8_work *wk = arg;
	size_t		b0 = item * wk->panel;
	size_t		b1 = wk->blocks - b0 < wk->panel ? wk->blocks : b0 + wk->panel;

	(void) worker;
	wk->kernel(&wk->job, b0, b1);
}

void
cb_int8_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
				float *y, size_t ldy, size_t n, void *scratch, int threads)
{
	int8_path	path = current_path();
	size_t		cols4 = cb_round_up(w->cols, 4);
	float	   *sx = cb_align64(scratch);
	uint8_t    *qx = cb_align64(sx + n);
	int8_work	wk;
	size_t		items;

	if (n == 0 || w->rows == 0)
		return;
	quantize_rows(path, x, ldx, n, w->cols, cols4, sx, qx);

	memset(&wk, 0, sizeof(wk));
	wk.job.w = w;
	wk.job.qx = qx;
	wk.job.sx = sx;
	wk.job.cols4 = cols4;
	wk.job.bias = bias;
	wk.job.y = y;
	wk.job.ldy = ldy;
	wk.job.n = n;
	wk.blocks = cb_round_up(w->rows, CB_MATRIX_BLOCK) / CB_MATRIX_BLOCK;
	switch (path)
	{
#ifdef CB_HAVE_X86_KERNELS
		case PATH_AVX512VNNI:
			wk.kernel = cb_int8_blocks_avx512vnni;
			break;
		case PATH_AVXVNNI:
			wk.kernel = cb_int8_blocks_avxvnni;
			break;
#endif
		default:
			wk.kernel = cb_int8_blocks_portable;
			break;
	}
	/*
	 * Work items of whole tiles (4 blocks: the zmm kernel's 64 columns),
	 * about 4 per thread so that a thread slowed down takes fewer, and at
	 * most 24 blocks (the rows of activations a kernel keeps in cache are
	 * reused across the item's blocks).
	 */
	threads = cb_kernel_clamp_threads(threads);
	wk.panel = wk.blocks / (4 * (size_t) threads) / 4 * 4;
	wk.panel = wk.panel < 4 ? 4 : (wk.panel > 24 ? 24 : wk.panel);
	items = (wk.blocks + wk.panel - 1) / wk.panel;
	/* an int8 multiply-add costs about a quarter of a float32 one: the
	 * products' rule for sharing, in float32-equivalent FLOPs */
	cb_kernel_parallel_for(items, threads, 0.5 * (double) n * (double) w->rows * (double) w->cols,
						   int8_item, &wk);
}
