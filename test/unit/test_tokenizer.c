/*
 * test_tokenizer.c — the CamemBERT tokenizer against the golden outputs of
 * transformers 4.37 / SentencePiece 0.1.97 (test/golden/tokenizer_fr8k and
 * every test/golden/models/<name>), plus hostile model files and images.
 *
 * Every golden line is checked key by key; a failure prints the case, the
 * text and the first difference.
 */
#include "tokenizer.h"
#include "sp_model.h"
#include "json.h"
#include "utf8.h"
#include "unit.h"
#include "support/ut_files.h"
#include "support/ut_golden_json.h"

#include <dirent.h>
#include <unistd.h>
#include <stdint.h>
#include <sys/stat.h>

#define TOK_DIR "build/golden/tokenizer_fr8k"
#define MODELS_DIR "build/golden/models"

static cb_tokenizer g_tok;
static void *g_image;
static size_t g_image_len;
static uint8_t *g_model;
static size_t g_model_len;
static cb_tok_workspace *g_ws;
static cb_tok_workspace *g_ws_small[3];	/* windows of 1, 3 and 7 bytes */
static const size_t kSmallWindows[3] = {1, 3, 7};

/* ------------------------------------------------------------------------- */
/* Helpers */

/* Print s as a C-escaped string. */
static void
print_escaped(FILE *out, const char *s, size_t len)
{
	fputc('"', out);
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7F)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* Context of the golden case being checked, for failure messages. */
static const char *g_case_file = "";
static long g_case_index = -1;
static const char *g_case_text = "";
static size_t g_case_text_len = 0;

static void
print_case(void)
{
	fprintf(stderr, "  case %s #%ld, text ", g_case_file, g_case_index);
	print_escaped(stderr, g_case_text, g_case_text_len > 200 ? 200 : g_case_text_len);
	if (g_case_text_len > 200)
		fprintf(stderr, "... (%zu bytes)", g_case_text_len);
	fputc('\n', stderr);
}

static bool
check_ids(const char *what, const int32_t *got, size_t n_got, const int32_t *want, size_t n_want)
{
	size_t		k = 0;

	while (k < n_got && k < n_want && got[k] == want[k])
		k++;
	if (k == n_got && k == n_want)
	{
		unit_passed++;
		return true;
	}
	UNIT_FAIL("%s differs at position %zu (got %zu ids, want %zu)", what, k, n_got, n_want);
	print_case();
	fprintf(stderr, "  want ");
	ut_print_ids(stderr, want, n_want);
	fprintf(stderr, "\n  got  ");
	ut_print_ids(stderr, got, n_got);
	fputc('\n', stderr);
	return false;
}

static bool
check_str(const char *what, const char *got, size_t n_got, const char *want, size_t n_want)
{
	size_t		k = 0;

	while (k < n_got && k < n_want && got[k] == want[k])
		k++;
	if (k == n_got && k == n_want)
	{
		unit_passed++;
		return true;
	}
	UNIT_FAIL("%s differs at byte %zu", what, k);
	print_case();
	fprintf(stderr, "  want ");
	print_escaped(stderr, want, n_want);
	fprintf(stderr, "\n  got  ");
	print_escaped(stderr, got, n_got);
	fputc('\n', stderr);
	return false;
}

static const cb_json_value *
json_str(const cb_json_value *obj, const char *key)
{
	const cb_json_value *v = cb_json_get(obj, key);

	return v != NULL && v->type == CB_JSON_STRING ? v : NULL;
}

typedef void (*line_fn) (const cb_json_value *obj, long line_no);

/* Parse a .jsonl file and call fn on every line; returns the line count. */
static long
for_each_jsonl(const char *path, line_fn fn)
{
	size_t		len;
	char	   *text = (char *) ut_read_file(path, &len);
	long		lines = 0;
	size_t		pos = 0;

	CHECK_MSG(text != NULL, "cannot read %s", path);
	if (text == NULL)
		return 0;
	while (pos < len)
	{
		char	   *nl = memchr(text + pos, '\n', len - pos);
		size_t		end = nl ? (size_t) (nl - text) : len;
		cb_json_doc *doc = NULL;
		cb_error	err;

		if (end > pos)
		{
			cb_status	st = cb_json_parse(text + pos, end - pos, path, NULL, &doc, &err);

			CHECK_MSG(st == CB_OK, "%s line %ld: %s", path, lines + 1, err.message);
			if (st == CB_OK)
			{
				fn(cb_json_root(doc), lines);
				cb_json_free(doc);
			}
			lines++;
		}
		pos = end + 1;
	}
	free(text);
	return lines;
}

/* Encode helpers on the golden tokenizer. */
static int32_t *
encode(const char *text, size_t len, bool special, int32_t max_length, size_t *n)
{
	int32_t    *ids = NULL;
	cb_error	err;
	cb_status	st = cb_tokenizer_encode(&g_tok, g_ws, text, len, special, max_length, &ids, n, &err);

	CHECK_MSG(st == CB_OK, "encode failed: %s", err.message);
	return ids;
}

static char *
decode(const int32_t *ids, size_t n, bool skip, bool cleanup, size_t *len)
{
	char	   *text = NULL;
	cb_error	err;
	cb_status	st = cb_tokenizer_decode(&g_tok, ids, n, skip, cleanup, &text, len, &err);

	CHECK_MSG(st == CB_OK, "decode failed: %s", err.message);
	if (st != CB_OK)
	{
		*len = 0;
		return NULL;
	}
	return text;
}

static void
check_decode(const char *what, const int32_t *ids, size_t n, bool skip, bool cleanup,
			 const cb_json_value *want)
{
	size_t		len;
	char	   *got;

	if (want == NULL)
	{
		UNIT_FAIL("golden key for %s missing", what);
		return;
	}
	got = decode(ids, n, skip, cleanup, &len);
	if (got)
		check_str(what, got, len, want->string, want->string_len);
	cb_free(got);
}

static void
check_encode(const char *what, const char *text, size_t len, bool special, int32_t max_length,
			 const cb_json_value *want_v)
{
	long		n_want;
	int32_t    *want = ut_json_ids(want_v, &n_want);
	size_t		n_got = 0;
	int32_t    *got;

	if (want == NULL)
	{
		UNIT_FAIL("golden key for %s missing", what);
		return;
	}
	got = encode(text, len, special, max_length, &n_got);
	if (got)
		check_ids(what, got, n_got, want, (size_t) n_want);
	cb_free(got);
	free(want);
}

/* ------------------------------------------------------------------------- */
/* Build / open */

static void
test_build_open(void)
{
	cb_error	err;
	cb_status	st;

	g_model = ut_read_file(TOK_DIR "/sentencepiece.bpe.model", &g_model_len);
	CHECK(g_model != NULL);
	if (g_model == NULL)
		exit(1);
	st = cb_tokenizer_build(g_model, g_model_len, &g_image, &g_image_len, &err);
	CHECK_MSG(st == CB_OK, "build: %s", err.message);
	if (st != CB_OK)
		exit(1);
	st = cb_tokenizer_open(g_image, g_image_len, &g_tok, &err);
	CHECK_MSG(st == CB_OK, "open: %s", err.message);
	if (st != CB_OK)
		exit(1);
	g_ws = cb_tok_workspace_create();
	CHECK(g_ws != NULL);
	for (int i = 0; i < 3; i++)
	{
		g_ws_small[i] = cb_tok_workspace_create();
		cb_tok_workspace_set_window(g_ws_small[i], kSmallWindows[i]);
	}

	/* meta.json */
	CHECK_EQ_INT(g_tok.sp_vocab_size, 8000);
	CHECK_EQ_INT(g_tok.vocab_size, 8005);
	CHECK_EQ_INT(g_tok.pad_id, 1);
	CHECK_EQ_INT(g_tok.cls_id, 5);
	CHECK_EQ_INT(g_tok.sep_id, 6);
	CHECK_EQ_INT(g_tok.unk_id, 3);
	CHECK_EQ_INT(g_tok.mask_id, 8004);
	{
		const int32_t special[] = {5, 6, 3, 1, 8004, 0, 2, 4};
		int			count = 0;

		for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
			CHECK(cb_tokenizer_is_special_id(&g_tok, special[i]));
		for (int32_t id = -3; id < 8010; id++)
			count += cb_tokenizer_is_special_id(&g_tok, id);
		CHECK_EQ_INT(count, 8);
	}

	/* The image is position independent: a copy elsewhere works the same. */
	{
		void	   *copy = cb_malloc(g_image_len);
		cb_tokenizer t2;
		int32_t    *a = NULL,
				   *b = NULL;
		size_t		na = 0,
					nb = 0;
		const char *s = "Le chat dort sur le canapé.";

		memcpy(copy, g_image, g_image_len);
		st = cb_tokenizer_open(copy, g_image_len, &t2, &err);
		CHECK_MSG(st == CB_OK, "open copy: %s", err.message);
		CHECK(cb_tokenizer_encode(&g_tok, NULL, s, strlen(s), true, 0, &a, &na, &err) == CB_OK);
		CHECK(cb_tokenizer_encode(&t2, NULL, s, strlen(s), true, 0, &b, &nb, &err) == CB_OK);
		CHECK(na == nb && na > 0 && memcmp(a, b, na * sizeof(int32_t)) == 0);
		cb_free(a);
		cb_free(b);
		cb_free(copy);
	}
}

