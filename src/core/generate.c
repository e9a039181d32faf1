/*
 * generate.c — KV-cache decoder, greedy search and sampling (see generate.h).
 */
#include "generate.h"
#include "config.h"
#include "encoder_layer.h"
#include "forward.h"
#include "logits_processors.h"
#include "row_ops.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* PRNG: splitmix64 seeding, xoshiro256** */

static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t	z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void
cb_rng_seed(cb_rng *rng, uint64_t seed)
{
	uint64_t	st = seed;

	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&st);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
cb_rng_next(cb_rng *rng)
{
	uint64_t   *s = rng->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double
cb_rng_uniform(cb_rng *rng)
{
	return (double) (cb_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------------------ */
/* KV-cache decoder */

struct cb_decoder
{
	const cb_compute *cc;		/* the caller's, for the decoder's life */
	const cb_model *model;
	int32_t		capacity;		/* tokens the cache holds */
	int32_t		length;			/* tokens fed so far */
	float	   *kv;				/* [L][2][capacity][H] */
	float	   *x;				/* [capacity][H] */
	float	   *head;			/* [H]: lm head transform of the last row */
	float	   *last;			/* [H]: last layer output of the last row */
	float	   *scratch;		/* cb_encoder_layer scratch for capacity rows */
	int32_t    *positions;		/* [capacity] */
	void	   *block;			/* the one allocation holding all of the above */
};

static cb_status
check_causal_model(const cb_model *model, cb_error *err)
{
	cb_status	st = cb_forward_check_model(model, err);

	if (st != CB_OK)
		return st;
	if (model->config.architecture != CB_ARCH_CAUSAL_LM || !model->config.is_decoder)
		return cb_set_error(err, CB_ERR_INVALID,
							"generation needs a causal LM model (CamembertForCausalLM with is_decoder)");
	/* a prompt token and a new one (cb_config_validate refuses less at load) */
	if (cb_config_max_sequence(&model->config) < CB_CONFIG_MIN_SEQUENCE)
		return cb_set_error(err, CB_ERR_FORMAT,
							"max_position_embeddings %d with pad_token_id %d leaves room for fewer than %d tokens",
							model->config.max_position_embeddings, model->config.pad_token_id,
							CB_CONFIG_MIN_SEQUENCE);
	return CB_OK;
}

cb_status
cb_generate_check_model(const cb_model *model, cb_error *err)
{
	return check_causal_model(model, err);
}

/* Longest sequence the position embeddings allow (>= 2 after check_causal_model). */
static int32_t
max_sequence(const cb_config *c)
{
	return (int32_t) cb_config_max_sequence(c);
}

cb_status
cb_decoder_create(const cb_compute *cc, const cb_model *model, int32_t capacity, cb_decoder **out,
				  cb_error *err)
{
	cb_status	st;
	cb_decoder *dec;
	size_t		h,
				cap,
				kv_floats,
				x_floats,
				scratch_floats,
				total,
				tmp;
	char	   *p;

	*out = NULL;
	st = check_causal_model(model, err);
	if (st != CB_OK)
		return st;
	if (capacity <= 0)
		return cb_set_error(err, CB_ERR_INVALID, "decoder capacity %d is not positive", capacity);
	if (capacity > max_sequence(&model->config))
		capacity = max_sequence(&model->config);
	h = (size_t) model->config.hidden_size;
	cap = (size_t) capacity;

	/* one attention worker: a decoding step has one query row */
	scratch_floats = cb_encoder_layer_scratch_floats(model, cap, cap, cap, 1, cb_compute_threads(cc));
	if (scratch_floats == 0 ||
		!cb_mul_size(cap, h, &x_floats) ||
		!cb_mul_size(x_floats, 2 * (size_t) model->config.num_hidden_layers, &kv_floats) ||
		!cb_add_size(kv_floats, x_floats, &total) ||
		!cb_add_size(total, scratch_floats, &total) ||
		!cb_add_size(total, 2 * h + 64, &total) ||
		!cb_add_size(total, cap, &total) ||		/* positions (int32 = float size) */
		!cb_mul_size(total, sizeof(float), &tmp) ||
		!cb_add_size(tmp, sizeof(cb_decoder) + 64, &total))
		return cb_set_error(err, CB_ERR_LIMIT, "a decoder of %d tokens is too large", capacity);

	p = cb_compute_alloc(cc, total);
	if (p == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory allocating a %zu-byte KV cache", total);
	dec = (cb_decoder *) p;
	memset(dec, 0, sizeof(*dec));
	dec->block = p;
	dec->cc = cc;
	dec->model = model;
	dec->capacity = capacity;
	dec->length = 0;
	{
		uintptr_t	a = (uintptr_t) (p + sizeof(cb_decoder));
		float	   *f = (float *) ((a + 63) & ~(uintptr_t) 63);

		dec->kv = f;
		f += kv_floats;
		dec->x = f;
		f += x_floats;
		dec->scratch = f;
		f += scratch_floats;
		dec->head = f;
		f += h;
		dec->last = f;
		f += h;
		dec->positions = (int32_t *) f;
	}
	*out = dec;
	return CB_OK;
}

void
cb_decoder_free(cb_decoder *dec)
{
	if (dec != NULL)
		cb_compute_free(dec->cc, dec->block);
}

void
cb_decoder_reset(cb_decoder *dec)
{
	dec->length = 0;
}

int32_t
cb_decoder_length(const cb_decoder *dec)
{
	return dec->length;
}

int32_t
cb_decoder_capacity(const cb_decoder *dec)
{
	return dec->capacity;
}

cb_status
cb_decoder_copy(cb_decoder *dst, const cb_decoder *src, cb_error *err)
{
	const cb_config *c = &src->model->config;
	size_t		h = (size_t) c->hidden_size,
				rows = (size_t) src->length;

	if (dst == src)
		return CB_OK;
	if (dst->model != src->model)
		return cb_set_error(err, CB_ERR_INVALID, "cannot copy a decoder of another model");
	if (src->length > dst->capacity)
		return cb_set_error(err, CB_ERR_INVALID, "a decoder of %d tokens does not fit in a capacity of %d",
							src->length, dst->capacity);
	for (int32_t l = 0; l < c->num_hidden_layers; l++)
		for (size_t kv = 0; kv < 2; kv++)
			memcpy(dst->kv + ((size_t) l * 2 + kv) * (size_t) dst->capacity * h,
				   src->kv + ((size_t) l * 2 + kv) * (size_t) src->capacity * h,
				   rows * h * sizeof(float));
	dst->length = src->length;
	return CB_OK;
}

/* cb_decoder_append; with head_out, the LM head's transform of the last row
 * (no logits) */
static cb_status
decoder_append(cb_decoder *dec, const int32_t *ids, int32_t n, float *next_logits, float *head_out,
			   cb_error *err)
{
	const cb_model *model = dec->model;
	const cb_config *c = &model->config;
	int			threads = cb_compute_threads(dec->cc);
	size_t		h = (size_t) c->hidden_size,
				cap = (size_t) dec->capacity,
				past = (size_t) dec->length;
	int32_t		count = 0;
	size_t		seq_off[2],
				last_row[1],
				last_off[2];
	cb_query_subset subset;

	if (n <= 0 || ids == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "nothing to append");
	if (n > dec->capacity - dec->length)
		return cb_set_error(err, CB_ERR_INVALID,
							"appending %d tokens to %d exceeds the decoder capacity %d",
							n, dec->length, dec->capacity);
	for (int32_t i = 0; i < n; i++)
	{
		if (ids[i] < 0 || ids[i] >= c->vocab_size)
			return cb_set_error(err, CB_ERR_INVALID, "token id %d is outside the vocabulary [0, %d)",
								ids[i], c->vocab_size);
		/* transformers: (cumsum(ids != pad) + past) * (ids != pad) + pad */
		if (ids[i] != c->pad_token_id)
		{
			int64_t		pos = (int64_t) c->pad_token_id + (int64_t) past + ++count;

			if (pos >= c->max_position_embeddings)
				return cb_set_error(err, CB_ERR_INVALID,
									"position %lld is past max_position_embeddings %d",
									(long long) pos, c->max_position_embeddings);
			dec->positions[i] = (int32_t) pos;
		}
		else
			dec->positions[i] = c->pad_token_id;
	}

	cb_embed_tokens(model, ids, dec->positions, (size_t) n, dec->x);
	seq_off[0] = 0;
	seq_off[1] = (size_t) n;
	/* the last layer computes the last row only (for the logits), or no row
	 * (just the cache) */
	last_row[0] = (size_t) n - 1;
	last_off[0] = 0;
	last_off[1] = next_logits != NULL || head_out != NULL ? 1 : 0;
	subset = (cb_query_subset) {last_off[1], last_row, last_off, dec->last};
	for (int32_t l = 0; l < c->num_hidden_layers; l++)
	{
		float	   *k = dec->kv + (size_t) l * 2 * cap * h;
		float	   *v = k + cap * h;

		cb_encoder_layer_args a = {
			.model = model, .weights = &model->layers[l], .layer = l,
			.x = dec->x, .n_rows = (size_t) n, .n_seq = 1, .seq_off = seq_off,
			.k_store = k, .v_store = v, .past = past, .causal = true,
			.subset = l + 1 == c->num_hidden_layers ? &subset : NULL,
			.scratch = dec->scratch, .workers = 1, .threads = threads,
		};

		if (cb_compute_stopped(dec->cc))
			return cb_compute_canceled(err, "between decoder layers");
		cb_encoder_layer(&a);
	}
	dec->length += n;
	if (next_logits != NULL || head_out != NULL)
	{
		const float *final = c->num_hidden_layers > 0 ? dec->last : dec->x + (size_t) (n - 1) * h;

		/* the layers' scratch is free now (sized for cap >= 1 rows) */
		cb_lm_head_transform(model, final, 1, head_out != NULL ? head_out : dec->head, dec->scratch,
							 threads);
		if (head_out == NULL)
			cb_lm_head_decode(model, dec->head, 1, next_logits, (size_t) c->vocab_size, dec->scratch,
							  threads);
	}
	return CB_OK;
}

cb_status
cb_decoder_append(cb_decoder *dec, const int32_t *ids, int32_t n, float *next_logits, cb_error *err)
{
	return decoder_append(dec, ids, n, next_logits, NULL, err);
}

cb_status
cb_decoder_append_head(cb_decoder *dec, const int32_t *ids, int32_t n, float *head_out, cb_error *err)
{
	if (head_out == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "no output for the LM head transform");
	return decoder_append(dec, ids, n, NULL, head_out, err);
}

/* ------------------------------------------------------------------------ */
/* sampling */

/* Does token a come before token b (larger weight first, then lower id)? */
static inline bool
before(const double *w, int32_t a, int32_t b)
{
	return w[a] > w[b] || (w[a] == w[b] && a < b);
}

/* Heap sort ids[0..n) into "before" order (most likely first). */
static void
sift_down(const double *w, int32_t *ids, size_t root, size_t n)
{
	for (;;)
	{
		size_t		child = 2 * root + 1,
					last = root;
		int32_t		tmp;

		/* a max-heap of the "after" order: its root comes last */
		if (child < n && before(w, ids[last], ids[child]))
			last = child;
		if (child + 1 < n && before(w, ids[last], ids[child + 1]))
			last = child + 1;
		if (last == root)
			return;
		tmp = ids[root];
		ids[root] = ids[last];
		ids[last] = tmp;
		root = last;
	}
}

static void
sort_candidates(const double *w, int32_t *ids, size_t n)
{
	if (n < 2)
		return;
	for (size_t i = n / 2; i-- > 0;)
		sift_down(w, ids, i, n);
	for (size_t end = n - 1; end > 0; end--)
	{
		int32_t		tmp = ids[0];

		ids[0] = ids[end];
		ids[end] = tmp;
		sift_down(w, ids, 0, end);
	}
}

/* min-heap of token ids keyed by score (for the k-th largest score) */
static void
min_heap_down(const double *score, int32_t *heap, size_t i, size_t n)
{
	for (;;)
	{
		size_t		l = 2 * i + 1,
					m = i;
		int32_t		tmp;

		if (l < n && score[heap[l]] < score[heap[m]])
			m = l;
		if (l + 1 < n && score[heap[l + 1]] < score[heap[m]])
			m = l + 1;
		if (m == i)
			return;
		tmp = heap[i];
		heap[i] = heap[m];
		heap[m] = tmp;
		i = m;
	}
}

int32_t
cb_sample_token(const float *logits, int32_t vocab_size, const cb_generate_options *opt,
				cb_rng *rng, int32_t *ids, double *w)
{
	float		t = opt->temperature;
	size_t		v = (size_t) vocab_size,
				best = 0,
				nonzero = 0;
	double		threshold = -INFINITY,
				max,
				total = 0.0,
				u,
				acc;

	/*
	 * temperature: scores = logits / T, computed as (logit - max logit) / T
	 * in double.  The softmax is the same (transformers divides in float and
	 * subtracts the max in the softmax), but nothing can overflow: with a
	 * tiny T, logit / T in float is inf for every token (inf - inf in the
	 * softmax), while here the most likely token gets 0 and the others a
	 * large negative score, so tiny temperatures converge to greedy search.
	 */
	for (size_t i = 1; i < v; i++)
		if (logits[i] > logits[best])
			best = i;
	for (size_t i = 0; i < v; i++)
		w[i] = ((double) logits[i] - (double) logits[best]) / (double) t;
	max = w[best];				/* 0 */

	/* top-k: the k-th largest score is the threshold; ties with it are kept */
	if (opt->top_k > 0 && (size_t) opt->top_k < v)
	{
		size_t		k = (size_t) opt->top_k;

		for (size_t i = 0; i < k; i++)
			ids[i] = (int32_t) i;
		for (size_t i = k / 2; i-- > 0;)
			min_heap_down(w, ids, i, k);
		for (size_t i = k; i < v; i++)
			if (w[i] > w[ids[0]])
			{
				ids[0] = (int32_t) i;
				min_heap_down(w, ids, 0, k);
			}
		threshold = w[ids[0]];
	}

	/* unnormalized softmax weights; 0 for removed tokens */
	for (size_t i = 0; i < v; i++)
	{
		w[i] = w[i] >= threshold ? exp(w[i] - max) : 0.0;
		total += w[i];
		nonzero += w[i] > 0.0;
	}

	/*
	 * top-p: sorted by probability, the least likely tokens whose ascending
	 * cumulative probability is <= 1 - top_p are removed.  Tokens below
	 * (1 - top_p) / n of the mass are removed whatever the order (together
	 * they hold less than 1 - top_p), so only the others are sorted.
	 */
	if (opt->top_p < 1.0f && nonzero > 1)
	{
		double		limit = 1.0 - (double) opt->top_p;
		double		cutoff = limit * total / (double) nonzero;
		double		tail = 0.0;
		size_t		m = 0,
					keep;

		for (size_t i = 0; i < v; i++)
		{
			if (w[i] > 0.0 && w[i] >= cutoff)
				ids[m++] = (int32_t) i;
			else
			{
				tail += w[i];
				w[i] = 0.0;
			}
		}
		sort_candidates(w, ids, m);
		tail /= total;
		keep = m;
		for (size_t j = m; j-- > 1;)
		{
			tail += w[ids[j]] / total;
			if (tail <= limit)
				keep = j;
			else
				break;
		}
		for (size_t j = keep; j < m; j++)
			w[ids[j]] = 0.0;
		total = 0.0;
		for (size_t j = 0; j < keep; j++)
			total += w[ids[j]];
	}

	/* the draw: token ids in increasing order, first cumulative weight > u */
	u = cb_rng_uniform(rng) * total;
	acc = 0.0;
	for (size_t i = 0; i < v; i++)
	{
		if (w[i] <= 0.0)
			continue;
		acc += w[i];
		if (u < acc)
			return (int32_t) i;
		best = i;
	}
	return (int32_t) best;		/* rounding: the last kept token */
}

/* ------------------------------------------------------------------------ */
/* generation */

cb_status
cb_check_logits_processor_options(const cb_generate_options *opt, cb_error *err)
{
	if (!(opt->repetition_penalty > 0.0f) || isinf(opt->repetition_penalty))
		return cb_set_error(err, CB_ERR_INVALID, "repetition_penalty %g is not a finite number > 0",
							(double) opt->repetition_penalty);
	if (opt->no_repeat_ngram_size < 0)
		return cb_set_error(err, CB_ERR_INVALID, "no_repeat_ngram_size %d is negative",
							opt->no_repeat_ngram_size);
	return CB_OK;
}

void
cb_generate_default_options(const cb_model *model, cb_generate_options *opt)
{
	opt->max_new_tokens = 20;
	opt->temperature = 0.0f;
	opt->top_k = 50;
	opt->top_p = 1.0f;
	opt->seed = 0;
	opt->eos_token_id = model != NULL ? model->config.eos_token_id : -1;
	opt->repetition_penalty = 1.0f;
	opt->no_repeat_ngram_size = 0;
}

cb_status
cb_generate(const cb_compute *cc, const cb_model *model, const int32_t *prompt, int32_t prompt_len,
			const cb_generate_options *opt, int32_t *new_ids, int32_t *n_new,
			cb_generate_step_fn on_step, void *arg, cb_error *err)
{
	cb_status	st;
	cb_decoder *dec = NULL;
	float	   *logits = NULL;
	int32_t    *ids = NULL;
	int32_t    *seq = NULL;
	double	   *probs = NULL;
	bool		sample;
	int32_t		limit,
				capacity,
				produced = 0;
	size_t		v;
	cb_rng		rng;

	*n_new = 0;
	st = check_causal_model(model, err);
	if (st != CB_OK)
		return st;
	if (opt == NULL || prompt == NULL || prompt_len <= 0)
		return cb_set_error(err, CB_ERR_INVALID, "generation needs options and a non-empty prompt");
	if (opt->max_new_tokens < 0)
		return cb_set_error(err, CB_ERR_INVALID, "max_new_tokens %d is negative", opt->max_new_tokens);
	if (isnan(opt->temperature) || isinf(opt->temperature))
		return cb_set_error(err, CB_ERR_INVALID, "temperature is not a finite number");
	if (opt->top_k < 0)
		return cb_set_error(err, CB_ERR_INVALID, "top_k %d is negative", opt->top_k);
	if (!(opt->top_p > 0.0f && opt->top_p <= 1.0f))
		return cb_set_error(err, CB_ERR_INVALID, "top_p %g is not in (0, 1]", (double) opt->top_p);
	st = cb_check_logits_processor_options(opt, err);
	if (st != CB_OK)
		return st;
	limit = max_sequence(&model->config);
	if (prompt_len > limit)
		return cb_set_error(err, CB_ERR_INVALID,
							"the prompt has %d tokens, more than the %d the model accepts",
							prompt_len, limit);
	if (opt->max_new_tokens == 0)
		return CB_OK;

	capacity = prompt_len + (opt->max_new_tokens < limit - prompt_len ? opt->max_new_tokens
							 : limit - prompt_len);
	sample = opt->temperature > 0.0f;
	v = (size_t) model->config.vocab_size;

	st = cb_decoder_create(cc, model, capacity, &dec, err);
	if (st != CB_OK)
		return st;
	logits = cb_compute_alloc(cc, v * sizeof(float));
	seq = cb_compute_alloc(cc, (size_t) capacity * sizeof(int32_t));
	if (sample)
	{
		ids = cb_compute_alloc(cc, v * sizeof(int32_t));
		probs = cb_compute_alloc(cc, v * sizeof(double));
	}
	if (logits == NULL || seq == NULL || (sample && (ids == NULL || probs == NULL)))
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "out of memory for generation buffers");
		goto done;
	}
	if (sample)
		cb_rng_seed(&rng, opt->seed);

	memcpy(seq, prompt, (size_t) prompt_len * sizeof(int32_t));
	st = cb_decoder_append(dec, prompt, prompt_len, logits, err);
	if (st != CB_OK)
		goto done;
	for (int32_t step = 0; step < opt->max_new_tokens; step++)
	{
		int32_t		next;

		if (cb_compute_stopped(cc))
		{
			st = cb_compute_canceled(err, "generation");
			goto done;
		}
		if (cb_decoder_length(dec) >= limit)
			break;				/* the next token would have no position */
		if (on_step != NULL)
			on_step(arg, step, logits, (int32_t) v);
		cb_apply_logits_processors(logits, (int32_t) v, seq, prompt_len + produced,
								   opt->repetition_penalty, opt->no_repeat_ngram_size);
		next = sample ? cb_sample_token(logits, (int32_t) v, opt, &rng, ids, probs)
			: (int32_t) cb_kernel_argmax(logits, v);
		seq[prompt_len + produced] = next;
		new_ids[produced++] = next;
		if (next == opt->eos_token_id || produced == opt->max_new_tokens)
			break;
		st = cb_decoder_append(dec, &next, 1, logits, err);
		if (st != CB_OK)
			goto done;
	}
	*n_new = produced;

done:
	cb_compute_free(cc, probs);
	cb_compute_free(cc, ids);
	cb_compute_free(cc, seq);
	cb_compute_free(cc, logits);
	cb_decoder_free(dec);
	return st;
}
