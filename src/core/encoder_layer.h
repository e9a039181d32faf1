/*
 * encoder_layer.h — the ops of the CamemBERT (RoBERTa) network that the
 * forward pass (forward.h) and the KV-cache decoder (generate.h) share:
 * embeddings, one encoder layer, the LM head, the scratch they need, and the
 * tap that sees each op's output (encoder_layer.c).
 *
 * None of them allocates or checks for interrupts: their callers do, around
 * them (compute.h).
 */
#ifndef CB_ENCODER_LAYER_H
#define CB_ENCODER_LAYER_H

#include "cb_common.h"
#include "model.h"

/*
 * A tap: an optional callback that sees the activations of each op as the
 * forward pass computes them, for tests and debugging (llama.cpp's per-op
 * callbacks do the same).  `data` is [rows][cols] float32, valid during the
 * call only; the rows are the attended tokens packed sequence after
 * sequence (rows with attention_mask 0 are not computed), or for the last
 * layer of a call that asks for head outputs only, the rows the heads read.
 * layer is -1 outside the encoder layers.  Names, in the order they come:
 *
 *   "embeddings"         -1     [N][H]  after the embeddings' LayerNorm
 *   "attention_output"    l     [n][H]  attention, dense, residual, LayerNorm
 *   "intermediate"        l     [n][I]  dense + bias + GELU of the FFN
 *   "layer_output"        l     [n][H]  the layer's output (hidden_states[l+1])
 *   "lm_head_transform"  -1     [n][H]  dense, GELU, LayerNorm of the LM head
 *   "classifier_dense"   -1     [B][H]  dense + tanh of the classifier
 *
 * The tap runs on the calling thread, never inside a helper thread.
 */
typedef void (*cb_tap_fn) (void *arg, const char *name, int layer, size_t rows, size_t cols,
						   const float *data);

typedef struct cb_tap
{
	cb_tap_fn	fn;				/* NULL: no tap */
	void	   *arg;
} cb_tap;

static inline void
cb_tap_emit(const cb_tap *tap, const char *name, int layer, size_t rows, size_t cols,
			const float *data)
{
	if (tap != NULL && tap->fn != NULL)
		tap->fn(tap->arg, name, layer, rows, cols, data);
}


/* Scratch floats needed by cb_encoder_layer for n_rows new rows, at most
 * max_queries new rows and max_keys keys per sequence, `workers` attention
 * threads and products on `threads` threads (0 on overflow). */
size_t		cb_encoder_layer_scratch_floats(const cb_model *model, size_t n_rows,
											size_t max_queries, size_t max_keys, int workers,
											int threads);

/* Bytes of scratch any weight product of the model needs for n rows on
 * `threads` threads (cb_matrix_product_scratch of its largest need); the
 * encoder layer's scratch includes it. */
size_t		cb_model_product_scratch_bytes(const cb_model *model, size_t n, int threads);

/* Embeddings of `n` tokens with the given position ids into x [n][H]. */
void		cb_embed_tokens(const cb_model *model, const int32_t *ids, const int32_t *positions,
							size_t n, float *x);

/*
 * One encoder layer (cb_encoder_layer_args) on x [n_rows][H] (in place).
 * The rows form n_seq sequences: sequence s has rows seq_off[s] ..
 * seq_off[s+1]-1 of x.  Keys/values: the projections of the rows are
 * written to k_store/v_store starting at row `past` (row past + r for row r
 * of x); sequence s attends to the keys k_store[seq_off[s] .. seq_off[s] +
 * past + n_s) (so `past` > 0 requires n_seq == 1: a KV cache).  Query i of a
 * sequence sees all its keys, or with `causal` the keys up to past + i.
 * sink: NULL, or where to copy the attention probabilities (past must be 0,
 * subset NULL).
 * subset: NULL to update every row of x in place; else the layer computes
 * the output of the listed rows only (into subset->out; keys and values are
 * still computed for every row): the last layer needs no more rows than the
 * heads read.
 * scratch holds cb_encoder_layer_scratch_floats floats, sized for `workers`
 * and `threads` (>= 1): attention (one item per sequence and head) and bias
 * + GELU run on up to `workers` threads (cb_kernel_parallel_for) when the
 * work is large enough, the matrix products on up to `threads`.  A layer
 * never allocates and never checks for interrupts: its caller does, between
 * layers.
 */
typedef struct cb_query_subset
{
	size_t		n;				/* rows to output */
	const size_t *rows;			/* [n]: rows of x, ascending, grouped by sequence */
	const size_t *seq_q_off;	/* [n_seq + 1]: sequence s owns rows[seq_q_off[s] ..] */
	float	   *out;			/* [n][H]: the layer's output for those rows */
} cb_query_subset;

typedef struct cb_attention_sink
{
	float	   *probs;			/* [B][A][T][T] of this layer */
	int32_t		seq_len;		/* T */
	int32_t		num_heads;		/* A */
	const int32_t *row_batch;	/* row -> b */
	const int32_t *row_time;	/* row -> t */
} cb_attention_sink;

typedef struct cb_encoder_layer_args
{
	const cb_model *model;
	const cb_layer_weights *weights;	/* the layer's */
	int			layer;			/* its index (for the tap) */
	float	   *x;				/* [n_rows][H], updated in place (unless subset) */
	size_t		n_rows;
	size_t		n_seq;
	const size_t *seq_off;		/* [n_seq + 1] */
	float	   *k_store,		/* keys and values, written from row `past` */
			   *v_store;
	size_t		past;
	bool		causal;
	const cb_attention_sink *sink;	/* NULL: attention probabilities not kept */
	const cb_query_subset *subset;	/* NULL: every row */
	float	   *scratch;		/* cb_encoder_layer_scratch_floats floats */
	int			workers;		/* attention and GELU threads, >= 1 */
	int			threads;		/* the products' threads, >= 1 */
	const cb_tap *tap;			/* NULL: none */
} cb_encoder_layer_args;

void		cb_encoder_layer(const cb_encoder_layer_args *args);

/* The LM head on rows x [n][H] -> logits: dense, GELU, LayerNorm (into
 * tmp [n][H]), then tmp · word_embeddingsᵀ + lm_head.bias.  Output row i is
 * written at logits + i * ld_logits (ld_logits >= V).  scratch:
 * cb_model_product_scratch_bytes(model, >= n, threads) bytes. */
void		cb_lm_head_transform(const cb_model *model, const float *x, size_t n, float *tmp,
								 void *scratch, int threads);
void		cb_lm_head_decode(const cb_model *model, const float *tmp, size_t n,
							  float *logits, size_t ld_logits, void *scratch, int threads);

#endif							/* CB_ENCODER_LAYER_H */
