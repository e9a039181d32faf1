/*
 * test_matrix_bf16.c — the 16-bit float conversions of matrix.c, the
 * encodings of CB_MATRIX_F16 / BF16 / BF16_PACKED, and the
 * CB_MATRIX_BF16_PACKED product on every code path this CPU allows.
 *
 *   Conversions: cb_f32_to_bf16 / cb_f32_to_f16 against this file's own
 *   rounding, done in double precision from the definition (nearest value,
 *   ties to the even significand, f16 overflow to infinity from 65520 up,
 *   subnormals), on chosen edge cases and a million random bit patterns;
 *   cb_f16_to_f32 on all 65536 values and cb_bf16_to_f32 against a decoding
 *   from the fields (ldexp).
 *
 *   Encodings: the packed layout formula of matrix.h, zero padding,
 *   encoding in pieces, cb_matrix_row.
 *
 *   Products (matmul_bf16.h promises that every path sums in vdpbf16ps's
 *   order): each path against
 *     1. this file's scalar emulation of that order (bit-identical), and
 *     2. the double-precision product of the bf16-rounded x and W: the
 *        products are exact, so the float32 sum of k terms (k = cols + 1
 *        with the bias; the first addition, to 0, is exact) lies within
 *        gamma_k * sum |terms| of it, gamma_k = k u / (1 - k u), u = 2^-24
 *        (Higham, recursive summation).
 *   Shapes with rows not a multiple of 16, odd cols, n from 1 to a few
 *   hundred (across the driver's groups of 256 tokens), strides beyond the
 *   shape (the gaps must stay untouched), NULL bias, NaN and denormal
 *   activations, scratch at an odd address, 1 to 4 threads.
 *
 * `make unit` runs it once per code path and thread count
 * (CAMEMBERT_KERNELS=avx512|avx2|blas x OPENBLAS_NUM_THREADS=1|2) and under
 * ThreadSanitizer with 4 threads; the AVX-512F path without AVX512_BF16 is
 * run directly (matmul_bf16.h) whenever the CPU has AVX-512F.
 */
#include "cpu_features.h"
#include "kernels.h"
#include "matmul_bf16.h"
#include "matrix.h"
#include "matrix_kernels.h"
#include "unit.h"
#include "support/ut_compute.h"

#include <stdbool.h>
#include <stdint.h>

