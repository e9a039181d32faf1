/*
 * forward.h — the CamemBERT (RoBERTa) forward pass and its heads, in float32,
 * equal to Hugging Face transformers (CamembertModel, CamembertForMaskedLM,
 * CamembertForCausalLM, CamembertForSequenceClassification) in eval mode.
 *
 * Input: a batch of B rows of T token ids (right padding with pad_token_id
 * and attention_mask 0 is the usual form; any 0/1 mask is accepted).
 *
 *  - Position ids are RoBERTa's: pad_token_id + cumsum(input_ids != pad) on
 *    non-pad tokens, pad_token_id on pad tokens (so a literal <pad> inside a
 *    text keeps attention_mask 1 but gets position pad_token_id and does not
 *    advance the count).  A row whose position ids would reach
 *    max_position_embeddings (more than max_position_embeddings - 2 non-pad
 *    tokens up to an attended one) is rejected with CB_ERR_INVALID:
 *    truncation is the caller's job.
 *  - Embeddings = word + token_type[0] + position, then LayerNorm; then the
 *    post-LN encoder layers (attention with masked keys removed, causal mask
 *    for is_decoder models, exact erf GELU).
 *  - Only attended tokens (attention_mask 1) are computed: tokens with
 *    attention_mask 0 are dropped before the first layer, which gives exactly
 *    the result transformers gives on the attended tokens (masked keys get
 *    probability 0 there too).  Every output at a position whose
 *    attention_mask is 0 is written as zeros (transformers computes
 *    meaningless values there).  Consequently every row needs at least one
 *    attended token, and the classification head (which reads position 0,
 *    the <s> token) needs position 0 attended: left padding is not
 *    supported for classifiers.
 *
 * Outputs are optional: pass NULL for what is not wanted.  Computing token
 * logits is expensive (vocab_size values per token); to score a few positions
 * only (fill-mask), list them in logit_positions.  When only head outputs are
 * asked for (class_logits and/or logit_positions: no hidden states, no
 * attentions, no token_logits), the last layer computes only the rows the
 * heads read (after the keys and values of every row): for a classifier, one
 * row per sequence.
 *
 * Speed: every matrix product is one call of cb_matrix_product (matrix.h:
 * AVX-512 / AVX2 micro-kernels that read the weights in place, else
 * cblas_sgemm), on the threads of the compute context (compute.h); bias +
 * GELU and bias + residual + LayerNorm are fused passes; no copy of the
 * activations between layers.
 *
 * Scratch memory: one block, sized once per call, in a cb_workspace that the
 * caller may keep between calls (it then only grows), or NULL for a block
 * allocated and freed inside the call; allocated with the compute context's
 * allocator.  Between layers the forward pass runs the context's stop check
 * (cb_compute_stopped), holding only that block: stopped, it returns
 * CB_ERR_CANCELED.
 */
#ifndef CB_FORWARD_H
#define CB_FORWARD_H

#include "cb_common.h"
#include "compute.h"
#include "encoder_layer.h"
#include "model.h"

/* A reusable scratch block (64-byte aligned inside), from a compute
 * context's allocator. */
typedef struct cb_workspace
{
	void	   *block;			/* as returned by the allocator */
	size_t		size;			/* usable bytes from the aligned start */
	const cb_allocator *allocator;	/* the one that allocated block (NULL: cb_malloc) */
} cb_workspace;

void		cb_workspace_init(cb_workspace *ws);
/* Make at least `bytes` usable bytes available (contents are not kept),
 * allocating with cc's allocator. */
cb_status	cb_workspace_reserve(cb_workspace *ws, const cb_compute *cc, size_t bytes,
								 cb_error *err);
/* 64-byte aligned start of the block (NULL when empty). */
void	   *cb_workspace_data(const cb_workspace *ws);
void		cb_workspace_release(cb_workspace *ws);

typedef struct cb_forward_input
{
	int32_t		batch_size;		/* B >= 1 */
	int32_t		seq_len;		/* T >= 1 (padded length of every row) */
	const int32_t *input_ids;	/* [B][T], each in [0, vocab_size) */
	const int32_t *attention_mask;	/* [B][T] of 0/1, or NULL for all ones */
} cb_forward_input;

typedef struct cb_forward_output
{
	/* [B][T][H]: output of the last layer. */
	float	   *last_hidden_state;

	/* [L+1][B][T][H]: embeddings output (after its LayerNorm), then the
	 * output of every layer (transformers' output_hidden_states). */
	float	   *hidden_states;

	/* [L][B][A][T][T]: attention probabilities of every layer and head
	 * (output_attentions); rows and columns of unattended tokens are 0. */
	float	   *attentions;

	/* Masked / causal LM models only. */
	float	   *token_logits;	/* [B][T][V]: logits at every position */
	const int32_t *logit_positions;	/* n flat positions b * T + t ... */
	int32_t		n_logit_positions;
	float	   *position_logits;	/* ... and their logits, [n][V] */

	/* Sequence classification models only: [B][num_labels]. */
	float	   *class_logits;

	/* Optional: sees every op's output (fn NULL: none). */
	cb_tap		tap;
} cb_forward_output;

/*
 * Run the model under the compute context cc (compute.h; NULL: one thread,
 * cb_malloc, never stops).  Errors: CB_ERR_INVALID (bad ids, mask, shapes,
 * a sequence too long, an output the architecture does not have),
 * CB_ERR_FORMAT (a model whose configuration or weights are inconsistent),
 * CB_ERR_NOMEM, CB_ERR_LIMIT (a batch too large to size), CB_ERR_CANCELED
 * (cc's stop check said stop; the outputs are then incomplete).
 */
cb_status	cb_forward(const cb_compute *cc, const cb_model *model, const cb_forward_input *input,
					   const cb_forward_output *output, cb_workspace *workspace,
					   cb_error *err);

/* Check that the model's configuration and weight pointers are usable by
 * cb_forward (and by its head for the architecture). */
cb_status	cb_forward_check_model(const cb_model *model, cb_error *err);

/* Number of floating-point operations (multiply-adds count 2) of the matrix
 * products of one forward pass over `tokens` tokens grouped in sequences of
 * `seq_len` tokens, without heads: for benchmarks. */
double		cb_forward_flops(const cb_model *model, int64_t tokens, int32_t seq_len);

#endif							/* CB_FORWARD_H */
