/*
 * utf8.c — SentencePiece's UTF-8 decoding and Python's whitespace rules.
 */
#include "utf8.h"

static inline bool
is_trail(uint8_t b)
{
	return (b & 0xC0) == 0x80;
}

static inline bool
is_valid_codepoint(uint32_t cp)
{
	return cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF);
}

uint32_t
cb_utf8_decode_sp(const uint8_t *s, size_t avail, size_t *len)
{
	uint8_t		b0 = s[0];

	if (b0 < 0x80)
	{
		*len = 1;
		return b0;
	}
	if (avail >= 2 && (b0 & 0xE0) == 0xC0)
	{
		uint32_t	cp = ((uint32_t) (b0 & 0x1F) << 6) | (s[1] & 0x3F);

		if (is_trail(s[1]) && cp >= 0x80 && is_valid_codepoint(cp))
		{
			*len = 2;
			return cp;
		}
	}
	else if (avail >= 3 && (b0 & 0xF0) == 0xE0)
	{
		uint32_t	cp = ((uint32_t) (b0 & 0x0F) << 12) |
			((uint32_t) (s[1] & 0x3F) << 6) | (s[2] & 0x3F);

		if (is_trail(s[1]) && is_trail(s[2]) && cp >= 0x800 && is_valid_codepoint(cp))
		{
			*len = 3;
			return cp;
		}
	}
	else if (avail >= 4 && (b0 & 0xF8) == 0xF0)
	{
		uint32_t	cp = ((uint32_t) (b0 & 0x07) << 18) |
			((uint32_t) (s[1] & 0x3F) << 12) |
			((uint32_t) (s[2] & 0x3F) << 6) | (s[3] & 0x3F);

		if (is_trail(s[1]) && is_trail(s[2]) && is_trail(s[3]) &&
			cp >= 0x10000 && is_valid_codepoint(cp))
		{
			*len = 4;
			return cp;
		}
	}
	*len = 1;
	return CB_UNICODE_REPLACEMENT;
}

bool
cb_utf8_is_text(const uint8_t *s, size_t len, size_t *bad)
{
	size_t		pos = 0;

	while (pos < len)
	{
		size_t		k;

		if (s[pos] < 0x80)
		{
			if (s[pos] == 0)
				break;
			pos++;
			continue;
		}
		if (!cb_utf8_valid_sp(s + pos, len - pos, &k))
			break;
		pos += k;
	}
	if (bad != NULL)
		*bad = pos;
	return pos == len;
}

bool
cb_py_isspace(uint32_t cp)
{
	/* Python 3.11 _PyUnicode_IsWhitespace: bidi WS/B/S or category Zs. */
	if (cp <= 0x20)
		return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
	if (cp < 0x85)
		return false;
	switch (cp)
	{
		case 0x85:
		case 0xA0:
		case 0x1680:
		case 0x2028:
		case 0x2029:
		case 0x202F:
		case 0x205F:
		case 0x3000:
			return true;
		default:
			return cp >= 0x2000 && cp <= 0x200A;
	}
}

/* The well-formed character that ends s[0..len), or 0 if none. */
static size_t
last_char(const uint8_t *s, size_t len, uint32_t *cp)
{
	for (size_t k = 1; k <= 4 && k <= len; k++)
	{
		const uint8_t *p = s + len - k;

		if (k < 4 && is_trail(*p))
			continue;
		size_t		n;
		uint32_t	c = cb_utf8_decode_sp(p, k, &n);

		if (n == k && (c != CB_UNICODE_REPLACEMENT || k == 3))
		{
			*cp = c;
			return k;
		}
		return 0;
	}
	return 0;
}

size_t
cb_py_rstrip_len(const char *s, size_t len)
{
	const uint8_t *u = (const uint8_t *) s;

	while (len > 0)
	{
		uint32_t	cp;
		size_t		k = last_char(u, len, &cp);

		if (k == 0 || !cb_py_isspace(cp))
			break;
		len -= k;
	}
	return len;
}

size_t
cb_py_lstrip_len(const char *s, size_t len)
{
	const uint8_t *u = (const uint8_t *) s;
	size_t		pos = 0;

	while (pos < len)
	{
		size_t		k;
		uint32_t	cp = cb_utf8_decode_sp(u + pos, len - pos, &k);

		if ((cp == CB_UNICODE_REPLACEMENT && k != 3) || !cb_py_isspace(cp))
			break;
		pos += k;
	}
	return pos;
}
