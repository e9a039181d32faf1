/*
 * logits_processors.c — repetition penalty and no-repeat n-grams (see
 * logits_processors.h).  Sequences are at most max_position_embeddings long,
 * so the quadratic scans below stay small (and need no scratch memory).
 */
#include "logits_processors.h"

#include <math.h>

void
cb_apply_repetition_penalty(float *scores, int32_t vocab, const int32_t *ids, int32_t n,
							float penalty)
{
	if (penalty == 1.0f)
		return;
	for (int32_t i = 0; i < n; i++)
	{
		int32_t		t = ids[i];
		bool		seen = false;

		if (t < 0 || t >= vocab)
			continue;
		/* transformers gathers then scatters: each distinct token once */
		for (int32_t j = 0; j < i && !seen; j++)
			seen = ids[j] == t;
		if (seen)
			continue;
		scores[t] = scores[t] < 0.0f ? scores[t] * penalty : scores[t] / penalty;
	}
}

void
cb_apply_no_repeat_ngram(float *scores, int32_t vocab, const int32_t *ids, int32_t n,
						 int32_t ngram_size)
{
	int32_t		prefix = ngram_size - 1;

	/* no n-gram ends at the next token before n - 1 tokens exist */
	if (ngram_size <= 0 || n < prefix + 1)
		return;
	/* every n-gram ids[j .. j + n - 1] whose first n - 1 tokens equal the
	 * last n - 1 tokens of the sequence bans its last token */
	for (int32_t j = 0; j + ngram_size <= n; j++)
	{
		int32_t		k = 0;
		int32_t		banned = ids[j + prefix];

		while (k < prefix && ids[j + k] == ids[n - prefix + k])
			k++;
		if (k == prefix && banned >= 0 && banned < vocab)
			scores[banned] = -INFINITY;
	}
}

void
cb_apply_logits_processors(float *scores, int32_t vocab, const int32_t *ids, int32_t n,
						   float repetition_penalty, int32_t no_repeat_ngram_size)
{
	cb_apply_repetition_penalty(scores, vocab, ids, n, repetition_penalty);
	cb_apply_no_repeat_ngram(scores, vocab, ids, n, no_repeat_ngram_size);
}
