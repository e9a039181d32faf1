/*
 * test_generate.c — KV-cache decoding, greedy generation and sampling of the
 * causal LM against test/golden/models/clm/expected/generate.json (transformers
 * generate(), greedy, max_new_tokens=20, 5 prompts x 2 encodings).
 */
#include "unit.h"
#include "support/ut_compute.h"
#include "support/npy.h"
#include "support/golden_model.h"
#include "support/ut_alloc.h"

#include "forward.h"
#include "generate.h"
#include "beam_search.h"
#include "row_ops.h"

#define CLM "build/golden/models/clm/"
#define TOL 1e-4
#define MAX_STEPS 20
#define MAX_SEQ 64

static ut_loaded_model clm;
static const cb_model *model;

/* what the step callback records */
typedef struct step_log
{
	int32_t		steps;
	float	   *logits;			/* [MAX_STEPS][V] */
} step_log;

static void
record_step(void *arg, int32_t step, const float *logits, int32_t vocab)
{
	step_log   *log = arg;

	if (step >= 0 && step < MAX_STEPS)
	{
		memcpy(log->logits + (size_t) step * (size_t) vocab, logits, (size_t) vocab * sizeof(float));
		if (step + 1 > log->steps)
			log->steps = step + 1;
	}
}

static void
report(const char *what, const ut_diff *d, size_t expected)
{
	printf("  clm %-36s %7zu values, max |d| %.3g\n", what, d->count, d->max_abs);
	CHECK_MSG(d->count == expected, "%s: compared %zu values, expected %zu", what, d->count, expected);
	CHECK_MSG(d->over == 0 && d->count > 0, "%s: %zu of %zu over %g (max %.3g)", what, d->over,
			  d->count, d->tol, d->max_abs);
}

/* Top-5 of a golden step: logits by id, ids modulo near ties, logsumexp. */
static void
check_step(const cb_json_value *step, const float *logits, size_t v, ut_diff *d_top, ut_diff *d_lse,
		   size_t *id_mismatch, const char *where)
{
	int32_t		ids[5];
	float		want[5];
	double		lse;

	CHECK(ut_json_ints(cb_json_get(step, "top5_ids"), ids, 5) == 5);
	CHECK(ut_json_floats(cb_json_get(step, "top5_logits"), want, 5) == 5);
	for (int k = 0; k < 5; k++)
	{
		ut_diff_add1(d_top, logits[ids[k]], want[k], where);
		/* nothing outside the golden top-5 beats its 5th entry by more than TOL */
	}
	for (size_t i = 0; i < v; i++)
	{
		bool		in_top = false;

		for (int k = 0; k < 5; k++)
			in_top |= ids[k] == (int32_t) i;
		if (!in_top && logits[i] > want[4] + (float) TOL)
			(*id_mismatch)++;
	}
	lse = ut_json_number(step, "logsumexp");
	if (d_lse != NULL && !isnan(lse))
		ut_diff_add1(d_lse, cb_kernel_logsumexp(logits, v), lse, where);
}

/* ------------------------------------------------------------------------ */

static void
test_rng(void)
{
	cb_rng		r;
	/* splitmix64 seeding + xoshiro256**, from an independent Python
	 * implementation of the algorithm documented in generate.h */
	static const uint64_t seed0[3] = {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL, 0x1a5f849d4933e6e0ULL};
	static const uint64_t seed42[3] = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL, 0xae17533239e499a1ULL};
	double		u;

	cb_rng_seed(&r, 0);
	for (int i = 0; i < 3; i++)
		CHECK(cb_rng_next(&r) == seed0[i]);
	cb_rng_seed(&r, 42);
	for (int i = 0; i < 3; i++)
		CHECK(cb_rng_next(&r) == seed42[i]);
	cb_rng_seed(&r, 42);
	u = cb_rng_uniform(&r);
	CHECK(u == (double) (seed42[0] >> 11) * 0x1.0p-53);
	for (int i = 0; i < 1000; i++)
	{
		u = cb_rng_uniform(&r);
		CHECK(u >= 0.0 && u < 1.0);
	}
}

