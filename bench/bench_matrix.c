/*
 * bench_matrix.c — time cb_matrix_product for every weight format on the
 * linear layers of camembert-base, against the float32 product.
 *
 *   make build/bench/bench_matrix      (-O2, as PGXS builds the extension)
 *
 *   bench_matrix [-t THREADS] [-f FMT,FMT..] [-n N,N..] [-s OUTxIN,..] [-r REPS] [-c]
 *       defaults: -t 1  -f f32,int8-packed  -n 16,64,2048
 *                 -s 768x768,3072x768,768x3072  -r 9
 *       -c: CPU time of the process (all its threads) instead of wall
 *       clock: steadier on a loaded machine, and the same with 1 thread
 *       FMT: f32 f16 bf16 bf16-packed int8-packed (f32 is always timed: the
 *       ratios are to it)
 *
 * W [OUT][IN] holds random float32 weights (uniform in [-0.1, 0.1]),
 * encoded with cb_matrix_encode_rows, so every format works; x [N][IN] is
 * random in [-2, 2]; a bias is added.  A measurement is a batch of products
 * lasting ~20 ms (wall clock), its time divided by the batch; the formats
 * are measured in turn, REPS times round, so that the load of a shared
 * machine falls on all alike; the line gives each format's median ms per
 * product, GOP/s (2 N OUT IN operations) and the ratio of the f32 median to
 * its own.  CAMEMBERT_KERNELS=avx512|avx2|blas chooses the code paths
 * (printed).  Threads: THREADS, given to every product.
 */
#include "kernels.h"
#include "matrix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LIST 16

