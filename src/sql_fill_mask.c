/*
 * sql_fill_mask.c — camembert_fill_mask: the rows of transformers'
 * pipeline("fill-mask"), one group of top_k rows per <mask>.
 *
 * Every mask's candidates come from one forward pass; scores are the softmax
 * over the whole vocabulary at the mask position; token_str is the decoding
 * of the single id; sequence is the text with this mask replaced, decoded
 * without special tokens when there is one mask and with them (the other
 * <mask>s, <s>, </s>) when there are several, as the pipeline does.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "camembert.h"
#include "forward.h"
#include "model_resolve.h"
#include "model_stats.h"
#include "row_ops.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_fill_mask);

typedef struct Candidate
{
	int32_t		id;
	double		prob;
} Candidate;

/* highest probability first; ties: lower id first */
static int
candidate_cmp(const void *a, const void *b)
{
	const Candidate *x = a;
	const Candidate *y = b;

	if (x->prob != y->prob)
		return x->prob > y->prob ? -1 : 1;
	return x->id - y->id;
}

Datum
camembert_fill_mask(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	int32_t    *ids;
	int			n;
	bool		truncated;
	int32		top_k;
	int			vocab;
	int32_t    *positions;
	int			n_masks = 0;
	float	   *logits;
	cb_forward_output out = {0};
	Candidate  *cand;
	int32_t    *seq;
	instr_time	start;

	if (PG_ARGISNULL(0))
	{
		/* NULL in: no rows */
		camembert_srf_begin(fcinfo, &tupdesc);
		return (Datum) 0;
	}
	camembert_stat_start(&start);
	top_k = PG_ARGISNULL(2) ? 5 : PG_GETARG_INT32(2);
	if (top_k <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("top_k must be positive, not %d", top_k),
				 errhint("top_k is the number of candidates per <mask>, e.g. 5.")));
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_FILL_MASK);
	vocab = model->model.config.vocab_size;
	if (top_k > vocab)
		top_k = vocab;			/* as the pipeline: at most the vocabulary */

	store = camembert_srf_begin(fcinfo, &tupdesc);

	ids = camembert_encode_text(model, PG_GETARG_TEXT_PP(0), &n, &truncated);
	positions = palloc(sizeof(int32_t) * n);
	for (int t = 0; t < n; t++)
		if (ids[t] == model->tokenizer.mask_id)
			positions[n_masks++] = t;
	if (n_masks == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no <mask> token in the input%s", truncated ? " (after truncation)" : ""),
				 errhint("Write <mask> where a word should be predicted, e.g. 'Le camembert est <mask> !'.")));

	logits = palloc_extended(mul_size(mul_size(n_masks, vocab), sizeof(float)), MCXT_ALLOC_HUGE);
	out.logit_positions = positions;
	out.n_logit_positions = n_masks;
	out.position_logits = logits;
	camembert_forward_ids(model, ids, n, &out);

	cand = palloc(sizeof(Candidate) * vocab);
	seq = palloc(sizeof(int32_t) * n);
	for (int m = 0; m < n_masks; m++)
	{
		const float *row = logits + (Size) m * vocab;
		double		lse = cb_kernel_logsumexp(row, vocab);

		for (int v = 0; v < vocab; v++)
		{
			cand[v].id = v;
			cand[v].prob = exp((double) row[v] - lse);	/* softmax over the vocabulary */
		}
		qsort(cand, vocab, sizeof(Candidate), candidate_cmp);

		for (int k = 0; k < top_k; k++)
		{
			Datum		values[5];
			bool		nulls[5] = {0};
			int			len = 0;

			/* the sequence: this mask replaced, pad ids dropped */
			for (int t = 0; t < n; t++)
			{
				int32_t		id = t == positions[m] ? cand[k].id : ids[t];

				if (id != model->model.config.pad_token_id)
					seq[len++] = id;
			}
			values[0] = Int32GetDatum(m + 1);
			values[1] = Float8GetDatum(cand[k].prob);
			values[2] = Int32GetDatum(cand[k].id);
			values[3] = PointerGetDatum(camembert_decode_ids(model, &cand[k].id, 1, false));
			values[4] = PointerGetDatum(camembert_decode_ids(model, seq, len, n_masks == 1));
			tuplestore_putvalues(store, tupdesc, values, nulls);
		}
	}
	camembert_stat_call(model->name, 1, n, &start);
	return (Datum) 0;
}
