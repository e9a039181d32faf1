/*
 * bench_engine.c — time the pure C engine (cb_forward) on a model directory,
 * e.g. the camembert-base-shaped model of bench/make_base_shaped_model.py.
 * bench/run.sh builds and drives it; it can also be used by hand:
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc/core -o build/bench/engine/bench_engine \
 *       bench/bench_engine.c src/core/[a-z]*.c $(pkg-config --cflags --libs hdf5) -lopenblas -lm
 *
 *   bench_engine [--precision P] MODEL_DIR [batch=1] [seq_len=64] [iterations=10]
 *       random ids (<s> ... </s>, no padding), min / median / mean per pass
 *   --precision P (before any mode that loads a model): the model image is
 *       built at precision P: auto, float32, bfloat16, int8 (model.h); without
 *       it, the default (auto) (load_model.h)
 *   bench_engine [--precision P] --image MODEL_DIR
 *       the size of the model image (what a model takes in shared memory):
 *       "image PRECISION BYTES stored DTYPE parameters N"
 *   bench_engine --texts MODEL_DIR TEXTS
 *       one text per line: tokenize (the core tokenizer, truncation to the
 *       model's length as the SQL functions do) and classify them one at a
 *       time, as SELECT camembert_classify(body) FROM posts does:
 *       "texts N TOKENS TOTAL_MS FORWARD_MS CPU_MS" (CPU_MS: the process's CPU
 *       time over the loop, all threads)
 *   bench_engine [--precision P] --generate MODEL_DIR [beams=4] [max_new=32] [rounds=5]
 *       a causal LM: greedy search and beam search with `beams` beams (one KV
 *       cache per beam, generate.h / beam_search.h) on the same 8-token prompt,
 *       max_new new tokens (eos disabled, so every run makes max_new),
 *       alternating greedy and beam runs `rounds` times (after one untimed
 *       run of each); per mode the median
 *       run: "generate greedy|beamN MAX_NEW MEDIAN_MS TOKENS_PER_S"
 *   bench_engine --isa
 *       "isa NAME": the matrix-product code path of src/core/matmul_f32.c
 *   bench_engine --matmul N [layers=12]
 *       the encoder's six linear products on N rows, OpenBLAS against
 *       cb_kernel_matmul_nt (without / with its packing scratch), CPU time:
 *       "matmul blas|ours_nopack|ours N BEST_MS GFLOPS"
 *   bench_engine --sgemm M N K [iterations=5]
 *       the best time of C[M][N] = A[M][K] · B[N][K]ᵀ (the layout of our
 *       linear layers): "sgemm M N K BEST_MS GFLOPS"
 *
 * Threads: OpenBLAS reads OPENBLAS_NUM_THREADS; every mode prints
 * "threads N" (openblas_get_num_threads) first.
 *
 * (The engine-against-PyTorch cases are timed by bench/bench.py compare, with
 * the engine loaded as a library: bench_lib.c.)
 */
#include "forward.h"
/* --generate needs beam search: absent from a core older than it
 * (bench/run.sh's BENCH_CORE_DIR) */
#if defined(__has_include)
#if __has_include("beam_search.h")
#include "beam_search.h"
#endif
#endif
#include "load_model.h"
#include "model_image.h"
#include "tokenizer.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_compute.h"

/* --precision (NULL: cb_model_load_dir).  A core from before cb_precision
 * (BENCH_CORE_DIR) has no CB_PRECISION_NAMES: the option is then refused. */
static const char *precision_name;

/* the core's own matrix products (matmul_f32.h; weak: a core from before them has none) */
extern const char *cb_kernel_isa(void) __attribute__((weak));
#if BENCH_HAS_COMPUTE
extern void cb_kernel_matmul_nt(const float *x, size_t ldx, const float *w, size_t ldw,
								const float *bias, float alpha, float *y, size_t ldy,
								size_t n, size_t out, size_t in, float *pack, int threads)
			__attribute__((weak));
#define BENCH_MM_THREADS , openblas_get_num_threads()
#else
extern void cb_kernel_matmul_nt(const float *x, size_t ldx, const float *w, size_t ldw,
								const float *bias, float alpha, float *y, size_t ldy,
								size_t n, size_t out, size_t in, float *pack) __attribute__((weak));
