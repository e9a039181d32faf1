/*
 * sql_losses.c — the losses transformers computes when `labels=` is passed,
 * from SQL (core: losses.h):
 *
 *   camembert_loss(input, label, model)   a classifier's loss against a label:
 *       text      a label name (single-label: cross-entropy; multi-label: the
 *                 set of that one label, BCE)
 *       integer   a label id (single-label), or the target (regression)
 *       float8    the target of a regression model (MSE)
 *       text[]    the set of true labels of a multi-label model (BCE, each
 *                 label 1 if listed, else 0)
 *       float8[]  one target per label (regression, multi-label)
 *   camembert_mlm_loss(input text, targets text[], model)   a masked LM's
 *       cross-entropy at the <mask> positions of the text, targets[i] the
 *       true token (a vocabulary piece, as camembert_tokens() writes it) of
 *       the i-th <mask>;
 *   camembert_mlm_loss(input_ids integer[], labels integer[], model)
 *       transformers' own form: labels -100 are ignored.
 *
 * Texts are encoded as the other functions do (<s> ... </s>, truncated to
 * the model's length).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "camembert.h"
#include "config.h"
#include "forward.h"
#include "losses.h"
#include "model_resolve.h"
#include "model_stats.h"
#include "sql_classify.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_loss_label);
PG_FUNCTION_INFO_V1(camembert_loss_id);
PG_FUNCTION_INFO_V1(camembert_loss_value);
PG_FUNCTION_INFO_V1(camembert_loss_label_set);
PG_FUNCTION_INFO_V1(camembert_loss_values);
PG_FUNCTION_INFO_V1(camembert_mlm_loss);
PG_FUNCTION_INFO_V1(camembert_mlm_loss_ids);

/* "a", "b", "c": the labels for a hint */
static char *
label_list(const CamembertModel *model)
{
	StringInfoData s;
	int			n = model->model.config.num_labels;

	initStringInfo(&s);
	for (int i = 0; i < n && i < 20; i++)
		appendStringInfo(&s, "%s\"%s\"", i > 0 ? ", " : "",
						 camembert_printable(camembert_label_name(model, i)));
	if (n > 20)
		appendStringInfoString(&s, ", ...");
	return s.data;
}

/* The id of a label name (exact, case-sensitive), or ERROR 22023. */
static int
label_id(const CamembertModel *model, text *name)
{
	size_t		len;
	char	   *utf8 = camembert_text_to_utf8(name, &len);

	for (int i = 0; i < model->model.config.num_labels; i++)
	{
		const char *l = camembert_label_name(model, i);

		if (strlen(l) == len && memcmp(l, utf8, len) == 0)
			return i;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("model \"%s\" has no label \"%s\"", camembert_printable(model->name),
					camembert_printable(utf8)),
			 errhint("Its labels are %s (case-sensitive), or pass the label id.", label_list(model))));
	return -1;					/* not reached */
}

/* Classifier logits of the text, then the core's loss. */
static double
classifier_loss(CamembertModel *model, text *input, const int32_t *int_label, const float *float_labels,
				instr_time *start)
{
	int			num_labels = model->model.config.num_labels;
	float	   *logits = palloc(sizeof(float) * num_labels);
	int64		tokens;
	double		loss;
	cb_error	err;

	tokens = camembert_classify_texts(model, &input, 1, logits);
	if (cb_loss_classifier(&model->model, logits, 1, int_label, float_labels, &loss, &err) != CB_OK)
		camembert_report_core_error(&err, "could not compute the loss", NULL);
	camembert_stat_call(model->name, 1, tokens, start);
	return loss;
}

static const char *
problem_name(const CamembertModel *model)
{
	const char *p = cb_problem_type_name(model->model.config.problem_type);

	return p != NULL ? p : "none";
}

static void
wrong_label_kind(const CamembertModel *model, const char *given)
{
	const char *hint;

	switch (model->model.config.problem_type)
	{
		case CB_PROBLEM_SINGLE_LABEL:
			hint = "A single-label classifier takes a label name (text) or a label id (integer).";
			break;
		case CB_PROBLEM_REGRESSION:
			hint = "A regression model takes its target: a number (float8), or float8[] with one value per label.";
			break;
		default:
			hint = "A multi-label classifier takes the set of its true labels (text[]), or one target per label (float8[]).";
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("model \"%s\" (%s) does not take %s as its label", camembert_printable(model->name),
					problem_name(model), given),
			 errhint("%s", hint)));
}

/* camembert_loss(input text, label text, model text) */
Datum
camembert_loss_label(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	instr_time	start;
	int			id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 2, TASK_CLASSIFY);
	if (model->model.config.problem_type == CB_PROBLEM_REGRESSION)
		wrong_label_kind(model, "a label name");
	id = label_id(model, PG_GETARG_TEXT_PP(1));
	if (model->model.config.problem_type == CB_PROBLEM_MULTI_LABEL)
	{
		float	   *target = palloc0(sizeof(float) * model->model.config.num_labels);

		target[id] = 1.0f;
		PG_RETURN_FLOAT8(classifier_loss(model, PG_GETARG_TEXT_PP(0), NULL, target, &start));
	}
	PG_RETURN_FLOAT8(classifier_loss(model, PG_GETARG_TEXT_PP(0), &id, NULL, &start));
}

