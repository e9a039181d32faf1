/*
 * test_tf_weights.c — TensorFlow weight files (tf_h5.c, tf_names.c and their
 * use by model_files.c) against the golden TF directories
 * test/golden/models/{mlm_tf_h5, mlm_tf_h5_sharded, mlm_tf_safetensors,
 * cls3_tf_h5, clm_tf_h5}, whose expected outputs are those of their source
 * models (mlm, cls3, clm: test/golden/README and shared golden README,
 * "TensorFlow weight files").
 *
 *   - every TF directory loads, its forward pass equals the source model's
 *     golden hidden states and logits (|d| <= 1e-4);
 *   - the golden data states the TF files hold the source weights bit for
 *     bit: the model image built from each TF directory is byte-identical to
 *     the one built from the source's PyTorch weights, at every precision
 *     (float32, bfloat16 and int8 take the transposing paths);
 *   - the name mapping of transformers' convert_tf_weight_name_to_pt_weight_name
 *     on the golden README's examples;
 *   - which file wins when several are present (PyTorch weights first);
 *   - layouts the golden files lack (fixed-length and split name lists,
 *     float16, a shard) in tiny files libhdf5 wrote (fuzz/corpus/tf_h5);
 *   - damaged and hostile files: errors, never crashes; the parent's
 *     validation of the child's report.
 */
#include "unit.h"
#include "support/ut_compute.h"
#include "support/npy.h"
#include "support/golden_model.h"
#include "support/ut_files.h"

#include "forward.h"
#include "model_image.h"
#include "safetensors.h"
#include "tf_h5.h"
#include "tf_names.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOLDEN "build/golden/models/"
#define TOL 1e-4
#define MAX_T 130

typedef struct tf_case
{
	const char *dir;			/* the TF directory */
	const char *source;			/* the model whose outputs it must give */
	const char *weights_file;	/* what cb_model_source_weights_file says */
} tf_case;

static const tf_case tf_cases[] = {
	{"mlm_tf_h5", "mlm", "tf_model.h5"},
	{"mlm_tf_h5_sharded", "mlm", "tf_model.h5.index.json"},
	{"mlm_tf_safetensors", "mlm", "model.safetensors"},
	{"cls3_tf_h5", "cls3", "tf_model.h5"},
	{"clm_tf_h5", "clm", "tf_model.h5"},
};

/* ---- the forward pass against the source model's golden outputs --------- */

