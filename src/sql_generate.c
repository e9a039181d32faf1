/*
 * sql_generate.c — camembert_generate and camembert_generate_sequences: text
 * generation with a causal LM.
 *
 * The prompt is encoded as <s> + its pieces (no </s>), as a causal LM is fed;
 * temperature 0 is greedy search (equal to transformers' generate), else
 * sampling with temperature, top_k and top_p, reproducible with a seed (our
 * own PRNG: the same seed gives the same text on every server); num_beams > 1
 * is beam search (core: beam_search.h), with length_penalty and
 * early_stopping.  repetition_penalty and no_repeat_ngram_size apply to every
 * mode (logits_processors.h).  Generation stops at </s>, after
 * max_new_tokens, or when the model's positions run out.  The result is the
 * decoded continuation, special tokens skipped.
 *
 * camembert_generate_sequences returns the num_return_sequences best beams,
 * best first, with their scores (the summed log-probability over the new
 * tokens divided by their count ^ length_penalty, as transformers'
 * sequences_scores).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "camembert.h"
#include "beam_search.h"
#include "generate.h"
#include "model_resolve.h"
#include "model_stats.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_generate);
PG_FUNCTION_INFO_V1(camembert_generate_sequences);

static uint64
random_seed(void)
{
	uint64		seed;

	if (!pg_strong_random(&seed, sizeof(seed)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random seed"),
				 errhint("Pass a seed.")));
	return seed;
}

static void
check_max_new_tokens(int32 max_new_tokens)
{
	if (max_new_tokens < 0 || max_new_tokens > camembert_max_new_tokens)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_new_tokens must be between 0 and %d, not %d", camembert_max_new_tokens, max_new_tokens),
				 errhint("camembert.max_new_tokens (superuser) sets the upper bound.")));
}

/* repetition_penalty and no_repeat_ngram_size: 22023 with the bound */
static void
set_processors(cb_generate_options *opt, double repetition_penalty, int32 no_repeat_ngram_size)
{
	if (!(repetition_penalty > 0.0) || repetition_penalty > FLT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("repetition_penalty must be a finite number > 0"),
				 errhint("1 disables it; values above 1 (1.2 is usual) discourage repeated tokens.")));
	if (no_repeat_ngram_size < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no_repeat_ngram_size must be >= 0, not %d", no_repeat_ngram_size),
				 errhint("0 disables it; n forbids repeating any n-gram.")));
	opt->repetition_penalty = (float) repetition_penalty;
	opt->no_repeat_ngram_size = no_repeat_ngram_size;
}

/* num_beams, num_return_sequences, length_penalty: 22023 with the bound */
static void
set_beam_options(cb_beam_options *bo, int32 num_beams, int32 num_return_sequences,
				 double length_penalty, bool early_stopping)
{
	if (num_beams < 1 || num_beams > CB_MAX_BEAMS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("num_beams must be between 1 and %d, not %d", CB_MAX_BEAMS, num_beams),
				 errhint("1 is greedy search (or sampling); 4 is usual for beam search.")));
	if (num_return_sequences < 1 || num_return_sequences > num_beams)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("num_return_sequences must be between 1 and num_beams (%d), not %d",
						num_beams, num_return_sequences),
				 errhint("Beam search returns at most one sequence per beam.")));
	if (isnan(length_penalty) || isinf(length_penalty))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("length_penalty must be a finite number"),
				 errhint("1 (the default) divides a beam's log-probability by its length; > 1 favours longer sequences, < 1 shorter ones.")));
	cb_beam_default_options(bo);
	bo->num_beams = num_beams;
	bo->num_return_sequences = num_return_sequences;
	bo->length_penalty = length_penalty;
	bo->early_stopping = early_stopping ? CB_EARLY_STOPPING_TRUE : CB_EARLY_STOPPING_HEURISTIC;
}

