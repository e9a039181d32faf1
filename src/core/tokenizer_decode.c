/*
 * tokenizer_decode.c — ids back to text with the SentencePiece tokenizer
 * (cb_tokenizer_decode, see tokenizer.h): SentencePiece's Decode, CamemBERT's and
 * XLM-RoBERTa's convert_tokens_to_string, transformers' clean_up_tokenization.
 */
#include "tokenizer.h"

#include <string.h>

#include "sp_model.h"
#include "tokenizer_internal.h"
#include "utf8.h"


/* ------------------------------------------------------------------------- */
/* Decoding */

static inline cb_status
buf_append(cb_norm_buf *b, const char *s, size_t len, cb_error *err)
{
	cb_status	st;

	if (len == 0)
		return CB_OK;
	if (b->len + len + 1 > b->cap && (st = cb_norm_buf_reserve(b, len + 1, err)) != CB_OK)
		return st;
	memcpy(b->data + b->len, s, len);
	b->len += len;
	return CB_OK;
}

/* Is the token of this id one of all_special_tokens (by its string)? */
static bool
id_is_special_string(const cb_tokenizer *tok, int32_t id)
{
	if (added_index_of_id(tok, id) >= 0)
		return true;
	return (tok->vocab.pieces[id - tok->fairseq_offset].flags & CB_BPE_SPECIAL_STRING) != 0;
}

/*
 * SentencePiece's Decode(pieces) of ids[begin..end) (those that are kept and
 * not special strings), appended to out.
 */
static cb_status
sp_decode_range(const cb_tokenizer *tok, const int32_t *ids, size_t begin, size_t end,
				bool skip_special, cb_norm_buf *out, cb_error *err)
{
	const cb_normalizer *nz = &tok->normalizer;
	size_t		text_start = out->len;
	bool		is_bos_ws = true;
	bool		bos_ws_seen = false;
	cb_status	st;

	for (size_t i = begin; i < end; i++)
	{
		int32_t		id = ids[i];
		const cb_bpe_piece *p;
		const char *s;
		size_t		len;
		bool		has_bos_ws = false;

		if ((i & 0xFFFF) == 0xFFFF)
			cb_check_interrupts();
		if (skip_special && cb_tokenizer_is_special_id(tok, id))
			continue;
		p = &tok->vocab.pieces[id - tok->fairseq_offset];
		if (bos_ws_seen || out->len > text_start)
			is_bos_ws = false;
		if (p->type == CB_SP_CONTROL)
		{
			bos_ws_seen = false;
			continue;
		}
		if (p->type == CB_SP_UNKNOWN)
		{
			if ((st = buf_append(out, tok->unk_surface, tok->unk_surface_len, err)) != CB_OK)
				return st;
			bos_ws_seen = false;
			continue;
		}
		s = tok->vocab.strings + p->str_off;
		len = p->str_len;
		if (is_bos_ws && (nz->add_dummy_prefix || nz->remove_extra_whitespaces))
		{
			if (len >= 3 && memcmp(s, kSpaceSymbol, 3) == 0)
			{
				s += 3;
				len -= 3;
				has_bos_ws = true;
			}
			if (nz->remove_extra_whitespaces)
				has_bos_ws = false;
		}
		if ((st = cb_norm_buf_reserve(out, len + 1, err)) != CB_OK)
			return st;
		for (size_t k = 0; k < len;)
		{
			if (k + 3 <= len && memcmp(s + k, kSpaceSymbol, 3) == 0)
			{
				out->data[out->len++] = ' ';
				k += 3;
			}
			else
				out->data[out->len++] = s[k++];
		}
		bos_ws_seen = has_bos_ws;
	}
	return CB_OK;
}

/* transformers' clean_up_tokenization: str.replace, pattern after pattern. */
static size_t
clean_up_tokenization(char *s, size_t len)
{
	static const struct
	{
		const char *from;
		size_t		from_len;
		const char *to;
		size_t		to_len;
	}			rules[] = {
		{" .", 2, ".", 1},
		{" ?", 2, "?", 1},
		{" !", 2, "!", 1},
		{" ,", 2, ",", 1},
		{" ' ", 3, "'", 1},
		{" n't", 4, "n't", 3},
		{" 'm", 3, "'m", 2},
		{" 's", 3, "'s", 2},
		{" 've", 4, "'ve", 3},
		{" 're", 4, "'re", 3},
	};

	for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++)
	{
		size_t		rd = 0,
					wr = 0,
					next_check = 1 << 20;

		while (rd < len)
		{
			if (rd >= next_check)
			{
				next_check = rd + (1 << 20);
				cb_check_interrupts();
			}
			if (s[rd] == ' ' && rd + rules[r].from_len <= len &&
				memcmp(s + rd, rules[r].from, rules[r].from_len) == 0)
			{
				memmove(s + wr, rules[r].to, rules[r].to_len);
				wr += rules[r].to_len;
				rd += rules[r].from_len;
			}
			else
				s[wr++] = s[rd++];
		}
		len = wr;
	}
	return len;
}

