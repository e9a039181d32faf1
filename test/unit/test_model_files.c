/*
 * test_model_files.c — reading Hugging Face model directories into model
 * images: JSON, config.json, safetensors (single, sharded, F32/F16/BF16),
 * pytorch_model.bin, the image itself, and hostile/corrupt inputs.
 *
 * Independent references: the README of test/golden (hyper-parameters,
 * labels), the raw bytes of the safetensors files located by a text search
 * (ut_safetensors_locate), the pytorch_model.bin of mlm (must give a
 * bit-identical image to its safetensors), and the F16/BF16 models (must be
 * the round-to-nearest-even of the mlm F32 weights, computed here).
 */
#include "unit.h"
#include "support/ut_alloc.h"
#include "support/ut_files.h"

#include "config.h"
#include "file_io.h"
#include "json.h"
#include "model_image.h"
#include "safetensors.h"
#include "torch_bin.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOLDEN "build/golden/models/"

/* ---- helpers -------------------------------------------------------------- */

typedef struct built
{
	void	   *block;
	void	   *image;			/* 64-aligned inside block */
	size_t		size;
	cb_model	model;
	cb_status	status;
	cb_error	err;
} built;

static int	interrupt_calls = 0;

static void
count_interrupts(void)
{
	interrupt_calls++;
}

/* open + write + view at a precision; returns the status of the first failing step */
static cb_status
build_precision(const char *dir, cb_precision precision, built *b)
{
	cb_model_source *src = NULL;

	memset(b, 0, sizeof(*b));
	cb_clear_error(&b->err);
	b->status = cb_model_source_open(dir, &src, &b->err);
	if (b->status == CB_OK)
		b->status = cb_model_source_set_precision(src, precision, &b->err);
	if (b->status != CB_OK)
	{
		cb_model_source_close(src);
		return b->status;
	}
	b->size = cb_model_source_image_size(src);
	b->block = malloc(b->size + 64);
	b->image = (void *) (((uintptr_t) b->block + 63) & ~(uintptr_t) 63);
	memset(b->block, 0xA5, b->size + 64);	/* the writer must set every byte */
	b->status = cb_model_source_write_image(src, b->image, b->size, &b->err);
	cb_model_source_close(src);
	if (b->status == CB_OK)
		b->status = cb_model_view(b->image, b->size, &b->model, &b->err);
	return b->status;
}

/* the same at precision auto (the default) */
static cb_status
build(const char *dir, built *b)
{
	return build_precision(dir, CB_PRECISION_AUTO, b);
}

static void
unbuild(built *b)
{
	cb_model_view_release(&b->model);
	free(b->block);
	memset(b, 0, sizeof(*b));
}

/* every tensor of a model with its element count */
typedef struct named_tensor
{
	char		name[64];
	const float *p;
	size_t		n;
	size_t		bytes;			/* in the image (a matrix: in its format) */
	int			format;			/* cb_matrix_format; -1: a float32 vector */
} named_tensor;

/* the float32 data of a matrix (the golden models are F32 files: precision auto keeps them F32) */
#define MD(m) ((const float *) (m).data)

static size_t
list_tensors(const cb_model *m, named_tensor *out)
{
	const cb_config *c = &m->config;
	size_t		V = (size_t) c->vocab_size,
				H = (size_t) c->hidden_size,
				I = (size_t) c->intermediate_size,
				P = (size_t) c->max_position_embeddings,
				T = (size_t) c->type_vocab_size,
				L = (size_t) c->num_labels;
	size_t		k = 0;

#define ADD(nm, ptr, cnt) do { snprintf(out[k].name, sizeof(out[k].name), "%s", nm); \
		out[k].p = (ptr); out[k].n = (cnt); out[k].bytes = 4 * (cnt); out[k].format = -1; k++; } while (0)
#define ADDM(nm, mat, cnt) do { snprintf(out[k].name, sizeof(out[k].name), "%s", nm); \
		out[k].p = MD(mat); out[k].n = (cnt); out[k].format = (int) (mat).format; \
		out[k].bytes = cb_matrix_blob_bytes((mat).format, (mat).rows, (mat).cols); \
		CHECK((mat).rows * (mat).cols == (cnt)); k++; } while (0)
	ADDM("word", m->word_embeddings, V * H);
	ADD("pos", m->position_embeddings, P * H);
	ADD("type", m->token_type_embeddings, T * H);
	ADD("emb_ln_w", m->embeddings_ln_w, H);
	ADD("emb_ln_b", m->embeddings_ln_b, H);
	for (int l = 0; l < c->num_hidden_layers; l++)
	{
		const cb_layer_weights *w = &m->layers[l];

		ADDM("q_w", w->query_w, H * H);
		ADD("q_b", w->query_b, H);
		ADDM("k_w", w->key_w, H * H);
		ADD("k_b", w->key_b, H);
		ADDM("v_w", w->value_w, H * H);
		ADD("v_b", w->value_b, H);
		ADDM("ao_w", w->attn_out_w, H * H);
		ADD("ao_b", w->attn_out_b, H);
		ADD("aln_w", w->attn_ln_w, H);
		ADD("aln_b", w->attn_ln_b, H);
		ADDM("i_w", w->inter_w, I * H);
		ADD("i_b", w->inter_b, I);
		ADDM("o_w", w->out_w, H * I);
		ADD("o_b", w->out_b, H);
		ADD("oln_w", w->out_ln_w, H);
		ADD("oln_b", w->out_ln_b, H);
	}
	if (c->architecture == CB_ARCH_MASKED_LM || c->architecture == CB_ARCH_CAUSAL_LM)
	{
		ADDM("lm_dense_w", m->lm_dense_w, H * H);
		ADD("lm_dense_b", m->lm_dense_b, H);
		ADD("lm_ln_w", m->lm_ln_w, H);
		ADD("lm_ln_b", m->lm_ln_b, H);
		ADDM("lm_dec_w", m->lm_decoder_w, V * H);
		ADD("lm_dec_b", m->lm_decoder_b, V);
	}
	if (c->architecture == CB_ARCH_SEQUENCE_CLASSIFICATION)
	{
		ADDM("cls_dense_w", m->cls_dense_w, H * H);
		ADD("cls_dense_b", m->cls_dense_b, H);
		ADDM("cls_out_w", m->cls_out_w, L * H);
		ADD("cls_out_b", m->cls_out_b, L);
	}
#undef ADD
#undef ADDM
	return k;
}

static bool
contains(const char *hay, const char *needle)
{
	return needle == NULL || strstr(hay, needle) != NULL;
}

/* cb_model_source_open(dir) must fail with status and a message holding a, b, c */
#define EXPECT_OPEN_FAILS(dir, st, a, b, c) do { \
	cb_model_source *_s = NULL; cb_error _e; cb_clear_error(&_e); \
	cb_status _r = cb_model_source_open((dir), &_s, &_e); \
	CHECK_MSG(_r == (st), "open %s: expected %s, got %s: %s", (dir), cb_status_name(st), cb_status_name(_r), _e.message); \
	CHECK_MSG(_r == CB_OK || (contains(_e.message, a) && contains(_e.message, b) && contains(_e.message, c)), \
		"message \"%s\" should mention \"%s\" \"%s\" \"%s\"", _e.message, (a) ? (a) : "", (b) ? (b) : "", (c) ? (c) : ""); \
	CHECK(_r != CB_OK || _s != NULL); \
	if (getenv("UT_VERBOSE")) printf("  [%s] %s\n", cb_status_name(_r), _e.message); \
	cb_model_source_close(_s); \
} while (0)

#define EXPECT_OPEN_OK(dir) do { \
	cb_model_source *_s = NULL; cb_error _e; cb_clear_error(&_e); \
	cb_status _r = cb_model_source_open((dir), &_s, &_e); \
	CHECK_MSG(_r == CB_OK, "open %s: %s", (dir), _e.message); \
	cb_model_source_close(_s); \
} while (0)

/* ---- JSON ----------------------------------------------------------------- */

static void
test_json_strict(void)
{
	static const char *const good[] = {
		"{}", "[]", " [ 1 , 2 ] ", "0", "-0", "1.5e+3", "-12.25E-2", "\"\"", "true", "false", "null",
		"\"\\u00e9\\ud83d\\ude00\\n\\/\"", "{\"a\":{\"b\":[{}]}}", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
		"9223372036854775807", "-9223372036854775808", "123456789012345678901234567890",
	};
	static const char *const bad[] = {
		"", " ", "{", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01", "1.", ".5", "+1", "1e",
		"NaN", "Infinity", "-", "tru", "nul", "[1] x", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
		"\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\x01\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
		"\"\xe2\x82\"", "\"\x80\"", "{\"a\":1,\"a\":2}", "\xef\xbb\xbf{}", "[1 2]", "{\"a\":}", "'a'",
	};
	cb_json_doc *doc;
	cb_error	err;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
	{
		cb_status	st = cb_json_parse(good[i], strlen(good[i]), "t", NULL, &doc, &err);

		CHECK_MSG(st == CB_OK, "should parse: %s (%s)", good[i], err.message);
		cb_json_free(doc);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		cb_status	st = cb_json_parse(bad[i], strlen(bad[i]), "t", NULL, &doc, &err);

		CHECK_MSG(st == CB_ERR_FORMAT, "should be rejected: %s (got %s)", bad[i], cb_status_name(st));
		CHECK(doc == NULL);
		CHECK(st == CB_OK || strncmp(err.message, "t: ", 3) == 0);
	}
}

static void
test_json_values(void)
{
	const char *text = "{\"n\":-12.5e1,\"i\":9007199254740993,\"s\":\"a\\u0000b\\ud83d\\ude00\","
		"\"arr\":[true,false,null],\"big\":18446744073709551616,\"z\":{}}";
	cb_json_doc *doc;
	cb_error	err;
	const cb_json_value *root,
			   *v;

	CHECK(cb_json_parse(text, strlen(text), "t", NULL, &doc, &err) == CB_OK);
	root = cb_json_root(doc);
	CHECK(root->type == CB_JSON_OBJECT && root->count == 6);
	CHECK(strcmp(root->members[0].key, "n") == 0);	/* document order kept */
	v = cb_json_get(root, "n");
	CHECK(v && v->type == CB_JSON_NUMBER && !v->is_integer && v->number == -125.0);
	v = cb_json_get(root, "i");
	CHECK(v && v->is_integer && v->integer == 9007199254740993LL);
	v = cb_json_get(root, "s");
	CHECK(v && v->string_len == 7 && memcmp(v->string, "a\0b\xf0\x9f\x98\x80", 7) == 0);
	v = cb_json_get(root, "arr");
	CHECK(v && v->count == 3 && v->items[0].boolean && !v->items[1].boolean && v->items[2].type == CB_JSON_NULL);
	v = cb_json_get(root, "big");
	CHECK(v && !v->is_integer && v->number == 18446744073709551616.0);
	CHECK(cb_json_get(root, "missing") == NULL);
	CHECK(cb_json_get(cb_json_get(root, "z"), "x") == NULL);
	cb_json_free(doc);
}

static void
test_json_limits(void)
{
	char		deep[300];
	cb_json_doc *doc;
	cb_error	err;
	cb_json_limits lim = {1000, 64, 10};

	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	CHECK(cb_json_parse(deep, 200, "t", NULL, &doc, &err) == CB_ERR_LIMIT);
	CHECK(contains(err.message, "nesting"));
	CHECK(cb_json_parse(deep + 40, 120, "t", NULL, &doc, &err) == CB_OK);	/* depth 60 */
	cb_json_free(doc);
	CHECK(cb_json_parse("[1,2,3,4,5,6,7,8,9,10,11]", 25, "t", &lim, &doc, &err) == CB_ERR_LIMIT);
	lim.max_input = 4;
	CHECK(cb_json_parse("[1,2]", 5, "t", &lim, &doc, &err) == CB_ERR_LIMIT);
}

/* ---- config.json ---------------------------------------------------------- */

static cb_status
parse_config(const char *text, cb_model_config **mc, cb_error *err)
{
	return cb_config_parse(text, strlen(text), "cfg", mc, err);
}

