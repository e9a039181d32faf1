/*
 * forward.c — the CamemBERT forward pass (see forward.h).
 *
 * Layout: the attended tokens of the batch are packed into rows
 * x[0 .. N) of a [N][H] matrix, sequence after sequence; every linear layer
 * is one matrix product over all rows (cb_kernel_matmul_nt: X · Wᵀ with W
 * row-major [out][in], read in place), and attention runs per sequence and
 * head with two small products (scores, then context) that read the heads in
 * place (leading dimension H).
 */
#include "forward.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

#define WS_ALIGN 64

/* ------------------------------------------------------------------------ */
/* workspace */

void
cb_workspace_init(cb_workspace *ws)
{
	ws->block = NULL;
	ws->size = 0;
}

void *
cb_workspace_data(const cb_workspace *ws)
{
	uintptr_t	p;

	if (ws->block == NULL)
		return NULL;
	p = (uintptr_t) ws->block;
	return (void *) ((p + WS_ALIGN - 1) & ~(uintptr_t) (WS_ALIGN - 1));
}

cb_status
cb_workspace_reserve(cb_workspace *ws, size_t bytes, cb_error *err)
{
	size_t		total;
	void	   *block;

	if (ws->block != NULL && ws->size >= bytes)
		return CB_OK;
	if (!cb_add_size(bytes, WS_ALIGN, &total))
		return cb_set_error(err, CB_ERR_LIMIT, "workspace of %zu bytes is too large", bytes);
	block = cb_malloc(total);
	if (block == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory allocating a %zu-byte forward workspace",
							total);
	cb_free(ws->block);
	ws->block = block;
	ws->size = bytes;
	return CB_OK;
}

void
cb_workspace_release(cb_workspace *ws)
{
	cb_free(ws->block);
	ws->block = NULL;
	ws->size = 0;
}

/*
 * A bump allocator over a workspace block.  First a sizing pass (base NULL)
 * adds up the aligned sizes, then the same sequence of takes on the real block
 * hands out the pointers.
 */
typedef struct carve
{
	char	   *base;
	size_t		used;
	bool		overflow;
} carve;

static void *
carve_take(carve *c, size_t count, size_t elem)
{
	size_t		bytes,
				start;

	if (!cb_mul_size(count, elem, &bytes) ||
		!cb_add_size(c->used, WS_ALIGN - 1, &start))
	{
		c->overflow = true;
		return NULL;
	}
	start &= ~(size_t) (WS_ALIGN - 1);
	if (!cb_add_size(start, bytes, &c->used))
	{
		c->overflow = true;
		return NULL;
	}
	return c->base != NULL ? c->base + start : NULL;
}

/* ------------------------------------------------------------------------ */
/* model checks */

cb_status
cb_forward_check_model(const cb_model *model, cb_error *err)
{
	const cb_config *c;

	if (model == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "no model");
	c = &model->config;
	if (c->hidden_size <= 0 || c->num_attention_heads <= 0 ||
		c->hidden_size % c->num_attention_heads != 0)
		return cb_set_error(err, CB_ERR_FORMAT,
							"hidden_size %d is not a positive multiple of num_attention_heads %d",
							c->hidden_size, c->num_attention_heads);
	if (c->num_hidden_layers < 0 || c->num_hidden_layers > CB_MAX_LAYERS)
		return cb_set_error(err, CB_ERR_FORMAT, "num_hidden_layers %d is outside [0, %d]",
							c->num_hidden_layers, CB_MAX_LAYERS);
	if (c->intermediate_size <= 0 || c->vocab_size <= 0 || c->type_vocab_size <= 0)
		return cb_set_error(err, CB_ERR_FORMAT,
							"intermediate_size %d, vocab_size %d and type_vocab_size %d must be positive",
							c->intermediate_size, c->vocab_size, c->type_vocab_size);
	if (c->pad_token_id < 0 || c->pad_token_id >= c->max_position_embeddings - 1)
		return cb_set_error(err, CB_ERR_FORMAT,
							"pad_token_id %d leaves no position in max_position_embeddings %d",
							c->pad_token_id, c->max_position_embeddings);
	if (!(c->layer_norm_eps >= 0.0f) || isinf(c->layer_norm_eps))
		return cb_set_error(err, CB_ERR_FORMAT, "layer_norm_eps %g is not a finite non-negative number",
							(double) c->layer_norm_eps);
	if (model->word_embeddings.data == NULL || model->position_embeddings == NULL ||
		model->token_type_embeddings == NULL || model->embeddings_ln_w == NULL ||
		model->embeddings_ln_b == NULL || (c->num_hidden_layers > 0 && model->layers == NULL))
		return cb_set_error(err, CB_ERR_FORMAT, "the model lacks embedding or layer weights");
	for (int32_t l = 0; l < c->num_hidden_layers; l++)
	{
		const cb_layer_weights *w = &model->layers[l];

		if (!w->query_w.data || !w->query_b || !w->key_w.data || !w->key_b || !w->value_w.data ||
			!w->value_b || !w->attn_out_w.data || !w->attn_out_b || !w->attn_ln_w || !w->attn_ln_b ||
			!w->inter_w.data || !w->inter_b || !w->out_w.data || !w->out_b || !w->out_ln_w ||
			!w->out_ln_b)
			return cb_set_error(err, CB_ERR_FORMAT, "layer %d lacks a weight", l);
	}
	switch (c->architecture)
	{
		case CB_ARCH_MASKED_LM:
		case CB_ARCH_CAUSAL_LM:
			if (!model->lm_dense_w.data || !model->lm_dense_b || !model->lm_ln_w || !model->lm_ln_b ||
				!model->lm_decoder_w.data || !model->lm_decoder_b)
				return cb_set_error(err, CB_ERR_FORMAT, "the model lacks an lm_head weight");
			break;
		case CB_ARCH_SEQUENCE_CLASSIFICATION:
			if (c->num_labels <= 0 || c->num_labels > CB_MAX_LABELS)
				return cb_set_error(err, CB_ERR_FORMAT, "num_labels %d is outside [1, %d]",
									c->num_labels, CB_MAX_LABELS);
			if (!model->cls_dense_w.data || !model->cls_dense_b || !model->cls_out_w.data ||
				!model->cls_out_b)
				return cb_set_error(err, CB_ERR_FORMAT, "the model lacks a classifier weight");
			break;
		case CB_ARCH_ENCODER:
			break;
		default:
			return cb_set_error(err, CB_ERR_FORMAT, "unknown architecture %d", (int) c->architecture);
	}
	return CB_OK;
}

