/*
 * bytebpe.h — RoBERTa's byte-level BPE tokenizer (transformers 4.37
 * RobertaTokenizer, the slow one, itself GPT-2's encoder.py) in pure C,
 * exact to the id.
 *
 * A model is vocab.json (token string -> id; ids are taken from it, never
 * from an assumed order), merges.txt (a header line, then one merge
 * "left right" a line, rank = line order) and, optionally,
 * tokenizer_config.json / special_tokens_map.json (added and special tokens
 * with their lstrip / rstrip flags, add_prefix_space).
 * cb_bbpe_build() checks them and compiles them into one position-independent
 * image (offsets only, host byte order), which cb_bbpe_open() validates in
 * place and views; the image is what the shared-memory model holds.
 *
 * Encoding one text (RobertaTokenizer.tokenize + convert_tokens_to_ids):
 *   - add_prefix_space: a text that does not start with whitespace gets " ";
 *   - the text is split on the added tokens (leftmost, then longest); a
 *     token with lstrip eats the Python whitespace on its left, one with
 *     rstrip that on its right;
 *   - every other chunk is cut by GPT-2's pattern
 *       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *     (classes as the Python regex module has them: unicode_class_table.inc);
 *   - each piece's UTF-8 bytes become their byte-to-unicode characters and
 *     are merged: the lowest-ranked adjacent pair, every occurrence of it
 *     left to right, again until no pair is a merge (GPT-2's bpe());
 *   - ids from vocab.json.  Every byte has a token: no text is <unk>.
 * Malformed UTF-8 never fails: a bad byte is a character of its own, of no
 * class (it is a byte like any other for the BPE).
 *
 * Merging is exact for any merges file: short words by GPT-2's own loop,
 * long ones (over CB_BBPE_LONG_WORD bytes) with a heap in O(n log n), taking
 * each rank's occurrences in one pass as GPT-2 does.  Long loops call
 * cb_check_interrupts().  A cb_bbpe_work keeps scratch and a bounded cache of
 * recent words' ids (about 1 MB, emptied when full or used with another model).
 */
#ifndef CB_BYTEBPE_H
#define CB_BYTEBPE_H

#include "cb_common.h"

#define CB_BBPE_MAX_ID ((1 << 24) - 1)	/* ids are below 16 Mi */
#define CB_BBPE_MAX_TOKEN_BYTES 65535
#define CB_BBPE_MAX_MERGES_BYTES ((size_t) 256 << 20)
#define CB_BBPE_LONG_WORD 64		/* words longer than this (bytes) are merged with a heap */

/* cb_bbpe_added.flags */
#define CB_BBPE_LSTRIP 0x01u
#define CB_BBPE_RSTRIP 0x02u
#define CB_BBPE_SPECIAL 0x04u		/* one of all_special_tokens */
#define CB_BBPE_SINGLE_WORD 0x08u

typedef struct cb_bbpe_token
{
	uint32_t	str_off;		/* into the string pool (NUL-terminated there) */
	uint32_t	str_len;		/* 0: no token has this id */
} cb_bbpe_token;

typedef struct cb_bbpe_str_slot
{
	uint32_t	hash;
	int32_t		id1;			/* id + 1, 0 = empty */
} cb_bbpe_str_slot;

typedef struct cb_bbpe_merge_slot
{
	int32_t		left;			/* -1 = empty */
	int32_t		right;
	uint32_t	rank;
	int32_t		merged;
} cb_bbpe_merge_slot;

typedef struct cb_bbpe_added
{
	uint32_t	str_off;
	uint32_t	str_len;
	int32_t		id;
	uint32_t	flags;			/* CB_BBPE_* */
} cb_bbpe_added;

/* A view of an image (pointers into it). */
typedef struct cb_bbpe
{
	const cb_bbpe_token *tokens;	/* [id_limit] */
	int32_t		id_limit;		/* largest id + 1 */
	int32_t		vocab_size;		/* len(tokenizer): ids that have a token */
	const char *strings;
	size_t		strings_len;
	const cb_bbpe_str_slot *slots;	/* vocab.json's strings -> ids */
	uint32_t	slot_mask;
	const cb_bbpe_merge_slot *merges;
	uint32_t	merge_mask;
	size_t		n_merges;
	const cb_bbpe_added *added;
	size_t		n_added;
	const int32_t *byte_id;		/* [256]: the token of each byte */
	bool		add_prefix_space;
	int32_t		bos_id,
				eos_id,
				cls_id,
				sep_id,
				pad_id,
				unk_id,
				mask_id;
	uint64_t	fingerprint;
} cb_bbpe;

