/*
 * beam_search.c — beam search with one KV cache per beam (see beam_search.h).
 */
#include "beam_search.h"
#include "config.h"
#include "encoder_layer.h"
#include "forward.h"
#include "logits_processors.h"
#include "row_ops.h"

#include <math.h>
#include <string.h>

void
cb_beam_default_options(cb_beam_options *opt)
{
	opt->num_beams = 1;
	opt->num_return_sequences = 1;
	opt->length_penalty = 1.0;
	opt->early_stopping = CB_EARLY_STOPPING_HEURISTIC;
}

cb_status
cb_beam_check_options(const cb_beam_options *opt, cb_error *err)
{
	if (opt->num_beams < 1 || opt->num_beams > CB_MAX_BEAMS)
		return cb_set_error(err, CB_ERR_INVALID, "num_beams must be between 1 and %d, not %d",
							CB_MAX_BEAMS, opt->num_beams);
	if (opt->num_return_sequences < 1 || opt->num_return_sequences > opt->num_beams)
		return cb_set_error(err, CB_ERR_INVALID,
							"num_return_sequences must be between 1 and num_beams (%d), not %d",
							opt->num_beams, opt->num_return_sequences);
	if (isnan(opt->length_penalty) || isinf(opt->length_penalty))
		return cb_set_error(err, CB_ERR_INVALID, "length_penalty is not a finite number");
	if (opt->early_stopping != CB_EARLY_STOPPING_HEURISTIC &&
		opt->early_stopping != CB_EARLY_STOPPING_TRUE &&
		opt->early_stopping != CB_EARLY_STOPPING_NEVER)
		return cb_set_error(err, CB_ERR_INVALID, "unknown early_stopping mode %d",
							(int) opt->early_stopping);
	return CB_OK;
}

/* ------------------------------------------------------------------------ */
/* finished hypotheses: transformers' BeamHypotheses */

typedef struct hypotheses
{
	int32_t		capacity;		/* num_beams (+1 slot while adding) */
	int32_t		count;
	int32_t		max_new;		/* tokens per slot */
	double		worst;			/* worst kept score (1e9 while empty) */
	double		length_penalty;
	double	   *score;			/* [capacity + 1] in insertion order */
	int32_t    *len;			/* [capacity + 1] */
	int32_t    *tokens;			/* [capacity + 1][max_new] */
} hypotheses;

static void
hyp_add(hypotheses *h, const int32_t *tokens, int32_t len, double sum_logprobs, int32_t generated_len)
{
	double		score = sum_logprobs / pow((double) generated_len, h->length_penalty);

	if (!(h->count < h->capacity || score > h->worst))
		return;
	h->score[h->count] = score;
	h->len[h->count] = len;
	memcpy(h->tokens + (size_t) h->count * (size_t) h->max_new, tokens, (size_t) len * sizeof(int32_t));
	h->count++;
	if (h->count > h->capacity)
	{
		/* drop the worst (the first of equals), worst = the next worst */
		int32_t		lo = 0;
		double		next = INFINITY;

		for (int32_t i = 1; i < h->count; i++)
			if (h->score[i] < h->score[lo])
				lo = i;
		for (int32_t i = 0; i < h->count; i++)
			if (i != lo && h->score[i] < next)
				next = h->score[i];
		for (int32_t i = lo; i + 1 < h->count; i++)
		{
			h->score[i] = h->score[i + 1];
			h->len[i] = h->len[i + 1];
			memcpy(h->tokens + (size_t) i * (size_t) h->max_new,
				   h->tokens + (size_t) (i + 1) * (size_t) h->max_new,
				   (size_t) h->max_new * sizeof(int32_t));
		}
		h->count--;
		h->worst = next;
	}
	else if (score < h->worst)
		h->worst = score;
}

static bool
hyp_is_done(const hypotheses *h, cb_early_stopping mode, double best_sum_logprobs,
			int32_t generated_len, int32_t max_generated)
{
	double		highest;

	if (h->count < h->capacity)
		return false;
	if (mode == CB_EARLY_STOPPING_TRUE)
		return true;
	if (mode == CB_EARLY_STOPPING_NEVER && h->length_penalty > 0.0)
		highest = best_sum_logprobs / pow((double) max_generated, h->length_penalty);
	else
		highest = best_sum_logprobs / pow((double) generated_len, h->length_penalty);
	return h->worst >= highest;
}

