/*
 * encoder_layer.c — the ops of the network (see encoder_layer.h): linear
 * layers, embeddings, attention, the encoder layer, the LM head.  Every
 * linear layer is one matrix product over all rows (cb_matrix_product: X ·
 * Wᵀ with W row-major [out][in], read in place), and attention runs per
 * sequence and head with two small products (scores, then context) that
 * read the heads in place (leading dimension H).
 */
#include "encoder_layer.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

/* y[n][out] = x[n][in] · w[out][in]ᵀ + b (torch's addmm; b may be NULL) on
 * up to `threads` threads; scratch: cb_model_product_scratch_bytes(model,
 * >= n, threads) bytes. */
static inline void
linear(const float *x, size_t n, const cb_matrix *w, const float *b, float *y, size_t ldy,
	   void *scratch, int threads)
{
	cb_matrix_product(x, w->cols, w, b, y, ldy, n, scratch, threads);
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
cb_model_product_scratch_bytes(const cb_model *model, size_t n, int threads)
{
	const cb_matrix *m[10];
	size_t		count = model_matrices(model, m),
				most = 0;

	/* every layer holds its matrices in the same formats and shapes as layer 0 */
	for (size_t i = 0; i < count; i++)
		if (m[i]->data != NULL)
		{
			size_t		b = cb_matrix_product_scratch(m[i], n, threads);

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
product_scratch_floats(const cb_model *model, size_t n, int threads)
{
	return (cb_model_product_scratch_bytes(model, n, threads) + sizeof(float) - 1) / sizeof(float);
}

size_t
cb_encoder_layer_scratch_floats(const cb_model *model, size_t n_rows, size_t max_queries,
								size_t max_keys, int workers, int threads)
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
		!cb_add_size(total, product_scratch_floats(model, n_rows, threads), &total) ||
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
	/* on this thread alone: the items share the threads */
	cb_kernel_matmul_nt(qh, h, kh, h, NULL, aj->scale, scores, nk, nq, nk, d, pack, 1);
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

/*
 * Self-attention of the layer's output rows: q = xo · Wqᵀ + bq, then one
 * (sequence, head) pair per item: softmax(q kᵀ / sqrt(d)) v into ctx.
 */
static void
self_attention(const cb_encoder_layer_args *a, const float *xo, size_t n_out, const size_t *q_off,
			   float *q, float *ctx, float *work, float *pack)
{
	const cb_config *cfg = &a->model->config;
	size_t		h = (size_t) cfg->hidden_size,
				heads = (size_t) cfg->num_attention_heads,
				d = h / heads;
	size_t		max_q = 0,
				max_k = 0;
	double		attention_flops = 0;

	linear(xo, n_out, &a->weights->query_w, a->weights->query_b, q, h, pack, a->threads);

	/* the per-worker areas, laid out as cb_encoder_layer_scratch_floats sized
	 * them, and the attention's FLOPs (two products per head) */
	for (size_t s = 0; s < a->n_seq; s++)
	{
		size_t		nq = q_off[s + 1] - q_off[s],
					nk = a->past + a->seq_off[s + 1] - a->seq_off[s];

		if (nq > max_q)
			max_q = nq;
		if (nk > max_k)
			max_k = nk;
		attention_flops += 4.0 * (double) nq * (double) nk * (double) h;
	}
	{
		size_t		scores_floats = max_q * max_k;
		attention_job aj = {h, d, heads, a->past, (float) (1.0 / sqrt((double) d)), a->causal,
			q, a->k_store, a->v_store, a->seq_off, q_off, a->sink, a->subset, ctx, work,
			scores_floats + cb_kernel_matmul_pack_floats(max_q, d), scores_floats};

		cb_kernel_parallel_for(a->n_seq * heads, a->workers, attention_flops, attend_head, &aj);
	}
}

/* Feed-forward on xo in place: LayerNorm(xo + (gelu(xo · W1ᵀ + b1) · W2ᵀ + b2)). */
static void
feed_forward(const cb_encoder_layer_args *a, float *xo, size_t n_out, float *mid, float *tmp,
			 float *pack)
{
	const cb_layer_weights *lw = a->weights;
	size_t		h = (size_t) a->model->config.hidden_size,
				inter = (size_t) a->model->config.intermediate_size;
	gelu_job	gj = {mid, n_out, inter, lw->inter_b};

	linear(xo, n_out, &lw->inter_w, NULL, mid, inter, pack, a->threads);
	/* ~30 FLOPs an element (erf polynomial and exp) */
	cb_kernel_parallel_for((n_out + GELU_BLOCK_ROWS - 1) / GELU_BLOCK_ROWS, a->workers,
						   30.0 * (double) n_out * (double) inter, gelu_rows, &gj);
	cb_tap_emit(a->tap, "intermediate", a->layer, n_out, inter, mid);
	linear(mid, n_out, &lw->out_w, NULL, tmp, h, pack, a->threads);
	cb_kernel_bias_residual_layernorm(xo, tmp, n_out, h, lw->out_b, lw->out_ln_w,
									  lw->out_ln_b, a->model->config.layer_norm_eps);
}

void
cb_encoder_layer(const cb_encoder_layer_args *a)
{
	const cb_layer_weights *lw = a->weights;
	const cb_config *cfg = &a->model->config;
	size_t		h = (size_t) cfg->hidden_size,
				inter = (size_t) cfg->intermediate_size,
				n_rows = a->n_rows;
	/* scratch, as cb_encoder_layer_scratch_floats sized it */
	float	   *q = a->scratch;
	float	   *ctx = q + n_rows * h;
	float	   *mid = ctx + n_rows * h;
	float	   *pack = mid + n_rows * inter;
	float	   *work = pack + product_scratch_floats(a->model, n_rows, a->threads);
	/* the rows this layer outputs: all of x in place, or a subset */
	const cb_query_subset *subset = a->subset;
	float	   *xo = subset ? subset->out : a->x;
	size_t		n_out = subset ? subset->n : n_rows;

	/* 1. keys and values of every row, to the store at row past + r */
	linear(a->x, n_rows, &lw->key_w, lw->key_b, a->k_store + a->past * h, h, pack, a->threads);
	linear(a->x, n_rows, &lw->value_w, lw->value_b, a->v_store + a->past * h, h, pack, a->threads);
	if (subset != NULL)
		for (size_t j = 0; j < n_out; j++)
			memcpy(xo + j * h, a->x + subset->rows[j] * h, h * sizeof(float));
	if (n_out == 0)
		return;

	/* 2. attention of the output rows, its dense + bias + residual + LayerNorm
	 * (q is free once ctx is computed) */
	self_attention(a, xo, n_out, subset ? subset->seq_q_off : a->seq_off, q, ctx, work, pack);
	linear(ctx, n_out, &lw->attn_out_w, NULL, q, h, pack, a->threads);
	cb_kernel_bias_residual_layernorm(xo, q, n_out, h, lw->attn_out_b, lw->attn_ln_w,
									  lw->attn_ln_b, cfg->layer_norm_eps);
	cb_tap_emit(a->tap, "attention_output", a->layer, n_out, h, xo);

	/* 3. feed-forward */
	feed_forward(a, xo, n_out, mid, q, pack);
	cb_tap_emit(a->tap, "layer_output", a->layer, n_out, h, xo);
}

void
cb_lm_head_transform(const cb_model *model, const float *x, size_t n, float *tmp, void *scratch,
					 int threads)
{
	size_t		h = (size_t) model->config.hidden_size;

	linear(x, n, &model->lm_dense_w, NULL, tmp, h, scratch, threads);
	cb_kernel_bias_gelu(tmp, n, h, model->lm_dense_b);
	cb_kernel_layernorm(tmp, n, h, model->lm_ln_w, model->lm_ln_b, model->config.layer_norm_eps);
}

void
cb_lm_head_decode(const cb_model *model, const float *tmp, size_t n, float *logits, size_t ld_logits,
				  void *scratch, int threads)
{
	if (n == 0)
		return;
	linear(tmp, n, &model->lm_decoder_w, model->lm_decoder_b, logits, ld_logits, scratch, threads);
}

