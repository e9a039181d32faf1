/*
 * test_kernels.c — the float32 matrix products (matmul_f32.h:
 * cb_kernel_matmul_nt / _nn; the drivers of matmul_f32.c, the tiles of
 * matmul_f32_avx512.c and matmul_f32_avx2.c) against a double-precision
 * reference on odd shapes (row, column and k tails; strides; bias; alpha;
 * with and without the packing scratch; products large enough to be shared
 * between the threads of thread_pool.c).
 *
 * `make unit` runs it once per code path and thread count:
 * CAMEMBERT_KERNELS=avx512|avx2|blas (a path the CPU lacks falls back to the
 * best it has) x OPENBLAS_NUM_THREADS=1|2, and again under ThreadSanitizer;
 * the name it prints says which path and how many threads ran.
 */
#include "matmul_f32.h"
#include "unit.h"
#include "support/ut_compute.h"

#include <stdbool.h>
#include <stdint.h>

static uint64_t rng = 88172645463325252ULL;

static float
uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float) ((double) (rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *
random_matrix(size_t rows, size_t ld)
{
	float	   *m = malloc((rows * ld + 1) * sizeof(float));

	for (size_t i = 0; i < rows * ld + 1; i++)
		m[i] = uniform();
	return m;
}

/* max |y - ref| / (sum |x||w| + 1e-30) over the product */
static double
check_nt(size_t n, size_t out, size_t in, bool with_bias, float alpha, bool with_pack)
{
	size_t		ldx = in + 3,
				ldw = in + 1,
				ldy = out + 5;
	float	   *x = random_matrix(n, ldx),
			   *w = random_matrix(out, ldw),
			   *y = random_matrix(n, ldy),
			   *bias = with_bias ? random_matrix(1, out) : NULL,
			   *pack = with_pack ? malloc(cb_kernel_matmul_pack_floats(n, in) * sizeof(float)) : NULL;
	float		sentinel = y[n * ldy];
	double		worst = 0;

	cb_kernel_matmul_nt(x, ldx, w, ldw, bias, alpha, y, ldy, n, out, in, pack, ut_threads());
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < out; j++)
		{
			double		ref = 0,
						mag = 0;

			for (size_t k = 0; k < in; k++)
			{
				ref += (double) x[i * ldx + k] * w[j * ldw + k];
				mag += fabs((double) x[i * ldx + k] * w[j * ldw + k]);
			}
			ref = alpha * ref + (bias ? bias[j] : 0);
			mag = fabs(alpha) * mag + (bias ? fabs(bias[j]) : 0) + 1e-30;
			if (fabs(y[i * ldy + j] - ref) / mag > worst)
				worst = fabs(y[i * ldy + j] - ref) / mag;
		}
	/* the gaps between rows (ldy > out) and what follows are untouched */
	for (size_t i = 0; i + 1 < n; i++)
		for (size_t j = out; j < ldy; j++)
			if (y[i * ldy + j] != y[i * ldy + j])
				worst = 1;
	if (y[n * ldy] != sentinel)
		worst = 1;
	free(x);
	free(w);
	free(y);
	free(bias);
	free(pack);
	return worst;
}

static double
check_nn(size_t n, size_t out, size_t in)
{
	size_t		ldp = in + 2,
				ldv = out + 7,
				ldy = out + 3;
	float	   *p = random_matrix(n, ldp),
			   *v = random_matrix(in, ldv),
			   *y = random_matrix(n, ldy);
	float		gap = y[out];
	double		worst = 0;

	cb_kernel_matmul_nn(p, ldp, v, ldv, y, ldy, n, out, in);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < out; j++)
		{
			double		ref = 0,
						mag = 1e-30;

			for (size_t k = 0; k < in; k++)
			{
				ref += (double) p[i * ldp + k] * v[k * ldv + j];
				mag += fabs((double) p[i * ldp + k] * v[k * ldv + j]);
			}
			if (fabs(y[i * ldy + j] - ref) / mag > worst)
				worst = fabs(y[i * ldy + j] - ref) / mag;
		}
	if (ldy > out && y[out] != gap)
		worst = 1;
	free(p);
	free(v);
	free(y);
	return worst;
}