/*
 * The text is normalized and encoded a window at a time (64 KiB by default):
 * with windows of 1, 3 and 7 bytes every golden text is cut at every "▁"
 * it can be, and must give the same ids, pieces and count.
 */
static void
check_streamed(const char *text, size_t len, const cb_json_value *want_ids, const cb_json_value *want_tokens)
{
	long		n_want;
	int32_t    *want = ut_json_ids(want_ids, &n_want);

	if (want == NULL)
	{
		UNIT_FAIL("golden key input_ids missing");
		return;
	}
	for (int w = 0; w < 3; w++)
	{
		const int32_t *got;
		size_t		n = 0;
		size_t		count = 0;
		cb_error	err;
		cb_token_list *list = NULL;
		char		what[64];

		snprintf(what, sizeof(what), "input_ids, window %zu", kSmallWindows[w]);
		CHECK_MSG(cb_tokenizer_encode_ws(&g_tok, g_ws_small[w], text, len, true, 0, &got, &n, NULL, &err) == CB_OK,
				  "%s", err.message);
		check_ids(what, got, n, want, (size_t) n_want);
		CHECK_MSG(cb_tokenizer_count(&g_tok, g_ws_small[w], text, len, true, &count, &err) == CB_OK,
				  "%s", err.message);
		CHECK_EQ_INT(count, n_want);
		CHECK_MSG(cb_tokenizer_tokenize(&g_tok, g_ws_small[w], text, len, &list, &err) == CB_OK,
				  "%s", err.message);
		if (list != NULL && want_tokens != NULL)
		{
			bool		same = list->count == want_tokens->count;

			for (size_t i = 0; same && i < list->count; i++)
				same = list->length[i] == want_tokens->items[i].string_len &&
					memcmp(list->piece[i], want_tokens->items[i].string, list->length[i]) == 0;
			CHECK_MSG(same, "tokens with window %zu", kSmallWindows[w]);
			if (!same)
				print_case();
		}
		cb_free(list);
	}
	free(want);
}

/* ------------------------------------------------------------------------- */
/* tokenization.jsonl */

static long g_tokenization_cases;

static void
tokenization_line(const cb_json_value *o, long line_no)
{
	const cb_json_value *hex = json_str(o, "text_utf8_hex");
	const cb_json_value *idx = cb_json_get(o, "index");
	const cb_json_value *text_v = json_str(o, "text");
	size_t		len;
	char	   *text;
	long		n_ids,
				n_ns;
	int32_t    *ids,
			   *ns;

	(void) line_no;
	if (hex == NULL || idx == NULL || text_v == NULL)
	{
		UNIT_FAIL("tokenization.jsonl line %ld: missing keys", line_no + 1);
		return;
	}
	text = ut_unhex(hex->string, hex->string_len, &len);
	g_case_file = "tokenization.jsonl";
	g_case_index = (long) idx->integer;
	g_case_text = text;
	g_case_text_len = len;
	g_tokenization_cases++;

	/* The hex and the JSON string agree (rules out JSON doubts). */
	check_str("text_utf8_hex vs text", text, len, text_v->string, text_v->string_len);

	/* tokens */
	{
		const cb_json_value *want = cb_json_get(o, "tokens");
		cb_token_list *list = NULL;
		cb_error	err;
		cb_status	st = cb_tokenizer_tokenize(&g_tok, g_ws, text, len, &list, &err);

		CHECK_MSG(st == CB_OK, "tokenize: %s", err.message);
		if (st == CB_OK && want != NULL && want->type == CB_JSON_ARRAY)
		{
			size_t		k = 0;

			while (k < list->count && k < want->count &&
				   list->length[k] == want->items[k].string_len &&
				   memcmp(list->piece[k], want->items[k].string, list->length[k]) == 0)
				k++;
			if (k == list->count && k == want->count)
				unit_passed++;
			else
			{
				UNIT_FAIL("tokens differ at token %zu (got %zu, want %zu)", k, list->count, want->count);
				print_case();
				fprintf(stderr, "  want");
				for (size_t i = 0; i < want->count; i++)
				{
					fputc(' ', stderr);
					print_escaped(stderr, want->items[i].string, want->items[i].string_len);
				}
				fprintf(stderr, "\n  got ");
				for (size_t i = 0; i < list->count; i++)
				{
					fputc(' ', stderr);
					print_escaped(stderr, list->piece[i], list->length[i]);
				}
				fputc('\n', stderr);
			}
		}
		cb_free(list);
	}

	check_encode("input_ids", text, len, true, 0, cb_json_get(o, "input_ids"));
	check_encode("ids_no_special", text, len, false, 0, cb_json_get(o, "ids_no_special"));
	check_streamed(text, len, cb_json_get(o, "input_ids"), cb_json_get(o, "tokens"));

	ids = ut_json_ids(cb_json_get(o, "input_ids"), &n_ids);
	ns = ut_json_ids(cb_json_get(o, "ids_no_special"), &n_ns);
	if (ids && ns)
	{
		check_decode("decode", ids, (size_t) n_ids, true, true, json_str(o, "decode"));
		check_decode("decode_no_cleanup", ids, (size_t) n_ids, true, false, json_str(o, "decode_no_cleanup"));
		check_decode("decode_keep_special", ids, (size_t) n_ids, false, true, json_str(o, "decode_keep_special"));
		check_decode("decode_no_special_ids", ns, (size_t) n_ns, false, true, json_str(o, "decode_no_special_ids"));
	}
	else
		UNIT_FAIL("tokenization.jsonl #%ld: bad id arrays", g_case_index);
	free(ids);
	free(ns);
	free(text);
}

static void
test_tokenization_jsonl(void)
{
	int			failed_before = unit_failed;

	for_each_jsonl(TOK_DIR "/tokenization.jsonl", tokenization_line);
	CHECK_EQ_INT(g_tokenization_cases, 304);
	printf("tokenization.jsonl: %ld cases, %d failed checks\n", g_tokenization_cases,
		   unit_failed - failed_before);
}

/* ------------------------------------------------------------------------- */
/* Truncation stops reading the text once the pieces it keeps are known:
 * the same ids as encoding everything and truncating as transformers does. */

static const int32_t kMaxLengths[] = {1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 32, 64, 128, 512};

/* transformers' truncate_sequences of one text: full ids (with <s> </s> when special) -> out */
static size_t
reference_truncation(const int32_t *full, size_t n_full, bool special, int32_t max_length,
					 int32_t *out, bool *truncated)
{
	size_t		la = special ? n_full - 2 : n_full;
	const int32_t *pieces = special ? full + 1 : full;
	size_t		keep = la;
	size_t		k = 0;

	if (max_length > 0 && la + (special ? 2 : 0) > (size_t) max_length)
	{
		size_t		remove = la + (special ? 2 : 0) - (size_t) max_length;

		if (la > remove)
			keep = la - remove;
	}
	*truncated = keep < la;
	if (special)
		out[k++] = g_tok.cls_id;
	memcpy(out + k, pieces, keep * sizeof(int32_t));
	k += keep;
	if (special)
		out[k++] = g_tok.sep_id;
	return k;
}

static long g_early_cases;

/* Every max length, with and without special tokens, on the default and a 1-byte window. */
static void
check_early_stop(const char *text, size_t len, const int32_t *full_special, size_t n_special,
				 const int32_t *full_plain, size_t n_plain)
{
	int32_t    *want = malloc((n_special + 2) * sizeof(int32_t));

	for (size_t m = 0; m < sizeof(kMaxLengths) / sizeof(kMaxLengths[0]); m++)
	{
		for (int special = 0; special <= 1; special++)
		{
			bool		want_cut,
						got_cut = false;
			size_t		n_want = reference_truncation(special ? full_special : full_plain,
													  special ? n_special : n_plain, special,
													  kMaxLengths[m], want, &want_cut);

			for (int w = 0; w < 2; w++)
			{
				cb_tok_workspace *ws = w == 0 ? g_ws : g_ws_small[0];
				const int32_t *got = NULL;
				size_t		n_got = 0;
				cb_error	err;
				char		what[96];

				snprintf(what, sizeof(what), "max_length %d, %s, window %s", kMaxLengths[m],
						 special ? "special tokens" : "no special tokens", w == 0 ? "default" : "1");
				CHECK_MSG(cb_tokenizer_encode_ws(&g_tok, ws, text, len, special, kMaxLengths[m],
												 &got, &n_got, &got_cut, &err) == CB_OK, "%s", err.message);
				if (check_ids(what, got, n_got, want, n_want))
					CHECK_MSG(got_cut == want_cut, "%s: truncated %d, want %d", what, got_cut, want_cut);
			}
			g_early_cases++;
		}
	}
	free(want);
}

