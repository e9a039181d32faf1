/*
 * test_matrix_int8.c — CB_MATRIX_INT8_PACKED: the encoding (layout, scales,
 * sums, cb_matrix_row) and cb_matrix_product, against
 *
 *   1. this file's own reimplementation of matrix.h's int8 arithmetic, read
 *      from the blob with matrix.h's layout formula: every result must be
 *      bit-identical (one path's products equal the reference, so every
 *      path's products equal each other's);
 *   2. the product in double precision of the float32 x and W, within the
 *      error that quantization implies (derived at within_bound()).
 *
 * Shapes with rows not a multiple of 16 and cols not a multiple of 4, n from
 * 1 to 200 and a large n, strides beyond the shape (the gaps must stay
 * untouched), NULL bias, rows of zeros, large and tiny magnitudes, NaN and
 * inf in x, scratch at an odd address, products shared between threads.
 *
 * `make unit` runs it once per code path and thread count:
 * CAMEMBERT_KERNELS=avx512|avx2|blas (avx512-vnni, avx-vnni, portable on a
 * CPU with both VNNI) x OPENBLAS_NUM_THREADS=1|2, and under
 * ThreadSanitizer with 4 threads; the name it prints says which ran.
 */
#include "cpu_features.h"
#include "kernels.h"
#include "matrix.h"
#include "unit.h"
#include "support/ut_compute.h"

#include <stdbool.h>
#include <stdint.h>

/* the products' thread count: the tests' (ut_threads), or test_threads' own */
static int	threads_now = 1;

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static double
uniform01(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double) (rng >> 11) / 9007199254740992.0;
}

/* uniform in [-1, 1) */
static float
uniform(void)
{
	return (float) (uniform01() * 2.0 - 1.0);
}

static size_t
up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

static void *
xmalloc(size_t bytes)
{
	void	   *p = malloc(bytes > 0 ? bytes : 1);

	if (p == NULL)
		abort();
	return p;
}

static void *
aligned_blob(size_t bytes)
{
	void	   *p = NULL;

	if (posix_memalign(&p, 64, bytes > 0 ? bytes : 64) != 0)
		abort();
	return p;
}

/* ---- the reference: matrix.h's arithmetic, written again ----------------------- */

/* q of element (r, c), by matrix.h's formula */
static int
ref_q(const cb_matrix *m, size_t r, size_t c)
{
	size_t		cols4 = up(m->cols, 4);

	return ((const int8_t *) m->data)[((r / 16) * (cols4 / 4) + c / 4) * 64 + (r % 16) * 4 + c % 4];
}

/*
 * One row of activations: qx[0 .. cols), *sx.  matrix.h's rule, and
 * matmul_int8.c's for the rows it cannot quantize: a NaN or inf gives
 * sx = NaN (the row's results NaN), an amax so small that 127 / amax
 * overflows, or 0, gives q = 0 and sx = 0.
 */
static void
ref_quantize(const float *x, size_t cols, int *qx, float *sx)
{
	float		amax = 0.0f,
				inv;
	bool		finite = true;

	for (size_t c = 0; c < cols; c++)
	{
		if (!isfinite(x[c]))
			finite = false;
		else if (fabsf(x[c]) > amax)
			amax = fabsf(x[c]);
	}
	inv = 127.0f / amax;		/* inf when amax is 0 */
	if (!finite || amax == 0.0f || isinf(inv))
	{
		for (size_t c = 0; c < cols; c++)
			qx[c] = 0;
		*sx = finite ? 0.0f : NAN;
		return;
	}
	*sx = amax / 127.0f;
	for (size_t c = 0; c < cols; c++)
	{
		float		v = nearbyintf(x[c] * inv);	/* to nearest even */

		qx[c] = v > 127.0f ? 127 : (v < -127.0f ? -127 : (int) v);
	}
}

