/*
 * tokenizer_internal.h — what the files of the SentencePiece tokenizer share
 * (tokenizer_image.c, tokenizer.c, tokenizer_decode.c): CamemBERT's added
 * tokens and their ids, the "▁" symbol.  Not part of the API: tokenizer.h is.
 */
#ifndef CB_TOKENIZER_INTERNAL_H
#define CB_TOKENIZER_INTERNAL_H

#include <string.h>

#include "tokenizer.h"

/* ------------------------------------------------------------------------- */
/* CamemBERT's added tokens (transformers' CamembertTokenizer.__init__). */

typedef struct added_token
{
	const char *str;
	uint32_t	len;
} added_token;

enum
{
	ADDED_S_NOTUSED = 0,
	ADDED_PAD,
	ADDED_S_END_NOTUSED,
	ADDED_UNK,
	ADDED_UNK_NOTUSED,
	ADDED_CLS,
	ADDED_SEP,
	ADDED_MASK,
	N_ADDED
};

static const added_token kAdded[N_ADDED] = {
	{"<s>NOTUSED", 10},
	{"<pad>", 5},
	{"</s>NOTUSED", 11},
	{"<unk>", 5},
	{"<unk>NOTUSED", 12},
	{"<s>", 3},
	{"</s>", 4},
	{"<mask>", 6},
};

static inline int32_t
added_id(const cb_tokenizer *tok, int k)
{
	switch (k)
	{
		case ADDED_CLS:
			return tok->cls_id;
		case ADDED_SEP:
			return tok->sep_id;
		case ADDED_MASK:
			return tok->mask_id;
		default:
			return k;			/* 0 .. 4 */
	}
}

/*
 * XLMRobertaTokenizer's added tokens are CamemBERT's without the NOTUSED ones
 * (fairseq_tokens_to_ids <s> 0, <pad> 1, </s> 2, <unk> 3, and <mask>).
 */
#define ADDED_ALL ((1u << N_ADDED) - 1)
#define ADDED_XLMR ((1u << ADDED_PAD) | (1u << ADDED_UNK) | (1u << ADDED_CLS) | (1u << ADDED_SEP) | \
					(1u << ADDED_MASK))

static inline uint32_t
added_set(cb_tok_layout layout)
{
	return layout == CB_TOK_LAYOUT_XLMR ? ADDED_XLMR : ADDED_ALL;
}

/* Index of the added token equal to s, or -1. */
static inline int
added_exact(cb_tok_layout layout, const char *s, size_t len)
{
	uint32_t	set = added_set(layout);

	if (len < 3 || s[0] != '<')
		return -1;
	for (int k = 0; k < N_ADDED; k++)
		if ((set >> k) & 1 && kAdded[k].len == len && memcmp(kAdded[k].str, s, len) == 0)
			return k;
	return -1;
}

/* Index of the longest added token that prefixes s, or -1 (s[0] == '<'). */
static inline int
added_prefix(cb_tok_layout layout, const char *s, size_t avail)
{
	int			best = -1;
	uint32_t	best_len = 0;
	uint32_t	set = added_set(layout);

	for (int k = 0; k < N_ADDED; k++)
	{
		uint32_t	l = kAdded[k].len;

		if (!((set >> k) & 1))
			continue;

		if (l <= avail && l > best_len && memcmp(kAdded[k].str, s, l) == 0)
		{
			best = k;
			best_len = l;
		}
	}
	return best;
}

static inline int
added_index_of_id(const cb_tokenizer *tok, int32_t id)
{
	if (tok->layout == CB_TOK_LAYOUT_XLMR)
	{
		if (id == CB_TOK_ID_PAD)
			return ADDED_PAD;
		if (id == CB_TOK_ID_UNK)
			return ADDED_UNK;
	}
	else if (id >= 0 && id <= CB_TOK_ID_UNK_NOTUSED)
		return id;
	if (id == tok->cls_id)
		return ADDED_CLS;
	if (id == tok->sep_id)
		return ADDED_SEP;
	if (id == tok->mask_id)
		return ADDED_MASK;
	return -1;
}

/* SentencePiece's "▁" (U+2581), a space in pieces. */
static const char kSpaceSymbol[3] = {'\xE2', '\x96', '\x81'};

#endif							/* CB_TOKENIZER_INTERNAL_H */
