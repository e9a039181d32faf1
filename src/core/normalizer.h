/*
 * normalizer.h — SentencePiece 0.1.97 text normalization (normalizer.cc).
 *
 * The NormalizerSpec's precompiled_charsmap is
 *     <uint32 LE: trie size in bytes><darts-clone double array><string pool>
 * The double array maps UTF-8 byte strings to offsets into the pool, where
 * the replacement string is NUL-terminated.  Normalization walks the input:
 * at each position the longest key of the trie that prefixes the remaining
 * input is replaced by its pool string; without a match the next UTF-8
 * character is copied, and a malformed byte becomes U+FFFD (one byte
 * consumed).  With remove_extra_whitespaces, leading spaces are skipped,
 * runs of spaces collapse to one and trailing ones are removed; with
 * add_dummy_prefix a space is put in front; with escape_whitespaces every
 * space becomes U+2581 ("▁").  User-defined pieces are copied verbatim
 * (they are matched, longest first, before the charsmap).
 *
 * A cb_normalizer is a view: every pointer refers to the tokenizer image.
 */
#ifndef CB_NORMALIZER_H
#define CB_NORMALIZER_H

#include "cb_common.h"

struct cb_bpe_vocab;

typedef struct cb_normalizer
{
	const uint32_t *trie;		/* darts-clone units, NULL when no charsmap */
	size_t		trie_units;
	const char *pool;			/* replacement strings; pool[pool_len - 1] == '\0' */
	size_t		pool_len;
	const uint8_t *first_byte;	/* [256]: nonzero when a trie key starts with that byte */
	bool		add_dummy_prefix;
	bool		remove_extra_whitespaces;
	bool		escape_whitespaces;
	const struct cb_bpe_vocab *user_defined;	/* NULL: no user-defined pieces */
} cb_normalizer;

/* A growable byte buffer (cb_realloc'ed). */
typedef struct cb_norm_buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} cb_norm_buf;

cb_status	cb_norm_buf_reserve(cb_norm_buf *buf, size_t extra, cb_error *err);
void		cb_norm_buf_free(cb_norm_buf *buf);

/*
 * Split a precompiled_charsmap blob into its double array (units, 4-byte
 * aligned copy not required: returned as a byte pointer) and its string
 * pool, checking the sizes as SentencePiece does.
 */
cb_status	cb_charsmap_split(const uint8_t *blob, size_t len,
							  const uint8_t **trie, size_t *trie_bytes,
							  const uint8_t **pool, size_t *pool_len, cb_error *err);

/* Fill first_byte[256] from a double array (for the fast path). */
void		cb_charsmap_first_bytes(const uint32_t *trie, size_t units, uint8_t *first_byte);

/*
 * Longest charsmap match at s (len bytes available): returns its length in
 * bytes (0: none) and the replacement in *rep / *rep_len.
 */
size_t		cb_charsmap_match(const cb_normalizer *n, const uint8_t *s, size_t len,
							  const char **rep, size_t *rep_len);

/* Normalize in[0..len) into out (replacing its contents). */
cb_status	cb_normalize(const cb_normalizer *n, const char *in, size_t len,
						 cb_norm_buf *out, cb_error *err);

/*
 * The same a part at a time, so that the output need not be held whole:
 * start with a zeroed cb_norm_state; each call appends the normalized form
 * of more of in[0..len) (always the whole text: a match may look ahead) to
 * out, until out->len >= until or the input is exhausted (state->done).
 * Then the trailing whitespace is removed from out, so the caller must
 * still hold all of it there: it may take bytes off the front of out
 * between calls, but never from a trailing run of "▁" (" " without
 * escaping).  The concatenated output equals cb_normalize's.
 */
typedef struct cb_norm_state
{
	size_t		pos;			/* input consumed */
	bool		started;		/* leading whitespace skipped, dummy prefix written */
	bool		is_prev_space;
	bool		done;
} cb_norm_state;

cb_status	cb_normalize_step(const cb_normalizer *n, const char *in, size_t len,
							  cb_norm_state *state, cb_norm_buf *out, size_t until,
							  cb_error *err);

#endif							/* CB_NORMALIZER_H */