static void
early_stop_line(const cb_json_value *o, long line_no)
{
	const cb_json_value *hex = json_str(o, "text_utf8_hex");
	size_t		len;
	char	   *text;
	long		n_special,
				n_plain;
	int32_t    *special,
			   *plain;

	if (hex == NULL)
	{
		UNIT_FAIL("tokenization.jsonl line %ld: missing keys", line_no + 1);
		return;
	}
	text = ut_unhex(hex->string, hex->string_len, &len);
	g_case_file = "tokenization.jsonl (truncation)";
	g_case_index = (long) cb_json_get(o, "index")->integer;
	g_case_text = text;
	g_case_text_len = len;
	/* the reference: transformers' own untruncated ids */
	special = ut_json_ids(cb_json_get(o, "input_ids"), &n_special);
	plain = ut_json_ids(cb_json_get(o, "ids_no_special"), &n_plain);
	if (special && plain)
		check_early_stop(text, len, special, (size_t) n_special, plain, (size_t) n_plain);
	else
		UNIT_FAIL("tokenization.jsonl #%ld: bad id arrays", g_case_index);

	/* the text 40 times over, with and without a space between: longer than a window */
	for (int sep = 0; sep <= 1; sep++)
	{
		size_t		rlen = 40 * (len + sep);
		char	   *rep = malloc(rlen + 1);
		int32_t    *fs = NULL,
				   *fp = NULL;
		size_t		nfs = 0,
					nfp = 0;

		for (int i = 0; i < 40; i++)
		{
			memcpy(rep + i * (len + sep), text, len);
			if (sep)
				rep[i * (len + sep) + len] = ' ';
		}
		g_case_text = rep;
		g_case_text_len = rlen;
		fs = encode(rep, rlen, true, 0, &nfs);
		fp = encode(rep, rlen, false, 0, &nfp);
		if (fs && fp)
			check_early_stop(rep, rlen, fs, nfs, fp, nfp);
		cb_free(fs);
		cb_free(fp);
		free(rep);
	}
	free(special);
	free(plain);
	free(text);
}

static void
test_early_stop(void)
{
	int			failed_before = unit_failed;

	for_each_jsonl(TOK_DIR "/tokenization.jsonl", early_stop_line);
	printf("early stop: %ld cases (text, max length, special tokens), %d failed checks\n",
		   g_early_cases, unit_failed - failed_before);
}

/* The workspace gives back what a long text made it grow to. */
static void
test_workspace_trim(void)
{
	cb_tok_workspace *ws = cb_tok_workspace_create();
	size_t		len = 4 << 20;
	char	   *text = malloc(len);
	const int32_t *ids;
	size_t		n,
				before;
	cb_error	err;

	memset(text, 'a', len);		/* one 4 MB word */
	CHECK(cb_tokenizer_encode_ws(&g_tok, ws, "Le chat", 7, true, 0, &ids, &n, NULL, &err) == CB_OK);
	before = cb_tok_workspace_scratch_bytes(ws);
	CHECK(before < 256 * 1024);
	CHECK(!cb_tok_workspace_trim(ws, 1 << 20));
	CHECK(cb_tokenizer_encode_ws(&g_tok, ws, text, len, true, 512, &ids, &n, NULL, &err) == CB_OK);
	CHECK(n == 512);
	CHECK(cb_tok_workspace_scratch_bytes(ws) > 10 * len);	/* a word is merged whole */
	CHECK(cb_tok_workspace_trim(ws, 1 << 20));
	CHECK_EQ_INT(cb_tok_workspace_scratch_bytes(ws), 0);
	/* still works, same ids */
	CHECK(cb_tokenizer_encode_ws(&g_tok, ws, "Le chat", 7, true, 0, &ids, &n, NULL, &err) == CB_OK);
	CHECK(n == 5 && ids[1] == 280);
	cb_tok_workspace_destroy(ws);
	free(text);
}

/* ------------------------------------------------------------------------- */
/* pairs.jsonl */

static long g_pair_cases;

static void
check_pair(const char *what, const cb_json_value *a, const cb_json_value *b,
		   cb_truncation strategy, int32_t max_length, const cb_json_value *want_v)
{
	long		n_want;
	int32_t    *want = ut_json_ids(want_v, &n_want);
	int32_t    *got = NULL;
	size_t		n_got = 0;
	cb_error	err;
	cb_status	st;

	if (want == NULL)
	{
		UNIT_FAIL("golden key for %s missing", what);
		return;
	}
	st = cb_tokenizer_encode_pair(&g_tok, g_ws, a->string, a->string_len, b->string, b->string_len,
								  true, strategy, max_length, &got, &n_got, &err);
	CHECK_MSG(st == CB_OK, "encode_pair: %s", err.message);
	if (st == CB_OK)
		check_ids(what, got, n_got, want, (size_t) n_want);
	cb_free(got);
	free(want);
}

static void
pairs_line(const cb_json_value *o, long line_no)
{
	const cb_json_value *a = json_str(o, "text");
	const cb_json_value *b = json_str(o, "text_pair");
	const cb_json_value *tr = cb_json_get(o, "truncated_max_length_16");
	long		n_ids;
	int32_t    *ids;

	if (a == NULL || b == NULL || tr == NULL)
	{
		UNIT_FAIL("pairs.jsonl line %ld: missing keys", line_no + 1);
		return;
	}
	g_case_file = "pairs.jsonl";
	g_case_index = (long) cb_json_get(o, "index")->integer;
	g_case_text = a->string;
	g_case_text_len = a->string_len;
	g_pair_cases++;

	check_pair("pair input_ids", a, b, CB_TRUNCATE_LONGEST_FIRST, 0, cb_json_get(o, "input_ids"));
	check_pair("pair longest_first 16", a, b, CB_TRUNCATE_LONGEST_FIRST, 16, cb_json_get(tr, "longest_first"));
	check_pair("pair only_first 16", a, b, CB_TRUNCATE_ONLY_FIRST, 16, cb_json_get(tr, "only_first"));
	check_pair("pair only_second 16", a, b, CB_TRUNCATE_ONLY_SECOND, 16, cb_json_get(tr, "only_second"));

	ids = ut_json_ids(cb_json_get(o, "input_ids"), &n_ids);
	if (ids)
	{
		check_decode("pair decode", ids, (size_t) n_ids, true, true, json_str(o, "decode"));
		check_decode("pair decode_keep_special", ids, (size_t) n_ids, false, true,
					 json_str(o, "decode_keep_special"));
		/* special_tokens_mask marks the positions of the added <s> </s></s> </s> only */
		{
			long		n_mask;
			int32_t    *mask = ut_json_ids(cb_json_get(o, "special_tokens_mask"), &n_mask);
			size_t		la = 0;
			int32_t    *a_ids = encode(a->string, a->string_len, false, 0, &la);
			bool		ok = mask != NULL && n_mask == n_ids;

			for (long i = 0; ok && i < n_ids; i++)
			{
				bool		special = i == 0 || i == (long) la + 1 || i == (long) la + 2 || i == n_ids - 1;

				ok = mask[i] == (special ? 1 : 0);
			}
			CHECK_MSG(ok, "pairs.jsonl #%ld: special_tokens_mask", g_case_index);
			cb_free(a_ids);
			free(mask);
		}
	}
	free(ids);
}

static void
test_pairs_jsonl(void)
{
	int			failed_before = unit_failed;

	for_each_jsonl(TOK_DIR "/pairs.jsonl", pairs_line);
	CHECK_EQ_INT(g_pair_cases, 20);
	printf("pairs.jsonl: %ld cases, %d failed checks\n", g_pair_cases, unit_failed - failed_before);
}

/* ------------------------------------------------------------------------- */
/* truncation.jsonl */

static long g_trunc_cases;

static void
truncation_line(const cb_json_value *o, long line_no)
{
	const cb_json_value *t = json_str(o, "text");
	const cb_json_value *ml = cb_json_get(o, "max_length");
	int32_t		max_length;
	long		n_ids;
	int32_t    *ids;

	if (t == NULL || ml == NULL)
	{
		UNIT_FAIL("truncation.jsonl line %ld: missing keys", line_no + 1);
		return;
	}
	g_case_file = "truncation.jsonl";
	g_case_index = (long) cb_json_get(o, "index")->integer;
	g_case_text = t->string;
	g_case_text_len = t->string_len;
	g_trunc_cases++;
	/* max_length unset -> model_max_length (128) */
	max_length = ml->type == CB_JSON_NUMBER ? (int32_t) ml->integer : 128;

	check_encode("truncated input_ids", t->string, t->string_len, true, max_length, cb_json_get(o, "input_ids"));
	if (cb_json_get(o, "input_ids_full"))
		check_encode("input_ids_full", t->string, t->string_len, true, 0, cb_json_get(o, "input_ids_full"));
	if (cb_json_get(o, "input_ids_full_length"))
	{
		size_t		n = 0;
		int32_t    *full = encode(t->string, t->string_len, true, 0, &n);

		CHECK_EQ_INT(n, cb_json_get(o, "input_ids_full_length")->integer);
		cb_free(full);
	}
	ids = ut_json_ids(cb_json_get(o, "input_ids"), &n_ids);
	if (ids && json_str(o, "decode"))
		check_decode("truncated decode", ids, (size_t) n_ids, true, true, json_str(o, "decode"));
	free(ids);
}

