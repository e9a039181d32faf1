/*
 * sql_classify.c — sequence classification: camembert_classify (one text, or
 * an array as padded batches), camembert_classify_scores, and the scores as
 * transformers' text-classification pipeline applies them.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "camembert.h"
#include "forward.h"
#include "model_resolve.h"
#include "model_stats.h"
#include "row_ops.h"
#include "sql_classify.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_classify);
PG_FUNCTION_INFO_V1(camembert_classify_scores);
PG_FUNCTION_INFO_V1(camembert_classify_batch);

/* Rows per forward pass for the batch form. */
#define CLASSIFY_BATCH_ROWS 16

ScoreFunction
camembert_default_score_function(const CamembertModel *model)
{
	const cb_config *cfg = &model->model.config;

	/* the pipeline: sigmoid for multi-label and for num_labels == 1, else softmax */
	if (cfg->problem_type == CB_PROBLEM_MULTI_LABEL || cfg->num_labels == 1)
		return SCORE_SIGMOID;
	return SCORE_SOFTMAX;
}

static ScoreFunction
parse_score_function(FunctionCallInfo fcinfo, int argno, const CamembertModel *model)
{
	char	   *name;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return camembert_default_score_function(model);
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(name, "softmax") == 0)
		return SCORE_SOFTMAX;
	if (strcmp(name, "sigmoid") == 0)
		return SCORE_SIGMOID;
	if (strcmp(name, "none") == 0)
		return SCORE_NONE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown function_to_apply \"%s\"", name),
			 errhint("Use 'softmax', 'sigmoid' or 'none' (raw logits, e.g. a regression value), or NULL for the pipeline's default.")));
	pg_unreachable();
}

void
camembert_apply_score_function(ScoreFunction fn, const float *logits, int n, double *scores)
{
	switch (fn)
	{
		case SCORE_SOFTMAX:
			{
				double		lse = cb_kernel_logsumexp(logits, n);

				for (int i = 0; i < n; i++)
					scores[i] = exp((double) logits[i] - lse);
				break;
			}
		case SCORE_SIGMOID:
			for (int i = 0; i < n; i++)
				scores[i] = 1.0 / (1.0 + exp(-(double) logits[i]));
			break;
		case SCORE_NONE:
			for (int i = 0; i < n; i++)
				scores[i] = logits[i];
			break;
	}
}

int
camembert_argmax(const double *scores, int n)
{
	int			best = 0;

	Assert(n > 0);				/* num_labels >= 1: config.c checks it */
	for (int i = 1; i < n; i++)
		if (scores[i] > scores[best])
			best = i;
	return best;
}

int64
camembert_classify_texts(CamembertModel *model, text **inputs, int n, float *logits)
{
	int64		tokens = 0;

	for (int start = 0; start < n; start += CLASSIFY_BATCH_ROWS)
	{
		int			rows = Min(CLASSIFY_BATCH_ROWS, n - start);
		CamembertBatch *batch = camembert_batch_encode(model, inputs + start, rows);
		cb_forward_output out = {0};

		out.class_logits = logits + (Size) start * model->model.config.num_labels;
		camembert_forward_batch(model, batch, &out);
		for (int i = 0; i < rows; i++)
			tokens += batch->lengths[i];
		camembert_batch_free(batch);
		CHECK_FOR_INTERRUPTS();
	}
	return tokens;
}

const char *
camembert_label_name(const CamembertModel *model, int id)
{
	const char *label = (model->model.labels != NULL && id < model->model.config.num_labels)
		? model->model.labels[id] : NULL;

	return label ? label : psprintf("LABEL_%d", id);
}

char *
camembert_label_cstring(const CamembertModel *model, int id)
{
	const char *label = camembert_label_name(model, id);
	size_t		len;

	return camembert_utf8_to_cstring(label, strlen(label), &len, model);
}

text *
camembert_label_text(const CamembertModel *model, int id)
{
	return cstring_to_text(camembert_label_cstring(model, id));
}

/* camembert_classify(input text, model text) → text: the top label */
Datum
camembert_classify(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	text	   *input;
	int			num_labels;
	float	   *logits;
	double	   *scores;
	int64		tokens;
	text	   *result;
	instr_time	start;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_CLASSIFY);
	num_labels = model->model.config.num_labels;
	logits = palloc(sizeof(float) * num_labels);
	scores = palloc(sizeof(double) * num_labels);
	input = PG_GETARG_TEXT_PP(0);
	tokens = camembert_classify_texts(model, &input, 1, logits);
	camembert_apply_score_function(camembert_default_score_function(model), logits, num_labels, scores);
	result = camembert_label_text(model, camembert_argmax(scores, num_labels));
	camembert_stat_call(model->name, 1, tokens, &start);
	PG_RETURN_TEXT_P(result);
}

