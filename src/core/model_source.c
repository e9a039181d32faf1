/*
 * model_source.c — a model directory as the source of a model image (see
 * model_image.h): config.json and the weight files' tensors checked against the
 * roles, a slot for each, the image's layout for a precision (matrix_format()).
 * The image format: model_image_internal.h; writing it: model_convert.c.
 */
#include "model_image.h"
#include "model_files.h"
#include "safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_image_internal.h"

void
cb_model_source_close(cb_model_source *src)
{
	if (src == NULL)
		return;
	cb_config_free(src->mc);
	cb_model_files_free(&src->weights);
	cb_free(src->slots);
	cb_free(src->dir);
	cb_free(src->root);
	cb_free(src);
}

/* Find name, trying the ".gamma"/".beta" spelling of LayerNorm parameters. */
static const cb_tensor_info *
find_tensor(const cb_tensor_list *list, const char *name)
{
	const cb_tensor_info *t = cb_tensor_list_find(list, name);
	char		alt[512];
	size_t		n = strlen(name);

	if (t != NULL || n + 2 >= sizeof(alt) || strstr(name, "LayerNorm") == NULL)
		return t;
	if (n > 7 && strcmp(name + n - 7, ".weight") == 0)
	{
		memcpy(alt, name, n - 7);
		strcpy(alt + n - 7, ".gamma");
		return cb_tensor_list_find(list, alt);
	}
	if (n > 5 && strcmp(name + n - 5, ".bias") == 0)
	{
		memcpy(alt, name, n - 5);
		strcpy(alt + n - 5, ".beta");
		return cb_tensor_list_find(list, alt);
	}
	return NULL;
}

static void
tensor_name(const role_def *r, const char *prefix, uint32_t layer, char *buf, size_t size)
{
	switch (r->where)
	{
		case IN_BASE:
			snprintf(buf, size, "%s%s", prefix, r->name);
			break;
		case IN_LAYER:
			snprintf(buf, size, "%sencoder.layer.%u.%s", prefix, layer, r->name);
			break;
		default:
			snprintf(buf, size, "%s", r->name);
			break;
	}
}

static bool
shape_equal(const cb_tensor_info *t, const int64_t *shape, int ndim)
{
	if (t->ndim != ndim)
		return false;
	for (int i = 0; i < ndim; i++)
		if (t->shape[i] != shape[i])
			return false;
	return true;
}

static cb_status
check_tensor(const cb_model_source *src, const cb_tensor_info *t, const char *name,
			 const int64_t *shape, int ndim, cb_error *err)
{
	char		got[128],
				want[128];
	const char *file = src->weights.files[t->file].path;

	if (!shape_equal(t, shape, ndim))
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: tensor '%s' has shape %s but config.json implies %s",
							file, name, cb_tensor_shape_string(t->shape, t->ndim, got, sizeof(got)),
							cb_tensor_shape_string(shape, ndim, want, sizeof(want)));
	if (t->dtype != CB_TENSOR_F32 && t->dtype != CB_TENSOR_F16 && t->dtype != CB_TENSOR_BF16)
		return cb_set_error(err, CB_ERR_UNSUPPORTED,
							"%s: tensor '%s' has dtype %s (only F32, F16 and BF16 weights are supported)",
							file, name, cb_tensor_dtype_name(t->dtype));
	return CB_OK;
}

static const char *
weights_desc(const cb_model_source *src)
{
	return src->weights.weights_file;
}

static int
slot_by_position(const void *a, const void *b)
{
	const cb_tensor_info *x = (*(const slot *const *) a)->tensor;
	const cb_tensor_info *y = (*(const slot *const *) b)->tensor;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return 0;
}

/*
 * Two used tensors must not share bytes of a file.  Safetensors files cannot
 * (their tensors tile the data area), but a pytorch_model.bin may alias one
 * storage from many tensors; legitimate checkpoints alias only the decoder
 * (to the word embeddings), which is exempt.  Without this check a small
 * hostile file could ask for an image thousands of times its size.
 */