double
cb_forward_flops(const cb_model *model, int64_t tokens, int32_t seq_len)
{
	double		h = model->config.hidden_size,
				i = model->config.intermediate_size;
	double		per_token = 8.0 * h * h + 4.0 * h * i + 4.0 * (double) seq_len * h;

	return (double) tokens * per_token * (double) model->config.num_hidden_layers;
}

/* ------------------------------------------------------------------------ */
/* building blocks */

/* y[n][out] = x[n][in] · w[out][in]ᵀ + b (torch's addmm; b may be NULL);
 * scratch: cb_model_product_scratch_bytes(model, >= n) bytes. */
static inline void
linear(const float *x, size_t n, const cb_matrix *w, const float *b, float *y, size_t ldy,
	   void *scratch)
{
	cb_matrix_product(x, w->cols, w, b, y, ldy, n, scratch);
}

/* Every weight matrix of a model, for sizing scratch (NULL-terminated). */
static size_t
model_matrices(const cb_model *model, const cb_matrix **out)
{
	size_t		n = 0;
	const cb_layer_weights *l = model->config.num_hidden_layers > 0 ? &model->layers[0] : NULL;

	if (l != NULL)
	{
		out[n++] = &l->query_w;
		out[n++] = &l->key_w;
		out[n++] = &l->value_w;
		out[n++] = &l->attn_out_w;
		out[n++] = &l->inter_w;
		out[n++] = &l->out_w;
	}
	out[n++] = &model->lm_dense_w;
	out[n++] = &model->lm_decoder_w;
	out[n++] = &model->cls_dense_w;
	out[n++] = &model->cls_out_w;
	return n;
}

size_t
cb_model_product_scratch_bytes(const cb_model *model, size_t n)
{
	const cb_matrix *m[10];
	size_t		count = model_matrices(model, m),
				most = 0;

	/* every layer holds its matrices in the same formats and shapes as layer 0 */
	for (size_t i = 0; i < count; i++)
		if (m[i]->data != NULL)
		{
			size_t		b = cb_matrix_product_scratch(m[i], n);

			if (b > most)
				most = b;
		}
	return most;
}

void
cb_embed_tokens(const cb_model *model, const int32_t *ids, const int32_t *positions,
				size_t n, float *x)
{
	size_t		h = (size_t) model->config.hidden_size;
	const float *type0 = model->token_type_embeddings;

	for (size_t r = 0; r < n; r++)
	{
		const float *pe = model->position_embeddings + (size_t) positions[r] * h;
		float	   *xr = x + r * h;

		/* transformers: (inputs_embeds + token_type_embeddings) + position_embeddings */
		cb_matrix_row(&model->word_embeddings, (size_t) ids[r], xr);
		for (size_t c = 0; c < h; c++)
			xr[c] = (xr[c] + type0[c]) + pe[c];
	}
	cb_kernel_layernorm(x, n, h, model->embeddings_ln_w, model->embeddings_ln_b,
						model->config.layer_norm_eps);
}

/* floats of the products' scratch for n rows */
static size_t
product_scratch_floats(const cb_model *model, size_t n)
{
	return (cb_model_product_scratch_bytes(model, n) + sizeof(float) - 1) / sizeof(float);
}

