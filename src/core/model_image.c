/*
 * model_image.c — model directory → model image → cb_model (see model_image.h).
 *
 * Image layout (all offsets from the start of the image, native little-endian):
 *
 *     image_header                     magic, version, sizes, offsets
 *     cb_config                        8-aligned, copied as is
 *     image_tensor[num_tensors]        8-aligned: (role, layer, offset, count,
 *                                      format, bytes)
 *     label table                      8-aligned: u64 offset[num_labels],
 *                                      then the NUL-terminated strings
 *     tensors                          each 64-aligned, in a fixed order (so
 *                                      an image depends only on the
 *                                      configuration, the precision and the
 *                                      values): vectors as float32, weight
 *                                      matrices as matrix_format() chooses
 *                                      (a blob of matrix.h)
 *
 * Padding bytes are zero, so two sources with equal weights give
 * byte-identical images (safetensors vs pytorch_model.bin).
 *
 * Which weight files of the directory are read, and reading them into one
 * tensor list: model_files.c.
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

/* ---- roles: which tensor fills which cb_model pointer -------------------- */

enum where
{
	IN_BASE,					/* <prefix>name */
	IN_LAYER,					/* <prefix>encoder.layer.<i>.name */
	IN_HEAD						/* name (no prefix) */
};

enum dim
{
	DIM_NONE, DIM_V, DIM_H, DIM_P, DIM_T, DIM_I, DIM_L
};

enum heads
{
	FOR_ALL, FOR_LM, FOR_CLS
};

typedef struct role_def
{
	const char *name;
	uint8_t		where;
	uint8_t		heads;
	uint8_t		dim0,
				dim1;			/* dim1 == DIM_NONE: a vector */
	size_t		field;			/* offsetof in cb_model (or cb_layer_weights for IN_LAYER) */
	bool		matrix;			/* a cb_matrix field (in the precision's format), else float * */
} role_def;

enum
{
	ROLE_WORD_EMB = 0,
	ROLE_LAYER_FIRST = 5,
	ROLE_LAYER_LAST = 20,
	ROLE_LM_DECODER_W = 25,
	ROLE_LM_BIAS = 26
};

#define M(f) offsetof(cb_model, f)
#define LW(f) offsetof(cb_layer_weights, f)

