/*
 * utf8.h — the few UTF-8 rules the tokenizer must copy exactly.
 *
 * SentencePiece 0.1.97 (util.h / util.cc) and Python 3 (str.isspace,
 * str.strip) each have their own idea of a "character" and of "whitespace";
 * the tokenizer must reproduce both bit for bit, so they live here rather
 * than in a general-purpose UTF-8 library.
 */
#ifndef CB_UTF8_H
#define CB_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define CB_UNICODE_REPLACEMENT 0xFFFDu

/*
 * Length of the character that starts with byte `lead`, from the lead byte
 * alone (SentencePiece's OneCharLen): 1 for 0x00-0xBF (ASCII and stray
 * continuation bytes), 2 for 0xC0-0xDF, 3 for 0xE0-0xEF, 4 for 0xF0-0xFF.
 * The caller clips it to the bytes left.
 */
static inline size_t
cb_utf8_lead_len(uint8_t lead)
{
	static const uint8_t table[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};

	return table[lead >> 4];
}

/*
 * Decode one character as SentencePiece's DecodeUTF8 does: returns the code
 * point and its length in *len (1-4).  Malformed input (bad lead byte, bad
 * continuation, overlong form, surrogate, > U+10FFFF, truncated) gives
 * U+FFFD with *len = 1.  `avail` must be >= 1.
 */
uint32_t	cb_utf8_decode_sp(const uint8_t *s, size_t avail, size_t *len);

/*
 * SentencePiece's IsValidDecodeUTF8: true when the character at s is well
 * formed (a literal U+FFFD, 3 bytes, counts as well formed).
 */
static inline bool
cb_utf8_valid_sp(const uint8_t *s, size_t avail, size_t *len)
{
	uint32_t	cp = cb_utf8_decode_sp(s, avail, len);

	return cp != CB_UNICODE_REPLACEMENT || *len == 3;
}

/*
 * Is s[0..len) text that PostgreSQL accepts: well-formed UTF-8 (no overlong
 * form, surrogate, code point over U+10FFFF or truncated sequence) without
 * a NUL byte?  On false, *bad (if not NULL) is the offset of the first byte
 * that is not.
 */
bool		cb_utf8_is_text(const uint8_t *s, size_t len, size_t *bad);

/* Python 3's str.isspace() for one code point. */
bool		cb_py_isspace(uint32_t cp);

/*
 * Length of the text left after Python's str.rstrip() / str.lstrip()
 * (whitespace as str.isspace()).  Only well-formed characters can be
 * whitespace; malformed bytes stop the stripping.
 */
size_t		cb_py_rstrip_len(const char *s, size_t len);
size_t		cb_py_lstrip_len(const char *s, size_t len);	/* bytes removed on the left */

#endif							/* CB_UTF8_H */