/* The warpers on a small vocabulary: which tokens can come out. */
static void
test_sample_warpers(void)
{
	/* softmax of these: ~ 0.5, 0.3, 0.15, 0.05 */
	float		logits[4];
	const double p[4] = {0.5, 0.3, 0.15, 0.05};
	int32_t		ids[4];
	double		probs[4];
	cb_generate_options opt;
	cb_rng		r;
	int			counts[4];

	for (int i = 0; i < 4; i++)
		logits[i] = (float) log(p[i]);
	cb_generate_default_options(NULL, &opt);
	opt.temperature = 1.0f;

	/* no filter: every token, in proportion */
	opt.top_k = 0;
	memset(counts, 0, sizeof(counts));
	cb_rng_seed(&r, 7);
	for (int i = 0; i < 20000; i++)
		counts[cb_sample_token(logits, 4, &opt, &r, ids, probs)]++;
	for (int i = 0; i < 4; i++)
		CHECK_NEAR(counts[i] / 20000.0, p[i], 0.015);

	/* top_k = 2 */
	opt.top_k = 2;
	memset(counts, 0, sizeof(counts));
	for (int i = 0; i < 5000; i++)
		counts[cb_sample_token(logits, 4, &opt, &r, ids, probs)]++;
	CHECK(counts[2] == 0 && counts[3] == 0);
	CHECK_NEAR(counts[0] / 5000.0, 0.5 / 0.8, 0.03);

	/* top_p = 0.75: ascending cumsum 0.05, 0.2, 0.5, 1 -> tokens 2, 3 removed */
	opt.top_k = 0;
	opt.top_p = 0.75f;
	memset(counts, 0, sizeof(counts));
	for (int i = 0; i < 5000; i++)
		counts[cb_sample_token(logits, 4, &opt, &r, ids, probs)]++;
	CHECK(counts[2] == 0 && counts[3] == 0 && counts[1] > 0);
	/* top_p = 0.9: only token 3 removed (0.05 <= 0.1 < 0.2) */
	opt.top_p = 0.9f;
	memset(counts, 0, sizeof(counts));
	for (int i = 0; i < 5000; i++)
		counts[cb_sample_token(logits, 4, &opt, &r, ids, probs)]++;
	CHECK(counts[3] == 0 && counts[2] > 0);
	/* a tiny top_p keeps the most likely token */
	opt.top_p = 0.01f;
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(cb_sample_token(logits, 4, &opt, &r, ids, probs), 0);

	/* temperature: low flattens nothing, high flattens the distribution */
	opt.top_p = 1.0f;
	opt.temperature = 0.05f;
	memset(counts, 0, sizeof(counts));
	for (int i = 0; i < 2000; i++)
		counts[cb_sample_token(logits, 4, &opt, &r, ids, probs)]++;
	CHECK(counts[0] > 1990);
	opt.temperature = 100.0f;
	memset(counts, 0, sizeof(counts));
	for (int i = 0; i < 20000; i++)
		counts[cb_sample_token(logits, 4, &opt, &r, ids, probs)]++;
	for (int i = 0; i < 4; i++)
		CHECK_NEAR(counts[i] / 20000.0, 0.25, 0.02);

	/* top-k keeps ties with the k-th score (transformers: scores < kth are removed) */
	logits[0] = 1.0f;
	logits[1] = 0.5f;
	logits[2] = 0.5f;
	logits[3] = 0.0f;
	opt.temperature = 1.0f;
	opt.top_k = 2;
	memset(counts, 0, sizeof(counts));
	for (int i = 0; i < 3000; i++)
		counts[cb_sample_token(logits, 4, &opt, &r, ids, probs)]++;
	CHECK(counts[1] > 0 && counts[2] > 0 && counts[3] == 0);
}

/* top-k + top-p on 1000 tokens against a brute-force transformers-style
 * filter (full sort, ascending cumulative sum). */
static int
cmp_desc(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x < y) - (x > y);
}