cb_status
cb_tokenizer_decode(const cb_tokenizer *tok, const int32_t *ids, size_t n_ids,
					bool skip_special_tokens, bool clean_up_tokenization_spaces,
					char **text, size_t *text_len, cb_error *err)
{
	cb_norm_buf out = {0};
	cb_status	st;
	size_t		seg_begin = 0;
	bool		prev_special = false;
	size_t		lead,
				keep;

	if (tok == NULL || text == NULL || (ids == NULL && n_ids > 0))
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_decode: NULL argument");
	*text = NULL;
	if (text_len)
		*text_len = 0;
	if (tok->kind == CB_TOK_KIND_BYTE_BPE)
	{
		/* RobertaTokenizer: the tokens' bytes, no strip; then the same clean-up */
		st = cb_bbpe_decode(&tok->bbpe, ids, n_ids, skip_special_tokens, &out.data, &out.len, err);
		if (st != CB_OK)
			return st;
		if (clean_up_tokenization_spaces)
			out.len = clean_up_tokenization(out.data, out.len);
		out.data[out.len] = '\0';
		*text = out.data;
		if (text_len)
			*text_len = out.len;
		return CB_OK;
	}
	for (size_t i = 0; i < n_ids; i++)
	{
		if (ids[i] < 0 || ids[i] >= tok->vocab_size ||
			(added_index_of_id(tok, ids[i]) < 0 &&
			 (size_t) (ids[i] - tok->fairseq_offset) >= tok->vocab.n_pieces))
			return cb_set_error(err, CB_ERR_INVALID, "tokenizer: id %d at position %zu is out of range 0..%d",
								ids[i], i, tok->vocab_size - 1);
	}
	if ((st = cb_norm_buf_reserve(&out, 64, err)) != CB_OK)
		return st;

	if (tok->layout == CB_TOK_LAYOUT_XLMR)
	{
		/* XLMRobertaTokenizer.convert_tokens_to_string: "".join(tokens).replace("▁", " ").strip() */
		for (size_t i = 0; i < n_ids; i++)
		{
			size_t		plen;
			const char *piece;

			if ((i & 0xFFFF) == 0xFFFF)
				cb_check_interrupts();
			if (skip_special_tokens && cb_tokenizer_is_special_id(tok, ids[i]))
				continue;
			piece = cb_tokenizer_id_to_piece(tok, ids[i], &plen);
			if ((st = cb_norm_buf_reserve(&out, plen + 1, err)) != CB_OK)
				goto fail;
			for (size_t k = 0; k < plen;)
			{
				if (k + 3 <= plen && memcmp(piece + k, kSpaceSymbol, 3) == 0)
				{
					out.data[out.len++] = ' ';
					k += 3;
				}
				else
					out.data[out.len++] = piece[k++];
			}
		}
	}
	else
	{
	/* CamembertTokenizer.convert_tokens_to_string */
	for (size_t i = 0; i < n_ids; i++)
	{
		int32_t		id = ids[i];
		size_t		plen;
		const char *piece;

		if ((i & 0xFFFF) == 0xFFFF)
			cb_check_interrupts();
		if (skip_special_tokens && cb_tokenizer_is_special_id(tok, id))
			continue;
		if (!id_is_special_string(tok, id))
		{
			prev_special = false;
			continue;
		}
		if (!prev_special && (st = buf_append(&out, " ", 1, err)) != CB_OK)
			goto fail;
		if ((st = sp_decode_range(tok, ids, seg_begin, i, skip_special_tokens, &out, err)) != CB_OK)
			goto fail;
		piece = cb_tokenizer_id_to_piece(tok, id, &plen);
		if ((st = buf_append(&out, piece, plen, err)) != CB_OK)
			goto fail;
		prev_special = true;
		seg_begin = i + 1;
	}
	if ((st = sp_decode_range(tok, ids, seg_begin, n_ids, skip_special_tokens, &out, err)) != CB_OK)
		goto fail;
	}

	/* .strip() */
	keep = cb_py_rstrip_len(out.data, out.len);
	lead = cb_py_lstrip_len(out.data, keep);
	if (lead > 0)
		memmove(out.data, out.data + lead, keep - lead);
	out.len = keep - lead;

	if (clean_up_tokenization_spaces)
		out.len = clean_up_tokenization(out.data, out.len);
	out.data[out.len] = '\0';
	*text = out.data;
	if (text_len)
		*text_len = out.len;
	return CB_OK;

fail:
	cb_norm_buf_free(&out);
	return st;
}