typedef struct cb_bbpe_cache cb_bbpe_cache;

/* Scratch for encoding (zero-initialize; cb_bbpe_work_free). */
typedef struct cb_bbpe_work
{
	int32_t    *sym;			/* a word's symbols (ids) */
	int32_t    *next;
	int32_t    *prev;
	void	   *heap;
	void	   *pending;
	size_t		cap;			/* symbols the arrays hold */
	char	   *text;			/* the text with its prefix space */
	size_t		text_cap;
	cb_bbpe_cache *cache;
	bool		no_cache;
	size_t		long_word;		/* tests: 0 = CB_BBPE_LONG_WORD */
} cb_bbpe_work;

/*
 * Compile a model into a new cb_malloc'ed image.  tokenizer_config and
 * special_tokens_map may be NULL (RobertaTokenizer's defaults).  Errors:
 * CB_ERR_FORMAT (malformed JSON, a duplicate id, a merge of a token
 * vocab.json lacks, a bad line of merges.txt), CB_ERR_UNSUPPORTED (a byte
 * without a token), CB_ERR_LIMIT (sizes), CB_ERR_NOMEM.
 */
cb_status	cb_bbpe_build(const char *vocab_json, size_t vocab_len,
						  const char *merges_txt, size_t merges_len,
						  const char *tokenizer_config, size_t tokenizer_config_len,
						  const char *special_tokens_map, size_t special_tokens_map_len,
						  void **image, size_t *image_len, cb_error *err);

/* Is this an image of this kind (by its magic)? */
bool		cb_bbpe_is_image(const void *image, size_t image_len);

/* Validate an image in place and view it (8-byte aligned). */
cb_status	cb_bbpe_open(const void *image, size_t image_len, cb_bbpe *bb, cb_error *err);

/*
 * Where the pieces go, in order: the id and the token's string (as
 * tokenize() gives it).  Setting *stop ends the encoding (CB_OK).
 */
typedef cb_status (*cb_bbpe_emit_fn) (void *arg, int32_t id, const char *piece, size_t len,
									  bool *stop, cb_error *err);

/* Encode text[0..len) (added tokens included); *stopped when emit stopped it. */
cb_status	cb_bbpe_encode(const cb_bbpe *bb, cb_bbpe_work *w, const char *text, size_t len,
						   cb_bbpe_emit_fn emit, void *arg, bool *stopped, cb_error *err);

/*
 * decode(ids, skip_special_tokens, clean_up_tokenization_spaces=False): the
 * tokens' bytes, decoded as UTF-8 with errors="replace", added tokens that are
 * not special set apart by spaces.  *text is cb_malloc'ed, NUL-terminated,
 * with room for nothing more; ids are checked (CB_ERR_INVALID).
 */
cb_status	cb_bbpe_decode(const cb_bbpe *bb, const int32_t *ids, size_t n_ids,
						   bool skip_special_tokens, char **text, size_t *text_len, cb_error *err);

/* convert_ids_to_tokens (NULL when no token has the id), convert_tokens_to_ids (unk_id when none). */
const char *cb_bbpe_id_to_token(const cb_bbpe *bb, int32_t id, size_t *len);
int32_t		cb_bbpe_token_to_id(const cb_bbpe *bb, const char *s, size_t len);

/* id in all_special_ids */
bool		cb_bbpe_is_special_id(const cb_bbpe *bb, int32_t id);

size_t		cb_bbpe_work_scratch_bytes(const cb_bbpe_work *w);
void		cb_bbpe_work_free_scratch(cb_bbpe_work *w);	/* keeps the cache */
void		cb_bbpe_work_free(cb_bbpe_work *w);

/* The class of a code point in GPT-2's pattern: 1 letter, 2 number, 3 space, 0 other. */
int			cb_bbpe_char_class(uint32_t cp);

#endif							/* CB_BYTEBPE_H */