static void
test_sample_nucleus_bruteforce(void)
{
	enum
	{
		V = 1000
	};
	static float logits[V];
	static int32_t ids[V];
	static double scratch[V],
				sorted[V];
	static int	seen[V];
	cb_rng		r;
	cb_generate_options opt;
	const float top_ps[] = {0.3f, 0.8f, 0.95f};
	const int32_t top_ks[] = {0, 40};

	cb_rng_seed(&r, 2024);
	for (int i = 0; i < V; i++)
		logits[i] = (float) (4.0 * cb_rng_uniform(&r) - 2.0);
	cb_generate_default_options(NULL, &opt);
	opt.temperature = 0.7f;
	for (size_t a = 0; a < sizeof(top_ps) / sizeof(top_ps[0]); a++)
		for (size_t b = 0; b < sizeof(top_ks) / sizeof(top_ks[0]); b++)
		{
			double		max = -INFINITY,
						total = 0.0,
						cum = 0.0,
						kth = -INFINITY,
						smallest_kept;
			int			outside = 0,
						distinct = 0,
						expected_kept = 0;

			opt.top_p = top_ps[a];
			opt.top_k = top_ks[b];
			/* brute force: scores, top-k threshold, softmax, ascending cumsum */
			for (int i = 0; i < V; i++)
			{
				sorted[i] = (double) (logits[i] / opt.temperature);
				if (sorted[i] > max)
					max = sorted[i];
			}
			qsort(sorted, V, sizeof(double), cmp_desc);
			if (opt.top_k > 0)
				kth = sorted[opt.top_k - 1];
			for (int i = 0; i < V; i++)
				if (sorted[i] >= kth)
					total += exp(sorted[i] - max);
			smallest_kept = sorted[0];
			for (int i = V - 1; i >= 0; i--)
			{
				if (sorted[i] < kth)
					continue;
				cum += exp(sorted[i] - max) / total;
				if (cum > 1.0 - opt.top_p || i == 0)
				{
					smallest_kept = sorted[i];
					break;
				}
			}
			for (int i = 0; i < V; i++)
				expected_kept += sorted[i] >= smallest_kept;
			memset(seen, 0, sizeof(seen));
			for (int n = 0; n < 20000; n++)
			{
				int32_t		tok = cb_sample_token(logits, V, &opt, &r, ids, scratch);

				if ((double) (logits[tok] / opt.temperature) < smallest_kept)
					outside++;
				if (!seen[tok]++)
					distinct++;
			}
			CHECK_MSG(outside == 0, "top_p %g top_k %d: %d draws outside the nucleus", (double) opt.top_p,
					  opt.top_k, outside);
			/* every kept token is likely enough to show up in 20000 draws */
			CHECK_MSG(distinct == expected_kept, "top_p %g top_k %d: %d distinct tokens drawn, %d kept",
					  (double) opt.top_p, opt.top_k, distinct, expected_kept);
		}
}

/* ------------------------------------------------------------------------ */

