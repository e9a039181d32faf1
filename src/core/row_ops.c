/*
 * row_ops.c — the element- and row-wise float32 kernels of the forward pass
 * (see row_ops.h): GELU, tanh, bias, LayerNorm (alone or fused with bias and
 * residual), softmax, log-sum-exp, argmax.
 *
 * The hot ones (GELU, LayerNorm, softmax) are written with GCC/Clang vector
 * extensions on 4 floats (SSE2 on x86-64, NEON on arm64: no -m flag needed;
 * the compiler does not vectorize plain loops at -O2), and GELU and softmax
 * again on 16 floats in functions compiled for AVX-512, used when the CPU
 * has it (cpu_features.h).
 */
#include "row_ops.h"
#include "cpu_features.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* x86-64 with GCC or clang: the AVX-512 code in functions with target
 * attributes, used when the CPU has it (use_avx512()).
 * -DCB_NO_X86_KERNELS builds the portable code only. */
#ifdef CB_HAVE_X86_KERNELS
#define TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* true when AVX-512 is in use (the CPU has it, CAMEMBERT_KERNELS allows it) */
static bool
use_avx512(void)
{
	return cb_cpu()->avx512;
}
#endif

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
