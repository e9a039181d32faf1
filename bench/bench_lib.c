/*
 * bench_lib.c — the engine as a shared library for bench/bench.py (ctypes), so that
 * one Python process can time our forward pass and PyTorch's in alternation, on
 * the same inputs, under the same load.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -fPIC -shared -Isrc/core -o build/bench/engine/libcbbench.so \
 *       bench/bench_lib.c src/core/[a-z]*.c $(pkg-config --cflags --libs hdf5) -lopenblas -lm -lpthread
 */
#include "forward.h"
#include "load_model.h"
#include "model_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_compute.h"

/* the core's name of its matrix-product code path (matmul_f32.h; weak: a core from before it has none) */
extern const char *cb_kernel_isa(void) __attribute__((weak));

typedef struct cbb
{
	cb_model	model;
	cb_workspace ws;
} cbb;

/*
 * Load a model directory; NULL on error (message in err).  precision: NULL
 * for the default (auto), else a cb_precision name (auto, float32, bfloat16,
 * int8); a core from before cb_precision (BENCH_CORE_DIR) accepts none
 * (load_model.h).
 */
void *
cbb_open_precision(const char *dir, const char *precision, char *err, int err_len)
{
	cbb		   *h = calloc(1, sizeof(cbb));

	if (h == NULL)
	{
		snprintf(err, (size_t) err_len, "out of memory");
		return NULL;
	}
	if (bench_load_model(dir, precision, &h->model, err, (size_t) err_len) != 0)
	{
		free(h);
		return NULL;
	}
	cb_workspace_init(&h->ws);
	return h;
}

void *
cbb_open(const char *dir, char *err, int err_len)
{
	return cbb_open_precision(dir, NULL, err, err_len);
}

/*
 * Bytes of the image the model would be built into at that precision (NULL:
 * the default): what it takes in shared memory.  -1 on error (message in err).
 */
long long
cbb_image_bytes(const char *dir, const char *precision, char *err, int err_len)
{
	cb_model_source *src;
	cb_error	e;
	long long	n;

	if (cb_model_source_open(dir, &src, &e) != CB_OK)
	{
		snprintf(err, (size_t) err_len, "%s", e.message);
		return -1;
	}
	if (precision != NULL)
	{
#ifdef CB_PRECISION_NAMES
		cb_precision p;

		if (!cb_precision_from_name(precision, &p) || cb_model_source_set_precision(src, p, &e) != CB_OK)
		{
			snprintf(err, (size_t) err_len, "precision %s refused", precision);
			cb_model_source_close(src);
			return -1;
		}
#else
		snprintf(err, (size_t) err_len, "this core has no precisions (%s)", precision);
		cb_model_source_close(src);
		return -1;
#endif
	}
	n = (long long) cb_model_source_image_size(src);
	cb_model_source_close(src);
	return n;
}

int
cbb_num_labels(void *handle)
{
	return ((cbb *) handle)->model.config.num_labels;
}

/* Class logits [batch][labels] of ids [batch][seq] (every token attended); 0 on success. */
int
cbb_classify(void *handle, int batch, int seq, const int32_t *ids, float *logits, char *err, int err_len)
{
	cbb		   *h = handle;
	cb_forward_input in = {batch, seq, ids, NULL};
	cb_forward_output out;
	cb_error	e;

	memset(&out, 0, sizeof(out));
	out.class_logits = logits;
	if (cb_forward(BENCH_CC &h->model, &in, &out, &h->ws, &e) != CB_OK)
	{
		snprintf(err, (size_t) err_len, "%s", e.message);
		return 1;
	}
	return 0;
}

/* cb_forward_flops: the encoder's matrix products, multiply-adds counted 2. */
double
cbb_flops(void *handle, long tokens, int seq)
{
	return cb_forward_flops(&((cbb *) handle)->model, tokens, seq);
}

const char *
cbb_isa(void)
{
	return cb_kernel_isa ? cb_kernel_isa() : "blas";
}

void
cbb_close(void *handle)
{
	cbb		   *h = handle;

	cb_workspace_release(&h->ws);
	cb_model_view_release(&h->model);
	free(h);
}