/* y[i][j] by matrix.h: (float) acc * (sx * scale[j]) + bias[j] */
static float
ref_element(const cb_matrix *m, const int *qx, float sx, size_t j, const float *bias)
{
	int64_t		acc = 0;
	volatile float prod;		/* rounded, never fused with the sum */

	for (size_t k = 0; k < m->cols; k++)
		acc += (int64_t) qx[k] * ref_q(m, j, k);
	prod = (float) (int32_t) acc * (sx * m->scale[j]);
	return prod + (bias != NULL ? bias[j] : 0.0f);
}

static uint32_t
bits(float f)
{
	uint32_t	u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static bool
same_float(float a, float b)
{
	return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof(float)) == 0;
}

/*
 * The error quantization implies, per element.  With x = sx qx + ex and
 * w = sw qw + ew, |ex| <= sx / 2, |ew| <= sw / 2 (rounding to nearest; the
 * clamp never binds, |x * 127 / amax| <= 127):
 *     sum x w - sx sw sum qx qw = sum ex (sw qw) + sum (sx qx) ew + sum ex ew
 * and |sw qw| <= |w| + sw / 2, |sx qx| <= |x| + sx / 2, so
 *     |error| <= 0.5 sx sum |w| + 0.5 sw sum |x| + 0.75 K sx sw
 * (K = cols), plus float roundings: 127 / amax and amax / 127 are not
 * exact inverses, nor 127 / max|w| and scale, and x * inv is rounded
 * (relative 2^-24 each: 1e-6 of sum |x w| covers them), and the final
 * float operations (the conversion of acc, sx * sw, the product, the bias
 * sum: 4 roundings, relative 2^-24 each, of values below sum |x||w| + |b|).
 */
static bool
within_bound(double err, float sx, float sw, double sum_abs_x, double sum_abs_w,
			 double sum_abs_xw, double abs_bias, size_t cols)
{
	double		bound = 0.5 * sx * sum_abs_w + 0.5 * sw * sum_abs_x + 0.75 * (double) cols * sx * sw
	+ 1e-6 * sum_abs_xw + 3e-7 * (sum_abs_xw + abs_bias) + 1e-37;

	return err <= bound;
}

/* ---- one product against both references ----------------------------------------- */

typedef struct product_case
{
	size_t		rows,
				cols,
				n;
	bool		bias;
	float		w_scale,		/* W uniform in +-w_scale */
				x_scale;		/* x uniform in +-x_scale */
	int			zero_every;		/* every zero_every-th row of x and of W zero (0: none) */
} product_case;

/* Encode W, run the product, compare: returns the number of mismatches
 * (bit-exactness, bound, untouched gaps); *max_rel: the worst error over
 * its bound. */
