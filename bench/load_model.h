/*
 * load_model.h — the bench programs' model loading: a model image built at a
 * precision (cb_model_source_*, then cb_model_view) in 64-byte aligned
 * memory, as the SQL layer's shared memory segments are.
 *
 * This is what cb_model_load_dir_precision does, except for the alignment:
 * its cb_malloc'ed block is only as aligned as malloc makes it (16 bytes for a
 * large block), and the int8 kernels' aligned loads (vmovdqa64) fault on
 * weights that are 64-byte aligned within the image but not in memory.
 *
 * precision: a cb_precision name, or NULL for the source's default (auto).
 * A core from before cb_precision (BENCH_CORE_DIR, no CB_PRECISION_NAMES)
 * accepts only NULL.  Returns 0, or -1 with a message in msg.  On success,
 * *image is the memory to free() after cb_model_view_release(model).
 */
#ifndef BENCH_LOAD_MODEL_H
#define BENCH_LOAD_MODEL_H

#include "model_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int
bench_load_model(const char *dir, const char *precision, cb_model *model, void **image, char *msg,
				 size_t msg_len)
{
	cb_model_source *src;
	cb_error	err;
	size_t		size;

	*image = NULL;
	memset(model, 0, sizeof(*model));
	if (cb_model_source_open(dir, &src, &err) != CB_OK)
	{
		snprintf(msg, msg_len, "%s", err.message);
		return -1;
	}
	if (precision != NULL)
	{
#ifdef CB_PRECISION_NAMES
		cb_precision p;

		if (!cb_precision_from_name(precision, &p))
		{
			snprintf(msg, msg_len, "unknown precision %s (%s)", precision, CB_PRECISION_NAMES);
			cb_model_source_close(src);
			return -1;
		}
		if (cb_model_source_set_precision(src, p, &err) != CB_OK)
		{
			snprintf(msg, msg_len, "%s", err.message);
			cb_model_source_close(src);
			return -1;
		}
#else
		snprintf(msg, msg_len, "this core has no precisions (%s)", precision);
		cb_model_source_close(src);
		return -1;
#endif
	}
	size = cb_model_source_image_size(src);
	*image = aligned_alloc(64, (size + 63) & ~(size_t) 63);
	if (*image == NULL)
	{
		snprintf(msg, msg_len, "out of memory for a %zu-byte image", size);
		cb_model_source_close(src);
		return -1;
	}
	if (cb_model_source_write_image(src, *image, size, &err) != CB_OK ||
		cb_model_view(*image, size, model, &err) != CB_OK)
	{
		snprintf(msg, msg_len, "%s", err.message);
		cb_model_source_close(src);
		free(*image);
		*image = NULL;
		return -1;
	}
	cb_model_source_close(src);
	return 0;
}

#endif							/* BENCH_LOAD_MODEL_H */
