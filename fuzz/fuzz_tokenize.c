/*
 * fuzz_tokenize.c — arbitrary bytes as text for the golden tokenizer.
 *
 * The tokenizer is built once from the golden model, found in this order:
 *   1. the environment variable CB_FUZZ_TOKENIZER_MODEL (a path);
 *   2. <directory of this binary>/../../test/golden/tokenizer_fr8k/sentencepiece.bpe.model
 *      (the binary is build/fuzz/tokenize);
 *   3. test/golden/tokenizer_fr8k/sentencepiece.bpe.model and
 *      ../test/golden/tokenizer_fr8k/sentencepiece.bpe.model from the
 *      current directory (repository root or fuzz/).
 * Each input is encoded (with and without special tokens, truncated and
 * not), tokenized, split in two for a pair encoding, and the ids decoded in
 * every mode; the bytes are also decoded as a list of ids.  Encoding a
 * window of 1 or 5 bytes at a time, counting, and truncating (which stops
 * early) must agree with the full encoding; every piece of tokenize() is
 * UTF-8 (NUL bytes of the input stay).
 * Seeds: fuzz/corpus/tokenize/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_io.h"
#include "tokenizer.h"
#include "utf8.h"

#define MODEL_REL "test/golden/tokenizer_fr8k/sentencepiece.bpe.model"

static cb_tokenizer g_tok;
static void *g_image;
static cb_tok_workspace *g_ws;
static cb_tok_workspace *g_ws1;
static cb_tok_workspace *g_ws5;

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the model's bytes (the core's whole-file reader), NULL if path cannot be read */
static uint8_t *
slurp(const char *path, size_t *len)
{
	char	   *buf = NULL;
	cb_error	err;

	if (cb_file_read_all(path, NULL, (size_t) 64 << 20, &buf, len, &err) != CB_OK)
		return NULL;
	return (uint8_t *) buf;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char		path[4096];
	const char *env = getenv("CB_FUZZ_TOKENIZER_MODEL");
	uint8_t    *model = NULL;
	size_t		len = 0,
				image_len;
	cb_error	err;

	(void) argc;
	if (env != NULL)
		model = slurp(env, &len);
	if (model == NULL && argv != NULL && *argv != NULL && (*argv)[0] != NULL)
	{
		const char *slash = strrchr((*argv)[0], '/');
		int			dir_len = slash ? (int) (slash - (*argv)[0]) : 1;

		snprintf(path, sizeof(path), "%.*s/../../" MODEL_REL, dir_len, slash ? (*argv)[0] : ".");
		model = slurp(path, &len);
	}
	if (model == NULL)
		model = slurp(MODEL_REL, &len);
	if (model == NULL)
		model = slurp("../" MODEL_REL, &len);
	if (model == NULL)
	{
		fprintf(stderr, "fuzz_tokenize: cannot find %s (set CB_FUZZ_TOKENIZER_MODEL)\n", MODEL_REL);
		exit(1);
	}
	if (cb_tokenizer_build(model, len, &g_image, &image_len, &err) != CB_OK ||
		cb_tokenizer_open(g_image, image_len, &g_tok, &err) != CB_OK)
	{
		fprintf(stderr, "fuzz_tokenize: %s\n", err.message);
		exit(1);
	}
	cb_free(model);
	g_ws = cb_tok_workspace_create();
	g_ws1 = cb_tok_workspace_create();
	g_ws5 = cb_tok_workspace_create();
	if (g_ws == NULL || g_ws1 == NULL || g_ws5 == NULL)
		exit(1);
	cb_tok_workspace_set_window(g_ws1, 1);
	cb_tok_workspace_set_window(g_ws5, 5);
	return 0;
}