static void
test_config_rules(void)
{
	cb_model_config *mc;
	cb_error	err;

	/* defaults of CamembertConfig */
	CHECK(parse_config("{\"architectures\":[\"CamembertModel\"]}", &mc, &err) == CB_OK);
	CHECK_EQ_INT(mc->config.architecture, CB_ARCH_ENCODER);
	CHECK_EQ_INT(mc->config.vocab_size, 30522);
	CHECK_EQ_INT(mc->config.hidden_size, 768);
	CHECK_EQ_INT(mc->config.num_hidden_layers, 12);
	CHECK_EQ_INT(mc->config.max_position_embeddings, 512);
	CHECK_EQ_INT(mc->config.type_vocab_size, 2);
	CHECK_EQ_INT(mc->config.pad_token_id, 1);
	CHECK_EQ_INT(mc->config.bos_token_id, 0);
	CHECK_EQ_INT(mc->config.eos_token_id, 2);
	CHECK_EQ_INT(mc->config.num_labels, 0);
	CHECK_EQ_INT(mc->config.problem_type, CB_PROBLEM_NONE);
	CHECK(mc->tie_word_embeddings);
	CHECK_NEAR(mc->config.layer_norm_eps, 1e-12, 1e-18);
	cb_config_free(mc);

	/* classifier label rules */
	CHECK(parse_config("{\"architectures\":[\"CamembertForSequenceClassification\"]}", &mc, &err) == CB_OK);
	CHECK_EQ_INT(mc->config.num_labels, 2);
	CHECK_EQ_STR(mc->labels[1], "LABEL_1");
	CHECK_EQ_INT(mc->config.problem_type, CB_PROBLEM_SINGLE_LABEL);
	cb_config_free(mc);
	CHECK(parse_config("{\"architectures\":[\"CamembertForSequenceClassification\"],\"num_labels\":1}", &mc, &err) == CB_OK);
	CHECK_EQ_INT(mc->config.num_labels, 1);
	CHECK_EQ_INT(mc->config.problem_type, CB_PROBLEM_REGRESSION);
	cb_config_free(mc);
	CHECK(parse_config("{\"architectures\":[\"CamembertForSequenceClassification\"],\"num_labels\":5,"
					   "\"id2label\":{\"1\":\"b\",\"0\":\"\\u00e9\"},\"problem_type\":\"multi_label_classification\"}",
					   &mc, &err) == CB_OK);
	CHECK_EQ_INT(mc->config.num_labels, 2);	/* id2label wins, as in transformers */
	CHECK_EQ_STR(mc->labels[0], "\xc3\xa9");
	CHECK_EQ_STR(mc->labels[1], "b");
	CHECK_EQ_INT(mc->config.problem_type, CB_PROBLEM_MULTI_LABEL);
	cb_config_free(mc);
	CHECK(parse_config("{\"architectures\":[\"CamembertForSequenceClassification\"],"
					   "\"id2label\":{\"0\":\"a\"},\"problem_type\":\"single_label_classification\"}", &mc, &err) == CB_OK);
	CHECK_EQ_INT(mc->config.problem_type, CB_PROBLEM_SINGLE_LABEL);
	cb_config_free(mc);
	/* the shortest position table: 2 tokens after pad_token_id (<s> </s>, or a prompt token and a new one) */
	CHECK(parse_config("{\"architectures\":[\"CamembertForCausalLM\"],\"max_position_embeddings\":4}", &mc, &err) == CB_OK);
	cb_config_free(mc);
	CHECK(parse_config("{\"architectures\":[\"CamembertModel\"],\"max_position_embeddings\":3,\"pad_token_id\":0}", &mc, &err) == CB_OK);
	cb_config_free(mc);
	CHECK(parse_config("{\"architectures\":[\"CamembertForCausalLM\"],\"is_decoder\":true,\"bos_token_id\":null}", &mc, &err) == CB_OK);
	CHECK_EQ_INT(mc->config.is_decoder, 1);
	CHECK_EQ_INT(mc->config.bos_token_id, -1);
	CHECK(mc->labels == NULL);
	cb_config_free(mc);

	/* rejections */
	{
		static const struct
		{
			const char *text;
			cb_status	st;
			const char *msg;
		}			cases[] = {
			{"[]", CB_ERR_FORMAT, "object"},
			{"{}", CB_ERR_FORMAT, "architectures"},
			{"{\"architectures\":[]}", CB_ERR_FORMAT, "architectures"},
			{"{\"architectures\":\"CamembertModel\"}", CB_ERR_FORMAT, "architectures"},
			{"{\"architectures\":[\"BertModel\"]}", CB_ERR_UNSUPPORTED, "BertModel"},
			{"{\"architectures\":[\"CamembertForTokenClassification\"]}", CB_ERR_UNSUPPORTED, "CamembertForTokenClassification"},
			{"{\"architectures\":[\"CamembertModel\"],\"hidden_size\":100,\"num_attention_heads\":12}", CB_ERR_FORMAT, "multiple"},
			{"{\"architectures\":[\"CamembertModel\"],\"hidden_size\":0}", CB_ERR_FORMAT, "hidden_size"},
			{"{\"architectures\":[\"CamembertModel\"],\"hidden_size\":-768}", CB_ERR_FORMAT, "hidden_size"},
			{"{\"architectures\":[\"CamembertModel\"],\"vocab_size\":1000000000000}", CB_ERR_FORMAT, "vocab_size"},
			{"{\"architectures\":[\"CamembertModel\"],\"vocab_size\":\"32005\"}", CB_ERR_FORMAT, "integer"},
			{"{\"architectures\":[\"CamembertModel\"],\"vocab_size\":32005.5}", CB_ERR_FORMAT, "integer"},
			{"{\"architectures\":[\"CamembertModel\"],\"num_hidden_layers\":100000}", CB_ERR_FORMAT, "num_hidden_layers"},
			{"{\"architectures\":[\"CamembertModel\"],\"intermediate_size\":4000000000}", CB_ERR_FORMAT, "intermediate_size"},
			{"{\"architectures\":[\"CamembertModel\"],\"pad_token_id\":40000}", CB_ERR_FORMAT, "pad_token_id"},
			/* positions start at pad_token_id + 1: room for 1 token, 0, or none at all */
			{"{\"architectures\":[\"CamembertForCausalLM\"],\"max_position_embeddings\":3}", CB_ERR_FORMAT, "leaves room for 1 tokens"},
			{"{\"architectures\":[\"CamembertModel\"],\"max_position_embeddings\":1,\"pad_token_id\":0}", CB_ERR_FORMAT, "max_position_embeddings = 1"},
			{"{\"architectures\":[\"CamembertForMaskedLM\"],\"max_position_embeddings\":12,\"pad_token_id\":11}", CB_ERR_FORMAT, "room for 0 tokens"},
			{"{\"architectures\":[\"CamembertForSequenceClassification\"],\"max_position_embeddings\":130,\"pad_token_id\":200}", CB_ERR_FORMAT, "pad_token_id = 200"},
			{"{\"architectures\":[\"CamembertModel\"],\"layer_norm_eps\":-1}", CB_ERR_FORMAT, "layer_norm_eps"},
			{"{\"architectures\":[\"CamembertModel\"],\"layer_norm_eps\":1e-300}", CB_ERR_FORMAT, "layer_norm_eps"},
			{"{\"architectures\":[\"CamembertModel\"],\"hidden_act\":\"relu\"}", CB_ERR_UNSUPPORTED, "hidden_act"},
			{"{\"architectures\":[\"CamembertModel\"],\"position_embedding_type\":\"relative_key\"}", CB_ERR_UNSUPPORTED, "position_embedding_type"},
			{"{\"architectures\":[\"CamembertModel\"],\"add_cross_attention\":true}", CB_ERR_UNSUPPORTED, "cross"},
			{"{\"architectures\":[\"CamembertModel\"],\"is_decoder\":1}", CB_ERR_FORMAT, "is_decoder"},
			{"{\"architectures\":[\"CamembertForSequenceClassification\"],\"id2label\":{\"0\":\"a\",\"2\":\"b\"}}", CB_ERR_FORMAT, "\"2\""},
			{"{\"architectures\":[\"CamembertForSequenceClassification\"],\"id2label\":{\"00\":\"a\"}}", CB_ERR_FORMAT, "id2label"},
			{"{\"architectures\":[\"CamembertForSequenceClassification\"],\"id2label\":{\"0\":1}}", CB_ERR_FORMAT, "string"},
			{"{\"architectures\":[\"CamembertForSequenceClassification\"],\"id2label\":{\"0\":\"a\\u0000\"}}", CB_ERR_FORMAT, "NUL"},
			{"{\"architectures\":[\"CamembertForSequenceClassification\"],\"id2label\":{}}", CB_ERR_FORMAT, "id2label"},
			{"{\"architectures\":[\"CamembertForSequenceClassification\"],\"num_labels\":5000}", CB_ERR_FORMAT, "num_labels"},
			{"{\"architectures\":[\"CamembertForSequenceClassification\"],\"problem_type\":\"ranking\"}", CB_ERR_FORMAT, "problem_type"},
			{"{\"architectures\":[\"CamembertModel\"],", CB_ERR_FORMAT, "invalid JSON"},
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		{
			cb_status	st = parse_config(cases[i].text, &mc, &err);

			CHECK_MSG(st == cases[i].st, "config %s: expected %s, got %s (%s)", cases[i].text,
					  cb_status_name(cases[i].st), cb_status_name(st), st ? err.message : "");
			CHECK_MSG(st == CB_OK || (contains(err.message, cases[i].msg) && strncmp(err.message, "cfg", 3) == 0),
					  "config %s: message \"%s\" should name \"%s\"", cases[i].text, err.message, cases[i].msg);
			if (st == CB_OK)
				cb_config_free(mc);
		}
	}
}

/* ---- golden model directories ------------------------------------------- */

typedef struct golden_case
{
	const char *dir;
	cb_architecture arch;
	cb_problem_type problem;
	cb_dtype	dtype;
	int			num_labels;
	const char *labels[4];
	int			is_decoder;
	const char *weights_file;
} golden_case;

static const golden_case golden_cases[] = {
	{"mlm", CB_ARCH_MASKED_LM, CB_PROBLEM_NONE, CB_DTYPE_F32, 0, {NULL}, 0, "model.safetensors"},
	{"cls3", CB_ARCH_SEQUENCE_CLASSIFICATION, CB_PROBLEM_SINGLE_LABEL, CB_DTYPE_F32, 3,
	{"negatif", "neutre", "positif"}, 0, "model.safetensors"},
	{"reg1", CB_ARCH_SEQUENCE_CLASSIFICATION, CB_PROBLEM_REGRESSION, CB_DTYPE_F32, 1, {"LABEL_0"}, 0, "model.safetensors"},
	{"multilabel", CB_ARCH_SEQUENCE_CLASSIFICATION, CB_PROBLEM_MULTI_LABEL, CB_DTYPE_F32, 4,
	{"politique", "sport", "culture", "economie"}, 0, "model.safetensors"},
	{"clm", CB_ARCH_CAUSAL_LM, CB_PROBLEM_NONE, CB_DTYPE_F32, 0, {NULL}, 1, "model.safetensors"},
	{"mlm_fp16", CB_ARCH_MASKED_LM, CB_PROBLEM_NONE, CB_DTYPE_F16, 0, {NULL}, 0, "model.safetensors"},
	{"mlm_bf16_sharded", CB_ARCH_MASKED_LM, CB_PROBLEM_NONE, CB_DTYPE_BF16, 0, {NULL}, 0, "model.safetensors.index.json"},
};

/* parameter count from the README's hyper-parameters, tied decoder once */
static uint64_t
golden_parameter_count(cb_architecture arch, int num_labels)
{
	const uint64_t V = 8005,
				H = 64,
				L = 2,
				I = 256,
				P = 130,
				T = 1;
	uint64_t	n = V * H + P * H + T * H + 2 * H;

	n += L * (4 * (H * H + H) + 2 * H + (I * H + I) + (H * I + H) + 2 * H);
	if (arch == CB_ARCH_MASKED_LM || arch == CB_ARCH_CAUSAL_LM)
		n += (H * H + H) + 2 * H + V;
	if (arch == CB_ARCH_SEQUENCE_CLASSIFICATION)
		n += (H * H + H) + (uint64_t) num_labels * H + (uint64_t) num_labels;
	return n;
}

static void
test_golden_models(void)
{
	for (size_t g = 0; g < sizeof(golden_cases) / sizeof(golden_cases[0]); g++)
	{
		const golden_case *gc = &golden_cases[g];
		char		dir[256];
		cb_model_source *src = NULL;
		cb_error	err;
		built		b;
		const cb_config *c;
		named_tensor ts[64];
		size_t		nt;
		uint64_t	params = golden_parameter_count(gc->arch, gc->num_labels);

		snprintf(dir, sizeof(dir), GOLDEN "%s", gc->dir);
		CHECK_MSG(cb_model_source_open(dir, &src, &err) == CB_OK, "%s: %s", dir, err.message);
		if (src == NULL)
			continue;
		CHECK_EQ_STR(cb_model_source_weights_file(src), gc->weights_file);
		CHECK_EQ_INT(cb_model_source_parameter_count(src), params);
		CHECK_EQ_INT(cb_model_source_config(src)->num_labels, gc->num_labels);
		for (int i = 0; i < gc->num_labels; i++)
			CHECK_EQ_STR(cb_model_source_label(src, i), gc->labels[i]);
		CHECK(cb_model_source_label(src, gc->num_labels) == NULL);
		CHECK(cb_model_source_label(src, -1) == NULL);
		cb_model_source_close(src);

		CHECK_MSG(build(dir, &b) == CB_OK, "%s: %s", dir, b.err.message);
		if (b.status != CB_OK)
		{
			unbuild(&b);
			continue;
		}
		c = &b.model.config;
		CHECK_EQ_INT(c->architecture, gc->arch);
		CHECK_EQ_INT(c->problem_type, gc->problem);
		CHECK_EQ_INT(c->stored_dtype, gc->dtype);
		CHECK_EQ_INT(c->vocab_size, 8005);
		CHECK_EQ_INT(c->hidden_size, 64);
		CHECK_EQ_INT(c->num_hidden_layers, 2);
		CHECK_EQ_INT(c->num_attention_heads, 4);
		CHECK_EQ_INT(c->intermediate_size, 256);
		CHECK_EQ_INT(c->max_position_embeddings, 130);
		CHECK_EQ_INT(c->type_vocab_size, 1);
		CHECK_EQ_INT(c->pad_token_id, 1);
		CHECK_EQ_INT(c->bos_token_id, 5);
		CHECK_EQ_INT(c->eos_token_id, 6);
		CHECK_EQ_INT(c->num_labels, gc->num_labels);
		CHECK_EQ_INT(c->is_decoder, gc->is_decoder);
		CHECK(c->layer_norm_eps == 1e-5f);
		CHECK_EQ_INT(cb_model_parameter_count(&b.model), params);
		/* precision auto: float32 files stay float32; float16 / bfloat16
		 * files keep their matrices as stored (2 bytes), vectors widened */
		nt = list_tensors(&b.model, ts);
		{
			uint64_t	bytes = 0;

			for (size_t i = 0; i < nt; i++)
			{
				if (strcmp(ts[i].name, "lm_dec_w") == 0)
					continue;	/* tied to the word embeddings: counted once */
				bytes += ts[i].bytes;
				if (ts[i].format >= 0)
					CHECK_EQ_INT(ts[i].format, gc->dtype == CB_DTYPE_F32 ? CB_MATRIX_F32 :
								 gc->dtype == CB_DTYPE_F16 ? CB_MATRIX_F16 : CB_MATRIX_BF16);
			}
			if (gc->dtype == CB_DTYPE_F32)
				CHECK_EQ_INT(bytes, params * 4);
			else
				CHECK(bytes < params * 4 * 52 / 100);
			CHECK_EQ_INT(cb_model_weight_bytes(&b.model), bytes);
		}
		CHECK_EQ_STR(cb_model_architecture_name(&b.model),
					 gc->arch == CB_ARCH_MASKED_LM ? "CamembertForMaskedLM" :
					 gc->arch == CB_ARCH_CAUSAL_LM ? "CamembertForCausalLM" : "CamembertForSequenceClassification");
		CHECK_EQ_STR(cb_model_stored_dtype_name(&b.model),
					 gc->dtype == CB_DTYPE_F32 ? "float32" : gc->dtype == CB_DTYPE_F16 ? "float16" : "bfloat16");
		if (gc->problem == CB_PROBLEM_NONE)
			CHECK(cb_model_problem_type_name(&b.model) == NULL);
		else
			CHECK_EQ_STR(cb_model_problem_type_name(&b.model),
						 gc->problem == CB_PROBLEM_REGRESSION ? "regression" :
						 gc->problem == CB_PROBLEM_MULTI_LABEL ? "multi_label_classification" :
						 "single_label_classification");
		for (int i = 0; i < gc->num_labels; i++)
			CHECK_EQ_STR(cb_model_label(&b.model, i), gc->labels[i]);
		CHECK(cb_model_label(&b.model, gc->num_labels) == NULL);
		if (gc->num_labels == 0)
			CHECK(b.model.labels == NULL);

		/* every pointer inside the image, 64-byte aligned, and the tied decoder */
		for (size_t i = 0; i < nt; i++)
		{
			const unsigned char *p = (const unsigned char *) ts[i].p;

			CHECK_MSG(p != NULL && p >= (unsigned char *) b.image &&
					  p + ts[i].bytes <= (unsigned char *) b.image + b.size,
					  "%s: tensor %s outside the image", dir, ts[i].name);
			CHECK_MSG(((uintptr_t) p & 63) == 0, "%s: tensor %s not 64-byte aligned", dir, ts[i].name);
		}
		if (gc->arch == CB_ARCH_MASKED_LM || gc->arch == CB_ARCH_CAUSAL_LM)
			CHECK(MD(b.model.lm_decoder_w) == MD(b.model.word_embeddings));
		else
			CHECK(MD(b.model.lm_decoder_w) == NULL && MD(b.model.lm_dense_w) == NULL);
		if (gc->arch != CB_ARCH_SEQUENCE_CLASSIFICATION)
			CHECK(MD(b.model.cls_out_w) == NULL);
		/* README: rows 1 of the word and position embeddings are zero (padding_idx) */
		{
			float		row[64];

			cb_matrix_row(&b.model.word_embeddings, 1, row);
			for (int j = 0; j < 64; j++)
			{
				CHECK(row[j] == 0.0f);
				CHECK(b.model.position_embeddings[64 + j] == 0.0f);
			}
		}
		unbuild(&b);
	}
}

/* values of the image == the raw bytes of the safetensors file, found independently */
static void
check_against_file(const char *model, const char *file, const cb_model *m, const char *name,
				   const float *got, size_t n)
{
	size_t		len;
	unsigned char *buf = ut_read_file(file, &len);
	char		dtype[16];
	uint64_t	b,
				e,
				ds;

	(void) m;
	CHECK_MSG(buf != NULL, "cannot read %s", file);
	if (buf == NULL)
		return;
	CHECK_MSG(ut_safetensors_locate(buf, len, name, dtype, &b, &e, &ds) == 0, "%s: %s not found", file, name);
	CHECK_EQ_STR(dtype, "F32");
	CHECK_EQ_INT(e - b, n * 4);
	CHECK_MSG(ds + e <= len && got != NULL && memcmp(buf + ds + b, got, n * 4) == 0,
			  "%s: %s differs from the file", model, name);
	free(buf);
}

static void
test_weights_equal_file_bytes(void)
{
	built		b;

	if (build(GOLDEN "mlm", &b) == CB_OK)
	{
		const cb_model *m = &b.model;
		const char *f = GOLDEN "mlm/model.safetensors";

		check_against_file("mlm", f, m, "roberta.embeddings.word_embeddings.weight", MD(m->word_embeddings), 8005 * 64);
		check_against_file("mlm", f, m, "roberta.embeddings.position_embeddings.weight", m->position_embeddings, 130 * 64);
		check_against_file("mlm", f, m, "roberta.embeddings.token_type_embeddings.weight", m->token_type_embeddings, 64);
		check_against_file("mlm", f, m, "roberta.embeddings.LayerNorm.bias", m->embeddings_ln_b, 64);
		check_against_file("mlm", f, m, "roberta.encoder.layer.0.attention.self.query.weight", MD(m->layers[0].query_w), 64 * 64);
		check_against_file("mlm", f, m, "roberta.encoder.layer.1.attention.self.value.bias", m->layers[1].value_b, 64);
		check_against_file("mlm", f, m, "roberta.encoder.layer.1.intermediate.dense.weight", MD(m->layers[1].inter_w), 256 * 64);
		check_against_file("mlm", f, m, "roberta.encoder.layer.1.output.dense.weight", MD(m->layers[1].out_w), 64 * 256);
		check_against_file("mlm", f, m, "roberta.encoder.layer.0.output.LayerNorm.weight", m->layers[0].out_ln_w, 64);
		check_against_file("mlm", f, m, "lm_head.dense.weight", MD(m->lm_dense_w), 64 * 64);
		check_against_file("mlm", f, m, "lm_head.layer_norm.weight", m->lm_ln_w, 64);
		check_against_file("mlm", f, m, "lm_head.bias", m->lm_decoder_b, 8005);
	}
	else
		CHECK_MSG(0, "mlm: %s", b.err.message);
	unbuild(&b);

	if (build(GOLDEN "cls3", &b) == CB_OK)
	{
		const cb_model *m = &b.model;
		const char *f = GOLDEN "cls3/model.safetensors";

		check_against_file("cls3", f, m, "classifier.dense.weight", MD(m->cls_dense_w), 64 * 64);
		check_against_file("cls3", f, m, "classifier.dense.bias", m->cls_dense_b, 64);
		check_against_file("cls3", f, m, "classifier.out_proj.weight", MD(m->cls_out_w), 3 * 64);
		check_against_file("cls3", f, m, "classifier.out_proj.bias", m->cls_out_b, 3);
		check_against_file("cls3", f, m, "roberta.encoder.layer.1.attention.output.dense.weight", MD(m->layers[1].attn_out_w), 64 * 64);
	}
	else
		CHECK_MSG(0, "cls3: %s", b.err.message);
	unbuild(&b);

	if (build(GOLDEN "clm", &b) == CB_OK)
	{
		const cb_model *m = &b.model;
		const char *f = GOLDEN "clm/model.safetensors";

		check_against_file("clm", f, m, "lm_head.bias", m->lm_decoder_b, 8005);
		check_against_file("clm", f, m, "roberta.encoder.layer.0.attention.self.key.weight", MD(m->layers[0].key_w), 64 * 64);
		check_against_file("clm", f, m, "roberta.encoder.layer.0.attention.output.LayerNorm.bias", m->layers[0].attn_ln_b, 64);
	}
	else
		CHECK_MSG(0, "clm: %s", b.err.message);
	unbuild(&b);
}

/* pytorch_model.bin and model.safetensors of mlm: bit-identical images */
static void
test_torch_bin_equals_safetensors(void)
{
	char	   *tmp = ut_make_temp_dir("cb_bin");
	built		a,
				b;

	CHECK(tmp != NULL);
	if (tmp == NULL)
		return;
	CHECK(ut_copy_file(GOLDEN "mlm/config.json", ut_path(tmp, "config.json")) == 0);
	CHECK(ut_copy_file(GOLDEN "mlm/pytorch_model.bin", ut_path(tmp, "pytorch_model.bin")) == 0);
	CHECK_MSG(build(tmp, &b) == CB_OK, "bin: %s", b.err.message);
	CHECK_MSG(build(GOLDEN "mlm", &a) == CB_OK, "safetensors: %s", a.err.message);
	if (a.status == CB_OK && b.status == CB_OK)
	{
		CHECK_EQ_INT(a.size, b.size);
		CHECK_MSG(a.size == b.size && memcmp(a.image, b.image, a.size) == 0,
				  "images from model.safetensors and pytorch_model.bin differ");
		CHECK(MD(b.model.lm_decoder_w) == MD(b.model.word_embeddings));
	}
	{
		cb_model_source *s;
		cb_error	err;

		if (cb_model_source_open(tmp, &s, &err) == CB_OK)
		{
			CHECK_EQ_STR(cb_model_source_weights_file(s), "pytorch_model.bin");
			cb_model_source_close(s);
		}
		else
			CHECK_MSG(0, "%s", err.message);
	}
	unbuild(&a);
	unbuild(&b);

	/* safetensors is preferred when both exist */
	{
		cb_model_source *s;
		cb_error	err;

		CHECK(cb_model_source_open(GOLDEN "mlm", &s, &err) == CB_OK);
		CHECK_EQ_STR(cb_model_source_weights_file(s), "model.safetensors");
		cb_model_source_close(s);
	}
	ut_remove_dir(tmp);
	free(tmp);
}

/* pytorch_model.bin.index.json (sharded torch checkpoints) and an untied decoder */
static void
test_torch_bin_sharded_and_untied(void)
{
	char	   *tmp = ut_make_temp_dir("cb_binidx");
	size_t		stlen,
				cfglen;
	unsigned char *st = ut_read_file(GOLDEN "mlm/model.safetensors", &stlen);
	unsigned char *cfg = ut_read_file(GOLDEN "mlm/config.json", &cfglen);
	char	   *index = malloc(65536);
	size_t		il = 0;
	uint64_t	n = 0;
	built		a,
				b;

	if (tmp == NULL || st == NULL || cfg == NULL)
	{
		CHECK(0);
		return;
	}
	/* the index lists every tensor name of the safetensors header (found by text search) */
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | st[i];
	il += (size_t) sprintf(index + il, "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {");
	{
		const char *h = (const char *) st + 8;
		const char *end = h + n;
		int			count = 0;

		for (const char *q = h; q < end && (q = strstr(q, ":{\"dtype\"")) != NULL && q < end; q++)
		{
			const char *k = q - 1;

			while (k > h && *(k - 1) != '"')
				k--;
			il += (size_t) sprintf(index + il, "%s\"%.*s\": \"pytorch_model-00001-of-00001.bin\"",
								   count++ ? ", " : "", (int) (q - 1 - k), k);
		}
		CHECK_EQ_INT(count, 2 * 16 + 5 + 5);	/* layers, embeddings, MLM head */
	}
	il += (size_t) sprintf(index + il, "}}");
	CHECK(ut_write_file(ut_path(tmp, "pytorch_model.bin.index.json"), index, il) == 0);
	CHECK(ut_copy_file(GOLDEN "mlm/pytorch_model.bin", ut_path(tmp, "pytorch_model-00001-of-00001.bin")) == 0);
	CHECK(ut_write_file(ut_path(tmp, "config.json"), cfg, cfglen) == 0);
	CHECK_MSG(build(tmp, &b) == CB_OK, "sharded bin: %s", b.err.message);
	CHECK(build(GOLDEN "mlm", &a) == CB_OK);
	CHECK(a.status == CB_OK && b.status == CB_OK && a.size == b.size && memcmp(a.image, b.image, a.size) == 0);
	unbuild(&b);

	/* untied: pytorch_model.bin stores lm_head.decoder.weight; it is then loaded as its own tensor */
	{
		unsigned char buf[4096];
		size_t		l = cfglen;

		memcpy(buf, cfg, cfglen);
		CHECK(ut_replace(buf, &l, sizeof(buf), "\"use_cache\": true", "\"use_cache\": true, \"tie_word_embeddings\": false") == 0);
		CHECK(ut_write_file(ut_path(tmp, "config.json"), buf, l) == 0);
		unlink(ut_path(tmp, "pytorch_model.bin.index.json"));
		rename(ut_path(tmp, "pytorch_model-00001-of-00001.bin"), ut_path(tmp, "pytorch_model.bin"));
		CHECK_MSG(build(tmp, &b) == CB_OK, "untied: %s", b.err.message);
		if (b.status == CB_OK && a.status == CB_OK)
		{
			CHECK(MD(b.model.lm_decoder_w) != MD(b.model.word_embeddings));
			CHECK(memcmp(MD(b.model.lm_decoder_w), MD(a.model.word_embeddings), 8005 * 64 * 4) == 0);
			CHECK_EQ_INT(b.model.parameter_count, a.model.parameter_count + 8005 * 64);
		}
		unbuild(&b);
	}
	unbuild(&a);
	free(index);
	free(st);
	free(cfg);
	ut_remove_dir(tmp);
	free(tmp);
}

/* ---- F16 / BF16 ------------------------------------------------------------- */

static uint16_t
f32_to_f16_rne(float f)
{
	uint32_t	x;
	uint16_t	sign;
	float		a = fabsf(f);
	int			e;

	memcpy(&x, &f, 4);
	sign = (uint16_t) ((x >> 16) & 0x8000);
	if (isnan(f))
		return sign | 0x7E00;
	if (a >= 65520.0f)
		return sign | 0x7C00;
	if (a < ldexpf(1.0f, -14))
		return sign | (uint16_t) nearbyintf(a * ldexpf(1.0f, 24));	/* may carry into the exponent: fine */
	frexpf(a, &e);				/* a = m * 2^e, m in [0.5, 1) */
	{
		int			E = e - 1;
		long		m = lrintf(ldexpf(a, 10 - E));	/* in [1024, 2048] */

		if (m == 2048)
		{
			m = 1024;
			E++;
		}
		if (E + 15 >= 31)
			return sign | 0x7C00;
		return sign | (uint16_t) (((E + 15) << 10) | (m - 1024));
	}
}

static float
f16_value(uint16_t h)
{
	int			e = (h >> 10) & 0x1F,
				m = h & 0x3FF;
	float		v;

	if (e == 0)
		v = ldexpf((float) m, -24);
	else if (e == 31)
		v = m ? NAN : INFINITY;
	else
		v = ldexpf((float) (1024 + m), e - 25);
	return (h & 0x8000) ? -v : v;
}

static float
bf16_rne(float f)
{
	uint32_t	x;

	memcpy(&x, &f, 4);
	x = (x + 0x7FFFu + ((x >> 16) & 1u)) & 0xFFFF0000u;
	memcpy(&f, &x, 4);
	return f;
}

static void
test_reduced_precision(void)
{
	built		ref,
				h,
				bf;
	named_tensor tr[64],
				th[64],
				tb[64];
	size_t		n;

	CHECK(build(GOLDEN "mlm", &ref) == CB_OK);
	/* float32: widened at load (auto keeps them as stored: test_auto_keeps_stored) */
	CHECK(build_precision(GOLDEN "mlm_fp16", CB_PRECISION_FLOAT32, &h) == CB_OK);
	CHECK(build_precision(GOLDEN "mlm_bf16_sharded", CB_PRECISION_FLOAT32, &bf) == CB_OK);
	if (ref.status || h.status || bf.status)
	{
		unbuild(&ref);
		unbuild(&h);
		unbuild(&bf);
		return;
	}
	n = list_tensors(&ref.model, tr);
	CHECK_EQ_INT(list_tensors(&h.model, th), n);
	CHECK_EQ_INT(list_tensors(&bf.model, tb), n);
	for (size_t t = 0; t < n; t++)
	{
		size_t		bad_tol_h = 0,
					bad_exact_h = 0,
					bad_tol_b = 0,
					bad_exact_b = 0;

		for (size_t i = 0; i < tr[t].n; i++)
		{
			float		x = tr[t].p[i];
			float		vh = th[t].p[i];
			float		vb = tb[t].p[i];

			/* the rounding bound (half-ulp relative; absolute below f16's normal range) */
			if (fabsf(vh - x) > fmaxf(ldexpf(fabsf(x), -11), ldexpf(1.0f, -25)))
				bad_tol_h++;
			if (fabsf(vb - x) > ldexpf(fabsf(x), -8))
				bad_tol_b++;
			/* and exactly the round-to-nearest-even of the f32 weight */
			if (vh != f16_value(f32_to_f16_rne(x)))
				bad_exact_h++;
			if (vb != bf16_rne(x))
				bad_exact_b++;
		}
		CHECK_MSG(bad_tol_h == 0 && bad_exact_h == 0, "f16 %s: %zu over tolerance, %zu not RNE(f32)",
				  tr[t].name, bad_tol_h, bad_exact_h);
		CHECK_MSG(bad_tol_b == 0 && bad_exact_b == 0, "bf16 %s: %zu over tolerance, %zu not RNE(f32)",
				  tr[t].name, bad_tol_b, bad_exact_b);
	}
	/* special values of the exact F16 conversion */
	{
		const float *w = th[0].p;
		size_t		subnormals = 0;

		for (size_t i = 0; i < th[0].n; i++)
			if (w[i] != 0.0f && fabsf(w[i]) < ldexpf(1.0f, -14))
				subnormals++;
		(void) subnormals;		/* informative only: N(0, 0.2) weights rarely reach 6e-5 */
	}
	unbuild(&ref);
	unbuild(&h);
	unbuild(&bf);
}

/* ---- synthetic models: a tiny safetensors writer ---------------------------- */

typedef struct syn_tensor
{
	char		name[128];
	const char *dtype;
	int			ndim;
	int64_t		shape[2];
	const void *data;			/* NULL: zeros */
	size_t		nbytes;
} syn_tensor;

static int
write_safetensors(const char *path, const syn_tensor *ts, size_t n)
{
	size_t		cap = 256 + n * 256,
				hl = 0,
				total = 0;
	char	   *h = malloc(cap);
	unsigned char *file;
	size_t		off = 0;
	int			r;

	hl += (size_t) sprintf(h + hl, "{");
	for (size_t i = 0; i < n; i++)
	{
		hl += (size_t) sprintf(h + hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", ts[i].name, ts[i].dtype);
		for (int d = 0; d < ts[i].ndim; d++)
			hl += (size_t) sprintf(h + hl, "%s%lld", d ? "," : "", (long long) ts[i].shape[d]);
		hl += (size_t) sprintf(h + hl, "],\"data_offsets\":[%zu,%zu]}", total, total + ts[i].nbytes);
		total += ts[i].nbytes;
	}
	hl += (size_t) sprintf(h + hl, "}");
	file = calloc(1, 8 + hl + total);
	for (int i = 0; i < 8; i++)
		file[i] = (unsigned char) ((uint64_t) hl >> (8 * i));
	memcpy(file + 8, h, hl);
	for (size_t i = 0; i < n; i++)
	{
		if (ts[i].data != NULL)
			memcpy(file + 8 + hl + off, ts[i].data, ts[i].nbytes);
		off += ts[i].nbytes;
	}
	r = ut_write_file(path, file, 8 + hl + total);
	free(file);
	free(h);
	return r;
}

/*
 * A bare CamembertModel (no prefix) with H = 4, I = 4, one layer, whose word
 * embeddings [16384, 4] hold every 16-bit pattern once: the F16 and BF16
 * conversions are checked exhaustively.  Also carries tensors transformers
 * ignores (pooler, position_ids).
 */
static void
test_exhaustive_half_conversion(void)
{
	static const char *const layer_names[] = {
		"attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
		"attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
		"attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
		"attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
		"output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"};
	char	   *tmp = ut_make_temp_dir("cb_half");
	uint16_t   *all = malloc(65536 * 2);
	const char *cfg = "{\"architectures\":[\"CamembertModel\"],\"vocab_size\":16384,\"hidden_size\":4,"
		"\"num_hidden_layers\":1,\"num_attention_heads\":1,\"intermediate_size\":4,"
		"\"max_position_embeddings\":8,\"type_vocab_size\":1,\"layer_norm_eps\":1e-5}";

	if (tmp == NULL || all == NULL)
	{
		CHECK(0);
		return;
	}
	for (uint32_t i = 0; i < 65536; i++)
		all[i] = (uint16_t) i;
	CHECK(ut_write_file(ut_path(tmp, "config.json"), cfg, strlen(cfg)) == 0);
	for (int bf = 0; bf < 2; bf++)
	{
		syn_tensor	ts[32];
		size_t		n = 0;
		const char *dt = bf ? "BF16" : "F16";
		built		b;

		memset(ts, 0, sizeof(ts));
#define T1(nm, d0) do { snprintf(ts[n].name, 128, "%s", nm); ts[n].dtype = dt; ts[n].ndim = 1; \
		ts[n].shape[0] = d0; ts[n].nbytes = (size_t) (d0) * 2; n++; } while (0)
#define T2(nm, d0, d1) do { snprintf(ts[n].name, 128, "%s", nm); ts[n].dtype = dt; ts[n].ndim = 2; \
		ts[n].shape[0] = d0; ts[n].shape[1] = d1; ts[n].nbytes = (size_t) (d0) * (d1) * 2; n++; } while (0)
		T2("embeddings.word_embeddings.weight", 16384, 4);
		ts[0].data = all;
		T2("embeddings.position_embeddings.weight", 8, 4);
		T2("embeddings.token_type_embeddings.weight", 1, 4);
		T1("embeddings.LayerNorm.weight", 4);
		T1("embeddings.LayerNorm.bias", 4);
		for (int k = 0; k < 16; k++)
		{
			char		nm[128];

			snprintf(nm, sizeof(nm), "encoder.layer.0.%s", layer_names[k]);
			if (strstr(nm, "weight") && !strstr(nm, "LayerNorm"))
				T2(nm, 4, 4);
			else
				T1(nm, 4);
		}
		T2("pooler.dense.weight", 4, 4);
		T1("pooler.dense.bias", 4);
#undef T1
#undef T2
		snprintf(ts[n].name, 128, "embeddings.position_ids");
		ts[n].dtype = "I64";
		ts[n].ndim = 2;
		ts[n].shape[0] = 1;
		ts[n].shape[1] = 8;
		ts[n].nbytes = 64;
		n++;
		CHECK(write_safetensors(ut_path(tmp, "model.safetensors"), ts, n) == 0);
		/* float32: the conversion at load (auto's in-product widening uses
		 * the same conversion: test_auto_keeps_stored) */
		CHECK_MSG(build_precision(tmp, CB_PRECISION_FLOAT32, &b) == CB_OK, "%s: %s", dt, b.err.message);
		if (b.status == CB_OK)
		{
			size_t		bad = 0;

			CHECK_EQ_INT(b.model.config.stored_dtype, bf ? CB_DTYPE_BF16 : CB_DTYPE_F16);
			CHECK_EQ_INT(b.model.config.architecture, CB_ARCH_ENCODER);
			/* pooler not loaded: 16384*4 + 8*4 + 4 + 8 + (3*20 + 20 + 8 + 20 + 20 + 8) */
			CHECK_EQ_INT(b.model.parameter_count, 65536 + 32 + 4 + 8 + 136);
			for (uint32_t i = 0; i < 65536; i++)
			{
				float		got = MD(b.model.word_embeddings)[i];
				uint32_t	gb;

				memcpy(&gb, &got, 4);
				if (bf)
				{
					if (gb != i << 16)
						bad++;
				}
				else
				{
					float		want = f16_value((uint16_t) i);

					if (isnan(want) ? !isnan(got) || (gb >> 31) != (i >> 15) : memcmp(&got, &want, 4) != 0)
						bad++;
				}
			}
			CHECK_MSG(bad == 0, "%s: %zu of 65536 bit patterns converted wrongly", dt, bad);
			CHECK(b.model.layers[0].out_ln_b[3] == 0.0f);
		}
		unbuild(&b);
	}
	free(all);
	ut_remove_dir(tmp);
	free(tmp);
}

