/*
 * test_beam_search.c — beam search and the logits processors against
 * test/golden/models/clm/expected/generate_extras.json (transformers
 * generate(): num_beams with length_penalty / early_stopping,
 * num_return_sequences, repetition_penalty, no_repeat_ngram_size and a
 * combination; 5 prompts, max_new_tokens 20): identical token ids, scores
 * within 1e-4.  Also: the processors on hand-made scores, the option bounds,
 * and a beam of one equal to greedy search.
 */
#include "unit.h"
#include "support/ut_compute.h"
#include "support/golden_model.h"

#include "beam_search.h"
#include "generate.h"
#include "logits_processors.h"

#define CLM "build/golden/models/clm/"
#define MAX_NEW 20
#define MAX_SEQ 64
#define MAX_RET 8

static ut_loaded_model clm;
static const cb_model *model;

static double
json_num(const cb_json_value *obj, const char *key, double dflt)
{
	double		x = ut_json_number(obj, key);

	return isnan(x) ? dflt : x;
}

static void
test_golden(void)
{
	cb_json_doc *doc = ut_json_load(CLM "expected/generate_extras.json");
	const cb_json_value *items = doc ? cb_json_get(cb_json_root(doc), "items") : NULL;
	size_t		n_items = 0,
				n_equal = 0,
				n_scores = 0;
	double		max_score_diff = 0.0;

	CHECK(items != NULL && items->type == CB_JSON_ARRAY && items->count == 30);
	if (items == NULL)
		goto done;
	for (size_t it = 0; it < items->count; it++)
	{
		const cb_json_value *item = &items->items[it];
		const cb_json_value *kw = cb_json_get(item, "generate_kwargs");
		const cb_json_value *seqs = cb_json_get(item, "sequences");
		const cb_json_value *es = kw ? cb_json_get(kw, "early_stopping") : NULL;
		int32_t		prompt[MAX_SEQ],
					got[MAX_RET * MAX_NEW],
					n_new[MAX_RET];
		double		scores[MAX_RET];
		float		want_scores[MAX_RET];
		long		np = ut_json_ints(cb_json_get(item, "prompt_ids"), prompt, MAX_SEQ);
		long		n_want_scores = ut_json_floats(cb_json_get(item, "sequences_scores"), want_scores, MAX_RET);
		int32_t		n_ret = 0;
		cb_generate_options gen;
		cb_beam_options bo;
		cb_error	err;
		const char *config = cb_json_get(item, "config") ? cb_json_get(item, "config")->string : "?";

		CHECK(kw != NULL && seqs != NULL && seqs->type == CB_JSON_ARRAY && np > 0);
		if (kw == NULL || seqs == NULL || np <= 0 || seqs->count > MAX_RET)
			continue;
		cb_generate_default_options(model, &gen);
		gen.max_new_tokens = MAX_NEW;
		gen.repetition_penalty = (float) json_num(kw, "repetition_penalty", 1.0);
		gen.no_repeat_ngram_size = (int32_t) json_num(kw, "no_repeat_ngram_size", 0);
		cb_beam_default_options(&bo);
		bo.num_beams = (int32_t) json_num(kw, "num_beams", 1);
		bo.num_return_sequences = (int32_t) json_num(kw, "num_return_sequences", 1);
		bo.length_penalty = json_num(kw, "length_penalty", 1.0);
		bo.early_stopping = es != NULL && es->type == CB_JSON_BOOL && es->boolean ? CB_EARLY_STOPPING_TRUE
			: CB_EARLY_STOPPING_HEURISTIC;
		n_items++;
		if (bo.num_beams > 1)
		{
			CHECK_EQ_INT(cb_beam_search(ut_compute(), model, prompt, (int32_t) np, &gen, &bo, got, n_new, scores,
										&n_ret, &err), CB_OK);
		}
		else
		{
			CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, (int32_t) np, &gen, got, &n_new[0], NULL, NULL, &err),
						 CB_OK);
			n_ret = 1;
		}
		CHECK_MSG(n_ret == (int32_t) seqs->count, "%s item %zu: %d sequences, want %zu", config, it, n_ret,
				  seqs->count);
		for (int32_t r = 0; r < n_ret && (size_t) r < seqs->count; r++)
		{
			int32_t		want[MAX_SEQ + MAX_NEW];
			long		nw = ut_json_ints(&seqs->items[r], want, MAX_SEQ + MAX_NEW);
			bool		same;

			/* the golden sequences hold the prompt, then the new tokens
			 * (padded with pad_token_id after an eos) */
			while (nw > np && want[nw - 1] == model->config.pad_token_id)
				nw--;
			same = nw - np == n_new[r] &&
				memcmp(want + np, got + (size_t) r * (bo.num_beams > 1 ? MAX_NEW : 0),
					   (size_t) n_new[r] * sizeof(int32_t)) == 0;
			CHECK_MSG(same, "%s, prompt %ld tokens, sequence %d: tokens differ", config, np, r);
			n_equal += same;
			if (bo.num_beams > 1)
			{
				double		d;

				CHECK(r < n_want_scores);
				if (r >= n_want_scores)
					continue;
				d = fabs(scores[r] - (double) want_scores[r]);
				if (d > max_score_diff)
					max_score_diff = d;
				n_scores++;
				CHECK_MSG(d <= 1e-4, "%s sequence %d: score %.7f, want %.7f", config, r, scores[r],
						  (double) want_scores[r]);
			}
		}
	}
	printf("  clm generate_extras: %zu items, %zu sequences equal, %zu scores, max |d| %.3g\n",
		   n_items, n_equal, n_scores, max_score_diff);
	CHECK_EQ_INT((int) n_items, 30);
	CHECK_EQ_INT((int) n_equal, 45);
	CHECK_EQ_INT((int) n_scores, 35);
