/*
 * bpe.h — SentencePiece 0.1.97 BPE encoding (bpe_model.cc) over a piece
 * table that lives in the tokenizer image.
 *
 * Encoding one normalized string: split it into characters (SentencePiece's
 * lead-byte rule; a user-defined piece matched longest-first is one frozen
 * symbol), then repeatedly merge the adjacent pair whose concatenation is a
 * NORMAL / USER_DEFINED / UNUSED piece of highest score, the leftmost first on
 * ties, never touching a frozen symbol.  The result is resegmented: a symbol
 * that is an UNUSED piece is split back into the two parts it was last merged
 * from.  Symbols that are no piece get the unknown id.
 *
 * The agenda holds one entry per adjacent pair whose concatenation is a
 * mergeable piece, keyed (score, then leftmost) and updated in place when a
 * merge changes a pair; SentencePiece instead pushes every new pair and skips
 * the stale ones when they come out.  Both take the same pairs in the same
 * order (a pair's key is unique and each current pair is in SentencePiece's
 * agenda exactly once), with 8 bytes per pair instead of up to 3 entries of
 * 20 bytes per character.
 *
 * Speed and memory: when no mergeable piece contains "▁" after its first
 * byte, no merge can cross the start of a "▁", so each "▁"-started word is
 * merged on its own (same result, smaller agenda; see
 * cb_bpe_vocab.split_words), and the pieces of recent words are kept in a
 * bounded cache in the cb_bpe_work (about 400 KB, emptied when full; keyed
 * by the model's fingerprint).
 *
 * Pieces are looked up in an open-addressing hash table stored in the image.
 */
#ifndef CB_BPE_H
#define CB_BPE_H

#include "cb_common.h"

/* cb_bpe_piece.flags */
#define CB_BPE_MERGEABLE 0x01	/* NORMAL, USER_DEFINED or UNUSED (SentencePiece's pieces_) */
#define CB_BPE_ADDED_TOKEN 0x02 /* string equals a CamemBERT added token (tokenizer.c) */
#define CB_BPE_SPECIAL_STRING 0x04	/* string is one of all_special_tokens (tokenizer.c) */

/* One piece (16 bytes, in the image). */
typedef struct cb_bpe_piece
{
	uint32_t	str_off;		/* into the string pool */
	uint32_t	str_len;
	float		score;
	uint8_t		type;			/* CB_SP_* */
	uint8_t		flags;			/* CB_BPE_* */
	uint16_t	reserved;
} cb_bpe_piece;

/* One hash-table slot: index1 = piece index + 1, 0 = empty. */
typedef struct cb_bpe_slot
{
	uint32_t	hash;
	uint32_t	index1;
} cb_bpe_slot;

typedef struct cb_bpe_vocab
{
	const cb_bpe_piece *pieces;
	size_t		n_pieces;
	const char *strings;
	size_t		strings_len;
	const cb_bpe_slot *slots;
	uint32_t	slot_mask;		/* capacity - 1, capacity a power of two */
	int32_t		unk_id;			/* SentencePiece id of the UNKNOWN piece */
	bool		has_user_defined;
	bool		has_unused;
	bool		split_words;
	uint32_t	max_user_defined_len;
	const uint8_t *user_defined_first_byte; /* [256] */
	uint64_t	fingerprint;	/* identifies the model (keys the word cache) */
} cb_bpe_vocab;

/* One output piece: bytes [off, off + len) of the normalized string. */
typedef struct cb_bpe_token
{
	uint32_t	off;
	uint32_t	len;
	int32_t		id;				/* SentencePiece id (unk_id when no piece) */
} cb_bpe_token;

/* Pieces go to the caller this many at a time (at most). */
#define CB_BPE_TOKEN_BATCH 4096

/*
 * Where cb_bpe_encode delivers its pieces, in order, at most
 * CB_BPE_TOKEN_BATCH at a time.  Setting *stop ends the encoding at once
 * (cb_bpe_encode then returns CB_OK with *stopped set); an error is returned
 * as is.
 */
