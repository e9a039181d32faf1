/*
 * forward.c — the CamemBERT forward pass (see forward.h): the workspace,
 * the model checks, and cb_forward (plan, layout, pack, embeddings, layers,
 * heads), on the encoder layer of encoder_layer.c.
 *
 * Layout: the attended tokens of the batch are packed into rows
 * x[0 .. N) of a [N][H] matrix, sequence after sequence, on which every
 * layer runs at once (encoder_layer.h).
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
	ws->allocator = NULL;
}

static void
workspace_free(cb_workspace *ws)
{
	cb_assert(!cb_on_helper_thread());
	if (ws->block == NULL)
		return;
	if (ws->allocator != NULL)
		ws->allocator->free(ws->block);
	else
		cb_free(ws->block);
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
cb_workspace_reserve(cb_workspace *ws, const cb_compute *cc, size_t bytes, cb_error *err)
{
	size_t		total;
	void	   *block;

	if (ws->block != NULL && ws->size >= bytes)
		return CB_OK;
	if (!cb_add_size(bytes, WS_ALIGN, &total))
		return cb_set_error(err, CB_ERR_LIMIT, "workspace of %zu bytes is too large", bytes);
	block = cb_compute_alloc(cc, total);
	if (block == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory allocating a %zu-byte forward workspace",
							total);
	workspace_free(ws);
	ws->block = block;
	ws->size = bytes;
	ws->allocator = cc != NULL ? cc->allocator : NULL;
	return CB_OK;
}

void
cb_workspace_release(cb_workspace *ws)
{
	workspace_free(ws);
	cb_workspace_init(ws);
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
/* cb_forward, read top to bottom:
 *
 *   plan        check the model and the request, count the attended rows,
 *               size every buffer (forward_plan)
 *   layout      carve the buffers out of one workspace block
 *   pack        the attended tokens as rows, their position ids
 *   embeddings  word + token type + position, LayerNorm
 *   layers      the encoder layers (the last one on the heads' rows only
 *               when nothing else is wanted)
 *   heads       LM head (all tokens, or some positions), classifier
 */

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

/* What one call computes and how large everything is. */
typedef struct forward_plan
{
	size_t		h,				/* hidden size */
				n_layers,
				batch,			/* B */
				seq_len,		/* T */
				bt,				/* B * T */
				n_rows,			/* attended tokens */
				max_len,		/* longest sequence in rows */
				n_pos,			/* logit positions */
				layer_floats,	/* the layers' scratch (and the heads' products') */
				head_floats,	/* the heads' gathered rows and transforms */
				n_sub;			/* rows the last layer outputs when subset_last */
	bool		subset_last;	/* the last layer computes the heads' rows only */
	int			threads;		/* for the products, attention and GELU */
} forward_plan;

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
	/* the rows the heads read: x, or sub_x through compact */
	const float *final_x;
	const int32_t *final_index; /* row -> index in final_x, NULL: identity */
} forward_layout;

/* ---- plan ---- */

/* Validate the input ids and mask, count rows. */
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