static void
test_truncation_jsonl(void)
{
	int			failed_before = unit_failed;

	for_each_jsonl(TOK_DIR "/truncation.jsonl", truncation_line);
	CHECK_EQ_INT(g_trunc_cases, 6);
	printf("truncation.jsonl: %ld cases, %d failed checks\n", g_trunc_cases, unit_failed - failed_before);
}

/* ------------------------------------------------------------------------- */
/* batch_padding.json: right padding with <pad>, mask 0 there */

static void
test_batch_padding(void)
{
	cb_json_doc *doc = NULL;
	cb_error	err;
	cb_status	st = cb_json_load_file(TOK_DIR "/batch_padding.json", NULL, &doc, &err);
	const cb_json_value *texts,
			   *want_ids,
			   *want_mask;
	size_t		longest = 0;
	int32_t    *ids[16];
	size_t		n[16];

	CHECK_MSG(st == CB_OK, "batch_padding.json: %s", err.message);
	if (st != CB_OK)
		return;
	texts = cb_json_get(cb_json_root(doc), "texts");
	want_ids = cb_json_get(cb_json_root(doc), "input_ids");
	want_mask = cb_json_get(cb_json_root(doc), "attention_mask");
	CHECK(texts && want_ids && want_mask && texts->count == want_ids->count && texts->count <= 16);
	for (size_t i = 0; i < texts->count; i++)
	{
		ids[i] = encode(texts->items[i].string, texts->items[i].string_len, true, 0, &n[i]);
		if (n[i] > longest)
			longest = n[i];
	}
	g_case_file = "batch_padding.json";
	for (size_t i = 0; i < texts->count; i++)
	{
		int32_t		row[1024],
					mrow[1024];
		long		nw,
					nm;
		int32_t    *w = ut_json_ids(&want_ids->items[i], &nw);
		int32_t    *m = ut_json_ids(&want_mask->items[i], &nm);

		g_case_index = (long) i;
		g_case_text = texts->items[i].string;
		g_case_text_len = texts->items[i].string_len;
		for (size_t k = 0; k < longest && k < 1024; k++)
		{
			row[k] = k < n[i] ? ids[i][k] : g_tok.pad_id;
			mrow[k] = k < n[i] ? 1 : 0;
		}
		check_ids("padded input_ids", row, longest, w, (size_t) nw);
		check_ids("padded attention_mask", mrow, longest, m, (size_t) nm);
		free(w);
		free(m);
		cb_free(ids[i]);
	}
	cb_json_free(doc);
}

/* ------------------------------------------------------------------------- */
/* vocab.jsonl: id_to_piece for every id (and back) */

static long g_vocab_lines;
static int	g_vocab_fail;

static void
vocab_line(const cb_json_value *o, long line_no)
{
	const cb_json_value *id_v = cb_json_get(o, "id");
	const cb_json_value *token = json_str(o, "token");
	size_t		len = 0;
	const char *piece;
	int32_t		id;

	if (id_v == NULL || token == NULL)
	{
		UNIT_FAIL("vocab.jsonl line %ld: missing keys", line_no + 1);
		return;
	}
	id = (int32_t) id_v->integer;
	g_vocab_lines++;
	piece = cb_tokenizer_id_to_piece(&g_tok, id, &len);
	if (piece == NULL || len != token->string_len || memcmp(piece, token->string, len) != 0 ||
		strlen(piece) != len)
	{
		g_vocab_fail++;
		UNIT_FAIL("id_to_piece(%d)", id);
		fprintf(stderr, "  want ");
		print_escaped(stderr, token->string, token->string_len);
		fprintf(stderr, "\n  got  ");
		if (piece)
			print_escaped(stderr, piece, len);
		fputc('\n', stderr);
	}
	else
		unit_passed++;
	/* convert_tokens_to_ids(convert_ids_to_tokens(id)) == id */
	CHECK_MSG(cb_tokenizer_piece_to_id(&g_tok, token->string, token->string_len) == id,
			  "piece_to_id(id_to_piece(%d)) = %d", id,
			  cb_tokenizer_piece_to_id(&g_tok, token->string, token->string_len));
}

static void
test_vocab_jsonl(void)
{
	size_t		len = 99;

	for_each_jsonl(TOK_DIR "/vocab.jsonl", vocab_line);
	CHECK_EQ_INT(g_vocab_lines, 8005);
	CHECK(cb_tokenizer_id_to_piece(&g_tok, -1, &len) == NULL);
	CHECK(cb_tokenizer_id_to_piece(&g_tok, 8005, &len) == NULL);
	CHECK_EQ_INT(cb_tokenizer_piece_to_id(&g_tok, "no such piece", 13), 3);
	CHECK_EQ_INT(cb_tokenizer_piece_to_id(&g_tok, "<mask>", 6), 8004);
	printf("vocab.jsonl: %ld ids, %d failed\n", g_vocab_lines, g_vocab_fail);
}

/* ------------------------------------------------------------------------- */
/* Every model directory: its own sentencepiece.bpe.model, its cases.json */

static void
test_model_dirs(void)
{
	DIR		   *d = opendir(MODELS_DIR);
	struct dirent *e;
	int			dirs = 0;

	CHECK(d != NULL);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		char		path[512];
		uint8_t    *model;
		size_t		model_len;
		void	   *image = NULL;
		size_t		image_len = 0;
		cb_tokenizer tok;
		cb_error	err;
		cb_json_doc *doc = NULL;
		const cb_json_value *cases;
		int			checked = 0;

		if (e->d_name[0] == '.')
			continue;
		/* the TensorFlow directories (*_tf_*) have no expected/ of their own: their
		 * tokenizer files are those of their source model, checked here */
		snprintf(path, sizeof(path), "%s/%s/expected", MODELS_DIR, e->d_name);
		if (strstr(e->d_name, "_tf_") != NULL && access(path, F_OK) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/sentencepiece.bpe.model", MODELS_DIR, e->d_name);
		model = ut_read_file(path, &model_len);
		if (model == NULL)
			continue;
		dirs++;
		CHECK_MSG(cb_tokenizer_build(model, model_len, &image, &image_len, &err) == CB_OK,
				  "%s: %s", path, err.message);
		CHECK_MSG(cb_tokenizer_open(image, image_len, &tok, &err) == CB_OK, "%s: %s", path, err.message);
		snprintf(path, sizeof(path), "%s/%s/expected/cases.json", MODELS_DIR, e->d_name);
		CHECK_MSG(cb_json_load_file(path, NULL, &doc, &err) == CB_OK, "%s: %s", path, err.message);
		cases = doc ? cb_json_get(cb_json_root(doc), "cases") : NULL;
		CHECK_MSG(cases != NULL && cases->count == 25, "%s: 25 cases", path);
		for (size_t i = 0; cases && i < cases->count; i++)
		{
			const cb_json_value *c = &cases->items[i];
			const cb_json_value *t = json_str(c, "text");
			long		n_want;
			int32_t    *want = ut_json_ids(cb_json_get(c, "input_ids"), &n_want);
			int32_t    *got = NULL;
			size_t		n_got = 0;

			g_case_file = path;
			g_case_index = (long) i;
			g_case_text = t ? t->string : "";
			g_case_text_len = t ? t->string_len : 0;
			CHECK(t != NULL && want != NULL);
			if (t && want &&
				cb_tokenizer_encode(&tok, g_ws, t->string, t->string_len, true, 128, &got, &n_got, &err) == CB_OK)
			{
				check_ids("model input_ids", got, n_got, want, (size_t) n_want);
				checked++;
			}
			cb_free(got);
			free(want);
		}
		printf("%s: %d cases checked\n", e->d_name, checked);
		cb_json_free(doc);
		cb_free(image);
		free(model);
	}
	closedir(d);
	CHECK_EQ_INT(dirs, 7);
}

/* ------------------------------------------------------------------------- */
/* Hostile model files */

static const char *kProbe = "Bonjour, ça va ? <mask> 😀 \xff\xfe 中文";