static void
test_greedy_golden(void)
{
	cb_json_doc *doc = ut_json_load(CLM "expected/generate.json");
	const cb_json_value *items = doc ? cb_json_get(cb_json_root(doc), "items") : NULL;
	size_t		v = (size_t) model->config.vocab_size;
	step_log	log = {0, malloc(MAX_STEPS * v * sizeof(float))};
	float	   *full = malloc(v * sizeof(float));
	ut_diff		d_top,
				d_lse,
				d_nocache,
				d_step0,
				d_recompute;
	size_t		id_mismatch = 0,
				steps_total = 0,
				nocache_steps = 0,
				ids_equal = 0;
	ut_npy		step0;
	cb_workspace ws;

	cb_workspace_init(&ws);
	ut_diff_init(&d_top, TOL);
	ut_diff_init(&d_lse, TOL);
	ut_diff_init(&d_nocache, TOL);
	ut_diff_init(&d_step0, TOL);
	ut_diff_init(&d_recompute, 5e-5);
	CHECK(items != NULL && items->type == CB_JSON_ARRAY && items->count == 10);
	CHECK(ut_npy_load(CLM "expected/generate_step0_logits.npy", &step0) == 0);
	CHECK(step0.count == v);
	if (items == NULL || log.logits == NULL || step0.count != v)
		goto done;

	for (size_t it = 0; it < items->count; it++)
	{
		const cb_json_value *item = &items->items[it];
		const cb_json_value *steps = cb_json_get(item, "steps");
		const cb_json_value *nocache = cb_json_get(item, "steps_use_cache_false_first5");
		int32_t		prompt[MAX_SEQ],
					want[MAX_STEPS],
					got[MAX_STEPS],
					seq[MAX_SEQ + MAX_STEPS];
		long		np = ut_json_ints(cb_json_get(item, "prompt_ids"), prompt, MAX_SEQ);
		long		nw = ut_json_ints(cb_json_get(item, "new_token_ids"), want, MAX_STEPS);
		int32_t		n_new = -1;
		cb_generate_options opt;
		cb_error	err;
		char		where[96];
		const cb_json_value *mode = cb_json_get(item, "prompt_mode");

		CHECK(np > 0 && nw == MAX_STEPS);
		cb_generate_default_options(model, &opt);
		opt.max_new_tokens = MAX_STEPS;
		log.steps = 0;
		CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, (int32_t) np, &opt, got, &n_new, record_step, &log, &err),
					 CB_OK);
		CHECK_EQ_INT(n_new, nw);
		CHECK_EQ_INT(log.steps, nw);
		if (n_new == nw && memcmp(got, want, sizeof(int32_t) * (size_t) nw) == 0)
			ids_equal++;
		else
			CHECK_MSG(false, "item %zu (%s): generated ids differ from transformers", it,
					  mode ? mode->string : "?");

		for (int32_t s = 0; s < log.steps && steps && (size_t) s < steps->count; s++)
		{
			snprintf(where, sizeof(where), "item %zu step %d", it, s);
			check_step(&steps->items[s], log.logits + (size_t) s * v, v, &d_top, &d_lse, &id_mismatch, where);
			steps_total++;
		}
		for (size_t s = 0; nocache && s < nocache->count && (int32_t) s < log.steps; s++)
		{
			snprintf(where, sizeof(where), "item %zu no-cache step %zu", it, s);
			check_step(&nocache->items[s], log.logits + s * v, v, &d_nocache, NULL, &id_mismatch, where);
			nocache_steps++;
		}
		if (it == 0)
			ut_diff_add(&d_step0, log.logits, step0.f, v, "step 0 logits");

		/* cached steps equal a full recomputation of the sequence so far */
		memcpy(seq, prompt, sizeof(int32_t) * (size_t) np);
		memcpy(seq + np, got, sizeof(int32_t) * (size_t) n_new);
		for (int32_t s = 0; s < log.steps; s++)
		{
			int32_t		len = (int32_t) np + s;
			int32_t		last = len - 1;
			cb_forward_input in = {1, len, seq, NULL};
			cb_forward_output out;

			memset(&out, 0, sizeof(out));
			out.logit_positions = &last;
			out.n_logit_positions = 1;
			out.position_logits = full;
			CHECK_EQ_INT(cb_forward(ut_compute(), model, &in, &out, &ws, &err), CB_OK);
			snprintf(where, sizeof(where), "item %zu step %d recomputed", it, s);
			ut_diff_add(&d_recompute, log.logits + (size_t) s * v, full, v, where);
		}
	}
	printf("  clm greedy: %zu of 10 generations with identical ids\n", ids_equal);
	CHECK_EQ_INT(ids_equal, 10);
	report("step top-5 logits (by id)", &d_top, 10 * MAX_STEPS * 5);
	report("step logsumexp", &d_lse, 10 * MAX_STEPS);
	report("use_cache=False top-5 (first 5 steps)", &d_nocache, 10 * 5 * 5);
	report("generate_step0_logits", &d_step0, v);
	report("cached vs recomputed step logits", &d_recompute, 10 * MAX_STEPS * v);
	CHECK_EQ_INT(steps_total, 10 * MAX_STEPS);
	CHECK_EQ_INT(nocache_steps, 10 * 5);
	CHECK_EQ_INT(id_mismatch, 0);

done:
	cb_workspace_release(&ws);
	ut_npy_free(&step0);
	free(log.logits);
	free(full);
	cb_json_free(doc);
}