/* ---- the image ---------------------------------------------------------- */

static void
test_position_independent(void)
{
	built		b;
	named_tensor ta[64],
				tc[64];

	if (build(GOLDEN "cls3", &b) != CB_OK)
	{
		CHECK_MSG(0, "%s", b.err.message);
		unbuild(&b);
		return;
	}
	for (int variant = 0; variant < 2; variant++)
	{
		/* 64-aligned elsewhere, then only 8-aligned */
		unsigned char *block = aligned_alloc(64, b.size + 128);
		unsigned char *copy = block + (variant ? 8 : 64);
		cb_model	m2;
		cb_error	err;
		size_t		n;

		memcpy(copy, b.image, b.size);
		CHECK_MSG(cb_model_view(copy, b.size, &m2, &err) == CB_OK, "%s", err.message);
		n = list_tensors(&b.model, ta);
		CHECK_EQ_INT(list_tensors(&m2, tc), n);
		for (size_t i = 0; i < n; i++)
		{
			CHECK_EQ_INT((const unsigned char *) tc[i].p - copy,
						 (const unsigned char *) ta[i].p - (const unsigned char *) b.image);
			CHECK(memcmp(tc[i].p, ta[i].p, ta[i].n * 4) == 0);
		}
		CHECK(memcmp(&m2.config, &b.model.config, sizeof(cb_config)) == 0);
		for (int i = 0; i < 3; i++)
		{
			CHECK_EQ_STR(m2.labels[i], b.model.labels[i]);
			CHECK((const unsigned char *) m2.labels[i] >= copy &&
				  (const unsigned char *) m2.labels[i] < copy + b.size);
		}
		CHECK_EQ_INT(m2.parameter_count, b.model.parameter_count);
		/* the original can go away: the copy stands alone */
		cb_model_view_release(&m2);
		free(block);
	}
	unbuild(&b);

	/* bfloat16 / int8 images: 64-byte alignment required (aligned vector loads) */
	for (int p = CB_PRECISION_BFLOAT16; p <= CB_PRECISION_INT8; p++)
	{
		if (build_precision(GOLDEN "cls3", (cb_precision) p, &b) != CB_OK)
		{
			CHECK_MSG(0, "%s", b.err.message);
			unbuild(&b);
			continue;
		}
		for (int variant = 0; variant < 2; variant++)
		{
			unsigned char *block = aligned_alloc(64, b.size + 128);
			unsigned char *copy = block + (variant ? 8 : 64);
			cb_model	m2;
			cb_error	err;

			memcpy(copy, b.image, b.size);
			cb_clear_error(&err);
			CHECK_EQ_INT(cb_model_view(copy, b.size, &m2, &err), variant ? CB_ERR_INVALID : CB_OK);
			if (variant)
				CHECK(strstr(err.message, "64-byte aligned") != NULL);
			cb_model_view_release(&m2);
			free(block);
		}
		unbuild(&b);
	}
}

