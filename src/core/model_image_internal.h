/*
 * model_image_internal.h — what the files that build and view a model image share
 * (model_source.c, model_convert.c, model_image.c): the roles (which tensor fills which
 * cb_model pointer), the image format, a model source.  Not part of the API: model_image.h is.
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
#ifndef CB_MODEL_IMAGE_INTERNAL_H
#define CB_MODEL_IMAGE_INTERNAL_H

#include <stddef.h>

#include "model_files.h"
#include "model_image.h"

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

static inline bool
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

static inline int64_t
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

static inline int
expected_shape(const role_def *r, const cb_config *c, int64_t *shape)
{
	shape[0] = dim_value(r->dim0, c);
	shape[1] = 0;				/* (a vector: unused, but set, for the callers inlined) */
	if (r->dim1 == DIM_NONE)
		return 1;
	shape[1] = dim_value(r->dim1, c);
	return 2;
}

static inline uint64_t
expected_numel(const role_def *r, const cb_config *c)
{
	int64_t		s[2];
	int			n = expected_shape(r, c, s);

	return n == 1 ? (uint64_t) s[0] : (uint64_t) s[0] * (uint64_t) s[1];
}

/* Number of (role, layer) slots for a configuration. */
static inline size_t
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


#endif							/* CB_MODEL_IMAGE_INTERNAL_H */