static void
decode_all_modes(const int32_t *ids, size_t n)
{
	cb_error	err;

	for (int mode = 0; mode < 4; mode++)
	{
		char	   *text = NULL;
		size_t		len = 0;

		if (cb_tokenizer_decode(&g_tok, ids, n, mode & 1, mode & 2, &text, &len, &err) != CB_OK)
			abort();
		if (text[len] != '\0')
			abort();
		cb_free(text);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	cb_error	err;
	int32_t    *ids = NULL;
	size_t		n = 0;
	cb_token_list *list = NULL;

	/* encode: full, without specials, truncated */
	if (cb_tokenizer_encode(&g_tok, g_ws, text, size, true, 0, &ids, &n, &err) != CB_OK)
		abort();
	if (n < 2 || ids[0] != g_tok.cls_id || ids[n - 1] != g_tok.sep_id)
		abort();
	for (size_t i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= g_tok.vocab_size || cb_tokenizer_id_to_piece(&g_tok, ids[i], NULL) == NULL)
			abort();
	decode_all_modes(ids, n);

	/* tokenize agrees with encode on the count; its pieces are UTF-8 */
	if (cb_tokenizer_tokenize(&g_tok, g_ws, text, size, &list, &err) != CB_OK)
		abort();
	if (list->count != n - 2)
		abort();
	for (size_t i = 0; i < list->count; i++)
	{
		size_t		pos = 0,
					bad;

		if (cb_tokenizer_piece_to_id(&g_tok, list->piece[i], list->length[i]) != ids[i + 1])
			abort();
		while (!cb_utf8_is_text((const uint8_t *) list->piece[i] + pos, list->length[i] - pos, &bad))
		{
			if (list->piece[i][pos + bad] != '\0')
				abort();
			pos += bad + 1;
		}
	}
	cb_free(list);

	/* a window at a time, counting, stopping early: the same ids */
	{
		const int32_t *view;
		size_t		m,
					count;
		bool		cut;

		if (cb_tokenizer_encode_ws(&g_tok, g_ws1, text, size, true, 0, &view, &m, NULL, &err) != CB_OK ||
			m != n || memcmp(view, ids, n * sizeof(int32_t)) != 0)
			abort();
		if (cb_tokenizer_encode_ws(&g_tok, g_ws5, text, size, true, 0, &view, &m, NULL, &err) != CB_OK ||
			m != n || memcmp(view, ids, n * sizeof(int32_t)) != 0)
			abort();
		if (cb_tokenizer_count(&g_tok, g_ws5, text, size, true, &count, &err) != CB_OK || count != n)
			abort();
		for (int32_t max_length = 1; max_length <= 9; max_length += 4)
		{
			size_t		keep = n - 2;

			if (n > (size_t) max_length && n - 2 > n - (size_t) max_length)
				keep = (size_t) max_length - 2;
			if (cb_tokenizer_encode_ws(&g_tok, max_length == 5 ? g_ws1 : g_ws, text, size, true, max_length,
									   &view, &m, &cut, &err) != CB_OK ||
				m != keep + 2 || cut != (keep < n - 2) ||
				memcmp(view, ids, (keep + 1) * sizeof(int32_t)) != 0 || view[m - 1] != g_tok.sep_id)
				abort();
		}
	}
	cb_free(ids);

	if (cb_tokenizer_encode(&g_tok, NULL, text, size, false, 0, &ids, &n, &err) != CB_OK)
		abort();
	cb_free(ids);
	if (cb_tokenizer_encode(&g_tok, g_ws, text, size, true, 8, &ids, &n, &err) != CB_OK)
		abort();
	cb_free(ids);

	/* pair, split in the middle, every strategy */
	for (int s = 0; s < 3; s++)
	{
		if (cb_tokenizer_encode_pair(&g_tok, g_ws, text, size / 2, text + size / 2, size - size / 2,
									 true, (cb_truncation) s, 10, &ids, &n, &err) != CB_OK)
			abort();
		cb_free(ids);
	}

	/* the bytes as ids (in range) */
	{
		size_t		m = size / 2;
		int32_t    *raw = malloc((m ? m : 1) * sizeof(int32_t));

		for (size_t i = 0; i < m; i++)
			raw[i] = (int32_t) ((data[2 * i] | (data[2 * i + 1] << 8)) % (unsigned) g_tok.vocab_size);
		decode_all_modes(raw, m);
		free(raw);
	}
	return 0;
}