static void
check_forward(const tf_case *tc)
{
	char		path[256];
	ut_loaded_model lm;
	const cb_model *m;
	cb_json_doc *doc;
	const cb_json_value *cases;
	ut_npy		hs = {0},
				top_ids = {0},
				top_logits = {0},
				cls_logits = {0};
	ut_diff		d_hidden,
				d_logits;
	size_t		total,
				h,
				nl,
				v,
				expect_hidden = 0,
				expect_logits = 0;
	bool		lmkind;
	float	   *hidden = NULL,
			   *logits = NULL;
	cb_workspace ws;

	cb_workspace_init(&ws);
	snprintf(path, sizeof(path), GOLDEN "%s", tc->dir);
	if (ut_load_model(path, &lm) != 0)
	{
		CHECK_MSG(false, "%s does not load", tc->dir);
		return;
	}
	m = &lm.model;
	h = (size_t) m->config.hidden_size;
	nl = (size_t) m->config.num_hidden_layers;
	v = (size_t) m->config.vocab_size;
	lmkind = m->config.architecture != CB_ARCH_SEQUENCE_CLASSIFICATION;
	snprintf(path, sizeof(path), GOLDEN "%s/expected/cases.json", tc->source);
	doc = ut_json_load(path);
	CHECK(doc != NULL);
	if (doc == NULL)
		goto done;
	total = (size_t) ut_json_number(cb_json_get(cb_json_root(doc), "meta"), "total_tokens");
	cases = cb_json_get(cb_json_root(doc), "cases");
	snprintf(path, sizeof(path), GOLDEN "%s/expected/hidden_states.npy", tc->source);
	CHECK(ut_npy_load(path, &hs) == 0);
	if (lmkind)
	{
		snprintf(path, sizeof(path), GOLDEN "%s/expected/top10_ids.npy", tc->source);
		CHECK(ut_npy_load(path, &top_ids) == 0);
		snprintf(path, sizeof(path), GOLDEN "%s/expected/top10_logits.npy", tc->source);
		CHECK(ut_npy_load(path, &top_logits) == 0);
	}
	else
	{
		snprintf(path, sizeof(path), GOLDEN "%s/expected/logits.npy", tc->source);
		CHECK(ut_npy_load(path, &cls_logits) == 0);
	}
	hidden = malloc((nl + 1) * MAX_T * h * sizeof(float));
	logits = malloc(MAX_T * v * sizeof(float));
	if (cases == NULL || cases->type != CB_JSON_ARRAY || hs.f == NULL || hs.count != (nl + 1) * total * h ||
		hidden == NULL || logits == NULL ||
		(lmkind && (top_ids.count != total * 10 || top_logits.count != total * 10)) ||
		(!lmkind && cls_logits.count != cases->count * (size_t) m->config.num_labels))
	{
		CHECK_MSG(false, "%s: golden arrays of %s missing or of the wrong size", tc->dir, tc->source);
		goto done;
	}
	ut_diff_init(&d_hidden, TOL);
	ut_diff_init(&d_logits, TOL);
	for (size_t ci = 0; ci < cases->count; ci++)
	{
		const cb_json_value *c = &cases->items[ci];
		int32_t		ids[MAX_T];
		long		t = ut_json_ints(cb_json_get(c, "input_ids"), ids, MAX_T);
		size_t		off = (size_t) ut_json_number(c, "token_offset");
		cb_forward_input in = {1, (int32_t) t, ids, NULL};
		cb_forward_output out;
		float		cls[CB_MAX_LABELS];
		cb_error	err;
		char		where[128];

		if (t <= 0 || off + (size_t) t > total)
		{
			CHECK_MSG(false, "%s: bad golden case %zu", tc->source, ci);
			continue;
		}
		memset(&out, 0, sizeof(out));
		out.hidden_states = hidden;
		if (lmkind)
			out.token_logits = logits;
		else
			out.class_logits = cls;
		if (cb_forward(ut_compute(), m, &in, &out, &ws, &err) != CB_OK)
		{
			CHECK_MSG(false, "%s case %zu: %s", tc->dir, ci, err.message);
			continue;
		}
		for (size_t l = 0; l <= nl; l++)
		{
			snprintf(where, sizeof(where), "%s case %zu hidden[%zu]", tc->dir, ci, l);
			ut_diff_add(&d_hidden, hidden + l * (size_t) t * h, hs.f + (l * total + off) * h, (size_t) t * h,
						where);
			expect_hidden += (size_t) t * h;
		}
		if (lmkind)
			for (size_t i = 0; i < (size_t) t; i++)
				for (size_t k = 0; k < 10; k++)
				{
					int32_t		id = top_ids.i[(off + i) * 10 + k];

					snprintf(where, sizeof(where), "%s case %zu logit[%zu][%d]", tc->dir, ci, i, id);
					if (id >= 0 && (size_t) id < v)
						ut_diff_add1(&d_logits, logits[i * v + (size_t) id], top_logits.f[(off + i) * 10 + k], where);
					expect_logits++;
				}
		else
		{
			snprintf(where, sizeof(where), "%s case %zu class logits", tc->dir, ci);
			ut_diff_add(&d_logits, cls, cls_logits.f + ci * (size_t) m->config.num_labels,
						(size_t) m->config.num_labels, where);
			expect_logits += (size_t) m->config.num_labels;
		}
	}
	printf("  %-20s hidden states %7zu values, max |d| %.3g; logits %6zu values, max |d| %.3g\n", tc->dir,
		   d_hidden.count, d_hidden.max_abs, d_logits.count, d_logits.max_abs);
	CHECK_MSG(d_hidden.count == expect_hidden && d_hidden.count > 0 && d_hidden.over == 0,
			  "%s hidden states: %zu of %zu over %g", tc->dir, d_hidden.over, d_hidden.count, TOL);
	CHECK_MSG(d_logits.count == expect_logits && d_logits.count > 0 && d_logits.over == 0,
			  "%s logits: %zu of %zu over %g", tc->dir, d_logits.over, d_logits.count, TOL);
done:
	free(hidden);
	free(logits);
	ut_npy_free(&hs);
	ut_npy_free(&top_ids);
	ut_npy_free(&top_logits);
	ut_npy_free(&cls_logits);
	if (doc != NULL)
		cb_json_free(doc);
	cb_workspace_release(&ws);
	ut_unload_model(&lm);
}