/* Build; if it works, open and encode a probe (all under ASan). */
static cb_status
build_and_probe(const uint8_t *bytes, size_t len, cb_error *err)
{
	void	   *image = NULL;
	size_t		image_len = 0;
	cb_status	st = cb_tokenizer_build(bytes, len, &image, &image_len, err);

	if (st == CB_OK)
	{
		cb_tokenizer tok;
		int32_t    *ids = NULL;
		size_t		n = 0;
		char	   *text = NULL;
		cb_error	e2;

		if (cb_tokenizer_open(image, image_len, &tok, &e2) != CB_OK ||
			cb_tokenizer_encode(&tok, NULL, kProbe, strlen(kProbe), true, 0, &ids, &n, &e2) != CB_OK ||
			cb_tokenizer_decode(&tok, ids, n, false, true, &text, NULL, &e2) != CB_OK)
			UNIT_FAIL("a model that builds must open, encode and decode: %s", e2.message);
		cb_free(ids);
		cb_free(text);
	}
	cb_free(image);
	return st;
}

static void
test_truncated_models(void)
{
	int			format = 0,
				other = 0;

	for (size_t cut = 0; cut < g_model_len; cut += 997)
	{
		uint8_t    *copy = malloc(cut ? cut : 1);
		cb_error	err;
		cb_status	st;

		memcpy(copy, g_model, cut);
		st = build_and_probe(copy, cut, &err);
		if (st == CB_ERR_FORMAT)
			format++;
		else
		{
			other++;
			UNIT_FAIL("model cut at %zu bytes: %s (%s), want CB_ERR_FORMAT", cut, cb_status_name(st),
					  st == CB_OK ? "built" : err.message);
		}
		free(copy);
	}
	CHECK(other == 0);
	printf("truncated models: %d cuts, %d CB_ERR_FORMAT\n", format + other, format);
}

static uint64_t g_rng = 0x243F6A8885A308D3ull;