/* the products' thread count: the tests' (ut_threads), or test_threads' own */
static int	threads_now = 1;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t
next_u64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static float
uniform(void)					/* [-1, 1) */
{
	return (float) ((double) (next_u64() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static uint32_t
f32_bits(float f)
{
	uint32_t	u;

	memcpy(&u, &f, 4);
	return u;
}

static float
bits_f32(uint32_t u)
{
	float		f;

	memcpy(&f, &u, 4);
	return f;
}

static bool
same_bits(float a, float b)
{
	return f32_bits(a) == f32_bits(b);
}

/* ---- conversions ------------------------------------------------------------ */

/*
 * The bits of the nearest value of a binary format with `mant` stored
 * significand bits, exponent bias `bias` and largest finite exponent `emax`,
 * to the finite, non-NaN x: round |x| / ulp to an integer, ties to even
 * (nearbyint in the default rounding mode), in double precision, where every
 * step is exact for float inputs.
 */
static uint32_t
ref_round(double x, int mant, int bias, int emax)
{
	uint32_t	sign = signbit(x) ? 1u << (mant + (bias == 127 ? 8 : 5)) : 0;
	int			ebits = bias == 127 ? 8 : 5;
	double		a = fabs(x),
				q,
				v,
				ulp;
	int			e;

	if (a == 0)
		return sign;
	if (isinf(a))
		return sign | (((1u << ebits) - 1) << mant);
	e = ilogb(a);
	if (e < 1 - bias)
		e = 1 - bias;			/* subnormal range: the ulp of the smallest exponent */
	ulp = ldexp(1.0, e - mant);
	q = nearbyint(a / ulp);
	v = q * ulp;
	if (v == 0)
		return sign;
	e = ilogb(v);
	if (e > emax)				/* past the largest finite value: infinity */
		return sign | (((1u << ebits) - 1) << mant);
	if (e < 1 - bias)			/* subnormal */
		return sign | (uint32_t) (v / ldexp(1.0, 1 - bias - mant));
	return sign | ((uint32_t) (e + bias) << mant) | ((uint32_t) (v / ldexp(1.0, e - mant)) - (1u << mant));
}

static uint16_t
ref_bf16(float f)
{
	return (uint16_t) ref_round(f, 7, 127, 127);
}

static uint16_t
ref_f16(float f)
{
	return (uint16_t) ref_round(f, 10, 15, 15);
}

/* a 16-bit float decoded from its fields */
static double
ref_decode(uint16_t h, int mant, int bias)
{
	int			ebits = bias == 127 ? 8 : 5;
	int			e = (h >> mant) & ((1 << ebits) - 1);
	int			m = h & ((1 << mant) - 1);
	double		s = (h >> 15) ? -1.0 : 1.0;

	if (e == (1 << ebits) - 1)
		return m ? NAN : s * INFINITY;
	if (e == 0)
		return s * ldexp(m, 1 - bias - mant);
	return s * ldexp(m + (1 << mant), e - bias - mant);
}

static void
test_bf16_rounding(void)
{
	/* edge cases: float bits -> expected bf16 */
	static const uint32_t cases[][2] = {
		{0x3F800000, 0x3F80},	/* 1 */
		{0x3F808000, 0x3F80},	/* 1 + half an ulp: tie, to even (down) */
		{0x3F818000, 0x3F82},	/* tie, to even (up) */
		{0x3F808001, 0x3F81},	/* just above the tie */
		{0x3F807FFF, 0x3F80},	/* just below */
		{0xBF818000, 0xBF82},	/* negative tie */
		{0x00000000, 0x0000},
		{0x80000000, 0x8000},
		{0x7F800000, 0x7F80},	/* inf */
		{0xFF800000, 0xFF80},
		{0x7F7FFFFF, 0x7F80},	/* FLT_MAX rounds past the largest bf16: inf */
		{0x7F7F7FFF, 0x7F7F},	/* just below the tie under it */
		{0x7F7F8000, 0x7F80},	/* the tie: to even, infinity */
		{0x00000001, 0x0000},	/* the smallest subnormal rounds to 0 */
		{0x00008000, 0x0000},	/* tie at the bottom: to even, 0 */
		{0x00018000, 0x0002},	/* subnormal tie, up to even */
		{0x00400000, 0x0040},	/* subnormal, exact */
		{0x007FFFFF, 0x0080},	/* largest subnormal rounds up to the smallest normal */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		float		f = bits_f32(cases[i][0]);

		CHECK_MSG(cb_f32_to_bf16(f) == cases[i][1], "bf16(%08x) = %04x, expected %04x",
				  (unsigned) cases[i][0], cb_f32_to_bf16(f), (unsigned) cases[i][1]);
		CHECK_MSG(ref_bf16(f) == cases[i][1], "reference bf16(%08x) = %04x", (unsigned) cases[i][0],
				  ref_bf16(f));
	}
	/* NaN stays NaN, sign kept */
	for (int s = 0; s < 2; s++)
	{
		static const uint32_t nans[] = {0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0x7F810000, 0x7F80FFFF};

		for (size_t i = 0; i < sizeof(nans) / sizeof(nans[0]); i++)
		{
			uint16_t	h = cb_f32_to_bf16(bits_f32(nans[i] | (s ? 0x80000000u : 0)));

			CHECK_MSG((h & 0x7F80) == 0x7F80 && (h & 0x7F) != 0 && (h >> 15) == s,
					  "bf16(NaN %08x) = %04x", (unsigned) nans[i], h);
		}
	}
	/* random bit patterns */
	{
		int			bad = 0;

		for (int i = 0; i < 1000000; i++)
		{
			uint32_t	u = (uint32_t) next_u64();
			float		f = bits_f32(u);

			if (isnan(f))
				continue;
			if (cb_f32_to_bf16(f) != ref_bf16(f) && bad++ < 5)
				UNIT_FAIL("bf16(%08x) = %04x, reference %04x", (unsigned) u, cb_f32_to_bf16(f), ref_bf16(f));
		}
		CHECK(bad == 0);
	}
	/* widening: every value, from the fields */
	{
		int			bad = 0;

		for (uint32_t h = 0; h < 65536; h++)
		{
			double		ref = ref_decode((uint16_t) h, 7, 127);
			float		got = cb_bf16_to_f32((uint16_t) h);

			if (isnan(ref) ? !isnan(got) : ((double) got != ref || !signbit(got) != !signbit(ref)))
				bad++;
			else if (!isnan(ref) && cb_f32_to_bf16(got) != h)	/* exact: back to the same bits */
				bad++;
		}
		CHECK_EQ_INT(bad, 0);
	}
}

static void
test_f16_rounding(void)
{
	static const uint32_t cases[][2] = {
		{0x3F800000, 0x3C00},	/* 1 */
		{0x3F801000, 0x3C00},	/* tie, to even (down) */
		{0x3F803000, 0x3C02},	/* tie, to even (up) */
		{0x3F801001, 0x3C01},
		{0x477FE000, 0x7BFF},	/* 65504, the largest */
		{0x477FEFFF, 0x7BFF},	/* just below 65520 */
		{0x477FF000, 0x7C00},	/* 65520: the tie, to even, infinity */
		{0x47800000, 0x7C00},	/* 65536 */
		{0x7F7FFFFF, 0x7C00},	/* FLT_MAX */
		{0xC77FF000, 0xFC00},
		{0x7F800000, 0x7C00},
		{0x38800000, 0x0400},	/* 2^-14, the smallest normal */
		{0x387FE000, 0x0400},	/* largest subnormal + half an ulp: tie, to even (up, normal) */
		{0x387FC000, 0x03FF},	/* the largest subnormal */
		{0x33800000, 0x0001},	/* 2^-24, the smallest subnormal */
		{0x33000000, 0x0000},	/* 2^-25: tie, to even, 0 */
		{0x33000001, 0x0001},	/* just above: up */
		{0x33C00000, 0x0002},	/* 1.5 * 2^-24: tie, to even (up) */
		{0x34200000, 0x0002},	/* 2.5 * 2^-24: tie, to even (down) */
		{0x00000001, 0x0000},	/* float32 subnormal */
		{0x80000000, 0x8000},
		{0xB3800000, 0x8001},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		float		f = bits_f32(cases[i][0]);

		CHECK_MSG(cb_f32_to_f16(f) == cases[i][1], "f16(%08x) = %04x, expected %04x",
				  (unsigned) cases[i][0], cb_f32_to_f16(f), (unsigned) cases[i][1]);
		CHECK_MSG(ref_f16(f) == cases[i][1], "reference f16(%08x) = %04x", (unsigned) cases[i][0],
				  ref_f16(f));
	}
	for (int s = 0; s < 2; s++)
	{
		static const uint32_t nans[] = {0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0x7F802000};

		for (size_t i = 0; i < sizeof(nans) / sizeof(nans[0]); i++)
		{
			uint16_t	h = cb_f32_to_f16(bits_f32(nans[i] | (s ? 0x80000000u : 0)));

			CHECK_MSG((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0 && (h >> 15) == s,
					  "f16(NaN %08x) = %04x", (unsigned) nans[i], h);
		}
	}
	{
		int			bad = 0;

		for (int i = 0; i < 1000000; i++)
		{
			/* half the patterns near f16's range, where the rounding happens */
			uint32_t	u = (uint32_t) next_u64();
			float		f;

			if (i % 2)
				u = (u & 0x80FFFFFFu) | ((uint32_t) (0x30 + (u >> 24) % 0x18) << 24);
			f = bits_f32(u);
			if (isnan(f))
				continue;
			if (cb_f32_to_f16(f) != ref_f16(f) && bad++ < 5)
				UNIT_FAIL("f16(%08x) = %04x, reference %04x", (unsigned) u, cb_f32_to_f16(f), ref_f16(f));
		}
		CHECK(bad == 0);
	}
	/* widening: all 65536 values, from the fields; NaN payloads kept */
	{
		int			bad = 0;

		for (uint32_t h = 0; h < 65536; h++)
		{
			double		ref = ref_decode((uint16_t) h, 10, 15);
			float		got = cb_f16_to_f32((uint16_t) h);

			if (isnan(ref))
			{
				if (!isnan(got) || ((f32_bits(got) >> 13) & 0x3FF) != (h & 0x3FF) ||
					(f32_bits(got) >> 31) != (h >> 15))
					bad++;
			}
			else if ((double) got != ref || !signbit(got) != !signbit(ref) || cb_f32_to_f16(got) != h)
				bad++;
		}
		CHECK_EQ_INT(bad, 0);
	}
}

/* ---- encodings --------------------------------------------------------------- */

static void *
alloc_blob(cb_matrix_format f, size_t rows, size_t cols)
{
	size_t		bytes = cb_matrix_blob_bytes(f, rows, cols);
	void	   *p = aligned_alloc(64, (bytes + 63) / 64 * 64);

	memset(p, 0xA5, (bytes + 63) / 64 * 64);	/* the encoder must write the padding */
	return p;
}

static void
test_encodings(void)
{
	static const size_t shapes[][2] = {{1, 1}, {15, 3}, {16, 2}, {17, 33}, {40, 64}, {33, 7}};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
	{
		size_t		rows = shapes[s][0],
					cols = shapes[s][1],
					cols2 = (cols + 1) / 2 * 2,
					rows16 = (rows + 15) / 16 * 16;
		float	   *w = malloc(rows * cols * sizeof(float));
		float	   *row = malloc(cols * sizeof(float));
		int			bad = 0;

		for (size_t i = 0; i < rows * cols; i++)
			w[i] = uniform() * 3.0f;
		CHECK_EQ_INT(cb_matrix_blob_bytes(CB_MATRIX_BF16_PACKED, rows, cols), rows16 * cols2 * 2);
		CHECK_EQ_INT(cb_matrix_blob_bytes(CB_MATRIX_F16, rows, cols), rows * cols * 2);
		CHECK_EQ_INT(cb_matrix_blob_bytes(CB_MATRIX_BF16, rows, cols), rows * cols * 2);

		/* packed: whole, and in pieces of 16 rows encoded last to first */
		{
			uint16_t   *a = alloc_blob(CB_MATRIX_BF16_PACKED, rows, cols),
					   *b = alloc_blob(CB_MATRIX_BF16_PACKED, rows, cols);
			cb_matrix	m = cb_matrix_view(CB_MATRIX_BF16_PACKED, rows, cols, a);

			cb_matrix_encode_rows(CB_MATRIX_BF16_PACKED, rows, cols, a, 0, rows, w);
			for (size_t r0 = (rows - 1) / 16 * 16 + 16; r0 > 0; r0 -= 16)
			{
				size_t		start = r0 - 16,
							nr = rows - start < 16 ? rows - start : 16;

				cb_matrix_encode_rows(CB_MATRIX_BF16_PACKED, rows, cols, b, start, nr, w + start * cols);
			}
			CHECK(memcmp(a, b, cb_matrix_blob_bytes(CB_MATRIX_BF16_PACKED, rows, cols)) == 0);
			for (size_t r = 0; r < rows16; r++)
				for (size_t c = 0; c < cols2; c++)
				{
					uint16_t	got = a[((r / 16) * (cols2 / 2) + c / 2) * 32 + (r % 16) * 2 + c % 2];
					uint16_t	want = r < rows && c < cols ? ref_bf16(w[r * cols + c]) : 0;

					if (got != want)
						bad++;
				}
			for (size_t r = 0; r < rows; r++)
			{
				cb_matrix_row(&m, r, row);
				for (size_t c = 0; c < cols; c++)
					if (!same_bits(row[c], cb_bf16_to_f32(ref_bf16(w[r * cols + c]))))
						bad++;
			}
			free(a);
			free(b);
		}
		/* as stored: row-major 16-bit values */
		for (int f = 0; f < 2; f++)
		{
			cb_matrix_format fmt = f ? CB_MATRIX_F16 : CB_MATRIX_BF16;
			uint16_t   *a = alloc_blob(fmt, rows, cols);
			cb_matrix	m = cb_matrix_view(fmt, rows, cols, a);

			cb_matrix_encode_rows(fmt, rows, cols, a, 0, rows / 2, w);
			cb_matrix_encode_rows(fmt, rows, cols, a, rows / 2, rows - rows / 2, w + rows / 2 * cols);
			for (size_t r = 0; r < rows; r++)
			{
				cb_matrix_row(&m, r, row);
				for (size_t c = 0; c < cols; c++)
				{
					uint16_t	want = f ? ref_f16(w[r * cols + c]) : ref_bf16(w[r * cols + c]);
					float		wide = f ? cb_f16_to_f32(want) : cb_bf16_to_f32(want);

					if (a[r * cols + c] != want || !same_bits(row[c], wide))
						bad++;
				}
			}
			free(a);
		}
		CHECK_MSG(bad == 0, "encodings %zux%zu: %d wrong", rows, cols, bad);
		free(w);
		free(row);
	}
}

/* ---- products ------------------------------------------------------------------ */

/* A product's inputs: W packed, x with a stride, the bias (or NULL). */
typedef struct problem
{
	size_t		n,
				rows,
				cols,
				ldx,
				ldy;
	float	   *x,
			   *bias;
	uint16_t   *blob;
	cb_matrix	m;
} problem;

static problem
make_problem(size_t n, size_t rows, size_t cols, bool with_bias, float scale)
{
	problem		p;
	float	   *w = malloc((rows * cols + 1) * sizeof(float));

	p.n = n;
	p.rows = rows;
	p.cols = cols;
	p.ldx = cols + 3;
	p.ldy = rows + 5;
	p.x = malloc((n * p.ldx + 1) * sizeof(float));
	for (size_t i = 0; i < n * p.ldx + 1; i++)
		p.x[i] = uniform() * scale;
	for (size_t i = 0; i < rows * cols; i++)
		w[i] = uniform();
	p.bias = NULL;
	if (with_bias)
	{
		p.bias = malloc(rows * sizeof(float));
		for (size_t j = 0; j < rows; j++)
			p.bias[j] = uniform() * 4.0f;
	}
	p.blob = alloc_blob(CB_MATRIX_BF16_PACKED, rows, cols);
	cb_matrix_encode_rows(CB_MATRIX_BF16_PACKED, rows, cols, p.blob, 0, rows, w);
	p.m = cb_matrix_view(CB_MATRIX_BF16_PACKED, rows, cols, p.blob);
	free(w);
	return p;
}

static void
free_problem(problem *p)
{
	free(p->x);
	free(p->bias);
	free(p->blob);
}

/* W[j][c] from the blob, by matrix.h's formula (0 past cols) */
static float
weight(const problem *p, size_t j, size_t c)
{
	size_t		cols2 = (p->cols + 1) / 2 * 2;

	if (c >= p->cols)
		return 0.0f;
	return cb_bf16_to_f32(p->blob[((j / 16) * (cols2 / 2) + c / 2) * 32 + (j % 16) * 2 + c % 2]);
}

/* x rounded as the products round it (zeros and denormals to zero) */
static float
act(const problem *p, size_t i, size_t c)
{
	float		v;

	if (c >= p->cols)
		return 0.0f;
	v = p->x[i * p->ldx + c];
	if (fpclassify(v) == FP_SUBNORMAL)
		return copysignf(0.0f, v);
	return cb_bf16_to_f32(cb_f32_to_bf16(v));
}

/* The documented order, in scalar float arithmetic. */
static float
emulate(const problem *p, size_t i, size_t j)
{
	volatile float acc = 0.0f;

	for (size_t c = 0; c < p->cols; c += 2)
	{
		acc = acc + act(p, i, c + 1) * weight(p, j, c + 1);
		acc = acc + act(p, i, c) * weight(p, j, c);
	}
	return p->bias != NULL ? acc + p->bias[j] : acc;
}

/*
 * Run the product on path k (NULL: cb_matrix_product) and check every
 * output against the emulation (bits) and the double product (bound); the
 * gaps of y (ldy > rows) and the float after it stay untouched.  Returns the
 * number of failures.
 */
static int
check_product(const problem *p, const cb_bf16_kernel *k, const char *what)
{
	size_t		scratch_bytes = cb_matrix_product_scratch(&p->m, p->n, threads_now);
	char	   *scratch = malloc(scratch_bytes + 1);
	float	   *y = malloc((p->n * p->ldy + 1) * sizeof(float));
	int			bad = 0;
	const double u = ldexp(1.0, -24);
	double		k_terms = (double) p->cols + 1;
	double		gamma = k_terms * u / (1 - k_terms * u);

	for (size_t i = 0; i < p->n * p->ldy + 1; i++)
		y[i] = -7.25f;
	/* scratch at an odd address: any alignment must do */
	if (k != NULL)
		cb_bf16_product_on(k, p->x, p->ldx, &p->m, p->bias, y, p->ldy, p->n, scratch + 1, threads_now);
	else
		cb_matrix_product(p->x, p->ldx, &p->m, p->bias, y, p->ldy, p->n, scratch + 1, threads_now);
	for (size_t i = 0; i < p->n; i++)
		for (size_t j = 0; j < p->ldy; j++)
		{
			float		got = y[i * p->ldy + j];

			if (j >= p->rows)
			{
				if (got != -7.25f && bad++ < 3)
					UNIT_FAIL("%s: y[%zu][%zu] past the rows written", what, i, j);
				continue;
			}
			{
				float		want = emulate(p, i, j);
				double		ref = p->bias != NULL ? p->bias[j] : 0.0,
							mag = p->bias != NULL ? fabs(p->bias[j]) : 0.0;

				for (size_t c = 0; c < p->cols; c++)
				{
					double		t = (double) act(p, i, c) * weight(p, j, c);

					ref += t;
					mag += fabs(t);
				}
				if (!same_bits(got, want) && bad++ < 3)
					UNIT_FAIL("%s: y[%zu][%zu] = %.9g, emulation %.9g", what, i, j, (double) got, (double) want);
				if (!(fabs((double) got - ref) <= gamma * mag) && bad++ < 3)
					UNIT_FAIL("%s: y[%zu][%zu] = %.9g, exact %.9g, bound %.3g", what, i, j, (double) got, ref,
							  gamma * mag);
			}
		}
	if (y[p->n * p->ldy] != -7.25f)
		bad++;
	free(scratch);
	free(y);
	return bad;
}

/* the paths this CPU allows (cb_cpu(): narrowed by CAMEMBERT_KERNELS) */
static const char *const path_names[] = {"avx512-bf16", "avx512", "avx2", "portable"};

#define NPATHS (sizeof(path_names) / sizeof(path_names[0]))

static void
test_path_names(void)
{
	const cb_cpu_features *f = cb_cpu();
	const char *want = f->avx512_bf16 ? "avx512-bf16" : f->avx512 ? "avx512" : f->avx2 ? "avx2" : "portable";

	CHECK_EQ_STR(cb_matrix_path(CB_MATRIX_BF16_PACKED), want);
	CHECK_EQ_STR(cb_bf16_path(), want);
	CHECK(cb_bf16_kernel_named("portable") != NULL);
	CHECK((cb_bf16_kernel_named("avx512-bf16") != NULL) == f->avx512_bf16);
	CHECK((cb_bf16_kernel_named("avx512") != NULL) == f->avx512);
	CHECK((cb_bf16_kernel_named("avx2") != NULL) == f->avx2);
	CHECK(cb_bf16_kernel_named("sse") == NULL);
}

static void
test_products(void)
{
	static const size_t rows_[] = {1, 15, 16, 17, 33, 64, 65, 100};
	static const size_t cols_[] = {1, 2, 3, 31, 32, 33, 64, 101};
	static const size_t ns[] = {1, 2, 3, 5, 6, 7, 12, 13, 25};

	for (size_t a = 0; a < sizeof(rows_) / sizeof(rows_[0]); a++)
		for (size_t b = 0; b < sizeof(cols_) / sizeof(cols_[0]); b++)
		{
			size_t		n = ns[(a + b) % (sizeof(ns) / sizeof(ns[0]))];
			problem		p = make_problem(n, rows_[a], cols_[b], (a + b) % 3 != 0, 2.0f);

			for (size_t q = 0; q < NPATHS; q++)
			{
				const cb_bf16_kernel *k = cb_bf16_kernel_named(path_names[q]);
				char		what[128];

				if (k == NULL)
					continue;
				snprintf(what, sizeof(what), "%s n=%zu rows=%zu cols=%zu bias=%d", k->name, n,
						 p.rows, p.cols, p.bias != NULL);
				CHECK_MSG(check_product(&p, k, what) == 0, "%s", what);
			}
			free_problem(&p);
		}
}

/* n from 1 to 300 on one shape (every tile height, and past one group of
 * 256 tokens), and large products (k in several chunks, several groups) */
static void
test_products_n(void)
{
	for (size_t n = 1; n <= 300; n += (n < 40 ? 1 : 37))
	{
		problem		p = make_problem(n, 37, 45, n % 2 == 0, 1.0f);
		char		what[64];

		snprintf(what, sizeof(what), "cb_matrix_product n=%zu", n);
		CHECK_MSG(check_product(&p, NULL, what) == 0, "%s", what);
		free_problem(&p);
	}
	{
		static const size_t shapes[][3] = {{520, 50, 40}, {70, 130, 801}, {3, 200, 1536}, {257, 97, 33}};

		for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		{
			problem		p = make_problem(shapes[s][0], shapes[s][1], shapes[s][2], s % 2 == 0, 1.0f);

			for (size_t q = 0; q < NPATHS; q++)
			{
				const cb_bf16_kernel *k = cb_bf16_kernel_named(path_names[q]);
				char		what[128];

				if (k == NULL)
					continue;
				snprintf(what, sizeof(what), "%s n=%zu rows=%zu cols=%zu", k->name, p.n, p.rows, p.cols);
				CHECK_MSG(check_product(&p, k, what) == 0, "%s", what);
			}
			free_problem(&p);
		}
	}
}

/* The same bits on 1 to 4 threads (each output's sums never depend on how
 * the columns are shared). */
static void
test_threads(void)
{
	problem		p = make_problem(150, 300, 130, true, 1.0f);
	float	   *y1 = malloc(p.n * p.ldy * sizeof(float));
	float	   *yt = malloc(p.n * p.ldy * sizeof(float));

	for (int t = 1; t <= 4; t++)
	{
		char	   *scratch;

		threads_now = t;
		scratch = malloc(cb_matrix_product_scratch(&p.m, p.n, threads_now));
		memset(yt, 0, p.n * p.ldy * sizeof(float));
		cb_matrix_product(p.x, p.ldx, &p.m, p.bias, t == 1 ? y1 : yt, p.ldy, p.n, scratch, threads_now);
		if (t > 1)
		{
			int			diff = 0;

			for (size_t i = 0; i < p.n; i++)
				diff += memcmp(y1 + i * p.ldy, yt + i * p.ldy, p.rows * sizeof(float)) != 0;
			CHECK_MSG(diff == 0, "threads=%d: %d rows differ from one thread's", t, diff);
		}
		{
			char		what[32];

			snprintf(what, sizeof(what), "threads=%d", t);
			CHECK_MSG(check_product(&p, NULL, what) == 0, "%s", what);
		}
		free(scratch);
	}
	threads_now = ut_threads();
	free(y1);
	free(yt);
	free_problem(&p);
}

/* NaN, infinities and denormals in x; cols = 0; n = 0. */
static void
test_special(void)
{
	for (size_t q = 0; q < NPATHS; q++)
	{
		const cb_bf16_kernel *k = cb_bf16_kernel_named(path_names[q]);

		if (k == NULL)
			continue;
		/* denormal activations count as zeros (as vcvtne2ps2bf16 rounds them):
		 * check_product's emulation and reference say so */
		{
			problem		p = make_problem(9, 40, 37, true, 1.0f);

			for (size_t i = 0; i < p.n; i++)
				for (size_t c = i % 3; c < p.cols; c += 3)
					p.x[i * p.ldx + c] = bits_f32((uint32_t) (next_u64() & 0x807FFFFFu));
			CHECK_MSG(check_product(&p, k, "denormal x") == 0, "%s: denormal x", k->name);
			free_problem(&p);
		}
		/* a NaN or an infinity in a row of x: that row all NaN or inf (the
		 * weights are never all zero over a pair here) */
		{
			problem		p = make_problem(6, 33, 10, false, 1.0f);
			size_t		scratch_bytes = cb_matrix_product_scratch(&p.m, p.n, threads_now);
			char	   *scratch = malloc(scratch_bytes);
			float	   *y = malloc(p.n * p.ldy * sizeof(float));
			int			bad = 0;

			p.x[1 * p.ldx + 4] = NAN;
			p.x[3 * p.ldx + 9] = INFINITY;
			cb_bf16_product_on(k, p.x, p.ldx, &p.m, p.bias, y, p.ldy, p.n, scratch, threads_now);
			for (size_t j = 0; j < p.rows; j++)
			{
				float		w = weight(&p, j, 9);

				bad += !isnan(y[1 * p.ldy + j]);
				if (w != 0)
					bad += !(isinf(y[3 * p.ldy + j]) && (y[3 * p.ldy + j] > 0) == (w > 0));
				bad += !isfinite(y[0 * p.ldy + j]) || !isfinite(y[2 * p.ldy + j]);
			}
			CHECK_MSG(bad == 0, "%s: NaN / inf in x: %d wrong", k->name, bad);
			free(scratch);
			free(y);
			free_problem(&p);
		}
	}
	/* cols = 0: y = bias (or 0); n = 0: nothing written */
	{
		float		x[2] = {1, 2},
					bias[3] = {0.5f, -1.0f, 2.0f},
					y[6];
		void	   *blob = alloc_blob(CB_MATRIX_BF16_PACKED, 3, 0);
		cb_matrix	m;
		char	   *scratch;

		cb_matrix_encode_rows(CB_MATRIX_BF16_PACKED, 3, 0, blob, 0, 3, x);
		m = cb_matrix_view(CB_MATRIX_BF16_PACKED, 3, 0, blob);
		scratch = malloc(cb_matrix_product_scratch(&m, 2, threads_now) + 1);
		for (int i = 0; i < 6; i++)
			y[i] = 9;
		cb_matrix_product(x, 1, &m, bias, y, 3, 2, scratch, threads_now);
		CHECK(y[0] == 0.5f && y[1] == -1.0f && y[2] == 2.0f && y[3] == 0.5f && y[5] == 2.0f);
		cb_matrix_product(x, 1, &m, NULL, y, 3, 2, scratch, threads_now);
		CHECK(y[0] == 0.0f && y[4] == 0.0f);
		y[0] = 9;
		cb_matrix_product(x, 1, &m, bias, y, 3, 0, scratch, threads_now);
		CHECK(y[0] == 9.0f);
		free(scratch);
		free(blob);
	}
}


int
main(void)
{
	char		name[96];

#ifdef __SANITIZE_THREAD__
	const char *sanitizer = "_tsan";
#else
	const char *sanitizer = "";
#endif

	threads_now = ut_threads();
	snprintf(name, sizeof(name), "test_matrix_bf16_%s_threads_%s%s", cb_matrix_path(CB_MATRIX_BF16_PACKED),
			 ut_threads() > 1 ? "many" : "one", sanitizer);
	RUN(test_bf16_rounding);
	RUN(test_f16_rounding);
	RUN(test_encodings);
	RUN(test_path_names);
	RUN(test_products);
	RUN(test_products_n);
	RUN(test_threads);
	RUN(test_special);
	return unit_finish(name);
}