typedef struct LabelScore
{
	int			id;
	double		score;
} LabelScore;

static int
label_score_cmp(const void *a, const void *b)
{
	const LabelScore *x = a;
	const LabelScore *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->id - y->id;
}

/*
 * camembert_classify_scores(input text, model text, function_to_apply text)
 * → TABLE(label text, score float8), best first.
 */
Datum
camembert_classify_scores(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	text	   *input;
	int			num_labels;
	float	   *logits;
	double	   *scores;
	LabelScore *ranked;
	ScoreFunction fn;
	int64		tokens;
	instr_time	start;

	if (PG_ARGISNULL(0))
	{
		/* NULL in: no rows */
		camembert_srf_begin(fcinfo, &tupdesc);
		return (Datum) 0;
	}
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_CLASSIFY);
	fn = parse_score_function(fcinfo, 2, model);
	store = camembert_srf_begin(fcinfo, &tupdesc);
	num_labels = model->model.config.num_labels;
	logits = palloc(sizeof(float) * num_labels);
	scores = palloc(sizeof(double) * num_labels);
	ranked = palloc(sizeof(LabelScore) * num_labels);
	input = PG_GETARG_TEXT_PP(0);
	tokens = camembert_classify_texts(model, &input, 1, logits);
	camembert_apply_score_function(fn, logits, num_labels, scores);
	for (int i = 0; i < num_labels; i++)
	{
		ranked[i].id = i;
		ranked[i].score = scores[i];
	}
	qsort(ranked, num_labels, sizeof(LabelScore), label_score_cmp);
	for (int i = 0; i < num_labels; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {0};

		values[0] = PointerGetDatum(camembert_label_text(model, ranked[i].id));
		values[1] = Float8GetDatum(ranked[i].score);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	camembert_stat_call(model->name, 1, tokens, &start);
	return (Datum) 0;
}

/*
 * camembert_classify(inputs text[], model text) → TABLE(ord integer, label text, score float8):
 * one row per element (ord is its 1-based position; NULL elements give NULL
 * label and score), computed in padded batches.
 */
Datum
camembert_classify_batch(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	ArrayType  *array;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;
	text	  **texts;
	int		   *ord;
	int			n_texts = 0;
	int			num_labels;
	float	   *logits;
	double	   *scores;
	ScoreFunction fn;
	int			next = 0;
	int64		tokens;
	instr_time	start;

	if (PG_ARGISNULL(0))
	{
		/* NULL in: no rows */
		camembert_srf_begin(fcinfo, &tupdesc);
		return (Datum) 0;
	}
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_CLASSIFY);
	fn = camembert_default_score_function(model);
	store = camembert_srf_begin(fcinfo, &tupdesc);
	array = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("inputs must be a one-dimensional array"),
				 errhint("Pass one text per element, e.g. array_agg(body).")));
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &n);
	num_labels = model->model.config.num_labels;
	texts = palloc(sizeof(text *) * (n + 1));
	ord = palloc(sizeof(int) * (n + 1));
	for (int i = 0; i < n; i++)
		if (!elem_nulls[i])
		{
			texts[n_texts] = DatumGetTextPP(elems[i]);
			ord[n_texts++] = i;
		}
	logits = palloc_extended(mul_size(mul_size(Max(n_texts, 1), num_labels), sizeof(float)), MCXT_ALLOC_HUGE);
	scores = palloc(sizeof(double) * num_labels);
	tokens = camembert_classify_texts(model, texts, n_texts, logits);
	for (int i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {0};

		values[0] = Int32GetDatum(i + 1);
		if (next < n_texts && ord[next] == i)
		{
			int			best;

			camembert_apply_score_function(fn, logits + (Size) next * num_labels, num_labels, scores);
			best = camembert_argmax(scores, num_labels);
			values[1] = PointerGetDatum(camembert_label_text(model, best));
			values[2] = Float8GetDatum(scores[best]);
			next++;
		}
		else
			nulls[1] = nulls[2] = true;
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	camembert_stat_call(model->name, n_texts, tokens, &start);
	return (Datum) 0;
}
