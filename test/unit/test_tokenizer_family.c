/*
 * test_tokenizer_family.c — the tokenizers of CamemBERT's family against the
 * golden outputs of transformers 4.37's slow tokenizers:
 *   - RobertaTokenizer (byte-level BPE): test/golden/roberta/tokenizer
 *   - XLMRobertaTokenizer (SentencePiece unigram, fairseq offset 1):
 *     test/golden/xlmr/tokenizer
 * tokenization.jsonl (tokens, ids with and without special tokens, the three
 * decodes), pairs.jsonl (with the three truncations to 16), truncation.jsonl;
 * the long-word merge path against the same golden; hostile vocab.json /
 * merges.txt / images.
 */
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "unit.h"
#include "support/ut_files.h"
#include "support/ut_golden_json.h"
#include "bytebpe.h"
#include "json.h"
#include "tokenizer.h"
#include "tokenizer_dir.h"
#include "config.h"

#define ROBERTA_DIR "build/golden/roberta/tokenizer"
#define XLMR_DIR "build/golden/xlmr/tokenizer"

static cb_tokenizer g_tok;
static void *g_image;
static size_t g_image_len;
static cb_tok_workspace *g_ws;
static const char *g_family = "";
static long g_line;

static void
check_ids(const char *what, const int32_t *got, size_t n_got, const cb_json_value *want_v)
{
	long		n_want;
	int32_t    *want = ut_json_ids(want_v, &n_want);

	if (want == NULL)
	{
		UNIT_FAIL("%s line %ld: golden %s missing", g_family, g_line, what);
		return;
	}
	if (got != NULL && n_got == (size_t) n_want && (n_got == 0 || memcmp(got, want, n_got * sizeof(int32_t)) == 0))
		unit_passed++;
	else
	{
		UNIT_FAIL("%s line %ld: %s differ", g_family, g_line, what);
		fputs("  got:  ", stderr);
		if (got)
			ut_print_ids(stderr, got, n_got);
		else
			fputs("(error)", stderr);
		fputs("\n  want: ", stderr);
		ut_print_ids(stderr, want, (size_t) n_want);
		fputc('\n', stderr);
	}
	free(want);
}

static void
check_text(const char *what, const char *got, size_t n_got, const cb_json_value *want)
{
	if (want == NULL || want->type != CB_JSON_STRING)
	{
		UNIT_FAIL("%s line %ld: golden %s missing", g_family, g_line, what);
		return;
	}
	if (got != NULL && n_got == want->string_len && memcmp(got, want->string, n_got) == 0)
		unit_passed++;
	else
		UNIT_FAIL("%s line %ld: %s: got \"%s\", want \"%s\"", g_family, g_line, what, got ? got : "(error)",
				  want->string);
}

typedef void (*line_fn) (const cb_json_value *obj);

/* Collects ids from cb_bbpe_encode. */
typedef struct sink
{
	int32_t    *ids;
	size_t		n,
				cap;
} sink;

static cb_status
sink_emit(void *arg, int32_t id, const char *piece, size_t len, bool *stop, cb_error *err)
{
	sink	   *sk = arg;

	(void) piece;
	(void) len;
	(void) stop;
	if (sk->n == sk->cap)
		return cb_set_error(err, CB_ERR_LIMIT, "too many ids");
	sk->ids[sk->n++] = id;
	return CB_OK;
}

static long
for_each_jsonl(const char *path, line_fn fn)
{
	size_t		len;
	char	   *text = (char *) ut_read_file(path, &len);
	size_t		pos = 0;

	g_line = 0;
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
			g_line++;
			if (cb_json_parse(text + pos, end - pos, path, NULL, &doc, &err) == CB_OK)
			{
				fn(cb_json_root(doc));
				cb_json_free(doc);
			}
			else
				UNIT_FAIL("%s line %ld: %s", path, g_line, err.message);
		}
		pos = end + 1;
	}
	free(text);
	return g_line;
}

static char *
text_of(const cb_json_value *o, const char *key_hex, const char *key, size_t *len)
{
	const cb_json_value *h = cb_json_get(o, key_hex);
	const cb_json_value *t = cb_json_get(o, key);
	char	   *s;

	if (h != NULL && h->type == CB_JSON_STRING)
		return ut_unhex(h->string, h->string_len, len);
	s = malloc(t->string_len + 1);
	memcpy(s, t->string, t->string_len + 1);
	*len = t->string_len;
	return s;
}

/* ------------------------------------------------------------------------- */
/* Byte-level BPE: build */