#define BENCH_MM_THREADS
#endif
extern size_t cb_kernel_matmul_pack_floats(size_t n, size_t in) __attribute__((weak));


static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
	{
		fprintf(stderr, "out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static void
load_model(const char *dir, cb_model *model)
{
	char		msg[CB_ERROR_MESSAGE_MAX + 64];
	double		t0 = now_ms();

	if (bench_load_model(dir, precision_name, model, msg, sizeof(msg)) != 0)
	{
		fprintf(stderr, "%s: %s\n", dir, msg);
		exit(1);
	}
	fprintf(stderr, "loaded %s (%s) in %.0f ms: %d layers, hidden %d, vocab %d\n", dir,
			precision_name ? precision_name : "default", now_ms() - t0,
			model->config.num_hidden_layers, model->config.hidden_size, model->config.vocab_size);
}

static void
unload_model(cb_model *model)
{
	cb_model_view_release(model);
}

/* The output a benchmark asks for: class logits, or the head at one position
 * per row for a LM, or the last hidden state for a bare encoder. */
static float *
setup_output(const cb_model *model, int batch, int seq, cb_forward_output *out, int32_t **pos)
{
	float	   *buf;

	memset(out, 0, sizeof(*out));
	*pos = xmalloc((size_t) batch * sizeof(int32_t));
	for (int b = 0; b < batch; b++)
		(*pos)[b] = b * seq + (seq > 1 ? 1 : 0);
	if (model->config.architecture == CB_ARCH_SEQUENCE_CLASSIFICATION)
	{
		buf = xmalloc((size_t) batch * (size_t) model->config.num_labels * sizeof(float));
		out->class_logits = buf;
	}
	else if (model->config.architecture == CB_ARCH_ENCODER)
	{
		buf = xmalloc((size_t) batch * (size_t) seq * (size_t) model->config.hidden_size * sizeof(float));
		out->last_hidden_state = buf;
	}
	else
	{
		buf = xmalloc((size_t) batch * (size_t) model->config.vocab_size * sizeof(float));
		out->logit_positions = *pos;
		out->n_logit_positions = batch;
		out->position_logits = buf;
	}
	return buf;
}

static void
run_once(const cb_model *model, const cb_forward_input *in, const cb_forward_output *out,
		 cb_workspace *ws)
{
	cb_error	err;

	if (cb_forward(BENCH_CC model, in, out, ws, &err) != CB_OK)
	{
		fprintf(stderr, "cb_forward: %s\n", err.message);
		exit(1);
	}
}

/* ------------------------------------------------------------------------ */

static int
mode_simple(int argc, char **argv)
{
	int			batch = 1,
				seq = 64,
				iters = 10;
	cb_model	model;
	int32_t    *ids,
			   *pos;
	float	   *out_buf;
	double	   *times,
				t0,
				flops,
				sum = 0;
	cb_workspace ws;
	cb_forward_input in;
	cb_forward_output out;
	uint64_t	state = 12345;

	if (argc > 2)
		batch = atoi(argv[2]);
	if (argc > 3)
		seq = atoi(argv[3]);
	if (argc > 4)
		iters = atoi(argv[4]);
	if (batch < 1 || seq < 2 || iters < 1)
	{
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	load_model(argv[1], &model);
	ids = xmalloc((size_t) batch * (size_t) seq * sizeof(int32_t));
	for (int b = 0; b < batch; b++)
	{
		for (int t = 0; t < seq; t++)
		{
			state = state * 6364136223846793005ULL + 1442695040888963407ULL;
			ids[b * seq + t] = 7 + (int32_t) ((state >> 33) % (uint64_t) (model.config.vocab_size - 8));
		}
		ids[b * seq] = model.config.bos_token_id >= 0 ? model.config.bos_token_id : 0;
		ids[b * seq + seq - 1] = model.config.eos_token_id >= 0 ? model.config.eos_token_id : 2;
	}
	out_buf = setup_output(&model, batch, seq, &out, &pos);
	in = (cb_forward_input) {batch, seq, ids, NULL};
	cb_workspace_init(&ws);
	times = xmalloc((size_t) iters * sizeof(double));
	run_once(&model, &in, &out, &ws);	/* warm-up */
	for (int i = 0; i < iters; i++)
	{
		t0 = now_ms();
		run_once(&model, &in, &out, &ws);
		times[i] = now_ms() - t0;
		sum += times[i];
	}
	qsort(times, (size_t) iters, sizeof(double), cmp_double);
	flops = cb_forward_flops(&model, (int64_t) batch * seq, seq);
	printf("batch %d x %d tokens, %d iterations: min %.2f ms, median %.2f ms, mean %.2f ms; "
		   "%.2f GFLOP per pass, %.1f GFLOP/s at the median\n",
		   batch, seq, iters, times[0], times[iters / 2], sum / iters, flops / 1e9,
		   flops / 1e9 / (times[iters / 2] / 1e3));
	cb_workspace_release(&ws);
	unload_model(&model);
	free(ids);
	free(pos);
	free(out_buf);
	free(times);
	return 0;
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */

static void *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	long		n;
	void	   *buf;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		perror(path);
		exit(1);
	}
	buf = xmalloc((size_t) n + 1);
	if (fread(buf, 1, (size_t) n, f) != (size_t) n)
	{
		perror(path);
		exit(1);
	}
	((char *) buf)[n] = '\0';
	fclose(f);
	*len = (size_t) n;
	return buf;
}

static int
mode_texts(int argc, char **argv)
{
	cb_model	model;
	cb_tokenizer tok;
	cb_tok_workspace *tws;
	cb_workspace ws;
	cb_error	err;
	char		sp_path[4096];
	size_t		sp_len,
				text_len,
				tok_len;
	uint8_t    *sp_bytes;
	void	   *tok_image;
	char	   *texts,
			   *line;
	int32_t		max_tokens;
	int			n = 0;
	long		tokens = 0;
	double		total = 0,
				forward = 0,
				cpu0;
	float		logits[64];
	struct timespec cpu;

	if (argc < 4)
	{
		fprintf(stderr, "usage: --texts MODEL_DIR TEXTS\n");
		return 2;
	}
	load_model(argv[2], &model);
	if (model.config.architecture != CB_ARCH_SEQUENCE_CLASSIFICATION || model.config.num_labels > 64)
	{
		fprintf(stderr, "--texts needs a sequence classification model\n");
		return 1;
	}
	snprintf(sp_path, sizeof(sp_path), "%s/sentencepiece.bpe.model", argv[2]);
	sp_bytes = read_file(sp_path, &sp_len);
	if (cb_tokenizer_build(sp_bytes, sp_len, &tok_image, &tok_len, &err) != CB_OK ||
		cb_tokenizer_open(tok_image, tok_len, &tok, &err) != CB_OK)
	{
		fprintf(stderr, "%s: %s\n", sp_path, err.message);
		return 1;
	}
	tws = cb_tok_workspace_create();
	cb_workspace_init(&ws);
	texts = read_file(argv[3], &text_len);
	/* the SQL functions' truncation: <s> + pieces + </s> within the positions */
	max_tokens = model.config.max_position_embeddings - model.config.pad_token_id - 1;

	/* warm-up, as the SQL side has: the first pass pays the first touch of every weight page */
	{
		int32_t		warm_ids[3] = {model.config.bos_token_id, 10, model.config.eos_token_id};
		cb_forward_input in = {1, 3, warm_ids, NULL};
		cb_forward_output out;

		memset(&out, 0, sizeof(out));
		out.class_logits = logits;
		run_once(&model, &in, &out, &ws);
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	cpu0 = (double) cpu.tv_sec * 1e3 + (double) cpu.tv_nsec / 1e6;
	for (line = texts; *line != '\0';)
	{
		char	   *end = strchr(line, '\n');
		size_t		len = end ? (size_t) (end - line) : strlen(line);
		const int32_t *ids;
		size_t		n_ids;
		double		t0 = now_ms(),
					t1;
		cb_forward_input in;
		cb_forward_output out;

		if (cb_tokenizer_encode_ws(&tok, tws, line, len, true, max_tokens, &ids, &n_ids, NULL, &err) != CB_OK)
		{
			fprintf(stderr, "tokenize: %s\n", err.message);
			return 1;
		}
		t1 = now_ms();
		memset(&out, 0, sizeof(out));
		out.class_logits = logits;
		in = (cb_forward_input) {1, (int32_t) n_ids, ids, NULL};
		run_once(&model, &in, &out, &ws);
		forward += now_ms() - t1;
		total += now_ms() - t0;
		tokens += (long) n_ids;
		n++;
		line = end ? end + 1 : line + len;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	printf("texts %d %ld %.3f %.3f %.3f\n", n, tokens, total, forward,
		   (double) cpu.tv_sec * 1e3 + (double) cpu.tv_nsec / 1e6 - cpu0);
	cb_tok_workspace_destroy(tws);
	cb_free(tok_image);
	free(sp_bytes);
	free(texts);
	cb_workspace_release(&ws);
	unload_model(&model);
	return 0;
}

/* ------------------------------------------------------------------------ */

static int
mode_sgemm(int argc, char **argv)
{
	int			m,
				n,
				k,
				iters;
	float	   *a,
			   *b,
			   *c;
	double		best = 1e30;

	if (argc < 5)
	{
		fprintf(stderr, "usage: --sgemm M N K [iterations]\n");
		return 2;
	}
	m = atoi(argv[2]);
	n = atoi(argv[3]);
	k = atoi(argv[4]);
	iters = argc > 5 ? atoi(argv[5]) : 5;
	if (m < 1 || n < 1 || k < 1 || iters < 1)
		return 2;
	a = xmalloc((size_t) m * (size_t) k * sizeof(float));
	b = xmalloc((size_t) n * (size_t) k * sizeof(float));
	c = xmalloc((size_t) m * (size_t) n * sizeof(float));
	for (size_t i = 0; i < (size_t) m * (size_t) k; i++)
		a[i] = (float) (i % 17) * 0.01f - 0.08f;
	for (size_t i = 0; i < (size_t) n * (size_t) k; i++)
		b[i] = (float) (i % 13) * 0.01f - 0.06f;
	for (int i = 0; i <= iters; i++)
	{
		double		t0 = now_ms(),
					t;

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
		t = now_ms() - t0;
		if (i > 0 && t < best)
			best = t;
	}
	printf("sgemm %d %d %d %.3f %.1f\n", m, n, k, best, 2.0 * m * n * k / 1e9 / (best / 1e3));
	free(a);
	free(b);
	free(c);
	return 0;
}

/* ------------------------------------------------------------------------ */

/*
 * The six linear layers of camembert-base's encoder layers (768x768 four
 * times, 768->3072, 3072->768), `layers` of them with their own weights (so
 * that the weights stream from memory as in a forward pass), n rows: OpenBLAS
 * against cb_kernel_matmul_nt without and with its packing scratch; best CPU
 * time of 4.
 */
static int
mode_matmul(int argc, char **argv)
{
	const size_t h = 768,
				inter = 3072;
	size_t		n,
				layers,
				per;
	float	   *w,
			   *x,
			   *y,
			   *pack;

	if (argc < 3)
	{
		fprintf(stderr, "usage: --matmul N [layers=12]\n");
		return 2;
	}
	n = (size_t) atol(argv[2]);
	layers = argc > 3 ? (size_t) atol(argv[3]) : 12;
	if (n < 1 || layers < 1)
		return 2;
	per = 4 * h * h + 2 * h * inter;
	w = xmalloc(per * layers * sizeof(float));
	x = xmalloc(n * inter * sizeof(float));
	y = xmalloc(n * inter * sizeof(float));
	pack = cb_kernel_matmul_pack_floats ? xmalloc(cb_kernel_matmul_pack_floats(n, inter) * sizeof(float)) : NULL;
	for (size_t i = 0; i < per * layers; i++)
		w[i] = (float) (i % 11) * 0.001f - 0.005f;
	for (size_t i = 0; i < n * inter; i++)
		x[i] = (float) (i % 7) * 0.01f;
	for (int mode = 0; mode < 3; mode++)
	{
		double		best = 1e30,
					flops = 0;

		if (mode > 0 && cb_kernel_matmul_nt == NULL)
			break;
		for (int rep = 0; rep < 4; rep++)
		{
			struct timespec t0,
						t1;
			double		ms;

			flops = 0;
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
			for (size_t l = 0; l < layers; l++)
			{
				const float *wl = w + per * l;
				const struct
				{
					const float *in_x;
					const float *wm;
					float	   *out_y;
					size_t		out,
								in;
				}			p[6] = {
					{x, wl, y, h, h}, {x, wl + h * h, y, h, h}, {x, wl + 2 * h * h, y, h, h},
					{x, wl + 3 * h * h, y, h, h}, {x, wl + 4 * h * h, y, inter, h},
					{y, wl + 4 * h * h + h * inter, x, h, inter},
				};

				for (int j = 0; j < 6; j++)
				{
					if (mode == 0)
						cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int) n, (int) p[j].out,
									(int) p[j].in, 1.0f, p[j].in_x, (int) p[j].in, p[j].wm, (int) p[j].in,
									0.0f, p[j].out_y, (int) p[j].out);
					else
						cb_kernel_matmul_nt(p[j].in_x, p[j].in, p[j].wm, p[j].in, NULL, 1.0f, p[j].out_y,
											p[j].out, n, p[j].out, p[j].in, mode == 2 ? pack : NULL
											BENCH_MM_THREADS);
					flops += 2.0 * (double) n * (double) p[j].out * (double) p[j].in;
				}
			}
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
			ms = (double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6;
			if (ms < best)
				best = ms;
		}
		printf("matmul %s %zu %.3f %.1f\n", mode == 0 ? "blas" : mode == 1 ? "ours_nopack" : "ours",
			   n, best, flops / 1e9 / (best / 1e3));
	}
	free(w);
	free(x);
	free(y);
	free(pack);
	return 0;
}

/*
 * The size of the image cb_model_source_write_image would build: what the
 * model takes in shared memory (the SQL layer's segment holds this image).
 */
static int
mode_image(int argc, char **argv)
{
	cb_model_source *src;
	cb_error	err;
	const cb_config *cfg;
	const char *pname = precision_name ? precision_name : "auto";

	if (argc < 3)
	{
		fprintf(stderr, "usage: [--precision P] --image MODEL_DIR\n");
		return 2;
	}
	if (cb_model_source_open(argv[2], &src, &err) != CB_OK)
	{
		fprintf(stderr, "%s: %s\n", argv[2], err.message);
		return 1;
	}
#ifdef CB_PRECISION_NAMES
	{
		cb_precision p;

		if (!cb_precision_from_name(pname, &p))
		{
			fprintf(stderr, "unknown precision %s (%s)\n", pname, CB_PRECISION_NAMES);
			return 2;
		}
		if (cb_model_source_set_precision(src, p, &err) != CB_OK)
		{
			fprintf(stderr, "%s: %s\n", argv[2], err.message);
			return 1;
		}
	}
#else
	if (precision_name != NULL)
	{
		fprintf(stderr, "this core has no precisions (--precision %s)\n", precision_name);
		return 2;
	}
#endif
#ifdef CB_PRECISION_NAMES
	cfg = cb_model_source_config(src);
	printf("image %s %zu stored %s parameters %llu\n", pname, cb_model_source_image_size(src),
		   cb_dtype_name(cfg->stored_dtype), (unsigned long long) cb_model_source_parameter_count(src));
#else
	(void) cfg;
	printf("image %s %zu stored ? parameters %llu\n", pname, cb_model_source_image_size(src),
		   (unsigned long long) cb_model_source_parameter_count(src));
#endif
	cb_model_source_close(src);
	return 0;
}

#ifdef CB_MAX_BEAMS
static int
mode_generate(int argc, char **argv)
{
	cb_model	model;
	int			beams = argc > 3 ? atoi(argv[3]) : 4;
	int			max_new = argc > 4 ? atoi(argv[4]) : 32;
	int			rounds = argc > 5 ? atoi(argv[5]) : 5;
	int32_t		prompt[8] = {5, 280, 113, 109, 7, 326, 186, 44};
	int32_t    *out;
	int32_t		n_new[64],
				n_ret;
	double	   *t_greedy,
			   *t_beam;
	cb_generate_options gen;
	cb_beam_options bo;
	cb_error	err;

	if (argc < 3 || beams < 1 || beams > 64 || max_new < 1 || rounds < 1)
	{
		fprintf(stderr, "usage: [--precision P] --generate MODEL_DIR [beams] [max_new] [rounds]\n");
		return 2;
	}
	load_model(argv[2], &model);
	for (int i = 0; i < 8; i++)
		prompt[i] %= model.config.vocab_size;
	cb_generate_default_options(&model, &gen);
	gen.max_new_tokens = max_new;
	gen.eos_token_id = -1;
	cb_beam_default_options(&bo);
	bo.num_beams = beams;
	out = xmalloc(sizeof(int32_t) * (size_t) beams * (size_t) max_new);
	t_greedy = xmalloc(sizeof(double) * (size_t) rounds);
	t_beam = xmalloc(sizeof(double) * (size_t) rounds);
	/* one untimed run of each first: warm caches and the thread pool */
	for (int r = -1; r < rounds; r++)
	{
		double		t0 = now_ms();

		if (cb_generate(BENCH_CC &model, prompt, 8, &gen, out, &n_new[0], NULL, NULL, &err) != CB_OK)
		{
			fprintf(stderr, "generate: %s\n", err.message);
			return 1;
		}
		if (r >= 0)
			t_greedy[r] = now_ms() - t0;
		t0 = now_ms();
		if (cb_beam_search(BENCH_CC &model, prompt, 8, &gen, &bo, out, n_new, NULL, &n_ret, &err) != CB_OK)
		{
			fprintf(stderr, "beam search: %s\n", err.message);
			return 1;
		}
		if (r >= 0)
			t_beam[r] = now_ms() - t0;
	}
	qsort(t_greedy, (size_t) rounds, sizeof(double), cmp_double);
	qsort(t_beam, (size_t) rounds, sizeof(double), cmp_double);
	printf("generate greedy %d %.3f %.1f\n", max_new, t_greedy[rounds / 2],
		   max_new * 1000.0 / t_greedy[rounds / 2]);
	printf("generate beam%d %d %.3f %.1f\n", beams, max_new, t_beam[rounds / 2],
		   max_new * 1000.0 / t_beam[rounds / 2]);
	printf("generate ratio beam%d/greedy time %.2f\n", beams, t_beam[rounds / 2] / t_greedy[rounds / 2]);
	free(out);
	free(t_greedy);
	free(t_beam);
	unload_model(&model);
	return 0;
}
#else
static int
mode_generate(int argc, char **argv)
{
	fprintf(stderr, "this core has no beam search (--generate)\n");
	return 2;
}
#endif

int
main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--precision") == 0)
	{
		precision_name = argv[2];
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	if (argc < 2)
	{
		fprintf(stderr, "usage: %s [--precision P] MODEL_DIR [batch] [seq_len] [iterations]\n"
				"       %s [--precision P] --texts MODEL_DIR TEXTS\n"
				"       %s [--precision P] --image MODEL_DIR\n"
				"       %s --sgemm M N K [iterations]\n"
				"       %s --matmul N [layers]\n"
				"       %s [--precision P] --generate MODEL_DIR [beams] [max_new] [rounds]\n"
				"       %s --isa\n", argv[0], argv[0], argv[0], argv[0], argv[0], argv[0], argv[0]);
		return 2;
	}
	printf("threads %d\n", openblas_get_num_threads());
	if (strcmp(argv[1], "--isa") == 0)
	{
		printf("isa %s\n", cb_kernel_isa ? cb_kernel_isa() : "blas");
		return 0;
	}
	if (strcmp(argv[1], "--texts") == 0)
		return mode_texts(argc, argv);
	if (strcmp(argv[1], "--image") == 0)
		return mode_image(argc, argv);
	if (strcmp(argv[1], "--generate") == 0)
		return mode_generate(argc, argv);
	if (strcmp(argv[1], "--sgemm") == 0)
		return mode_sgemm(argc, argv);
	if (strcmp(argv[1], "--matmul") == 0)
		return mode_matmul(argc, argv);
	return mode_simple(argc, argv);
}