static uint64_t
rng(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static void
test_corrupted_models(void)
{
	int			ok = 0,
				failed = 0;
	uint8_t    *copy = malloc(g_model_len);

	/* Random byte flips: any status, never a crash; what builds must work. */
	for (int trial = 0; trial < 400; trial++)
	{
		cb_error	err;
		int			flips = 1 + (int) (rng() % 8);

		memcpy(copy, g_model, g_model_len);
		for (int f = 0; f < flips; f++)
		{
			size_t		pos;

			/* half of the flips in the first 4 KB, where lengths and tags are dense */
			pos = (rng() & 1) ? rng() % 4096 : rng() % g_model_len;
			copy[pos] ^= (uint8_t) (1 + rng() % 255);
		}
		if (build_and_probe(copy, g_model_len, &err) == CB_OK)
			ok++;
		else
		{
			failed++;
			CHECK_MSG(err.message[0] != '\0', "an error without a message");
		}
	}
	printf("corrupted models: %d built, %d rejected\n", ok, failed);
	free(copy);
}

/* ------------------------------------------------------------------------- */
/* Hand-made models (a tiny protobuf writer) */

typedef struct pbw
{
	uint8_t		buf[1 << 16];
	size_t		len;
} pbw;

static void
pbw_varint(pbw *w, uint64_t v)
{
	while (v >= 0x80)
	{
		w->buf[w->len++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	w->buf[w->len++] = (uint8_t) v;
}

static void
pbw_tag(pbw *w, uint32_t field, int wt)
{
	pbw_varint(w, ((uint64_t) field << 3) | (uint64_t) wt);
}

static void
pbw_bytes(pbw *w, uint32_t field, const void *data, size_t len)
{
	pbw_tag(w, field, 2);
	pbw_varint(w, len);
	memcpy(w->buf + w->len, data, len);
	w->len += len;
}

static void
pbw_uint(pbw *w, uint32_t field, uint64_t v)
{
	pbw_tag(w, field, 0);
	pbw_varint(w, v);
}

static void
pbw_float(pbw *w, uint32_t field, float f)
{
	uint32_t	bits;

	memcpy(&bits, &f, 4);
	pbw_tag(w, field, 5);
	for (int i = 0; i < 4; i++)
		w->buf[w->len++] = (uint8_t) (bits >> (8 * i));
}

static void
pbw_piece(pbw *w, const char *s, float score, int type)
{
	pbw		   *p = calloc(1, sizeof(pbw));

	pbw_bytes(p, 1, s, strlen(s));
	pbw_float(p, 2, score);
	if (type != CB_SP_NORMAL)
		pbw_uint(p, 3, (uint64_t) type);
	pbw_bytes(w, 1, p->buf, p->len);
	free(p);
}

/* A minimal valid BPE model with no charsmap (identity normalization). */
static void
tiny_model(pbw *w, int model_type, bool byte_fallback)
{
	pbw		   *t = calloc(1, sizeof(pbw));

	w->len = 0;
	pbw_piece(w, "<unk>", 0, CB_SP_UNKNOWN);
	pbw_piece(w, "<s>", 0, CB_SP_CONTROL);
	pbw_piece(w, "</s>", 0, CB_SP_CONTROL);
	pbw_piece(w, "\xE2\x96\x81" "a", -1, CB_SP_NORMAL);
	pbw_piece(w, "b", -2, CB_SP_NORMAL);
	pbw_piece(w, "a", -3, CB_SP_NORMAL);
	pbw_piece(w, "\xE2\x96\x81", -4, CB_SP_NORMAL);
	pbw_uint(t, 3, (uint64_t) model_type);
	if (byte_fallback)
		pbw_uint(t, 35, 1);
	pbw_bytes(w, 2, t->buf, t->len);
	free(t);
}

static cb_status
try_build(const pbw *w, cb_error *err)
{
	return build_and_probe(w->buf, w->len, err);
}

static void
test_handmade_models(void)
{
	pbw		   *w = calloc(1, sizeof(pbw));
	cb_error	err;
	cb_status	st;

	tiny_model(w, CB_SP_MODEL_BPE, false);
	st = try_build(w, &err);
	CHECK_MSG(st == CB_OK, "tiny model: %s", err.message);

	/* One workspace for two models: its word cache must not mix them up. */
	{
		void	   *image = NULL;
		size_t		image_len = 0,
					n = 0;
		cb_tokenizer tiny;
		const int32_t *ids;

		CHECK(cb_tokenizer_build(w->buf, w->len, &image, &image_len, &err) == CB_OK);
		CHECK(cb_tokenizer_open(image, image_len, &tiny, &err) == CB_OK);
		CHECK(cb_tokenizer_encode_ws(&g_tok, g_ws, "a b", 3, false, 0, &ids, &n, NULL, &err) == CB_OK);
		CHECK(n == 2 && ids[0] == 21 && ids[1] == 88);	/* ▁a ▁b in the golden model */
		/* tiny model: ▁a=3, b=4, a=5, ▁=6 -> "▁a" "▁" "b" = 7 10 8 */
		CHECK(cb_tokenizer_encode_ws(&tiny, g_ws, "a b", 3, false, 0, &ids, &n, NULL, &err) == CB_OK);
		CHECK(n == 3 && ids[0] == 7 && ids[1] == 10 && ids[2] == 8);
		CHECK(cb_tokenizer_encode_ws(&g_tok, g_ws, "a b", 3, false, 0, &ids, &n, NULL, &err) == CB_OK);
		CHECK(n == 2 && ids[0] == 21 && ids[1] == 88);
		cb_free(image);
	}

	/* Unknown fields of every wire type (incl. a group) are skipped. */
	{
		size_t		base;

		tiny_model(w, CB_SP_MODEL_BPE, false);
		base = w->len;
		pbw_uint(w, 99, 12345);
		pbw_tag(w, 100, 1);
		memset(w->buf + w->len, 0xAB, 8);
		w->len += 8;
		pbw_tag(w, 101, 5);
		memset(w->buf + w->len, 0xCD, 4);
		w->len += 4;
		pbw_bytes(w, 102, "junk", 4);
		pbw_tag(w, 103, 3);		/* group 103 { 7: varint, group 8 {} } */
		pbw_uint(w, 7, 1);
		pbw_tag(w, 8, 3);
		pbw_tag(w, 8, 4);
		pbw_tag(w, 103, 4);
		pbw_uint(w, 3, 5);		/* normalizer_spec with a varint wire type: unknown */
		CHECK(w->len > base);
		st = try_build(w, &err);
		CHECK_MSG(st == CB_OK, "unknown fields: %s", err.message);
		/* unterminated group */
		pbw_tag(w, 104, 3);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
		/* mismatched end group */
		w->len -= 2;
		pbw_tag(w, 104, 3);
		pbw_tag(w, 105, 4);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
	}

	/* A unigram model builds (XLM-RoBERTa's; unigram.h); WORD does not. */
	tiny_model(w, CB_SP_MODEL_UNIGRAM, false);
	CHECK_EQ_INT(try_build(w, &err), CB_OK);
	tiny_model(w, CB_SP_MODEL_WORD, false);
	CHECK_EQ_INT(try_build(w, &err), CB_ERR_UNSUPPORTED);
	CHECK(strstr(err.message, "WORD") != NULL);
	tiny_model(w, CB_SP_MODEL_BPE, true);
	CHECK_EQ_INT(try_build(w, &err), CB_ERR_UNSUPPORTED);
	CHECK(strstr(err.message, "byte_fallback") != NULL);

	/* No trainer_spec at all. */
	w->len = 0;
	pbw_piece(w, "<unk>", 0, CB_SP_UNKNOWN);
	CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);

	/* Huge lengths, bad varints, bad tags. */
	{
		const uint8_t huge_len[] = {0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
		const uint8_t long_varint[] = {0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
		const uint8_t overflow_varint[] = {0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02};
		const uint8_t field_zero[] = {0x00, 0x01};
		const uint8_t wire_type_7[] = {0x0F, 0x01};
		const uint8_t truncated_fixed32[] = {0x0D, 0x01, 0x02};
		const uint8_t end_group[] = {0x0C};
		const uint8_t huge_piece_len[] = {0x0A, 0x05, 0x0A, 0xFF, 0xFF, 0xFF, 0x0F};

		CHECK_EQ_INT(cb_tokenizer_build(huge_len, sizeof(huge_len), &(void *) {NULL}, &(size_t) {0}, &err), CB_ERR_FORMAT);
		CHECK_EQ_INT(cb_tokenizer_build(long_varint, sizeof(long_varint), &(void *) {NULL}, &(size_t) {0}, &err), CB_ERR_FORMAT);
		CHECK_EQ_INT(cb_tokenizer_build(overflow_varint, sizeof(overflow_varint), &(void *) {NULL}, &(size_t) {0}, &err), CB_ERR_FORMAT);
		CHECK_EQ_INT(cb_tokenizer_build(field_zero, sizeof(field_zero), &(void *) {NULL}, &(size_t) {0}, &err), CB_ERR_FORMAT);
		CHECK_EQ_INT(cb_tokenizer_build(wire_type_7, sizeof(wire_type_7), &(void *) {NULL}, &(size_t) {0}, &err), CB_ERR_FORMAT);
		CHECK_EQ_INT(cb_tokenizer_build(truncated_fixed32, sizeof(truncated_fixed32), &(void *) {NULL}, &(size_t) {0}, &err), CB_ERR_FORMAT);
		CHECK_EQ_INT(cb_tokenizer_build(end_group, sizeof(end_group), &(void *) {NULL}, &(size_t) {0}, &err), CB_ERR_FORMAT);
		CHECK_EQ_INT(cb_tokenizer_build(huge_piece_len, sizeof(huge_piece_len), &(void *) {NULL}, &(size_t) {0}, &err), CB_ERR_FORMAT);
		CHECK(strstr(err.message, "offset") != NULL);
		CHECK_EQ_INT(cb_tokenizer_build(huge_len, 0, &(void *) {NULL}, &(size_t) {0}, &err), CB_ERR_FORMAT);
	}

	/* Semantic errors. */
	{
		pbw		   *t = calloc(1, sizeof(pbw));

		pbw_uint(t, 3, CB_SP_MODEL_BPE);
		/* no unknown piece */
		w->len = 0;
		pbw_piece(w, "<s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "</s>", 0, CB_SP_CONTROL);
		pbw_bytes(w, 2, t->buf, t->len);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
		/* empty piece */
		w->len = 0;
		pbw_piece(w, "<unk>", 0, CB_SP_UNKNOWN);
		pbw_piece(w, "<s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "</s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "", 0, CB_SP_NORMAL);
		pbw_bytes(w, 2, t->buf, t->len);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
		/* duplicate piece */
		w->len = 0;
		pbw_piece(w, "<unk>", 0, CB_SP_UNKNOWN);
		pbw_piece(w, "<s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "</s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "ab", -1, CB_SP_NORMAL);
		pbw_piece(w, "ab", -2, CB_SP_NORMAL);
		pbw_bytes(w, 2, t->buf, t->len);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
		/* NaN score */
		w->len = 0;
		pbw_piece(w, "<unk>", 0, CB_SP_UNKNOWN);
		pbw_piece(w, "<s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "</s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "ab", NAN, CB_SP_NORMAL);
		pbw_bytes(w, 2, t->buf, t->len);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
		/* byte piece without byte_fallback */
		w->len = 0;
		pbw_piece(w, "<unk>", 0, CB_SP_UNKNOWN);
		pbw_piece(w, "<s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "</s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "<0x41>", 0, CB_SP_BYTE);
		pbw_bytes(w, 2, t->buf, t->len);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
		/* two unknown pieces */
		w->len = 0;
		pbw_piece(w, "<unk>", 0, CB_SP_UNKNOWN);
		pbw_piece(w, "<unk2>", 0, CB_SP_UNKNOWN);
		pbw_piece(w, "<s>", 0, CB_SP_CONTROL);
		pbw_piece(w, "</s>", 0, CB_SP_CONTROL);
		pbw_bytes(w, 2, t->buf, t->len);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
		/* no <s> */
		w->len = 0;
		pbw_piece(w, "<unk>", 0, CB_SP_UNKNOWN);
		pbw_piece(w, "</s>", 0, CB_SP_CONTROL);
		pbw_bytes(w, 2, t->buf, t->len);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_UNSUPPORTED);
		/* broken charsmap: trie size beyond the blob */
		{
			pbw		   *n = calloc(1, sizeof(pbw));
			const uint8_t blob[] = {0xFF, 0x00, 0x00, 0x00, 1, 2, 3, 4};

			tiny_model(w, CB_SP_MODEL_BPE, false);
			pbw_bytes(n, 2, blob, sizeof(blob));
			pbw_bytes(w, 3, n->buf, n->len);
			CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
			free(n);
		}
		free(t);
	}
	free(w);
}

/* ------------------------------------------------------------------------- */
/* Pieces, unk_surface and charsmap replacements come out of camembert_tokens
 * and camembert_decode as text: anything that is not UTF-8 without NUL is
 * refused when the model is built, naming the piece. */

static void
test_invalid_pieces(void)
{
	static const struct
	{
		const char *bytes;
		size_t		len;
		const char *what;
	}			bad[] = {
		{"\xC0\xAF", 2, "overlong 2-byte"},
		{"\xC0\x80", 2, "overlong NUL"},
		{"\xE0\x80\xAF", 3, "overlong 3-byte"},
		{"\xF0\x80\x80\xAF", 4, "overlong 4-byte"},
		{"\xED\xA0\x80", 3, "surrogate"},
		{"x\xED\xBF\xBF", 4, "low surrogate"},
		{"\xF4\x90\x80\x80", 4, "over U+10FFFF"},
		{"\xE2\x96", 2, "truncated 3-byte"},
		{"ab\xF0\x9F\x98", 5, "truncated 4-byte"},
		{"a\x80", 2, "stray continuation byte"},
		{"\xFF\xFE", 2, "0xFF"},
		{"a\0b", 3, "NUL"},
		{"\0", 1, "lone NUL"},
	};
	static const struct
	{
		const char *bytes;
		size_t		len;
	}			good[] = {
		{"\xEF\xBF\xBD", 3},		/* U+FFFD itself */
		{"\xF4\x8F\xBF\xBF", 4},	/* U+10FFFF */
		{"\xED\x9F\xBF", 3},		/* U+D7FF */
		{"\xEE\x80\x80", 3},		/* U+E000 */
		{"\xF0\x9F\x98\x80", 4},
		{"\x7F", 1},
	};
	const int	types[] = {CB_SP_NORMAL, CB_SP_USER_DEFINED, CB_SP_UNUSED, CB_SP_CONTROL};
	pbw		   *w = calloc(1, sizeof(pbw));
	pbw		   *p = calloc(1, sizeof(pbw));
	cb_error	err;
	cb_status	st;

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
	{
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		{
			tiny_model(w, CB_SP_MODEL_BPE, false);
			p->len = 0;
			pbw_bytes(p, 1, bad[i].bytes, bad[i].len);
			pbw_float(p, 2, -5);
			pbw_uint(p, 3, (uint64_t) types[t]);
			pbw_bytes(w, 1, p->buf, p->len);	/* piece 7 */
			st = try_build(w, &err);
			CHECK_MSG(st == CB_ERR_FORMAT, "%s piece of type %d: %s (%s)", bad[i].what, types[t],
					  cb_status_name(st), st == CB_OK ? "built" : err.message);
			if (st != CB_OK)
				CHECK_MSG(strstr(err.message, "piece 7 ") != NULL &&
						  strstr(err.message, bad[i].bytes[0] == 0 || (bad[i].len == 3 && bad[i].bytes[1] == 0) ?
								 "NUL" : "UTF-8") != NULL,
						  "%s: message \"%s\"", bad[i].what, err.message);
		}
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
	{
		tiny_model(w, CB_SP_MODEL_BPE, false);
		p->len = 0;
		pbw_bytes(p, 1, good[i].bytes, good[i].len);
		pbw_float(p, 2, -5);
		pbw_bytes(w, 1, p->buf, p->len);
		st = try_build(w, &err);
		CHECK_MSG(st == CB_OK, "good piece %zu: %s", i, st == CB_OK ? "" : err.message);
	}

	/* unk_surface (what decoding an unknown piece gives); a second trainer_spec merges */
	{
		pbw		   *t = calloc(1, sizeof(pbw));

		tiny_model(w, CB_SP_MODEL_BPE, false);
		pbw_bytes(t, 44, "\xE2\x81", 2);
		pbw_bytes(w, 2, t->buf, t->len);
		CHECK_EQ_INT(try_build(w, &err), CB_ERR_FORMAT);
		CHECK(strstr(err.message, "unk_surface") != NULL);
		tiny_model(w, CB_SP_MODEL_BPE, false);
		t->len = 0;
		pbw_bytes(t, 44, " \xE2\x81\x87 ", 5);
		pbw_bytes(w, 2, t->buf, t->len);
		CHECK_EQ_INT(try_build(w, &err), CB_OK);
		free(t);
	}

	/*
	 * A charsmap replacement: the golden model with the first byte of the
	 * replacement of U+FDFA (an Arabic letter, 0xD8 or 0xD9) set to 0xFF.
	 * Built anyway, "\xEF\xB7\xBA" would come out of tokenize() with 0xFF in it.
	 */
	{
		cb_sp_model m;
		const char *rep = NULL;
		size_t		rep_len = 0,
					file_off;
		uint32_t	trie_size;
		uint8_t    *copy = malloc(g_model_len);

		CHECK(cb_sp_model_parse(g_model, g_model_len, &m, &err) == CB_OK);
		CHECK(cb_charsmap_match(&g_tok.normalizer, (const uint8_t *) "\xEF\xB7\xBA", 3, &rep, &rep_len) == 3);
		CHECK(rep != NULL && rep_len > 10);
		memcpy(&trie_size, m.precompiled_charsmap.data, 4);
		file_off = (size_t) (m.precompiled_charsmap.data - g_model) + 4 + trie_size +
			(size_t) (rep - g_tok.normalizer.pool);
		CHECK(file_off < g_model_len && ((const char *) g_model)[file_off] == rep[0]);
		memcpy(copy, g_model, g_model_len);
		copy[file_off] = 0xFF;
		st = build_and_probe(copy, g_model_len, &err);
		CHECK_MSG(st == CB_ERR_FORMAT, "corrupted charsmap replacement: %s", st == CB_OK ? "built" : err.message);
		CHECK(strstr(err.message, "precompiled_charsmap") != NULL);
		cb_sp_model_free(&m);
		free(copy);
	}
	free(p);
	free(w);
}

/* ------------------------------------------------------------------------- */
/* Models unlike the golden one: the same ids with a 1-byte window and with
 * truncation stopping early.  The golden model re-serialized with every 5th
 * NORMAL piece of 2+ characters made UNUSED (SentencePiece resegments them;
 * its records of merges live for a whole call, so such a model encodes a
 * chunk at once), or with two pieces that hold "▁" inside (merges may then
 * cross a "▁": a chunk at once too); the fuzz corpus' user-defined and
 * identity models (cut at every "▁" like the golden one). */

typedef struct dynbuf
{
	uint8_t    *data;
	size_t		len,
				cap;
} dynbuf;

static void
db_put(dynbuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2;
		b->data = realloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
db_varint(dynbuf *b, uint64_t v)
{
	uint8_t		c;

	while (v >= 0x80)
	{
		c = (uint8_t) (v | 0x80);
		db_put(b, &c, 1);
		v >>= 7;
	}
	c = (uint8_t) v;
	db_put(b, &c, 1);
}

static void
db_bytes(dynbuf *b, uint32_t field, const void *p, size_t n)
{
	db_varint(b, (uint64_t) field << 3 | 2);
	db_varint(b, n);
	db_put(b, p, n);
}

static void
db_piece(dynbuf *b, const uint8_t *s, size_t n, float score, int type)
{
	dynbuf		p = {0};

	db_bytes(&p, 1, s, n);
	db_varint(&p, 2 << 3 | 5);
	db_put(&p, &score, 4);		/* little-endian hosts only, as the image */
	if (type != CB_SP_NORMAL)
	{
		db_varint(&p, 3 << 3);
		db_varint(&p, (uint64_t) type);
	}
	db_bytes(b, 1, p.data, p.len);
	free(p.data);
}

/* The golden model again, with piece types changed by `unused` and extra pieces at the end. */
static uint8_t *
golden_variant(bool unused, bool inner_space, size_t *len)
{
	cb_sp_model m;
	cb_error	err;
	dynbuf		b = {0},
				t = {0},
				n = {0};
	uint8_t		one = 1;

	CHECK(cb_sp_model_parse(g_model, g_model_len, &m, &err) == CB_OK);
	for (size_t i = 0; i < m.n_pieces; i++)
	{
		const cb_sp_piece *p = &m.pieces[i];
		int			type = p->type;

		if (unused && type == CB_SP_NORMAL && i % 5 == 0 &&
			cb_utf8_lead_len(p->piece.data[0]) < p->piece.len)
			type = CB_SP_UNUSED;
		db_piece(&b, p->piece.data, p->piece.len, p->score, type);
	}
	if (inner_space)
	{
		db_piece(&b, (const uint8_t *) "s\xE2\x96\x81l", 5, -1e4f, CB_SP_NORMAL);
		db_piece(&b, (const uint8_t *) "e\xE2\x96\x81" "d", 5, -1.0f, CB_SP_NORMAL);
	}
	db_varint(&t, 3 << 3);
	db_varint(&t, CB_SP_MODEL_BPE);
	db_bytes(&b, 2, t.data, t.len);
	db_bytes(&n, 2, m.precompiled_charsmap.data, m.precompiled_charsmap.len);
	for (uint32_t f = 3; f <= 5; f++)
	{
		db_varint(&n, f << 3);
		db_put(&n, &one, 1);
	}
	db_bytes(&b, 3, n.data, n.len);
	cb_sp_model_free(&m);
	free(t.data);
	free(n.data);
	*len = b.len;
	return b.data;
}

static cb_tokenizer g_variant;

static void
variant_line(const cb_json_value *o, long line_no)
{
	const cb_json_value *hex = json_str(o, "text_utf8_hex");
	size_t		len;
	char	   *text;

	if (hex == NULL)
	{
		UNIT_FAIL("tokenization.jsonl line %ld: missing keys", line_no + 1);
		return;
	}
	text = ut_unhex(hex->string, hex->string_len, &len);
	for (int times = 1; times <= 30; times += 29)
	{
		size_t		rlen = times * (len + 1);
		char	   *rep = malloc(rlen + 1);
		int32_t    *full = NULL;
		size_t		n_full = 0;
		cb_error	err;

		for (int i = 0; i < times; i++)
		{
			memcpy(rep + i * (len + 1), text, len);
			rep[i * (len + 1) + len] = i % 2 ? ' ' : '\xE2';	/* a space, or a broken "▁" */
		}
		g_case_text = rep;
		g_case_text_len = rlen;
		CHECK(cb_tokenizer_encode(&g_variant, g_ws, rep, rlen, true, 0, &full, &n_full, &err) == CB_OK);
		if (full != NULL)
		{
			int32_t    *want = malloc((n_full + 2) * sizeof(int32_t));

			for (int w = 0; w < 3; w++)
			{
				const int32_t *got;
				size_t		n;

				CHECK(cb_tokenizer_encode_ws(&g_variant, g_ws_small[w], rep, rlen, true, 0, &got, &n,
											 NULL, &err) == CB_OK);
				check_ids("variant, small window", got, n, full, n_full);
			}
			for (int m = 3; m <= 48; m += 15)
			{
				const int32_t *got;
				size_t		n,
							n_want;
				bool		cut,
							want_cut;

				n_want = reference_truncation(full, n_full, true, m, want, &want_cut);
				CHECK(cb_tokenizer_encode_ws(&g_variant, g_ws_small[0], rep, rlen, true, m, &got, &n,
											 &cut, &err) == CB_OK);
				if (check_ids("variant, truncated", got, n, want, n_want))
					CHECK(cut == want_cut);
			}
			free(want);
		}
		cb_free(full);
		free(rep);
	}
	free(text);
}

static void
test_other_models(void)
{
	const char *files[] = {"fuzz/corpus/sp_model/user_defined_bpe400.model",
	"fuzz/corpus/unigram/identity_bpe300.model"};

	for (int v = 0; v < 4; v++)
	{
		uint8_t    *model;
		size_t		model_len;
		void	   *image = NULL;
		size_t		image_len = 0;
		cb_error	err;
		int			failed_before = unit_failed;

		if (v < 2)
			model = golden_variant(v == 0, v == 1, &model_len);
		else
			model = ut_read_file(files[v - 2], &model_len);
		CHECK(model != NULL);
		if (model == NULL)
			continue;
		CHECK_MSG(cb_tokenizer_build(model, model_len, &image, &image_len, &err) == CB_OK, "%s", err.message);
		CHECK(cb_tokenizer_open(image, image_len, &g_variant, &err) == CB_OK);
		if (v == 0)
			CHECK(g_variant.vocab.has_unused && !g_variant.vocab.split_words);
		else if (v == 1)
			CHECK(!g_variant.vocab.has_unused && !g_variant.vocab.split_words);
		else
			CHECK(g_variant.vocab.split_words);
		g_case_file = v == 0 ? "golden with UNUSED pieces" : v == 1 ? "golden with inner \"▁\"" : files[v - 2];
		for_each_jsonl(TOK_DIR "/tokenization.jsonl", variant_line);
		printf("%s: %d failed checks\n", g_case_file, unit_failed - failed_before);
		cb_free(image);
		free(model);
	}
}

/* ------------------------------------------------------------------------- */
/* Malformed UTF-8, NUL bytes, U+FFFD, "▁": transformers' golden data cannot
 * hold malformed UTF-8 (Python str), so these expected ids come from
 * SentencePiece 0.1.97 itself (Debian python3-sentencepiece,
 * SentencePieceProcessor.encode(bytes) on the golden model), mapped to
 * CamemBERT ids (sp 0 -> 3, else sp + 4). */

static void
test_malformed_utf8(void)
{
	static const struct
	{
		const char *text;
		size_t		len;
		int32_t		ids[8];
		size_t		n;
	}			cases[] = {
		{"\x63\x61\x66\xc3", 4, {6095, 7861, 3}, 3},	/* ▁ca f U+FFFD */
		{"\xff\xfe\x20\x63\x68\x61\x74", 7, {7845, 3, 113, 109}, 4},
		{"\xc3\xa9\x74\xc3\xa9\x80\x80", 7, {377, 3}, 2},
		{"\xed\xa0\x80\x78", 4, {7845, 3, 7878}, 3},	/* encoded surrogate */
		{"\xf4\x90\x80\x80", 4, {7845, 3}, 2},	/* > U+10FFFF */
		{"\xc0\xaf\x61", 3, {7845, 3, 7852}, 3},	/* overlong */
		{"\x61\x00\x62", 3, {21, 3, 7866}, 3},	/* NUL is an unknown character */
		{"\xef\xbf\xbd", 3, {0}, 0},	/* a literal U+FFFD is removed by nmt_nfkc */
		{"\xe2\x96\x81\xe2\x96\x81\x61\x20\xe2\x96\x81\x20\x62", 13, {21, 88}, 2},
		{"\xf0\x9f\x98", 3, {7845, 3}, 2},	/* truncated 4-byte sequence */
		{"\x01\x02\x7f", 3, {0}, 0},	/* control characters are removed */
	};

	g_case_file = "malformed UTF-8";
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		size_t		n = 0;
		int32_t    *ids = encode(cases[i].text, cases[i].len, false, 0, &n);

		g_case_index = (long) i;
		g_case_text = cases[i].text;
		g_case_text_len = cases[i].len;
		if (ids)
			check_ids("sentencepiece ids", ids, n, cases[i].ids, cases[i].n);
		cb_free(ids);
	}
}

/* ------------------------------------------------------------------------- */
/* Images */

static void
test_image_validation(void)
{
	cb_tokenizer tok;
	cb_error	err;
	uint8_t    *copy = cb_malloc(g_image_len + 8);

	memcpy(copy, g_image, g_image_len);
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len - 8, &tok, &err), CB_ERR_FORMAT);
	CHECK_EQ_INT(cb_tokenizer_open(copy, 16, &tok, &err), CB_ERR_FORMAT);
	copy[0] ^= 1;
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len, &tok, &err), CB_ERR_FORMAT);
	copy[0] ^= 1;
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len, &tok, &err), CB_OK);
	/* misaligned */
	memmove(copy + 1, copy, g_image_len);
	CHECK_EQ_INT(cb_tokenizer_open(copy + 1, g_image_len, &tok, &err), CB_ERR_INVALID);
	memmove(copy, copy + 1, g_image_len);
	/* random damage anywhere in the first 64 KB: open fails or the tokenizer works */
	for (int trial = 0; trial < 300; trial++)
	{
		size_t		pos = rng() % (g_image_len < 65536 ? g_image_len : 65536);
		uint8_t		old = copy[pos];

		copy[pos] ^= (uint8_t) (1 + rng() % 255);
		if (cb_tokenizer_open(copy, g_image_len, &tok, &err) == CB_OK)
		{
			int32_t    *ids = NULL;
			size_t		n = 0;

			if (cb_tokenizer_encode(&tok, NULL, kProbe, strlen(kProbe), true, 0, &ids, &n, &err) == CB_OK)
				cb_free(ids);
		}
		copy[pos] = old;
	}
	cb_free(copy);
	CHECK(cb_tokenizer_open(NULL, 0, &tok, &err) == CB_ERR_INVALID);
}