static size_t
run_product(const product_case *pc, const float *x_in, const float *w_in, double *max_rel)
{
	size_t		rows = pc->rows,
				cols = pc->cols,
				n = pc->n,
				ldx = cols + 3,
				ldy = rows + 5;
	float	   *w = xmalloc(rows * cols * sizeof(float) + 1),
			   *x = xmalloc((n * ldx + 1) * sizeof(float)),
			   *x_copy,
			   *y = xmalloc((n * ldy + 1) * sizeof(float)),
			   *bias = pc->bias ? xmalloc(rows * sizeof(float)) : NULL;
	void	   *blob = aligned_blob(cb_matrix_blob_bytes(CB_MATRIX_INT8_PACKED, rows, cols));
	cb_matrix	m;
	size_t		scratch_bytes;
	char	   *scratch;
	int		   *qx = xmalloc(cols * sizeof(int) + 1);
	size_t		bad = 0;

	*max_rel = 0;
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < cols; c++)
			w[r * cols + c] = w_in != NULL ? w_in[r * cols + c] :
				(pc->zero_every > 0 && r % (size_t) pc->zero_every == 1) ? 0.0f : pc->w_scale * uniform();
	for (size_t i = 0; i < n * ldx + 1; i++)
	{
		size_t		row = i / ldx,
					col = i % ldx;

		if (x_in != NULL && row < n && col < cols)
			x[i] = x_in[row * cols + col];
		else
			x[i] = (pc->zero_every > 0 && row % (size_t) pc->zero_every == 0) ? 0.0f : pc->x_scale * uniform();
	}
	x_copy = xmalloc((n * ldx + 1) * sizeof(float));
	memcpy(x_copy, x, (n * ldx + 1) * sizeof(float));
	for (size_t i = 0; i < n * ldy + 1; i++)
		y[i] = -12345.0f;
	for (size_t j = 0; bias != NULL && j < rows; j++)
		bias[j] = uniform();

	cb_matrix_encode_rows(CB_MATRIX_INT8_PACKED, rows, cols, blob, 0, rows, w);
	m = cb_matrix_view(CB_MATRIX_INT8_PACKED, rows, cols, blob);
	/* exactly the bytes asked for, at an odd address */
	scratch_bytes = cb_matrix_product_scratch(&m, n, threads_now);
	scratch = xmalloc(scratch_bytes + 1);
	cb_matrix_product(x, ldx, &m, bias, y, ldy, n, scratch + 1, threads_now);

	for (size_t i = 0; i < n; i++)
	{
		const float *xr = x + i * ldx;
		float		sx;
		double		sum_abs_x = 0;

		ref_quantize(xr, cols, qx, &sx);
		for (size_t k = 0; k < cols; k++)
			sum_abs_x += fabs((double) xr[k]);
		for (size_t j = 0; j < rows; j++)
		{
			float		got = y[i * ldy + j],
						want = ref_element(&m, qx, sx, j, bias);
			double		exact = bias != NULL ? bias[j] : 0.0,
						sum_abs_w = 0,
						sum_abs_xw = 0;

			if (!same_float(got, want))
			{
				if (bad < 5)
					fprintf(stderr, "  %zux%zu n %zu: y[%zu][%zu] = %.9g (0x%08x), reference %.9g (0x%08x)\n",
							rows, cols, n, i, j, got, bits(got), want, bits(want));
				bad++;
			}
			if (isnan(sx))
				continue;		/* a NaN or inf in the row: no bound */
			for (size_t k = 0; k < cols; k++)
			{
				exact += (double) xr[k] * w[j * cols + k];
				sum_abs_w += fabs((double) w[j * cols + k]);
				sum_abs_xw += fabs((double) xr[k] * w[j * cols + k]);
			}
			if (within_bound(fabs(got - exact), sx, m.scale[j], sum_abs_x, sum_abs_w, sum_abs_xw,
							 bias != NULL ? fabs(bias[j]) : 0, cols))
			{
				double		rel = fabs(got - exact) / (0.5 * sx * sum_abs_w + 0.5 * m.scale[j] * sum_abs_x + 1e-300);

				if (rel > *max_rel)
					*max_rel = rel;
			}
			else
			{
				if (bad < 5)
					fprintf(stderr, "  %zux%zu n %zu: y[%zu][%zu] = %.9g, exact %.9g: over the bound\n",
							rows, cols, n, i, j, got, exact);
				bad++;
			}
		}
		/* the gap after each row of y is untouched */
		for (size_t j = rows; j < ldy && (i + 1 < n || j == rows); j++)
			if (y[i * ldy + j] != -12345.0f)
				bad++;
	}
	if (y[n * ldy] != -12345.0f || memcmp(x, x_copy, (n * ldx + 1) * sizeof(float)) != 0)
		bad++;
	free(w);
	free(x);
	free(x_copy);
	free(y);
	free(bias);
	free(blob);
	free(scratch);
	free(qx);
	return bad;
}

static void
check_case(const product_case *pc, const float *x, const float *w)
{
	double		rel;
	size_t		bad = run_product(pc, x, w, &rel);

	if (getenv("INT8_TEST_VERBOSE"))
		printf("%zux%zu n %zu: worst error / quantization term %.3f\n", pc->rows, pc->cols, pc->n, rel);
	CHECK_MSG(bad == 0, "%zux%zu n %zu%s: %zu mismatches", pc->rows, pc->cols, pc->n,
			  pc->bias ? " bias" : "", bad);
}

