/*
 * normalizer.c — SentencePiece's Normalizer::Normalize / NormalizePrefix and
 * the darts-clone common-prefix search over the precompiled charsmap.
 */
#include "normalizer.h"

#include <string.h>

#include "bpe.h"
#include "utf8.h"

/* ------------------------------------------------------------------------- */
/* darts-clone double-array units */

static inline uint32_t
unit_label(uint32_t u)
{
	return u & ((1u << 31) | 0xFFu);
}

static inline bool
unit_has_leaf(uint32_t u)
{
	return ((u >> 8) & 1u) == 1u;
}

static inline uint32_t
unit_value(uint32_t u)
{
	return u & ((1u << 31) - 1u);
}

static inline size_t
unit_offset(uint32_t u)
{
	return (size_t) ((u >> 10) << ((u & (1u << 9)) >> 6));
}

cb_status
cb_charsmap_split(const uint8_t *blob, size_t len,
				  const uint8_t **trie, size_t *trie_bytes,
				  const uint8_t **pool, size_t *pool_len, cb_error *err)
{
	uint32_t	trie_size;

	if (len <= 4)
		return cb_set_error(err, CB_ERR_FORMAT,
							"sentencepiece model: precompiled_charsmap of %zu bytes is too short", len);
	trie_size = cb_read_le32(blob);
	if ((size_t) trie_size >= len)
		return cb_set_error(err, CB_ERR_FORMAT,
							"sentencepiece model: precompiled_charsmap trie size %u exceeds the blob (%zu bytes)",
							trie_size, len);
	if (trie_size < 4)
		return cb_set_error(err, CB_ERR_FORMAT,
							"sentencepiece model: precompiled_charsmap has an empty double array");
	*trie = blob + 4;
	*trie_bytes = trie_size;
	*pool = blob + 4 + trie_size;
	*pool_len = len - 4 - trie_size;
	return CB_OK;
}

void
cb_charsmap_first_bytes(const uint32_t *trie, size_t units, uint8_t *first_byte)
{
	memset(first_byte, 0, 256);
	if (trie == NULL || units == 0)
		return;
	size_t		base = unit_offset(trie[0]);

	for (unsigned b = 0; b < 256; b++)
	{
		size_t		node = base ^ b;

		if (node < units && unit_label(trie[node]) == b)
			first_byte[b] = 1;
	}
}

size_t
cb_charsmap_match(const cb_normalizer *n, const uint8_t *s, size_t len,
				  const char **rep, size_t *rep_len)
{
	const uint32_t *a = n->trie;
	size_t		units = n->trie_units;
	size_t		node;
	size_t		best = 0;
	uint32_t	best_value = 0;

	if (a == NULL || units == 0)
		return 0;
	node = unit_offset(a[0]);
	for (size_t i = 0; i < len; i++)
	{
		uint32_t	u;

		node ^= s[i];
		if (node >= units)
			break;
		u = a[node];
		if (unit_label(u) != s[i])
			break;
		node ^= unit_offset(u);
		if (unit_has_leaf(u))
		{
			uint32_t	value;

			if (node >= units)
				break;
			value = unit_value(a[node]);
			/* a value outside the pool cannot be used (SentencePiece would read out of bounds) */
			if ((size_t) value < n->pool_len)
			{
				best = i + 1;
				best_value = value;
			}
		}
	}
	if (best > 0)
	{
		*rep = n->pool + best_value;
		*rep_len = strlen(*rep);	/* the pool ends with a NUL */
	}
	return best;
}

/* ------------------------------------------------------------------------- */
/* Buffers */

cb_status
cb_norm_buf_reserve(cb_norm_buf *buf, size_t extra, cb_error *err)
{
	size_t		need;

	if (!cb_add_size(buf->len, extra, &need))
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: buffer size overflow");
	if (need <= buf->cap)
		return CB_OK;
	return cb_grow_array((void **) &buf->data, &buf->cap, need, 1, "tokenizer", err);
}

void
cb_norm_buf_free(cb_norm_buf *buf)
{
	if (buf == NULL)
		return;
	cb_free(buf->data);
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}

/* ------------------------------------------------------------------------- */
/* Normalization */

static const char kReplacementChar[3] = {'\xEF', '\xBF', '\xBD'};
static const char kSpaceSymbol[3] = {'\xE2', '\x96', '\x81'};