static void
test_forward_equals_golden(void)
{
	for (size_t i = 0; i < sizeof(tf_cases) / sizeof(tf_cases[0]); i++)
		check_forward(&tf_cases[i]);
}

/* ---- images: TF directory == source directory, at every precision -------- */

/* The image of dir at precision (malloc'ed, 64-aligned inside *block), or NULL. */
static unsigned char *
build_image(const char *dir, cb_precision precision, size_t *len, void **block, char *weights, size_t wlen)
{
	cb_model_source *src = NULL;
	cb_error	err;
	unsigned char *img;

	*block = NULL;
	if (cb_model_source_open(dir, &src, &err) != CB_OK)
	{
		fprintf(stderr, "%s: %s\n", dir, err.message);
		return NULL;
	}
	if (weights != NULL)
		snprintf(weights, wlen, "%s", cb_model_source_weights_file(src));
	if (cb_model_source_set_precision(src, precision, &err) != CB_OK)
	{
		cb_model_source_close(src);
		return NULL;
	}
	*len = cb_model_source_image_size(src);
	*block = calloc(1, *len + CB_MODEL_IMAGE_ALIGN);
	img = (unsigned char *) (((uintptr_t) *block + CB_MODEL_IMAGE_ALIGN - 1) & ~(uintptr_t) (CB_MODEL_IMAGE_ALIGN - 1));
	if (*block == NULL || cb_model_source_write_image(src, img, *len, &err) != CB_OK)
	{
		fprintf(stderr, "%s: %s\n", dir, *block ? err.message : "out of memory");
		free(*block);
		*block = NULL;
		img = NULL;
	}
	cb_model_source_close(src);
	return img;
}

static void
test_images_identical(void)
{
	static const cb_precision precisions[] = {
		CB_PRECISION_AUTO, CB_PRECISION_FLOAT32, CB_PRECISION_BFLOAT16, CB_PRECISION_INT8
	};

	for (size_t i = 0; i < sizeof(tf_cases) / sizeof(tf_cases[0]); i++)
		for (size_t p = 0; p < sizeof(precisions) / sizeof(precisions[0]); p++)
		{
			const tf_case *tc = &tf_cases[i];
			char		a[256],
						b[256],
						weights[64] = "";
			size_t		la = 0,
						lb = 0;
			void	   *ba,
					   *bb;
			unsigned char *ia,
					   *ib;

			snprintf(a, sizeof(a), GOLDEN "%s", tc->dir);
			snprintf(b, sizeof(b), GOLDEN "%s", tc->source);
			ia = build_image(a, precisions[p], &la, &ba, weights, sizeof(weights));
			ib = build_image(b, precisions[p], &lb, &bb, NULL, 0);
			CHECK_MSG(ia != NULL && ib != NULL, "%s / %s: no image", tc->dir, tc->source);
			if (p == 0)
				CHECK_EQ_STR(weights, tc->weights_file);
			if (ia != NULL && ib != NULL)
				CHECK_MSG(la == lb && memcmp(ia, ib, la) == 0,
						  "%s: the image at precision %s differs from %s's (%zu vs %zu bytes)", tc->dir,
						  cb_precision_name(precisions[p]), tc->source, la, lb);
			free(ba);
			free(bb);
		}
}

/* ---- names ---------------------------------------------------------------- */