/* ---- the tests ---------------------------------------------------------------- */

/* The path follows cb_cpu(): avx512_vnni, then avx_vnni, then portable. */
static void
test_path(void)
{
	const cb_cpu_features *cpu = cb_cpu();
	const char *want = cpu->avx512_vnni ? "avx512-vnni" : cpu->avx_vnni ? "avx-vnni" : "portable";

	CHECK_EQ_STR(cb_matrix_path(CB_MATRIX_INT8_PACKED), want);
}

/* Encoding: layout, scales, sums, padding; cb_matrix_row; the quantization error. */
static void
test_roundtrip(void)
{
	static const size_t shapes[][2] = {{1, 1}, {3, 5}, {16, 4}, {17, 3}, {40, 17}, {33, 770}};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
	{
		size_t		rows = shapes[s][0],
					cols = shapes[s][1],
					rows16 = up(rows, 16),
					cols4 = up(cols, 4),
					bytes = cb_matrix_blob_bytes(CB_MATRIX_INT8_PACKED, rows, cols);
		float	   *w = xmalloc(rows * cols * sizeof(float)),
				   *row = xmalloc(cols * sizeof(float));
		unsigned char *blob = aligned_blob(bytes);
		cb_matrix	m;
		size_t		bad_scale = 0,
					bad_q = 0,
					bad_row = 0,
					bad_pad = 0,
					bad_sum = 0;

		for (size_t r = 0; r < rows; r++)
			for (size_t c = 0; c < cols; c++)
				w[r * cols + c] = r % 5 == 2 ? 0.0f : (float) (r + 1) * uniform();
		memset(blob, 0x5A, bytes);	/* the padding must be written, not found zero */
		/* in two calls, the second ending at rows (it zeroes the padding rows) */
		if (rows > 16)
		{
			cb_matrix_encode_rows(CB_MATRIX_INT8_PACKED, rows, cols, blob, 16, rows - 16, w + 16 * cols);
			cb_matrix_encode_rows(CB_MATRIX_INT8_PACKED, rows, cols, blob, 0, 16, w);
		}
		else
			cb_matrix_encode_rows(CB_MATRIX_INT8_PACKED, rows, cols, blob, 0, rows, w);
		m = cb_matrix_view(CB_MATRIX_INT8_PACKED, rows, cols, blob);
		CHECK(bytes >= up(rows16 * cols4, 64) + 8 * rows16);
		CHECK((const unsigned char *) m.scale == blob + up(rows16 * cols4, 64));
		CHECK((const unsigned char *) m.sums == blob + up(up(rows16 * cols4, 64) + 4 * rows16, 64));
		for (size_t r = 0; r < rows16; r++)
		{
			float		amax = 0;
			int64_t		sum = 0;

			for (size_t c = 0; r < rows && c < cols; c++)
				amax = fabsf(w[r * cols + c]) > amax ? fabsf(w[r * cols + c]) : amax;
			if (m.scale[r] != (r < rows ? amax / 127.0f : 0.0f))
				bad_scale++;
			for (size_t c = 0; c < cols4; c++)
			{
				int			q = ref_q(&m, r, c);

				sum += q;
				if (r >= rows || c >= cols)
				{
					if (q != 0)
						bad_pad++;
					continue;
				}
				/* |q| <= 127, |q * scale - w| <= scale / 2 (+ rounding) */
				if (q < -127 || q > 127 ||
					fabs((double) q * m.scale[r] - w[r * cols + c]) > 0.5 * m.scale[r] * (1 + 1e-5))
					bad_q++;
			}
			if (m.sums[r] != sum)
				bad_sum++;
			if (r < rows)
			{
				cb_matrix_row(&m, r, row);
				for (size_t c = 0; c < cols; c++)
					if (!same_float(row[c], (float) ref_q(&m, r, c) * m.scale[r]))
						bad_row++;
			}
		}
		CHECK_MSG(bad_scale == 0 && bad_q == 0 && bad_row == 0 && bad_pad == 0 && bad_sum == 0,
				  "%zux%zu: %zu scales, %zu q, %zu decoded, %zu padding, %zu sums wrong",
				  rows, cols, bad_scale, bad_q, bad_row, bad_pad, bad_sum);
		free(w);
		free(row);
		free(blob);
	}
}

