/*
 * config.h — config.json of a Hugging Face CamemBERT model directory
 * → cb_config + the id2label strings.
 *
 * What is read (missing keys take CamembertConfig's defaults, as
 * transformers does):
 *   architectures[0]       CamembertForMaskedLM | CamembertForSequenceClassification |
 *                          CamembertForCausalLM | CamembertModel (required; anything
 *                          else is CB_ERR_UNSUPPORTED)
 *   vocab_size (30522), hidden_size (768), num_hidden_layers (12),
 *   num_attention_heads (12), intermediate_size (3072),
 *   max_position_embeddings (512), type_vocab_size (2), pad_token_id (1),
 *   bos_token_id (0), eos_token_id (2), layer_norm_eps (1e-12),
 *   is_decoder (false), tie_word_embeddings (true)
 *   hidden_act             must be "gelu" (the exact erf GELU) if present
 *   position_embedding_type must be "absolute" if present
 *   add_cross_attention    must be false if present
 *   id2label / num_labels / problem_type   classifiers only (see below)
 *
 * Classifiers (CamembertForSequenceClassification): the labels are id2label
 * ("0".."n-1", each exactly once) if present, else num_labels generic labels
 * "LABEL_i", else 2 ("LABEL_0", "LABEL_1"), as PretrainedConfig does;
 * id2label wins over an inconsistent num_labels (transformers warns and does
 * the same).  problem_type: "regression", "single_label_classification",
 * "multi_label_classification", or absent/null → regression when
 * num_labels == 1, else single label.  Other models: num_labels = 0, no
 * labels, problem_type CB_PROBLEM_NONE.
 *
 * Sizes are checked: every size positive, hidden_size divisible by
 * num_attention_heads, and capped (CB_CONFIG_MAX_*) so that a hostile
 * config cannot ask for absurd allocations; token ids within the vocabulary
 * (bos/eos may be null: then -1); and the position embeddings must hold at
 * least CB_CONFIG_MIN_SEQUENCE tokens (see cb_config_max_sequence).
 */
#ifndef CB_CONFIG_H
#define CB_CONFIG_H

#include "model.h"

#define CB_CONFIG_MAX_VOCAB			(4 * 1024 * 1024)
#define CB_CONFIG_MAX_HIDDEN		65536
#define CB_CONFIG_MAX_INTERMEDIATE	(4 * 65536)
#define CB_CONFIG_MAX_POSITIONS		(1024 * 1024)
#define CB_CONFIG_MAX_TYPE_VOCAB	65536
#define CB_CONFIG_MAX_LABEL_BYTES	1024	/* one label string */
#define CB_CONFIG_MAX_FILE_BYTES	(16 * 1024 * 1024)	/* config.json */
/* Shortest sequence a model must accept: <s> + </s> (an empty text), or one
 * prompt token + one generated token for a causal LM. */
#define CB_CONFIG_MIN_SEQUENCE		2

typedef struct cb_model_config
{
	cb_config	config;			/* stored_dtype is left F32: the weights decide */
	bool		tie_word_embeddings;
	int32_t		num_labels;		/* == config.num_labels */
	char	  **labels;			/* num_labels NUL-terminated strings, or NULL */
} cb_model_config;

/* Parse config.json text; what names it in messages (usually its path). */
cb_status	cb_config_parse(const char *text, size_t len, const char *what,
							cb_model_config **out, cb_error *err);

/* Read and parse a config.json file (opened as cb_file_open does: regular
 * files only, never blocking, confined to root unless root is NULL). */
cb_status	cb_config_load(const char *path, const char *root, cb_model_config **out,
						   cb_error *err);

void		cb_config_free(cb_model_config *config);

/*
 * Check the sizes of a cb_config (positive, capped, consistent); what names
 * the source in messages.  Used by the parser and again by cb_model_view on
 * the copy stored in an image.
 */
cb_status	cb_config_validate(const cb_config *config, const char *what, cb_error *err);

/*
 * Longest sequence the position embeddings allow: RoBERTa gives a pad token
 * position pad_token_id and the i-th other token pad_token_id + i (i from 1),
 * so max_position_embeddings - pad_token_id - 1 tokens.  int64: never
 * overflows, negative for an invalid configuration.
 */
static inline int64_t
cb_config_max_sequence(const cb_config *c)
{
	return (int64_t) c->max_position_embeddings - (int64_t) c->pad_token_id - 1;
}

/* Names as used by transformers. */
const char *cb_architecture_name(cb_architecture arch);	/* "CamembertForMaskedLM" ... */
const char *cb_problem_type_name(cb_problem_type type);	/* "regression" ...; NULL for NONE */
const char *cb_dtype_name(cb_dtype dtype);	/* "float32", "float16", "bfloat16" */

/* "auto", "float32", "bfloat16", "int8" (NULL if unknown) */
const char *cb_precision_name(cb_precision p);
/* The precision of that name (exact, lower case); false if none. */
bool		cb_precision_from_name(const char *name, cb_precision *out);

#endif							/* CB_CONFIG_H */