static cb_status
build_roberta_dir(const char *dir, void **image, size_t *image_len, cb_error *err)
{
	char		path[512];
	size_t		lv,
				lm,
				lc,
				ls;
	char	   *v,
			   *m,
			   *c,
			   *s;
	cb_status	st;

	snprintf(path, sizeof(path), "%s/vocab.json", dir);
	v = (char *) ut_read_file(path, &lv);
	snprintf(path, sizeof(path), "%s/merges.txt", dir);
	m = (char *) ut_read_file(path, &lm);
	snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
	c = (char *) ut_read_file(path, &lc);
	snprintf(path, sizeof(path), "%s/special_tokens_map.json", dir);
	s = (char *) ut_read_file(path, &ls);
	if (v == NULL || m == NULL)
		st = cb_set_error(err, CB_ERR_IO, "cannot read %s", dir);
	else
		st = cb_bbpe_build(v, lv, m, lm, c, lc, s, ls, image, image_len, err);
	free(v);
	free(m);
	free(c);
	free(s);
	return st;
}

static void
test_roberta_build(void)
{
	cb_error	err;
	cb_status	st = build_roberta_dir(ROBERTA_DIR, &g_image, &g_image_len, &err);

	CHECK_MSG(st == CB_OK, "build: %s", err.message);
	if (st != CB_OK)
		exit(unit_finish("test_tokenizer_family"));
	st = cb_tokenizer_open(g_image, g_image_len, &g_tok, &err);
	CHECK_MSG(st == CB_OK, "open: %s", err.message);
	if (st != CB_OK)
		exit(unit_finish("test_tokenizer_family"));
	/* meta.json: len(tokenizer) 50262, <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> 50261 */
	CHECK_EQ_INT(g_tok.kind, CB_TOK_KIND_BYTE_BPE);
	CHECK_EQ_INT(g_tok.vocab_size, 50262);
	CHECK_EQ_INT(g_tok.cls_id, 0);
	CHECK_EQ_INT(g_tok.pad_id, 1);
	CHECK_EQ_INT(g_tok.sep_id, 2);
	CHECK_EQ_INT(g_tok.unk_id, 3);
	CHECK_EQ_INT(g_tok.mask_id, 50261);
	CHECK(cb_tokenizer_is_special_id(&g_tok, 0) && cb_tokenizer_is_special_id(&g_tok, 50261));
	CHECK(!cb_tokenizer_is_special_id(&g_tok, 4));
	CHECK_EQ_INT(cb_tokenizer_piece_to_id(&g_tok, "<mask>", 6), 50261);
	CHECK_EQ_INT(cb_tokenizer_piece_to_id(&g_tok, "Bon", 3), 20686);
	CHECK_EQ_INT(cb_tokenizer_piece_to_id(&g_tok, "no such token", 13), 3);
	g_ws = cb_tok_workspace_create();
}

/*
 * The image's header checks (image_layout.h: magic[8], version u32 at 8,
 * header_size u32 at 12, image_len u64 at 16, byte_order u32 at 24): each
 * damage gives its own status; random damage elsewhere either fails to open or
 * leaves a tokenizer that encodes without crashing.
 */
static void
test_roberta_image_validation(void)
{
	cb_tokenizer tok;
	cb_error	err;
	uint8_t    *copy = cb_malloc(g_image_len + 8);
	uint64_t	state = 0x9E3779B97F4A7C15ull;
	static const char kProbe[] = "Bonjour <mask> le monde, l'été 2024 !";

	memcpy(copy, g_image, g_image_len);
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len, &tok, &err), CB_OK);
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len - 8, &tok, &err), CB_ERR_FORMAT);
	CHECK_EQ_INT(cb_tokenizer_open(copy, 16, &tok, &err), CB_ERR_FORMAT);
	copy[8] ^= 1;				/* version */
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len, &tok, &err), CB_ERR_UNSUPPORTED);
	copy[8] ^= 1;
	copy[24] ^= 1;				/* byte order */
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len, &tok, &err), CB_ERR_UNSUPPORTED);
	copy[24] ^= 1;
	copy[12] ^= 1;				/* header size */
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len, &tok, &err), CB_ERR_FORMAT);
	copy[12] ^= 1;
	copy[7] ^= 1;				/* magic: no image of any kind */
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len, &tok, &err), CB_ERR_FORMAT);
	copy[7] ^= 1;
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len, &tok, &err), CB_OK);
	/* misaligned */
	memmove(copy + 1, copy, g_image_len);
	CHECK_EQ_INT(cb_tokenizer_open(copy + 1, g_image_len, &tok, &err), CB_ERR_INVALID);
	memmove(copy, copy + 1, g_image_len);
	for (int trial = 0; trial < 300; trial++)
	{
		size_t		pos;
		uint8_t		old;

		state = state * 6364136223846793005ull + 1442695040888963407ull;
		pos = (size_t) (state >> 33) % (g_image_len < 65536 ? g_image_len : 65536);
		old = copy[pos];
		copy[pos] ^= (uint8_t) (1 + (state >> 13) % 255);
		if (cb_tokenizer_open(copy, g_image_len, &tok, &err) == CB_OK)
		{
			int32_t    *ids = NULL;
			size_t		n = 0;

			if (cb_tokenizer_encode(&tok, NULL, kProbe, strlen(kProbe), true, 0, &ids, &n, &err) == CB_OK)
				cb_free(ids);
		}
		copy[pos] = old;
	}
	CHECK_EQ_INT(cb_tokenizer_open(copy, g_image_len, &tok, &err), CB_OK);
	cb_free(copy);
}