/* Rows and cols around the block sizes, n from 1 to 200, with and without bias. */
static void
test_shapes(void)
{
	static const size_t rows_list[] = {1, 3, 15, 16, 17, 33, 50, 64 + 7};
	static const size_t cols_list[] = {1, 3, 4, 5, 17, 64, 770};
	static const size_t n_list[] = {1, 2, 3, 5, 7, 8, 9, 13, 16, 31, 200};

	for (size_t a = 0; a < sizeof(rows_list) / sizeof(rows_list[0]); a++)
		for (size_t b = 0; b < sizeof(cols_list) / sizeof(cols_list[0]); b++)
			for (size_t c = 0; c < sizeof(n_list) / sizeof(n_list[0]); c++)
			{
				product_case pc = {rows_list[a], cols_list[b], n_list[c], (a + b + c) % 2 == 0,
				1.0f, 2.0f, 0};

				/* the large n only on the wider shapes, the rest everywhere */
				if (n_list[c] == 200 && cols_list[b] < 64)
					continue;
				check_case(&pc, NULL, NULL);
			}
}

/* Every n from 1 to 40 on one shape (every tile height and its tails). */
static void
test_every_n(void)
{
	for (size_t n = 1; n <= 40; n++)
	{
		product_case pc = {16 * 5 + 9, 768 + 2, n, n % 3 != 0, 0.05f, 3.0f, 0};

		check_case(&pc, NULL, NULL);
	}
}

/* Magnitudes: huge, tiny, mixed within a row, zero rows of x and of W. */
static void
test_magnitudes(void)
{
	product_case big = {37, 130, 21, true, 1e15f, 1e15f, 0};
	product_case small = {37, 130, 21, true, 1e-15f, 1e-15f, 0};
	product_case zeros = {50, 67, 30, true, 1.0f, 1.0f, 3};
	product_case zeros_nobias = {50, 67, 30, false, 1.0f, 1.0f, 2};
	product_case mixed = {29, 101, 12, true, 1.0f, 1.0f, 0};
	float	   *x = xmalloc(12 * 101 * sizeof(float));

	check_case(&big, NULL, NULL);
	check_case(&small, NULL, NULL);
	check_case(&zeros, NULL, NULL);
	check_case(&zeros_nobias, NULL, NULL);
	/* one large value per row, the others 1e-6 of it and less: most
	 * quantize to 0, within the bound still */
	for (size_t i = 0; i < 12 * 101; i++)
		x[i] = uniform() * (i % 101 == i / 101 ? 1000.0f : 1e-3f * (float) uniform01());
	check_case(&mixed, x, NULL);
	free(x);
}

