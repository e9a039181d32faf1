/*
 * test_forward_tap.c — the forward pass's tap (forward.h): every op it
 * reports, in order, and the embeddings and each layer's output compared
 * against transformers' hidden states (test/golden/models/<name>/expected/
 * hidden_states.npy, [L+1][total_tokens][H]) one layer at a time.  A model
 * with one weight deliberately perturbed must be caught at that layer and
 * not before: the tap localises a wrong op.
 */
#include "unit.h"
#include "support/ut_compute.h"
#include "support/npy.h"
#include "support/golden_model.h"

#include "forward.h"

#define GOLDEN "test/golden/models/"
#define TOL 1e-4
#define N_CASES 4				/* a padded batch of the first cases */
#define MAX_T 130

typedef struct tap_check
{
	const ut_npy *hs;			/* [L+1][total][H] */
	size_t		h,
				inter,
				total;
	int			n_layers;
	/* the packed rows of the batch: golden row of each */
	size_t		golden_row[N_CASES * MAX_T];
	size_t		n_rows;
	/* what the tap saw */
	char		order[512];		/* "e a0 i0 l0 a1 ..." */
	int			compared[CB_MAX_LAYERS + 1];	/* hidden states compared, by layer + 1 */
	double		max_abs[CB_MAX_LAYERS + 1];
	int			first_bad;		/* first layer (-1: embeddings) over TOL; -2: none */
	int			bad_shapes;
} tap_check;

static void
append(tap_check *tc, const char *what, int layer)
{
	size_t		len = strlen(tc->order);

	snprintf(tc->order + len, sizeof(tc->order) - len, "%s%s%d", len ? " " : "", what,
			 layer < 0 ? 9 : layer);
}

static void
check_tap(void *arg, const char *name, int layer, size_t rows, size_t cols, const float *data)
{
	tap_check  *tc = arg;
	size_t		slot;
	double		most = 0;

	if (strcmp(name, "embeddings") == 0)
		append(tc, "e", layer);
	else if (strcmp(name, "attention_output") == 0)
		append(tc, "a", layer);
	else if (strcmp(name, "intermediate") == 0)
	{
		append(tc, "i", layer);
		if (cols != tc->inter || rows != tc->n_rows)
			tc->bad_shapes++;
		return;
	}
	else if (strcmp(name, "layer_output") == 0)
		append(tc, "l", layer);
	else
	{
		append(tc, name, layer);
		return;
	}
	if (cols != tc->h || rows != tc->n_rows || layer < -1 || layer >= tc->n_layers ||
		(strcmp(name, "embeddings") == 0) != (layer == -1))
	{
		tc->bad_shapes++;
		return;
	}
	if (strcmp(name, "attention_output") == 0)
		return;					/* transformers' golden data has no such state */
	/* hidden_states[layer + 1] (embeddings: hidden_states[0]) */
	slot = (size_t) (layer + 1);
	for (size_t r = 0; r < rows; r++)
	{
		const float *want = tc->hs->f + (slot * tc->total + tc->golden_row[r]) * tc->h;

		for (size_t c = 0; c < cols; c++)
		{
			double		d = fabs((double) data[r * cols + c] - (double) want[c]);

			if (!(d <= most))
				most = isnan(d) ? INFINITY : d;
		}
	}
	tc->compared[slot] += (int) (rows * cols > 0);
	tc->max_abs[slot] = most;
	if (most > TOL && tc->first_bad == -2)
		tc->first_bad = layer;
}

typedef struct batch
{
	int32_t		ids[N_CASES * MAX_T];
	int32_t		mask[N_CASES * MAX_T];
	int32_t		seq_len;
} batch;

/* The first N_CASES golden cases as one right-padded batch; the tap check's
 * golden rows in packed order. */