size_t
cb_encoder_layer_scratch_floats(const cb_model *model, size_t n_rows, size_t max_queries,
								size_t max_keys, int workers)
{
	const cb_config *cfg = &model->config;
	size_t		h = (size_t) cfg->hidden_size,
				i = (size_t) cfg->intermediate_size,
				d = h / (size_t) cfg->num_attention_heads;
	size_t		per_row,
				total,
				per_worker,
				attention;

	/* q (reused for dense outputs) + ctx + intermediate, per row; the matrix
	 * products' packing scratch; per attention worker: scores and the
	 * scores product's packing scratch */
	if (workers < 1 ||
		!cb_add_size(2 * h, i, &per_row) ||
		!cb_mul_size(per_row, n_rows, &total) ||
		!cb_mul_size(max_queries, max_keys, &per_worker) ||
		!cb_add_size(per_worker, cb_kernel_matmul_pack_floats(max_queries, d), &per_worker) ||
		!cb_mul_size(per_worker, (size_t) workers, &attention) ||
		!cb_add_size(total, attention, &total) ||
		!cb_add_size(total, product_scratch_floats(model, n_rows), &total) ||
		!cb_add_size(total, 64, &total))
		return 0;
	return total;
}

/* The attention of one (sequence, head) pair: cb_encoder_layer's items. */
typedef struct attention_job
{
	size_t		h,
				d,
				heads,
				past;
	float		scale;
	int			causal;
	const float *q,
			   *k_store,
			   *v_store;
	const size_t *seq_off,
			   *q_off;
	const cb_attention_sink *sink;
	const cb_query_subset *subset;
	float	   *ctx;
	float	   *work;			/* per worker: scores, then packing scratch */
	size_t		work_floats,
				scores_floats;
} attention_job;

static void
attend_head(void *arg, size_t item, int worker)
{
	const attention_job *aj = arg;
	size_t		h = aj->h,
				d = aj->d,
				s = item / aj->heads,
				hd = item % aj->heads;
	size_t		q0 = aj->q_off[s],
				nq = aj->q_off[s + 1] - aj->q_off[s],
				nk = aj->past + (aj->seq_off[s + 1] - aj->seq_off[s]);
	float	   *scores = aj->work + (size_t) worker * aj->work_floats;
	float	   *pack = scores + aj->scores_floats;
	const float *qh = aj->q + q0 * h + hd * d;
	const float *kh = aj->k_store + aj->seq_off[s] * h + hd * d;
	const float *vh = aj->v_store + aj->seq_off[s] * h + hd * d;
	const cb_attention_sink *sink = aj->sink;

	if (nq == 0)
		return;
	cb_kernel_matmul_nt(qh, h, kh, h, NULL, aj->scale, scores, nk, nq, nk, d, pack);
	for (size_t i = 0; i < nq; i++)
	{
		float	   *row = scores + i * nk;

		if (aj->causal)
		{
			/* query i sits at key index past + (its row in the sequence) */
			size_t		in_seq = aj->subset ? aj->subset->rows[q0 + i] - aj->seq_off[s] : i;
			size_t		seen = aj->past + in_seq + 1;

			cb_kernel_softmax(row, seen);
			memset(row + seen, 0, (nk - seen) * sizeof(float));
		}
		else
			cb_kernel_softmax(row, nk);
	}
	if (sink != NULL)
	{
		size_t		t = (size_t) sink->seq_len;
		size_t		row0 = aj->seq_off[s];

		for (size_t i = 0; i < nq; i++)
		{
			size_t		b = (size_t) sink->row_batch[row0 + i];
			float	   *dst = sink->probs + ((b * aj->heads + hd) * t +
											 (size_t) sink->row_time[row0 + i]) * t;

			for (size_t j = 0; j < nk; j++)
				dst[sink->row_time[row0 + j]] = scores[i * nk + j];
		}
	}
	cb_kernel_matmul_nn(scores, nk, vh, h, aj->ctx + q0 * h + hd * d, h, nq, d, nk);
}

/* bias + GELU on blocks of rows: cb_encoder_layer's items for the FFN */
#define GELU_BLOCK_ROWS 8

typedef struct gelu_job
{
	float	   *x;
	size_t		rows,
				cols;
	const float *bias;
} gelu_job;

static void
gelu_rows(void *arg, size_t item, int worker)
{
	const gelu_job *gj = arg;
	size_t		r0 = item * GELU_BLOCK_ROWS;
	size_t		n = gj->rows - r0 < GELU_BLOCK_ROWS ? gj->rows - r0 : GELU_BLOCK_ROWS;

	(void) worker;
	cb_kernel_bias_gelu(gj->x + r0 * gj->cols, n, gj->cols, gj->bias);
}

