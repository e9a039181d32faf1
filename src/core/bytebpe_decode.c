/*
 * bytebpe_decode.c — ids back to text with the byte-level BPE (cb_bbpe_decode, see
 * bytebpe.h): the tokens' bytes (GPT-2's byte_decoder), UTF-8 with errors="replace".
 */
#include "bytebpe.h"

#include <stdlib.h>
#include <string.h>

#include "bytebpe_internal.h"
#include "utf8.h"

/* ------------------------------------------------------------------------- */
/* Decoding */

typedef struct dbuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} dbuf;

static cb_status
dbuf_reserve(dbuf *b, size_t extra, cb_error *err)
{
	size_t		need;

	if (!cb_add_size(b->len, extra, &need))
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: decoded text too large");
	if (need <= b->cap)
		return CB_OK;
	return cb_grow_array((void **) &b->data, &b->cap, need, 1, "tokenizer: decoded text", err);
}

/* bytes.decode("utf-8", errors="replace"): each maximal ill-formed subpart is one U+FFFD. */
static cb_status
utf8_replace(const uint8_t *s, size_t n, dbuf *out, cb_error *err)
{
	cb_status	st;

	if ((st = dbuf_reserve(out, 3 * n + 1, err)) != CB_OK)
		return st;
	for (size_t i = 0; i < n;)
	{
		uint8_t		c = s[i];
		size_t		need;
		uint8_t		lo = 0x80,
					hi = 0xBF;
		size_t		k;

		if (c < 0x80)
		{
			out->data[out->len++] = (char) c;
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			need = 1;
		else if (c >= 0xE0 && c <= 0xEF)
		{
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			need = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		}
		else
		{
			memcpy(out->data + out->len, "\xEF\xBF\xBD", 3);
			out->len += 3;
			i++;
			continue;
		}
		for (k = 1; k <= need; k++)
		{
			uint8_t		lo_k = k == 1 ? lo : 0x80,
						hi_k = k == 1 ? hi : 0xBF;

			if (i + k >= n || s[i + k] < lo_k || s[i + k] > hi_k)
				break;
		}
		if (k > need)
		{
			memcpy(out->data + out->len, s + i, need + 1);
			out->len += need + 1;
			i += need + 1;
		}
		else
		{
			memcpy(out->data + out->len, "\xEF\xBF\xBD", 3);
			out->len += 3;
			i += k;
		}
	}
	return CB_OK;
}

/* A token's string back to bytes (byte_decoder); a character it lacks stays as its UTF-8. */
static cb_status
token_bytes(const char *s, size_t len, dbuf *raw, cb_error *err)
{
	cb_status	st;

	if ((st = dbuf_reserve(raw, len, err)) != CB_OK)
		return st;
	for (size_t i = 0; i < len;)
	{
		size_t		l = 1;
		uint32_t	cp = (uint8_t) s[i] < 0x80 ? (uint8_t) s[i] :
			cb_utf8_decode_sp((const uint8_t *) s + i, len - i, &l);
		int			b = unicode_to_byte(cp);

		if (b >= 0)
			raw->data[raw->len++] = (char) b;
		else
		{
			memcpy(raw->data + raw->len, s + i, l);
			raw->len += l;
		}
		i += l;
	}
	return CB_OK;
}

/* Append one sub-text (" ".join(sub_texts)). */
static cb_status
add_sub(dbuf *out, size_t *n_sub, const char *s, size_t len, bool utf8_decode, cb_error *err)
{
	cb_status	st;

	if ((st = dbuf_reserve(out, len + 1, err)) != CB_OK)
		return st;
	if ((*n_sub)++ > 0)
		out->data[out->len++] = ' ';
	if (utf8_decode)
		return utf8_replace((const uint8_t *) s, len, out, err);
	memcpy(out->data + out->len, s, len);
	out->len += len;
	return CB_OK;
}

cb_status
cb_bbpe_decode(const cb_bbpe *bb, const int32_t *ids, size_t n_ids,
			   bool skip_special_tokens, char **text, size_t *text_len, cb_error *err)
{
	dbuf		out = {0},
				raw = {0};
	size_t		n_sub = 0;
	bool		have_raw = false;
	cb_status	st;

	if (bb == NULL || text == NULL || (ids == NULL && n_ids > 0))
		return cb_set_error(err, CB_ERR_INVALID, "cb_bbpe_decode: NULL argument");
	*text = NULL;
	for (size_t i = 0; i < n_ids; i++)
		if (cb_bbpe_id_to_token(bb, ids[i], NULL) == NULL)
			return cb_set_error(err, CB_ERR_INVALID, "tokenizer: id %d at position %zu is not in the vocabulary (0..%d)",
								ids[i], i, bb->id_limit - 1);
	if ((st = dbuf_reserve(&out, 1, err)) != CB_OK)
		goto fail;
	for (size_t i = 0; i < n_ids; i++)
	{
		const cb_bbpe_added *a = added_of_id(bb, ids[i]);
		size_t		len;
		const char *s;

		if ((i & 0xFFFF) == 0xFFFF)
			cb_check_interrupts();
		if (skip_special_tokens && a != NULL && (a->flags & CB_BBPE_SPECIAL))
			continue;
		s = cb_bbpe_id_to_token(bb, ids[i], &len);
		if (a != NULL && !(a->flags & CB_BBPE_SPECIAL))
		{
			/* a "legacy" added token: a sub-text of its own, joined by spaces */
			if (have_raw && raw.len > 0 &&
				(st = add_sub(&out, &n_sub, raw.data, raw.len, true, err)) != CB_OK)
				goto fail;
			raw.len = 0;
			have_raw = false;
			if ((st = add_sub(&out, &n_sub, s, len, false, err)) != CB_OK)
				goto fail;
			continue;
		}
		if ((st = token_bytes(s, len, &raw, err)) != CB_OK)
			goto fail;
		have_raw = true;
	}
	if (have_raw && (st = add_sub(&out, &n_sub, raw.data, raw.len, true, err)) != CB_OK)
		goto fail;
	if ((st = dbuf_reserve(&out, 1, err)) != CB_OK)
		goto fail;
	out.data[out.len] = '\0';
	cb_free(raw.data);
	*text = out.data;
	if (text_len)
		*text_len = out.len;
	return CB_OK;
fail:
	cb_free(raw.data);
	cb_free(out.data);
	return st;
}