static void
test_view_rejects_bad_images(void)
{
	built		b;
	cb_model	m;
	cb_error	err;
	size_t		meta;
	unsigned char *img;
	size_t		ok = 0,
				rejected = 0,
				other = 0;

	if (build(GOLDEN "multilabel", &b) != CB_OK)
	{
		CHECK_MSG(0, "%s", b.err.message);
		unbuild(&b);
		return;
	}
	img = b.image;
	CHECK(cb_model_view(img, 0, &m, &err) == CB_ERR_FORMAT);
	CHECK(cb_model_view(img, 40, &m, &err) == CB_ERR_FORMAT);
	CHECK(cb_model_view(img, b.size - 1, &m, &err) == CB_ERR_FORMAT);
	CHECK(contains(err.message, "bytes"));
	CHECK(cb_model_view(img + 4, b.size - 4, &m, &err) == CB_ERR_INVALID);	/* misaligned */
	CHECK(cb_model_view(NULL, b.size, &m, &err) == CB_ERR_INVALID);
	img[0] ^= 1;
	CHECK(cb_model_view(img, b.size, &m, &err) == CB_ERR_FORMAT);
	CHECK(contains(err.message, "magic"));
	img[0] ^= 1;

	/* every byte of the metadata (before the first tensor), set to hostile values */
	meta = (size_t) ((const unsigned char *) MD(b.model.word_embeddings) - img);
	CHECK(meta > 0 && meta < 65536);
	for (size_t i = 0; i < meta; i++)
	{
		static const unsigned char vals[] = {0x00, 0xFF, 0x80, 0x01, 0x7F};
		unsigned char orig = img[i];

		for (size_t v = 0; v < sizeof(vals); v++)
		{
			cb_status	st;

			img[i] = (unsigned char) (vals[v] == 0x01 ? orig ^ 0x01 : vals[v]);
			if (img[i] == orig)
				continue;
			st = cb_model_view(img, b.size, &m, &err);
			if (st == CB_OK)
			{
				named_tensor ts[64];
				size_t		n = list_tensors(&m, ts);
				bool		inside = true;

				for (size_t t = 0; t < n; t++)
					if (ts[t].p == NULL || (const unsigned char *) ts[t].p < img ||
						(const unsigned char *) ts[t].p + ts[t].n * 4 > img + b.size)
						inside = false;
				for (int l = 0; l < m.config.num_labels; l++)
					if (m.labels[l] == NULL || (const unsigned char *) m.labels[l] < img ||
						(const unsigned char *) m.labels[l] + strlen(m.labels[l]) >= img + b.size)
						inside = false;
				CHECK_MSG(inside, "byte %zu = 0x%02x: view accepted an image with pointers outside it", i, img[i]);
				cb_model_view_release(&m);
				ok++;
			}
			else if (st == CB_ERR_FORMAT)
				rejected++;
			else
				other++;
		}
		img[i] = orig;
	}
	CHECK_EQ_INT(other, 0);
	CHECK(rejected > meta / 2);	/* most metadata bytes matter */
	CHECK(cb_model_view(img, b.size, &m, &err) == CB_OK);
	cb_model_view_release(&m);
	unbuild(&b);
}

