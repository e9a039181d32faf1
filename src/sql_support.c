/*
 * sql_support.c — helpers shared by the SQL-callable functions: set-returning
 * function setup, text ↔ UTF-8 conversion.
 */
#include "postgres.h"

#include "access/xact.h"

#include "mb/pg_wchar.h"
#include "utils/elog.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "camembert.h"
#include "model_registry.h"
#include "config.h"
#include "forward.h"
#include "sql_support.h"

Tuplestorestate *
camembert_srf_begin(FunctionCallInfo fcinfo, TupleDesc *tupdesc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext per_query;
	MemoryContext old;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	per_query = rsinfo->econtext->ecxt_per_query_memory;
	old = MemoryContextSwitchTo(per_query);
	*tupdesc = CreateTupleDescCopy(*tupdesc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(old);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = *tupdesc;
	return store;
}

char *
camembert_text_to_utf8(text *t, size_t *len_out)
{
	int			len = VARSIZE_ANY_EXHDR(t);
	char	   *src = VARDATA_ANY(t);
	char	   *utf8;

	utf8 = (char *) pg_do_encoding_conversion((unsigned char *) src, len,
											  GetDatabaseEncoding(), PG_UTF8);
	if (utf8 == src)
	{
		utf8 = palloc(len + 1);
		memcpy(utf8, src, len);
		utf8[len] = '\0';
		*len_out = len;
	}
	else
		*len_out = strlen(utf8);
	return utf8;
}

/*
 * Strings leaving the extension.
 *
 * The model's own strings (class labels, pieces, decoded text) are UTF-8 and
 * are converted to the database encoding; a character that encoding lacks is
 * ERROR 22P05.  Model names and paths are not the model's: the database that
 * loaded the model gave them as text, and a path is bytes for the file system
 * (PostgreSQL passes file names to it as they are in the database encoding).
 * The registry does not record which encoding that was, so they leave as they
 * are, as pg_ls_dir() returns file names, but only when they are valid text in
 * this database's encoding: else ERROR 22021, never invalid text.
 *
 * Every hint here is ASCII: PostgreSQL converts messages from the database
 * encoding to the client's, and a character the database encoding lacks would
 * turn the error into another one (22021) on its way to the client.
 */

char *
camembert_utf8_to_cstring(const char *s, size_t len, size_t *len_out,
						  const struct CamembertModel *label_of)
{
	char	   *volatile conv = NULL;
	MemoryContext caller = CurrentMemoryContext;

	if (len >= MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("result of %zu bytes is too long", len)));
	/*
	 * The core checks what it reads; check again, since a UTF8 (or SQL_ASCII)
	 * database takes the bytes without any conversion.
	 */
	(void) pg_verify_mbstr(PG_UTF8, s, (int) len, false);
	PG_TRY();
	{
		conv = (char *) pg_do_encoding_conversion((unsigned char *) s, (int) len,
												  PG_UTF8, GetDatabaseEncoding());
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_UNTRANSLATABLE_CHARACTER)
			PG_RE_THROW();
		FlushErrorState();
		if (label_of != NULL)
			ereport(ERROR,
					(errcode(edata->sqlerrcode),
					 errmsg("%s", edata->message),
					 errhint("Model \"%s\" has class labels (config.json id2label) that the database encoding %s cannot represent: use a UTF8 database, or load a copy of the model with other labels.",
							 camembert_printable(label_of->name), GetDatabaseEncodingName())));
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("%s", edata->message),
				 errhint("The result holds characters that the database encoding %s cannot represent (SentencePiece pieces start with U+2581); camembert_tokenize gives ids in any encoding, or use a UTF8 database.",
						 GetDatabaseEncodingName())));
	}
	PG_END_TRY();
	if (conv == s)
	{
		*len_out = len;
		return pnstrdup(s, len);
	}
	*len_out = strlen(conv);
	return conv;
}

