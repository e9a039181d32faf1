/*
 * load_model.h — the bench programs' model loading at a precision.
 *
 * precision: a cb_precision name, or NULL for the default (auto).  A core
 * from before cb_precision (BENCH_CORE_DIR, no CB_PRECISION_NAMES) accepts
 * only NULL.  The core's loader builds the image 64-byte aligned, as the SQL
 * layer's shared memory segments are; cb_model_view_release frees it.
 * Returns 0, or -1 with a message in msg.
 */
#ifndef BENCH_LOAD_MODEL_H
#define BENCH_LOAD_MODEL_H

#include "model_image.h"

#include <stdio.h>
#include <string.h>

static inline int
bench_load_model(const char *dir, const char *precision, cb_model *model, char *msg, size_t msg_len)
{
	cb_error	err;
	cb_status	st;

	memset(model, 0, sizeof(*model));
#ifdef CB_PRECISION_NAMES
	{
		cb_precision p = CB_PRECISION_AUTO;

		if (precision != NULL && !cb_precision_from_name(precision, &p))
		{
			snprintf(msg, msg_len, "unknown precision %s (%s)", precision, CB_PRECISION_NAMES);
			return -1;
		}
		st = cb_model_load_dir_precision(dir, p, model, &err);
	}
#else
	if (precision != NULL)
	{
		snprintf(msg, msg_len, "this core has no precisions (%s)", precision);
		return -1;
	}
	st = cb_model_load_dir(dir, model, &err);
#endif
	if (st != CB_OK)
	{
		snprintf(msg, msg_len, "%s", err.message);
		return -1;
	}
	return 0;
}

#endif							/* BENCH_LOAD_MODEL_H */