/* camembert_loss(input text, label integer, model text) */
Datum
camembert_loss_id(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	instr_time	start;
	int32		id;
	int			num_labels;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 2, TASK_CLASSIFY);
	id = PG_GETARG_INT32(1);
	num_labels = model->model.config.num_labels;
	if (model->model.config.problem_type == CB_PROBLEM_REGRESSION && num_labels == 1)
	{
		float		target = (float) id;

		PG_RETURN_FLOAT8(classifier_loss(model, PG_GETARG_TEXT_PP(0), NULL, &target, &start));
	}
	if (model->model.config.problem_type != CB_PROBLEM_SINGLE_LABEL)
		wrong_label_kind(model, "a label id");
	if (id < 0 || id >= num_labels)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label id %d is out of range: model \"%s\" has labels 0 to %d", id,
						camembert_printable(model->name), num_labels - 1),
				 errhint("Its labels are %s.", label_list(model))));
	PG_RETURN_FLOAT8(classifier_loss(model, PG_GETARG_TEXT_PP(0), &id, NULL, &start));
}

/* camembert_loss(input text, target float8, model text): regression */
Datum
camembert_loss_value(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	instr_time	start;
	double		v;
	float		target;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 2, TASK_CLASSIFY);
	if (model->model.config.problem_type != CB_PROBLEM_REGRESSION || model->model.config.num_labels != 1)
		wrong_label_kind(model, "a number");
	v = PG_GETARG_FLOAT8(1);
	if (isnan(v) || isinf(v) || fabs(v) > FLT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the target must be a finite number of float4 range"),
				 errhint("Pass the true value of the text.")));
	target = (float) v;
	PG_RETURN_FLOAT8(classifier_loss(model, PG_GETARG_TEXT_PP(0), NULL, &target, &start));
}

/* camembert_loss(input text, labels text[], model text): multi-label */
Datum
camembert_loss_label_set(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	instr_time	start;
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	float	   *target;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 2, TASK_CLASSIFY);
	if (model->model.config.problem_type != CB_PROBLEM_MULTI_LABEL)
		wrong_label_kind(model, "a set of labels");
	array = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the labels must be a one-dimensional array"),
				 errhint("Pass the names of the true labels, e.g. '{sport,politique}'.")));
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	target = palloc0(sizeof(float) * model->model.config.num_labels);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the labels must not contain NULL"),
					 errhint("Remove the NULL elements, e.g. with array_remove(labels, NULL).")));
		target[label_id(model, DatumGetTextPP(elems[i]))] = 1.0f;
	}
	PG_RETURN_FLOAT8(classifier_loss(model, PG_GETARG_TEXT_PP(0), NULL, target, &start));
}

/* camembert_loss(input text, targets float8[], model text): one per label */
Datum
camembert_loss_values(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	instr_time	start;
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				num_labels;
	float	   *target;
	cb_problem_type pt;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 2, TASK_CLASSIFY);
	pt = model->model.config.problem_type;
	num_labels = model->model.config.num_labels;
	if (pt != CB_PROBLEM_MULTI_LABEL && pt != CB_PROBLEM_REGRESSION)
		wrong_label_kind(model, "float8[] targets");
	array = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the targets must be a one-dimensional array"),
				 errhint("Pass one value per label.")));
	deconstruct_array(array, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	if (n != num_labels)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d targets given, model \"%s\" has %d labels", n, camembert_printable(model->name),
						num_labels),
				 errhint("Pass one value per label, in label id order: %s.", label_list(model))));
	target = palloc(sizeof(float) * num_labels);
	for (int i = 0; i < n; i++)
	{
		double		v = nulls[i] ? NAN : DatumGetFloat8(elems[i]);

		if (isnan(v) || isinf(v) || fabs(v) > FLT_MAX ||
			(pt == CB_PROBLEM_MULTI_LABEL && !(v >= 0.0 && v <= 1.0)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("target %d is not valid", i + 1),
					 errhint(pt == CB_PROBLEM_MULTI_LABEL ? "A multi-label target is a number in [0, 1]."
							 : "A regression target is a finite number of float4 range.")));
		target[i] = (float) v;
	}
	PG_RETURN_FLOAT8(classifier_loss(model, PG_GETARG_TEXT_PP(0), NULL, target, &start));
}