static const role_def roles[] = {
	{"embeddings.word_embeddings.weight", IN_BASE, FOR_ALL, DIM_V, DIM_H, M(word_embeddings), true},
	{"embeddings.position_embeddings.weight", IN_BASE, FOR_ALL, DIM_P, DIM_H, M(position_embeddings), false},
	{"embeddings.token_type_embeddings.weight", IN_BASE, FOR_ALL, DIM_T, DIM_H, M(token_type_embeddings), false},
	{"embeddings.LayerNorm.weight", IN_BASE, FOR_ALL, DIM_H, DIM_NONE, M(embeddings_ln_w), false},
	{"embeddings.LayerNorm.bias", IN_BASE, FOR_ALL, DIM_H, DIM_NONE, M(embeddings_ln_b), false},
	/* 5 .. 20: per layer */
	{"attention.self.query.weight", IN_LAYER, FOR_ALL, DIM_H, DIM_H, LW(query_w), true},
	{"attention.self.query.bias", IN_LAYER, FOR_ALL, DIM_H, DIM_NONE, LW(query_b), false},
	{"attention.self.key.weight", IN_LAYER, FOR_ALL, DIM_H, DIM_H, LW(key_w), true},
	{"attention.self.key.bias", IN_LAYER, FOR_ALL, DIM_H, DIM_NONE, LW(key_b), false},
	{"attention.self.value.weight", IN_LAYER, FOR_ALL, DIM_H, DIM_H, LW(value_w), true},
	{"attention.self.value.bias", IN_LAYER, FOR_ALL, DIM_H, DIM_NONE, LW(value_b), false},
	{"attention.output.dense.weight", IN_LAYER, FOR_ALL, DIM_H, DIM_H, LW(attn_out_w), true},
	{"attention.output.dense.bias", IN_LAYER, FOR_ALL, DIM_H, DIM_NONE, LW(attn_out_b), false},
	{"attention.output.LayerNorm.weight", IN_LAYER, FOR_ALL, DIM_H, DIM_NONE, LW(attn_ln_w), false},
	{"attention.output.LayerNorm.bias", IN_LAYER, FOR_ALL, DIM_H, DIM_NONE, LW(attn_ln_b), false},
	{"intermediate.dense.weight", IN_LAYER, FOR_ALL, DIM_I, DIM_H, LW(inter_w), true},
	{"intermediate.dense.bias", IN_LAYER, FOR_ALL, DIM_I, DIM_NONE, LW(inter_b), false},
	{"output.dense.weight", IN_LAYER, FOR_ALL, DIM_H, DIM_I, LW(out_w), true},
	{"output.dense.bias", IN_LAYER, FOR_ALL, DIM_H, DIM_NONE, LW(out_b), false},
	{"output.LayerNorm.weight", IN_LAYER, FOR_ALL, DIM_H, DIM_NONE, LW(out_ln_w), false},
	{"output.LayerNorm.bias", IN_LAYER, FOR_ALL, DIM_H, DIM_NONE, LW(out_ln_b), false},
	/* 21 .. 26: MLM / CLM head */
	{"lm_head.dense.weight", IN_HEAD, FOR_LM, DIM_H, DIM_H, M(lm_dense_w), true},
	{"lm_head.dense.bias", IN_HEAD, FOR_LM, DIM_H, DIM_NONE, M(lm_dense_b), false},
	{"lm_head.layer_norm.weight", IN_HEAD, FOR_LM, DIM_H, DIM_NONE, M(lm_ln_w), false},
	{"lm_head.layer_norm.bias", IN_HEAD, FOR_LM, DIM_H, DIM_NONE, M(lm_ln_b), false},
	{"lm_head.decoder.weight", IN_HEAD, FOR_LM, DIM_V, DIM_H, M(lm_decoder_w), true},
	{"lm_head.bias", IN_HEAD, FOR_LM, DIM_V, DIM_NONE, M(lm_decoder_b), false},
	/* 27 .. 30: classification head */
	{"classifier.dense.weight", IN_HEAD, FOR_CLS, DIM_H, DIM_H, M(cls_dense_w), true},
	{"classifier.dense.bias", IN_HEAD, FOR_CLS, DIM_H, DIM_NONE, M(cls_dense_b), false},
	{"classifier.out_proj.weight", IN_HEAD, FOR_CLS, DIM_L, DIM_H, M(cls_out_w), true},
	{"classifier.out_proj.bias", IN_HEAD, FOR_CLS, DIM_L, DIM_NONE, M(cls_out_b), false},
};

#undef M
#undef LW

#define NUM_ROLES ((uint32_t) (sizeof(roles) / sizeof(roles[0])))
#define LAYER_ROLES (ROLE_LAYER_LAST - ROLE_LAYER_FIRST + 1)

static bool
role_used(const role_def *r, cb_architecture arch)
{
	switch (r->heads)
	{
		case FOR_ALL:
			return true;
		case FOR_LM:
			return arch == CB_ARCH_MASKED_LM || arch == CB_ARCH_CAUSAL_LM;
		case FOR_CLS:
			return arch == CB_ARCH_SEQUENCE_CLASSIFICATION;
	}
	return false;
}

static int64_t
dim_value(uint8_t d, const cb_config *c)
{
	switch (d)
	{
		case DIM_V:
			return c->vocab_size;
		case DIM_H:
			return c->hidden_size;
		case DIM_P:
			return c->max_position_embeddings;
		case DIM_T:
			return c->type_vocab_size;
		case DIM_I:
			return c->intermediate_size;
		case DIM_L:
			return c->num_labels;
	}
	return 0;
}

static int
expected_shape(const role_def *r, const cb_config *c, int64_t *shape)
{
	shape[0] = dim_value(r->dim0, c);
	if (r->dim1 == DIM_NONE)
		return 1;
	shape[1] = dim_value(r->dim1, c);
	return 2;
}

