/*
 * kernels.c — float32 kernels of the forward pass (see kernels.h): element-
 * and row-wise ones, then the matrix products and their thread pool.
 *
 * The hot element-wise kernels (GELU, LayerNorm, softmax) are written with
 * GCC/Clang vector extensions on 4 floats (SSE2 on x86-64, NEON on arm64: no
 * -m flag needed; the compiler does not vectorize plain loops at -O2), and
 * GELU and softmax again on 16 floats in functions compiled for AVX-512,
 * used when the CPU has it.  The matrix products' micro-kernels use AVX-512
 * or AVX2 intrinsics in the same way.
 */
#include "kernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* x86-64 with GCC or clang: AVX-512 / AVX2 code in functions with target
 * attributes, used when the CPU has them (see current_isa()).
 * -DCB_NO_X86_KERNELS builds the portable code only. */
#include "cpu_features.h"
#ifdef CB_HAVE_X86_KERNELS
#include <immintrin.h>
#define TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#endif

/* true when the AVX-512 code paths are in use (matrix products' choice) */
static bool use_avx512(void) __attribute__((unused));

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f
v4_load(const float *p)
{
	v4f			v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void
v4_store(float *p, v4f v)
{
	memcpy(p, &v, sizeof(v));
}

static inline v4f
v4_splat(float x)
{
	return (v4f) {x, x, x, x};
}

static inline v4i
v4_splat_i(int32_t x)
{
	return (v4i) {x, x, x, x};
}

/* mask ? a : b, mask lanes all ones or all zeros */
static inline v4f
v4_select(v4i mask, v4f a, v4f b)
{
	return (v4f) (((v4i) a & mask) | ((v4i) b & ~mask));
}

/*
 * exp(x) for x in [-87, 88] (Cephes expf: x = n ln2 + r, |r| <= ln2/2,
 * degree-7 polynomial, 2^n through the exponent bits); ~1 ulp.
 */
static inline v4f
v4_exp(v4f x)
{
	const v4f	magic = v4_splat(12582912.0f);	/* 1.5 * 2^23: round to nearest */
	v4f			n,
				r,
				r2,
				p;
	v4i			e;

	x = v4_select(x < v4_splat(-87.0f), v4_splat(-87.0f), x);
	x = v4_select(x > v4_splat(88.0f), v4_splat(88.0f), x);
	n = (x * v4_splat(1.44269504088896341f) + magic) - magic;
	r = x - n * v4_splat(0.693359375f) - n * v4_splat(-2.12194440e-4f);
	r2 = r * r;
	p = v4_splat(1.9875691500e-4f);
	p = p * r + v4_splat(1.3981999507e-3f);
	p = p * r + v4_splat(8.3334519073e-3f);
	p = p * r + v4_splat(4.1665795894e-2f);
	p = p * r + v4_splat(1.6666665459e-1f);
	p = p * r + v4_splat(5.0000001201e-1f);
	p = p * r2 + r + v4_splat(1.0f);
	e = (__builtin_convertvector(n, v4i) + 127) << 23;
	return p * (v4f) e;
}

/*
 * GELU(x) = 0.5 x (1 + erf(x / sqrt 2)), with erf from Abramowitz & Stegun
 * 7.1.26 (|error| <= 1.5e-7; the approximation PyTorch's vectorized CPU
 * kernel uses): for z >= 0, erfc(z) = t (a1 + t (a2 + ... a5)) exp(-z^2),
 * t = 1 / (1 + p z).  1 + erf(z) is 2 - erfc(|z|) for z >= 0 and
 * erfc(|z|) for z < 0, so large negative inputs lose no precision.
 */
static inline v4f
v4_gelu(v4f x)
{
	v4f			z = x * v4_splat(0.70710678118654752440f);
	v4f			az = (v4f) ((v4i) z & v4_splat_i(0x7fffffff));
	v4f			t = v4_splat(1.0f) / (v4_splat(1.0f) + v4_splat(0.3275911f) * az);
	v4f			poly,
				erfc_az,
				one_plus_erf;

	poly = v4_splat(1.061405429f);
	poly = poly * t + v4_splat(-1.453152027f);
	poly = poly * t + v4_splat(1.421413741f);
	poly = poly * t + v4_splat(-0.284496736f);
	poly = poly * t + v4_splat(0.254829592f);
	erfc_az = poly * t * v4_exp(-(az * az));
	one_plus_erf = v4_select(z < v4_splat(0.0f), erfc_az, v4_splat(2.0f) - erfc_az);
	return v4_splat(0.5f) * x * one_plus_erf;
}

#ifdef CB_HAVE_X86_KERNELS
/*
 * The same GELU and exp on 16 lanes (AVX-512): lane for lane the operations
 * of v4_exp / v4_gelu.
 */
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

static ALWAYS_INLINE TARGET_AVX512 v16f
v16_splat(float x)
{
	return (v16f) {0} + x;
}

static ALWAYS_INLINE TARGET_AVX512 v16f
v16_load(const float *p)
{
	v16f		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static ALWAYS_INLINE TARGET_AVX512 void
v16_store(float *p, v16f v)
{
	memcpy(p, &v, sizeof(v));
}

static ALWAYS_INLINE TARGET_AVX512 v16f
v16_select(v16i mask, v16f a, v16f b)
{
	return (v16f) (((v16i) a & mask) | ((v16i) b & ~mask));
}

static ALWAYS_INLINE TARGET_AVX512 v16f
v16_exp(v16f x)
{
	const v16f	magic = v16_splat(12582912.0f);
	v16f		n,
				r,
				r2,
				p;
	v16i		e;

	x = v16_select(x < v16_splat(-87.0f), v16_splat(-87.0f), x);
	x = v16_select(x > v16_splat(88.0f), v16_splat(88.0f), x);
	n = (x * v16_splat(1.44269504088896341f) + magic) - magic;
	r = x - n * v16_splat(0.693359375f) - n * v16_splat(-2.12194440e-4f);
	r2 = r * r;
	p = v16_splat(1.9875691500e-4f);
	p = p * r + v16_splat(1.3981999507e-3f);
	p = p * r + v16_splat(8.3334519073e-3f);
	p = p * r + v16_splat(4.1665795894e-2f);
	p = p * r + v16_splat(1.6666665459e-1f);
	p = p * r + v16_splat(5.0000001201e-1f);
	p = p * r2 + r + v16_splat(1.0f);
	e = (__builtin_convertvector(n, v16i) + 127) << 23;
	return p * (v16f) e;
}

static ALWAYS_INLINE TARGET_AVX512 v16f
v16_gelu(v16f x)
{
	v16f		z = x * v16_splat(0.70710678118654752440f);
	v16f		az = (v16f) ((v16i) z & ((v16i) {0} + 0x7fffffff));
	v16f		t = v16_splat(1.0f) / (v16_splat(1.0f) + v16_splat(0.3275911f) * az);
	v16f		poly,
				erfc_az,
				one_plus_erf;

	poly = v16_splat(1.061405429f);
	poly = poly * t + v16_splat(-1.453152027f);
	poly = poly * t + v16_splat(1.421413741f);
	poly = poly * t + v16_splat(-0.284496736f);
	poly = poly * t + v16_splat(0.254829592f);
	erfc_az = poly * t * v16_exp(-(az * az));
	one_plus_erf = v16_select(z < v16_splat(0.0f), erfc_az, v16_splat(2.0f) - erfc_az);
	return v16_splat(0.5f) * x * one_plus_erf;
}

/* the whole rows, 16 lanes at a time (rows x cols contiguous when no bias) */
static TARGET_AVX512 size_t
bias_gelu_row_512(float *row, size_t cols, const float *bias)
{
	size_t		c = 0;

	for (; c + 16 <= cols; c += 16)
	{
		v16f		v = v16_load(row + c);

		if (bias != NULL)
			v += v16_load(bias + c);
		v16_store(row + c, v16_gelu(v));
	}
	return c;
}

/* exp(d) for d <= 0, exactly 0 below -87 (and for -inf) */
static ALWAYS_INLINE TARGET_AVX512 v16f
v16_exp_nonpos(v16f d)
{
	return v16_select(d < v16_splat(-87.0f), v16_splat(0.0f), v16_exp(d));
}

/* softmax's three passes on 16 lanes: max, exp and sum, scale; the lanes' sums
 * are added in double.  Returns false (nothing written) for an all -inf row. */
static TARGET_AVX512 bool
softmax_512(float *x, size_t n)
{
	v16f		vmax = v16_splat(-INFINITY),
				acc = v16_splat(0.0f);
	float		max = -INFINITY,
				inv;
	double		sum = 0.0;
	size_t		i = 0;

	for (; i + 16 <= n; i += 16)
	{
		v16f		v = v16_load(x + i);

		vmax = v16_select(v > vmax, v, vmax);
	}
	for (int l = 0; l < 16; l++)
		if (vmax[l] > max)
			max = vmax[l];
	for (; i < n; i++)
		if (x[i] > max)
			max = x[i];
	if (max == -INFINITY)
		return false;
	for (i = 0; i + 16 <= n; i += 16)
	{
		v16f		e = v16_exp_nonpos(v16_load(x + i) - max);

		v16_store(x + i, e);
		acc += e;
	}
	for (; i < n; i++)
	{
		v16f		e = v16_exp_nonpos(v16_splat(x[i] - max));

		x[i] = e[0];
		sum += e[0];
	}
	for (int l = 0; l < 16; l++)
		sum += (double) acc[l];
	inv = (float) (1.0 / sum);
	for (i = 0; i + 16 <= n; i += 16)
		v16_store(x + i, v16_load(x + i) * inv);
	for (; i < n; i++)
		x[i] *= inv;
	return true;
}
#endif							/* CB_HAVE_X86_KERNELS */

float
cb_gelu(float x)
{
	v4f			r = v4_gelu(v4_splat(x));

	return r[0];
}

void
cb_kernel_bias_gelu(float *x, size_t rows, size_t cols, const float *bias)
{
	for (size_t r = 0; r < rows; r++)
	{
		float	   *row = x + r * cols;
		size_t		c = 0;

#ifdef CB_HAVE_X86_KERNELS
		if (use_avx512())
			c = bias_gelu_row_512(row, cols, bias);
#endif
		for (; c + 4 <= cols; c += 4)
		{
			v4f			v = v4_load(row + c);

			if (bias != NULL)
				v += v4_load(bias + c);
			v4_store(row + c, v4_gelu(v));
		}
		for (; c < cols; c++)
			row[c] = cb_gelu(bias != NULL ? row[c] + bias[c] : row[c]);
	}
}

void
cb_kernel_bias_tanh(float *x, size_t rows, size_t cols, const float *bias)
{
	for (size_t r = 0; r < rows; r++)
	{
		float	   *row = x + r * cols;

		for (size_t c = 0; c < cols; c++)
			row[c] = tanhf(bias != NULL ? row[c] + bias[c] : row[c]);
	}
}

void
cb_kernel_add_bias(float *x, size_t rows, size_t cols, const float *bias)
{
	for (size_t r = 0; r < rows; r++)
	{
		float	   *row = x + r * cols;

		for (size_t c = 0; c < cols; c++)
			row[c] += bias[c];
	}
}

/* Sum of n floats: 4-lane float partial sums over blocks of 64 values,
 * blocks added in double (as accurate as a double loop for our sizes). */
static inline double
row_sum(const float *x, size_t n, float shift, bool squares)
{
	double		total = 0.0;
	size_t		c = 0;

	while (c + 4 <= n)
	{
		v4f			acc = v4_splat(0.0f);
		size_t		end = c + 64 <= n ? c + 64 : n - (n - c) % 4;

		for (; c < end; c += 4)
		{
			v4f			d = v4_load(x + c) - v4_splat(shift);

			acc += squares ? d * d : d;
		}
		total += (double) ((acc[0] + acc[1]) + (acc[2] + acc[3]));
	}
	for (; c < n; c++)
	{
		float		d = x[c] - shift;

		total += squares ? (double) d * d : (double) d;
	}
	return total;
}

/* Normalize one row in place (biased variance, two passes). */
static inline void
layernorm_row(float *row, size_t cols, const float *gamma, const float *beta, float eps)
{
	float		mean = (float) (row_sum(row, cols, 0.0f, false) / (double) cols);
	double		var = row_sum(row, cols, mean, true) / (double) cols;
	float		rstd = (float) (1.0 / sqrt(var + (double) eps));
	v4f			vmean = v4_splat(mean),
				vrstd = v4_splat(rstd);
	size_t		c = 0;

	for (; c + 4 <= cols; c += 4)
		v4_store(row + c, (v4_load(row + c) - vmean) * vrstd * v4_load(gamma + c) + v4_load(beta + c));
	for (; c < cols; c++)
		row[c] = (row[c] - mean) * rstd * gamma[c] + beta[c];
}

void
cb_kernel_layernorm(float *x, size_t rows, size_t cols,
					const float *gamma, const float *beta, float eps)
{
	for (size_t r = 0; r < rows; r++)
		layernorm_row(x + r * cols, cols, gamma, beta, eps);
}

void
cb_kernel_bias_residual_layernorm(float *x, const float *y, size_t rows, size_t cols,
								  const float *bias, const float *gamma,
								  const float *beta, float eps)
{
	for (size_t r = 0; r < rows; r++)
	{
		float	   *xr = x + r * cols;
		const float *yr = y + r * cols;

		size_t		c = 0;

		/* torch: (dense(h) + bias) + residual, each rounded to float */
		if (bias != NULL)
		{
			for (; c + 4 <= cols; c += 4)
				v4_store(xr + c, (v4_load(yr + c) + v4_load(bias + c)) + v4_load(xr + c));
			for (; c < cols; c++)
				xr[c] = (yr[c] + bias[c]) + xr[c];
		}
		else
		{
			for (; c + 4 <= cols; c += 4)
				v4_store(xr + c, v4_load(yr + c) + v4_load(xr + c));
			for (; c < cols; c++)
				xr[c] = yr[c] + xr[c];
		}
		layernorm_row(xr, cols, gamma, beta, eps);
	}
}

/* exp(d) for d <= 0, exactly 0 below -87 (and for -inf) */
static inline v4f
v4_exp_nonpos(v4f d)
{
	return v4_select(d < v4_splat(-87.0f), v4_splat(0.0f), v4_exp(d));
}

void
cb_kernel_softmax(float *x, size_t n)
{
	float		max = x[0];
	double		sum = 0.0;
	float		inv;
	size_t		i = 0;

#ifdef CB_HAVE_X86_KERNELS
	if (n >= 16 && use_avx512() && softmax_512(x, n))
		return;
#endif
	for (size_t j = 1; j < n; j++)
		if (x[j] > max)
			max = x[j];
	if (max == -INFINITY)
	{
		/* every entry masked: torch gives NaN; we give a uniform row */
		for (size_t j = 0; j < n; j++)
			x[j] = 1.0f / (float) n;
		return;
	}
	for (; i + 4 <= n; i += 4)
	{
		v4f			e = v4_exp_nonpos(v4_load(x + i) - v4_splat(max));

		v4_store(x + i, e);
		sum += (double) ((e[0] + e[1]) + (e[2] + e[3]));
	}
	for (; i < n; i++)
	{
		v4f			e = v4_exp_nonpos(v4_splat(x[i] - max));

		x[i] = e[0];
		sum += e[0];
	}
	inv = (float) (1.0 / sum);
	i = 0;
	for (; i + 4 <= n; i += 4)
		v4_store(x + i, v4_load(x + i) * v4_splat(inv));
	for (; i < n; i++)
		x[i] *= inv;
}

double
cb_kernel_logsumexp(const float *x, size_t n)
{
	float		max = x[0];
	double		sum = 0.0;

	for (size_t i = 1; i < n; i++)
		if (x[i] > max)
			max = x[i];
	if (max == -INFINITY || max == INFINITY || isnan(max))
		return (double) max;
	for (size_t i = 0; i < n; i++)
		sum += exp((double) x[i] - (double) max);
	return (double) max + log(sum);
}

size_t
cb_kernel_argmax(const float *x, size_t n)
{
	size_t		best = 0;

	for (size_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

/* ======================================================================== */
/* matrix products                                                          */
/* ======================================================================== */

/*
 * Layout of the work (X · Wᵀ, "nt"): the output is cut into tiles of MR rows
 * of X by NR rows of W; a tile keeps MR x NR vector accumulators in registers
 * and walks the shared dimension k in steps of one vector, loading MR + NR
 * vectors for MR x NR fused multiply-adds (4 x 6 with AVX-512: 24 zmm
 * accumulators), then adds each accumulator's lanes.  The loops around the
 * tiles keep one W block (NR rows x KC floats, 18 KB) in L1 while every row
 * block of X (RB rows x KC floats, 384 KB) streams from L2; K is cut in
 * chunks of at most KC so that both fit, the output then accumulating the
 * chunks.  Threads share the W blocks (the output columns).
 *
 * P · V ("nn", attention context): tiles of MR rows of P by up to 4 vectors
 * of columns of V; each step broadcasts one probability per row and loads
 * one row of V.
 */

#define MM_KC 768				/* shared-dimension chunk (floats) */
#define MM_RB 128				/* rows of X per block */
#define MM_MAX_THREADS 16
#define MM_PACK_ROWS 128		/* rows of X the packed-X kernel transposes at a time */
#define MM_PACK_MIN_ROWS 13		/* fewer rows: the dot-product kernel */
#define MM_PACK_BLOCK 32		/* rows per packed block (OP_TB) */

#include <cblas.h>
#include <stdlib.h>

extern int	openblas_get_num_threads(void);

typedef enum mm_isa
{
	MM_ISA_BLAS = 1,
	MM_ISA_AVX2,
	MM_ISA_AVX512
} mm_isa;

/* One product; tile functions of every ISA share this description. */
typedef struct mm_job
{
	const float *x;
	size_t		ldx;
	const float *w;
	size_t		ldw;
	const float *bias;
	float		alpha;
	float	   *y;
	size_t		ldy;
	size_t		n,
				out,
				in;
	mm_isa		isa;
	/* the packed-X kernel: rows [g0, g0 + g) of X, packed in xt */
	const float *xt;
	size_t		g0,
				g;
	/* threads take the columns in chunks of `chunk` from `next` (a busy core
	 * then simply takes fewer chunks) */
	size_t		chunk;
	atomic_size_t next;
} mm_job;

/* A tile: y[MR][NR] (=|+=) alpha * x[MR][0..k) · w[NR][0..k)ᵀ (+ bias when !acc). */
typedef void (*nt_tile_fn) (const float *x, size_t ldx, const float *w, size_t ldw, size_t k,
							float *y, size_t ldy, const float *bias, float alpha, int acc);

/* A tile of P · V: y[MR][0..cols) = p[MR][0..k) · v[0..k)[0..cols), cols <= NV vectors. */
typedef void (*nn_tile_fn) (const float *p, size_t ldp, const float *v, size_t ldv, size_t k,
							float *y, size_t ldy, size_t cols);

#ifdef CB_HAVE_X86_KERNELS

/* ---- AVX-512: nt tiles up to 4 x 6, nn tiles up to 4 rows x 4 vectors ---- */

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

static const nt_tile_fn nt512_tiles[4][6] = {
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

static const nn_tile_fn nn512_tiles[4][4] = {
	{nn512_1x1, nn512_1x2, nn512_1x3, nn512_1x4},
	{nn512_2x1, nn512_2x2, nn512_2x3, nn512_2x4},
	{nn512_3x1, nn512_3x2, nn512_3x3, nn512_3x4},
	{nn512_4x1, nn512_4x2, nn512_4x3, nn512_4x4},
};

/*
 * ---- AVX-512 "packed X" nt kernel, for products of 8 rows or more ----
 *
 * The rows of X (tokens) are first transposed, OP_GROUP at a time, into
 * blocks of 32 tokens laid out [k][32] (the caller's scratch); a tile then
 * computes 12 outputs (12 rows of W, read in place with one broadcast each
 * per k) for the 32 tokens of a block with 24 accumulators, 2 vector loads
 * and 12 broadcasts per 24 fused multiply-adds, and writes its 12 x 32
 * results transposed into Y.  A block of 16 tokens or fewer uses one
 * vector.  W rows are never copied.
 */
#define OP_TB MM_PACK_BLOCK		/* tokens per packed block */
#define OP_MR 12				/* rows of W per tile */
#ifndef OP_DOT_TAIL
#define OP_DOT_TAIL 12			/* a last block of this many rows or fewer: dot tiles */
#endif

typedef void (*op_tile_fn) (const float *xt, const float *w, size_t ldw, size_t k,
							float *y, size_t ldy, const float *bias, float alpha, int acc,
							size_t ntok);

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

static const op_tile_fn op512_tiles[OP_MR][2] = {
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
static TARGET_AVX512 void
op_pack_512(const float *x, size_t ldx, size_t ntok, size_t in, float *xt)
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

/* ---- AVX2 + FMA: nt tiles up to 4 x 3, nn tiles up to 4 rows x 2 vectors ---- */

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

static const nt_tile_fn nt256_tiles[4][3] = {
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

static const nn_tile_fn nn256_tiles[4][2] = {
	{nn256_1x1, nn256_1x2},
	{nn256_2x1, nn256_2x2},
	{nn256_3x1, nn256_3x2},
	{nn256_4x1, nn256_4x2},
};
#endif							/* CB_HAVE_X86_KERNELS */

/* ---- choosing the code path ---- */

static mm_isa
current_isa(void)
{
	const cb_cpu_features *f = cb_cpu();

	return f->avx512 ? MM_ISA_AVX512 : f->avx2 ? MM_ISA_AVX2 : MM_ISA_BLAS;
}

static bool
use_avx512(void)
{
	return current_isa() == MM_ISA_AVX512;
}

const char *
cb_kernel_isa(void)
{
	switch (current_isa())
	{
		case MM_ISA_AVX512:
			return "avx512";
		case MM_ISA_AVX2:
			return "avx2";
		default:
			return "blas";
	}
}

#ifdef CB_HAVE_X86_KERNELS

/* ---- the thread pool ----
 *
 * A job is a function that takes chunks of work from a shared counter until
 * none is left (see next_chunk): the caller runs it, and so do the helpers
 * that wake up in time.  A helper enters a job through `state` (a count of
 * helpers inside, plus a CLOSED bit); when the caller has finished its own
 * run every chunk is taken, so it closes the job and waits only for helpers
 * still inside.  A helper that wakes late finds the job closed and leaves
 * without touching it: a busy core (another process on it) slows a product
 * down to the speed of the threads that do run, and never stalls it.
 */

#include <pthread.h>
#include <signal.h>

typedef void (*pool_fn) (void *arg);

#define POOL_CLOSED 0x40000000

static struct
{
	pthread_mutex_t lock;		/* guards sleepers and the condition variables */
	pthread_cond_t wake;
	pthread_cond_t done;
	pthread_mutex_t busy;		/* held by the thread that runs a job */
	int			n_workers;
	int			sleepers;
	atomic_uint generation;		/* bumped for each job, after fn/arg/max_inside are set */
	atomic_int	state;			/* helpers inside the job | POOL_CLOSED */
	pool_fn		fn;
	void	   *arg;
	atomic_int	max_inside;		/* helpers the job wants (atomic: a helper that
								 * finds a job full leaves without any other
								 * synchronisation, and the next job rewrites it) */
	unsigned	start_generation[MM_MAX_THREADS];	/* the generation when helper i started */
}			pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.busy = PTHREAD_MUTEX_INITIALIZER,
};

#define POOL_SPINS 4000			/* polls (~50 us) before a thread sleeps */

static inline void
cpu_relax(void)
{
#ifdef CB_HAVE_X86_KERNELS
	__builtin_ia32_pause();
#endif
}

static void *
pool_worker(void *self)
{
	unsigned	seen = pool.start_generation[(intptr_t) self];	/* written before pthread_create */

	for (;;)
	{
		unsigned	g;
		int			st,
					max_inside;

		for (int spin = 0; (g = atomic_load(&pool.generation)) == seen && spin < POOL_SPINS; spin++)
			cpu_relax();
		if (g == seen)
		{
			pthread_mutex_lock(&pool.lock);
			pool.sleepers++;
			while ((g = atomic_load(&pool.generation)) == seen)
				pthread_cond_wait(&pool.wake, &pool.lock);
			pool.sleepers--;
			pthread_mutex_unlock(&pool.lock);
		}
		seen = g;
		/* enter the current job unless it is closed or has its helpers */
		st = atomic_load(&pool.state);
		max_inside = atomic_load_explicit(&pool.max_inside, memory_order_relaxed);
		while ((st & POOL_CLOSED) == 0 && st < max_inside &&
			   !atomic_compare_exchange_weak(&pool.state, &st, st + 1))
			;
		if ((st & POOL_CLOSED) != 0 || st >= max_inside)
			continue;
		/* inside: fn and arg are those of the current job */
		pool.fn(pool.arg);
		if (atomic_fetch_sub(&pool.state, 1) == (POOL_CLOSED | 1))
		{
			pthread_mutex_lock(&pool.lock);
			pthread_cond_signal(&pool.done);
			pthread_mutex_unlock(&pool.lock);
		}
	}
	return NULL;
}

/* Start helpers up to `want`; returns how many exist. */
static int
pool_grow(int want)
{
	sigset_t	all,
				old;
	pthread_attr_t attr;

	if (want > MM_MAX_THREADS - 1)
		want = MM_MAX_THREADS - 1;
	if (pool.n_workers >= want)
		return pool.n_workers;
	if (pthread_attr_init(&attr) != 0)
		return pool.n_workers;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* helpers never take a signal: they inherit a fully blocked mask */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (pool.n_workers < want)
	{
		pthread_t	tid;

		/* no job is in flight: the helper will take the next one published */
		pool.start_generation[pool.n_workers] = atomic_load(&pool.generation);
		if (pthread_create(&tid, &attr, pool_worker, (void *) (intptr_t) pool.n_workers) != 0)
			break;
		pool.n_workers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return pool.n_workers;
}

/* Run fn(arg) on the calling thread and on up to threads - 1 helpers. */
static void
pool_run(pool_fn fn, void *arg, int threads)
{
	int			st;

	if (threads <= 1 || pthread_mutex_trylock(&pool.busy) != 0)
	{
		fn(arg);
		return;
	}
	if (pool_grow(threads - 1) == 0)
	{
		pthread_mutex_unlock(&pool.busy);
		fn(arg);
		return;
	}
	pool.fn = fn;
	pool.arg = arg;
	atomic_store_explicit(&pool.max_inside, threads - 1, memory_order_relaxed);
	atomic_store(&pool.state, 0);
	pthread_mutex_lock(&pool.lock);
	atomic_fetch_add(&pool.generation, 1);
	if (pool.sleepers > 0)
		pthread_cond_broadcast(&pool.wake);
	pthread_mutex_unlock(&pool.lock);

	fn(arg);

	/* every chunk is taken: no more helpers in; wait for those inside */
	st = atomic_fetch_or(&pool.state, POOL_CLOSED);
	if ((st & ~POOL_CLOSED) != 0)
	{
		for (int spin = 0; (atomic_load(&pool.state) & ~POOL_CLOSED) != 0 && spin < POOL_SPINS; spin++)
			cpu_relax();
		pthread_mutex_lock(&pool.lock);
		while ((atomic_load(&pool.state) & ~POOL_CLOSED) != 0)
			pthread_cond_wait(&pool.done, &pool.lock);
		pthread_mutex_unlock(&pool.lock);
	}
	pthread_mutex_unlock(&pool.busy);
}

/* ---- the products ---- */

/* Columns [j0, j1) of an nt product with tiles of at most mr_max x nr_max. */
static void
nt_columns(const mm_job *jb, size_t j0, size_t j1, const nt_tile_fn *tiles, int mr_max, int nr_max)
{
	size_t		chunks = (jb->in + MM_KC - 1) / MM_KC;
	size_t		kc = chunks > 0 ? (jb->in + chunks - 1) / chunks : 0;

	kc = (kc + 15) & ~(size_t) 15;
	for (size_t i0 = 0; i0 < jb->n; i0 += MM_RB)
	{
		size_t		i1 = jb->n - i0 < MM_RB ? jb->n : i0 + MM_RB;

		for (size_t k0 = 0; k0 < jb->in || k0 == 0; k0 += kc)
		{
			size_t		k = jb->in - k0 < kc ? jb->in - k0 : kc;

			for (size_t j = j0; j < j1; j += (size_t) nr_max)
			{
				size_t		nr = j1 - j < (size_t) nr_max ? j1 - j : (size_t) nr_max;
				const float *wj = jb->w + j * jb->ldw + k0;
				const float *bj = jb->bias != NULL ? jb->bias + j : NULL;

				for (size_t i = i0; i < i1; i += (size_t) mr_max)
				{
					size_t		mr = i1 - i < (size_t) mr_max ? i1 - i : (size_t) mr_max;

					tiles[(mr - 1) * (size_t) nr_max + (nr - 1)] (jb->x + i * jb->ldx + k0, jb->ldx,
																  wj, jb->ldw, k,
																  jb->y + i * jb->ldy + j, jb->ldy,
																  bj, jb->alpha, k0 > 0);
				}
			}
			if (k == 0)
				break;
		}
	}
}

/* The next chunk of columns [*j0, *j1) of a job (false when none is left). */
static bool
next_chunk(mm_job *jb, size_t *j0, size_t *j1)
{
	size_t		c = atomic_fetch_add(&jb->next, 1) * jb->chunk;

	if (c >= jb->out)
		return false;
	*j0 = c;
	*j1 = jb->out - c < jb->chunk ? jb->out : c + jb->chunk;
	return true;
}

static void
nt_part(void *arg)
{
	mm_job	   *jb = arg;

#ifdef CB_HAVE_X86_KERNELS
	{
		const nt_tile_fn *tiles = jb->isa == MM_ISA_AVX512 ? &nt512_tiles[0][0] : &nt256_tiles[0][0];
		size_t		j0,
					j1;

		while (next_chunk(jb, &j0, &j1))
			nt_columns(jb, j0, j1, tiles, 4, jb->isa == MM_ISA_AVX512 ? 6 : 3);
	}
#endif
}

#ifdef CB_HAVE_X86_KERNELS
/* The packed-X kernel on chunks of columns, for the rows of the job's group. */
static void
op_part(void *arg)
{
	mm_job	   *jb = arg;
	size_t		chunks = (jb->in + MM_KC - 1) / MM_KC;
	size_t		kc = (((jb->in + chunks - 1) / chunks) + 15) & ~(size_t) 15;
	size_t		blocks = (jb->g + OP_TB - 1) / OP_TB;
	size_t		c0,
				c1;

	while (next_chunk(jb, &c0, &c1))
		for (size_t k0 = 0; k0 < jb->in; k0 += kc)
		{
			size_t		k = jb->in - k0 < kc ? jb->in - k0 : kc;

			for (size_t j = c0; j < c1; j += OP_MR)
			{
				size_t		mr = c1 - j < OP_MR ? c1 - j : OP_MR;
				const float *wj = jb->w + j * jb->ldw + k0;
				const float *bj = jb->bias != NULL ? jb->bias + j : NULL;

				for (size_t b = 0; b < blocks; b++)
				{
					size_t		t = b * OP_TB;	/* first row of the block in the group */
					size_t		rows = jb->g - t < OP_TB ? jb->g - t : OP_TB;
					const float *xt = jb->xt + (b * jb->in + k0) * OP_TB;

					/*
					 * A full block: two vectors of rows.  Otherwise a half
					 * (one vector) while 16 rows remain, or more than
					 * OP_DOT_TAIL; the last few rows, which would leave most
					 * lanes idle, go through dot-product tiles on the same
					 * rows of W while they are in L1.
					 */
					if (rows == OP_TB)
					{
						op512_tiles[mr - 1][1] (xt, wj, jb->ldw, k, jb->y + (jb->g0 + t) * jb->ldy + j,
												jb->ldy, bj, jb->alpha, k0 > 0, OP_TB);
						continue;
					}
					for (size_t half = 0; half < 2 && rows > 0; half++)
					{
						size_t		r = rows < 16 ? rows : 16;
						size_t		i0 = jb->g0 + t + 16 * half;

						if (r == 16 || r > OP_DOT_TAIL)
							op512_tiles[mr - 1][0] (xt + 16 * half, wj, jb->ldw, k,
													jb->y + i0 * jb->ldy + j, jb->ldy, bj, jb->alpha,
													k0 > 0, r);
						else
							for (size_t i = i0; i < i0 + r; i += 4)
							{
								size_t		m = i0 + r - i < 4 ? i0 + r - i : 4;

								for (size_t jj = 0; jj < mr; jj += 6)
								{
									size_t		cols = mr - jj < 6 ? mr - jj : 6;

									nt512_tiles[m - 1][cols - 1] (jb->x + i * jb->ldx + k0, jb->ldx,
																  wj + jj * jb->ldw, jb->ldw, k,
																  jb->y + i * jb->ldy + j + jj, jb->ldy,
																  bj != NULL ? bj + jj : NULL,
																  jb->alpha, k0 > 0);
								}
							}
						rows -= r;
					}
				}
			}
		}
}
#endif

/* Columns per chunk: whole tiles, about 8 chunks per thread (all columns for one). */
static size_t
chunk_columns(size_t out, size_t tile, int threads)
{
	size_t		tiles = (out + tile - 1) / tile;
	size_t		per = threads > 1 ? tiles / (8 * (size_t) threads) : tiles;

	return (per > 0 ? per : 1) * tile;
}

/* At most t threads, fewer while a thread's share of `flops` is under
 * min_share FLOPs. */
static int
threads_worth(int t, double flops, double min_share)
{
	while (t > 1 && flops / t < min_share)
		t--;
	return t;
}

/* Threads for a product of `flops` with `blocks` column blocks. */
static int
threads_for(double flops, size_t blocks)
{
	/* below ~1 MFLOP a share is a few microseconds: waking a helper costs as much */
	int			t = threads_worth(cb_kernel_threads(), flops, 5e5);

	while (t > 1 && blocks < (size_t) (2 * t))
		t--;
	return t;
}

/* cb_kernel_parallel_for's job: items from a counter, a worker number per thread */
typedef struct item_job
{
	cb_kernel_item_fn fn;
	void	   *arg;
	size_t		items;
	int			workers;
	atomic_size_t next;
	atomic_int	joined;
} item_job;

static void
item_part(void *arg)
{
	item_job   *jb = arg;
	int			worker = atomic_fetch_add(&jb->joined, 1);
	size_t		i;

	if (worker >= jb->workers)
		return;					/* cannot happen: the pool admits workers - 1 helpers */
	while ((i = atomic_fetch_add(&jb->next, 1)) < jb->items)
		jb->fn(jb->arg, i, worker);
}

#endif							/* CB_HAVE_X86_KERNELS: the pool and the drivers */

static int	kernel_threads = 0;	/* 0: follow OpenBLAS's setting */

void
cb_kernel_set_threads(int threads)
{
	kernel_threads = threads;
}

int
cb_kernel_threads(void)
{
	int			t;

	if (current_isa() == MM_ISA_BLAS)
		return 1;
	t = kernel_threads > 0 ? kernel_threads : openblas_get_num_threads();
	return t < 1 ? 1 : (t > MM_MAX_THREADS ? MM_MAX_THREADS : t);
}

/* A worker of cb_kernel_parallel_for gets at least this many FLOPs (a share
 * below ~1 MFLOP costs about what waking a helper does).  The unit tests'
 * ThreadSanitizer build uses 0, so that the small test models run the
 * parallel paths too. */
#ifndef CB_PARALLEL_MIN_FLOPS
#define CB_PARALLEL_MIN_FLOPS 1e6
#endif

void
cb_kernel_parallel_for(size_t items, int workers, double flops, cb_kernel_item_fn fn, void *arg)
{
#ifdef CB_HAVE_X86_KERNELS
	workers = threads_worth(workers, flops, CB_PARALLEL_MIN_FLOPS);
	if (workers > 1 && items > 1 && current_isa() != MM_ISA_BLAS)
	{
		item_job	jb = {fn, arg, items, workers, 0, 0};

		pool_run(item_part, &jb, (size_t) workers < items ? workers : (int) items);
		return;
	}
#endif
	(void) workers;
	(void) flops;
	for (size_t i = 0; i < items; i++)
		fn(arg, i, 0);
}

size_t
cb_kernel_matmul_pack_floats(size_t n, size_t in)
{
	size_t		rows = n < MM_PACK_ROWS ? n : MM_PACK_ROWS;

	/* 32-row blocks; + 16 floats to align the start */
	rows = (rows + MM_PACK_BLOCK - 1) / MM_PACK_BLOCK * MM_PACK_BLOCK;
	return rows * in + 16;
}

void
cb_kernel_matmul_nt(const float *x, size_t ldx, const float *w, size_t ldw,
					const float *bias, float alpha, float *y, size_t ldy,
					size_t n, size_t out, size_t in, float *pack)
{
	mm_isa		isa = current_isa();

	if (n == 0 || out == 0)
		return;
	if (isa == MM_ISA_BLAS)
	{
		float		beta = 0.0f;

		if (bias != NULL)
		{
			for (size_t r = 0; r < n; r++)
				memcpy(y + r * ldy, bias, out * sizeof(float));
			beta = 1.0f;
		}
		if (in == 0)
		{
			if (bias == NULL)
				for (size_t r = 0; r < n; r++)
					memset(y + r * ldy, 0, out * sizeof(float));
			return;
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int) n, (int) out, (int) in,
					alpha, x, (int) ldx, w, (int) ldw, beta, y, (int) ldy);
		return;
	}
#ifdef CB_HAVE_X86_KERNELS
	{
		mm_job		jb = {x, ldx, w, ldw, bias, alpha, y, ldy, n, out, in, isa, NULL, 0, 0, 0, 0};
		int			threads;

		if (isa == MM_ISA_AVX512 && pack != NULL && n >= MM_PACK_MIN_ROWS && in > 0)
		{
			float	   *xt = (float *) (((uintptr_t) pack + 63) & ~(uintptr_t) 63);

			threads = threads_for(2.0 * (double) (n < MM_PACK_ROWS ? n : MM_PACK_ROWS) *
								  (double) out * (double) in, (out + OP_MR - 1) / OP_MR);
			jb.xt = xt;
			jb.chunk = chunk_columns(out, OP_MR, threads);
			for (size_t g0 = 0; g0 < n; g0 += MM_PACK_ROWS)
			{
				jb.g0 = g0;
				jb.g = n - g0 < MM_PACK_ROWS ? n - g0 : MM_PACK_ROWS;
				atomic_store(&jb.next, 0);
				op_pack_512(x + g0 * ldx, ldx, jb.g, in, xt);
				pool_run(op_part, &jb, threads);
			}
			return;
		}
		threads = threads_for(2.0 * (double) n * (double) out * (double) in, (out + 5) / 6);
		jb.chunk = chunk_columns(out, isa == MM_ISA_AVX512 ? 6 : 3, threads);
		atomic_store(&jb.next, 0);
		pool_run(nt_part, &jb, threads);
	}
#else
	(void) pack;
#endif
}

void
cb_kernel_matmul_nn(const float *p, size_t ldp, const float *v, size_t ldv,
					float *y, size_t ldy, size_t n, size_t out, size_t in)
{
	mm_isa		isa = current_isa();

	if (n == 0 || out == 0)
		return;
	if (in == 0)
	{
		for (size_t r = 0; r < n; r++)
			memset(y + r * ldy, 0, out * sizeof(float));
		return;
	}
#ifdef CB_HAVE_X86_KERNELS
	if (isa != MM_ISA_BLAS)
	{
		const nn_tile_fn *tiles = isa == MM_ISA_AVX512 ? &nn512_tiles[0][0] : &nn256_tiles[0][0];
		size_t		lanes = isa == MM_ISA_AVX512 ? 16 : 8;
		size_t		nv_max = isa == MM_ISA_AVX512 ? 4 : 2;
		size_t		span = lanes * nv_max;

		for (size_t c = 0; c < out; c += span)
		{
			size_t		cols = out - c < span ? out - c : span;
			size_t		nv = (cols + lanes - 1) / lanes;

			for (size_t i = 0; i < n; i += 4)
			{
				size_t		mr = n - i < 4 ? n - i : 4;

				tiles[(mr - 1) * nv_max + (nv - 1)] (p + i * ldp, ldp, v + c, ldv, in,
													 y + i * ldy + c, ldy, cols);
			}
		}
		return;
	}
#else
	(void) isa;
#endif
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) n, (int) out, (int) in,
				1.0f, p, (int) ldp, v, (int) ldv, 0.0f, y, (int) ldy);
}