/* Sampling on the real model: reproducible from a seed. */
static void
test_sampling_model(void)
{
	int32_t		prompt[] = {5, 449, 2695, 123, 983};
	int32_t		a[30],
				b[30],
				greedy[30];
	int32_t		na,
				nb,
				ng;
	cb_generate_options opt;
	cb_error	err;

	cb_generate_default_options(model, &opt);
	opt.max_new_tokens = 30;
	opt.eos_token_id = -1;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, greedy, &ng, NULL, NULL, &err), CB_OK);
	CHECK_EQ_INT(ng, 30);

	opt.temperature = 1.0f;
	opt.top_k = 50;
	opt.top_p = 0.95f;
	opt.seed = 1234;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, a, &na, NULL, NULL, &err), CB_OK);
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, b, &nb, NULL, NULL, &err), CB_OK);
	CHECK(na == 30 && nb == 30 && memcmp(a, b, sizeof(a)) == 0);
	opt.seed = 1235;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, b, &nb, NULL, NULL, &err), CB_OK);
	CHECK(nb == 30 && memcmp(a, b, sizeof(a)) != 0);
	CHECK(memcmp(a, greedy, sizeof(a)) != 0);

	/* top_k = 1 sampling is greedy, whatever the seed and temperature */
	opt.top_k = 1;
	opt.top_p = 1.0f;
	opt.temperature = 1.7f;
	opt.seed = 99;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, b, &nb, NULL, NULL, &err), CB_OK);
	CHECK(nb == 30 && memcmp(b, greedy, sizeof(b)) == 0);

	/* eos stops generation (ids include the eos) */
	opt = (cb_generate_options) {0};
	cb_generate_default_options(model, &opt);
	opt.max_new_tokens = 30;
	opt.eos_token_id = greedy[3];
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, b, &nb, NULL, NULL, &err), CB_OK);
	{
		int32_t		first = 0;

		while (greedy[first] != greedy[3])
			first++;
		CHECK_EQ_INT(nb, first + 1);
	}
	opt.max_new_tokens = 0;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, b, &nb, NULL, NULL, &err), CB_OK);
	CHECK_EQ_INT(nb, 0);

	/* bad options */
	cb_generate_default_options(model, &opt);
	opt.top_p = 0.0f;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, b, &nb, NULL, NULL, &err), CB_ERR_INVALID);
	opt.top_p = 1.0f;
	opt.top_k = -1;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, b, &nb, NULL, NULL, &err), CB_ERR_INVALID);
	opt.top_k = 0;
	opt.max_new_tokens = -1;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 5, &opt, b, &nb, NULL, NULL, &err), CB_ERR_INVALID);
	opt.max_new_tokens = 3;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 0, &opt, b, &nb, NULL, NULL, &err), CB_ERR_INVALID);
}

/* The decoder: chunked appends equal one append; limits. */
static void
test_decoder(void)
{
	size_t		v = (size_t) model->config.vocab_size;
	int32_t		ids[] = {5, 280, 113, 109, 7, 326, 186, 44};
	float	   *one = malloc(v * sizeof(float)),
			   *two = malloc(v * sizeof(float));
	cb_decoder *dec = NULL;
	cb_error	err;
	ut_diff		d;
	int32_t		limit = model->config.max_position_embeddings - model->config.pad_token_id - 1;

	CHECK_EQ_INT(cb_decoder_create(ut_compute(), model, 8, &dec, &err), CB_OK);
	if (dec == NULL)
		return;
	CHECK_EQ_INT(cb_decoder_append(dec, ids, 8, one, &err), CB_OK);
	CHECK_EQ_INT(cb_decoder_length(dec), 8);
	CHECK_EQ_INT(cb_decoder_append(dec, ids, 1, NULL, &err), CB_ERR_INVALID);	/* full */
	cb_decoder_reset(dec);
	CHECK_EQ_INT(cb_decoder_append(dec, ids, 3, NULL, &err), CB_OK);
	CHECK_EQ_INT(cb_decoder_append(dec, ids + 3, 1, NULL, &err), CB_OK);
	CHECK_EQ_INT(cb_decoder_append(dec, ids + 4, 4, two, &err), CB_OK);
	ut_diff_init(&d, 5e-5);
	ut_diff_add(&d, two, one, v, "chunked append");
	report("chunked vs one-shot append", &d, v);
	cb_decoder_reset(dec);
	{
		int32_t		bad = (int32_t) v;

		CHECK_EQ_INT(cb_decoder_append(dec, &bad, 1, NULL, &err), CB_ERR_INVALID);
	}
	cb_decoder_free(dec);

	/* capacity is clamped to the position limit */
	CHECK_EQ_INT(cb_decoder_create(ut_compute(), model, 100000, &dec, &err), CB_OK);
	CHECK_EQ_INT(cb_decoder_capacity(dec), limit);
	cb_decoder_free(dec);

	/* the mlm model cannot generate */
	{
		ut_loaded_model mlm;

		if (ut_load_model("build/golden/models/mlm", &mlm) == 0)
		{
			CHECK_EQ_INT(cb_decoder_create(ut_compute(), &mlm.model, 8, &dec, &err), CB_ERR_INVALID);
			ut_unload_model(&mlm);
		}
		else
			CHECK_MSG(false, "cannot load the mlm model");
	}

	/* generation stops at the longest sequence the positions allow */
	{
		int32_t    *prompt = malloc((size_t) limit * sizeof(int32_t));
		int32_t		out[8],
					n = -1;
		cb_generate_options opt;

		for (int32_t i = 0; i < limit; i++)
			prompt[i] = 10 + i;
		cb_generate_default_options(model, &opt);
		opt.max_new_tokens = 8;
		opt.eos_token_id = -1;
		CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, limit - 3, &opt, out, &n, NULL, NULL, &err), CB_OK);
		CHECK_EQ_INT(n, 3);
		CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, limit, &opt, out, &n, NULL, NULL, &err), CB_OK);
		CHECK_EQ_INT(n, 0);
		free(prompt);
	}
	free(one);
	free(two);
}

