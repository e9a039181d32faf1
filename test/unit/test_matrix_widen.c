/*
 * test_matrix_widen.c — products with CB_MATRIX_F16 / CB_MATRIX_BF16 weights
 * (kept as stored): matrix.h promises results bit-identical to the product
 * of the CB_MATRIX_F32 matrix holding the widened values, which is
 * cb_kernel_matmul_nt with its packing scratch.  Every output is compared
 * bit for bit with that product, computed on a matrix this file widens
 * itself (from the fields, see widen_ref), on:
 *
 *   n = 1 to 200 and large n (several packed groups of X); rows not a
 *   multiple of 12 or 16, below and above the blocks of 384 rows; odd
 *   columns; strides ldx / ldy beyond the shape (gaps untouched); NULL
 *   bias; 1 to 4 threads (the blocks then differ); every finite f16 and
 *   bf16 value (one-hot rows of X pick each weight out exactly);
 *   infinities and NaN in W.
 *
 * `make unit` runs it once per code path and thread count
 * (CAMEMBERT_KERNELS=avx512|avx2|blas x OPENBLAS_NUM_THREADS=1|2) and under
 * ThreadSanitizer with 4 threads.
 */
#include "kernels.h"
#include "matrix.h"
#include "unit.h"
#include "support/ut_compute.h"

#include <stdbool.h>
#include <stdint.h>

/* the products' thread count: the tests' (ut_threads), or test_threads' own */
static int	threads_now = 1;

static uint64_t rng = 0xD1B54A32D192ED03ULL;