static void
test_names(void)
{
	static const struct
	{
		const char *tf;
		const char *pt;
		bool		transpose;
	}			cases[] = {
		/* the golden README's examples */
		{"roberta/embeddings/word_embeddings/weight:0", "roberta.embeddings.word_embeddings.weight", false},
		{"roberta/embeddings/position_embeddings/embeddings:0", "roberta.embeddings.position_embeddings.weight", false},
		{"lm_head/layer_norm/gamma:0", "lm_head.layer_norm.weight", false},
		{"lm_head/bias:0", "lm_head.bias", false},
		{"classifier/out_proj/kernel:0", "classifier.out_proj.weight", true},
		{"roberta/encoder/layer_._0/attention/self/query/kernel:0",
		"roberta.encoder.layer.0.attention.self.query.weight", true},
		{"roberta/encoder/layer_._11/output/LayerNorm/beta:0", "roberta.encoder.layer.11.output.LayerNorm.bias", false},
		/* transformers' other rules: "a___b" → b, empty levels dropped */
		{"roberta/x___encoder//layer_._1/output/dense/bias:0", "roberta.encoder.layer.1.output.dense.bias", false},
	};
	char		out[256];
	bool		tr;
	cb_error	err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		CHECK_MSG(cb_tf_name_to_pt(cases[i].tf, out, sizeof(out), &tr, &err) == CB_OK, "%s", cases[i].tf);
		CHECK_EQ_STR(out, cases[i].pt);
		CHECK_EQ_INT(tr, cases[i].transpose);
	}
	CHECK_EQ_STR(cb_tf_name_strip_model("tf_camembert_for_masked_lm_1/roberta/pooler/dense/kernel:0"),
				 "roberta/pooler/dense/kernel:0");
	CHECK(cb_tf_name_strip_model("kernel:0") == NULL);
	CHECK(cb_tf_name_strip_model("model/") == NULL);
	CHECK(cb_tf_name_to_pt(":0/:0", out, sizeof(out), &tr, &err) == CB_ERR_FORMAT);
	CHECK(cb_tf_name_to_pt("roberta/embeddings/word_embeddings/weight:0", out, 10, &tr, &err) == CB_ERR_FORMAT);
}

/* ---- precedence ------------------------------------------------------------ */

static void
copy_dir_files(const char *from, const char *to, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++)
		CHECK_MSG(ut_copy_file(ut_path(from, names[i]), ut_path(to, names[i])) == 0, "copy %s", names[i]);
}

static const char *const tokenizer_files[] = {
	"config.json", "added_tokens.json", "sentencepiece.bpe.model", "special_tokens_map.json",
	"tokenizer_config.json", NULL
};

static void
test_precedence(void)
{
	char	   *dir = ut_make_temp_dir("cb_tf_prec");
	cb_model_source *src = NULL;
	cb_error	err;
	static const char *const h5[] = {"tf_model.h5", NULL};
	static const char *const st[] = {"model.safetensors", NULL};
	static const char *const bin[] = {"pytorch_model.bin", NULL};

	if (dir == NULL)
	{
		CHECK(dir != NULL);
		return;
	}
	copy_dir_files(GOLDEN "mlm", dir, tokenizer_files);
	copy_dir_files(GOLDEN "mlm_tf_h5", dir, h5);
	CHECK(cb_model_source_open(dir, &src, &err) == CB_OK);
	if (src)
		CHECK_EQ_STR(cb_model_source_weights_file(src), "tf_model.h5");
	cb_model_source_close(src);
	src = NULL;
	/* PyTorch weights win over TensorFlow ones, as in transformers' PyTorch from_pretrained */
	copy_dir_files(GOLDEN "mlm", dir, bin);
	CHECK(cb_model_source_open(dir, &src, &err) == CB_OK);
	if (src)
		CHECK_EQ_STR(cb_model_source_weights_file(src), "pytorch_model.bin");
	cb_model_source_close(src);
	src = NULL;
	copy_dir_files(GOLDEN "mlm", dir, st);
	CHECK(cb_model_source_open(dir, &src, &err) == CB_OK);
	if (src)
		CHECK_EQ_STR(cb_model_source_weights_file(src), "model.safetensors");
	cb_model_source_close(src);
	ut_remove_dir(dir);
	free(dir);
}

/* ---- damaged and hostile files ------------------------------------------ */

/* Open a directory holding the mlm config and tf_model.h5 = data; the status. */
static cb_status
open_with_h5(const unsigned char *data, size_t len, cb_error *err)
{
	char	   *dir = ut_make_temp_dir("cb_tf_bad");
	cb_model_source *src = NULL;
	cb_status	st;

	if (dir == NULL)
		return CB_ERR_IO;
	copy_dir_files(GOLDEN "mlm", dir, tokenizer_files);
	ut_write_file(ut_path(dir, "tf_model.h5"), data, len);
	st = cb_model_source_open(dir, &src, err);
	cb_model_source_close(src);
	ut_remove_dir(dir);
	free(dir);
	return st;
}