static void
test_write_image_contract(void)
{
	cb_model_source *src;
	cb_error	err;
	size_t		size;
	unsigned char *buf;

	CHECK(cb_model_source_open(GOLDEN "cls3", &src, &err) == CB_OK);
	size = cb_model_source_image_size(src);
	CHECK(size % 64 == 0);
	buf = aligned_alloc(64, size + 64);
	CHECK(cb_model_source_write_image(src, buf, size - 1, &err) == CB_ERR_INVALID);
	CHECK(cb_model_source_write_image(src, buf + 4, size, &err) == CB_ERR_INVALID);
	interrupt_calls = 0;
	cb_set_interrupt_hook(count_interrupts);
	CHECK(cb_model_source_write_image(src, buf, size, &err) == CB_OK);
	cb_set_interrupt_hook(NULL);
	/* 5 embedding tensors + 16 per layer + 4 classifier tensors */
	CHECK_EQ_INT(interrupt_calls, 5 + 16 * 2 + 4);
	/* deterministic: writing twice gives the same bytes */
	{
		unsigned char *again = aligned_alloc(64, size);

		memset(again, 0x33, size);
		CHECK(cb_model_source_write_image(src, again, size, &err) == CB_OK);
		CHECK(memcmp(buf, again, size) == 0);
		free(again);
	}
	cb_model_source_close(src);
	free(buf);

	/* the convenience loader */
	{
		cb_model	m;

		CHECK(cb_model_load_dir(GOLDEN "reg1", &m, &err) == CB_OK);
		CHECK(m.owned_image != NULL && m.config.num_labels == 1);
		cb_model_view_release(&m);
		CHECK(m.owned_image == NULL);
	}
}

/* ---- allocation failures: every path cleans up ------------------------------ */

static void
alloc_failures_for(const char *dir)
{
	long		k;
	cb_status	st = CB_ERR_NOMEM;

	ut_alloc_reset();
	cb_set_allocator(&ut_counting_allocator);
	for (k = 0; k < 100000 && st == CB_ERR_NOMEM; k++)
	{
		cb_model_source *src = NULL;
		cb_error	err;

		ut_alloc.budget = k;
		st = cb_model_source_open(dir, &src, &err);
		CHECK_MSG(st == CB_OK || st == CB_ERR_NOMEM, "%s with %ld allocations: %s", dir, k, err.message);
		cb_model_source_close(src);
	}
	ut_alloc.budget = -1;
	cb_set_allocator(NULL);
	CHECK_MSG(ut_alloc.live == 0, "%s: %ld blocks not freed", dir, ut_alloc.live);
	CHECK_MSG(st == CB_OK, "%s never opened under allocation failures", dir);
	CHECK(k > 10);
}

static void
test_allocation_failures(void)
{
	char	   *tmp = ut_make_temp_dir("cb_nomem");

	alloc_failures_for(GOLDEN "cls3");
	alloc_failures_for(GOLDEN "mlm_bf16_sharded");
	if (tmp != NULL)
	{
		ut_copy_file(GOLDEN "mlm/config.json", ut_path(tmp, "config.json"));
		ut_copy_file(GOLDEN "mlm/pytorch_model.bin", ut_path(tmp, "pytorch_model.bin"));
		alloc_failures_for(tmp);
		ut_remove_dir(tmp);
		free(tmp);
	}
}

/* ---- corrupt safetensors ------------------------------------------------- */

/* Write file with its safetensors header text edited (from → to), fixing N. */
static int
write_edited_safetensors(const char *from_file, const char *to_file, const char *from, const char *to)
{
	size_t		len;
	unsigned char *buf = ut_read_file(from_file, &len);
	unsigned char *out;
	uint64_t	n = 0;
	size_t		hlen,
				cap;
	int			r;

	if (buf == NULL)
		return -1;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | buf[i];
	cap = (size_t) n + 4096;
	out = malloc(cap + len);
	hlen = (size_t) n;
	memcpy(out, buf + 8, hlen);
	if (from != NULL && ut_replace(out, &hlen, cap, from, to) != 0)
	{
		free(buf);
		free(out);
		return -1;
	}
	{
		unsigned char *file = malloc(8 + hlen + (len - 8 - (size_t) n));

		for (int i = 0; i < 8; i++)
			file[i] = (unsigned char) ((uint64_t) hlen >> (8 * i));
		memcpy(file + 8, out, hlen);
		memcpy(file + 8 + hlen, buf + 8 + n, len - 8 - (size_t) n);
		r = ut_write_file(to_file, file, 8 + hlen + (len - 8 - (size_t) n));
		free(file);
	}
	free(buf);
	free(out);
	return r;
}