void
cb_encoder_layer(const cb_model *model, const cb_layer_weights *lw,
				 float *x, size_t n_rows, size_t n_seq, const size_t *seq_off,
				 float *k_store, float *v_store, size_t past, int causal,
				 const cb_attention_sink *sink, const cb_query_subset *subset, float *scratch,
				 int workers)
{
	const cb_config *cfg = &model->config;
	size_t		h = (size_t) cfg->hidden_size,
				inter = (size_t) cfg->intermediate_size,
				heads = (size_t) cfg->num_attention_heads,
				d = h / heads;
	float		eps = cfg->layer_norm_eps;
	float		scale = (float) (1.0 / sqrt((double) d));
	float	   *q = scratch;
	float	   *ctx = q + n_rows * h;
	float	   *mid = ctx + n_rows * h;
	float	   *pack = mid + n_rows * inter;
	float	   *work = pack + product_scratch_floats(model, n_rows);
	/* per attention worker (sized by cb_encoder_layer_scratch_floats) */
	size_t		max_q = 0,
				max_k = 0,
				scores_floats,
				work_floats;
	double		attention_flops = 0;
	/* the rows this layer outputs: all of x in place, or a subset */
	float	   *xo = subset ? subset->out : x;
	size_t		n_out = subset ? subset->n : n_rows;
	const size_t *q_off = subset ? subset->seq_q_off : seq_off;

	/* keys and values of every row go to the store at row past + r */
	linear(x, n_rows, &lw->key_w, lw->key_b, k_store + past * h, h, pack);
	linear(x, n_rows, &lw->value_w, lw->value_b, v_store + past * h, h, pack);
	if (subset != NULL)
		for (size_t j = 0; j < n_out; j++)
			memcpy(xo + j * h, x + subset->rows[j] * h, h * sizeof(float));
	if (n_out == 0)
		return;
	linear(xo, n_out, &lw->query_w, lw->query_b, q, h, pack);

	/* the per-worker areas, laid out as cb_encoder_layer_scratch_floats sized
	 * them, and the attention's FLOPs (two products per head) */
	for (size_t s = 0; s < n_seq; s++)
	{
		size_t		nq = q_off[s + 1] - q_off[s],
					nk = past + seq_off[s + 1] - seq_off[s];

		if (nq > max_q)
			max_q = nq;
		if (nk > max_k)
			max_k = nk;
		attention_flops += 4.0 * (double) nq * (double) nk * (double) h;
	}
	scores_floats = max_q * max_k;
	work_floats = scores_floats + cb_kernel_matmul_pack_floats(max_q, d);

	/* attention, one (sequence, head) pair an item, spread over the workers */
	{
		attention_job aj = {h, d, heads, past, scale, causal, q, k_store, v_store, seq_off, q_off,
			sink, subset, ctx, work, work_floats, scores_floats};

		cb_kernel_parallel_for(n_seq * heads, workers, attention_flops, attend_head, &aj);
	}

	/* attention output dense + bias + residual + LayerNorm (q is free now) */
	linear(ctx, n_out, &lw->attn_out_w, NULL, q, h, pack);
	cb_kernel_bias_residual_layernorm(xo, q, n_out, h, lw->attn_out_b, lw->attn_ln_w,
									  lw->attn_ln_b, eps);

	/* feed-forward: dense + bias + GELU, dense + bias + residual + LayerNorm */
	linear(xo, n_out, &lw->inter_w, NULL, mid, inter, pack);
	{
		gelu_job	gj = {mid, n_out, inter, lw->inter_b};

		/* ~30 FLOPs an element (erf polynomial and exp) */
		cb_kernel_parallel_for((n_out + GELU_BLOCK_ROWS - 1) / GELU_BLOCK_ROWS, workers,
							   30.0 * (double) n_out * (double) inter, gelu_rows, &gj);
	}
	linear(mid, n_out, &lw->out_w, NULL, q, h, pack);
	cb_kernel_bias_residual_layernorm(xo, q, n_out, h, lw->out_b, lw->out_ln_w,
									  lw->out_ln_b, eps);
}

void
cb_lm_head_transform(const cb_model *model, const float *x, size_t n, float *tmp, void *scratch)
{
	size_t		h = (size_t) model->config.hidden_size;

	linear(x, n, &model->lm_dense_w, NULL, tmp, h, scratch);
	cb_kernel_bias_gelu(tmp, n, h, model->lm_dense_b);
	cb_kernel_layernorm(tmp, n, h, model->lm_ln_w, model->lm_ln_b, model->config.layer_norm_eps);
}

void
cb_lm_head_decode(const cb_model *model, const float *tmp, size_t n, float *logits, size_t ld_logits,
				  void *scratch)
{
	if (n == 0)
		return;
	linear(tmp, n, &model->lm_decoder_w, model->lm_decoder_b, logits, ld_logits, scratch);
}

/* ------------------------------------------------------------------------ */
/* cb_forward */

