/*
 * golden_model.c — see golden_model.h.
 */
#include "golden_model.h"
#include "model_image.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int
ut_load_model(const char *dir, ut_loaded_model *out)
{
	return ut_load_model_precision(dir, CB_PRECISION_AUTO, out);
}

int
ut_load_model_precision(const char *dir, cb_precision precision, ut_loaded_model *out)
{
	cb_error	err;
	cb_model_source *src = NULL;
	size_t		size;
	void	   *image;

	memset(out, 0, sizeof(*out));
	cb_clear_error(&err);
	if (cb_model_source_open(dir, &src, &err) != CB_OK)
	{
		fprintf(stderr, "cannot open model %s: %s\n", dir, err.message);
		return -1;
	}
	if (cb_model_source_set_precision(src, precision, &err) != CB_OK)
	{
		fprintf(stderr, "cannot set the precision of %s: %s\n", dir, err.message);
		cb_model_source_close(src);
		return -1;
	}
	size = cb_model_source_image_size(src);
	out->block = cb_malloc(size + CB_MODEL_IMAGE_ALIGN);
	if (out->block == NULL)
	{
		cb_model_source_close(src);
		fprintf(stderr, "out of memory for the image of %s\n", dir);
		return -1;
	}
	image = (void *) (((uintptr_t) out->block + CB_MODEL_IMAGE_ALIGN - 1) &
					  ~(uintptr_t) (CB_MODEL_IMAGE_ALIGN - 1));
	if (cb_model_source_write_image(src, image, size, &err) != CB_OK)
	{
		fprintf(stderr, "cannot build the image of %s: %s\n", dir, err.message);
		cb_model_source_close(src);
		cb_free(out->block);
		out->block = NULL;
		return -1;
	}
	cb_model_source_close(src);
	if (cb_model_view(image, size, &out->model, &err) != CB_OK)
	{
		fprintf(stderr, "cannot view the image of %s: %s\n", dir, err.message);
		cb_free(out->block);
		out->block = NULL;
		return -1;
	}
	return 0;
}

void
ut_unload_model(ut_loaded_model *m)
{
	if (m->block != NULL)
	{
		cb_model_view_release(&m->model);
		cb_free(m->block);
	}
	memset(m, 0, sizeof(*m));
}

cb_json_doc *
ut_json_load(const char *path)
{
	cb_error	err;
	cb_json_doc *doc = NULL;

	cb_clear_error(&err);
	if (cb_json_load_file(path, NULL, &doc, &err) != CB_OK)
	{
		fprintf(stderr, "cannot load %s: %s\n", path, err.message);
		return NULL;
	}
	return doc;
}

long
ut_json_ints(const cb_json_value *v, int32_t *out, size_t max)
{
	if (v == NULL || v->type != CB_JSON_ARRAY || v->count > max)
		return -1;
	for (size_t i = 0; i < v->count; i++)
	{
		if (v->items[i].type != CB_JSON_NUMBER || !v->items[i].is_integer)
			return -1;
		out[i] = (int32_t) v->items[i].integer;
	}
	return (long) v->count;
}

long
ut_json_floats(const cb_json_value *v, float *out, size_t max)
{
	if (v == NULL || v->type != CB_JSON_ARRAY || v->count > max)
		return -1;
	for (size_t i = 0; i < v->count; i++)
	{
		if (v->items[i].type != CB_JSON_NUMBER)
			return -1;
		out[i] = (float) v->items[i].number;
	}
	return (long) v->count;
}

double
ut_json_number(const cb_json_value *obj, const char *key)
{
	const cb_json_value *v = cb_json_get(obj, key);

	return (v != NULL && v->type == CB_JSON_NUMBER) ? v->number : NAN;
}

void
ut_diff_init(ut_diff *d, double tol)
{
	memset(d, 0, sizeof(*d));
	d->tol = tol;
}

void
ut_diff_add1(ut_diff *d, double got, double want, const char *where)
{
	double		delta = fabs(got - want);

	d->count++;
	if (isnan(delta))
		delta = INFINITY;
	if (delta > d->max_abs)
		d->max_abs = delta;
	if (delta > d->tol)
	{
		d->over++;
		if (d->printed < 5)
		{
			d->printed++;
			fprintf(stderr, "  %s: got %.9g, want %.9g (|d| %.3g)\n", where, got, want, delta);
		}
	}
}

void
ut_diff_add(ut_diff *d, const float *got, const float *want, size_t n, const char *where)
{
	for (size_t i = 0; i < n; i++)
	{
		char		buf[160];

		if (d->printed < 5 && fabs((double) got[i] - (double) want[i]) > d->tol)
			snprintf(buf, sizeof(buf), "%s[%zu]", where, i);
		else
			buf[0] = '\0';
		ut_diff_add1(d, got[i], want[i], buf);
	}
}