static void
test_corrupt_safetensors(void)
{
	char	   *tmp = ut_make_temp_dir("cb_st");
	const char *st_path;
	size_t		len;
	unsigned char *orig;
	uint64_t	n = 0;

	if (tmp == NULL)
	{
		CHECK(0);
		return;
	}
	st_path = ut_path(tmp, "model.safetensors");
	CHECK(ut_copy_file(GOLDEN "mlm/config.json", ut_path(tmp, "config.json")) == 0);
	orig = ut_read_file(GOLDEN "mlm/model.safetensors", &len);
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | orig[i];

	/* unmodified copy opens */
	CHECK(ut_write_file(st_path, orig, len) == 0);
	EXPECT_OPEN_OK(tmp);

	/* truncated at many points */
	{
		size_t		cuts[] = {0, 1, 7, 8, 9, 20, (size_t) n / 2, 8 + (size_t) n - 1, 8 + (size_t) n,
			8 + (size_t) n + 1, 8 + (size_t) n + 4, len / 2, len - 4, len - 1};

		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		{
			CHECK(ut_write_file(st_path, orig, cuts[i]) == 0);
			EXPECT_OPEN_FAILS(tmp, CB_ERR_FORMAT, "model.safetensors", NULL, NULL);
		}
		/* and with trailing garbage */
		{
			unsigned char *longer = malloc(len + 3);

			memcpy(longer, orig, len);
			memcpy(longer + len, "xyz", 3);
			CHECK(ut_write_file(st_path, longer, len + 3) == 0);
			EXPECT_OPEN_FAILS(tmp, CB_ERR_FORMAT, "model.safetensors", "cover", NULL);
			free(longer);
		}
	}

	/* header length: huge, past the end, tiny */
	{
		unsigned char *m = malloc(len);
		uint64_t	vals[] = {UINT64_MAX, (uint64_t) 1 << 40, 200u * 1024u * 1024u, (uint64_t) len - 7, 1, 0};
		const char *msgs[] = {"exceeds the limit", "exceeds the limit", "exceeds the limit", "past the end", "too short", "too short"};

		for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++)
		{
			memcpy(m, orig, len);
			for (int i = 0; i < 8; i++)
				m[i] = (unsigned char) (vals[v] >> (8 * i));
			CHECK(ut_write_file(st_path, m, len) == 0);
			EXPECT_OPEN_FAILS(tmp, CB_ERR_FORMAT, "model.safetensors", msgs[v], NULL);
		}
		free(m);
	}

	/* header edits */
	{
		static const struct
		{
			const char *from,
					   *to;
			cb_status	st;
			const char *m1,
					   *m2;
		}			edits[] = {
			/* offsets past the end of the data area */
			{"\"data_offsets\":[0,32020]", "\"data_offsets\":[2532372,2564392]", CB_ERR_FORMAT, "lm_head.bias", "past the end"},
			/* span does not match shape x dtype */
			{"\"data_offsets\":[0,32020]", "\"data_offsets\":[0,32024]", CB_ERR_FORMAT, "lm_head.bias", "32020"},
			/* overlapping tensors */
			{"\"data_offsets\":[32020,32276]", "\"data_offsets\":[32000,32256]", CB_ERR_FORMAT, "overlap", NULL},
			/* begin after end */
			{"\"data_offsets\":[0,32020]", "\"data_offsets\":[32020,0]", CB_ERR_FORMAT, "lm_head.bias", "begin after end"},
			/* offsets not integers */
			{"\"data_offsets\":[0,32020]", "\"data_offsets\":[0,3.2e4]", CB_ERR_FORMAT, "lm_head.bias", "data_offsets"},
			{"\"data_offsets\":[0,32020]", "\"data_offsets\":[-1,32019]", CB_ERR_FORMAT, "lm_head.bias", "data_offsets"},
			{"\"data_offsets\":[0,32020]", "\"data_offsets\":[0]", CB_ERR_FORMAT, "lm_head.bias", "data_offsets"},
			/* unknown dtype; known but not a float weight */
			{"\"lm_head.bias\":{\"dtype\":\"F32\"", "\"lm_head.bias\":{\"dtype\":\"F33\"", CB_ERR_FORMAT, "lm_head.bias", "unknown dtype"},
			{"\"lm_head.bias\":{\"dtype\":\"F32\"", "\"lm_head.bias\":{\"dtype\":\"I32\"", CB_ERR_UNSUPPORTED, "lm_head.bias", "I32"},
			/* shape edits */
			{"\"shape\":[8005],", "\"shape\":[8004],", CB_ERR_FORMAT, "lm_head.bias", "needs 32016 bytes"},
			{"\"shape\":[8005],", "\"shape\":[-8005],", CB_ERR_FORMAT, "lm_head.bias", "shape"},
			{"\"shape\":[8005],", "\"shape\":[8005,1,1,1,1,1,1,1,1],", CB_ERR_UNSUPPORTED, "lm_head.bias", "dimensions"},
			{"\"shape\":[8005],", "\"shape\":[4294967296,4294967296,4294967296],", CB_ERR_FORMAT, "lm_head.bias", "overflow"},
			{"\"shape\":[8005],", "\"shape\":[1,8005],", CB_ERR_FORMAT, "lm_head.bias", "[1, 8005]"},
			/* missing tensor (renamed) */
			{"roberta.encoder.layer.1.output.LayerNorm.bias", "roberta.encoder.layer.1.output.LayerNorm.bibs", CB_ERR_FORMAT,
			"'roberta.encoder.layer.1.output.LayerNorm.bias' is missing", "[64]"},
			{"roberta.embeddings.word_embeddings.weight", "roberta.embeddings.word_embeddings.weighs", CB_ERR_FORMAT,
			"word_embeddings.weight' is missing", "[8005, 64]"},
			/* garbage JSON */
			{"\"dtype\"", "\"dtype", CB_ERR_FORMAT, "invalid JSON", "model.safetensors"},
			{"{\"__metadata__\"", "[\"__metadata__\"", CB_ERR_FORMAT, "safetensors", NULL},
			{"{\"__metadata__\":{\"format\":\"pt\"}", "{\"__metadata__\":{\"format\":7}", CB_ERR_FORMAT, "__metadata__", NULL},
			{"\"lm_head.dense.bias\":", "\"lm_head.bias\":", CB_ERR_FORMAT, "duplicate key", "lm_head.bias"},
			{"\"lm_head.bias\":{\"dtype\"", "\"lm_head.bias\":{\"dtyp\"", CB_ERR_FORMAT, "lm_head.bias", "dtype"},
		};

		for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++)
		{
			int			w = write_edited_safetensors(GOLDEN "mlm/model.safetensors", st_path, edits[i].from, edits[i].to);

			CHECK_MSG(w == 0, "edit %zu (%s) not applied", i, edits[i].from);
			EXPECT_OPEN_FAILS(tmp, edits[i].st, edits[i].m1, edits[i].m2, NULL);
		}
	}

	/* an extra, unused tensor is ignored (like transformers), wherever it is */
	CHECK(write_edited_safetensors(GOLDEN "mlm/model.safetensors", st_path,
								   "\"lm_head.dense.bias\":", "\"roberta.pooler.dense.bias\":") == 0);
	EXPECT_OPEN_FAILS(tmp, CB_ERR_FORMAT, "lm_head.dense.bias' is missing", NULL, NULL);
	CHECK(write_edited_safetensors(GOLDEN "mlm/model.safetensors", st_path,
								   "\"__metadata__\":{\"format\":\"pt\"},",
								   "\"__metadata__\":{\"format\":\"pt\"},\"roberta.pooler.dense.bias\":"
								   "{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},") == 0);
	EXPECT_OPEN_OK(tmp);

	free(orig);
	ut_remove_dir(tmp);
	free(tmp);
}

/* config.json edits on top of a good model */
static void
test_config_vs_weights(void)
{
	char	   *tmp = ut_make_temp_dir("cb_cfg");
	size_t		len;
	unsigned char *cfg = ut_read_file(GOLDEN "mlm/config.json", &len);
	static const struct
	{
		const char *from,
				   *to;
		cb_status	st;
		const char *m1,
				   *m2,
				   *m3;
	}			edits[] = {
		{"\"intermediate_size\": 256", "\"intermediate_size\": 128", CB_ERR_FORMAT,
		"roberta.encoder.layer.0.intermediate.dense.weight' has shape [256, 64]", "[128, 64]", "model.safetensors"},
		{"\"hidden_size\": 64", "\"hidden_size\": 128", CB_ERR_FORMAT, "word_embeddings.weight' has shape [8005, 64]", "[8005, 128]", NULL},
		{"\"vocab_size\": 8005", "\"vocab_size\": 8006", CB_ERR_FORMAT, "[8005, 64]", "[8006, 64]", NULL},
		{"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3", CB_ERR_FORMAT, "roberta.encoder.layer.2.", "missing", NULL},
		{"\"max_position_embeddings\": 130", "\"max_position_embeddings\": 514", CB_ERR_FORMAT, "position_embeddings", "[514, 64]", NULL},
		{"\"type_vocab_size\": 1", "\"type_vocab_size\": 2", CB_ERR_FORMAT, "token_type_embeddings", "[2, 64]", NULL},
		{"\"hidden_size\": 64", "\"hidden_size\": 65", CB_ERR_FORMAT, "multiple", "config.json", NULL},
		{"\"vocab_size\": 8005", "\"vocab_size\": 99999999999", CB_ERR_FORMAT, "vocab_size", "config.json", NULL},
		{"\"CamembertForMaskedLM\"", "\"CamembertForTokenClassification\"", CB_ERR_UNSUPPORTED, "CamembertForTokenClassification", NULL, NULL},
		{"\"architectures\"", "\"architecturez\"", CB_ERR_FORMAT, "architectures", "missing", NULL},
		{"\"hidden_act\": \"gelu\"", "\"hidden_act\": \"relu\"", CB_ERR_UNSUPPORTED, "hidden_act", NULL, NULL},
		{"\"vocab_size\": 8005", "\"vocab_size\": \"8005\"", CB_ERR_FORMAT, "vocab_size", "integer", NULL},
		{"\"use_cache\": true", "\"use_cache\": true,", CB_ERR_FORMAT, "config.json", "invalid JSON", NULL},
		/* untied decoder: the decoder weight is then required */
		{"\"use_cache\": true", "\"use_cache\": true, \"tie_word_embeddings\": false", CB_ERR_FORMAT,
		"lm_head.decoder.weight' is missing", "[8005, 64]", NULL},
		/* the MLM checkpoint read as a classifier: its head is missing */
		{"\"CamembertForMaskedLM\"", "\"CamembertForSequenceClassification\"", CB_ERR_FORMAT, "classifier.dense.weight' is missing", NULL, NULL},
	};

	if (tmp == NULL || cfg == NULL)
	{
		CHECK(0);
		return;
	}
	CHECK(ut_copy_file(GOLDEN "mlm/model.safetensors", ut_path(tmp, "model.safetensors")) == 0);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++)
	{
		unsigned char buf[4096];
		size_t		l = len;

		memcpy(buf, cfg, len);
		CHECK_MSG(ut_replace(buf, &l, sizeof(buf), edits[i].from, edits[i].to) == 0, "edit %s", edits[i].from);
		CHECK(ut_write_file(ut_path(tmp, "config.json"), buf, l) == 0);
		EXPECT_OPEN_FAILS(tmp, edits[i].st, edits[i].m1, edits[i].m2, edits[i].m3);
	}
	/* fewer layers than stored: the extra tensors are ignored, as in transformers */
	{
		unsigned char buf[4096];
		size_t		l = len;
		built		b;

		memcpy(buf, cfg, len);
		CHECK(ut_replace(buf, &l, sizeof(buf), "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1") == 0);
		CHECK(ut_write_file(ut_path(tmp, "config.json"), buf, l) == 0);
		CHECK_MSG(build(tmp, &b) == CB_OK, "%s", b.err.message);
		CHECK_EQ_INT(b.model.config.num_hidden_layers, 1);
		unbuild(&b);
	}
	/* the encoder alone from an MLM checkpoint (head ignored) */
	{
		unsigned char buf[4096];
		size_t		l = len;
		built		b;

		memcpy(buf, cfg, len);
		CHECK(ut_replace(buf, &l, sizeof(buf), "\"CamembertForMaskedLM\"", "\"CamembertModel\"") == 0);
		CHECK(ut_write_file(ut_path(tmp, "config.json"), buf, l) == 0);
		CHECK_MSG(build(tmp, &b) == CB_OK, "%s", b.err.message);
		CHECK_EQ_INT(b.model.config.architecture, CB_ARCH_ENCODER);
		CHECK(MD(b.model.lm_dense_w) == NULL && MD(b.model.lm_decoder_w) == NULL);
		CHECK_EQ_INT(b.model.parameter_count, golden_parameter_count(CB_ARCH_ENCODER, 0));
		unbuild(&b);
	}
	/* no config.json, no weights */
	unlink(ut_path(tmp, "config.json"));
	EXPECT_OPEN_FAILS(tmp, CB_ERR_IO, "config.json", NULL, NULL);
	CHECK(ut_write_file(ut_path(tmp, "config.json"), cfg, len) == 0);
	unlink(ut_path(tmp, "model.safetensors"));
	EXPECT_OPEN_FAILS(tmp, CB_ERR_IO, "no weights", NULL, NULL);
	EXPECT_OPEN_FAILS("/nonexistent/dir", CB_ERR_IO, "config.json", NULL, NULL);

	free(cfg);
	ut_remove_dir(tmp);
	free(tmp);
}

/* unprefixed (bare CamembertModel) and "camembert." checkpoints, LayerNorm gamma/beta */
static void
test_prefixes(void)
{
	char	   *tmp = ut_make_temp_dir("cb_prefix");
	size_t		len;
	unsigned char *cfg = ut_read_file(GOLDEN "mlm/config.json", &len);
	unsigned char buf[4096];
	size_t		l = len;
	built		ref,
				b;
	size_t		stlen;
	unsigned char *st = ut_read_file(GOLDEN "mlm/model.safetensors", &stlen);
	uint64_t	n = 0;

	if (tmp == NULL || cfg == NULL || st == NULL)
	{
		CHECK(0);
		return;
	}
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | st[i];
	memcpy(buf, cfg, len);
	CHECK(ut_replace(buf, &l, sizeof(buf), "\"CamembertForMaskedLM\"", "\"CamembertModel\"") == 0);
	CHECK(ut_write_file(ut_path(tmp, "config.json"), buf, l) == 0);
	CHECK(build(GOLDEN "mlm", &ref) == CB_OK);

	for (int variant = 0; variant < 3; variant++)
	{
		/* rewrite every "roberta." in the header (same header length: pad with spaces) */
		unsigned char *h = malloc(stlen + 8192);
		size_t		hl = (size_t) n;

		memcpy(h, st + 8, hl);
		if (variant == 0)
			while (ut_replace(h, &hl, (size_t) n + 8192, "\"roberta.", "\"") == 0)
				;
		else if (variant == 1)
			while (ut_replace(h, &hl, (size_t) n + 8192, "\"roberta.", "\"camembert.") == 0)
				;
		else
		{
			while (ut_replace(h, &hl, (size_t) n + 8192, "LayerNorm.weight\"", "LayerNorm.gamma\"") == 0)
				;
			while (ut_replace(h, &hl, (size_t) n + 8192, "LayerNorm.bias\"", "LayerNorm.beta\"") == 0)
				;
		}
		{
			unsigned char *file = malloc(8 + hl + stlen);
			size_t		dl = stlen - 8 - (size_t) n;

			for (int i = 0; i < 8; i++)
				file[i] = (unsigned char) ((uint64_t) hl >> (8 * i));
			memcpy(file + 8, h, hl);
			memcpy(file + 8 + hl, st + 8 + n, dl);
			CHECK(ut_write_file(ut_path(tmp, "model.safetensors"), file, 8 + hl + dl) == 0);
			free(file);
		}
		free(h);
		CHECK_MSG(build(tmp, &b) == CB_OK, "variant %d: %s", variant, b.err.message);
		if (b.status == CB_OK)
		{
			named_tensor ta[64],
						tb[64];
			size_t		nb = list_tensors(&b.model, tb);

			list_tensors(&ref.model, ta);
			for (size_t i = 0; i < nb; i++)
				CHECK_MSG(memcmp(ta[i].p, tb[i].p, tb[i].n * 4) == 0, "variant %d: %s differs", variant, tb[i].name);
		}
		unbuild(&b);
	}
	/* both prefixes at once: ambiguous */
	{
		CHECK(write_edited_safetensors(GOLDEN "mlm/model.safetensors", ut_path(tmp, "model.safetensors"),
									   "\"lm_head.bias\":", "\"embeddings.word_embeddings.weight\":") == 0);
		EXPECT_OPEN_FAILS(tmp, CB_ERR_FORMAT, "ambiguous", NULL, NULL);
	}
	unbuild(&ref);
	free(cfg);
	free(st);
	ut_remove_dir(tmp);
	free(tmp);
}