static int	interrupt_calls;

/* the compute context's stop check: counts, says stop at the *arg-th call (0: never) */
static bool
count_stop(void *arg)
{
	const int  *stop_at = arg;

	interrupt_calls++;
	return *stop_at > 0 && interrupt_calls >= *stop_at;
}

/* cb_generate and cb_beam_search run the context's stop check at every step
 * and allocate through its allocator, freeing what they allocate; stopped,
 * they return CB_ERR_CANCELED and leave nothing allocated */
static void
test_hooks(void)
{
	int32_t		prompt[] = {5, 280, 113, 109};
	int32_t		out[2 * 10],
				n = 0,
				n_beams[2],
				n_ret = 0;
	cb_generate_options opt;
	cb_beam_options bo;
	cb_error	err;
	int			stop_at = 0;
	cb_compute	cc = *ut_compute();

	cc.allocator = &ut_counting_allocator;
	cc.stop = count_stop;
	cc.stop_arg = &stop_at;
	cb_generate_default_options(model, &opt);
	opt.max_new_tokens = 10;
	opt.eos_token_id = -1;
	opt.temperature = 0.8f;
	interrupt_calls = 0;
	ut_alloc_reset();
	CHECK_EQ_INT(cb_generate(&cc, model, prompt, 4, &opt, out, &n, NULL, NULL, &err), CB_OK);
	CHECK_EQ_INT(n, 10);
	CHECK(interrupt_calls >= 10);
	CHECK_EQ_INT(ut_alloc.live, 0);

	stop_at = 7;
	interrupt_calls = 0;
	CHECK_EQ_INT(cb_generate(&cc, model, prompt, 4, &opt, out, &n, NULL, NULL, &err), CB_ERR_CANCELED);
	CHECK_EQ_INT(interrupt_calls, 7);
	CHECK_EQ_INT(ut_alloc.live, 0);

	opt.temperature = 0.0f;
	cb_beam_default_options(&bo);
	bo.num_beams = 2;
	bo.num_return_sequences = 2;
	stop_at = 0;
	interrupt_calls = 0;
	CHECK_EQ_INT(cb_beam_search(&cc, model, prompt, 4, &opt, &bo, out, n_beams, NULL, &n_ret, &err), CB_OK);
	CHECK_EQ_INT(n_ret, 2);
	CHECK(interrupt_calls >= 10);
	CHECK_EQ_INT(ut_alloc.live, 0);
	stop_at = 9;
	interrupt_calls = 0;
	CHECK_EQ_INT(cb_beam_search(&cc, model, prompt, 4, &opt, &bo, out, n_beams, NULL, &n_ret, &err),
				 CB_ERR_CANCELED);
	CHECK_EQ_INT(interrupt_calls, 9);
	CHECK_EQ_INT(ut_alloc.live, 0);
}

/*
 * A temperature so small that logits / T overflows float (|logit| / T >
 * FLT_MAX, from about 1e-37 for these logits down to the smallest subnormal)
 * converges to greedy search instead of softmaxing inf - inf.
 */