typedef cb_status (*cb_bpe_flush_fn) (void *arg, const cb_bpe_token *tokens, size_t n,
									  bool *stop, cb_error *err);

typedef struct cb_bpe_pair cb_bpe_pair;
typedef struct cb_bpe_cache cb_bpe_cache;

#define CB_BPE_FROZEN UINT32_MAX	/* cb_bpe_work.hpos of a user-defined symbol */

/*
 * Reusable scratch for cb_bpe_encode (zero-initialize; cb_bpe_work_free).
 * A word's initial symbols (characters, or user-defined pieces) are indexed
 * 0 .. n-1: off[i] is the byte offset of symbol i (off[n] the word's end);
 * a merged symbol that starts at s and spans L initial symbols has
 * span[s] == span[s + L - 1] == L (both its neighbours in O(1); L fits in
 * 16 bits as a piece has at most CB_SP_MAX_PIECE_BYTES bytes); hpos[s] is
 * 1 + the agenda index of the pair that starts at s (0: none,
 * CB_BPE_FROZEN: a user-defined symbol).  10 bytes per initial symbol of
 * the longest word, plus 8 per mergeable pair in the agenda; large arrays
 * are sized exactly (not doubled).
 */
typedef struct cb_bpe_work
{
	uint32_t   *off;
	uint16_t   *span;
	uint32_t   *hpos;
	size_t		sym_cap;		/* characters the three arrays hold */
	cb_bpe_pair *heap;
	size_t		heap_cap;
	cb_bpe_token *tokens;		/* CB_BPE_TOKEN_BATCH, allocated on first use */
	size_t		n_tokens;
	uint32_t   *stack;			/* UNUSED resegmentation */
	size_t		stack_cap;
	uint32_t   *unused_left;	/* per piece: left length of its last merge, 0 = none */
	size_t		unused_cap;
	uint32_t   *touched;
	size_t		n_touched;
	size_t		touched_cap;
	cb_bpe_cache *cache;		/* word -> pieces, when words are merged alone */
	bool		no_cache;		/* set for one-shot work areas: do not allocate the cache */
} cb_bpe_work;

uint32_t	cb_bpe_hash(const char *s, size_t len);

/* Index of the piece with exactly these bytes, or -1. */
int32_t		cb_bpe_find(const cb_bpe_vocab *v, const char *s, size_t len);

/* Length of the longest user-defined piece that prefixes s, 0 if none. */
size_t		cb_bpe_user_defined_match(const cb_bpe_vocab *v, const char *s, size_t len);

/*
 * Fill a hash table (capacity a power of two > n) for pieces whose strings
 * are in `strings`.  CB_ERR_FORMAT if two pieces have the same string.
 */
cb_status	cb_bpe_fill_slots(const cb_bpe_piece *pieces, size_t n, const char *strings,
							  cb_bpe_slot *slots, size_t capacity, cb_error *err);

/*
 * Encode norm[0..len) (one SentencePiece call: its UNUSED records live that
 * long) and pass the pieces to flush.  With split_words, the caller may cut
 * a text before any "▁" and encode the parts in turn: same pieces.  Working
 * memory: about 18 bytes per character of the longest word (of the whole
 * text without split_words) plus fixed buffers (the word cache, 400 KB; the
 * token batch, 48 KB; with UNUSED pieces, 8 bytes per piece of the model).
 * Checks for interrupts every 65536 characters and merges.
 */
cb_status	cb_bpe_encode(const cb_bpe_vocab *v, cb_bpe_work *w,
						  const char *norm, size_t len,
						  cb_bpe_flush_fn flush, void *flush_arg, bool *stopped, cb_error *err);

/* Scratch bytes held (the word cache excluded). */
size_t		cb_bpe_work_scratch_bytes(const cb_bpe_work *w);

/* Free the scratch but keep the word cache. */
void		cb_bpe_work_free_scratch(cb_bpe_work *w);

void		cb_bpe_work_free(cb_bpe_work *w);

#endif							/* CB_BPE_H */