/* ---- sharded ------------------------------------------------------------ */

static void
test_corrupt_shards(void)
{
	char	   *tmp = ut_make_temp_dir("cb_shard");
	size_t		len;
	unsigned char *idx = ut_read_file(GOLDEN "mlm_bf16_sharded/model.safetensors.index.json", &len);
	static const char *const copies[] = {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
	static const struct
	{
		const char *from,
				   *to;
		cb_status	st;
		const char *m1,
				   *m2;
	}			edits[] = {
		{"\"model-00001-of-00002.safetensors\"", "\"../model-00001-of-00002.safetensors\"", CB_ERR_FORMAT,
		"../model-00001-of-00002.safetensors", "not a plain file name"},
		{"\"model-00001-of-00002.safetensors\"", "\"/tmp/model-00001-of-00002.safetensors\"", CB_ERR_FORMAT,
		"/tmp/model-00001-of-00002.safetensors", "not a plain file name"},
		{"\"model-00001-of-00002.safetensors\"", "\"..\"", CB_ERR_FORMAT, "not a plain file name", NULL},
		{"\"model-00001-of-00002.safetensors\"", "\"\"", CB_ERR_FORMAT, "not a plain file name", NULL},
		{"\"model-00001-of-00002.safetensors\"", "\"model-00003-of-00002.safetensors\"", CB_ERR_FORMAT,
		"model-00003-of-00002.safetensors", "missing"},
		{"\"model-00001-of-00002.safetensors\"", "\"model-00002-of-00002.safetensors\"", CB_ERR_FORMAT,
		"roberta.embeddings.word_embeddings.weight", "not in shard"},
		{"\"model-00001-of-00002.safetensors\"", "17", CB_ERR_FORMAT, "string", NULL},
		{"\"weight_map\"", "\"weight_mop\"", CB_ERR_FORMAT, "weight_map", NULL},
		{"\"weight_map\": {", "\"weight_map\": {,", CB_ERR_FORMAT, "invalid JSON", "index.json"},
		{"\"lm_head.bias\"", "\"lm_head.dense.bias\"", CB_ERR_FORMAT, "duplicate key", NULL},
	};

	if (tmp == NULL || idx == NULL)
	{
		CHECK(0);
		return;
	}
	for (size_t i = 0; i < 3; i++)
	{
		char		from[256];

		snprintf(from, sizeof(from), GOLDEN "mlm_bf16_sharded/%s", copies[i]);
		CHECK(ut_copy_file(from, ut_path(tmp, copies[i])) == 0);
	}
	CHECK(ut_write_file(ut_path(tmp, "model.safetensors.index.json"), idx, len) == 0);
	EXPECT_OPEN_OK(tmp);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++)
	{
		unsigned char *buf = malloc(len + 256);
		size_t		l = len;

		memcpy(buf, idx, len);
		CHECK_MSG(ut_replace(buf, &l, len + 256, edits[i].from, edits[i].to) == 0, "edit %zu", i);
		CHECK(ut_write_file(ut_path(tmp, "model.safetensors.index.json"), buf, l) == 0);
		EXPECT_OPEN_FAILS(tmp, edits[i].st, edits[i].m1, edits[i].m2, NULL);
		free(buf);
	}
	/* a truncated shard */
	CHECK(ut_write_file(ut_path(tmp, "model.safetensors.index.json"), idx, len) == 0);
	{
		size_t		sl;
		unsigned char *s = ut_read_file(GOLDEN "mlm_bf16_sharded/model-00002-of-00002.safetensors", &sl);

		CHECK(ut_write_file(ut_path(tmp, "model-00002-of-00002.safetensors"), s, sl - 2) == 0);
		EXPECT_OPEN_FAILS(tmp, CB_ERR_FORMAT, "model-00002-of-00002.safetensors", NULL, NULL);
		free(s);
	}
	free(idx);
	ut_remove_dir(tmp);
	free(tmp);
}

/* ---- corrupt pytorch_model.bin ------------------------------------------- */

static void
test_corrupt_torch_bin(void)
{
	char	   *tmp = ut_make_temp_dir("cb_torch");
	size_t		len;
	unsigned char *orig = ut_read_file(GOLDEN "mlm/pytorch_model.bin", &len);
	const char *bin;
	uint64_t	pkl_off = 0,
				pkl_size = 0;

	if (tmp == NULL || orig == NULL)
	{
		CHECK(0);
		return;
	}
	bin = ut_path(tmp, "pytorch_model.bin");
	CHECK(ut_copy_file(GOLDEN "mlm/config.json", ut_path(tmp, "config.json")) == 0);
	CHECK(ut_zip_entry(orig, len, "pytorch_model/data.pkl", &pkl_off, &pkl_size, 0) == 0);

	/* truncations */
	{
		size_t		cuts[] = {0, 2, 4, 30, 100, (size_t) pkl_off + 10, len / 2, len - 200, len - 100, len - 60,
			len - 23, len - 22, len - 21, len - 1};

		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		{
			CHECK(ut_write_file(bin, orig, cuts[i]) == 0);
			EXPECT_OPEN_FAILS(tmp, CB_ERR_FORMAT, "pytorch_model.bin", NULL, NULL);
		}
	}
	/* every byte of the zip metadata (the first entry and the directory) flipped: only clean errors */
	{
		unsigned char *m = malloc(len);
		size_t		ranges[2][2] = {{0, (size_t) (pkl_off + pkl_size + 200)}, {len > 3400 ? len - 3400 : 0, len}};

		memcpy(m, orig, len);
		for (int rg = 0; rg < 2; rg++)
			for (size_t i = ranges[rg][0]; i < ranges[rg][1]; i++)
			{
				cb_file_reader r;
				cb_tensor_list list = {0};
				cb_error	err;
				cb_status	st;

				m[i] ^= 0xFF;
				cb_file_reader_memory(&r, m, len, "flip.bin");
				st = cb_torch_bin_read(&r, 0, &list, &err);
				CHECK_MSG(st == CB_OK || st == CB_ERR_FORMAT || st == CB_ERR_UNSUPPORTED,
						  "byte %zu: %s: %s", i, cb_status_name(st), err.message);
				cb_tensor_list_free(&list);
				m[i] ^= 0xFF;
			}
		free(m);
	}
	/* pickle edits (with the CRC fixed so that the pickle machine sees them) */
	{
		static const struct
		{
			const char *from;
			size_t		flen;
			const char *to;
			cb_status	st;
			const char *m1,
					   *m2;
		}			edits[] = {
			{"_rebuild_tensor_v2", 18, "_rebuild_tensor_v9", CB_ERR_UNSUPPORTED, "torch._utils._rebuild_tensor_v9", "not allowed"},
			{"collections\nOrderedDict", 23, "collections\nOrderedDicx", CB_ERR_UNSUPPORTED, "OrderedDicx", "not allowed"},
			{"torch\nFloatStorage", 18, "torch\nFloatStoragf", CB_ERR_UNSUPPORTED, "FloatStoragf", NULL},
			{"ctorch._utils", 13, "itorch._utils", CB_ERR_UNSUPPORTED, "opcode 0x69", "data.pkl"},
			{"\x80\x02", 2, "\x80\x09", CB_ERR_UNSUPPORTED, "protocol", NULL},
			{"X\x01\x00\x00\x00" "0q", 7, "X\x01\x00\x00\x00" "Zq", CB_ERR_FORMAT, "pytorch_model/data/Z", "missing"},
			{"X\x01\x00\x00\x00" "0q", 7, "X\x01\x00\x00\x00" "1q", CB_ERR_FORMAT, "roberta.embeddings.word_embeddings.weight", "holds"},
			/* embeddings.LayerNorm.bias (storage '4') made to alias LayerNorm.weight (storage '3', same size) */
			{"X\x01\x00\x00\x00" "4q", 7, "X\x01\x00\x00\x00" "3q", CB_ERR_FORMAT, "share bytes", "LayerNorm"},
			{"\x86q\x08K@K\x01\x86", 8, "\x86q\x08K\x01K@\x86", CB_ERR_UNSUPPORTED, "non-contiguous", NULL},
			{"QK\x00M\x45\x1f", 6, "QK\x01M\x45\x1f", CB_ERR_FORMAT, "word_embeddings", "exceed its storage"},
			{"X\x07\x00\x00\x00storage", 12, "X\x07\x00\x00\x00storagf", CB_ERR_FORMAT, "persistent id", NULL},
			{"\x00u.", 3, "\x00uN", CB_ERR_FORMAT, "STOP", NULL},
			{"\x00u.", 3, "\x00..", CB_ERR_FORMAT, "STOP", NULL},
			{"}q\x00(", 4, "]q\x00(", CB_ERR_FORMAT, "wrong type", NULL},
			{"}q\x00(", 4, "Nq\x00(", CB_ERR_FORMAT, NULL, NULL},
			{"h\x03h\x04", 4, "h\x03h\xf0", CB_ERR_FORMAT, "memo", NULL},
		};

		for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++)
		{
			unsigned char *m = malloc(len);
			unsigned char *p = NULL;
			uint64_t	o,
						s;

			memcpy(m, orig, len);
			for (size_t k = (size_t) pkl_off; k + edits[i].flen <= pkl_off + pkl_size; k++)
				if (memcmp(m + k, edits[i].from, edits[i].flen) == 0)
				{
					p = m + k;
					break;
				}
			CHECK_MSG(p != NULL, "pickle edit %zu: pattern not found", i);
			if (p != NULL)
			{
				memcpy(p, edits[i].to, edits[i].flen);
				CHECK(ut_zip_entry(m, len, "pytorch_model/data.pkl", &o, &s, 1) == 0);
				CHECK(ut_write_file(bin, m, len) == 0);
				EXPECT_OPEN_FAILS(tmp, edits[i].st, edits[i].m1, edits[i].m2, NULL);
				/* without fixing the CRC it is caught earlier */
				memcpy(m, orig, len);
				memcpy(m + (p - m), edits[i].to, edits[i].flen);
				CHECK(ut_write_file(bin, m, len) == 0);
				EXPECT_OPEN_FAILS(tmp, CB_ERR_FORMAT, "CRC", NULL, NULL);
			}
			free(m);
		}
	}
	/* a compressed entry is unsupported (method 8 in the central directory) */
	{
		unsigned char *m = malloc(len);
		uint64_t	o,
					s;

		memcpy(m, orig, len);
		for (size_t i = 0; i + 46 < len; i++)
			if (m[i] == 'P' && m[i + 1] == 'K' && m[i + 2] == 1 && m[i + 3] == 2)
			{
				m[i + 10] = 8;
				break;
			}
		CHECK(ut_write_file(bin, m, len) == 0);
		EXPECT_OPEN_FAILS(tmp, CB_ERR_UNSUPPORTED, "compressed", NULL, NULL);
		(void) o;
		(void) s;
		free(m);
	}
	/* the legacy format and other files */
	CHECK(ut_write_file(bin, "\x80\x02\x8a\x0a", 4) == 0);
	EXPECT_OPEN_FAILS(tmp, CB_ERR_UNSUPPORTED, "legacy", NULL, NULL);
	CHECK(ut_write_file(bin, "hello world, not a zip", 22) == 0);
	EXPECT_OPEN_FAILS(tmp, CB_ERR_FORMAT, "not a zip", NULL, NULL);

	free(orig);
	ut_remove_dir(tmp);
	free(tmp);
}