static uint64_t
next_u64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static float
uniform(void)
{
	return (float) ((double) (next_u64() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* A 16-bit value widened from its fields, independently of matrix.c. */
static float
widen_ref(cb_matrix_format f, uint16_t h)
{
	int			mant = f == CB_MATRIX_F16 ? 10 : 7,
				bias = f == CB_MATRIX_F16 ? 15 : 127,
				ebits = f == CB_MATRIX_F16 ? 5 : 8;
	int			e = (h >> mant) & ((1 << ebits) - 1);
	int			m = h & ((1 << mant) - 1);
	float		s = (h >> 15) ? -1.0f : 1.0f;

	if (e == (1 << ebits) - 1)
		return m ? s * NAN : s * INFINITY;
	if (e == 0)
		return s * (float) ldexp(m, 1 - bias - mant);
	return s * (float) ldexp(m + (1 << mant), e - bias - mant);
}

typedef struct problem
{
	cb_matrix_format format;
	size_t		n,
				rows,
				cols,
				ldx,
				ldy;
	float	   *x,
			   *bias,
			   *wide;			/* the widened matrix, [rows][cols] */
	uint16_t   *blob;
	cb_matrix	m;
} problem;

/* W from 16-bit values: random in [-1, 1) unless `values` is given */
static problem
make_problem(cb_matrix_format f, size_t n, size_t rows, size_t cols, bool with_bias,
			 const uint16_t *values)
{
	problem		p;
	size_t		bytes = cb_matrix_blob_bytes(f, rows, cols);

	p.format = f;
	p.n = n;
	p.rows = rows;
	p.cols = cols;
	p.ldx = cols + 3;
	p.ldy = rows + 5;
	p.x = malloc((n * p.ldx + 1) * sizeof(float));
	for (size_t i = 0; i < n * p.ldx + 1; i++)
		p.x[i] = uniform();
	p.bias = NULL;
	if (with_bias)
	{
		p.bias = malloc(rows * sizeof(float));
		for (size_t j = 0; j < rows; j++)
			p.bias[j] = uniform();
	}
	p.blob = aligned_alloc(64, (bytes + 64) / 64 * 64);
	for (size_t i = 0; i < rows * cols; i++)
	{
		if (values != NULL)
			p.blob[i] = values[i];
		else
		{
			float		v = uniform();

			p.blob[i] = f == CB_MATRIX_F16 ? cb_f32_to_f16(v) : cb_f32_to_bf16(v);
		}
	}
	p.wide = malloc((rows * cols + 1) * sizeof(float));
	for (size_t i = 0; i < rows * cols; i++)
		p.wide[i] = widen_ref(f, p.blob[i]);
	p.m = cb_matrix_view(f, rows, cols, p.blob);
	return p;
}

static void
free_problem(problem *p)
{
	free(p->x);
	free(p->bias);
	free(p->wide);
	free(p->blob);
}

static bool
same(float a, float b)
{
	uint32_t	ua,
				ub;

	memcpy(&ua, &a, 4);
	memcpy(&ub, &b, 4);
	return ua == ub || (isnan(a) && isnan(b));
}

/*
 * cb_matrix_product on the 16-bit matrix against cb_kernel_matmul_nt on the
 * widened one: every output the same bits (NaN: any NaN), the gaps of y
 * untouched.  Returns the number of differences; y_out (if not NULL)
 * receives the product.
 */
static int
check(const problem *p, const char *what, float **y_out)
{
	size_t		ny = p->n * p->ldy + 1;
	float	   *y = malloc(ny * sizeof(float)),
			   *ref = malloc(ny * sizeof(float)),
			   *pack = malloc(cb_kernel_matmul_pack_floats(p->n, p->cols) * sizeof(float));
	char	   *scratch = malloc(cb_matrix_product_scratch(&p->m, p->n, threads_now) + 1);
	int			bad = 0;

	for (size_t i = 0; i < ny; i++)
		y[i] = ref[i] = -3.5f;
	cb_kernel_matmul_nt(p->x, p->ldx, p->wide, p->cols, p->bias, 1.0f, ref, p->ldy, p->n, p->rows,
						p->cols, pack, threads_now);
	cb_matrix_product(p->x, p->ldx, &p->m, p->bias, y, p->ldy, p->n, scratch + 1, threads_now);
	for (size_t i = 0; i < ny; i++)
		if (!(same(y[i], ref[i]) ||
			  /* the cblas path: equal up to float rounding (matmul_widen.c) */
			  (strcmp(cb_kernel_isa(), "blas") == 0 &&
			   fabs((double) y[i] - ref[i]) <= 4e-6 * (double) (p->cols + 1) * (1.0 + fabs((double) ref[i]))))
			&& bad++ < 3)
			UNIT_FAIL("%s: y[%zu][%zu] = %.9g, float32 product %.9g", what, i / p->ldy, i % p->ldy,
					  (double) y[i], (double) ref[i]);
	free(ref);
	free(pack);
	free(scratch);
	if (y_out != NULL)
		*y_out = y;
	else
		free(y);
	return bad;
}

static const cb_matrix_format formats[] = {CB_MATRIX_F16, CB_MATRIX_BF16};

static void
test_n(void)
{
	/* n = 1 to 200 on two shapes: rows across one block and across two */
	for (size_t f = 0; f < 2; f++)
		for (size_t n = 1; n <= 200; n++)
		{
			size_t		rows = n % 2 ? 37 : 29,
						cols = n % 3 ? 19 : 70;
			problem		p = make_problem(formats[f], n, rows, cols, n % 4 != 0, NULL);
			char		what[96];

			snprintf(what, sizeof(what), "%s n=%zu rows=%zu cols=%zu", cb_matrix_format_name(formats[f]), n,
					 rows, cols);
			CHECK_MSG(check(&p, what, NULL) == 0, "%s", what);
			free_problem(&p);
		}
}

static void
test_shapes(void)
{
	/* rows below, at and past the blocks (12-row and 384-row), odd columns,
	 * n on both sides of 13 (X packed or not), large n */
	static const size_t shapes[][3] = {
		{1, 1, 1}, {3, 13, 5}, {12, 24, 17}, {13, 25, 33}, {7, 385, 31}, {40, 385, 31},
		{12, 799, 21}, {64, 800, 67}, {2, 130, 769}, {20, 48, 1600}, {300, 61, 40},
		{700, 97, 129}, {129, 390, 9}, {5, 7, 0},
	};

	for (size_t f = 0; f < 2; f++)
		for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		{
			problem		p = make_problem(formats[f], shapes[s][0], shapes[s][1], shapes[s][2],
										 s % 3 != 1, NULL);
			char		what[96];

			snprintf(what, sizeof(what), "%s n=%zu rows=%zu cols=%zu", cb_matrix_format_name(formats[f]),
					 p.n, p.rows, p.cols);
			CHECK_MSG(check(&p, what, NULL) == 0, "%s", what);
			free_problem(&p);
		}
}

/* 1 to 4 threads: other blocks, the same bits */
static void
test_threads(void)
{
	static const size_t shapes[][3] = {{100, 390, 77}, {8, 400, 300}, {33, 1000, 50}};

	for (int t = 1; t <= 4; t++)
	{
		threads_now = t;
		for (size_t f = 0; f < 2; f++)
			for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
			{
				problem		p = make_problem(formats[f], shapes[s][0], shapes[s][1], shapes[s][2], s != 1,
											 NULL);
				char		what[96];

				snprintf(what, sizeof(what), "threads=%d %s n=%zu rows=%zu cols=%zu", t,
						 cb_matrix_format_name(formats[f]), p.n, p.rows, p.cols);
				CHECK_MSG(check(&p, what, NULL) == 0, "%s", what);
				free_problem(&p);
			}
	}
	threads_now = ut_threads();
}

/*
 * Every finite value of each format, once, in a matrix [256][cols]; X the
 * identity (n = cols): y[i][j] = W[j][i] exactly (the other terms are
 * zeros), so a value widened wrong shows as itself.
 */
static void
test_all_values(void)
{
	for (size_t f = 0; f < 2; f++)
	{
		cb_matrix_format fmt = formats[f];
		uint16_t   *values = malloc(65536 * sizeof(uint16_t));
		size_t		count = 0;
		float	   *y;
		int			bad = 0;

		for (uint32_t h = 0; h < 65536; h++)
			if (isfinite(widen_ref(fmt, (uint16_t) h)))
				values[count++] = (uint16_t) h;
		CHECK_EQ_INT(count, fmt == CB_MATRIX_F16 ? 63488 : 65280);
		{
			size_t		cols = count / 256;
			problem		p = make_problem(fmt, cols, 256, cols, false, values);

			for (size_t i = 0; i < p.n; i++)
				for (size_t k = 0; k < cols; k++)
					p.x[i * p.ldx + k] = i == k ? 1.0f : 0.0f;
			CHECK_MSG(check(&p, cb_matrix_format_name(fmt), &y) == 0, "%s: all values", cb_matrix_format_name(fmt));
			for (size_t i = 0; i < p.n; i++)
				for (size_t j = 0; j < p.rows; j++)
					if (y[i * p.ldy + j] != widen_ref(fmt, values[j * cols + i]))
						bad++;
			CHECK_MSG(bad == 0, "%s: %d values not picked out exactly", cb_matrix_format_name(fmt), bad);
			free(y);
			free_problem(&p);
		}
		free(values);
	}
}

/* infinities and NaN among the weights: the same infinities and NaN */
static void
test_nonfinite(void)
{
	for (size_t f = 0; f < 2; f++)
	{
		cb_matrix_format fmt = formats[f];
		uint16_t	inf = fmt == CB_MATRIX_F16 ? 0x7C00 : 0x7F80;
		problem		p = make_problem(fmt, 20, 30, 40, true, NULL);

		p.blob[3 * 40 + 7] = inf;
		p.blob[5 * 40 + 39] = inf | 0x8000;
		p.blob[11 * 40 + 0] = inf | 1;	/* NaN */
		p.blob[12 * 40 + 1] = inf | 0x8000 | 0x40;	/* NaN */
		for (size_t i = 0; i < 30 * 40; i++)
			p.wide[i] = widen_ref(fmt, p.blob[i]);
		CHECK(check(&p, "nonfinite", NULL) == 0);
		free_problem(&p);
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
	snprintf(name, sizeof(name), "test_matrix_widen_%s_threads_%s%s", cb_matrix_path(CB_MATRIX_F16),
			 ut_threads() > 1 ? "many" : "one", sanitizer);
	RUN(test_n);
	RUN(test_shapes);
	RUN(test_threads);
	RUN(test_all_values);
	RUN(test_nonfinite);
	return unit_finish(name);
}