/* <s> + pieces of the prompt, truncated so that at least one new token fits */
static int32_t *
encode_prompt(CamembertModel *model, text *input, int *prompt_len_out)
{
	char	   *utf8;
	size_t		len;
	int32_t    *pieces;
	size_t		n_pieces;
	int32_t    *prompt;
	int			prompt_len;
	int			max_prompt;
	cb_error	err;

	max_prompt = camembert_max_input_tokens(model) - 1;
	if (max_prompt < 1)			/* refused at load: cb_config_validate */
		elog(ERROR, "model \"%s\" has no room for a prompt token and a new one", model->name);
	utf8 = camembert_text_to_utf8(input, &len);
	/* the first max_prompt - 1 pieces: the tokenizer stops reading there */
	if (cb_tokenizer_encode(&model->tokenizer, NULL, utf8, len, false, Max(max_prompt - 1, 0),
							&pieces, &n_pieces, &err) != CB_OK)
		camembert_report_core_error(&err, "could not tokenize", NULL);
	prompt_len = (int) Min((size_t) max_prompt, n_pieces + 1);
	prompt = palloc(sizeof(int32_t) * (prompt_len + 1));
	prompt[0] = model->tokenizer.cls_id;
	memcpy(prompt + 1, pieces, sizeof(int32_t) * (prompt_len - 1));
	cb_free(pieces);
	*prompt_len_out = prompt_len;
	return prompt;
}

/*
 * camembert_generate(prompt, model, max_new_tokens, temperature, top_k,
 * top_p, seed [, num_beams, length_penalty, early_stopping,
 * repetition_penalty, no_repeat_ngram_size]) → text.  The last five exist
 * from version 0.4 (the 0.3 definition passes 7 arguments).
 */
Datum
camembert_generate(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	cb_generate_options opt;
	cb_beam_options bo;
	int32_t    *prompt;
	int			prompt_len;
	int32_t    *new_ids;
	int32_t		n_new = 0;
	cb_error	err;
	text	   *result;
	int32		max_new_tokens;
	double		temperature;
	int32		top_k;
	double		top_p;
	bool		extended = PG_NARGS() >= 12;
	instr_time	start;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_GENERATE);
	max_new_tokens = PG_ARGISNULL(2) ? 20 : PG_GETARG_INT32(2);
	temperature = PG_ARGISNULL(3) ? 0.0 : PG_GETARG_FLOAT8(3);
	top_k = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);
	top_p = PG_ARGISNULL(5) ? 1.0 : PG_GETARG_FLOAT8(5);

	check_max_new_tokens(max_new_tokens);
	if (!(temperature >= 0.0) || isinf(temperature))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("temperature must be a finite number >= 0"),
				 errhint("0 is greedy search; 0.7 to 1.0 are usual for sampling.")));
	if (top_k < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("top_k must be >= 0, not %d", top_k),
				 errhint("0 disables the top-k filter.")));
	if (!(top_p > 0.0 && top_p <= 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("top_p must be in (0, 1]"),
				 errhint("1 disables the nucleus filter.")));

	cb_generate_default_options(&model->model, &opt);
	opt.max_new_tokens = max_new_tokens;
	opt.temperature = (float) temperature;
	opt.top_k = top_k;
	opt.top_p = (float) top_p;
	opt.seed = PG_ARGISNULL(6) ? random_seed() : (uint64) PG_GETARG_INT64(6);
	cb_beam_default_options(&bo);
	if (extended)
	{
		int32		num_beams = PG_ARGISNULL(7) ? 1 : PG_GETARG_INT32(7);

		set_beam_options(&bo, num_beams, 1, PG_ARGISNULL(8) ? 1.0 : PG_GETARG_FLOAT8(8),
						 PG_ARGISNULL(9) ? false : PG_GETARG_BOOL(9));
		set_processors(&opt, PG_ARGISNULL(10) ? 1.0 : PG_GETARG_FLOAT8(10),
					   PG_ARGISNULL(11) ? 0 : PG_GETARG_INT32(11));
		if (bo.num_beams > 1 && temperature > 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("num_beams > 1 needs temperature 0: beam search does not sample"),
					 errhint("Pass temperature 0 for beam search, or num_beams 1 for sampling.")));
	}

	prompt = encode_prompt(model, PG_GETARG_TEXT_PP(0), &prompt_len);
	new_ids = palloc(sizeof(int32_t) * (max_new_tokens + 1));
	if (max_new_tokens > 0 && bo.num_beams > 1)
	{
		int32_t		n_ret = 0;

		if (cb_beam_search(camembert_compute(), &model->model, prompt, prompt_len, &opt, &bo, new_ids, &n_new, NULL, &n_ret,
						   &err) != CB_OK)
			camembert_report_core_error(&err, "generation failed", NULL);
		if (n_ret < 1)
			n_new = 0;
	}
	else if (max_new_tokens > 0 &&
			 cb_generate(camembert_compute(), &model->model, prompt, prompt_len, &opt, new_ids, &n_new, NULL, NULL, &err) != CB_OK)
		camembert_report_core_error(&err, "generation failed", NULL);

	result = camembert_decode_ids(model, new_ids, n_new, true);
	camembert_stat_call(model->name, 1, (int64) prompt_len + n_new, &start);
	PG_RETURN_TEXT_P(result);
}

