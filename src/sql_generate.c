/*
 * sql_generate.c — camembert_generate: text generation with a causal LM.
 *
 * The prompt is encoded as <s> + its pieces (no </s>), as a causal LM is fed;
 * temperature 0 is greedy search (equal to transformers' generate), else
 * sampling with temperature, top_k and top_p, reproducible with a seed (our
 * own PRNG: the same seed gives the same text on every server).  Generation
 * stops at </s>, after max_new_tokens, or when the model's positions run out.
 * The result is the decoded continuation, special tokens skipped.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"

#include "camembert.h"
#include "generate.h"
#include "model_resolve.h"
#include "model_stats.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_generate);

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

Datum
camembert_generate(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	cb_generate_options opt;
	char	   *utf8;
	size_t		len;
	int32_t    *pieces;
	size_t		n_pieces;
	int32_t    *prompt;
	int			prompt_len;
	int			max_prompt;
	int32_t    *new_ids;
	int32_t		n_new = 0;
	cb_error	err;
	char	   *out;
	size_t		out_len;
	text	   *result;
	int32		max_new_tokens;
	double		temperature;
	int32		top_k;
	double		top_p;
	instr_time	start;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_GENERATE);
	max_new_tokens = PG_ARGISNULL(2) ? 20 : PG_GETARG_INT32(2);
	temperature = PG_ARGISNULL(3) ? 0.0 : PG_GETARG_FLOAT8(3);
	top_k = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);
	top_p = PG_ARGISNULL(5) ? 1.0 : PG_GETARG_FLOAT8(5);

	if (max_new_tokens < 0 || max_new_tokens > camembert_max_new_tokens)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_new_tokens must be between 0 and %d, not %d", camembert_max_new_tokens, max_new_tokens),
				 errhint("camembert.max_new_tokens (superuser) sets the upper bound.")));
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

	/* <s> + pieces, truncated so that at least one new token fits */
	max_prompt = camembert_max_input_tokens(model) - 1;
	if (max_prompt < 1)			/* refused at load: cb_config_validate */
		elog(ERROR, "model \"%s\" has no room for a prompt token and a new one", model->name);
	utf8 = camembert_text_to_utf8(PG_GETARG_TEXT_PP(0), &len);
	/* the first max_prompt - 1 pieces: the tokenizer stops reading there */
	if (cb_tokenizer_encode(&model->tokenizer, NULL, utf8, len, false, Max(max_prompt - 1, 0),
							&pieces, &n_pieces, &err) != CB_OK)
		camembert_report_core_error(&err, "could not tokenize", NULL);
	prompt_len = (int) Min((size_t) max_prompt, n_pieces + 1);
	prompt = palloc(sizeof(int32_t) * (prompt_len + 1));
	prompt[0] = model->tokenizer.cls_id;
	memcpy(prompt + 1, pieces, sizeof(int32_t) * (prompt_len - 1));
	cb_free(pieces);

	new_ids = palloc(sizeof(int32_t) * (max_new_tokens + 1));
	camembert_apply_threads();
	if (max_new_tokens > 0 &&
		cb_generate(&model->model, prompt, prompt_len, &opt, new_ids, &n_new, NULL, NULL, &err) != CB_OK)
		camembert_report_core_error(&err, "generation failed", NULL);

	if (cb_tokenizer_decode(&model->tokenizer, new_ids, n_new, true, true, &out, &out_len, &err) != CB_OK)
		camembert_report_core_error(&err, "could not decode", NULL);
	result = camembert_utf8_to_text(out, out_len);
	cb_free(out);
	camembert_stat_call(model->name, 1, (int64) prompt_len + n_new, &start);
	PG_RETURN_TEXT_P(result);
}