static int
load_batch(const char *name, const cb_model *m, batch *b, tap_check *tc)
{
	char		path[256];
	cb_json_doc *doc;
	const cb_json_value *cases;
	int32_t		lens[N_CASES],
				offs[N_CASES];
	int32_t		ids[N_CASES][MAX_T];

	snprintf(path, sizeof(path), GOLDEN "%s/expected/cases.json", name);
	doc = ut_json_load(path);
	if (doc == NULL)
		return -1;
	cases = cb_json_get(cb_json_root(doc), "cases");
	if (cases == NULL || cases->type != CB_JSON_ARRAY || cases->count < N_CASES)
	{
		cb_json_free(doc);
		return -1;
	}
	b->seq_len = 0;
	for (int i = 0; i < N_CASES; i++)
	{
		lens[i] = (int32_t) ut_json_ints(cb_json_get(&cases->items[i], "input_ids"), ids[i], MAX_T);
		offs[i] = (int32_t) ut_json_number(&cases->items[i], "token_offset");
		if (lens[i] <= 0)
		{
			cb_json_free(doc);
			return -1;
		}
		if (lens[i] > b->seq_len)
			b->seq_len = lens[i];
	}
	cb_json_free(doc);
	tc->n_rows = 0;
	for (int i = 0; i < N_CASES; i++)
		for (int32_t t = 0; t < b->seq_len; t++)
		{
			bool		real = t < lens[i];

			b->ids[i * b->seq_len + t] = real ? ids[i][t] : m->config.pad_token_id;
			b->mask[i * b->seq_len + t] = real ? 1 : 0;
			if (real)
				tc->golden_row[tc->n_rows++] = (size_t) (offs[i] + t);
		}
	return 0;
}

static void
reset(tap_check *tc)
{
	tc->order[0] = '\0';
	memset(tc->compared, 0, sizeof(tc->compared));
	memset(tc->max_abs, 0, sizeof(tc->max_abs));
	tc->first_bad = -2;
	tc->bad_shapes = 0;
}

static cb_status
run_tapped(const cb_model *m, const batch *b, tap_check *tc, float *hidden)
{
	cb_forward_input in = {N_CASES, b->seq_len, b->ids, b->mask};
	cb_forward_output out;
	cb_error	err;
	cb_status	st;

	memset(&out, 0, sizeof(out));
	/* hidden states asked for: every layer computes every row */
	out.last_hidden_state = hidden;
	out.tap.fn = check_tap;
	out.tap.arg = tc;
	reset(tc);
	st = cb_forward(ut_compute(), m, &in, &out, NULL, &err);
	if (st != CB_OK)
		fprintf(stderr, "cb_forward: %s\n", err.message);
	return st;
}

/* The expected order of the ops for n layers: "e9 a0 i0 l0 a1 i1 l1". */
static void
expected_order(int n, char *buf, size_t len)
{
	size_t		used = 0;

	used += (size_t) snprintf(buf, len, "e9");
	for (int l = 0; l < n && used < len; l++)
		used += (size_t) snprintf(buf + used, len - used, " a%d i%d l%d", l, l, l);
}

typedef enum perturbation
{
	NONE,
	QUERY_BIAS,					/* a wrong attention: layer `at`'s query bias */
	FFN_OUT_BIAS				/* a wrong feed-forward: layer `at`'s output bias */
} perturbation;

