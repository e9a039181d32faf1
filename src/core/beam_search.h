/*
 * beam_search.h — beam search for a causal LM, equal to transformers'
 * generate(num_beams > 1, do_sample=False): GenerationMixin.beam_search with
 * its BeamSearchScorer and BeamHypotheses (transformers 4.37).
 *
 * One KV-cache decoder per beam (generate.h); when the beams are chosen for
 * the next step, each new beam takes over the cache of the beam it extends
 * (moved when that beam has one successor, copied when it has several).
 *
 * Per step, for each beam: scores = log_softmax(logits), then the logits
 * processors of the options (repetition penalty, no-repeat n-grams, on the
 * beam's prompt + tokens), then + the beam's running score (float32, as
 * transformers' tensors); beams other than the first start at -1e9, so the
 * first step expands the prompt only.  The 2 * num_beams best (beam, token)
 * pairs, best first: a pair ending with eos among the first num_beams goes to
 * the finished hypotheses (score = summed log-probability / generated
 * length ^ length_penalty, the eos counted in the length), the first
 * num_beams other pairs become the next beams.  Finished hypotheses keep the
 * num_beams best.  Stopping (early_stopping): heuristic (false: when the best
 * running score, normalised by the current length, cannot beat the worst kept
 * hypothesis), true (as soon as num_beams hypotheses are finished), never
 * (as heuristic, but normalised by the longest possible length when
 * length_penalty > 0).  At max_new_tokens, the running beams join the
 * hypotheses; the num_return_sequences best are returned, best first.
 */
#ifndef CB_BEAM_SEARCH_H
#define CB_BEAM_SEARCH_H

#include "cb_common.h"
#include "generate.h"
#include "model.h"

typedef enum cb_early_stopping
{
	CB_EARLY_STOPPING_HEURISTIC = 0,	/* transformers' early_stopping=False */
	CB_EARLY_STOPPING_TRUE = 1,
	CB_EARLY_STOPPING_NEVER = 2
} cb_early_stopping;

/* The most beams beam search accepts. */
#define CB_MAX_BEAMS 64

typedef struct cb_beam_options
{
	int32_t		num_beams;		/* 1 .. CB_MAX_BEAMS */
	int32_t		num_return_sequences;	/* 1 .. num_beams */
	double		length_penalty; /* finite; transformers' default 1 */
	cb_early_stopping early_stopping;
} cb_beam_options;

/* num_beams 1, num_return_sequences 1, length_penalty 1, heuristic stop. */
void		cb_beam_default_options(cb_beam_options *opt);

/* CB_ERR_INVALID with the bound for a bad option. */
cb_status	cb_beam_check_options(const cb_beam_options *opt, cb_error *err);

/*
 * Beam search after prompt[0..prompt_len).  From gen: max_new_tokens,
 * eos_token_id, repetition_penalty, no_repeat_ngram_size (temperature, top_k,
 * top_p and seed are not used: no sampling).  Writes num_return_sequences
 * sequences (none when max_new_tokens is 0 or the prompt leaves no position
 * for a new token), best first:
 * sequence r's new tokens at new_ids + r * max_new_tokens (its eos included
 * when it ended with one), their count in n_new[r], its score in scores[r]
 * (may be NULL), and the count in *n_returned.  The length limit is
 * cb_generate's.  Runs under cc as cb_generate does (CB_ERR_CANCELED when
 * its stop check says stop).
 */
cb_status	cb_beam_search(const cb_compute *cc, const cb_model *model, const int32_t *prompt,
						   int32_t prompt_len,
						   const cb_generate_options *gen, const cb_beam_options *beam,
						   int32_t *new_ids, int32_t *n_new, double *scores, int32_t *n_returned,
						   cb_error *err);

#endif							/* CB_BEAM_SEARCH_H */