static clockid_t clock_id = CLOCK_MONOTONIC;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(clock_id, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static void *
xalloc(size_t bytes)
{
	void	   *p = NULL;

	if (posix_memalign(&p, 64, bytes > 0 ? bytes : 64) != 0)
	{
		fprintf(stderr, "bench_matrix: out of memory (%zu bytes)\n", bytes);
		exit(1);
	}
	return p;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float
uniform(float lo, float hi)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return lo + (hi - lo) * (float) ((rng >> 40) * (1.0 / 16777216.0));
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static int
parse_format(const char *s, cb_matrix_format *f)
{
	for (int i = 0; i < CB_MATRIX_NUM_FORMATS; i++)
		if (strcmp(cb_matrix_format_name((cb_matrix_format) i), s) == 0)
		{
			*f = (cb_matrix_format) i;
			return 1;
		}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_matrix [-t THREADS] [-f FMT,..] [-n N,..] [-s OUTxIN,..] [-r REPS] [-c]\n");
	exit(2);
}

typedef struct fmt_case
{
	cb_matrix_format f;
	void	   *blob;
	cb_matrix	m;
	void	   *scratch;
	int			threads;		/* given to every product */
	size_t		batch;
	double		ms[64];
} fmt_case;

/* one measurement: the batch's products, ms per product */
static double
measure(fmt_case *c, const float *x, size_t in, const float *bias, float *y, size_t out, size_t n)
{
	double		t0 = now_ms();

	for (size_t b = 0; b < c->batch; b++)
		cb_matrix_product(x, in, &c->m, bias, y, out, n, c->scratch, c->threads);
	return (now_ms() - t0) / (double) c->batch;
}

int
main(int argc, char **argv)
{
	int			threads = 1,
				reps = 9;
	cb_matrix_format fmts[CB_MATRIX_NUM_FORMATS] = {CB_MATRIX_F32, CB_MATRIX_INT8_PACKED};
	int			nfmt = 2;
	size_t		ns[MAX_LIST] = {16, 64, 2048},
				outs[MAX_LIST] = {768, 3072, 768},
				ins[MAX_LIST] = {768, 768, 3072};
	int			nn = 3,
				nshape = 3;

	for (int a = 1; a < argc; a++)
	{
		char	   *v = a + 1 < argc ? argv[a + 1] : NULL,
				   *tok,
				   *save = NULL;

		if (strcmp(argv[a], "-h") == 0)
		{
			printf("usage: bench_matrix [-t THREADS] [-f FMT,..] [-n N,..] [-s OUTxIN,..] [-r REPS] [-c]\n"
				   "  formats: f32 f16 bf16 bf16-packed int8-packed; -c: CPU time (see the source's header)\n");
			return 0;
		}
		if (strcmp(argv[a], "-c") == 0)
		{
			clock_id = CLOCK_PROCESS_CPUTIME_ID;
			continue;
		}
		if (v == NULL)
			usage();
		if (strcmp(argv[a], "-t") == 0)
			threads = atoi(v);
		else if (strcmp(argv[a], "-r") == 0)
			reps = atoi(v);
		else if (strcmp(argv[a], "-f") == 0)
		{
			nfmt = 1;
			fmts[0] = CB_MATRIX_F32;
			for (tok = strtok_r(v, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
			{
				cb_matrix_format f;

				if (!parse_format(tok, &f))
					usage();
				if (f != CB_MATRIX_F32 && nfmt < CB_MATRIX_NUM_FORMATS)
					fmts[nfmt++] = f;
			}
		}
		else if (strcmp(argv[a], "-n") == 0)
		{
			nn = 0;
			for (tok = strtok_r(v, ",", &save); tok != NULL && nn < MAX_LIST; tok = strtok_r(NULL, ",", &save))
				ns[nn++] = (size_t) strtoul(tok, NULL, 10);
		}
		else if (strcmp(argv[a], "-s") == 0)
		{
			nshape = 0;
			for (tok = strtok_r(v, ",", &save); tok != NULL && nshape < MAX_LIST; tok = strtok_r(NULL, ",", &save))
				if (sscanf(tok, "%zux%zu", &outs[nshape], &ins[nshape]) == 2)
					nshape++;
		}
		else
			usage();
		a++;
	}
	if (threads < 1 || reps < 1 || reps > 64 || nn == 0 || nshape == 0)
		usage();
	printf("threads %d (in use: %d), reps %d, %s; paths:", threads, cb_kernel_clamp_threads(threads), reps,
		   clock_id == CLOCK_MONOTONIC ? "wall clock" : "CPU time");
	for (int i = 0; i < nfmt; i++)
		printf(" %s=%s", cb_matrix_format_name(fmts[i]), cb_matrix_path(fmts[i]));
	printf("\n");

	for (int s = 0; s < nshape; s++)
	{
		size_t		out = outs[s],
					in = ins[s];
		float	   *w = xalloc(out * in * sizeof(float));
		float	   *bias = xalloc(out * sizeof(float));
		fmt_case	cases[CB_MATRIX_NUM_FORMATS];

		for (size_t i = 0; i < out * in; i++)
			w[i] = uniform(-0.1f, 0.1f);
		for (size_t i = 0; i < out; i++)
			bias[i] = uniform(-1.0f, 1.0f);
		for (int f = 0; f < nfmt; f++)
		{
			cases[f].f = fmts[f];
			cases[f].blob = xalloc(cb_matrix_blob_bytes(fmts[f], out, in));
			cb_matrix_encode_rows(fmts[f], out, in, cases[f].blob, 0, out, w);
			cases[f].m = cb_matrix_view(fmts[f], out, in, cases[f].blob);
		}
		for (int k = 0; k < nn; k++)
		{
			size_t		n = ns[k];
			float	   *x = xalloc(n * in * sizeof(float));
			float	   *y = xalloc(n * out * sizeof(float));
			double		ops = 2.0 * (double) n * (double) out * (double) in;
			double		f32_ms = 0;

			for (size_t i = 0; i < n * in; i++)
				x[i] = uniform(-2.0f, 2.0f);
			for (int f = 0; f < nfmt; f++)
			{
				fmt_case   *c = &cases[f];
				double		one;

				c->threads = threads;
				c->scratch = xalloc(cb_matrix_product_scratch(&c->m, n, threads));
				c->batch = 1;
				(void) measure(c, x, in, bias, y, out, n);	/* warm up */
				one = measure(c, x, in, bias, y, out, n);
				c->batch = one > 0 ? (size_t) (20.0 / one) : 1000;
				if (c->batch < 1)
					c->batch = 1;
			}
			for (int r = 0; r < reps; r++)
				for (int f = 0; f < nfmt; f++)
					cases[f].ms[r] = measure(&cases[f], x, in, bias, y, out, n);
			printf("%4zux%-4zu n %-5zu", out, in, n);
			for (int f = 0; f < nfmt; f++)
			{
				double		med;

				qsort(cases[f].ms, (size_t) reps, sizeof(double), cmp_double);
				med = cases[f].ms[reps / 2];
				if (f == 0)
					f32_ms = med;
				printf(" | %s %8.3f ms %6.1f GOP/s", cb_matrix_format_name(cases[f].f), med, ops / med / 1e6);
				if (f > 0)
					printf(" %5.2fx", f32_ms / med);
				free(cases[f].scratch);
			}
			printf("\n");
			fflush(stdout);
			free(x);
			free(y);
		}
		for (int f = 0; f < nfmt; f++)
			free(cases[f].blob);
		free(w);
		free(bias);
	}
	return 0;
}