done:
	cb_json_free(doc);
}

/* The processors on hand-made scores (transformers' rules, worked by hand). */
static void
test_processors(void)
{
	float		s[6] = {1.0f, -1.0f, 2.0f, -2.0f, 0.5f, 3.0f};
	const int32_t ids[] = {0, 1, 1, 3};
	const int32_t seq[] = {2, 4, 2, 4, 2};	/* 3-grams: (2,4,2) (4,2,4) (2,4,2) */

	cb_apply_repetition_penalty(s, 6, ids, 4, 2.0f);
	CHECK(s[0] == 0.5f && s[1] == -2.0f && s[2] == 2.0f && s[3] == -4.0f && s[4] == 0.5f && s[5] == 3.0f);
	/* size 3, last two tokens (4, 2): the 3-gram (4, 2, 4) bans 4 */
	for (int i = 0; i < 6; i++)
		s[i] = 0.0f;
	cb_apply_no_repeat_ngram(s, 6, seq, 5, 3);
	for (int i = 0; i < 6; i++)
		CHECK_MSG(i == 4 ? isinf(s[i]) && s[i] < 0 : s[i] == 0.0f, "token %d: %g", i, (double) s[i]);
	/* size 1: every token seen is banned; too short a sequence bans nothing */
	for (int i = 0; i < 6; i++)
		s[i] = 0.0f;
	cb_apply_no_repeat_ngram(s, 6, seq, 5, 1);
	CHECK(isinf(s[2]) && isinf(s[4]) && s[0] == 0.0f && s[5] == 0.0f);
	for (int i = 0; i < 6; i++)
		s[i] = 0.0f;
	cb_apply_no_repeat_ngram(s, 6, seq, 2, 3);
	for (int i = 0; i < 6; i++)
		CHECK(s[i] == 0.0f);
}