static void
test_tiny_temperature_tokens(void)
{
	float		logits[5] = {1.0f, 3.0f, 2.5f, -1.0f, 2.9999998f};
	float		negative[3] = {-50.0f, -40.0f, -60.0f};
	const float temps[] = {1e-39f, 1e-45f, 1e-38f, 1e-30f, 1e-20f};
	int32_t		ids[5];
	double		w[5];
	cb_generate_options opt;
	cb_rng		r;

	cb_generate_default_options(NULL, &opt);
	opt.top_k = 0;
	cb_rng_seed(&r, 1);
	for (size_t t = 0; t < sizeof(temps) / sizeof(temps[0]); t++)
	{
		opt.temperature = temps[t];
		CHECK(opt.temperature > 0.0f);
		for (int i = 0; i < 200; i++)
		{
			int32_t		a = cb_sample_token(logits, 5, &opt, &r, ids, w);
			int32_t		b = cb_sample_token(negative, 3, &opt, &r, ids, w);

			CHECK_MSG(a == 1, "T = %g: token %d, expected 1", (double) temps[t], a);
			CHECK_MSG(b == 1, "T = %g: token %d, expected 1 (negative logits)", (double) temps[t], b);
		}
		/* with the filters on */
		opt.top_k = 2;
		opt.top_p = 0.5f;
		CHECK_EQ_INT(cb_sample_token(logits, 5, &opt, &r, ids, w), 1);
		opt.top_k = 0;
		opt.top_p = 1.0f;
	}
}

/* ... and generation with it equals greedy generation */
static void
test_tiny_temperature_generate(void)
{
	int32_t		prompt[] = {5, 280, 113, 109};
	int32_t		greedy[12],
				tiny[12],
				n_greedy = -1,
				n_tiny = -2;
	cb_generate_options opt;
	cb_error	err;

	cb_generate_default_options(model, &opt);
	opt.max_new_tokens = 12;
	opt.eos_token_id = -1;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 4, &opt, greedy, &n_greedy, NULL, NULL, &err), CB_OK);
	opt.temperature = 1e-39f;
	opt.seed = 1;
	CHECK_EQ_INT(cb_generate(ut_compute(), model, prompt, 4, &opt, tiny, &n_tiny, NULL, NULL, &err), CB_OK);
	CHECK_EQ_INT(n_tiny, n_greedy);
	CHECK(n_greedy == 12 && memcmp(greedy, tiny, sizeof(greedy)) == 0);
}

/*
 * A model whose positions leave room for fewer than a prompt token and a new
 * one is refused (cb_config_validate refuses it at load; this is the core's
 * own guard for a model built otherwise); two positions generate one token.
 */
static void
test_short_position_table(void)
{
	cb_model	m = *model;
	int32_t		prompt[] = {5, 280};
	int32_t		out[4],
				n = -1;
	cb_generate_options opt;
	cb_decoder *dec = NULL;
	cb_error	err;

	cb_generate_default_options(&m, &opt);
	opt.max_new_tokens = 4;
	opt.eos_token_id = -1;
	for (int32_t room = -1; room < 2; room++)
	{
		m.config.max_position_embeddings = m.config.pad_token_id + 1 + room;
		CHECK_EQ_INT(cb_generate(ut_compute(), &m, prompt, 1, &opt, out, &n, NULL, NULL, &err), CB_ERR_FORMAT);
		CHECK_EQ_INT(n, 0);
		CHECK(strstr(err.message, "max_position_embeddings") != NULL);
		CHECK_EQ_INT(cb_decoder_create(ut_compute(), &m, 4, &dec, &err), CB_ERR_FORMAT);
		CHECK(dec == NULL);
		cb_decoder_free(dec);
		dec = NULL;
	}
	m.config.max_position_embeddings = m.config.pad_token_id + 3;
	CHECK_EQ_INT(cb_generate(ut_compute(), &m, prompt, 1, &opt, out, &n, NULL, NULL, &err), CB_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(cb_generate(ut_compute(), &m, prompt, 2, &opt, out, &n, NULL, NULL, &err), CB_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(cb_generate(ut_compute(), &m, prompt, 3, &opt, out, &n, NULL, NULL, &err), CB_ERR_INVALID);
}

int
main(void)
{
	RUN(test_rng);
	RUN(test_sample_warpers);
	RUN(test_sample_nucleus_bruteforce);
	RUN(test_tiny_temperature_tokens);
	if (ut_load_model("build/golden/models/clm", &clm) != 0)
	{
		CHECK_MSG(false, "cannot load the clm golden model");
		return unit_finish("test_generate");
	}
	model = &clm.model;
	RUN(test_greedy_golden);
	RUN(test_sampling_model);
	RUN(test_decoder);
	RUN(test_hooks);
	RUN(test_tiny_temperature_generate);
	RUN(test_short_position_table);
	ut_unload_model(&clm);
	return unit_finish("test_generate");
}