static cb_status
check_no_shared_bytes(const cb_model_source *src, cb_error *err)
{
	const slot **order = cb_calloc(src->num_slots, sizeof(slot *));
	size_t		n = 0;
	cb_status	st = CB_OK;

	if (order == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory");
	/* an untied decoder may still be stored as an alias (a tied checkpoint read untied) */
	for (size_t i = 0; i < src->num_slots; i++)
		if (src->slots[i].tensor != NULL && src->slots[i].role != ROLE_LM_DECODER_W)
			order[n++] = &src->slots[i];
	if (n > 1)
		qsort(order, n, sizeof(slot *), slot_by_position);
	for (size_t i = 1; i < n && st == CB_OK; i++)
	{
		const cb_tensor_info *p = order[i - 1]->tensor,
				   *q = order[i]->tensor;

		if (p->file == q->file && q->offset < p->offset + p->nbytes)
			st = cb_set_error(err, CB_ERR_FORMAT,
							  "%s: tensors '%s' and '%s' share bytes of the file (aliased storage); "
							  "only the LM decoder may alias the word embeddings",
							  src->weights.files[q->file].path, p->name, q->name);
	}
	cb_free(order);
	return st;
}

static cb_status
plan_slots(cb_model_source *src, cb_error *err)
{
	const cb_config *c = &src->mc->config;
	static const char *const prefixes[] = {"roberta.", "camembert.", ""};
	const char *prefix = NULL;
	size_t		n = 0;
	char		name[512];
	int64_t		shape[2];

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
	{
		snprintf(name, sizeof(name), "%sembeddings.word_embeddings.weight", prefixes[i]);
		if (cb_tensor_list_find(&src->weights.tensors, name) != NULL)
		{
			if (prefix != NULL)
				return cb_set_error(err, CB_ERR_FORMAT,
									"%s/%s: both '%sembeddings.word_embeddings.weight' and '%s' are present: "
									"ambiguous checkpoint", src->dir, weights_desc(src), prefix, name);
			prefix = prefixes[i];
		}
	}
	if (prefix == NULL)
	{
		expected_shape(&roles[ROLE_WORD_EMB], c, shape);
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s/%s: tensor 'roberta.embeddings.word_embeddings.weight' is missing "
							"(expected shape [%lld, %lld]; also looked for the 'camembert.' and unprefixed names)",
							src->dir, weights_desc(src), (long long) shape[0], (long long) shape[1]);
	}

	src->num_slots = slot_count(c);
	src->slots = cb_calloc(src->num_slots, sizeof(slot));
	if (src->slots == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory");

	for (uint32_t ri = 0; ri < NUM_ROLES; ri++)
	{
		const role_def *r = &roles[ri];
		uint32_t	nlayers = r->where == IN_LAYER ? (uint32_t) c->num_hidden_layers : 1;

		if (!role_used(r, c->architecture))
			continue;
		for (uint32_t l = 0; l < nlayers; l++)
		{
			slot	   *s = &src->slots[n++];
			const cb_tensor_info *t;
			int			ndim = expected_shape(r, c, shape);
			cb_status	st;
			char		want[128];

			s->role = ri;
			s->layer = l;
			s->count = expected_numel(r, c);
			tensor_name(r, prefix, l, name, sizeof(name));
			t = find_tensor(&src->weights.tensors, name);

			if (ri == ROLE_LM_BIAS)
			{
				/* lm_head.decoder.bias is the same parameter (an alias, stored by torch.save) */
				const cb_tensor_info *alias = cb_tensor_list_find(&src->weights.tensors, "lm_head.decoder.bias");

				if (alias != NULL &&
					(st = check_tensor(src, alias, "lm_head.decoder.bias", shape, ndim, err)) != CB_OK)
					return st;
				if (t == NULL)
					t = alias;
			}
			if (ri == ROLE_LM_DECODER_W && src->mc->tie_word_embeddings)
			{
				/* tied: the alias, if stored, must match; the word embeddings are used */
				if (t != NULL && (st = check_tensor(src, t, name, shape, ndim, err)) != CB_OK)
					return st;
				s->tensor = NULL;
				continue;
			}
			if (t == NULL)
				return cb_set_error(err, CB_ERR_FORMAT,
									"%s/%s: tensor '%s' is missing (expected shape %s)",
									src->dir, weights_desc(src), name,
									cb_tensor_shape_string(shape, ndim, want, sizeof(want)));
			if ((st = check_tensor(src, t, name, shape, ndim, err)) != CB_OK)
				return st;
			s->tensor = t;
		}
	}
	if (n != src->num_slots)
		return cb_set_error(err, CB_ERR_INVALID, "internal error: %zu slots planned, %zu expected",
							n, src->num_slots);
	return check_no_shared_bytes(src, err);
}

/*
 * The format of a weight matrix (model.h: which tensors are matrices) for a
 * precision and the tensor's dtype in the file.
 */
static cb_matrix_format
matrix_format(cb_precision precision, cb_tensor_dtype file_dtype)
{
	switch (precision)
	{
		case CB_PRECISION_AUTO:
			return file_dtype == CB_TENSOR_F16 ? CB_MATRIX_F16 :
				file_dtype == CB_TENSOR_BF16 ? CB_MATRIX_BF16 : CB_MATRIX_F32;
		case CB_PRECISION_FLOAT32:
			return CB_MATRIX_F32;
		case CB_PRECISION_BFLOAT16:
			return CB_MATRIX_BF16_PACKED;
		case CB_PRECISION_INT8:
			return CB_MATRIX_INT8_PACKED;
	}
	return CB_MATRIX_F32;
}

static cb_status
layout(cb_model_source *src, cb_error *err)
{
	const cb_model_config *mc = src->mc;
	uint64_t	off = sizeof(image_header);
	uint64_t	word_offset = 0;

	off = align_up(off, 8);
	src->config_offset = off;
	off += sizeof(cb_config);
	off = align_up(off, 8);
	src->table_offset = off;
	off += (uint64_t) src->num_slots * sizeof(image_tensor);
	off = align_up(off, 8);
	src->labels_offset = off;
	if (mc->config.num_labels > 0)
	{
		off += (uint64_t) mc->config.num_labels * 8;
		for (int32_t i = 0; i < mc->config.num_labels; i++)
			off += strlen(mc->labels[i]) + 1;
	}
	src->labels_size = off - src->labels_offset;
	off = align_up(off, CB_MODEL_IMAGE_ALIGN);
	src->weights_offset = off;
	src->parameter_count = 0;
	for (size_t i = 0; i < src->num_slots; i++)
	{
		slot	   *s = &src->slots[i];
		const role_def *r = &roles[s->role];

		if (s->tensor == NULL)
		{
			/* tied decoder: the word embeddings (slot 0, laid out first) */
			s->offset = word_offset;
			s->format = src->slots[0].format;
			s->bytes = src->slots[0].bytes;
			continue;
		}
		off = align_up(off, CB_MODEL_IMAGE_ALIGN);
		s->offset = off;
		if (s->role == ROLE_WORD_EMB)
			word_offset = off;
		/* counts are bounded by the file sizes already checked: no overflow */
		if (s->count > (UINT64_MAX / 8))
			return cb_set_error(err, CB_ERR_LIMIT, "model image size overflows");
		if (r->matrix)
		{
			int64_t		shape[2];

			(void) expected_shape(r, &mc->config, shape);
			s->format = matrix_format(src->precision, s->tensor->dtype);
			s->bytes = cb_matrix_blob_bytes(s->format, (size_t) shape[0], (size_t) shape[1]);
			if (s->bytes == 0)
				return cb_set_error(err, CB_ERR_LIMIT, "model image size overflows");
		}
		else
		{
			s->format = CB_MATRIX_F32;
			s->bytes = s->count * 4;
		}
		if (off + s->bytes < off)
			return cb_set_error(err, CB_ERR_LIMIT, "model image size overflows");
		off += s->bytes;
		src->parameter_count += s->count;
	}
	off = align_up(off, CB_MODEL_IMAGE_ALIGN);
	if (off > (uint64_t) SIZE_MAX)
		return cb_set_error(err, CB_ERR_LIMIT, "model image of %llu bytes does not fit in memory",
							(unsigned long long) off);
	src->total_size = off;
	return CB_OK;
}

cb_status
cb_model_source_open(const char *dir, cb_model_source **out, cb_error *err)
{
	return cb_model_source_open_in(dir, NULL, out, err);
}

static char *
copy_string(const char *s)
{
	char	   *p = cb_malloc(strlen(s) + 1);

	if (p != NULL)
		memcpy(p, s, strlen(s) + 1);
	return p;
}

cb_status
cb_model_source_open_in(const char *dir, const char *root, cb_model_source **out, cb_error *err)
{
	cb_model_source *src;
	cb_status	st;
	char	   *path = NULL;

	*out = NULL;
	if (dir == NULL || dir[0] == '\0')
		return cb_set_error(err, CB_ERR_INVALID, "empty model directory path");
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	return cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: model files can only be read on little-endian machines", dir);
#endif
	src = cb_calloc(1, sizeof(*src));
	if (src == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory");
	src->dir = copy_string(dir);
	if (root != NULL && root[0] != '\0')
		src->root = copy_string(root);
	if (src->dir == NULL || (root != NULL && root[0] != '\0' && src->root == NULL))
	{
		cb_free(src->dir);
		cb_free(src->root);
		cb_free(src);
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory");
	}

	path = cb_path_join(dir, "config.json");
	if (path == NULL)
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "out of memory");
		goto fail;
	}
	st = cb_config_load(path, src->root, &src->mc, err);
	cb_free(path);
	path = NULL;
	if (st != CB_OK)
		goto fail;

	if ((st = cb_model_files_read(dir, src->root, &src->weights, err)) != CB_OK)
		goto fail;

	if ((st = plan_slots(src, err)) != CB_OK)
		goto fail;
	/* stored dtype: that of the word embeddings */
	switch (src->slots[0].tensor->dtype)
	{
		case CB_TENSOR_F16:
			src->mc->config.stored_dtype = CB_DTYPE_F16;
			break;
		case CB_TENSOR_BF16:
			src->mc->config.stored_dtype = CB_DTYPE_BF16;
			break;
		default:
			src->mc->config.stored_dtype = CB_DTYPE_F32;
			break;
	}
	if ((st = layout(src, err)) != CB_OK)
		goto fail;
	*out = src;
	return CB_OK;

fail:
	cb_free(path);
	cb_model_source_close(src);
	return st;
}

cb_status
cb_model_source_set_precision(cb_model_source *src, cb_precision precision, cb_error *err)
{
	if (src == NULL || cb_precision_name(precision) == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "unknown precision %d (accepted: " CB_PRECISION_NAMES ")",
							(int) precision);
	src->precision = precision;
	return layout(src, err);
}

size_t
cb_model_source_image_size(const cb_model_source *src)
{
	return src ? (size_t) src->total_size : 0;
}

const cb_config *
cb_model_source_config(const cb_model_source *src)
{
	return &src->mc->config;
}

const char *
cb_model_source_label(const cb_model_source *src, int32_t id)
{
	if (src->mc->labels == NULL || id < 0 || id >= src->mc->config.num_labels)
		return NULL;
	return src->mc->labels[id];
}

const char *
cb_model_source_weights_file(const cb_model_source *src)
{
	return src->weights.weights_file;
}

uint64_t
cb_model_source_parameter_count(const cb_model_source *src)
{
	return src->parameter_count;
}