static uint64_t
expected_numel(const role_def *r, const cb_config *c)
{
	int64_t		s[2];
	int			n = expected_shape(r, c, s);

	return n == 1 ? (uint64_t) s[0] : (uint64_t) s[0] * (uint64_t) s[1];
}

/* Number of (role, layer) slots for a configuration. */
static size_t
slot_count(const cb_config *c)
{
	size_t		n = 5 + (size_t) LAYER_ROLES * (size_t) c->num_hidden_layers;

	if (c->architecture == CB_ARCH_MASKED_LM || c->architecture == CB_ARCH_CAUSAL_LM)
		n += 6;
	else if (c->architecture == CB_ARCH_SEQUENCE_CLASSIFICATION)
		n += 4;
	return n;
}

/* ---- image format ------------------------------------------------------- */

typedef struct image_header
{
	char		magic[8];
	uint32_t	version;
	uint32_t	header_size;	/* sizeof(image_header) */
	uint64_t	total_size;
	uint32_t	config_size;	/* sizeof(cb_config) */
	uint32_t	num_tensors;
	uint64_t	config_offset;
	uint64_t	table_offset;
	uint64_t	labels_offset;
	uint64_t	labels_size;
	uint64_t	weights_offset;
	uint64_t	weights_size;	/* bytes from weights_offset to the end of the last tensor */
	uint64_t	parameter_count;
	uint32_t	num_labels;
	uint32_t	reserved;
} image_header;

typedef struct image_tensor
{
	uint32_t	role;
	uint32_t	layer;
	uint64_t	offset;
	uint64_t	count;			/* elements (parameters) */
	uint32_t	format;			/* cb_matrix_format; vectors: CB_MATRIX_F32 */
	uint32_t	reserved;
	uint64_t	bytes;			/* in the image */
} image_tensor;

static inline uint64_t
align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* ---- sources ------------------------------------------------------------ */

typedef struct slot
{
	uint32_t	role;
	uint32_t	layer;
	const cb_tensor_info *tensor;	/* NULL for the tied decoder (alias) */
	uint64_t	count;
	uint64_t	offset;			/* in the image */
	cb_matrix_format format;	/* vectors: CB_MATRIX_F32 */
	uint64_t	bytes;			/* in the image */
} slot;

struct cb_model_source
{
	char	   *dir;
	char	   *root;			/* files must lie below it (NULL: anywhere) */
	cb_model_config *mc;
	cb_model_files weights;		/* the weight files read, their tensors */
	slot	   *slots;
	size_t		num_slots;
	uint64_t	parameter_count;
	cb_precision precision;		/* of the image to build */
	/* layout */
	uint64_t	config_offset,
				table_offset,
				labels_offset,
				labels_size,
				weights_offset,
				total_size;
};

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

/* ---- conversion ----------------------------------------------------------- */

static inline uint32_t
f16_to_f32_bits(uint16_t h)
{
	uint32_t	sign = (uint32_t) (h & 0x8000) << 16;
	uint32_t	exp = (h >> 10) & 0x1F;
	uint32_t	mant = h & 0x3FF;

	if (exp == 0x1F)			/* inf / nan (payload kept) */
		return sign | 0x7F800000u | (mant << 13);
	if (exp != 0)
		return sign | ((exp + 112) << 23) | (mant << 13);
	if (mant == 0)
		return sign;
	/* subnormal: normalize */
	exp = 113;
	while ((mant & 0x400) == 0)
	{
		mant <<= 1;
		exp--;
	}
	mant &= 0x3FF;
	return sign | (exp << 23) | (mant << 13);
}

/*
 * Convert count 16-bit values stored at dst + 2*count (bytes) into float32
 * at dst, in place: element i is read before any write can reach it.
 */
static void
widen_in_place(unsigned char *dst, uint64_t count, bool bf16)
{
	const unsigned char *srcp = dst + count * 2;

	for (uint64_t i = 0; i < count; i++)
	{
		uint16_t	h;
		uint32_t	f;

		memcpy(&h, srcp + 2 * i, 2);
		f = bf16 ? (uint32_t) h << 16 : f16_to_f32_bits(h);
		memcpy(dst + 4 * i, &f, 4);
	}
}

