/*
 * fuzz_bytebpe.c — arbitrary bytes as a RoBERTa tokenizer: vocab.json,
 * merges.txt and tokenizer_config.json, cut at the first two "\x00\x01"
 * (a missing part: merges.txt "#version: 0.2\n", no tokenizer_config.json).
 *
 * cb_bbpe_build must either fail with a message or produce an image that
 * opens, encodes, tokenizes and decodes a fixed text (tokens valid UTF-8
 * without NUL; every id has a token); truncated copies of the image must
 * fail to open or work.
 * Seeds: fuzz/corpus/bytebpe/ (every byte, a few merges, added tokens).
 */
#include <stdlib.h>
#include <string.h>

#include "bytebpe.h"
#include "tokenizer.h"
#include "utf8.h"

static const char kText[] = "Le <mask> est noir. Hello world, it's 2024!!  \n\t \xef\xbc\xa1\xe2\x91\xa0 \xf0\x9f\x98\x80 "
"\xff <s>x</s>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *
cut(const uint8_t *p, const uint8_t *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == 0 && p[1] == 1)
			return p;
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size;
	const uint8_t *c1 = cut(data, end);
	const uint8_t *c2 = c1 ? cut(c1 + 2, end) : NULL;
	static const char kMerges[] = "#version: 0.2\n";
	const char *vocab = (const char *) data;
	size_t		vocab_len = c1 ? (size_t) (c1 - data) : size;
	const char *merges = c1 ? (const char *) c1 + 2 : kMerges;
	size_t		merges_len = c1 ? (size_t) ((c2 ? c2 : end) - (c1 + 2)) : sizeof(kMerges) - 1;
	const char *config = c2 ? (const char *) c2 + 2 : NULL;
	size_t		config_len = c2 ? (size_t) (end - (c2 + 2)) : 0;
	void	   *image = NULL;
	size_t		image_len = 0;
	cb_error	err;
	cb_tokenizer tok;

	if (cb_bbpe_build(vocab, vocab_len, merges, merges_len, config, config_len, NULL, 0,
					  &image, &image_len, &err) != CB_OK)
	{
		if (err.message[0] == '\0')
			abort();			/* every error names its problem */
		return 0;
	}
	if (cb_tokenizer_open(image, image_len, &tok, &err) != CB_OK || tok.kind != CB_TOK_KIND_BYTE_BPE)
		abort();				/* build checks that its image opens */
	{
		int32_t    *ids = NULL;
		size_t		n = 0,
					len = 0;
		char	   *text = NULL;
		cb_token_list *list = NULL;

		if (cb_tokenizer_encode(&tok, NULL, kText, sizeof(kText) - 1, true, 0, &ids, &n, &err) != CB_OK)
			abort();
		for (size_t i = 0; i < n; i++)
			if (cb_tokenizer_id_to_piece(&tok, ids[i], NULL) == NULL)
				abort();
		if (cb_tokenizer_decode(&tok, ids, n, false, true, &text, &len, &err) != CB_OK || text[len] != '\0')
			abort();
		cb_free(text);
		if (cb_tokenizer_decode(&tok, ids, n, true, false, &text, &len, &err) != CB_OK)
			abort();
		cb_free(text);
		cb_free(ids);
		if (cb_tokenizer_encode(&tok, NULL, kText, sizeof(kText) - 1, true, 8, &ids, &n, &err) != CB_OK || n > 8)
			abort();
		cb_free(ids);
		if (cb_tokenizer_tokenize(&tok, NULL, kText, sizeof(kText) - 1, &list, &err) != CB_OK)
			abort();
		for (size_t i = 0; i < list->count; i++)
			if (!cb_utf8_is_text((const uint8_t *) list->piece[i], list->length[i], NULL))
				abort();
		cb_free(list);
		/* a truncated image never opens (its length is in the header) */
		if (image_len > 64 && cb_tokenizer_open(image, image_len - 8, &tok, &err) == CB_OK)
			abort();
	}
	cb_free(image);
	return 0;
}