/* The first occurrence of needle in hay, or NULL. */
static unsigned char *
find_bytes(unsigned char *hay, size_t n, const char *needle)
{
	size_t		k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return hay + i;
	return NULL;
}

static void
test_damaged_files(void)
{
	size_t		len;
	unsigned char *orig = ut_read_file(GOLDEN "mlm_tf_h5/tf_model.h5", &len);
	unsigned char *buf;
	cb_error	err;
	cb_status	st;
	uint32_t	seed = 12345;
	int			errors = 0;

	CHECK(orig != NULL);
	if (orig == NULL)
		return;
	buf = malloc(len);

	/* not HDF5 at all */
	memset(buf, 'x', 4096);
	st = open_with_h5(buf, 4096, &err);
	CHECK_MSG(st == CB_ERR_FORMAT && strstr(err.message, "tf_model.h5") != NULL, "garbage: %d %s", st, err.message);

	/* truncated: the metadata is at the start, the data beyond the cut */
	st = open_with_h5(orig, len / 2, &err);
	CHECK_MSG(st == CB_ERR_FORMAT, "truncated: %d %s", st, err.message);

	/* empty */
	st = open_with_h5(orig, 0, &err);
	CHECK_MSG(st == CB_ERR_FORMAT, "empty: %d %s", st, err.message);

	/* no layer_names: not a Keras weight file */
	memcpy(buf, orig, len);
	{
		unsigned char *p = find_bytes(buf, len, "layer_names");

		CHECK(p != NULL);
		if (p != NULL)
			memcpy(p, "layer_nameX", 11);
		st = open_with_h5(buf, len, &err);
		CHECK_MSG(st == CB_ERR_FORMAT && strstr(err.message, "layer_names") != NULL, "no layer_names: %d %s",
				  st, err.message);
	}
	/* a variable renamed in weight_names: missing dataset */
	memcpy(buf, orig, len);
	{
		unsigned char *p = find_bytes(buf, len, "lm_head/dense/kernel:0");

		CHECK(p != NULL);
		if (p != NULL)
			memcpy(p, "lm_head/dense/kernXl:0", 22);
		st = open_with_h5(buf, len, &err);
		CHECK_MSG(st == CB_ERR_FORMAT, "renamed weight: %d %s", st, err.message);
	}

	/* random byte flips in the first 64 KiB (the metadata): an error or a
	 * model, never a crash of this process */
	for (int round = 0; round < 40; round++)
	{
		memcpy(buf, orig, len);
		for (int k = 0; k < 8; k++)
		{
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 8) % 65536] ^= (unsigned char) (1u << ((seed >> 4) & 7));
		}
		st = open_with_h5(buf, len, &err);
		CHECK(st == CB_OK || st == CB_ERR_FORMAT || st == CB_ERR_UNSUPPORTED || st == CB_ERR_LIMIT);
		errors += st != CB_OK;
	}
	printf("  byte flips: %d of 40 damaged files rejected, none crashed\n", errors);
	free(buf);
	free(orig);
}

/* The parent's validation of a (hostile) child report. */
static size_t
rec(unsigned char *p, uint32_t flags, const char *name, uint32_t dtype, uint32_t ndim, const int64_t *dims,
	uint64_t offset, uint64_t nbytes)
{
	size_t		n = 0;
	uint32_t	nl = (uint32_t) strlen(name);

	p[n++] = 'T';
	memcpy(p + n, &flags, 4);
	n += 4;
	memcpy(p + n, &nl, 4);
	n += 4;
	memcpy(p + n, name, nl);
	n += nl;
	memcpy(p + n, &dtype, 4);
	n += 4;
	memcpy(p + n, &ndim, 4);
	n += 4;
	memcpy(p + n, dims, 8 * ndim);
	n += 8 * ndim;
	memcpy(p + n, &offset, 8);
	n += 8;
	memcpy(p + n, &nbytes, 8);
	n += 8;
	return n;
}

