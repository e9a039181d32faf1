/*
 * sql_support.h — small helpers shared by the SQL-callable functions.
 */
#ifndef SQL_SUPPORT_H
#define SQL_SUPPORT_H

#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/tuplestore.h"

#include "model.h"
#include "utils/array.h"

/* Set up a materialized set-returning function; returns its tuplestore. */
extern Tuplestorestate *camembert_srf_begin(FunctionCallInfo fcinfo, TupleDesc *tupdesc);

/* "fill-mask", "text-classification", ... */
extern const char *camembert_task_name(const cb_config *config);

/* text argument → UTF-8 C string (converted from the database encoding) */
extern char *camembert_text_to_utf8(text *t, size_t *len_out);

/*
 * Every string that leaves the extension goes through one of these (see
 * sql_support.c).  A UTF-8 string of the model (a class label of label_of, or
 * else a piece or decoded text) in the database encoding: palloc'ed, ERROR
 * 22P05 with a hint when the encoding lacks one of its characters.
 */
struct CamembertModel;
extern char *camembert_utf8_to_cstring(const char *s, size_t len, size_t *len_out,
									   const struct CamembertModel *label_of);
extern text *camembert_utf8_to_text(const char *s, size_t len);

/*
 * Token ids (each checked by the caller to be in the vocabulary) decoded by
 * the model's tokenizer, special tokens skipped or kept, as text in the
 * database encoding; ERROR as above.
 */
extern text *camembert_decode_ids(struct CamembertModel *model, const int32_t *ids, int n,
								  bool skip_special);

/*
 * A model name or path (bytes in the encoding of the database that loaded the
 * model) as text: ERROR 22021 unless valid in this database's encoding.
 * what: "name" or "path".
 */
extern text *camembert_db_string_to_text(const char *s, const char *what, const char *model_name);

/* s for a message: itself if valid in the database encoding, else non-ASCII bytes as \xNN */
extern const char *camembert_printable(const char *s);

/* Build int4[] and real[] arrays straight from C arrays (dims: ndims sizes). */
extern ArrayType *camembert_int4_array(const int32_t *values, int n);
extern ArrayType *camembert_float4_array(const float *values, int ndims, const int *dims);

/* An int4[] argument as a C array (ERROR on NULL elements or more than one dimension). */
extern int32_t *camembert_int4_array_values(ArrayType *array, int *n, const char *what);

/*
 * Encode a text argument for the model: UTF-8 conversion, the tokenizer with
 * special tokens, truncated to the model's longest input (max_position_embeddings - 2).
 * Returns palloc'ed ids (the tokenizer's scratch is a per-backend workspace).
 */
struct CamembertModel;
extern int32_t *camembert_encode_text(struct CamembertModel *model, text *input, int *n_ids,
											bool *truncated);

/* Longest input (tokens, specials included) the model accepts. */
extern int	camembert_max_input_tokens(const struct CamembertModel *model);

/*
 * A padded batch of encoded texts (right padding with the pad id, attention
 * mask 0 there), each truncated to the model's longest input.  palloc'ed.
 */
typedef struct CamembertBatch
{
	int			batch_size;
	int			seq_len;		/* longest row */
	int32_t    *input_ids;		/* [batch_size][seq_len] */
	int32_t    *attention_mask; /* [batch_size][seq_len] */
	int		   *lengths;		/* real tokens of each row */
} CamembertBatch;

extern CamembertBatch *camembert_batch_encode(struct CamembertModel *model, text **inputs, int n);
extern void camembert_batch_free(CamembertBatch *batch);

/*
 * Run cb_forward (camembert.threads applied, the transaction's scratch block
 * reused); ERROR on failure.
 */
struct cb_forward_input;
struct cb_forward_output;
extern void camembert_run_forward(struct CamembertModel *model, const struct cb_forward_input *in,
								  const struct cb_forward_output *out);

/* Run cb_forward on one sequence of n ids (no padding); ERROR on failure. */
extern void camembert_forward_ids(struct CamembertModel *model, const int32_t *ids, int n,
								  const struct cb_forward_output *out);

/* Run cb_forward on a batch; ERROR on failure. */
extern void camembert_forward_batch(struct CamembertModel *model, const CamembertBatch *batch,
									const struct cb_forward_output *out);

#endif							/* SQL_SUPPORT_H */
