/*
 * sql_inference.c — SQL access to the raw outputs of the network:
 * camembert_logits, camembert_hidden_states and camembert_attentions.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "camembert.h"
#include "forward.h"
#include "model_resolve.h"
#include "model_stats.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_logits);
PG_FUNCTION_INFO_V1(camembert_hidden_states);
PG_FUNCTION_INFO_V1(camembert_attentions);

/*
 * camembert_logits(input text, model text) → real[]:
 * [tokens][vocab] for masked / causal LMs, [num_labels] for classifiers.
 */
Datum
camembert_logits(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	int32_t    *ids;
	int			n;
	bool		truncated;
	cb_forward_output out = {0};
	const cb_config *cfg;
	int			dims[2];
	ArrayType  *result;
	instr_time	start;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_TOKENIZE);
	cfg = &model->model.config;
	if (cfg->architecture == CB_ARCH_ENCODER)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" has no head: it gives hidden states, not logits", camembert_printable(model->name)),
				 errhint("Use camembert_hidden_states().")));
	ids = camembert_encode_text(model, PG_GETARG_TEXT_PP(0), &n, &truncated);

	if (cfg->architecture == CB_ARCH_SEQUENCE_CLASSIFICATION)
	{
		float	   *logits = palloc(sizeof(float) * cfg->num_labels);

		out.class_logits = logits;
		camembert_forward_ids(model, ids, n, &out);
		dims[0] = cfg->num_labels;
		result = camembert_float4_array(logits, 1, dims);
	}
	else
	{
		Size		count = mul_size((Size) n, (Size) cfg->vocab_size);
		float	   *logits = palloc_extended(mul_size(count, sizeof(float)), MCXT_ALLOC_HUGE);

		out.token_logits = logits;
		camembert_forward_ids(model, ids, n, &out);
		dims[0] = n;
		dims[1] = cfg->vocab_size;
		result = camembert_float4_array(logits, 2, dims);
		pfree(logits);
	}
	camembert_stat_call(model->name, 1, n, &start);
	PG_RETURN_ARRAYTYPE_P(result);
}

/*
 * camembert_hidden_states(input text, model text, layer integer) → real[] [tokens][hidden]:
 * layer 0 is the embeddings output, 1..L the output of each layer; negative
 * layers count from the end (-1, the default, is the last layer).
 */
Datum
camembert_hidden_states(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	int32_t    *ids;
	int			n;
	bool		truncated;
	int32		layer;
	int			num_layers;
	cb_forward_output out = {0};
	float	   *states;
	int			dims[2];
	Size		per_layer;
	ArrayType  *result;
	instr_time	start;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_EMBED);
	num_layers = model->model.config.num_hidden_layers;
	layer = PG_ARGISNULL(2) ? -1 : PG_GETARG_INT32(2);
	if (layer < -(num_layers + 1) || layer > num_layers)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("layer %d is out of range", layer),
				 errhint("Model \"%s\" has layers 0 (embeddings) to %d; negative layers count from the end.",
						 camembert_printable(model->name), num_layers)));
	if (layer < 0)
		layer += num_layers + 1;

	ids = camembert_encode_text(model, PG_GETARG_TEXT_PP(0), &n, &truncated);
	per_layer = mul_size((Size) n, (Size) model->model.config.hidden_size);
	if (layer == num_layers)
	{
		states = palloc_extended(mul_size(per_layer, sizeof(float)), MCXT_ALLOC_HUGE);
		out.last_hidden_state = states;
		camembert_forward_ids(model, ids, n, &out);
	}
	else
	{
		float	   *all = palloc_extended(mul_size(mul_size(per_layer, num_layers + 1), sizeof(float)),
										  MCXT_ALLOC_HUGE);

		out.hidden_states = all;
		camembert_forward_ids(model, ids, n, &out);
		states = all + per_layer * layer;
	}
	dims[0] = n;
	dims[1] = model->model.config.hidden_size;
	result = camembert_float4_array(states, 2, dims);
	camembert_stat_call(model->name, 1, n, &start);
	PG_RETURN_ARRAYTYPE_P(result);
}

/*
 * camembert_attentions(input text, model text, layer integer) → real[]
 * [heads][tokens][tokens]: the attention probabilities of one layer
 * (transformers' output_attentions: attentions[layer], 0 the first layer;
 * negative layers count from the end, -1 the last).  Row i is the
 * distribution of query token i over the key tokens.
 */
Datum
camembert_attentions(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	int32_t    *ids;
	int			n;
	bool		truncated;
	int32		layer;
	int			num_layers,
				heads;
	cb_forward_output out = {0};
	float	   *all;
	int			dims[3];
	Size		per_layer;
	ArrayType  *result;
	instr_time	start;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_EMBED);
	num_layers = model->model.config.num_hidden_layers;
	heads = model->model.config.num_attention_heads;
	layer = PG_ARGISNULL(2) ? -1 : PG_GETARG_INT32(2);
	if (num_layers == 0 || layer < -num_layers || layer >= num_layers)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("layer %d is out of range", layer),
				 errhint("Model \"%s\" has attention layers 0 to %d; negative layers count from the end.",
						 camembert_printable(model->name), num_layers - 1)));
	if (layer < 0)
		layer += num_layers;

	ids = camembert_encode_text(model, PG_GETARG_TEXT_PP(0), &n, &truncated);
	per_layer = mul_size(mul_size((Size) heads, (Size) n), (Size) n);
	all = palloc_extended(mul_size(mul_size(per_layer, num_layers), sizeof(float)), MCXT_ALLOC_HUGE);
	out.attentions = all;
	camembert_forward_ids(model, ids, n, &out);
	dims[0] = heads;
	dims[1] = n;
	dims[2] = n;
	result = camembert_float4_array(all + per_layer * layer, 3, dims);
	pfree(all);
	camembert_stat_call(model->name, 1, n, &start);
	PG_RETURN_ARRAYTYPE_P(result);
}
