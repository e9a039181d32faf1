/*
 * generate.h — text generation with a causal LM (CamembertForCausalLM,
 * is_decoder): a KV-cache decoder, greedy search and seeded sampling, equal
 * to transformers' generate() (greedy_search / sample, num_beams = 1).
 *
 * KV cache: the keys and values of every layer for every token fed so far.
 * Feeding n new tokens after `past` cached ones computes only the new rows;
 * their position ids are transformers' incremental ones: for a non-pad token,
 * pad_token_id + past + (number of non-pad tokens among the new ones up to
 * it), i.e. past + 2 for a single new token; a pad token gets pad_token_id.
 * The result equals recomputing the whole sequence (cb_forward) up to float
 * rounding.  The attention mask is all ones (prompts are not padded).
 *
 * Greedy search and sampling first apply the logits processors of the options
 * (repetition penalty, no-repeat n-grams: logits_processors.h) to the logits.
 * Sampling then applies transformers' logits warpers in its order:
 * temperature (scores / T, computed as (logit - max logit) / T in double:
 * the same softmax, but it cannot overflow, so a tiny T converges to greedy
 * search instead of giving inf - inf), then top-k (tokens whose score is below the k-th
 * largest are removed; ties with it are kept), then top-p (nucleus: tokens
 * sorted by probability, the least likely ones whose cumulative probability
 * is <= 1 - top_p are removed, the most likely token is always kept); then
 * one token is drawn from the softmax of what is left.  The draw uses our own
 * PRNG (below), so a seed gives the same tokens on every machine given the
 * same logits; it does not reproduce PyTorch's random stream.
 *
 * PRNG: xoshiro256** (Blackman & Vigna, 2018), its 256-bit state filled from
 * the 64-bit seed by four successive outputs of splitmix64 (state starts at
 * the seed, increment 0x9E3779B97F4A7C15).  A uniform double in [0, 1) is
 * (next() >> 11) * 2^-53.  A draw takes one uniform u and walks the kept
 * tokens in increasing id order, picking the first whose cumulative
 * (unnormalized) probability exceeds u * total.
 */
#ifndef CB_GENERATE_H
#define CB_GENERATE_H

#include "cb_common.h"
#include "compute.h"
#include "model.h"

/* ------------------------------------------------------------------------ */
/* PRNG */

typedef struct cb_rng
{
	uint64_t	s[4];
} cb_rng;

void		cb_rng_seed(cb_rng *rng, uint64_t seed);
uint64_t	cb_rng_next(cb_rng *rng);
double		cb_rng_uniform(cb_rng *rng);	/* [0, 1) */

/* ------------------------------------------------------------------------ */
/* KV-cache decoder */

typedef struct cb_decoder cb_decoder;

/* CB_OK if the model can generate: a causal LM (is_decoder with an lm_head)
 * with room for at least a prompt token and a new one. */
cb_status	cb_generate_check_model(const cb_model *model, cb_error *err);

/* A decoder for one sequence of at most `capacity` tokens (capacity is
 * clamped to what max_position_embeddings allows).  The model must be a
 * causal LM (is_decoder with an lm_head).  It allocates, computes and checks
 * for interrupts under cc (compute.h; NULL: one thread, cb_malloc, never
 * stops), which must live as long as the decoder. */
cb_status	cb_decoder_create(const cb_compute *cc, const cb_model *model, int32_t capacity,
							  cb_decoder **out, cb_error *err);
void		cb_decoder_free(cb_decoder *dec);
void		cb_decoder_reset(cb_decoder *dec);	/* forget every token */
int32_t		cb_decoder_length(const cb_decoder *dec);
int32_t		cb_decoder_capacity(const cb_decoder *dec);

/* Make dst hold the tokens and KV cache of src (beam search reorders its
 * beams this way).  Both decoders must be of the same model; CB_ERR_INVALID
 * if src holds more tokens than dst's capacity. */