/* The packed rows of a batch. */
typedef struct packed_batch
{
	size_t		batch;			/* B */
	size_t		seq_len;		/* T */
	size_t		n_rows;			/* N: attended tokens */
	size_t		max_len;		/* longest sequence (rows) */
	int32_t    *ids;			/* [N] */
	int32_t    *positions;		/* [N] */
	int32_t    *row_batch;		/* [N] */
	int32_t    *row_time;		/* [N] */
	size_t	   *seq_off;		/* [B + 1] */
	int32_t    *flat_to_row;	/* [B * T]: row, or -1 for an unattended token */
} packed_batch;

/* First pass: validate the input, count rows. */
static cb_status
count_rows(const cb_model *model, const cb_forward_input *in, size_t *n_rows, size_t *max_len,
		   cb_error *err)
{
	const cb_config *c = &model->config;
	size_t		total = 0,
				longest = 0;

	for (int32_t b = 0; b < in->batch_size; b++)
	{
		const int32_t *ids = in->input_ids + (size_t) b * (size_t) in->seq_len;
		const int32_t *mask = in->attention_mask ? in->attention_mask + (size_t) b * (size_t) in->seq_len : NULL;
		int64_t		non_pad = 0;
		size_t		kept = 0;

		for (int32_t t = 0; t < in->seq_len; t++)
		{
			int32_t		id = ids[t];
			int32_t		m = mask ? mask[t] : 1;

			if (id < 0 || id >= c->vocab_size)
				return cb_set_error(err, CB_ERR_INVALID,
									"input id %d at row %d, position %d is outside the vocabulary [0, %d)",
									id, b, t, c->vocab_size);
			if (m != 0 && m != 1)
				return cb_set_error(err, CB_ERR_INVALID,
									"attention_mask value %d at row %d, position %d is neither 0 nor 1",
									m, b, t);
			if (id != c->pad_token_id)
				non_pad++;
			if (m == 1)
			{
				kept++;
				if (id != c->pad_token_id &&
					non_pad + c->pad_token_id >= c->max_position_embeddings)
					return cb_set_error(err, CB_ERR_INVALID,
										"row %d is longer than the %d tokens the model accepts "
										"(max_position_embeddings %d); truncate the input",
										b, c->max_position_embeddings - c->pad_token_id - 1,
										c->max_position_embeddings);
			}
		}
		if (kept == 0)
			return cb_set_error(err, CB_ERR_INVALID, "row %d has no token with attention_mask 1", b);
		if (c->architecture == CB_ARCH_SEQUENCE_CLASSIFICATION && mask != NULL && mask[0] != 1)
			return cb_set_error(err, CB_ERR_INVALID,
								"row %d: the first token (<s>) must have attention_mask 1 "
								"(left padding is not supported)", b);
		total += kept;
		if (kept > longest)
			longest = kept;
	}
	*n_rows = total;
	*max_len = longest;
	return CB_OK;
}

/* Second pass: the packed rows, their position ids, and the maps. */
static void
fill_rows(const cb_model *model, const cb_forward_input *in, packed_batch *pb)
{
	int32_t		pad = model->config.pad_token_id;
	size_t		r = 0;

	for (int32_t b = 0; b < in->batch_size; b++)
	{
		size_t		base = (size_t) b * (size_t) in->seq_len;
		int32_t		count = 0;

		pb->seq_off[b] = r;
		for (int32_t t = 0; t < in->seq_len; t++)
		{
			int32_t		id = in->input_ids[base + t];
			int32_t		m = in->attention_mask ? in->attention_mask[base + t] : 1;

			if (id != pad)
				count++;
			if (m == 1)
			{
				pb->ids[r] = id;
				pb->positions[r] = id != pad ? pad + count : pad;
				pb->row_batch[r] = b;
				pb->row_time[r] = t;
				pb->flat_to_row[base + t] = (int32_t) r;
				r++;
			}
			else
				pb->flat_to_row[base + t] = -1;
		}
	}
	pb->seq_off[in->batch_size] = r;
}

/* Copy packed rows x [N][H] to out [B][T][H] (zeros at unattended tokens). */
static void
scatter_rows(const packed_batch *pb, const float *x, size_t h, float *out)
{
	size_t		bt = pb->batch * pb->seq_len;

	if (pb->n_rows < bt)
		memset(out, 0, bt * h * sizeof(float));
	for (size_t r = 0; r < pb->n_rows; r++)
		memcpy(out + ((size_t) pb->row_batch[r] * pb->seq_len + (size_t) pb->row_time[r]) * h,
			   x + r * h, h * sizeof(float));
}

