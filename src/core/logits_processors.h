/*
 * logits_processors.h — transformers' logits processors that generate()
 * applies to the next-token scores before choosing (greedy search, sampling)
 * or ranking (beam search) tokens, in transformers' order:
 * repetition penalty, then no-repeat n-grams.
 *
 *  - repetition_penalty (RepetitionPenaltyLogitsProcessor, CTRL's): for every
 *    distinct token of the sequence so far (prompt included), a score < 0 is
 *    multiplied by the penalty, any other divided by it (float arithmetic).
 *    1 does nothing; > 1 discourages repeats.
 *  - no_repeat_ngram_size n (NoRepeatNGramLogitsProcessor): a token that
 *    would complete an n-gram already present in the sequence (prompt
 *    included) gets -inf.  0 does nothing.
 *
 * Greedy search and sampling apply them to the raw logits; beam search to
 * the log-softmax of the logits (as transformers does).
 */
#ifndef CB_LOGITS_PROCESSORS_H
#define CB_LOGITS_PROCESSORS_H

#include "cb_common.h"

/* scores[vocab]; ids[0..n) the sequence so far (each in [0, vocab)). */
void		cb_apply_repetition_penalty(float *scores, int32_t vocab, const int32_t *ids, int32_t n,
										float penalty);
void		cb_apply_no_repeat_ngram(float *scores, int32_t vocab, const int32_t *ids, int32_t n,
									 int32_t ngram_size);

/* Both, in transformers' order; a penalty of 1 and a size of 0 skip them. */
void		cb_apply_logits_processors(float *scores, int32_t vocab, const int32_t *ids, int32_t n,
									   float repetition_penalty, int32_t no_repeat_ngram_size);

#endif							/* CB_LOGITS_PROCESSORS_H */
