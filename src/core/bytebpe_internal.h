/*
 * bytebpe_internal.h — what the files of the byte-level BPE share
 * (bytebpe_image.c, bytebpe.c, bytebpe_decode.c): GPT-2's byte <-> unicode map,
 * the lookups in the image's hash tables.  Not part of the API: bytebpe.h is.
 */
#ifndef CB_BYTEBPE_INTERNAL_H
#define CB_BYTEBPE_INTERNAL_H

#include <string.h>

#include "bpe.h"				/* cb_bpe_hash */
#include "bytebpe.h"

/* ------------------------------------------------------------------------- */
/* Bytes as characters */

/*
 * GPT-2's bytes_to_unicode(): the printable bytes 0x21-0x7E, 0xA1-0xAC and
 * 0xAE-0xFF stand for themselves; the 68 others (0x00-0x20, 0x7F-0xA0,
 * 0xAD), in byte order, for U+0100 .. U+0143.
 */
static inline uint32_t
byte_to_unicode(uint8_t b)
{
	if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
		return b;
	if (b <= 0x20)
		return 256 + (uint32_t) b;
	if (b <= 0xA0)
		return 256 + 33 + (uint32_t) (b - 0x7F);
	return 256 + 67;			/* 0xAD */
}

/* byte_decoder: the byte a code point stands for, or -1. */
static inline int
unicode_to_byte(uint32_t cp)
{
	if (cp < 256)
		return byte_to_unicode((uint8_t) cp) == cp ? (int) cp : -1;
	if (cp < 256 + 33)
		return (int) (cp - 256);
	if (cp < 256 + 67)
		return (int) (0x7F + cp - 256 - 33);
	if (cp == 256 + 67)
		return 0xAD;
	return -1;
}

static inline size_t
utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char) (0xF0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char) (0x80 | (cp & 0x3F));
	return 4;
}

/* ------------------------------------------------------------------------- */
/* The image's hash tables */

static inline uint32_t
merge_hash(int32_t left, int32_t right)
{
	uint64_t	h = ((uint64_t) (uint32_t) left << 32 | (uint32_t) right) * 0x9E3779B97F4A7C15ull;

	return (uint32_t) (h >> 32) ^ (uint32_t) h;
}

static inline const cb_bbpe_merge_slot *
find_merge(const cb_bbpe *bb, int32_t left, int32_t right)
{
	uint32_t	i = merge_hash(left, right) & bb->merge_mask;

	for (;;)
	{
		const cb_bbpe_merge_slot *s = &bb->merges[i];

		if (s->left < 0)
			return NULL;
		if (s->left == left && s->right == right)
			return s;
		i = (i + 1) & bb->merge_mask;
	}
}

static inline int32_t
find_string(const cb_bbpe_str_slot *slots, uint32_t mask, const cb_bbpe_token *tokens,
			const char *strings, const char *s, size_t len)
{
	uint32_t	h = cb_bpe_hash(s, len);
	uint32_t	i = h & mask;

	for (;;)
	{
		const cb_bbpe_str_slot *sl = &slots[i];

		if (sl->id1 == 0)
			return -1;
		if (sl->hash == h)
		{
			const cb_bbpe_token *t = &tokens[sl->id1 - 1];

			if (t->str_len == len && memcmp(strings + t->str_off, s, len) == 0)
				return sl->id1 - 1;
		}
		i = (i + 1) & mask;
	}
}

/* The added token of this id, or NULL. */
static inline const cb_bbpe_added *
added_of_id(const cb_bbpe *bb, int32_t id)
{
	for (size_t i = 0; i < bb->n_added; i++)
		if (bb->added[i].id == id)
			return &bb->added[i];
	return NULL;
}

#endif							/* CB_BYTEBPE_INTERNAL_H */