cb_status	cb_decoder_copy(cb_decoder *dst, const cb_decoder *src, cb_error *err);

/*
 * Append n >= 1 tokens and, if next_logits is not NULL, write the logits
 * [vocab_size] predicting the token after the last one.  CB_ERR_INVALID for a
 * bad id, more tokens than the capacity, or a position id past
 * max_position_embeddings.  Runs the context's stop check between layers:
 * CB_ERR_CANCELED when it says stop (the decoder is then unusable: reset
 * it).
 */
cb_status	cb_decoder_append(cb_decoder *dec, const int32_t *ids, int32_t n, float *next_logits,
							  cb_error *err);

/*
 * As cb_decoder_append, but instead of the logits writes head_out [H]: the
 * LM head's transform (dense, GELU, LayerNorm) of the last row, whose
 * product with the word embeddings (cb_lm_head_decode) gives the logits.
 * Beam search decodes the rows of all its beams in one product this way.
 */
cb_status	cb_decoder_append_head(cb_decoder *dec, const int32_t *ids, int32_t n, float *head_out,
								   cb_error *err);

/* ------------------------------------------------------------------------ */
/* generation */

typedef struct cb_generate_options
{
	int32_t		max_new_tokens;	/* >= 0 */
	float		temperature;	/* <= 0: greedy search (argmax, first on ties) */
	int32_t		top_k;			/* sampling: 0 disables the top-k filter */
	float		top_p;			/* sampling: in (0, 1]; 1 disables the top-p filter */
	uint64_t	seed;			/* sampling: PRNG seed */
	int32_t		eos_token_id;	/* stop after generating it; < 0: never */
	/* logits processors (logits_processors.h), applied before choosing */
	float		repetition_penalty; /* > 0; 1 disables it */
	int32_t		no_repeat_ngram_size;	/* >= 0; 0 disables it */
} cb_generate_options;

/* max_new_tokens 20, greedy (temperature 0), top_k 50 and top_p 1 (the
 * transformers defaults for sampling), seed 0, eos = the model's, no
 * repetition penalty (1), no n-gram ban (0). */
void		cb_generate_default_options(const cb_model *model, cb_generate_options *opt);

/* CB_ERR_INVALID unless repetition_penalty is finite and > 0 and
 * no_repeat_ngram_size >= 0. */
cb_status	cb_check_logits_processor_options(const cb_generate_options *opt, cb_error *err);

/* Called once per step with the next-token logits (before any processor or
 * warper). */
typedef void (*cb_generate_step_fn) (void *arg, int32_t step, const float *logits,
									 int32_t vocab_size);

/*
 * Generate after prompt[0..prompt_len) (prompt_len >= 1, the ids as the
 * tokenizer gives them, usually starting with <s>).  Writes up to
 * max_new_tokens ids to new_ids and their count to *n_new.  Stops after the
 * eos token, after max_new_tokens, or when the sequence reaches the longest
 * the model accepts (max_position_embeddings - pad_token_id - 1 tokens,
 * which must be at least 2: else CB_ERR_FORMAT).
 * on_step may be NULL.  Runs under cc (compute.h; NULL: one thread,
 * cb_malloc, never stops), its stop check at every step and between layers
 * (CB_ERR_CANCELED).
 */
cb_status	cb_generate(const cb_compute *cc, const cb_model *model, const int32_t *prompt,
						int32_t prompt_len,
						const cb_generate_options *opt, int32_t *new_ids, int32_t *n_new,
						cb_generate_step_fn on_step, void *arg, cb_error *err);

/*
 * One sampling step on logits [vocab_size] (not modified): the warpers of opt
 * (temperature > 0 required), then one draw from rng.  scratch_ids holds
 * vocab_size int32 and scratch_weights vocab_size doubles.
 */
int32_t		cb_sample_token(const float *logits, int32_t vocab_size, const cb_generate_options *opt,
							cb_rng *rng, int32_t *scratch_ids, double *scratch_weights);

#endif							/* CB_GENERATE_H */