/* ------------------------------------------------------------------------- */
/* API edge cases */

static void
test_api_edges(void)
{
	cb_error	err;
	int32_t    *ids = NULL;
	size_t		n = 99;
	char	   *text = NULL;
	const int32_t bad[] = {5, 8005, 6};
	const int32_t neg[] = {-1};

	/* decode of an out-of-range id */
	CHECK_EQ_INT(cb_tokenizer_decode(&g_tok, bad, 3, true, true, &text, NULL, &err), CB_ERR_INVALID);
	CHECK_EQ_INT(cb_tokenizer_decode(&g_tok, neg, 1, true, true, &text, NULL, &err), CB_ERR_INVALID);
	/* decode of nothing */
	CHECK_EQ_INT(cb_tokenizer_decode(&g_tok, NULL, 0, true, true, &text, &n, &err), CB_OK);
	CHECK(text != NULL && n == 0 && text[0] == '\0');
	cb_free(text);
	/* fill-mask token_str = decode([id]) */
	{
		const int32_t one[] = {280};	/* ▁Le */

		CHECK_EQ_INT(cb_tokenizer_decode(&g_tok, one, 1, false, true, &text, &n, &err), CB_OK);
		CHECK_EQ_STR(text, "Le");
		cb_free(text);
	}
	/* empty text */
	CHECK_EQ_INT(cb_tokenizer_encode(&g_tok, NULL, "", 0, true, 0, &ids, &n, &err), CB_OK);
	CHECK(n == 2 && ids[0] == 5 && ids[1] == 6);
	cb_free(ids);
	CHECK_EQ_INT(cb_tokenizer_encode(&g_tok, NULL, NULL, 0, false, 0, &ids, &n, &err), CB_OK);
	CHECK(n == 0 && ids != NULL);
	cb_free(ids);
	/* max_length below what truncation can reach: untruncated, as transformers */
	CHECK_EQ_INT(cb_tokenizer_encode(&g_tok, NULL, "Le chat", 7, true, 1, &ids, &n, &err), CB_OK);
	CHECK_EQ_INT(n, 5);
	cb_free(ids);
	CHECK_EQ_INT(cb_tokenizer_encode(&g_tok, NULL, "Le chat", 7, true, 3, &ids, &n, &err), CB_OK);
	CHECK(n == 3 && ids[0] == 5 && ids[1] == 280 && ids[2] == 6);
	cb_free(ids);
	/* NUL bytes inside the text are characters */
	CHECK_EQ_INT(cb_tokenizer_encode(&g_tok, NULL, "a\0b", 3, false, 0, &ids, &n, &err), CB_OK);
	CHECK(n >= 2);
	cb_free(ids);
	/* bad truncation strategy */
	CHECK_EQ_INT(cb_tokenizer_encode_pair(&g_tok, NULL, "a", 1, "b", 1, true, (cb_truncation) 7, 4,
										  &ids, &n, &err), CB_ERR_INVALID);
	/* the workspace view */
	{
		const int32_t *view;

		CHECK_EQ_INT(cb_tokenizer_encode_ws(&g_tok, g_ws, "Le chat", 7, true, 0, &view, &n, NULL, &err), CB_OK);
		CHECK(n == 5 && view[0] == 5 && view[1] == 280 && view[4] == 6);
		CHECK_EQ_INT(cb_tokenizer_encode_ws(&g_tok, NULL, "Le chat", 7, true, 0, &view, &n, NULL, &err), CB_ERR_INVALID);
	}
}

int
main(void)
{
	RUN(test_build_open);
	RUN(test_tokenization_jsonl);
	RUN(test_early_stop);
	RUN(test_workspace_trim);
	RUN(test_pairs_jsonl);
	RUN(test_truncation_jsonl);
	RUN(test_batch_padding);
	RUN(test_vocab_jsonl);
	RUN(test_model_dirs);
	RUN(test_truncated_models);
	RUN(test_corrupted_models);
	RUN(test_handmade_models);
	RUN(test_invalid_pieces);
	RUN(test_other_models);
	RUN(test_malformed_utf8);
	RUN(test_image_validation);
	RUN(test_api_edges);
	cb_tok_workspace_destroy(g_ws);
	for (int i = 0; i < 3; i++)
		cb_tok_workspace_destroy(g_ws_small[i]);
	cb_free(g_image);
	free(g_model);
	return unit_finish("test_tokenizer");
}