static void
test_nt_shapes(void)
{
	static const size_t ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 47, 129, 300};
	static const size_t outs[] = {1, 2, 5, 6, 7, 12, 13, 25, 37};
	static const size_t ins[] = {1, 5, 15, 16, 17, 33, 64, 100};

	for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++)
		for (size_t b = 0; b < sizeof(outs) / sizeof(outs[0]); b++)
			for (size_t c = 0; c < sizeof(ins) / sizeof(ins[0]); c++)
			{
				bool		bias = (a + b + c) % 2 == 0;
				float		alpha = (a + c) % 3 == 0 ? 0.125f : 1.0f;

				for (int pack = 0; pack < 2; pack++)
				{
					double		e = check_nt(ns[a], outs[b], ins[c], bias, alpha, pack);

					CHECK_MSG(e < 1e-6, "nt n=%zu out=%zu in=%zu bias=%d alpha=%g pack=%d: rel err %.3g",
							  ns[a], outs[b], ins[c], bias, (double) alpha, pack, e);
				}
			}
}

static void
test_nt_large(void)
{
	/* k in several chunks, products shared between threads, several packed groups */
	static const size_t shapes[][3] = {
		{40, 768, 768}, {300, 200, 1600}, {1, 3072, 768}, {130, 61, 3072}, {64, 2, 768},
	};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (int pack = 0; pack < 2; pack++)
		{
			double		e = check_nt(shapes[s][0], shapes[s][1], shapes[s][2], true, 1.0f, pack);

			CHECK_MSG(e < 1e-6, "nt n=%zu out=%zu in=%zu pack=%d: rel err %.3g",
					  shapes[s][0], shapes[s][1], shapes[s][2], pack, e);
		}
}

static void
test_nt_empty(void)
{
	float		x[4] = {1, 2, 3, 4},
				w[4] = {1, 1, 1, 1},
				b[2] = {0.5f, -2.0f},
				y[4] = {9, 9, 9, 9};

	/* in == 0: y = bias (or 0) */
	cb_kernel_matmul_nt(x, 2, w, 2, b, 1.0f, y, 2, 2, 2, 0, NULL, ut_threads());
	CHECK(y[0] == 0.5f && y[1] == -2.0f && y[2] == 0.5f && y[3] == -2.0f);
	cb_kernel_matmul_nt(x, 2, w, 2, NULL, 1.0f, y, 2, 2, 2, 0, NULL, ut_threads());
	CHECK(y[0] == 0.0f && y[3] == 0.0f);
	/* n == 0 or out == 0: nothing written */
	y[0] = 7;
	cb_kernel_matmul_nt(x, 2, w, 2, b, 1.0f, y, 2, 0, 2, 2, NULL, ut_threads());
	cb_kernel_matmul_nt(x, 2, w, 2, b, 1.0f, y, 2, 2, 0, 2, NULL, ut_threads());
	CHECK(y[0] == 7.0f);
}

static void
test_nn_shapes(void)
{
	static const size_t ns[] = {1, 2, 3, 4, 5, 9, 64, 65};
	static const size_t outs[] = {1, 7, 8, 15, 16, 17, 33, 64, 65, 100};
	static const size_t ins[] = {1, 2, 7, 64, 130};

	for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++)
		for (size_t b = 0; b < sizeof(outs) / sizeof(outs[0]); b++)
			for (size_t c = 0; c < sizeof(ins) / sizeof(ins[0]); c++)
			{
				double		e = check_nn(ns[a], outs[b], ins[c]);

				CHECK_MSG(e < 1e-6, "nn n=%zu out=%zu in=%zu: rel err %.3g", ns[a], outs[b], ins[c], e);
			}
}


int
main(void)
{
	char		name[64];

#ifdef __SANITIZE_THREAD__
	const char *sanitizer = "_tsan";	/* ThreadSanitizer build: the pool's races */
#else
	const char *sanitizer = "";
#endif

	snprintf(name, sizeof(name), "test_kernels_%s_threads_%s%s", cb_kernel_isa(),
			 ut_threads() > 1 ? "many" : "one", sanitizer);
	RUN(test_nt_shapes);
	RUN(test_nt_large);
	RUN(test_nt_empty);
	RUN(test_nn_shapes);
	return unit_finish(name);
}