static cb_status
plan_forward(const cb_compute *cc, const cb_model *model, const cb_forward_input *in,
			 const cb_forward_output *out, forward_plan *p, cb_error *err)
{
	cb_status	st;
	size_t		head_rows,
				head_floats;

	memset(p, 0, sizeof(*p));
	if ((st = cb_forward_check_model(model, err)) != CB_OK ||
		(st = check_request(model, in, out, err)) != CB_OK ||
		(st = count_rows(model, in, &p->n_rows, &p->max_len, err)) != CB_OK)
		return st;
	p->h = (size_t) model->config.hidden_size;
	p->n_layers = (size_t) model->config.num_hidden_layers;
	p->batch = (size_t) in->batch_size;
	p->seq_len = (size_t) in->seq_len;
	p->bt = p->batch * p->seq_len;
	p->n_pos = (size_t) out->n_logit_positions;

	/* scratch sizes (n_rows <= bt <= INT32_MAX, so these products fit) */
	p->threads = cb_compute_threads(cc);
	p->layer_floats = cb_encoder_layer_scratch_floats(model, p->n_rows, p->max_len, p->max_len,
													  p->threads, p->threads);
	if (p->layer_floats == 0)
		return cb_set_error(err, CB_ERR_LIMIT, "a batch of %zu tokens is too large", p->n_rows);
	/* the heads' products use the layers' scratch once the layers are done */
	head_rows = p->n_pos > p->n_rows ? p->n_pos : p->n_rows;
	if (head_rows < p->batch)
		head_rows = p->batch;
	head_floats = (cb_model_product_scratch_bytes(model, head_rows, p->threads) + sizeof(float) - 1) /
		sizeof(float);
	if (head_floats > p->layer_floats)
		p->layer_floats = head_floats;
	if (out->token_logits != NULL)
		p->head_floats = p->n_rows * p->h;
	if (p->n_pos > 0)
		p->head_floats += 2 * p->n_pos * p->h;
	if (out->class_logits != NULL)
		p->head_floats += 2 * p->batch * p->h;

	/* When nothing but the heads' rows is wanted from the last layer, it
	 * computes those rows only (a classifier needs one row per sequence). */
	p->subset_last = p->n_layers > 0 && out->hidden_states == NULL &&
		out->last_hidden_state == NULL && out->attentions == NULL &&
		out->token_logits == NULL && (out->class_logits != NULL || p->n_pos > 0);
	if (p->subset_last)
	{
		p->n_sub = p->n_pos + (out->class_logits != NULL ? p->batch : 0);
		if (p->n_sub > p->n_rows)
			p->n_sub = p->n_rows;
	}
	return CB_OK;
}

/* ---- layout ---- */

static void
carve_layout(carve *cv, const forward_plan *p, forward_layout *fl)
{
	size_t		n_rows = p->n_rows,
				n_sub = p->n_sub;

	fl->pb.ids = carve_take(cv, n_rows, sizeof(int32_t));
	fl->pb.positions = carve_take(cv, n_rows, sizeof(int32_t));
	fl->pb.row_batch = carve_take(cv, n_rows, sizeof(int32_t));
	fl->pb.row_time = carve_take(cv, n_rows, sizeof(int32_t));
	fl->pb.seq_off = carve_take(cv, p->batch + 1, sizeof(size_t));
	fl->pb.flat_to_row = carve_take(cv, p->bt, sizeof(int32_t));
	fl->x = carve_take(cv, n_rows, p->h * sizeof(float));
	fl->k = carve_take(cv, n_rows, p->h * sizeof(float));
	fl->v = carve_take(cv, n_rows, p->h * sizeof(float));
	fl->scratch = carve_take(cv, p->layer_floats, sizeof(float));
	fl->head = carve_take(cv, p->head_floats > 0 ? p->head_floats : 1, sizeof(float));
	fl->compact = carve_take(cv, n_sub > 0 ? n_rows : 1, sizeof(int32_t));
	fl->sub_rows = carve_take(cv, n_sub > 0 ? n_sub : 1, sizeof(size_t));
	fl->sub_off = carve_take(cv, n_sub > 0 ? p->batch + 1 : 1, sizeof(size_t));
	fl->sub_x = carve_take(cv, n_sub > 0 ? n_sub : 1, p->h * sizeof(float));
}

/* Size the buffers, reserve the workspace, point the layout into it. */
static cb_status
layout_forward(const cb_compute *cc, const forward_plan *p, cb_workspace *ws, forward_layout *fl,
			   cb_error *err)
{
	carve		cv;
	cb_status	st;

	memset(&cv, 0, sizeof(cv));
	memset(fl, 0, sizeof(*fl));
	carve_layout(&cv, p, fl);
	if (cv.overflow)
		return cb_set_error(err, CB_ERR_LIMIT, "the workspace for %zu tokens is too large", p->n_rows);
	st = cb_workspace_reserve(ws, cc, cv.used, err);
	if (st != CB_OK)
		return st;
	memset(&cv, 0, sizeof(cv));
	cv.base = cb_workspace_data(ws);
	carve_layout(&cv, p, fl);
	fl->pb.batch = p->batch;
	fl->pb.seq_len = p->seq_len;
	fl->pb.n_rows = p->n_rows;
	fl->pb.max_len = p->max_len;
	return CB_OK;
}