text *
camembert_decode_ids(CamembertModel *model, const int32_t *ids, int n, bool skip_special)
{
	char	   *out;
	size_t		len;
	cb_error	err;
	text	   *t;

	if (cb_tokenizer_decode(&model->tokenizer, ids, n, skip_special, true, &out, &len, &err) != CB_OK)
		camembert_report_core_error(&err, "could not decode", NULL);
	t = camembert_utf8_to_text(out, len);
	cb_free(out);
	return t;
}

text *
camembert_utf8_to_text(const char *s, size_t len)
{
	size_t		conv_len;
	char	   *conv = camembert_utf8_to_cstring(s, len, &conv_len, NULL);
	text	   *t = cstring_to_text_with_len(conv, conv_len);

	pfree(conv);
	return t;
}

text *
camembert_db_string_to_text(const char *s, const char *what, const char *model_name)
{
	if (!pg_verify_mbstr(GetDatabaseEncoding(), s, strlen(s), true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("%s of model \"%s\" is not valid in encoding \"%s\"",
						what, camembert_printable(model_name), GetDatabaseEncodingName()),
				 errhint("Model names and paths are the bytes that the database which loaded the model gave (a path in the file system's encoding); use ASCII names and paths, or a database whose encoding they are valid in.")));
	return cstring_to_text(s);
}

const char *
camembert_printable(const char *s)
{
	StringInfoData buf;

	if (pg_verify_mbstr(GetDatabaseEncoding(), s, strlen(s), true))
		return s;
	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) s; *p != '\0'; p++)
	{
		if (*p < 0x80)
			appendStringInfoChar(&buf, (char) *p);
		else
			appendStringInfo(&buf, "\\x%02x", *p);
	}
	return buf.data;
}

ArrayType *
camembert_int4_array(const int32_t *values, int n)
{
	Size		nbytes = ARR_OVERHEAD_NONULLS(1) + sizeof(int32) * (Size) n;
	ArrayType  *a;

	if (!AllocSizeIsValid(nbytes))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("array too large")));
	a = palloc0(nbytes);
	SET_VARSIZE(a, nbytes);
	a->ndim = n > 0 ? 1 : 0;
	a->dataoffset = 0;
	a->elemtype = INT4OID;
	if (n > 0)
	{
		ARR_DIMS(a)[0] = n;
		ARR_LBOUND(a)[0] = 1;
		memcpy(ARR_DATA_PTR(a), values, sizeof(int32) * (Size) n);
	}
	else
		SET_VARSIZE(a, ARR_OVERHEAD_NONULLS(0));
	return a;
}

ArrayType *
camembert_float4_array(const float *values, int ndims, const int *dims)
{
	Size		count = 1;
	Size		nbytes;
	ArrayType  *a;

	for (int i = 0; i < ndims; i++)
		count = mul_size(count, dims[i]);
	if (count == 0)
	{
		a = palloc0(ARR_OVERHEAD_NONULLS(0));
		SET_VARSIZE(a, ARR_OVERHEAD_NONULLS(0));
		a->elemtype = FLOAT4OID;
		return a;
	}
	nbytes = add_size(ARR_OVERHEAD_NONULLS(ndims), mul_size(count, sizeof(float4)));
	if (!AllocSizeIsValid(nbytes))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("result array of %zu values is too large", count),
				 errhint("Use a shorter input.")));
	a = palloc0(nbytes);
	SET_VARSIZE(a, nbytes);
	a->ndim = ndims;
	a->dataoffset = 0;
	a->elemtype = FLOAT4OID;
	for (int i = 0; i < ndims; i++)
	{
		ARR_DIMS(a)[i] = dims[i];
		ARR_LBOUND(a)[i] = 1;
	}
	memcpy(ARR_DATA_PTR(a), values, count * sizeof(float4));
	return a;
}

int32_t *
camembert_int4_array_values(ArrayType *array, int *n, const char *what)
{
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what),
				 errhint("Pass the ids of one text, e.g. the result of camembert_tokenize().")));
	if (ARR_HASNULL(array) && array_contains_nulls(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL", what),
				 errhint("Remove the NULL elements, e.g. with array_remove(ids, NULL).")));
	if (ARR_ELEMTYPE(array) != INT4OID)
		elog(ERROR, "%s: expected integer[]", what);
	*n = ARR_NDIM(array) == 0 ? 0 : ARR_DIMS(array)[0];
	return (int32_t *) ARR_DATA_PTR(array);
}