/* ------------------------------------------------------------------------- */
/* The golden */

static void
tokenization_line(const cb_json_value *o)
{
	size_t		len,
				n;
	char	   *text = text_of(o, "text_utf8_hex", "text", &len);
	int32_t    *ids = NULL;
	cb_error	err;
	cb_token_list *toks = NULL;
	char	   *dec;
	size_t		dec_len,
				count;
	const cb_json_value *want_tokens = cb_json_get(o, "tokens");

	/* tokenize() */
	if (cb_tokenizer_tokenize(&g_tok, g_ws, text, len, &toks, &err) == CB_OK &&
		want_tokens != NULL && toks->count == want_tokens->count)
	{
		bool		ok = true;

		for (size_t i = 0; i < toks->count; i++)
			if (toks->length[i] != want_tokens->items[i].string_len ||
				memcmp(toks->piece[i], want_tokens->items[i].string, toks->length[i]) != 0)
			{
				UNIT_FAIL("%s line %ld: token %zu: \"%s\" != \"%s\"", g_family, g_line, i, toks->piece[i],
						  want_tokens->items[i].string);
				ok = false;
				break;
			}
		if (ok)
			unit_passed++;
	}
	else
		UNIT_FAIL("%s line %ld: tokenize: %zu tokens, want %zu", g_family, g_line,
				  toks ? toks->count : 0, want_tokens ? want_tokens->count : 0);
	cb_free(toks);

	/* with and without special tokens, with a workspace and without */
	if (cb_tokenizer_encode(&g_tok, g_ws, text, len, true, 0, &ids, &n, &err) != CB_OK)
		ids = NULL;
	check_ids("input_ids", ids, n, cb_json_get(o, "input_ids"));
	if (ids != NULL)
	{
		if (cb_tokenizer_decode(&g_tok, ids, n, true, true, &dec, &dec_len, &err) != CB_OK)
			dec = NULL;
		check_text("decode", dec, dec_len, cb_json_get(o, "decode"));
		cb_free(dec);
		if (cb_tokenizer_decode(&g_tok, ids, n, true, false, &dec, &dec_len, &err) != CB_OK)
			dec = NULL;
		check_text("decode_no_cleanup", dec, dec_len, cb_json_get(o, "decode_no_cleanup"));
		cb_free(dec);
		if (cb_tokenizer_decode(&g_tok, ids, n, false, true, &dec, &dec_len, &err) != CB_OK)
			dec = NULL;
		check_text("decode_keep_special", dec, dec_len, cb_json_get(o, "decode_keep_special"));
		cb_free(dec);
	}
	cb_free(ids);
	if (cb_tokenizer_encode(&g_tok, NULL, text, len, false, 0, &ids, &n, &err) != CB_OK)
		ids = NULL;
	check_ids("ids_no_special", ids, n, cb_json_get(o, "ids_no_special"));
	cb_free(ids);
	CHECK(cb_tokenizer_count(&g_tok, g_ws, text, len, true, &count, &err) == CB_OK &&
		  count == cb_json_get(o, "input_ids")->count);

	/* the long-word path (a heap) everywhere, no cache: the same ids */
	if (g_tok.kind == CB_TOK_KIND_BYTE_BPE)
	{
		cb_bbpe_work w;
		const cb_json_value *want = cb_json_get(o, "ids_no_special");
		bool		ok = true;
		size_t		k = 0;

		memset(&w, 0, sizeof(w));
		w.long_word = 1;
		w.no_cache = true;
		ids = malloc((want->count + 1) * sizeof(int32_t));
		{
			sink		sk = {ids, 0, want->count + 1};
			cb_status	emit_st = cb_bbpe_encode(&g_tok.bbpe, &w, text, len, sink_emit, &sk, NULL, &err);

			ok = emit_st == CB_OK && sk.n == want->count;
			for (k = 0; ok && k < sk.n; k++)
				ok = sk.ids[k] == want->items[k].integer;
		}
		CHECK_MSG(ok, "%s line %ld: the heap merge differs (at %zu)", g_family, g_line, k);
		free(ids);
		cb_bbpe_work_free(&w);
	}
	free(text);
}

