/*
 * model.h — what a loaded CamemBERT model holds: its configuration and a view
 * of its float32 weights.
 *
 * A model is built once into a *model image*: one contiguous,
 * position-independent block of bytes (header, configuration, label strings,
 * then every weight, 64-byte aligned: vectors as float32, matrices in the
 * format the precision chose (matrix.h), all references as offsets
 * from the start of the image).  The PostgreSQL layer copies the image into a
 * shared memory segment; every backend then calls cb_model_view() on its own
 * mapping, which validates the image and fills a cb_model with pointers into
 * it.  No backend ever copies the weights.
 *
 * Owners: model_source.c, model_convert.c and model_image.c build and view
 * images (from config.json + safetensors / pytorch_model.bin, see config.h,
 * safetensors.h, torch_bin.h);
 * forward.c runs the network on a cb_model.
 */
#ifndef CB_MODEL_H
#define CB_MODEL_H

#include "cb_common.h"
#include "matrix.h"

typedef enum cb_architecture
{
	CB_ARCH_MASKED_LM = 0,			/* CamembertForMaskedLM */
	CB_ARCH_SEQUENCE_CLASSIFICATION,	/* CamembertForSequenceClassification */
	CB_ARCH_CAUSAL_LM,				/* CamembertForCausalLM */
	CB_ARCH_ENCODER					/* CamembertModel: encoder only */
} cb_architecture;

typedef enum cb_problem_type
{
	CB_PROBLEM_NONE = 0,			/* not a classifier */
	CB_PROBLEM_SINGLE_LABEL,		/* softmax, cross-entropy */
	CB_PROBLEM_REGRESSION,			/* num_labels == 1: identity, MSE */
	CB_PROBLEM_MULTI_LABEL			/* sigmoid, BCE with logits */
} cb_problem_type;

typedef enum cb_dtype
{
	CB_DTYPE_F32 = 0,
	CB_DTYPE_F16,
	CB_DTYPE_BF16
} cb_dtype;

/*
 * What camembert_load(..., dtype => ...) asks of the weight matrices (the
 * linear layers and the word embeddings; vectors stay float32):
 *   AUTO      kept in the file's dtype (F32, F16 or BF16), widened in the
 *             products: the same numbers as FLOAT32
 *   FLOAT32   widened to float32 at load
 *   BFLOAT16  rounded to bfloat16 at load, bf16 x bf16 products
 *   INT8      quantized per row at load, int8 x int8 products
 * (matrix.h says exactly how; model_source.c which matrices follow it.)
 */
typedef enum cb_precision
{
	CB_PRECISION_AUTO = 0,
	CB_PRECISION_FLOAT32,
	CB_PRECISION_BFLOAT16,
	CB_PRECISION_INT8
} cb_precision;

#define CB_PRECISION_NAMES "auto, float32, bfloat16, int8"

#define CB_MAX_LABELS 1024
#define CB_MAX_LAYERS 256

/* Hyper-parameters, as read from config.json (plain data: lives in the image). */
typedef struct cb_config
{
	cb_architecture architecture;
	cb_problem_type problem_type;
	cb_dtype	stored_dtype;		/* dtype of the weight files */
	cb_precision precision;		/* what the image was built with */
	int32_t		vocab_size;
	int32_t		hidden_size;
	int32_t		num_hidden_layers;
	int32_t		num_attention_heads;
	int32_t		intermediate_size;
	int32_t		max_position_embeddings;
	int32_t		type_vocab_size;
	int32_t		pad_token_id;
	int32_t		bos_token_id;
	int32_t		eos_token_id;
	int32_t		num_labels;		/* classifiers: id2label size (or num_labels) */
	int32_t		is_decoder;		/* causal attention mask */
	float		layer_norm_eps;
} cb_config;

/*
 * One encoder layer.  Weight matrices are [out_features][in_features]
 * (cb_matrix: float32, or the format the precision chose); vectors are
 * float32.
 */
typedef struct cb_layer_weights
{
	cb_matrix	query_w,
				key_w,
				value_w,
				attn_out_w;		/* [H][H] */
	cb_matrix	inter_w;		/* [I][H] */
	cb_matrix	out_w;			/* [H][I] */
	const float *query_b,
			   *key_b,
			   *value_b,
			   *attn_out_b;		/* [H] */
	const float *attn_ln_w,
			   *attn_ln_b;		/* [H] */
	const float *inter_b;		/* [I] */
	const float *out_b;			/* [H] */
	const float *out_ln_w,
			   *out_ln_b;		/* [H] */
} cb_layer_weights;

/* A model: configuration plus views into an image (read-only).  A cb_matrix
 * with data == NULL is absent. */
typedef struct cb_model
{
	cb_config	config;
	const char *const *labels;	/* num_labels strings (id2label), or NULL */

	/* embeddings */
	cb_matrix	word_embeddings;	/* [V][H], read by rows */
	const float *position_embeddings;	/* [P][H] */
	const float *token_type_embeddings;	/* [T][H] */
	const float *embeddings_ln_w,
			   *embeddings_ln_b;	/* [H] */

	cb_layer_weights *layers;	/* num_hidden_layers entries */

	/* MLM / causal LM head (lm_head.*); decoder_w is tied to word_embeddings */
	cb_matrix	lm_dense_w;		/* [H][H] */
	const float *lm_dense_b;	/* [H] */
	const float *lm_ln_w,
			   *lm_ln_b;		/* [H] */
	cb_matrix	lm_decoder_w;	/* [V][H] */
	const float *lm_decoder_b;	/* [V] (lm_head.bias) */

	/* classification head (classifier.*) */
	cb_matrix	cls_dense_w;	/* [H][H] */
	const float *cls_dense_b;	/* [H] */
	cb_matrix	cls_out_w;		/* [L][H] */
	const float *cls_out_b;		/* [L] */

	/* filled by cb_model_view (model_image.h) */
	uint64_t	parameter_count;	/* unique tensors (tied ones once), like HF num_parameters() */
	uint64_t	weight_bytes;	/* bytes of those tensors in the image, in their formats */
	void	   *owned_image;	/* cb_model_load_dir: the image's allocation, freed by cb_model_view_release */
} cb_model;

#endif							/* CB_MODEL_H */