static cb_status
decode(const unsigned char *buf, size_t len, cb_error *err)
{
	cb_tensor_list list = {0};
	cb_status	st = cb_tf_h5_decode_report(buf, len, "x.h5", 1000, 0, &list, err);

	cb_tensor_list_free(&list);
	return st;
}

static void
test_report_validation(void)
{
	unsigned char buf[1024];
	size_t		n;
	int64_t		dims[2] = {4, 8};
	uint32_t	one = 1;
	cb_error	err;

	/* a good one: 4 × 8 float32 at offset 100 of a 1000-byte file */
	memcpy(buf, "CBH5REP1", 8);
	n = 8 + rec(buf + 8, 1, "model/roberta/x/kernel:0", CB_TENSOR_F32, 2, dims, 100, 128);
	buf[n++] = 'Z';
	memcpy(buf + n, &one, 4);
	CHECK(decode(buf, n + 4, &err) == CB_OK);
	/* without its end record (a child that died) */
	CHECK(decode(buf, n - 1, &err) == CB_ERR_FORMAT);
	CHECK(decode(buf, n, &err) == CB_ERR_FORMAT);
	/* a count that disagrees */
	buf[n + 1] = 2;
	CHECK(decode(buf, n + 4, &err) == CB_ERR_FORMAT);
	/* beyond the end of the file */
	n = 8 + rec(buf + 8, 1, "model/roberta/x/kernel:0", CB_TENSOR_F32, 2, dims, 900, 128);
	buf[n++] = 'Z';
	memcpy(buf + n, &one, 4);
	CHECK(decode(buf, n + 4, &err) == CB_ERR_FORMAT && strstr(err.message, "outside the file"));
	/* bytes that disagree with the shape */
	n = 8 + rec(buf + 8, 1, "model/roberta/x/kernel:0", CB_TENSOR_F32, 2, dims, 100, 64);
	buf[n++] = 'Z';
	memcpy(buf + n, &one, 4);
	CHECK(decode(buf, n + 4, &err) == CB_ERR_FORMAT);
	/* an unknown dtype, a control character in a name, no model component */
	n = 8 + rec(buf + 8, 1, "model/roberta/x/kernel:0", 99, 2, dims, 100, 128);
	CHECK(decode(buf, n, &err) == CB_ERR_FORMAT);
	n = 8 + rec(buf + 8, 1, "model/rob\nerta", CB_TENSOR_F32, 2, dims, 100, 128);
	CHECK(decode(buf, n, &err) == CB_ERR_FORMAT);
	n = 8 + rec(buf + 8, 1, "kernel:0", CB_TENSOR_F32, 2, dims, 100, 128);
	buf[n++] = 'Z';
	memcpy(buf + n, &one, 4);
	CHECK(decode(buf, n + 4, &err) == CB_ERR_FORMAT);
	/* the child's own error is passed on, naming the file */
	memcpy(buf + 8, "E\x05\x00\x00\x00oops!", 10);
	CHECK(decode(buf, 18, &err) == CB_ERR_FORMAT && strstr(err.message, "x.h5: oops!") != NULL);
	/* a negative dimension, wrong magic */
	dims[0] = -4;
	n = 8 + rec(buf + 8, 1, "model/roberta/x/kernel:0", CB_TENSOR_F32, 2, dims, 100, 128);
	CHECK(decode(buf, n, &err) == CB_ERR_FORMAT);
	buf[0] = 'X';
	CHECK(decode(buf, n, &err) == CB_ERR_FORMAT);
}

/*
 * Layouts the golden files do not have, in tiny files libhdf5 wrote
 * (fuzz/tf_h5_seeds.c): fixed-length name strings, a name list split in
 * weight_names0/weight_names1, a float16 variable, a shard's flat layout.
 * The values written are i / 8.
 */