/*
 * camembert_generate_sequences(prompt, model, max_new_tokens, num_beams,
 * num_return_sequences, length_penalty, early_stopping, repetition_penalty,
 * no_repeat_ngram_size) → TABLE(rank integer, sequence text, score float8):
 * beam search's best sequences, best first (rank 1).
 */
Datum
camembert_generate_sequences(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	cb_generate_options opt;
	cb_beam_options bo;
	int32_t    *prompt;
	int			prompt_len;
	int32_t    *new_ids;
	int32_t    *n_new;
	double	   *scores;
	int32_t		n_ret = 0;
	int32		max_new_tokens,
				num_beams,
				num_return;
	int64		tokens = 0;
	cb_error	err;
	instr_time	start;

	if (PG_ARGISNULL(0))
	{
		camembert_srf_begin(fcinfo, &tupdesc);
		return (Datum) 0;
	}
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_GENERATE);
	max_new_tokens = PG_ARGISNULL(2) ? 20 : PG_GETARG_INT32(2);
	check_max_new_tokens(max_new_tokens);
	num_beams = PG_ARGISNULL(3) ? 4 : PG_GETARG_INT32(3);
	num_return = PG_ARGISNULL(4) ? num_beams : PG_GETARG_INT32(4);
	set_beam_options(&bo, num_beams, num_return, PG_ARGISNULL(5) ? 1.0 : PG_GETARG_FLOAT8(5),
					 PG_ARGISNULL(6) ? false : PG_GETARG_BOOL(6));
	cb_generate_default_options(&model->model, &opt);
	opt.max_new_tokens = max_new_tokens;
	set_processors(&opt, PG_ARGISNULL(7) ? 1.0 : PG_GETARG_FLOAT8(7), PG_ARGISNULL(8) ? 0 : PG_GETARG_INT32(8));
	store = camembert_srf_begin(fcinfo, &tupdesc);

	prompt = encode_prompt(model, PG_GETARG_TEXT_PP(0), &prompt_len);
	new_ids = palloc(sizeof(int32_t) * ((Size) bo.num_return_sequences * (max_new_tokens + 1)));
	n_new = palloc(sizeof(int32_t) * bo.num_return_sequences);
	scores = palloc(sizeof(double) * bo.num_return_sequences);
	if (cb_beam_search(camembert_compute(), &model->model, prompt, prompt_len, &opt, &bo, new_ids, n_new, scores, &n_ret,
					   &err) != CB_OK)
		camembert_report_core_error(&err, "generation failed", NULL);
	for (int32_t r = 0; r < n_ret; r++)
	{
		Datum		values[3];
		bool		nulls[3] = {0};

		values[0] = Int32GetDatum(r + 1);
		values[1] = PointerGetDatum(camembert_decode_ids(model, new_ids + (Size) r * max_new_tokens, n_new[r], true));
		values[2] = Float8GetDatum(scores[r]);
		tuplestore_putvalues(store, tupdesc, values, nulls);
		tokens += n_new[r];
	}
	camembert_stat_call(model->name, 1, (int64) prompt_len + tokens, &start);
	return (Datum) 0;
}
