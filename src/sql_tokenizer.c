/*
 * sql_tokenizer.c — SQL functions of the tokenizer: ids, pieces, decode, count.
 *
 * Each takes the model whose tokenizer to use (NULL: see model_resolve.h).
 * Text is converted from the database encoding to UTF-8 and results back.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "camembert.h"
#include "model_resolve.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_tokenize);
PG_FUNCTION_INFO_V1(camembert_tokens);
PG_FUNCTION_INFO_V1(camembert_decode);
PG_FUNCTION_INFO_V1(camembert_token_count);

static const int32_t *
encode_argument(FunctionCallInfo fcinfo, CamembertModel **model_out, size_t *n_out)
{
	CamembertModel *model = camembert_resolve_model_arg(fcinfo, 1, TASK_TOKENIZE);
	text	   *input = PG_GETARG_TEXT_PP(0);
	size_t		len;
	char	   *utf8 = camembert_text_to_utf8(input, &len);
	int32_t    *ids;
	cb_error	err;

	if (cb_tokenizer_encode(&model->tokenizer, NULL, utf8, len, true, 0, &ids, n_out, &err) != CB_OK)
		camembert_report_core_error(&err, "could not tokenize", NULL);
	*model_out = model;
	return ids;
}

/* camembert_tokenize(input text, model text) → integer[]: <s> ids </s>, untruncated */
Datum
camembert_tokenize(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	size_t		n;
	const int32_t *ids;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	ids = encode_argument(fcinfo, &model, &n);
	PG_RETURN_ARRAYTYPE_P(camembert_int4_array(ids, (int) n));
}

/* camembert_token_count(input text, model text) → integer: length of camembert_tokenize */
Datum
camembert_token_count(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	text	   *input;
	size_t		len;
	char	   *utf8;
	size_t		n;
	cb_error	err;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_TOKENIZE);
	input = PG_GETARG_TEXT_PP(0);
	utf8 = camembert_text_to_utf8(input, &len);
	/* counted as they come: the ids are not kept */
	if (cb_tokenizer_count(&model->tokenizer, NULL, utf8, len, true, &n, &err) != CB_OK)
		camembert_report_core_error(&err, "could not tokenize", NULL);
	pfree(utf8);
	PG_RETURN_INT32((int32) n);
}

/* camembert_tokens(input text, model text) → text[]: the pieces of tokenizer.tokenize() */
Datum
camembert_tokens(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	text	   *input;
	size_t		len;
	char	   *utf8;
	cb_token_list *tokens;
	cb_error	err;
	Datum	   *elems;
	ArrayType  *result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_TOKENIZE);
	input = PG_GETARG_TEXT_PP(0);
	utf8 = camembert_text_to_utf8(input, &len);
	if (cb_tokenizer_tokenize(&model->tokenizer, NULL, utf8, len, &tokens, &err) != CB_OK)
		camembert_report_core_error(&err, "could not tokenize", NULL);
	elems = palloc(sizeof(Datum) * (tokens->count + 1));
	for (size_t i = 0; i < tokens->count; i++)
		elems[i] = PointerGetDatum(camembert_utf8_to_text(tokens->piece[i], tokens->length[i]));
	result = construct_array(elems, (int) tokens->count, TEXTOID, -1, false, TYPALIGN_INT);
	cb_free(tokens);
	PG_RETURN_ARRAYTYPE_P(result);
}

/* camembert_decode(ids integer[], model text) → text, special tokens skipped */
Datum
camembert_decode(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	ArrayType  *array;
	int32_t    *ids;
	int			n;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_TOKENIZE);
	array = PG_GETARG_ARRAYTYPE_P(0);
	ids = camembert_int4_array_values(array, &n, "ids");
	for (int i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= model->tokenizer.vocab_size)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("token id %d at position %d is out of range", ids[i], i + 1),
					 errhint("Ids of model \"%s\" are 0 to %d.", camembert_printable(model->name), model->tokenizer.vocab_size - 1)));
	PG_RETURN_TEXT_P(camembert_decode_ids(model, ids, n, true));
}