/* ---- pack ---- */

/* The packed rows, their position ids, and the maps. */
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

static void
pack_batch(const cb_model *model, const cb_forward_input *in, const cb_forward_output *out,
		   forward_plan *p, forward_layout *fl)
{
	fill_rows(model, in, &fl->pb);
	fl->final_x = fl->x;
	fl->final_index = NULL;
	if (p->subset_last)
	{
		p->n_sub = select_head_rows(&fl->pb, out, fl);
		fl->final_x = fl->sub_x;
		fl->final_index = fl->compact;
	}
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

/* ---- embeddings ---- */

static void
embeddings(const cb_model *model, const forward_plan *p, const forward_layout *fl,
		   const cb_forward_output *out)
{
	cb_embed_tokens(model, fl->pb.ids, fl->pb.positions, p->n_rows, fl->x);
	cb_tap_emit(&out->tap, "embeddings", -1, p->n_rows, p->h, fl->x);
	if (out->hidden_states != NULL)
		scatter_rows(&fl->pb, fl->x, p->h, out->hidden_states);
}

/* ---- layers ---- */

static cb_status
encoder_layers(const cb_compute *cc, const cb_model *model, const forward_plan *p,
			   const forward_layout *fl, const cb_forward_output *out, cb_error *err)
{
	size_t		heads = (size_t) model->config.num_attention_heads;
	size_t		att_per_layer = p->bt * heads * p->seq_len;
	cb_query_subset subset = {p->n_sub, fl->sub_rows, fl->sub_off, fl->sub_x};
	cb_attention_sink sink = {NULL, (int32_t) p->seq_len, (int32_t) heads,
		fl->pb.row_batch, fl->pb.row_time};

	if (out->attentions != NULL)
		memset(out->attentions, 0, p->n_layers * att_per_layer * sizeof(float));
	for (size_t l = 0; l < p->n_layers; l++)
	{
		bool		last = l + 1 == p->n_layers;
		cb_encoder_layer_args a = {
			.model = model,
			.weights = &model->layers[l],
			.layer = (int) l,
			.x = fl->x,
			.n_rows = p->n_rows,
			.n_seq = p->batch,
			.seq_off = fl->pb.seq_off,
			.k_store = fl->k,
			.v_store = fl->v,
			.past = 0,
			.causal = model->config.is_decoder != 0,
			.sink = out->attentions != NULL ? &sink : NULL,
			.subset = p->subset_last && last ? &subset : NULL,
			.scratch = fl->scratch,
			.workers = p->threads,
			.threads = p->threads,
			.tap = &out->tap,
		};

		if (cb_compute_stopped(cc))
			return cb_compute_canceled(err, "between encoder layers");
		if (out->attentions != NULL)
			sink.probs = out->attentions + l * att_per_layer;
		cb_encoder_layer(&a);
		if (out->hidden_states != NULL)
			scatter_rows(&fl->pb, fl->x, p->h, out->hidden_states + (l + 1) * p->bt * p->h);
	}
	if (cb_compute_stopped(cc))
		return cb_compute_canceled(err, "after the encoder layers");
	if (out->last_hidden_state != NULL)
		scatter_rows(&fl->pb, fl->x, p->h, out->last_hidden_state);
	return CB_OK;
}

/* ---- heads ---- */

/* LM head: logits at every attended token, zeros elsewhere. */
static void
token_logits_all(const cb_model *model, const packed_batch *pb, const float *x, float *tmp,
				 float *logits, void *scratch, int threads, const cb_tap *tap)
{
	size_t		v = (size_t) model->config.vocab_size;

	cb_lm_head_transform(model, x, pb->n_rows, tmp, scratch, threads);
	cb_tap_emit(tap, "lm_head_transform", -1, pb->n_rows, (size_t) model->config.hidden_size, tmp);
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
						  scratch, threads);
		r += run;
	}
	for (size_t f = 0; f < pb->batch * pb->seq_len; f++)
		if (pb->flat_to_row[f] < 0)
			memset(logits + f * v, 0, v * sizeof(float));
}