/* Check the input and output shapes against the model. */
static cb_status
check_request(const cb_model *model, const cb_forward_input *in, const cb_forward_output *out,
			  cb_error *err)
{
	const cb_config *c = &model->config;
	bool		lm = c->architecture == CB_ARCH_MASKED_LM || c->architecture == CB_ARCH_CAUSAL_LM;
	size_t		bt,
				tmp;

	if (in == NULL || out == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "no input or no output description");
	if (in->batch_size <= 0 || in->seq_len <= 0 || in->input_ids == NULL)
		return cb_set_error(err, CB_ERR_INVALID,
							"a batch needs at least one row of at least one token (got %d x %d)",
							in->batch_size, in->seq_len);
	if (!cb_mul_size((size_t) in->batch_size, (size_t) in->seq_len, &bt) || bt > INT32_MAX)
		return cb_set_error(err, CB_ERR_LIMIT, "a batch of %d x %d tokens is too large",
							in->batch_size, in->seq_len);
	/* every output array must be addressable */
	if (!cb_mul_size(bt, (size_t) c->hidden_size, &tmp) ||
		!cb_mul_size(tmp, (size_t) c->num_hidden_layers + 1, &tmp) ||
		!cb_mul_size(bt, (size_t) c->vocab_size, &tmp) ||
		!cb_mul_size(bt, (size_t) in->seq_len, &tmp) ||
		!cb_mul_size(tmp, (size_t) c->num_attention_heads, &tmp) ||
		!cb_mul_size(tmp, (size_t) (c->num_hidden_layers > 0 ? c->num_hidden_layers : 1), &tmp))
		return cb_set_error(err, CB_ERR_LIMIT, "a batch of %d x %d tokens is too large for this model",
							in->batch_size, in->seq_len);
	if ((out->token_logits != NULL || out->n_logit_positions > 0) && !lm)
		return cb_set_error(err, CB_ERR_INVALID, "token logits need a masked or causal LM model");
	if (out->class_logits != NULL && c->architecture != CB_ARCH_SEQUENCE_CLASSIFICATION)
		return cb_set_error(err, CB_ERR_INVALID, "class logits need a sequence classification model");
	if (out->n_logit_positions < 0 ||
		(out->n_logit_positions > 0 && (out->logit_positions == NULL || out->position_logits == NULL)))
		return cb_set_error(err, CB_ERR_INVALID, "logit positions need both a list and an output array");
	for (int32_t i = 0; i < out->n_logit_positions; i++)
	{
		int32_t		p = out->logit_positions[i];

		if (p < 0 || (size_t) p >= bt)
			return cb_set_error(err, CB_ERR_INVALID, "logit position %d is outside the batch [0, %zu)",
								p, bt);
		if (in->attention_mask != NULL && in->attention_mask[p] != 1)
			return cb_set_error(err, CB_ERR_INVALID,
								"logit position %d (row %d, token %d) has attention_mask 0",
								p, p / in->seq_len, p % in->seq_len);
	}
	return CB_OK;
}

/* Where everything of one call lives in the workspace. */
typedef struct forward_layout
{
	packed_batch pb;
	float	   *x,
			   *k,
			   *v,
			   *scratch,
			   *head;
	/* the last layer's output rows when only the heads need them */
	int32_t    *compact;		/* [N]: row -> index in sub_rows, or -1 */
	size_t	   *sub_rows;		/* [n_sub] */
	size_t	   *sub_off;		/* [B + 1] */
	float	   *sub_x;			/* [n_sub][H] */
} forward_layout;

static void
carve_layout(carve *cv, forward_layout *fl, size_t batch, size_t bt, size_t n_rows, size_t h,
			 size_t layer_floats, size_t head_floats, size_t n_sub)
{
	fl->pb.ids = carve_take(cv, n_rows, sizeof(int32_t));
	fl->pb.positions = carve_take(cv, n_rows, sizeof(int32_t));
	fl->pb.row_batch = carve_take(cv, n_rows, sizeof(int32_t));
	fl->pb.row_time = carve_take(cv, n_rows, sizeof(int32_t));
	fl->pb.seq_off = carve_take(cv, batch + 1, sizeof(size_t));
	fl->pb.flat_to_row = carve_take(cv, bt, sizeof(int32_t));
	fl->x = carve_take(cv, n_rows, h * sizeof(float));
	fl->k = carve_take(cv, n_rows, h * sizeof(float));
	fl->v = carve_take(cv, n_rows, h * sizeof(float));
	fl->scratch = carve_take(cv, layer_floats, sizeof(float));
	fl->head = carve_take(cv, head_floats > 0 ? head_floats : 1, sizeof(float));
	fl->compact = carve_take(cv, n_sub > 0 ? n_rows : 1, sizeof(int32_t));
	fl->sub_rows = carve_take(cv, n_sub > 0 ? n_sub : 1, sizeof(size_t));
	fl->sub_off = carve_take(cv, n_sub > 0 ? batch + 1 : 1, sizeof(size_t));
	fl->sub_x = carve_take(cv, n_sub > 0 ? n_sub : 1, h * sizeof(float));
}