/* ------------------------------------------------------------------------ */
/* the search */

typedef struct candidate
{
	float		score;
	int32_t		beam;
	int32_t		token;
} candidate;

/* Does a rank before b (higher score; on equal scores the lower flat index)? */
static inline bool
cand_before(const candidate *a, const candidate *b)
{
	if (a->score != b->score)
		return a->score > b->score;
	return a->beam != b->beam ? a->beam < b->beam : a->token < b->token;
}

/* Insert c into the sorted list top[0..*n) of at most k entries. */
static void
cand_offer(candidate *top, int32_t *n, int32_t k, candidate c)
{
	int32_t		i;

	if (*n == k && !cand_before(&c, &top[k - 1]))
		return;
	i = *n < k ? (*n)++ : k - 1;
	while (i > 0 && cand_before(&c, &top[i - 1]))
	{
		top[i] = top[i - 1];
		i--;
	}
	top[i] = c;
}

/* log_softmax of logits[v] into out (float, as transformers' tensors). */
static void
log_softmax(const float *logits, size_t v, float *out)
{
	double		lse = cb_kernel_logsumexp(logits, v);

	for (size_t i = 0; i < v; i++)
		out[i] = (float) ((double) logits[i] - lse);
}

cb_status
cb_beam_search(const cb_compute *cc, const cb_model *model, const int32_t *prompt, int32_t prompt_len,
			   const cb_generate_options *gen, const cb_beam_options *beam,
			   int32_t *new_ids, int32_t *n_new, double *scores, int32_t *n_returned,
			   cb_error *err)
{
	cb_status	st;
	int32_t		k,
				limit,
				max_gen,
				max_new,
				cur = 0,		/* tokens generated so far by every running beam */
				n_cand;
	size_t		v,
				seq_cap;
	bool		done = false;
	cb_decoder *decs[CB_MAX_BEAMS] = {0},
			   *next_decs[CB_MAX_BEAMS];
	bool		taken[CB_MAX_BEAMS];
	float		beam_score[CB_MAX_BEAMS],
				next_score[CB_MAX_BEAMS];
	int32_t		next_src[CB_MAX_BEAMS],
				next_token[CB_MAX_BEAMS];
	candidate	top[2 * CB_MAX_BEAMS];
	float	   *logits = NULL;		/* [k][v] */
	float	   *lp = NULL;			/* [v] */
	int32_t    *seqs = NULL;		/* [k][seq_cap]: prompt + tokens of each beam */
	int32_t    *next_seqs = NULL;
	float	   *heads = NULL;		/* [k][H]: LM head transforms of the beams */
	void	   *scratch_block = NULL;
	void	   *scratch = NULL;		/* for cb_lm_head_decode of k rows */
	hypotheses	hyps = {0};

	*n_returned = 0;
	if (gen == NULL || beam == NULL || prompt == NULL || prompt_len <= 0)
		return cb_set_error(err, CB_ERR_INVALID, "beam search needs options and a non-empty prompt");
	st = cb_beam_check_options(beam, err);
	if (st != CB_OK)
		return st;
	st = cb_check_logits_processor_options(gen, err);
	if (st != CB_OK)
		return st;
	if (gen->max_new_tokens < 0)
		return cb_set_error(err, CB_ERR_INVALID, "max_new_tokens %d is negative", gen->max_new_tokens);
	st = cb_generate_check_model(model, err);
	if (st != CB_OK)
		return st;
	limit = (int32_t) cb_config_max_sequence(&model->config);
	if (prompt_len > limit)
		return cb_set_error(err, CB_ERR_INVALID,
							"the prompt has %d tokens, more than the %d the model accepts",
							prompt_len, limit);
	if (gen->max_new_tokens == 0)
		return CB_OK;
	max_new = gen->max_new_tokens;
	max_gen = max_new < limit - prompt_len ? max_new : limit - prompt_len;
	if (max_gen <= 0)
		return CB_OK;			/* no position left for a new token (as cb_generate) */
	k = beam->num_beams;
	v = (size_t) model->config.vocab_size;
	seq_cap = (size_t) prompt_len + (size_t) max_gen;

	/* buffers: all small (k <= 64 beams of <= max_position_embeddings tokens) */
	logits = cb_compute_alloc(cc, (size_t) k * v * sizeof(float));
	lp = cb_compute_alloc(cc, v * sizeof(float));
	seqs = cb_compute_alloc(cc, (size_t) k * seq_cap * sizeof(int32_t));
	next_seqs = cb_compute_alloc(cc, (size_t) k * seq_cap * sizeof(int32_t));
	hyps.capacity = k;
	hyps.max_new = max_new;
	hyps.worst = 1e9;
	hyps.length_penalty = beam->length_penalty;
	hyps.score = cb_compute_alloc(cc, (size_t) (k + 1) * sizeof(double));
	hyps.len = cb_compute_alloc(cc, (size_t) (k + 1) * sizeof(int32_t));
	hyps.tokens = cb_compute_alloc(cc, (size_t) (k + 1) * (size_t) max_new * sizeof(int32_t));
	heads = cb_compute_alloc(cc, (size_t) k * (size_t) model->config.hidden_size * sizeof(float));
	{
		size_t		bytes = cb_model_product_scratch_bytes(model, (size_t) k, cb_compute_threads(cc));

		scratch_block = cb_compute_alloc(cc, bytes + 64);
		if (scratch_block != NULL)
			scratch = (void *) (((uintptr_t) scratch_block + 63) & ~(uintptr_t) 63);
	}
	if (logits == NULL || lp == NULL || seqs == NULL || next_seqs == NULL || heads == NULL || scratch == NULL ||
		hyps.score == NULL || hyps.len == NULL || hyps.tokens == NULL)
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "out of memory for beam search buffers");
		goto done;
	}
	for (int32_t b = 0; b < k; b++)
	{
		st = cb_decoder_create(cc, model, (int32_t) seq_cap, &decs[b], err);
		if (st != CB_OK)
			goto done;
		memcpy(seqs + (size_t) b * seq_cap, prompt, (size_t) prompt_len * sizeof(int32_t));
		beam_score[b] = b == 0 ? 0.0f : -1e9f;
	}

	/* every beam starts as the prompt: its logits once, for all */
	st = cb_decoder_append(decs[0], prompt, prompt_len, logits, err);
	if (st != CB_OK)
		goto done;
	for (int32_t b = 1; b < k; b++)
	{
		memcpy(logits + (size_t) b * v, logits, v * sizeof(float));
		st = cb_decoder_copy(decs[b], decs[0], err);
		if (st != CB_OK)
			goto done;
	}

	for (;;)
	{
		int32_t		chosen = 0,
					len = prompt_len + cur;

		if (cb_compute_stopped(cc))
		{
			st = cb_compute_canceled(err, "beam search");
			goto done;
		}

		/* the 2k best (beam, token) pairs */
		n_cand = 0;
		for (int32_t b = 0; b < k; b++)
		{
			log_softmax(logits + (size_t) b * v, v, lp);
			cb_apply_logits_processors(lp, (int32_t) v, seqs + (size_t) b * seq_cap, len,
									   gen->repetition_penalty, gen->no_repeat_ngram_size);
			for (size_t t = 0; t < v; t++)
				cand_offer(top, &n_cand, 2 * k,
						   (candidate) {lp[t] + beam_score[b], b, (int32_t) t});
		}

		/* BeamSearchScorer.process */
		for (int32_t r = 0; r < n_cand && chosen < k; r++)
		{
			const candidate *c = &top[r];

			if (c->token == gen->eos_token_id)
			{
				int32_t		hyp_len = cur + 1;
				int32_t    *src = seqs + (size_t) c->beam * seq_cap;

				if (r >= k)
					continue;
				/* the hypothesis keeps its eos (transformers appends it at the end) */
				src[len] = c->token;	/* seq_cap > len: cur < max_gen */
				hyp_add(&hyps, src + prompt_len, hyp_len, c->score, hyp_len);
				continue;
			}
			next_src[chosen] = c->beam;
			next_token[chosen] = c->token;
			next_score[chosen] = c->score;
			chosen++;
		}
		if (chosen < k)
		{
			st = cb_set_error(err, CB_ERR_INVALID, "beam search found fewer than %d continuations", k);
			goto done;
		}
		done = done || hyp_is_done(&hyps, beam->early_stopping, (double) top[0].score, cur + 1, max_gen);

		/* the new beams: sequences, scores, caches (moved or copied) */
		for (int32_t b = 0; b < k; b++)
		{
			int32_t    *dst = next_seqs + (size_t) b * seq_cap;

			memcpy(dst, seqs + (size_t) next_src[b] * seq_cap, (size_t) len * sizeof(int32_t));
			dst[len] = next_token[b];
			beam_score[b] = next_score[b];
			taken[b] = false;
			next_decs[b] = NULL;
		}
		{
			int32_t    *tmp = seqs;

			seqs = next_seqs;
			next_seqs = tmp;
		}
		for (int32_t b = 0; b < k; b++)
			if (!taken[next_src[b]])
			{
				taken[next_src[b]] = true;
				next_decs[b] = decs[next_src[b]];
			}
		{
			int32_t		spare = 0;

			for (int32_t b = 0; b < k; b++)
			{
				if (next_decs[b] != NULL)
					continue;
				while (taken[spare])
					spare++;
				taken[spare] = true;
				st = cb_decoder_copy(decs[spare], decs[next_src[b]], err);
				if (st != CB_OK)
					goto done;
				next_decs[b] = decs[spare];
			}
		}
		memcpy(decs, next_decs, (size_t) k * sizeof(cb_decoder *));
		cur++;
		if (done || cur >= max_gen)
			break;
		/* one decoder step per beam, then the logits of all beams in one
		 * product (the word embeddings read once) */
		for (int32_t b = 0; b < k; b++)
		{
			st = cb_decoder_append_head(decs[b], &next_token[b], 1,
										heads + (size_t) b * (size_t) model->config.hidden_size, err);
			if (st != CB_OK)
				goto done;
		}
		cb_lm_head_decode(model, heads, (size_t) k, logits, v, scratch, cb_compute_threads(cc));
	}

	/* BeamSearchScorer.finalize */
	if (!done)
		for (int32_t b = 0; b < k; b++)
			hyp_add(&hyps, seqs + (size_t) b * seq_cap + prompt_len, cur, beam_score[b], cur);
	for (int32_t r = 0; r < beam->num_return_sequences && hyps.count > 0; r++)
	{
		int32_t		best = 0;

		/* sorted() is stable and pop() takes the last: the later of equals */
		for (int32_t i = 1; i < hyps.count; i++)
			if (hyps.score[i] >= hyps.score[best])
				best = i;
		memcpy(new_ids + (size_t) r * (size_t) max_new, hyps.tokens + (size_t) best * (size_t) max_new,
			   (size_t) hyps.len[best] * sizeof(int32_t));
		n_new[r] = hyps.len[best];
		if (scores != NULL)
			scores[r] = hyps.score[best];
		(*n_returned)++;
		for (int32_t i = best; i + 1 < hyps.count; i++)
		{
			hyps.score[i] = hyps.score[i + 1];
			hyps.len[i] = hyps.len[i + 1];
			memcpy(hyps.tokens + (size_t) i * (size_t) max_new,
				   hyps.tokens + (size_t) (i + 1) * (size_t) max_new, (size_t) max_new * sizeof(int32_t));
		}
		hyps.count--;
	}

done:
	for (int32_t b = 0; b < k; b++)
		cb_decoder_free(decs[b]);
	cb_compute_free(cc, scratch_block);
	cb_compute_free(cc, heads);
	cb_compute_free(cc, hyps.tokens);
	cb_compute_free(cc, hyps.len);
	cb_compute_free(cc, hyps.score);
	cb_compute_free(cc, next_seqs);
	cb_compute_free(cc, seqs);
	cb_compute_free(cc, lp);
	cb_compute_free(cc, logits);
	return st;
}