static void
check_seed(const char *file, cb_tensor_dtype bias_dtype)
{
	size_t		len;
	unsigned char *data = ut_read_file(file, &len);
	cb_file_reader r;
	cb_tensor_list list = {0};
	cb_error	err;
	const cb_tensor_info *k,
			   *b;

	CHECK_MSG(data != NULL, "%s", file);
	if (data == NULL)
		return;
	cb_file_reader_memory(&r, data, len, file);
	CHECK_MSG(cb_tf_h5_read(&r, 0, &list, &err) == CB_OK, "%s: %s", file, err.message);
	CHECK_EQ_INT(list.count, 2);
	k = cb_tensor_list_find(&list, "dense/kernel:0");
	b = cb_tensor_list_find(&list, "dense/bias:0");
	CHECK_MSG(k != NULL && b != NULL, "%s: names", file);
	if (k != NULL && b != NULL)
	{
		float		f[6];
		uint16_t	h[3];

		CHECK(k->dtype == CB_TENSOR_F32 && k->ndim == 2 && k->shape[0] == 2 && k->shape[1] == 3);
		CHECK(b->dtype == bias_dtype && b->ndim == 1 && b->shape[0] == 3);
		memcpy(f, data + k->offset, sizeof(f));
		for (int i = 0; i < 6; i++)
			CHECK_NEAR(f[i], i / 8.0, 0);
		if (bias_dtype == CB_TENSOR_F16)
		{
			/* IEEE half: 0, 0.125, 0.25 */
			memcpy(h, data + b->offset, sizeof(h));
			CHECK(h[0] == 0x0000 && h[1] == 0x3000 && h[2] == 0x3400);
		}
		else
		{
			memcpy(f, data + b->offset, 12);
			for (int i = 0; i < 3; i++)
				CHECK_NEAR(f[i], i / 8.0, 0);
		}
	}
	cb_tensor_list_free(&list);
	free(data);
}

static void
test_seed_layouts(void)
{
	check_seed("fuzz/corpus/tf_h5/keras_vlen.h5", CB_TENSOR_F16);
	check_seed("fuzz/corpus/tf_h5/keras_fixed_chunked.h5", CB_TENSOR_F32);
	check_seed("fuzz/corpus/tf_h5/shard.h5", CB_TENSOR_F32);
}

/* A TF kernel that is not 2-D, and two variables mapping to one name with different shapes. */
static void
test_list_mapping(void)
{
	cb_tensor_list list = {0};
	cb_tensor_info t;
	cb_error	err;

	memset(&t, 0, sizeof(t));
	t.dtype = CB_TENSOR_F32;
	t.storage = -1;
	t.ndim = 2;
	t.shape[0] = 3;
	t.shape[1] = 5;
	t.name = "roberta/a/kernel:0";
	CHECK(cb_tensor_list_add(&list, &t, &err) == CB_OK);
	t.name = "roberta/a/kernel";
	CHECK(cb_tensor_list_add(&list, &t, &err) == CB_OK);
	CHECK(cb_tf_list_to_pt(&list, "t", &err) == CB_OK);
	CHECK_EQ_INT(list.count, 1);	/* the same variable twice: kept once */
	CHECK_EQ_STR(list.tensors[0].name, "roberta.a.weight");
	CHECK(list.tensors[0].transposed && list.tensors[0].shape[0] == 5 && list.tensors[0].shape[1] == 3);
	cb_tensor_list_free(&list);

	memset(&list, 0, sizeof(list));
	t.name = "roberta/b/gamma:0";
	CHECK(cb_tensor_list_add(&list, &t, &err) == CB_OK);
	t.shape[1] = 6;
	t.name = "roberta/b/weight:0";
	CHECK(cb_tensor_list_add(&list, &t, &err) == CB_OK);
	CHECK(cb_tf_list_to_pt(&list, "t", &err) == CB_ERR_FORMAT);
	cb_tensor_list_free(&list);

	memset(&list, 0, sizeof(list));
	t.ndim = 3;
	t.name = "roberta/c/kernel:0";
	CHECK(cb_tensor_list_add(&list, &t, &err) == CB_OK);
	CHECK(cb_tf_list_to_pt(&list, "t", &err) == CB_ERR_UNSUPPORTED);
	cb_tensor_list_free(&list);
}

int
main(void)
{
	RUN(test_names);
	RUN(test_list_mapping);
	RUN(test_report_validation);
	RUN(test_seed_layouts);
	RUN(test_forward_equals_golden);
	RUN(test_images_identical);
	RUN(test_precedence);
	RUN(test_damaged_files);
	return unit_finish("test_tf_weights");
}