static cb_status
open_checked(const cb_weight_file *fi, const char *root, cb_file_reader *r, cb_error *err)
{
	struct stat st;
	cb_status	s = cb_file_reader_open(r, fi->path, root, err);

	if (s != CB_OK)
		return s;
	if (fstat(r->fd, &st) != 0 || st.st_dev != fi->dev || st.st_ino != fi->ino ||
		st.st_size != fi->size || st.st_mtim.tv_sec != fi->mtime.tv_sec ||
		st.st_mtim.tv_nsec != fi->mtime.tv_nsec)
	{
		cb_file_reader_close(r);
		return cb_set_error(err, CB_ERR_IO, "%s: the file changed since it was validated", fi->path);
	}
	return CB_OK;
}

/*
 * The raw bytes (as stored: 2 or 4 per element) of a 2-D tensor, in PyTorch
 * orientation [rows, cols], into dst: a TensorFlow kernel (t->transposed,
 * stored [cols, rows]) is read whole and transposed.
 */
static cb_status
read_oriented(const cb_tensor_info *t, const cb_file_reader *fr, size_t rows, size_t cols,
			  unsigned char *dst, cb_error *err)
{
	size_t		elem = cb_tensor_dtype_size(t->dtype);
	unsigned char *tmp;
	cb_status	st;

	if (!t->transposed)
		return cb_file_reader_read(fr, t->offset, dst, (size_t) t->nbytes, err);
	tmp = cb_malloc((size_t) t->nbytes);
	if (tmp == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory transposing '%s'", t->name);
	st = cb_file_reader_read(fr, t->offset, tmp, (size_t) t->nbytes, err);
	if (st == CB_OK)
	{
		/* tmp is [cols][rows]: blocks of 32 × 32 elements for locality */
		for (size_t k0 = 0; k0 < cols; k0 += 32)
			for (size_t r0 = 0; r0 < rows; r0 += 32)
			{
				size_t		k1 = k0 + 32 < cols ? k0 + 32 : cols,
							r1 = r0 + 32 < rows ? r0 + 32 : rows;

				for (size_t k = k0; k < k1; k++)
					for (size_t r = r0; r < r1; r++)
						memcpy(dst + (r * cols + k) * elem, tmp + (k * rows + r) * elem, elem);
			}
	}
	cb_free(tmp);
	return st;
}

/* rows of a matrix converted at a time by write_packed */
#define PACK_CHUNK_ROWS 64

/*
 * A matrix in a packed format: PACK_CHUNK_ROWS rows at a time read from the
 * file, widened to float32 in a buffer, encoded into the image.
 */
static cb_status
write_packed(const cb_model_source *src, const slot *s, unsigned char *dst, cb_error *err)
{
	const cb_tensor_info *t = s->tensor;
	const role_def *r = &roles[s->role];
	int64_t		shape[2];
	size_t		rows,
				cols,
				elem = cb_tensor_dtype_size(t->dtype);
	float	   *buf;
	unsigned char *whole = NULL;
	cb_file_reader fr;
	cb_status	st;

	(void) expected_shape(r, &src->mc->config, shape);
	rows = (size_t) shape[0];
	cols = (size_t) shape[1];
	/* cols <= hidden/intermediate limits: the buffer is at most a few MB */
	buf = cb_malloc(PACK_CHUNK_ROWS * cols * sizeof(float));
	if (buf == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory converting a weight matrix");
	st = open_checked(&src->weights.files[t->file], src->root, &fr, err);
	if (st != CB_OK)
	{
		cb_free(buf);
		return st;
	}
	if (t->transposed)
	{
		/* a TensorFlow kernel: the whole matrix in PyTorch orientation, then in chunks */
		whole = cb_malloc((size_t) t->nbytes);
		if (whole == NULL)
			st = cb_set_error(err, CB_ERR_NOMEM, "out of memory converting a weight matrix");
		else
			st = read_oriented(t, &fr, rows, cols, whole, err);
	}
	for (size_t r0 = 0; r0 < rows && st == CB_OK; r0 += PACK_CHUNK_ROWS)
	{
		size_t		n = rows - r0 < PACK_CHUNK_ROWS ? rows - r0 : PACK_CHUNK_ROWS;
		unsigned char *raw = (unsigned char *) buf + (elem == 4 ? 0 : n * cols * 2);

		if (whole != NULL)
			memcpy(raw, whole + r0 * cols * elem, n * cols * elem);
		else
			st = cb_file_reader_read(&fr, t->offset + (uint64_t) r0 * cols * elem, raw, n * cols * elem, err);
		if (st != CB_OK)
			break;
		if (elem != 4)
			widen_in_place((unsigned char *) buf, (uint64_t) n * cols, t->dtype == CB_TENSOR_BF16);
		cb_matrix_encode_rows(s->format, rows, cols, dst, r0, n, buf);
	}
	cb_file_reader_close(&fr);
	cb_free(whole);
	cb_free(buf);
	return st;
}

cb_status
cb_model_source_write_image(const cb_model_source *src, void *dest, size_t dest_len,
							cb_error *err)
{
	unsigned char *img = dest;
	image_header h;
	const cb_config *c;

	if (src == NULL || dest == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "NULL model source or destination");
	if (dest_len < src->total_size)
		return cb_set_error(err, CB_ERR_INVALID, "destination of %zu bytes is smaller than the model image (%llu bytes)",
							dest_len, (unsigned long long) src->total_size);
	if (((uintptr_t) dest & 7) != 0)
		return cb_set_error(err, CB_ERR_INVALID, "model image destination must be 8-byte aligned");
	c = &src->mc->config;

	memset(img, 0, src->weights_offset);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, CB_MODEL_IMAGE_MAGIC, 8);
	h.version = CB_MODEL_IMAGE_VERSION;
	h.header_size = sizeof(image_header);
	h.total_size = src->total_size;
	h.config_size = sizeof(cb_config);
	h.num_tensors = (uint32_t) src->num_slots;
	h.config_offset = src->config_offset;
	h.table_offset = src->table_offset;
	h.labels_offset = src->labels_offset;
	h.labels_size = src->labels_size;
	h.weights_offset = src->weights_offset;
	h.weights_size = src->total_size - src->weights_offset;
	h.parameter_count = src->parameter_count;
	h.num_labels = (uint32_t) c->num_labels;
	memcpy(img, &h, sizeof(h));
	{
		cb_config	cc;

		/* copy field by field into a zeroed struct: no uninitialized padding */
		memset(&cc, 0, sizeof(cc));
		cc.architecture = c->architecture;
		cc.problem_type = c->problem_type;
		cc.stored_dtype = c->stored_dtype;
		cc.precision = src->precision;
		cc.vocab_size = c->vocab_size;
		cc.hidden_size = c->hidden_size;
		cc.num_hidden_layers = c->num_hidden_layers;
		cc.num_attention_heads = c->num_attention_heads;
		cc.intermediate_size = c->intermediate_size;
		cc.max_position_embeddings = c->max_position_embeddings;
		cc.type_vocab_size = c->type_vocab_size;
		cc.pad_token_id = c->pad_token_id;
		cc.bos_token_id = c->bos_token_id;
		cc.eos_token_id = c->eos_token_id;
		cc.num_labels = c->num_labels;
		cc.is_decoder = c->is_decoder;
		cc.layer_norm_eps = c->layer_norm_eps;
		memcpy(img + src->config_offset, &cc, sizeof(cc));
	}
	for (size_t i = 0; i < src->num_slots; i++)
	{
		image_tensor t;

		memset(&t, 0, sizeof(t));
		t.role = src->slots[i].role;
		t.layer = src->slots[i].layer;
		t.offset = src->slots[i].offset;
		t.count = src->slots[i].count;
		t.format = (uint32_t) src->slots[i].format;
		t.bytes = src->slots[i].bytes;
		memcpy(img + src->table_offset + i * sizeof(image_tensor), &t, sizeof(t));
	}
	if (c->num_labels > 0)
	{
		uint64_t	so = src->labels_offset + (uint64_t) c->num_labels * 8;

		for (int32_t i = 0; i < c->num_labels; i++)
		{
			size_t		n = strlen(src->mc->labels[i]) + 1;

			memcpy(img + src->labels_offset + (uint64_t) i * 8, &so, 8);
			memcpy(img + so, src->mc->labels[i], n);
			so += n;
		}
	}

	/* tensors */
	for (size_t i = 0; i < src->num_slots; i++)
	{
		const slot *s = &src->slots[i];
		const cb_tensor_info *t = s->tensor;
		uint64_t	end;
		uint64_t	next;
		cb_file_reader r;
		cb_status	st;
		unsigned char *dst;

		if (t == NULL)
			continue;
		r.fd = -1;
		dst = img + s->offset;
		if (s->format == CB_MATRIX_BF16_PACKED || s->format == CB_MATRIX_INT8_PACKED)
			st = write_packed(src, s, dst, err);
		else
		{
			st = open_checked(&src->weights.files[t->file], src->root, &r, err);
			if (st != CB_OK)
				return st;
			size_t		rows = t->ndim == 2 ? (size_t) t->shape[0] : 1,
						cols = t->ndim == 2 ? (size_t) t->shape[1] : (size_t) t->numel;

			if (t->dtype == CB_TENSOR_F32 || s->format != CB_MATRIX_F32)
				st = read_oriented(t, &r, rows, cols, dst, err);	/* as stored */
			else
			{
				st = read_oriented(t, &r, rows, cols, dst + s->count * 2, err);
				if (st == CB_OK)
					widen_in_place(dst, s->count, t->dtype == CB_TENSOR_BF16);
			}
			cb_file_reader_close(&r);
		}
		if (st != CB_OK)
			return st;
		/* zero the padding up to the next tensor (or the end) */
		end = s->offset + s->bytes;
		next = align_up(end, CB_MODEL_IMAGE_ALIGN);
		if (next > src->total_size)
			next = src->total_size;
		memset(img + end, 0, (size_t) (next - end));
		cb_check_interrupts();
	}
	return CB_OK;
}

/* ---- view ----------------------------------------------------------------- */

void
cb_model_view_release(cb_model *model)
{
	if (model == NULL)
		return;
	cb_free(model->layers);
	cb_free((void *) model->labels);
	cb_free(model->owned_image);
	memset(model, 0, sizeof(*model));
}

static bool
range_ok(uint64_t off, uint64_t len, uint64_t total)
{
	return off <= total && len <= total - off;
}

cb_status
cb_model_view(const void *image, size_t image_len, cb_model *out, cb_error *err)
{
	const unsigned char *img = image;
	image_header h;
	cb_config	c;
	cb_status	st;
	uint8_t    *seen = NULL;
	cb_layer_weights *layers = NULL;
	const char **labels = NULL;
	uint64_t	word_offset = UINT64_MAX;
	uint64_t	params = 0;
	uint64_t	bytes = 0;

	memset(out, 0, sizeof(*out));
	if (image == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "NULL model image");
	if (((uintptr_t) image & 7) != 0)
		return cb_set_error(err, CB_ERR_INVALID, "model image must be 8-byte aligned");
	if (image_len < sizeof(h))
		return cb_set_error(err, CB_ERR_FORMAT, "model image of %zu bytes is too short for its header", image_len);
	memcpy(&h, img, sizeof(h));
	if (memcmp(h.magic, CB_MODEL_IMAGE_MAGIC, 8) != 0)
		return cb_set_error(err, CB_ERR_FORMAT, "model image: bad magic (not a model image)");
	if (h.version != CB_MODEL_IMAGE_VERSION || h.header_size != sizeof(h) || h.config_size != sizeof(cb_config))
		return cb_set_error(err, CB_ERR_FORMAT,
							"model image: version %u (header %u bytes, config %u bytes) does not match this build "
							"(version %d, %zu, %zu)", h.version, h.header_size, h.config_size,
							CB_MODEL_IMAGE_VERSION, sizeof(h), sizeof(cb_config));
	if (h.total_size > image_len)
		return cb_set_error(err, CB_ERR_FORMAT, "model image: header says %llu bytes but only %zu are mapped",
							(unsigned long long) h.total_size, image_len);
	if (!range_ok(h.config_offset, sizeof(cb_config), h.total_size) || (h.config_offset & 7) ||
		!range_ok(h.table_offset, (uint64_t) h.num_tensors * sizeof(image_tensor), h.total_size) ||
		(h.table_offset & 7) ||
		!range_ok(h.labels_offset, h.labels_size, h.total_size) || (h.labels_offset & 7) ||
		!range_ok(h.weights_offset, h.weights_size, h.total_size))
		return cb_set_error(err, CB_ERR_FORMAT, "model image: a section lies outside the image");
	memcpy(&c, img + h.config_offset, sizeof(c));
	if ((st = cb_config_validate(&c, "model image", err)) != CB_OK)
		return st;
	if (h.num_tensors != slot_count(&c))
		return cb_set_error(err, CB_ERR_FORMAT, "model image: %u tensors, the configuration needs %zu",
							h.num_tensors, slot_count(&c));
	if (h.num_labels != (uint32_t) c.num_labels)
		return cb_set_error(err, CB_ERR_FORMAT, "model image: %u labels but num_labels is %d",
							h.num_labels, c.num_labels);

	seen = cb_calloc((size_t) NUM_ROLES * (size_t) c.num_hidden_layers, 1);
	layers = cb_calloc((size_t) c.num_hidden_layers, sizeof(cb_layer_weights));
	if (seen == NULL || layers == NULL)
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < h.num_tensors; i++)
	{
		image_tensor t;
		const role_def *r;

		memcpy(&t, img + h.table_offset + (uint64_t) i * sizeof(t), sizeof(t));
		if (t.role >= NUM_ROLES)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "model image: tensor %u has unknown role %u", i, t.role);
			goto fail;
		}
		r = &roles[t.role];
		if (!role_used(r, c.architecture) ||
			t.layer >= (r->where == IN_LAYER ? (uint32_t) c.num_hidden_layers : 1u) ||
			seen[(size_t) t.role * (size_t) c.num_hidden_layers + t.layer]++)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "model image: tensor %u (%s, layer %u) is unexpected or repeated",
							  i, r->name, t.layer);
			goto fail;
		}
		{
			int64_t		shape[2];
			uint64_t	want_bytes;

			(void) expected_shape(r, &c, shape);
			want_bytes = !r->matrix ? t.count * 4 :
				t.format < CB_MATRIX_NUM_FORMATS ?
				cb_matrix_blob_bytes((cb_matrix_format) t.format, (size_t) shape[0], (size_t) shape[1]) : 0;
			if (t.count != expected_numel(r, &c) || t.count > (UINT64_MAX / 8) ||
				(!r->matrix && t.format != CB_MATRIX_F32) || want_bytes == 0 || t.bytes != want_bytes ||
				!range_ok(t.offset, t.bytes, h.total_size) || t.offset < h.weights_offset ||
				(t.offset % CB_MODEL_IMAGE_ALIGN) != 0)
			{
				st = cb_set_error(err, CB_ERR_FORMAT,
								  "model image: tensor %u (%s, layer %u): %llu elements (format %u, %llu bytes) "
								  "at offset %llu do not fit (expected %llu elements inside %llu bytes)",
								  i, r->name, t.layer, (unsigned long long) t.count, t.format,
								  (unsigned long long) t.bytes, (unsigned long long) t.offset,
								  (unsigned long long) expected_numel(r, &c), (unsigned long long) h.total_size);
				goto fail;
			}
			if (t.role == ROLE_WORD_EMB)
				word_offset = t.offset;
			if (t.role == ROLE_LM_DECODER_W && t.offset == word_offset)
				;				/* tied: counted once */
			else
			{
				params += t.count;
				bytes += t.bytes;
			}
			if (r->matrix && (t.format == CB_MATRIX_BF16_PACKED || t.format == CB_MATRIX_INT8_PACKED) &&
				((uintptr_t) (img + t.offset) & (CB_MODEL_IMAGE_ALIGN - 1)) != 0)
			{
				/* their kernels load whole aligned vectors */
				st = cb_set_error(err, CB_ERR_INVALID,
								  "model image: a %s image must be %d-byte aligned in memory",
								  cb_precision_name(c.precision), CB_MODEL_IMAGE_ALIGN);
				goto fail;
			}
			if (r->matrix)
			{
				cb_matrix	m = cb_matrix_view((cb_matrix_format) t.format, (size_t) shape[0],
											   (size_t) shape[1], img + t.offset);

				if (r->where == IN_LAYER)
					memcpy((char *) &layers[t.layer] + r->field, &m, sizeof(m));
				else
					memcpy((char *) out + r->field, &m, sizeof(m));
			}
			else
			{
				const float *p = (const float *) (img + t.offset);

				if (r->where == IN_LAYER)
					memcpy((char *) &layers[t.layer] + r->field, &p, sizeof(p));
				else
					memcpy((char *) out + r->field, &p, sizeof(p));
			}
		}
	}
	if (params != h.parameter_count)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "model image: parameter count %llu does not match its tensors (%llu)",
						  (unsigned long long) h.parameter_count, (unsigned long long) params);
		goto fail;
	}

	if (c.num_labels > 0)
	{
		uint64_t	strings = h.labels_offset + (uint64_t) c.num_labels * 8;
		uint64_t	lend = h.labels_offset + h.labels_size;

		if ((uint64_t) c.num_labels * 8 > h.labels_size)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "model image: label table does not fit");
			goto fail;
		}
		labels = cb_calloc((size_t) c.num_labels, sizeof(char *));
		if (labels == NULL)
		{
			st = cb_set_error(err, CB_ERR_NOMEM, "out of memory");
			goto fail;
		}
		for (int32_t i = 0; i < c.num_labels; i++)
		{
			uint64_t	so;

			memcpy(&so, img + h.labels_offset + (uint64_t) i * 8, 8);
			if (so < strings || so >= lend || memchr(img + so, '\0', (size_t) (lend - so)) == NULL)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "model image: label %d lies outside the label area", i);
				goto fail;
			}
			labels[i] = (const char *) (img + so);
		}
	}

	cb_free(seen);
	out->config = c;
	out->layers = layers;
	out->labels = labels;
	out->parameter_count = params;
	out->weight_bytes = bytes;
	return CB_OK;