/* direct reader API over memory */
static void
test_safetensors_memory(void)
{
	/* a hand-written file: two tensors, F16 and BF16 */
	static const char hdr[] = "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]},"
		"\"a\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[0,4]}}";
	unsigned char file[256];
	size_t		hl = sizeof(hdr) - 1;
	cb_file_reader r;
	cb_tensor_list list = {0};
	cb_error	err;
	const cb_tensor_info *t;

	for (int i = 0; i < 8; i++)
		file[i] = (unsigned char) ((uint64_t) hl >> (8 * i));
	memcpy(file + 8, hdr, hl);
	memset(file + 8 + hl, 0, 8);
	cb_file_reader_memory(&r, file, 8 + hl + 8, "mem");
	CHECK(cb_safetensors_read(&r, 3, &list, &err) == CB_OK);
	CHECK(cb_tensor_list_finish(&list, "mem", &err) == CB_OK);
	CHECK_EQ_INT(list.count, 2);
	t = cb_tensor_list_find(&list, "a");
	CHECK(t != NULL && t->dtype == CB_TENSOR_F16 && t->ndim == 2 && t->shape[1] == 2 &&
		  t->offset == 8 + hl && t->nbytes == 4 && t->file == 3);
	t = cb_tensor_list_find(&list, "b");
	CHECK(t != NULL && t->dtype == CB_TENSOR_BF16 && t->offset == 8 + hl + 4);
	CHECK(cb_tensor_list_find(&list, "c") == NULL);
	cb_tensor_list_free(&list);
	/* the same tensor in two lists merged: duplicate */
	CHECK(cb_safetensors_read(&r, 0, &list, &err) == CB_OK);
	CHECK(cb_safetensors_read(&r, 1, &list, &err) == CB_OK);
	CHECK(cb_tensor_list_finish(&list, "mem", &err) == CB_ERR_FORMAT);
	CHECK(contains(err.message, "twice"));
	cb_tensor_list_free(&list);
	/* a hole in the data area */
	cb_file_reader_memory(&r, file, 8 + hl + 9, "mem");
	CHECK(cb_safetensors_read(&r, 0, &list, &err) == CB_ERR_FORMAT);
	cb_tensor_list_free(&list);
}

/* ---- what a model file may be: regular files only, confined to a root ------ */

/* mlm's config.json and model.safetensors copied into dir (created). */
static int
copy_mlm(const char *dir)
{
	if (mkdir(dir, 0700) != 0)
		return -1;
	if (ut_copy_file(GOLDEN "mlm/config.json", ut_path(dir, "config.json")) != 0 ||
		ut_copy_file(GOLDEN "mlm/model.safetensors", ut_path(dir, "model.safetensors")) != 0)
		return -1;
	return 0;
}

/* EXPECT_OPEN_FAILS with a root */
#define EXPECT_OPEN_IN(dir, root, st, a, b) do { \
	cb_model_source *_s = NULL; cb_error _e; const char *_root = (root); cb_clear_error(&_e); \
	cb_status _r = cb_model_source_open_in((dir), _root, &_s, &_e); \
	CHECK_MSG(_r == (st), "open %s in %s: expected %s, got %s: %s", (dir), _root ? _root : "(null)", \
			  cb_status_name(st), cb_status_name(_r), _e.message); \
	CHECK_MSG(_r == CB_OK || (contains(_e.message, a) && contains(_e.message, b)), \
		"message \"%s\" should mention \"%s\" \"%s\"", _e.message, (a) ? (a) : "", (b) ? (b) : ""); \
	if (getenv("UT_VERBOSE")) printf("  [%s] %s\n", cb_status_name(_r), _e.message); \
	cb_model_source_close(_s); \
} while (0)

/*
 * A FIFO, a directory or a device where a model file should be is refused at
 * once: a blocking open() of a FIFO would wait for a writer forever, out of
 * reach of any interrupt.  The alarm turns such a hang into a failure.
 */
static void
test_file_kinds(void)
{
	char	   *tmp = ut_make_temp_dir("cb_kinds");
	char		dir[1024];
	char	   *buf = NULL;
	size_t		len;
	cb_error	err;
	int			fd;
	uint64_t	size;

	if (tmp == NULL)
	{
		CHECK(0);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/m", tmp);
	CHECK(copy_mlm(dir) == 0);
	alarm(120);

	/* config.json a FIFO (nobody writes it) */
	unlink(ut_path(dir, "config.json"));
	CHECK(mkfifo(ut_path(dir, "config.json"), 0600) == 0);
	EXPECT_OPEN_FAILS(dir, CB_ERR_IO, "config.json", "a FIFO", "regular file");
	CHECK(cb_file_read_all(ut_path(dir, "config.json"), NULL, 1024, &buf, &len, &err) == CB_ERR_IO);
	CHECK(buf == NULL && contains(err.message, "FIFO"));
	CHECK(cb_file_open(ut_path(dir, "config.json"), NULL, &fd, &size, &err) == CB_ERR_IO);
	CHECK_EQ_INT(fd, -1);
	unlink(ut_path(dir, "config.json"));
	CHECK(ut_copy_file(GOLDEN "mlm/config.json", ut_path(dir, "config.json")) == 0);
	EXPECT_OPEN_OK(dir);

	/* the weights a FIFO */
	unlink(ut_path(dir, "model.safetensors"));
	CHECK(mkfifo(ut_path(dir, "model.safetensors"), 0600) == 0);
	EXPECT_OPEN_FAILS(dir, CB_ERR_IO, "model.safetensors", "not a regular file", NULL);
	unlink(ut_path(dir, "model.safetensors"));

	/* a directory, a device */
	CHECK(cb_file_read_all(tmp, NULL, 1024, &buf, &len, &err) == CB_ERR_IO);
	CHECK(contains(err.message, "a directory"));
	CHECK(cb_file_read_all("/dev/null", NULL, 1024, &buf, &len, &err) == CB_ERR_IO);
	CHECK(contains(err.message, "a device"));
	/* missing: errno kept */
	CHECK(cb_file_read_all(ut_path(dir, "nothing.json"), NULL, 1024, &buf, &len, &err) == CB_ERR_IO);
	CHECK_EQ_INT(err.sys_errno, ENOENT);
	CHECK(contains(err.message, "nothing.json"));
	/* a regular file: read whole, NUL-terminated; over the limit */
	CHECK(cb_file_read_all(GOLDEN "mlm/config.json", NULL, 1 << 20, &buf, &len, &err) == CB_OK);
	CHECK(buf != NULL && len > 100 && buf[len] == '\0' && strlen(buf) == len);
	cb_free(buf);
	CHECK(cb_file_read_all(GOLDEN "mlm/config.json", NULL, 10, &buf, &len, &err) == CB_ERR_LIMIT);
	alarm(0);

	ut_remove_dir(dir);
	ut_remove_dir(tmp);
	free(tmp);
}

/*
 * With a root, every file a source reads must have its real path inside it:
 * a symbolic link out of the root is refused (and the target not opened),
 * one that stays inside (a Hugging Face cache snapshot) is fine.
 */
static void
test_confinement(void)
{
	char	   *root = ut_make_temp_dir("cb_root");
	char	   *outside = ut_make_temp_dir("cb_outside");
	char		dir[1024],
				blobs[1024],
				link[1024],
				real_root[PATH_MAX];
	char	   *buf = NULL;
	size_t		len;
	cb_error	err;

	if (root == NULL || outside == NULL || realpath(root, real_root) == NULL)
	{
		CHECK(0);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/m", root);
	snprintf(blobs, sizeof(blobs), "%s/blobs", root);
	snprintf(link, sizeof(link), "%s/link", outside);
	CHECK(copy_mlm(dir) == 0);
	CHECK(mkdir(blobs, 0700) == 0);
	CHECK(ut_copy_file(GOLDEN "mlm/config.json", ut_path(outside, "config.json")) == 0);
	CHECK(ut_copy_file(GOLDEN "mlm/model.safetensors", ut_path(outside, "model.safetensors")) == 0);
	CHECK(mkfifo(ut_path(outside, "fifo"), 0600) == 0);
	alarm(120);

	EXPECT_OPEN_IN(dir, root, CB_OK, NULL, NULL);
	EXPECT_OPEN_IN(dir, NULL, CB_OK, NULL, NULL);
	EXPECT_OPEN_IN(dir, "", CB_OK, NULL, NULL);

	/* config.json links out of the root */
	unlink(ut_path(dir, "config.json"));
	CHECK(symlink(ut_path(outside, "config.json"), ut_path(dir, "config.json")) == 0);
	EXPECT_OPEN_IN(dir, root, CB_ERR_ACCESS, "m/config.json", "outside");
	EXPECT_OPEN_IN(dir, NULL, CB_OK, NULL, NULL);	/* not confined */
	/* ... to a FIFO: refused without being opened */
	unlink(ut_path(dir, "config.json"));
	CHECK(symlink(ut_path(outside, "fifo"), ut_path(dir, "config.json")) == 0);
	EXPECT_OPEN_IN(dir, root, CB_ERR_ACCESS, "config.json", root);
	/* ... through "..": the same */
	unlink(ut_path(dir, "config.json"));
	CHECK(symlink("../../../../../../../../../../../../etc/passwd", ut_path(dir, "config.json")) == 0);
	EXPECT_OPEN_IN(dir, root, CB_ERR_ACCESS, "config.json", "outside");
	/* a link inside the root, relative, as in a Hugging Face cache */
	unlink(ut_path(dir, "config.json"));
	CHECK(ut_copy_file(GOLDEN "mlm/config.json", ut_path(blobs, "0123abcd")) == 0);
	CHECK(symlink("../blobs/0123abcd", ut_path(dir, "config.json")) == 0);
	EXPECT_OPEN_IN(dir, root, CB_OK, NULL, NULL);

	/* the weights link out of the root: refused, also when the image is written */
	unlink(ut_path(dir, "model.safetensors"));
	CHECK(symlink(ut_path(outside, "model.safetensors"), ut_path(dir, "model.safetensors")) == 0);
	EXPECT_OPEN_IN(dir, root, CB_ERR_ACCESS, "model.safetensors", "outside");
	{
		cb_model_source *src = NULL;
		void	   *image = NULL;

		/* validated in the root, then swapped for a link out of it */
		unlink(ut_path(dir, "model.safetensors"));
		CHECK(ut_copy_file(GOLDEN "mlm/model.safetensors", ut_path(dir, "model.safetensors")) == 0);
		CHECK(cb_model_source_open_in(dir, root, &src, &err) == CB_OK);
		if (src != NULL)
		{
			size_t		size = cb_model_source_image_size(src);

			image = aligned_alloc(64, (size + 63) & ~(size_t) 63);
			unlink(ut_path(dir, "model.safetensors"));
			CHECK(symlink(ut_path(outside, "model.safetensors"), ut_path(dir, "model.safetensors")) == 0);
			CHECK_EQ_INT(cb_model_source_write_image(src, image, size, &err), CB_ERR_ACCESS);
			CHECK(contains(err.message, "model.safetensors"));
			free(image);
			cb_model_source_close(src);
		}
	}

	/* the root itself may be reached through a link */
	unlink(ut_path(dir, "model.safetensors"));
	CHECK(ut_copy_file(GOLDEN "mlm/model.safetensors", ut_path(dir, "model.safetensors")) == 0);
	CHECK(symlink(root, link) == 0);
	EXPECT_OPEN_IN(dir, link, CB_OK, NULL, NULL);
	/* a missing root */
	EXPECT_OPEN_IN(dir, ut_path(outside, "none"), CB_ERR_IO, "none", NULL);

	/* cb_file_read_all takes the same root */
	CHECK(cb_file_read_all(ut_path(dir, "config.json"), root, 1 << 20, &buf, &len, &err) == CB_OK);
	cb_free(buf);
	CHECK(cb_file_read_all(ut_path(outside, "config.json"), root, 1 << 20, &buf, &len, &err) == CB_ERR_ACCESS);
	alarm(0);

	/* the prefix test itself */
	CHECK(cb_path_is_inside("/a/b", "/a"));
	CHECK(cb_path_is_inside("/a", "/a"));
	CHECK(cb_path_is_inside("/a/b", "/a/"));
	CHECK(!cb_path_is_inside("/ab", "/a"));
	CHECK(!cb_path_is_inside("/", "/a"));
	CHECK(cb_path_is_inside("/x/y", "/"));
	CHECK(cb_path_is_inside(real_root, real_root));

	ut_remove_dir(dir);
	ut_remove_dir(blobs);
	ut_remove_dir(root);
	ut_remove_dir(outside);
	free(root);
	free(outside);
}

int
main(void)
{
	RUN(test_json_strict);
	RUN(test_json_values);
	RUN(test_json_limits);
	RUN(test_config_rules);
	RUN(test_golden_models);
	RUN(test_weights_equal_file_bytes);
	RUN(test_torch_bin_equals_safetensors);
	RUN(test_torch_bin_sharded_and_untied);
	RUN(test_reduced_precision);
	RUN(test_exhaustive_half_conversion);
	RUN(test_position_independent);
	RUN(test_view_rejects_bad_images);
	RUN(test_write_image_contract);
	RUN(test_allocation_failures);
	RUN(test_corrupt_safetensors);
	RUN(test_config_vs_weights);
	RUN(test_prefixes);
	RUN(test_corrupt_shards);
	RUN(test_corrupt_torch_bin);
	RUN(test_safetensors_memory);
	RUN(test_file_kinds);
	RUN(test_confinement);
	return unit_finish("test_model_files");
}