/* The rows the heads read (first token of each row for a classifier, the
 * requested logit positions), ascending; returns how many. */
static size_t
select_head_rows(const packed_batch *pb, const cb_forward_output *out, forward_layout *fl)
{
	size_t		n = 0;

	const int32_t wanted = -2;

	for (size_t r = 0; r < pb->n_rows; r++)
		fl->compact[r] = -1;
	if (out->class_logits != NULL)
		for (size_t b = 0; b < pb->batch; b++)
			fl->compact[pb->seq_off[b]] = wanted;
	for (int32_t i = 0; i < out->n_logit_positions; i++)
		fl->compact[pb->flat_to_row[out->logit_positions[i]]] = wanted;
	for (size_t b = 0; b < pb->batch; b++)
	{
		fl->sub_off[b] = n;
		for (size_t r = pb->seq_off[b]; r < pb->seq_off[b + 1]; r++)
			if (fl->compact[r] == wanted)
			{
				fl->compact[r] = (int32_t) n;
				fl->sub_rows[n++] = r;
			}
	}
	fl->sub_off[pb->batch] = n;
	return n;
}

/* LM head: logits at every attended token, zeros elsewhere. */
static void
token_logits_all(const cb_model *model, const packed_batch *pb, const float *x, float *tmp,
				 float *logits, void *scratch)
{
	size_t		v = (size_t) model->config.vocab_size;

	cb_lm_head_transform(model, x, pb->n_rows, tmp, scratch);
	for (size_t r = 0; r < pb->n_rows;)
	{
		size_t		run = 1;
		size_t		flat = (size_t) pb->row_batch[r] * pb->seq_len + (size_t) pb->row_time[r];

		/* rows that are consecutive in the output share one product */
		while (r + run < pb->n_rows &&
			   pb->row_batch[r + run] == pb->row_batch[r] &&
			   pb->row_time[r + run] == pb->row_time[r] + (int32_t) run)
			run++;
		cb_lm_head_decode(model, tmp + r * model->config.hidden_size, run, logits + flat * v, v,
						  scratch);
		r += run;
	}
	for (size_t f = 0; f < pb->batch * pb->seq_len; f++)
		if (pb->flat_to_row[f] < 0)
			memset(logits + f * v, 0, v * sizeof(float));
}