/* The row the heads read for packed row r. */
static const float *
final_row(const forward_layout *fl, size_t r, size_t h)
{
	return fl->final_x + (fl->final_index ? (size_t) fl->final_index[r] : r) * h;
}

/* LM head at the listed positions only (fill-mask). */
static void
position_logits(const cb_model *model, const forward_plan *p, const forward_layout *fl,
				const cb_forward_output *out, float *gathered)
{
	float	   *tmp = gathered + p->n_pos * p->h;

	for (size_t i = 0; i < p->n_pos; i++)
		memcpy(gathered + i * p->h,
			   final_row(fl, (size_t) fl->pb.flat_to_row[out->logit_positions[i]], p->h),
			   p->h * sizeof(float));
	cb_lm_head_transform(model, gathered, p->n_pos, tmp, fl->scratch, p->threads);
	cb_tap_emit(&out->tap, "lm_head_transform", -1, p->n_pos, p->h, tmp);
	cb_lm_head_decode(model, tmp, p->n_pos, out->position_logits,
					  (size_t) model->config.vocab_size, fl->scratch, p->threads);
}

/* Classification head: features[:, 0, :] → dense → tanh → out_proj.
 * (count_rows made sure token 0 is attended.) */
static void
class_logits(const cb_model *model, const forward_plan *p, const forward_layout *fl,
			 const cb_forward_output *out, float *gathered)
{
	float	   *tmp = gathered + p->batch * p->h;

	for (size_t b = 0; b < p->batch; b++)
		memcpy(gathered + b * p->h, final_row(fl, fl->pb.seq_off[b], p->h), p->h * sizeof(float));
	cb_matrix_product(gathered, p->h, &model->cls_dense_w, NULL, tmp, p->h, p->batch, fl->scratch,
					  p->threads);
	cb_kernel_bias_tanh(tmp, p->batch, p->h, model->cls_dense_b);
	cb_tap_emit(&out->tap, "classifier_dense", -1, p->batch, p->h, tmp);
	cb_matrix_product(tmp, p->h, &model->cls_out_w, model->cls_out_b, out->class_logits,
					  (size_t) model->config.num_labels, p->batch, fl->scratch, p->threads);
}

static void
heads(const cb_model *model, const forward_plan *p, const forward_layout *fl,
	  const cb_forward_output *out)
{
	float	   *head = fl->head;	/* carved for the heads asked for, in this order */

	if (out->token_logits != NULL)
	{
		token_logits_all(model, &fl->pb, fl->x, head, out->token_logits, fl->scratch, p->threads,
						 &out->tap);
		head += p->n_rows * p->h;
	}
	if (p->n_pos > 0)
	{
		position_logits(model, p, fl, out, head);
		head += 2 * p->n_pos * p->h;
	}
	if (out->class_logits != NULL)
		class_logits(model, p, fl, out, head);
}

/* ---- the forward pass ---- */

cb_status
cb_forward(const cb_compute *cc, const cb_model *model, const cb_forward_input *input,
		   const cb_forward_output *output, cb_workspace *workspace, cb_error *err)
{
	forward_plan plan;
	forward_layout fl;
	cb_workspace local;
	cb_workspace *ws = workspace != NULL ? workspace : &local;
	cb_status	st;

	st = plan_forward(cc, model, input, output, &plan, err);
	if (st != CB_OK)
		return st;
	if (workspace == NULL)
		cb_workspace_init(&local);
	st = layout_forward(cc, &plan, ws, &fl, err);
	if (st != CB_OK)
		return st;

	pack_batch(model, input, output, &plan, &fl);
	embeddings(model, &plan, &fl, output);
	st = encoder_layers(cc, model, &plan, &fl, output, err);
	if (st == CB_OK)
		heads(model, &plan, &fl, output);

	if (workspace == NULL)
		cb_workspace_release(&local);
	return st;
}