/* NormalizePrefix: the normalized form of the next unit of input and its length. */
static inline void
normalize_prefix(const cb_normalizer *n, const uint8_t *in, size_t avail,
				 const char **out, size_t *out_len, size_t *consumed)
{
	uint8_t		b = in[0];
	size_t		k;

	if (n->user_defined != NULL)
	{
		k = cb_bpe_user_defined_match(n->user_defined, (const char *) in, avail);
		if (k > 0)
		{
			*out = (const char *) in;
			*out_len = k;
			*consumed = k;
			return;
		}
	}
	if (n->trie != NULL && n->first_byte[b])
	{
		k = cb_charsmap_match(n, in, avail, out, out_len);
		if (k > 0)
		{
			*consumed = k;
			return;
		}
	}
	if (b < 0x80)
	{
		*out = (const char *) in;
		*out_len = 1;
		*consumed = 1;
		return;
	}
	if (!cb_utf8_valid_sp(in, avail, &k))
	{
		*out = kReplacementChar;
		*out_len = 3;
		*consumed = 1;
		return;
	}
	*out = (const char *) in;
	*out_len = k;
	*consumed = k;
}

cb_status
cb_normalize_step(const cb_normalizer *n, const char *in_chars, size_t len,
				  cb_norm_state *state, cb_norm_buf *out, size_t until, cb_error *err)
{
	const uint8_t *in = (const uint8_t *) in_chars;
	const char *sp;
	size_t		sp_len,
				consumed;
	bool		is_prev_space = state->is_prev_space;
	cb_status	st;
	size_t		pos = state->pos;
	size_t		since_check = 0;

	if (state->done)
		return CB_OK;
	if (!state->started)
	{
		/* Skip leading whitespace. */
		if (n->remove_extra_whitespaces)
		{
			while (pos < len)
			{
				normalize_prefix(n, in + pos, len - pos, &sp, &sp_len, &consumed);
				if (!(sp_len == 1 && sp[0] == ' '))
					break;
				pos += consumed;
				if (++since_check >= 65536)
				{
					since_check = 0;
					cb_check_interrupts();
				}
			}
		}
		state->pos = pos;
		if (pos == len)
		{
			state->done = true;
			return CB_OK;
		}
		if ((st = cb_norm_buf_reserve(out, 3, err)) != CB_OK)
			return st;
		if (n->add_dummy_prefix)
		{
			if (n->escape_whitespaces)
			{
				memcpy(out->data + out->len, kSpaceSymbol, 3);
				out->len += 3;
			}
			else
				out->data[out->len++] = ' ';
		}
		is_prev_space = n->remove_extra_whitespaces;
		state->started = true;
	}

	while (pos < len && out->len < until)
	{
		normalize_prefix(n, in + pos, len - pos, &sp, &sp_len, &consumed);

		/* Remove leading spaces of this unit if the previous one ended with one. */
		while (is_prev_space && sp_len > 0 && sp[0] == ' ')
		{
			sp++;
			sp_len--;
		}
		if (sp_len > 0)
		{
			/* 3 * sp_len covers escaping every byte */
			if (out->len + 3 * sp_len > out->cap &&
				(st = cb_norm_buf_reserve(out, 3 * sp_len, err)) != CB_OK)
				return st;
			if (sp_len == 1 && sp[0] != ' ')
				out->data[out->len++] = sp[0];
			else
			{
				for (size_t i = 0; i < sp_len; i++)
				{
					if (sp[i] == ' ' && n->escape_whitespaces)
					{
						memcpy(out->data + out->len, kSpaceSymbol, 3);
						out->len += 3;
					}
					else
						out->data[out->len++] = sp[i];
				}
			}
			is_prev_space = sp[sp_len - 1] == ' ';
		}
		pos += consumed;
		if (!n->remove_extra_whitespaces)
			is_prev_space = false;
		if (++since_check >= 65536)
		{
			since_check = 0;
			cb_check_interrupts();
		}
	}
	state->pos = pos;
	state->is_prev_space = is_prev_space;
	if (pos < len)
		return CB_OK;

	/* Remove trailing whitespace (the caller keeps all of it in out). */
	state->done = true;
	if (n->remove_extra_whitespaces)
	{
		if (n->escape_whitespaces)
		{
			while (out->len >= 3 && memcmp(out->data + out->len - 3, kSpaceSymbol, 3) == 0)
				out->len -= 3;
		}
		else
		{
			while (out->len >= 1 && out->data[out->len - 1] == ' ')
				out->len--;
		}
	}
	return CB_OK;
}

cb_status
cb_normalize(const cb_normalizer *n, const char *in, size_t len, cb_norm_buf *out, cb_error *err)
{
	cb_norm_state state;

	memset(&state, 0, sizeof(state));
	out->len = 0;
	return cb_normalize_step(n, in, len, &state, out, SIZE_MAX, err);
}