static void
test_options_and_greedy(void)
{
	const int32_t prompt[] = {5, 449, 2695, 123, 983};
	int32_t		greedy[MAX_NEW],
				beam[MAX_RET * MAX_NEW],
				n_greedy = 0,
				n_new[MAX_RET],
				n_ret = 0;
	double		scores[MAX_RET];
	cb_generate_options gen;
	cb_beam_options bo;
	cb_error	err;

	cb_generate_default_options(model, &gen);
	cb_beam_default_options(&bo);
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &gen, greedy, &n_greedy, NULL, NULL, &err), CB_OK);
	/* a beam of one is greedy search */
	CHECK_EQ_INT(cb_beam_search(ut_compute(), model, prompt, 5, &gen, &bo, beam, n_new, scores, &n_ret, &err), CB_OK);
	CHECK(n_ret == 1 && n_new[0] == n_greedy && memcmp(beam, greedy, sizeof(int32_t) * n_greedy) == 0);

	bo.num_beams = 0;
	CHECK_EQ_INT(cb_beam_search(ut_compute(), model, prompt, 5, &gen, &bo, beam, n_new, scores, &n_ret, &err), CB_ERR_INVALID);
	CHECK(strstr(err.message, "between 1 and 64") != NULL);
	bo.num_beams = CB_MAX_BEAMS + 1;
	CHECK_EQ_INT(cb_beam_search(ut_compute(), model, prompt, 5, &gen, &bo, beam, n_new, scores, &n_ret, &err), CB_ERR_INVALID);
	bo.num_beams = 2;
	bo.num_return_sequences = 3;
	CHECK_EQ_INT(cb_beam_search(ut_compute(), model, prompt, 5, &gen, &bo, beam, n_new, scores, &n_ret, &err), CB_ERR_INVALID);
	bo.num_return_sequences = 2;
	bo.length_penalty = NAN;
	CHECK_EQ_INT(cb_beam_search(ut_compute(), model, prompt, 5, &gen, &bo, beam, n_new, scores, &n_ret, &err), CB_ERR_INVALID);
	bo.length_penalty = 1.0;
	gen.repetition_penalty = 0.0f;
	CHECK_EQ_INT(cb_beam_search(ut_compute(), model, prompt, 5, &gen, &bo, beam, n_new, scores, &n_ret, &err), CB_ERR_INVALID);
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &gen, greedy, &n_greedy, NULL, NULL, &err), CB_ERR_INVALID);
	gen.repetition_penalty = 1.0f;
	gen.no_repeat_ngram_size = -1;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &gen, greedy, &n_greedy, NULL, NULL, &err), CB_ERR_INVALID);
	gen.no_repeat_ngram_size = 0;
	/* no new token: no sequence */
	gen.max_new_tokens = 0;
	CHECK_EQ_INT(cb_beam_search(ut_compute(), model, prompt, 5, &gen, &bo, beam, n_new, scores, &n_ret, &err), CB_OK);
	CHECK_EQ_INT(n_ret, 0);
	/* a prompt that fills every position: no sequence, as greedy search gives
	 * no token */
	{
		int32_t		limit = model->config.max_position_embeddings - model->config.pad_token_id - 1;
		int32_t    *full = calloc((size_t) limit, sizeof(int32_t));

		for (int32_t i = 0; i < limit; i++)
			full[i] = prompt[i % 5];
		gen.max_new_tokens = 3;
		CHECK_EQ_INT(cb_beam_search(ut_compute(), model, full, limit, &gen, &bo, beam, n_new, scores, &n_ret, &err), CB_OK);
		CHECK_EQ_INT(n_ret, 0);
		CHECK_EQ_INT(cb_generate(ut_compute(), model, full, limit, &gen, greedy, &n_greedy, NULL, NULL, &err), CB_OK);
		CHECK_EQ_INT(n_greedy, 0);
		/* one position left: one token */
		CHECK_EQ_INT(cb_beam_search(ut_compute(), model, full, limit - 1, &gen, &bo, beam, n_new, scores, &n_ret, &err),
					 CB_OK);
		CHECK(n_ret == 2 && n_new[0] == 1 && n_new[1] == 1);
		free(full);
	}
	/* an eos that comes first ends the hypotheses early: 2 sequences, each
	 * ending with it or running to the limit */
	gen.max_new_tokens = MAX_NEW;
	gen.eos_token_id = 7035;
	CHECK_EQ_INT(cb_beam_search(ut_compute(), model, prompt, 5, &gen, &bo, beam, n_new, scores, &n_ret, &err), CB_OK);
	CHECK_EQ_INT(n_ret, 2);
	for (int32_t r = 0; r < n_ret; r++)
		CHECK(n_new[r] >= 1 && n_new[r] <= MAX_NEW &&
			  (n_new[r] == MAX_NEW || beam[r * MAX_NEW + n_new[r] - 1] == 7035));
	CHECK(scores[0] >= scores[1]);
}

int
main(void)
{
	RUN(test_processors);
	if (ut_load_model("build/golden/models/clm", &clm) != 0)
	{
		CHECK_MSG(false, "cannot load the clm golden model");
		return unit_finish("test_beam_search");
	}
	model = &clm.model;
	RUN(test_golden);
	RUN(test_options_and_greedy);
	ut_unload_model(&clm);
	return unit_finish("test_beam_search");
}
