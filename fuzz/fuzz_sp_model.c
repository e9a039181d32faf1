/*
 * fuzz_sp_model.c — arbitrary bytes as a sentencepiece.bpe.model.
 *
 * cb_tokenizer_build must either fail with a message or produce an image
 * that opens, encodes, tokenizes and decodes a fixed text, and whose every
 * piece, decoded text and token is UTF-8 without NUL (what a text datum may
 * hold).
 * Seeds: fuzz/corpus/sp_model/ (a small hand-made model) and build/fuzz/seeds/sp_model/
 * (fuzz/seeds.txt: the golden 8000-piece model, another small one).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "utf8.h"

static const char kText[] = "Le <mask> est noir. Bonjour, ça va ? \xef\xbc\xa1\xe2\x91\xa0 \xf0\x9f\x98\x80 \xff <s>x</s>";

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	void	   *image = NULL;
	size_t		image_len = 0;
	cb_error	err;
	cb_tokenizer tok;

	if (cb_tokenizer_build(data, size, &image, &image_len, &err) != CB_OK)
	{
		if (err.message[0] == '\0')
			abort();			/* every error names its problem */
		return 0;
	}
	if (cb_tokenizer_open(image, image_len, &tok, &err) != CB_OK)
		abort();				/* build checks that its image opens */
	{
		int32_t    *ids = NULL;
		size_t		n = 0;
		char	   *text = NULL;
		cb_token_list *list = NULL;

		if (cb_tokenizer_encode(&tok, NULL, kText, sizeof(kText) - 1, true, 0, &ids, &n, &err) != CB_OK)
			abort();
		size_t		len = 0;

		if (cb_tokenizer_decode(&tok, ids, n, false, true, &text, &len, &err) != CB_OK ||
			!cb_utf8_is_text((const uint8_t *) text, len, NULL))
			abort();
		cb_free(text);
		text = NULL;
		if (cb_tokenizer_decode(&tok, ids, n, true, false, &text, &len, &err) != CB_OK ||
			!cb_utf8_is_text((const uint8_t *) text, len, NULL))
			abort();
		cb_free(text);
		for (size_t i = 0; i < n; i++)
			if (cb_tokenizer_id_to_piece(&tok, ids[i], NULL) == NULL)
				abort();
		cb_free(ids);
		for (int32_t id = 0; id < tok.vocab_size; id++)
		{
			const char *piece = cb_tokenizer_id_to_piece(&tok, id, &len);

			if (piece == NULL || !cb_utf8_is_text((const uint8_t *) piece, len, NULL))
				abort();
		}
		if (cb_tokenizer_tokenize(&tok, NULL, kText, sizeof(kText) - 1, &list, &err) != CB_OK)
			abort();
		for (size_t i = 0; i < list->count; i++)
			if (!cb_utf8_is_text((const uint8_t *) list->piece[i], list->length[i], NULL))
				abort();
		cb_free(list);
	}
	cb_free(image);
	return 0;
}