static void
test_tap_model(const char *name)
{
	char		path[256];
	ut_loaded_model lm;
	ut_npy		hs;
	static tap_check tc;
	static batch b;
	float	   *hidden;
	char		want_order[512];
	int			n_layers;

	snprintf(path, sizeof(path), GOLDEN "%s", name);
	CHECK(ut_load_model(path, &lm) == 0);
	snprintf(path, sizeof(path), GOLDEN "%s/expected/hidden_states.npy", name);
	CHECK(ut_npy_load(path, &hs) == 0);
	memset(&tc, 0, sizeof(tc));
	n_layers = lm.model.config.num_hidden_layers;
	CHECK(load_batch(name, &lm.model, &b, &tc) == 0);
	tc.hs = &hs;
	tc.h = (size_t) lm.model.config.hidden_size;
	tc.inter = (size_t) lm.model.config.intermediate_size;
	tc.total = hs.ndim == 3 ? hs.shape[1] : 0;
	tc.n_layers = n_layers;
	CHECK(hs.ndim == 3 && hs.shape[0] == (size_t) n_layers + 1 && hs.shape[2] == tc.h);
	CHECK(n_layers >= 2);
	hidden = malloc((size_t) N_CASES * (size_t) b.seq_len * tc.h * sizeof(float));
	expected_order(n_layers, want_order, sizeof(want_order));

	/* the model as it is: every op seen in order, every layer within TOL */
	CHECK_EQ_INT(run_tapped(&lm.model, &b, &tc, hidden), CB_OK);
	CHECK_EQ_STR(tc.order, want_order);
	CHECK_EQ_INT(tc.bad_shapes, 0);
	for (int l = 0; l <= n_layers; l++)
	{
		printf("  %-6s hidden_states[%d] via the tap: %zu rows, max |d| %.3g\n", name, l,
			   tc.n_rows, tc.max_abs[l]);
		CHECK_MSG(tc.compared[l] == 1, "%s: hidden_states[%d] compared %d times", name, l,
				  tc.compared[l]);
	}
	CHECK_MSG(tc.first_bad == -2, "%s: layer %d is off the golden hidden states", name, tc.first_bad);

	/* one weight perturbed: the tap points at that layer, not before */
	for (int kind = QUERY_BIAS; kind <= FFN_OUT_BIAS; kind++)
		for (int at = 0; at < n_layers; at++)
		{
			cb_model	bad = lm.model;
			cb_layer_weights *layers = malloc((size_t) n_layers * sizeof(cb_layer_weights));
			float	   *bias = malloc(tc.h * sizeof(float));

			memcpy(layers, lm.model.layers, (size_t) n_layers * sizeof(cb_layer_weights));
			memcpy(bias, kind == QUERY_BIAS ? layers[at].query_b : layers[at].out_b,
				   tc.h * sizeof(float));
			bias[tc.h / 2] += 0.05f;
			if (kind == QUERY_BIAS)
				layers[at].query_b = bias;
			else
				layers[at].out_b = bias;
			bad.layers = layers;
			CHECK_EQ_INT(run_tapped(&bad, &b, &tc, hidden), CB_OK);
			printf("  %-6s %s of layer %d perturbed: first layer off %d (max |d| %.3g there)\n",
				   name, kind == QUERY_BIAS ? "query bias" : "output bias", at, tc.first_bad,
				   tc.first_bad >= -1 ? tc.max_abs[tc.first_bad + 1] : 0.0);
			CHECK_MSG(tc.first_bad == at, "%s: perturbed layer %d, the tap found layer %d", name,
					  at, tc.first_bad);
			free(bias);
			free(layers);
		}

	free(hidden);
	ut_npy_free(&hs);
	ut_unload_model(&lm);
}

/* A call for head outputs only: the last layer's tap sees the rows the
 * classifier reads (one per sequence), the earlier layers every row. */
static void
test_tap_heads_only(void)
{
	ut_loaded_model lm;
	static tap_check tc;
	static batch b;
	ut_npy		hs;
	float		logits[N_CASES * CB_MAX_LABELS];
	cb_forward_input in;
	cb_forward_output out;
	cb_error	err;

	CHECK(ut_load_model(GOLDEN "cls3", &lm) == 0);
	CHECK(ut_npy_load(GOLDEN "cls3/expected/hidden_states.npy", &hs) == 0);
	memset(&tc, 0, sizeof(tc));
	CHECK(load_batch("cls3", &lm.model, &b, &tc) == 0);
	tc.hs = &hs;
	tc.h = (size_t) lm.model.config.hidden_size;
	tc.inter = (size_t) lm.model.config.intermediate_size;
	tc.total = hs.shape[1];
	tc.n_layers = lm.model.config.num_hidden_layers;
	reset(&tc);
	in = (cb_forward_input) {N_CASES, b.seq_len, b.ids, b.mask};
	memset(&out, 0, sizeof(out));
	out.class_logits = logits;
	out.tap.fn = check_tap;
	out.tap.arg = &tc;
	CHECK_EQ_INT(cb_forward(ut_compute(), &lm.model, &in, &out, NULL, &err), CB_OK);
	/* the last layer reports N_CASES rows, not n_rows: counted as a bad shape */
	CHECK_EQ_INT(tc.bad_shapes, 3);	/* its attention_output, intermediate, layer_output */
	CHECK(strstr(tc.order, "classifier_dense9") != NULL);
	CHECK_MSG(tc.first_bad == -2, "cls3: layer %d is off", tc.first_bad);
	ut_npy_free(&hs);
	ut_unload_model(&lm);
}

static void test_tap_mlm(void) { test_tap_model("mlm"); }
static void test_tap_clm(void) { test_tap_model("clm"); }
static void test_tap_cls3(void) { test_tap_model("cls3"); }

int
main(void)
{
	RUN(test_tap_mlm);
	RUN(test_tap_clm);
	RUN(test_tap_cls3);
	RUN(test_tap_heads_only);
	return unit_finish("test_forward_tap");
}