/* Rows of x with a NaN or an inf give NaN; rows too small to scale, the bias. */
static void
test_special_rows(void)
{
	product_case pc = {20, 9, 6, true, 1.0f, 1.0f, 0};
	float		x[6 * 9];
	size_t		rows = 20,
				cols = 9;
	float	   *w = xmalloc(rows * cols * sizeof(float));
	float		bias[20],
				y[6 * 20];
	void	   *blob = aligned_blob(cb_matrix_blob_bytes(CB_MATRIX_INT8_PACKED, rows, cols));
	cb_matrix	m;
	void	   *scratch;
	size_t		nan_ok = 0,
				bias_ok = 0,
				normal_ok = 0;

	for (size_t i = 0; i < 6 * 9; i++)
		x[i] = uniform();
	x[0 * 9 + 4] = NAN;
	x[1 * 9 + 0] = INFINITY;
	x[2 * 9 + 8] = -INFINITY;
	for (size_t c = 0; c < 9; c++)
		x[3 * 9 + c] = c % 2 ? 1e-40f : -2e-41f;	/* subnormal: 127 / amax overflows */
	for (size_t c = 0; c < 9; c++)
		x[4 * 9 + c] = 0.0f;
	check_case(&pc, x, NULL);	/* the reference's rule for such rows, bit-exact */

	for (size_t i = 0; i < rows * cols; i++)
		w[i] = uniform();
	for (size_t j = 0; j < rows; j++)
		bias[j] = uniform();
	cb_matrix_encode_rows(CB_MATRIX_INT8_PACKED, rows, cols, blob, 0, rows, w);
	m = cb_matrix_view(CB_MATRIX_INT8_PACKED, rows, cols, blob);
	scratch = xmalloc(cb_matrix_product_scratch(&m, 6, threads_now));
	cb_matrix_product(x, cols, &m, bias, y, rows, 6, scratch, threads_now);
	for (size_t j = 0; j < rows; j++)
	{
		nan_ok += isnan(y[0 * rows + j]) && isnan(y[1 * rows + j]) && isnan(y[2 * rows + j]);
		bias_ok += y[3 * rows + j] == bias[j] && y[4 * rows + j] == bias[j];
		normal_ok += isfinite(y[5 * rows + j]) && y[5 * rows + j] != bias[j];
	}
	CHECK_EQ_INT(nan_ok, rows);
	CHECK_EQ_INT(bias_ok, rows);
	CHECK_EQ_INT(normal_ok, rows);
	free(w);
	free(blob);
	free(scratch);
}

/* Products big enough to be shared between threads (with 2+ in use), and
 * a large n; camembert-like magnitudes. */
static void
test_large(void)
{
	product_case wide = {1000 + 3, 256, 64, true, 0.05f, 4.0f, 0};
	product_case tall = {200 + 5, 770, 517, true, 0.05f, 4.0f, 0};
	product_case ffn = {96, 3072 + 1, 77, false, 0.05f, 4.0f, 0};

	check_case(&wide, NULL, NULL);
	check_case(&tall, NULL, NULL);
	check_case(&ffn, NULL, NULL);
}

/* n = 0 writes nothing; rows = 0 neither; cols = 0 gives the bias. */
static void
test_empty(void)
{
	float		x[8] = {1, 2, 3, 4, 5, 6, 7, 8},
				y[8],
				bias[3] = {0.5f, -1.0f, 2.0f};
	void	   *blob = aligned_blob(cb_matrix_blob_bytes(CB_MATRIX_INT8_PACKED, 3, 0));
	cb_matrix	m;
	char		scratch[256];

	cb_matrix_encode_rows(CB_MATRIX_INT8_PACKED, 3, 0, blob, 0, 3, x);
	m = cb_matrix_view(CB_MATRIX_INT8_PACKED, 3, 0, blob);
	for (int i = 0; i < 8; i++)
		y[i] = -7.0f;
	CHECK(cb_matrix_product_scratch(&m, 2, threads_now) <= sizeof(scratch));
	cb_matrix_product(x, 1, &m, bias, y, 3, 0, scratch, threads_now);
	CHECK(y[0] == -7.0f);
	cb_matrix_product(x, 1, &m, bias, y, 4, 2, scratch, threads_now);
	CHECK(y[0] == 0.5f && y[1] == -1.0f && y[2] == 2.0f && y[3] == -7.0f);
	CHECK(y[4] == 0.5f && y[5] == -1.0f && y[6] == 2.0f && y[7] == -7.0f);
	free(blob);
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
	snprintf(name, sizeof(name), "test_matrix_int8_%s_threads_%s%s", cb_matrix_path(CB_MATRIX_INT8_PACKED),
			 cb_kernel_clamp_threads(ut_threads()) > 1 ? "many" : "one", sanitizer);
	RUN(test_path);
	RUN(test_roundtrip);
	RUN(test_shapes);
	RUN(test_every_n);
	RUN(test_magnitudes);
	RUN(test_special_rows);
	RUN(test_large);
	RUN(test_empty);
	return unit_finish(name);
}