fail:
	cb_free(seen);
	cb_free(layers);
	cb_free(labels);
	memset(out, 0, sizeof(*out));
	return st;
}

cb_status
cb_model_load_dir(const char *dir, cb_model *model, cb_error *err)
{
	return cb_model_load_dir_precision(dir, CB_PRECISION_AUTO, model, err);
}

cb_status
cb_model_load_dir_precision(const char *dir, cb_precision precision, cb_model *model,
							cb_error *err)
{
	cb_model_source *src;
	cb_status	st;
	void	   *image,
			   *block;
	size_t		size;

	memset(model, 0, sizeof(*model));
	st = cb_model_source_open(dir, &src, err);
	if (st != CB_OK)
		return st;
	st = cb_model_source_set_precision(src, precision, err);
	if (st != CB_OK)
	{
		cb_model_source_close(src);
		return st;
	}
	size = cb_model_source_image_size(src);
	block = size <= SIZE_MAX - CB_MODEL_IMAGE_ALIGN ? cb_malloc(size + CB_MODEL_IMAGE_ALIGN) : NULL;
	if (block == NULL)
	{
		cb_model_source_close(src);
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory for a %zu-byte model image", dir, size);
	}
	image = (void *) (((uintptr_t) block + CB_MODEL_IMAGE_ALIGN - 1) & ~(uintptr_t) (CB_MODEL_IMAGE_ALIGN - 1));
	st = cb_model_source_write_image(src, image, size, err);
	cb_model_source_close(src);
	if (st == CB_OK)
		st = cb_model_view(image, size, model, err);
	if (st != CB_OK)
	{
		cb_free(block);
		return st;
	}
	model->owned_image = block;
	return CB_OK;
}