/*
 * A tokenizer workspace kept by the backend, in its own memory context: its
 * word cache (~400 KB) makes the next texts faster.  Its scratch is given
 * back after any call that made it grow over TOK_WS_KEEP, and the whole
 * context is reset when a call fails (a cancel inside the tokenizer), so
 * that nothing stays from one big text for the rest of the session.
 */
#define TOK_WS_KEEP ((Size) 1024 * 1024)

static MemoryContext tok_ws_context = NULL;
static cb_tok_workspace *tok_ws = NULL;

int
camembert_max_input_tokens(const CamembertModel *model)
{
	/* RoBERTa positions start at pad_token_id + 1 */
	int64_t		n = cb_config_max_sequence(&model->model.config);

	/* callers keep <s> and </s>: refused at load (cb_config_validate) */
	if (n < CB_CONFIG_MIN_SEQUENCE)
		elog(ERROR, "model \"%s\" accepts fewer than %d tokens", model->name, CB_CONFIG_MIN_SEQUENCE);
	return (int) n;
}

int32_t *
camembert_encode_text(CamembertModel *model, text *input, int *n_ids, bool *truncated)
{
	size_t		len;
	char	   *utf8 = camembert_text_to_utf8(input, &len);
	const int32_t *volatile ids = NULL;
	int32_t    *copy;
	volatile size_t n = 0;
	volatile bool cut = false;
	cb_error	err;
	MemoryContext caller = CurrentMemoryContext;
	int			max_tokens = camembert_max_input_tokens(model);
	volatile cb_status st = CB_OK;

	if (tok_ws_context == NULL)
		tok_ws_context = AllocSetContextCreate(TopMemoryContext, "camembert tokenizer workspace",
											   ALLOCSET_DEFAULT_SIZES);
	/* the workspace's buffers must live in its own context */
	MemoryContextSwitchTo(tok_ws_context);
	if (tok_ws == NULL)
	{
		tok_ws = cb_tok_workspace_create();
		if (tok_ws == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	PG_TRY();
	{
		const int32_t *view;
		size_t		count;
		bool		dropped;

		/*
		 * truncation=True keeps <s> + the first max_tokens - 2 pieces + </s>;
		 * the tokenizer stops reading once it knows them (a model too small
		 * for that gets its pieces truncated by hand below).
		 */
		st = cb_tokenizer_encode_ws(&model->tokenizer, tok_ws, utf8, len, true,
									max_tokens >= 3 ? max_tokens : 0, &view, &count, &dropped, &err);
		ids = view;
		n = count;
		cut = dropped;
	}
	PG_CATCH();
	{
		/* a cancel or an out-of-memory inside the tokenizer: forget the workspace */
		MemoryContextSwitchTo(caller);
		MemoryContextReset(tok_ws_context);
		tok_ws = NULL;
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	if (st != CB_OK)
		camembert_report_core_error(&err, "could not tokenize", NULL);
	pfree(utf8);

	*truncated = cut || n > (size_t) max_tokens;
	if (n > (size_t) max_tokens)
	{
		/* max_tokens < 3: keep <s> + the first max_tokens - 2 pieces + </s> all the same */
		copy = palloc(sizeof(int32_t) * max_tokens);
		memcpy(copy, (const int32_t *) ids, sizeof(int32_t) * (max_tokens - 1));
		copy[max_tokens - 1] = ids[n - 1];
		n = max_tokens;
	}
	else
	{
		copy = palloc(sizeof(int32_t) * n);
		memcpy(copy, (const int32_t *) ids, sizeof(int32_t) * n);
	}
	*n_ids = (int) n;

	/* give back what a long text made the workspace grow to */
	if (cb_tok_workspace_trim(tok_ws, TOK_WS_KEEP) &&
		MemoryContextMemAllocated(tok_ws_context, true) > 4 * TOK_WS_KEEP)
	{
		MemoryContextReset(tok_ws_context);
		tok_ws = NULL;
	}
	return copy;
}

CamembertBatch *
camembert_batch_encode(CamembertModel *model, text **inputs, int n)
{
	CamembertBatch *b = palloc0(sizeof(CamembertBatch));
	int32_t   **rows = palloc(sizeof(int32_t *) * n);

	b->batch_size = n;
	b->lengths = palloc(sizeof(int) * n);
	b->seq_len = 1;
	for (int i = 0; i < n; i++)
	{
		bool		truncated;
		int			len;

		rows[i] = camembert_encode_text(model, inputs[i], &len, &truncated);
		b->lengths[i] = len;
		if (len > b->seq_len)
			b->seq_len = len;
	}
	b->input_ids = palloc(mul_size(sizeof(int32_t), mul_size(n, b->seq_len)));
	b->attention_mask = palloc(mul_size(sizeof(int32_t), mul_size(n, b->seq_len)));
	for (int i = 0; i < n; i++)
	{
		int32_t    *row = b->input_ids + (Size) i * b->seq_len;
		int32_t    *mask = b->attention_mask + (Size) i * b->seq_len;

		for (int t = 0; t < b->seq_len; t++)
		{
			row[t] = t < b->lengths[i] ? rows[i][t] : model->model.config.pad_token_id;
			mask[t] = t < b->lengths[i] ? 1 : 0;
		}
		pfree(rows[i]);
	}
	pfree(rows);
	return b;
}

void
camembert_batch_free(CamembertBatch *b)
{
	pfree(b->input_ids);
	pfree(b->attention_mask);
	pfree(b->lengths);
	pfree(b);
}

/*
 * The forward pass's scratch block, kept for the transaction: a scan that
 * classifies many rows allocates it once (at the size of its largest row) and
 * not once per row; it is given back when the transaction ends, so nothing
 * grows beyond one transaction.  Its own memory context holds it: the core
 * allocates through the current context, so cb_forward runs with this one
 * current (what else it allocates it frees before returning, and an ERROR
 * leaves nothing that the reset at transaction end does not reclaim).
 */
static MemoryContext forward_ws_context = NULL;
static cb_workspace forward_ws;

static void
forward_ws_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (forward_ws_context != NULL)
				MemoryContextReset(forward_ws_context);
			cb_workspace_init(&forward_ws);
			break;
		default:
			break;
	}
}

void
camembert_run_forward(CamembertModel *model, const cb_forward_input *in, const cb_forward_output *out)
{
	cb_error	err;
	cb_status	st;
	MemoryContext old;

	if (forward_ws_context == NULL)
	{
		forward_ws_context = AllocSetContextCreate(TopMemoryContext, "camembert forward workspace",
												   ALLOCSET_DEFAULT_SIZES);
		cb_workspace_init(&forward_ws);
		RegisterXactCallback(forward_ws_xact_callback, NULL);
	}
	old = MemoryContextSwitchTo(forward_ws_context);
	st = cb_forward(camembert_compute(), &model->model, in, out, &forward_ws, &err);
	MemoryContextSwitchTo(old);
	if (st != CB_OK)
		camembert_report_core_error(&err, "forward pass failed", NULL);
}

void
camembert_forward_ids(CamembertModel *model, const int32_t *ids, int n, const cb_forward_output *out)
{
	cb_forward_input in;

	/* the callers encode with camembert_encode_text or check the ids' count */
	Assert(n > 0 && n <= camembert_max_input_tokens(model));
	in.batch_size = 1;
	in.seq_len = n;
	in.input_ids = ids;
	in.attention_mask = NULL;
	camembert_run_forward(model, &in, out);
}

void
camembert_forward_batch(CamembertModel *model, const CamembertBatch *batch,
						const cb_forward_output *out)
{
	cb_forward_input in;

	in.batch_size = batch->batch_size;
	in.seq_len = batch->seq_len;
	in.input_ids = batch->input_ids;
	in.attention_mask = batch->attention_mask;
	camembert_run_forward(model, &in, out);
}