/* Cross-entropy of a masked LM at the labelled positions of ids (-100 elsewhere). */
static double
mlm_loss(CamembertModel *model, const int32_t *ids, const int32_t *labels, int n)
{
	int32_t    *positions = palloc(sizeof(int32_t) * (n + 1));
	int32_t    *pos_labels = palloc(sizeof(int32_t) * (n + 1));
	int			m = 0;
	int			v = model->model.config.vocab_size;
	float	   *logits;
	cb_forward_output out = {0};
	double		loss;
	cb_error	err;

	for (int i = 0; i < n; i++)
		if (labels[i] != CB_IGNORE_INDEX)
		{
			positions[m] = i;
			pos_labels[m++] = labels[i];
		}
	if (m == 0)
		return NAN;				/* PyTorch's mean over nothing */
	logits = palloc_extended(mul_size(mul_size((Size) m, (Size) v), sizeof(float)), MCXT_ALLOC_HUGE);
	out.logit_positions = positions;
	out.n_logit_positions = m;
	out.position_logits = logits;
	camembert_forward_ids(model, ids, n, &out);
	if (cb_loss_token_cross_entropy(logits, (size_t) m, (size_t) v, (size_t) v, pos_labels, &loss, NULL,
									&err) != CB_OK)
		camembert_report_core_error(&err, "could not compute the loss", NULL);
	pfree(logits);
	return loss;
}

static void
check_mlm_model(const CamembertModel *model)
{
	if (model->model.config.architecture != CB_ARCH_MASKED_LM)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" is not a masked language model", camembert_printable(model->name)),
				 errhint("camembert_mlm_loss() needs a CamembertForMaskedLM model; camembert_score() gives a causal LM's log-likelihood.")));
}

/* camembert_mlm_loss(input text, targets text[], model text) */
Datum
camembert_mlm_loss(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	instr_time	start;
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	int			n_targets,
				n,
				masks = 0,
				t = 0;
	bool		truncated;
	int32_t    *ids,
			   *labels;
	const cb_tokenizer *tok;
	double		loss;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 2, TASK_FILL_MASK);
	check_mlm_model(model);
	tok = &model->tokenizer;
	array = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the targets must be a one-dimensional array"),
				 errhint("Pass the true token of each <mask>, in order.")));
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n_targets);
	ids = camembert_encode_text(model, PG_GETARG_TEXT_PP(0), &n, &truncated);
	for (int i = 0; i < n; i++)
		masks += ids[i] == tok->mask_id;
	if (masks == 0 || masks != n_targets)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the text has %d <mask> tokens%s and %d targets are given", masks,
						truncated ? " (after truncation)" : "", n_targets),
				 errhint("Give one target token per <mask>, in order (camembert_tokens() shows the tokens of a text).")));
	labels = palloc(sizeof(int32_t) * n);
	for (int i = 0; i < n; i++)
	{
		size_t		len;
		char	   *piece;
		int32_t		id;

		labels[i] = CB_IGNORE_INDEX;
		if (ids[i] != tok->mask_id)
			continue;
		if (nulls[t])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the targets must not contain NULL"),
					 errhint("Give the true token of each <mask>.")));
		piece = camembert_text_to_utf8(DatumGetTextPP(elems[t]), &len);
		id = cb_tokenizer_piece_to_id(tok, piece, len);
		if (id == tok->unk_id && !(len == 5 && memcmp(piece, "<unk>", 5) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("target %d \"%s\" is not a token of model \"%s\"", t + 1, camembert_printable(piece),
							camembert_printable(model->name)),
					 errhint("A target is one vocabulary token as camembert_tokens() writes it (a word after a space starts with U+2581).")));
		labels[i] = id;
		t++;
	}
	loss = mlm_loss(model, ids, labels, n);
	camembert_stat_call(model->name, 1, n, &start);
	PG_RETURN_FLOAT8(loss);
}

/* camembert_mlm_loss(input_ids integer[], labels integer[], model text) */
Datum
camembert_mlm_loss_ids(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	instr_time	start;
	int32_t    *ids,
			   *labels;
	int			n,
				n_labels,
				v;
	double		loss;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 2, TASK_FILL_MASK);
	check_mlm_model(model);
	ids = camembert_int4_array_values(PG_GETARG_ARRAYTYPE_P(0), &n, "input_ids");
	labels = camembert_int4_array_values(PG_GETARG_ARRAYTYPE_P(1), &n_labels, "labels");
	if (n == 0 || n != n_labels)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d input ids and %d labels: one label per id is needed", n, n_labels),
				 errhint("A label is the true id at a position, or -100 where no loss is computed.")));
	if (n > camembert_max_input_tokens(model))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d input ids: model \"%s\" takes at most %d", n, camembert_printable(model->name),
						camembert_max_input_tokens(model)),
				 errhint("Truncate the ids.")));
	v = model->model.config.vocab_size;
	for (int i = 0; i < n; i++)
	{
		if (ids[i] < 0 || ids[i] >= v)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("input id %d at position %d is outside the vocabulary [0, %d)", ids[i], i + 1, v),
					 errhint("Pass ids from camembert_tokenize().")));
		if (labels[i] != CB_IGNORE_INDEX && (labels[i] < 0 || labels[i] >= v))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("label %d at position %d is outside the vocabulary [0, %d)", labels[i], i + 1, v),
					 errhint("A label is a token id, or -100 where no loss is computed.")));
	}
	loss = mlm_loss(model, ids, labels, n);
	camembert_stat_call(model->name, 1, n, &start);
	PG_RETURN_FLOAT8(loss);
}