static void
pairs_line(const cb_json_value *o)
{
	size_t		la,
				lb,
				n;
	char	   *a = text_of(o, "text_utf8_hex", "text", &la);
	char	   *b = text_of(o, "text_pair_utf8_hex", "text_pair", &lb);
	int32_t    *ids;
	cb_error	err;
	const cb_json_value *tr = cb_json_get(o, "truncated_max_length_16");
	static const char *const kNames[3] = {"longest_first", "only_first", "only_second"};
	static const cb_truncation kStrat[3] = {CB_TRUNCATE_LONGEST_FIRST, CB_TRUNCATE_ONLY_FIRST,
	CB_TRUNCATE_ONLY_SECOND};

	if (cb_tokenizer_encode_pair(&g_tok, g_ws, a, la, b, lb, true, CB_TRUNCATE_LONGEST_FIRST, 0,
								 &ids, &n, &err) != CB_OK)
		ids = NULL;
	check_ids("pair input_ids", ids, n, cb_json_get(o, "input_ids"));
	if (ids != NULL)
	{
		char	   *dec;
		size_t		dl;

		if (cb_tokenizer_decode(&g_tok, ids, n, false, true, &dec, &dl, &err) != CB_OK)
			dec = NULL;
		check_text("pair decode_keep_special", dec, dl, cb_json_get(o, "decode_keep_special"));
		cb_free(dec);
	}
	cb_free(ids);
	for (int k = 0; k < 3 && tr != NULL; k++)
	{
		if (cb_tokenizer_encode_pair(&g_tok, g_ws, a, la, b, lb, true, kStrat[k], 16, &ids, &n, &err) != CB_OK)
			ids = NULL;
		check_ids(kNames[k], ids, n, cb_json_get(tr, kNames[k]));
		cb_free(ids);
	}
	CHECK(tr != NULL);
	free(a);
	free(b);
}

static void
truncation_line(const cb_json_value *o)
{
	size_t		len,
				n;
	char	   *text = text_of(o, "text_utf8_hex", "text", &len);
	int32_t    *ids;
	const int32_t *view;
	bool		truncated;
	cb_error	err;
	int32_t		max_length = (int32_t) cb_json_get(o, "max_length")->integer;

	if (cb_tokenizer_encode(&g_tok, NULL, text, len, true, max_length, &ids, &n, &err) != CB_OK)
		ids = NULL;
	check_ids("truncated input_ids", ids, n, cb_json_get(o, "input_ids"));
	cb_free(ids);
	if (cb_tokenizer_encode(&g_tok, g_ws, text, len, true, 0, &ids, &n, &err) != CB_OK)
		ids = NULL;
	check_ids("input_ids_full", ids, n, cb_json_get(o, "input_ids_full"));
	cb_free(ids);
	/* the early stop of encode_ws: the same ids */
	if (cb_tokenizer_encode_ws(&g_tok, g_ws, text, len, true, max_length, &view, &n, &truncated, &err) != CB_OK)
		view = NULL;
	check_ids("encode_ws", view, n, cb_json_get(o, "input_ids"));
	free(text);
}

static void
test_golden(const char *dir)
{
	char		path[512];

	snprintf(path, sizeof(path), "%s/tokenization.jsonl", dir);
	CHECK_EQ_INT(for_each_jsonl(path, tokenization_line), 314);
	snprintf(path, sizeof(path), "%s/pairs.jsonl", dir);
	CHECK(for_each_jsonl(path, pairs_line) >= 10);
	snprintf(path, sizeof(path), "%s/truncation.jsonl", dir);
	CHECK(for_each_jsonl(path, truncation_line) >= 3);
}

static void
test_roberta_golden(void)
{
	g_family = "roberta";
	test_golden(ROBERTA_DIR);
}

/* ------------------------------------------------------------------------- */
/* Hand-made and hostile models */

static const char kMiniConfig[] = "{\"add_prefix_space\": false}";

/* A vocabulary with every byte, then `extra` ("\"tok\": id, ..."). */
static char *
mini_vocab(const char *extra, int first_extra_id)
{
	static const char hexd[] = "0123456789abcdef";
	size_t		cap = 65536 + strlen(extra);
	char	   *out = malloc(cap);
	size_t		n = 0;

	(void) first_extra_id;
	out[n++] = '{';
	for (int b = 0; b < 256; b++)
	{
		uint32_t	cp;

		if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
			cp = (uint32_t) b;
		else if (b <= 0x20)
			cp = 256 + (uint32_t) b;
		else if (b <= 0xA0)
			cp = 256 + 33 + (uint32_t) (b - 0x7F);
		else
			cp = 256 + 67;
		n += (size_t) sprintf(out + n, "%s\"\\u%c%c%c%c\": %d", b ? ", " : "",
							  hexd[(cp >> 12) & 15], hexd[(cp >> 8) & 15], hexd[(cp >> 4) & 15], hexd[cp & 15], b + 4);
	}
	n += (size_t) sprintf(out + n, ", \"<s>\": 0, \"<pad>\": 1, \"</s>\": 2, \"<unk>\": 3, \"<mask>\": 260%s%s}",
						  *extra ? ", " : "", extra);
	return out;
}

