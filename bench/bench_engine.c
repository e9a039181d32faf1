/*
 * bench_engine.c — time cb_forward on a model directory (e.g. the
 * camembert-base-shaped model of make_base_shaped_model.py).
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc/core -o build/bench_engine \
 *       bench/bench_engine.c src/core/[a-z]*.c -lopenblas -lm
 *   OPENBLAS_NUM_THREADS=1 build/bench_engine /tmp/base_cls 1 64 20
 *
 * Arguments: model_dir [batch=1] [seq_len=64] [iterations=10].
 * Input: deterministic pseudo-random ids, <s> ... </s>, no padding; the
 * model's head runs too (class logits, or logits at one position per row for
 * a LM).  Prints the min / median / mean time per forward pass and the
 * GFLOP/s of the encoder's matrix products (cb_forward_flops) at the median.
 */
#include "forward.h"
#include "model_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int
main(int argc, char **argv)
{
	const char *dir;
	int			batch = 1,
				seq = 64,
				iters = 10;
	cb_error	err;
	cb_model_source *src;
	cb_model	model;
	size_t		size;
	void	   *block,
			   *image;
	int32_t    *ids,
			   *pos;
	float	   *out_buf;
	double	   *times;
	cb_workspace ws;
	cb_forward_input in;
	cb_forward_output out;
	uint64_t	state = 12345;
	double		t0,
				flops,
				sum = 0;

	if (argc < 2)
	{
		fprintf(stderr, "usage: %s model_dir [batch] [seq_len] [iterations]\n", argv[0]);
		return 2;
	}
	dir = argv[1];
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

	t0 = now_ms();
	if (cb_model_source_open(dir, &src, &err) != CB_OK)
	{
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	size = cb_model_source_image_size(src);
	block = malloc(size + 64);
	image = (void *) (((uintptr_t) block + 63) & ~(uintptr_t) 63);
	if (block == NULL || cb_model_source_write_image(src, image, size, &err) != CB_OK ||
		cb_model_view(image, size, &model, &err) != CB_OK)
	{
		fprintf(stderr, "%s\n", block ? err.message : "out of memory");
		return 1;
	}
	cb_model_source_close(src);
	printf("loaded %s (%zu bytes image) in %.0f ms: %d layers, hidden %d, vocab %d\n", dir, size,
		   now_ms() - t0, model.config.num_hidden_layers, model.config.hidden_size,
		   model.config.vocab_size);

	ids = malloc((size_t) batch * (size_t) seq * sizeof(int32_t));
	pos = malloc((size_t) batch * sizeof(int32_t));
	for (int b = 0; b < batch; b++)
	{
		for (int t = 0; t < seq; t++)
		{
			state = state * 6364136223846793005ULL + 1442695040888963407ULL;
			ids[b * seq + t] = 7 + (int32_t) ((state >> 33) % (uint64_t) (model.config.vocab_size - 8));
		}
		ids[b * seq] = model.config.bos_token_id >= 0 ? model.config.bos_token_id : 0;
		ids[b * seq + seq - 1] = model.config.eos_token_id >= 0 ? model.config.eos_token_id : 2;
		pos[b] = b * seq + 1;
	}
	memset(&out, 0, sizeof(out));
	if (model.config.architecture == CB_ARCH_SEQUENCE_CLASSIFICATION)
	{
		out_buf = malloc((size_t) batch * (size_t) model.config.num_labels * sizeof(float));
		out.class_logits = out_buf;
	}
	else if (model.config.architecture == CB_ARCH_ENCODER)
	{
		out_buf = malloc((size_t) batch * (size_t) seq * (size_t) model.config.hidden_size * sizeof(float));
		out.last_hidden_state = out_buf;
	}
	else
	{
		out_buf = malloc((size_t) batch * (size_t) model.config.vocab_size * sizeof(float));
		out.logit_positions = pos;
		out.n_logit_positions = batch;
		out.position_logits = out_buf;
	}
	in = (cb_forward_input) {batch, seq, ids, NULL};
	cb_workspace_init(&ws);
	times = malloc((size_t) iters * sizeof(double));

	/* warm-up (sizes the workspace, touches the weights) */
	if (cb_forward(&model, &in, &out, &ws, &err) != CB_OK)
	{
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	for (int i = 0; i < iters; i++)
	{
		t0 = now_ms();
		if (cb_forward(&model, &in, &out, &ws, &err) != CB_OK)
		{
			fprintf(stderr, "%s\n", err.message);
			return 1;
		}
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
	cb_model_view_release(&model);
	free(block);
	free(ids);
	free(pos);
	free(out_buf);
	free(times);
	return 0;
}
