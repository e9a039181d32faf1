/*
 * sql_embed.c — camembert_embed (a sentence vector from the encoder) and
 * camembert_score (how likely the model finds a text).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "camembert.h"
#include "forward.h"
#include "model_resolve.h"
#include "model_stats.h"
#include "row_ops.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_embed);
PG_FUNCTION_INFO_V1(camembert_score);

/* Rows per forward pass for the pseudo-log-likelihood of a masked LM. */
#define PLL_BATCH_ROWS 16

/*
 * camembert_embed(input text, model text, pooling text) → real[hidden]:
 * 'mean' averages the last hidden state over every token of the encoding
 * (<s> and </s> included, as sentence-transformers' mean pooling does),
 * 'cls' takes the state of <s>.
 */
Datum
camembert_embed(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	char	   *pooling;
	bool		mean;
	int32_t    *ids;
	int			n;
	bool		truncated;
	int			hidden;
	float	   *states;
	float	   *vec;
	cb_forward_output out = {0};
	CamembertBatch batch;
	int32_t    *mask;
	int			dims[1];
	ArrayType  *result;
	instr_time	start;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	pooling = PG_ARGISNULL(2) ? "mean" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(pooling, "mean") == 0)
		mean = true;
	else if (strcmp(pooling, "cls") == 0)
		mean = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown pooling \"%s\"", pooling),
				 errhint("Use 'mean' (average over the tokens) or 'cls' (the <s> token).")));
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_EMBED);
	hidden = model->model.config.hidden_size;
	ids = camembert_encode_text(model, PG_GETARG_TEXT_PP(0), &n, &truncated);
	mask = palloc(sizeof(int32_t) * n);
	for (int t = 0; t < n; t++)
		mask[t] = 1;
	batch.batch_size = 1;
	batch.seq_len = n;
	batch.input_ids = ids;
	batch.attention_mask = mask;
	batch.lengths = &n;

	states = palloc(mul_size(mul_size(n, hidden), sizeof(float)));
	out.last_hidden_state = states;
	camembert_forward_batch(model, &batch, &out);

	vec = palloc0(sizeof(float) * hidden);
	if (mean)
	{
		for (int h = 0; h < hidden; h++)
		{
			double		sum = 0;

			for (int t = 0; t < n; t++)
				sum += states[(Size) t * hidden + h];
			vec[h] = (float) (sum / n);
		}
	}
	else
		memcpy(vec, states, sizeof(float) * hidden);
	dims[0] = hidden;
	result = camembert_float4_array(vec, 1, dims);
	camembert_stat_call(model->name, 1, n, &start);
	PG_RETURN_ARRAYTYPE_P(result);
}

/* log softmax(row)[id] */
static double
log_prob(const float *row, int vocab, int32_t id)
{
	return (double) row[id] - cb_kernel_logsumexp(row, vocab);
}

/* causal LM: sum over t >= 1 of log p(ids[t] | ids[0..t-1]), </s> included */
static double
causal_log_likelihood(CamembertModel *model, int32_t *ids, int n)
{
	int			vocab = model->model.config.vocab_size;
	float	   *logits = palloc_extended(mul_size(mul_size(n, vocab), sizeof(float)), MCXT_ALLOC_HUGE);
	cb_forward_output out = {0};
	CamembertBatch batch;
	double		total = 0;

	batch.batch_size = 1;
	batch.seq_len = n;
	batch.input_ids = ids;
	batch.attention_mask = NULL;
	batch.lengths = &n;
	out.token_logits = logits;
	camembert_forward_batch(model, &batch, &out);
	for (int t = 1; t < n; t++)
		total += log_prob(logits + (Size) (t - 1) * vocab, vocab, ids[t]);
	pfree(logits);
	return total;
}

/*
 * masked LM: the pseudo-log-likelihood (Salazar et al., 2020): for every
 * token between <s> and </s>, log p(token | the text with it masked), summed.
 */
static double
pseudo_log_likelihood(CamembertModel *model, int32_t *ids, int n)
{
	int			vocab = model->model.config.vocab_size;
	int			n_tokens = n - 2;
	double		total = 0;
	int32_t    *rows = palloc(mul_size(mul_size(PLL_BATCH_ROWS, n), sizeof(int32_t)));
	int32_t    *positions = palloc(sizeof(int32_t) * PLL_BATCH_ROWS);
	float	   *logits = palloc(mul_size(mul_size(PLL_BATCH_ROWS, vocab), sizeof(float)));

	for (int start = 0; start < n_tokens; start += PLL_BATCH_ROWS)
	{
		int			b_rows = Min(PLL_BATCH_ROWS, n_tokens - start);
		CamembertBatch batch;
		cb_forward_output out = {0};

		for (int b = 0; b < b_rows; b++)
		{
			int			t = 1 + start + b;

			memcpy(rows + (Size) b * n, ids, sizeof(int32_t) * n);
			rows[(Size) b * n + t] = model->tokenizer.mask_id;
			positions[b] = b * n + t;
		}
		batch.batch_size = b_rows;
		batch.seq_len = n;
		batch.input_ids = rows;
		batch.attention_mask = NULL;
		batch.lengths = NULL;
		out.logit_positions = positions;
		out.n_logit_positions = b_rows;
		out.position_logits = logits;
		camembert_forward_batch(model, &batch, &out);
		for (int b = 0; b < b_rows; b++)
			total += log_prob(logits + (Size) b * vocab, vocab, ids[1 + start + b]);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(rows);
	pfree(positions);
	pfree(logits);
	return total;
}

/*
 * camembert_score(input text, model text) → float8: the log-likelihood of the
 * text under a causal LM, or its pseudo-log-likelihood under a masked LM
 * (natural log; higher is more likely; low values flag odd rows).
 */
Datum
camembert_score(PG_FUNCTION_ARGS)
{
	CamembertModel *model;
	int32_t    *ids;
	int			n;
	bool		truncated;
	double		score;
	instr_time	start;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	camembert_stat_start(&start);
	model = camembert_resolve_model_arg(fcinfo, 1, TASK_SCORE);
	ids = camembert_encode_text(model, PG_GETARG_TEXT_PP(0), &n, &truncated);
	if (model->model.config.architecture == CB_ARCH_CAUSAL_LM)
		score = causal_log_likelihood(model, ids, n);
	else
		score = pseudo_log_likelihood(model, ids, n);
	camembert_stat_call(model->name, 1, n, &start);
	PG_RETURN_FLOAT8(score);
}