static cb_status
try_build(const char *vocab, const char *merges, const char *config, cb_error *err)
{
	void	   *img = NULL;
	size_t		len = 0;
	cb_status	st = cb_bbpe_build(vocab, strlen(vocab), merges, strlen(merges),
								   config, config ? strlen(config) : 0, NULL, 0, &img, &len, err);

	cb_free(img);
	return st;
}

static void
test_hostile(void)
{
	cb_error	err;
	char	   *v = mini_vocab("\"ab\": 261, \"abc\": 262", 261);
	char	   *dup = mini_vocab("\"ab\": 261, \"xy\": 261", 261);
	char	   *gap = mini_vocab("\"ab\": 16000000", 261);
	void	   *img = NULL;
	size_t		len = 0;

	/* a good one, and what it does */
	CHECK(cb_bbpe_build(v, strlen(v), "#version: 0.2\na b\nab c\n", 23, kMiniConfig, strlen(kMiniConfig),
						NULL, 0, &img, &len, &err) == CB_OK);
	if (img != NULL)
	{
		cb_tokenizer t;
		int32_t    *ids;
		size_t		n;

		CHECK(cb_tokenizer_open(img, len, &t, &err) == CB_OK);
		CHECK(cb_tokenizer_encode(&t, NULL, "abc ab<mask>", 12, false, 0, &ids, &n, &err) == CB_OK);
		/* "abc" -> abc; " ab" -> Ġ a b -> Ġ ab; <mask> */
		CHECK(n == 4 && ids[0] == 262 && ids[1] == 0x20 + 4 && ids[2] == 261 && ids[3] == 260);
		cb_free(ids);
		/* every truncation of the image fails cleanly */
		for (size_t cut = 0; cut < len; cut += 97)
			CHECK(cb_tokenizer_open(img, cut, &t, &err) != CB_OK);
		/* flipped bytes: open fails or the tokenizer still works */
		for (size_t i = 0; i < len; i += 13)
		{
			uint8_t    *m = cb_malloc(len);

			memcpy(m, img, len);
			m[i] ^= 0x5A;
			if (cb_tokenizer_open(m, len, &t, &err) == CB_OK &&
				cb_tokenizer_encode(&t, NULL, "abc ab<mask>\xff\xfe", 14, true, 0, &ids, &n, &err) == CB_OK)
				cb_free(ids);
			cb_free(m);
		}
		unit_passed++;
		cb_free(img);
	}

	/* add_prefix_space: " " + text (RobertaTokenizer.prepare_for_tokenization), also for a long word */
	if (cb_bbpe_build(v, strlen(v), "#version: 0.2\na b\nab c\n", 23, "{\"add_prefix_space\": true}", 26,
					  NULL, 0, &img, &len, &err) == CB_OK)
	{
		cb_tokenizer t;
		int32_t    *ids;
		size_t		n;
		char		long_word[301];
		bool		ok;

		CHECK(cb_tokenizer_open(img, len, &t, &err) == CB_OK);
		CHECK(cb_tokenizer_encode(&t, NULL, "abc", 3, false, 0, &ids, &n, &err) == CB_OK &&
			  n == 2 && ids[0] == 0x20 + 4 && ids[1] == 262);
		cb_free(ids);
		memset(long_word, 'x', 300);
		CHECK(cb_tokenizer_encode(&t, NULL, long_word, 300, false, 0, &ids, &n, &err) == CB_OK);
		ok = n == 301 && ids[0] == 0x20 + 4;
		for (size_t i = 1; ok && i < n; i++)
			ok = ids[i] == 'x' + 4;
		CHECK_MSG(ok, "add_prefix_space, a 300-byte word: %zu ids", n);
		cb_free(ids);
		cb_free(img);
	}
	else
		UNIT_FAIL("add_prefix_space: %s", err.message);

	/* malformed models: clear errors */
	CHECK(try_build("[1, 2]", "#\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK(try_build("{\"a\": 1.5}", "#\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK(try_build("{\"a\": -1}", "#\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK(try_build("{\"a\": \"1\"}", "#\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK(try_build("{\"a\": 1, \"a\": 2}", "#\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK(try_build("{\"\xff\": 1}", "#\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK(try_build("{\"a\": 1", "#\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK_MSG(try_build(dup, "#\n", NULL, &err) == CB_ERR_FORMAT && strstr(err.message, "two tokens"),
			  "duplicate id: %s", err.message);
	CHECK_MSG(try_build(gap, "#\n", NULL, &err) == CB_ERR_FORMAT, "sparse ids: %s", err.message);
	/* no byte tokens: not byte-level */
	CHECK(try_build("{\"<s>\": 0, \"</s>\": 1}", "#\n", NULL, &err) == CB_ERR_UNSUPPORTED);
	CHECK_MSG(try_build(v, "#version: 0.2\na b\nab c\na b\n", NULL, &err) == CB_OK, "%s", err.message);
	CHECK(try_build(v, "#version: 0.2\na q\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK_MSG(try_build(v, "#version: 0.2\nab zz\n", NULL, &err) == CB_ERR_FORMAT &&
			  strstr(err.message, "line 2"), "unknown token in merges: %s", err.message);
	CHECK_MSG(try_build(v, "#version: 0.2\nb c\n", NULL, &err) == CB_ERR_FORMAT &&
			  strstr(err.message, "makes"), "unknown merge result: %s", err.message);
	CHECK(try_build(v, "#version: 0.2\na b c\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK(try_build(v, "#version: 0.2\nab\n", NULL, &err) == CB_ERR_FORMAT);
	CHECK(try_build(v, "#version: 0.2\na\0b\n", NULL, &err) == CB_OK);	/* strlen stops at the NUL */
	{
		const char m[] = "#version: 0.2\na\0b\n";

		CHECK(cb_bbpe_build(v, strlen(v), m, sizeof(m) - 1, NULL, 0, NULL, 0, &img, &len, &err) == CB_ERR_FORMAT);
	}
	CHECK(try_build(v, "#version: 0.2\na b\n", "[1]", &err) == CB_ERR_FORMAT);
	CHECK(try_build(v, "#version: 0.2\na b\n",
					"{\"added_tokens_decoder\": {\"5\": {\"content\": \"zz\"}}}", &err) == CB_ERR_FORMAT);
	CHECK(try_build(v, "#version: 0.2\na b\n",
					"{\"added_tokens_decoder\": {\"x\": {\"content\": \"zz\"}}}", &err) == CB_ERR_FORMAT);
	free(v);
	free(dup);
	free(gap);
}

/* ------------------------------------------------------------------------- */
/* XLM-RoBERTa: SentencePiece unigram */

static void
test_xlmr(void)
{
	size_t		len;
	char	   *model = (char *) ut_read_file(XLMR_DIR "/sentencepiece.bpe.model", &len);
	cb_error	err;
	cb_status	st;

	cb_tok_workspace_destroy(g_ws);
	g_ws = NULL;
	cb_free(g_image);
	g_image = NULL;
	CHECK(model != NULL);
	if (model == NULL)
		return;
	st = cb_tokenizer_build_layout((const uint8_t *) model, len, CB_TOK_LAYOUT_XLMR, &g_image, &g_image_len, &err);
	CHECK_MSG(st == CB_OK, "build: %s", err.message);
	if (st == CB_OK)
		st = cb_tokenizer_open(g_image, g_image_len, &g_tok, &err);
	CHECK_MSG(st == CB_OK, "open: %s", err.message);
	free(model);
	if (st != CB_OK)
		return;
	/* meta.json: len(tokenizer) 8002, <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> 8001 */
	CHECK_EQ_INT(g_tok.kind, CB_TOK_KIND_SP_UNIGRAM);
	CHECK_EQ_INT(g_tok.vocab_size, 8002);
	CHECK_EQ_INT(g_tok.cls_id, 0);
	CHECK_EQ_INT(g_tok.pad_id, 1);
	CHECK_EQ_INT(g_tok.sep_id, 2);
	CHECK_EQ_INT(g_tok.unk_id, 3);
	CHECK_EQ_INT(g_tok.mask_id, 8001);
	CHECK(cb_tokenizer_is_special_id(&g_tok, 0) && cb_tokenizer_is_special_id(&g_tok, 3) &&
		  cb_tokenizer_is_special_id(&g_tok, 8001) && !cb_tokenizer_is_special_id(&g_tok, 4));
	g_ws = cb_tok_workspace_create();
	g_family = "xlmr";
	test_golden(XLMR_DIR);
	/*
	 * Ties between segmentations of equal score in float break as SentencePiece
	 * 0.1.97 breaks them (sums in double): pieces from Debian's
	 * python3-sentencepiece 0.1.97, the library the golden was made with
	 * (sp.encode(text, out_type=str)); found on bench/bench_tokenizer.sh's corpus.
	 */
	{
		static const struct
		{
			const char *text;
			const char *pieces[4];
		}			ties[] = {
			{"xxxxxxxxxx", {"\xe2\x96\x81x", "xxxxxx", "xxx", NULL}},
			{"XXXXXXXXXX", {"\xe2\x96\x81X", "XXX", "XXX", "XXX"}},
			{"/222", {"\xe2\x96\x81/", "22", "2", NULL}},
		};

		for (size_t k = 0; k < sizeof(ties) / sizeof(ties[0]); k++)
		{
			cb_token_list *l = NULL;
			size_t		n = 0;
			bool		ok;

			while (n < 4 && ties[k].pieces[n] != NULL)
				n++;
			ok = cb_tokenizer_tokenize(&g_tok, g_ws, ties[k].text, strlen(ties[k].text), &l, &err) == CB_OK &&
				l->count == n;
			for (size_t i = 0; ok && i < n; i++)
				ok = strcmp(l->piece[i], ties[k].pieces[i]) == 0;
			CHECK_MSG(ok, "unigram tie: %s", ties[k].text);
			cb_free(l);
		}
	}
	/* a small window: the text is normalized and segmented a piece at a time */
	{
		cb_tok_workspace *small = cb_tok_workspace_create();
		int32_t    *a,
				   *b;
		size_t		na,
					nb;
		const char	text[] = "Une phrase assez longue, avec des mots, des chiffres 12345 et des signes !?";

		cb_tok_workspace_set_window(small, 3);
		CHECK(cb_tokenizer_encode(&g_tok, small, text, sizeof(text) - 1, true, 0, &a, &na, &err) == CB_OK);
		CHECK(cb_tokenizer_encode(&g_tok, NULL, text, sizeof(text) - 1, true, 0, &b, &nb, &err) == CB_OK);
		CHECK(na == nb && memcmp(a, b, na * sizeof(int32_t)) == 0);
		cb_free(a);
		cb_free(b);
		cb_tok_workspace_destroy(small);
	}
}

/* A NaN score is refused; truncated and corrupted unigram models fail cleanly or work. */
static void
test_unigram_hostile(void)
{
	size_t		len;
	uint8_t    *model = (uint8_t *) ut_read_file(XLMR_DIR "/sentencepiece.bpe.model", &len);
	uint8_t    *m;
	void	   *img;
	size_t		img_len;
	cb_error	err;
	bool		found = false;

	CHECK(model != NULL);
	if (model == NULL)
		return;
	m = malloc(len);
	/* a NORMAL piece's score: tag 0x15 (field 2, fixed32), then the next piece (0x0A) */
	for (size_t p = 0; p + 6 < len && !found; p++)
	{
		float		f;

		memcpy(&f, model + p + 1, 4);
		if (model[p] == 0x15 && model[p + 5] == 0x0A && f < -0.01f && f > -100)
		{
			const uint32_t nan_bits = 0x7FC00000u;

			memcpy(m, model, len);
			memcpy(m + p + 1, &nan_bits, 4);
			found = true;
			CHECK_MSG(cb_tokenizer_build_layout(m, len, CB_TOK_LAYOUT_XLMR, &img, &img_len, &err) == CB_ERR_FORMAT &&
					  strstr(err.message, "NaN") != NULL, "NaN score: %s", err.message);
		}
	}
	CHECK(found);
	for (size_t cut = 0; cut < len; cut += 4099)
	{
		if (cb_tokenizer_build_layout(model, cut, CB_TOK_LAYOUT_XLMR, &img, &img_len, &err) == CB_OK)
			cb_free(img);
	}
	for (size_t i = 0; i < len; i += 1021)
	{
		cb_tokenizer t;
		int32_t    *ids;
		size_t		n;

		memcpy(m, model, len);
		m[i] ^= 0xA5;
		if (cb_tokenizer_build_layout(m, len, CB_TOK_LAYOUT_XLMR, &img, &img_len, &err) == CB_OK)
		{
			if (cb_tokenizer_open(img, img_len, &t, &err) == CB_OK &&
				cb_tokenizer_encode(&t, NULL, "Bonjour <mask> \xff\xfe 12", 20, true, 0, &ids, &n, &err) == CB_OK)
				cb_free(ids);
			cb_free(img);
		}
	}
	unit_passed++;
	free(m);
	free(model);
}

/*
 * Model directories: the kind comes from the files (tokenizer_dir.h); each
 * model's cases.json inputs tokenize (truncation=True, max_length=128) to
 * its input_ids.
 */
static void
test_model_dirs(void)
{
	static const struct
	{
		const char *dir;
		cb_tok_kind kind;
		int32_t		mask_id;
	}			dirs[] = {
		{"build/golden/roberta/roberta_cls", CB_TOK_KIND_BYTE_BPE, 50261},
		{"build/golden/roberta/roberta_mlm", CB_TOK_KIND_BYTE_BPE, 50261},
		{"build/golden/xlmr/xlmr_cls", CB_TOK_KIND_SP_UNIGRAM, 8001},
		{"build/golden/xlmr/xlmr_mlm", CB_TOK_KIND_SP_UNIGRAM, 8001},
		{ROBERTA_DIR, CB_TOK_KIND_BYTE_BPE, 50261},
		{XLMR_DIR, CB_TOK_KIND_SP_UNIGRAM, 8001},
		{"build/golden/models/cls3", CB_TOK_KIND_SP_BPE, 8004},
	};

	for (size_t k = 0; k < sizeof(dirs) / sizeof(dirs[0]); k++)
	{
		void	   *img;
		size_t		img_len;
		const char *file;
		cb_error	err;
		cb_tokenizer t;
		char		path[512];
		size_t		len;
		char	   *text;
		cb_json_doc *doc = NULL;

		if (cb_tokenizer_build_dir(dirs[k].dir, NULL, &img, &img_len, &file, &err) != CB_OK)
		{
			UNIT_FAIL("%s: %s", dirs[k].dir, err.message);
			continue;
		}
		CHECK(cb_tokenizer_open(img, img_len, &t, &err) == CB_OK);
		CHECK_MSG(t.kind == dirs[k].kind && t.mask_id == dirs[k].mask_id, "%s: kind %d, mask %d", dirs[k].dir,
				  (int) t.kind, t.mask_id);
		snprintf(path, sizeof(path), "%s/expected/cases.json", dirs[k].dir);
		text = (char *) ut_read_file(path, &len);
		if (text != NULL && cb_json_parse(text, len, path, NULL, &doc, &err) == CB_OK)
		{
			const cb_json_value *cases = cb_json_get(cb_json_root(doc), "cases");

			g_family = dirs[k].dir;
			for (size_t i = 0; cases != NULL && i < cases->count; i++)
			{
				const cb_json_value *c = &cases->items[i];
				const cb_json_value *tx = cb_json_get(c, "text");
				int32_t    *ids;
				size_t		n;

				g_line = (long) i;
				if (tx == NULL || tx->type != CB_JSON_STRING)
					continue;
				if (cb_tokenizer_encode(&t, NULL, tx->string, tx->string_len, true, 128, &ids, &n, &err) != CB_OK)
					ids = NULL;
				check_ids("cases.json input_ids", ids, n, cb_json_get(c, "input_ids"));
				cb_free(ids);
			}
			CHECK(cases != NULL && cases->count == 25);
			cb_json_free(doc);
		}
		free(text);
		cb_free(img);
	}
	/* a tokenizer class of another family is refused by name */
	{
		void	   *img;
		size_t		img_len;
		cb_error	err;
		cb_model_config *mc = NULL;
		static const char bert[] = "{\"architectures\": [\"RobertaForMaskedLM\"], \"model_type\": \"bert\"}";
		static const char roberta[] = "{\"architectures\": [\"XLMRobertaForSequenceClassification\"], "
			"\"model_type\": \"xlm-roberta\", \"vocab_size\": 8002}";

		char		tmp[] = "/tmp/cb_family_XXXXXX";
		char		path[600];

		CHECK(cb_tokenizer_build_dir("build/golden/no such dir", NULL, &img, &img_len, NULL, &err) == CB_ERR_IO);
		if (mkdtemp(tmp) != NULL)
		{
			FILE	   *f;

			snprintf(path, sizeof(path), "%s/tokenizer_config.json", tmp);
			f = fopen(path, "w");
			fputs("{\"tokenizer_class\": \"BertTokenizer\"}", f);
			fclose(f);
			CHECK_MSG(cb_tokenizer_build_dir(tmp, NULL, &img, &img_len, NULL, &err) == CB_ERR_UNSUPPORTED &&
					  strstr(err.message, "BertTokenizer"), "BertTokenizer: %s", err.message);
			remove(path);
			rmdir(tmp);
		}
		CHECK_MSG(cb_config_parse(bert, sizeof(bert) - 1, "config.json", &mc, &err) == CB_ERR_UNSUPPORTED &&
				  strstr(err.message, "model_type"), "model_type bert: %s", err.message);
		CHECK(cb_config_parse(roberta, sizeof(roberta) - 1, "config.json", &mc, &err) == CB_OK &&
			  mc->config.architecture == CB_ARCH_SEQUENCE_CLASSIFICATION);
		cb_config_free(mc);
	}
}

int
main(void)
{
	RUN(test_roberta_build);
	RUN(test_roberta_image_validation);
	RUN(test_roberta_golden);
	RUN(test_hostile);
	RUN(test_xlmr);
	RUN(test_unigram_hostile);
	RUN(test_model_dirs);
	cb_tok_workspace_destroy(g_ws);
	cb_free(g_image);
	return unit_finish("test_tokenizer_family");
}