cb_status
cb_forward(const cb_model *model, const cb_forward_input *input,
		   const cb_forward_output *output, cb_workspace *workspace, cb_error *err)
{
	const cb_config *c;
	cb_status	st;
	size_t		h,
				n_rows = 0,
				max_len = 0,
				bt,
				batch,
				n_layers,
				layer_floats,
				head_floats = 0,
				n_pos,
				n_sub = 0;
	bool		subset_last;
	int			workers;		/* threads for attention and GELU */
	forward_layout fl;
	const float *final_x;		/* the rows the heads read */
	const int32_t *final_index;	/* row -> index in final_x, NULL: identity */
	cb_workspace local;
	cb_workspace *ws = workspace != NULL ? workspace : &local;
	carve		cv;

	st = cb_forward_check_model(model, err);
	if (st != CB_OK)
		return st;
	st = check_request(model, input, output, err);
	if (st != CB_OK)
		return st;
	st = count_rows(model, input, &n_rows, &max_len, err);
	if (st != CB_OK)
		return st;

	c = &model->config;
	h = (size_t) c->hidden_size;
	n_layers = (size_t) c->num_hidden_layers;
	batch = (size_t) input->batch_size;
	bt = batch * (size_t) input->seq_len;
	n_pos = (size_t) output->n_logit_positions;

	/* scratch sizes (n_rows <= bt <= INT32_MAX, so these products fit) */
	workers = cb_kernel_threads();
	layer_floats = cb_encoder_layer_scratch_floats(model, n_rows, max_len, max_len, workers);
	if (layer_floats == 0)
		return cb_set_error(err, CB_ERR_LIMIT, "a batch of %zu tokens is too large", n_rows);
	/* the heads' products use the layers' scratch once the layers are done */
	{
		size_t		head_rows = n_pos > n_rows ? n_pos : n_rows;
		size_t		head_scratch = product_scratch_floats(model, head_rows > batch ? head_rows : batch);

		if (head_scratch > layer_floats)
			layer_floats = head_scratch;
	}
	if (output->token_logits != NULL)
		head_floats = n_rows * h;
	if (n_pos > 0)
		head_floats += 2 * n_pos * h;
	if (output->class_logits != NULL)
		head_floats += 2 * batch * h;

	/*
	 * When nothing but the heads' rows is wanted from the last layer, it
	 * computes those rows only (a classifier needs one row per sequence).
	 */
	subset_last = n_layers > 0 && output->hidden_states == NULL &&
		output->last_hidden_state == NULL && output->attentions == NULL &&
		output->token_logits == NULL && (output->class_logits != NULL || n_pos > 0);
	if (subset_last)
	{
		n_sub = n_pos + (output->class_logits != NULL ? batch : 0);
		if (n_sub > n_rows)
			n_sub = n_rows;
	}

	memset(&cv, 0, sizeof(cv));
	carve_layout(&cv, &fl, batch, bt, n_rows, h, layer_floats, head_floats, n_sub);
	if (cv.overflow)
		return cb_set_error(err, CB_ERR_LIMIT, "the workspace for %zu tokens is too large", n_rows);
	if (workspace == NULL)
		cb_workspace_init(&local);
	st = cb_workspace_reserve(ws, cv.used, err);
	if (st != CB_OK)
		return st;
	memset(&cv, 0, sizeof(cv));
	cv.base = cb_workspace_data(ws);
	carve_layout(&cv, &fl, batch, bt, n_rows, h, layer_floats, head_floats, n_sub);

	fl.pb.batch = batch;
	fl.pb.seq_len = (size_t) input->seq_len;
	fl.pb.n_rows = n_rows;
	fl.pb.max_len = max_len;
	fill_rows(model, input, &fl.pb);

	/* embeddings */
	cb_embed_tokens(model, fl.pb.ids, fl.pb.positions, n_rows, fl.x);
	if (output->hidden_states != NULL)
		scatter_rows(&fl.pb, fl.x, h, output->hidden_states);
	if (output->attentions != NULL)
		memset(output->attentions, 0,
			   n_layers * bt * (size_t) c->num_attention_heads * (size_t) input->seq_len * sizeof(float));

	final_x = fl.x;
	final_index = NULL;
	if (subset_last)
	{
		n_sub = select_head_rows(&fl.pb, output, &fl);
		final_x = fl.sub_x;
		final_index = fl.compact;
	}

	/* encoder layers */
	for (size_t l = 0; l < n_layers; l++)
	{
		cb_attention_sink sink;
		cb_query_subset subset = {n_sub, fl.sub_rows, fl.sub_off, fl.sub_x};

		cb_check_interrupts();
		if (output->attentions != NULL)
		{
			sink.probs = output->attentions +
				l * batch * (size_t) c->num_attention_heads * (size_t) input->seq_len * (size_t) input->seq_len;
			sink.seq_len = input->seq_len;
			sink.num_heads = c->num_attention_heads;
			sink.row_batch = fl.pb.row_batch;
			sink.row_time = fl.pb.row_time;
		}
		cb_encoder_layer(model, &model->layers[l], fl.x, n_rows, batch, fl.pb.seq_off,
						 fl.k, fl.v, 0, c->is_decoder != 0,
						 output->attentions != NULL ? &sink : NULL,
						 subset_last && l + 1 == n_layers ? &subset : NULL, fl.scratch, workers);
		if (output->hidden_states != NULL)
			scatter_rows(&fl.pb, fl.x, h, output->hidden_states + (l + 1) * bt * h);
	}
	cb_check_interrupts();
	if (output->last_hidden_state != NULL)
		scatter_rows(&fl.pb, fl.x, h, output->last_hidden_state);

	/* heads */
	{
		float	   *head = fl.head;

		if (output->token_logits != NULL)
		{
			token_logits_all(model, &fl.pb, fl.x, head, output->token_logits, fl.scratch);
			head += n_rows * h;
		}
		if (n_pos > 0)
		{
			float	   *gathered = head,
					   *tmp = head + n_pos * h;

			for (size_t i = 0; i < n_pos; i++)
			{
				size_t		r = (size_t) fl.pb.flat_to_row[output->logit_positions[i]];

				memcpy(gathered + i * h, final_x + (final_index ? (size_t) final_index[r] : r) * h,
					   h * sizeof(float));
			}
			cb_lm_head_transform(model, gathered, n_pos, tmp, fl.scratch);
			cb_lm_head_decode(model, tmp, n_pos, output->position_logits, (size_t) c->vocab_size,
							  fl.scratch);
			head += 2 * n_pos * h;
		}
		if (output->class_logits != NULL)
		{
			float	   *gathered = head,
					   *tmp = head + batch * h;

			/* features[:, 0, :] (count_rows made sure token 0 is attended) */
			for (size_t b = 0; b < batch; b++)
			{
				size_t		r = fl.pb.seq_off[b];

				memcpy(gathered + b * h, final_x + (final_index ? (size_t) final_index[r] : r) * h,
					   h * sizeof(float));
			}
			linear(gathered, batch, &model->cls_dense_w, NULL, tmp, h, fl.scratch);
			cb_kernel_bias_tanh(tmp, batch, h, model->cls_dense_b);
			linear(tmp, batch, &model->cls_out_w, model->cls_out_b, output->class_logits,
				   (size_t) c->num_labels, fl.scratch);
		}
	}

	if (workspace == NULL)
		cb_workspace_release(&local);
	return CB_OK;
}
