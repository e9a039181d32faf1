/*
 * tokenizer.h — CamemBERT's tokenizer (transformers 4.37 CamembertTokenizer,
 * the slow SentencePiece-backed one) in pure C, exact to the id.
 *
 * Two phases:
 *
 *   1. cb_tokenizer_build() reads a sentencepiece.bpe.model (protobuf,
 *      see sp_model.h), checks it (every piece, the unk_surface and every
 *      charsmap replacement must be UTF-8 without NUL: they come out of
 *      decoding and tokenize() as text; CB_ERR_FORMAT names the piece) and
 *      compiles it into a *tokenizer image*: one
 *      contiguous, position-independent block of bytes (every internal
 *      reference is an offset from its start; no pointers).  The image
 *      depends on the host's byte order (checked by open) and may be
 *      copied anywhere, e.g. into shared memory.
 *
 *   2. cb_tokenizer_open() validates an image in place (header, section
 *      bounds, every piece entry and hash slot: O(vocabulary)) and fills a
 *      cb_tokenizer, a small struct of pointers into the image.  It neither
 *      copies nor allocates; the image must stay mapped while the
 *      cb_tokenizer is used and must be 8-byte aligned.
 *
 * What encoding does (see test/golden/README.md, "What transformers does"):
 *   - the text is split on the added tokens <s>NOTUSED <pad> </s>NOTUSED
 *     <unk> <unk>NOTUSED <s> </s> <mask> (leftmost, longest first,
 *     case-sensitive); only <mask> strips: Python-whitespace on its left is
 *     removed from the preceding chunk;
 *   - every other chunk is encoded on its own by SentencePiece 0.1.97: the
 *     precompiled-charsmap normalization (normalizer.h), BPE (bpe.h), then a
 *     run of consecutive unknown pieces becomes one piece;
 *   - a piece becomes an id as CamembertTokenizer does: its string if it is
 *     an added token, else SentencePiece id + 4, SentencePiece's unknown
 *     (id 0) -> 3.
 *   Ids: <s>NOTUSED 0, <pad> 1, </s>NOTUSED 2, <unk> 3, <unk>NOTUSED 4,
 *   <s> = 4 + SentencePiece id of "<s>" (5), </s> = 4 + that of "</s>" (6),
 *   <mask> = SentencePiece vocabulary size + 4 (8004 for an 8000-piece model).
 *
 * Text input is UTF-8 with an explicit length (NUL bytes are ordinary
 * characters).  Malformed UTF-8 never fails: like SentencePiece, each bad
 * byte becomes U+FFFD.
 *
 * Memory: functions that return arrays or strings cb_malloc them; the caller
 * releases them with cb_free.  A cb_tok_workspace holds reusable scratch
 * (normalized text, BPE agenda, ids) and a bounded cache of the pieces of
 * recent words (about 400 KB, allocated on first use, emptied when full or
 * when used with another model); keep one per session to encode many texts
 * fast, and cb_tok_workspace_trim it after a long text.  Every encoding
 * function accepts NULL there and then uses a temporary one (without the
 * cache).  A workspace must not be shared by two threads at once; a
 * cb_tokenizer may be (it is read-only).
 *
 * Working memory does not grow with the text but with its longest word:
 * a chunk is normalized a window at a time (4 KiB, then up to 64 KiB) and,
 * when no merge can cross a "▁" (CamemBERT's models), every complete word
 * is merged, turned into ids and dropped.  A word (a run without a space,
 * after normalization) is merged whole: about 18 bytes per character of it
 * (cb_bpe_work), plus its normalized bytes.  So with max_length (what
 * inference uses) the peak is ~1 MiB for any ordinary text, and 10 to 16
 * times the text for one long run of ASCII; characters that NFKC spreads
 * over several without a space (1/4 -> "1⁄4", U+3316 -> 6 katakana) cost
 * up to ~30 times.  Results add 4 bytes per id (tokenize(): the strings);
 * count() keeps none.  Long loops call cb_check_interrupts() every 65536
 * characters, pieces or merges at most.  (A model whose pieces hold "▁"
 * after their first byte, or that has UNUSED pieces, is merged a chunk,
 * i.e. a text between added tokens, at once.)
 */
#ifndef CB_TOKENIZER_H
#define CB_TOKENIZER_H

#include "cb_common.h"
#include "bpe.h"
#include "bytebpe.h"
#include "normalizer.h"
#include "unigram.h"

/* CamemBERT's fixed added-token ids. */
#define CB_TOK_ID_S_NOTUSED 0
#define CB_TOK_ID_PAD 1
#define CB_TOK_ID_S_END_NOTUSED 2
#define CB_TOK_ID_UNK 3
#define CB_TOK_ID_UNK_NOTUSED 4
#define CB_TOK_FAIRSEQ_OFFSET 4

#define CB_TOK_MAX_TEXT_BYTES ((size_t) 256 << 20) /* one text (or pair member): 256 MiB */

/*
 * The kinds of tokenizer an image holds; every function below works on each.
 * CB_TOK_KIND_BYTE_BPE: RoBERTa's byte-level BPE (bytebpe.h), whose images
 * cb_bbpe_build makes; cb_tokenizer_open tells the kinds apart by the magic.
 */
typedef enum cb_tok_kind
{
	CB_TOK_KIND_SP_BPE = 0,		/* SentencePiece BPE (CamemBERT's models) */
	CB_TOK_KIND_BYTE_BPE,		/* RobertaTokenizer */
	CB_TOK_KIND_SP_UNIGRAM		/* SentencePiece unigram (XLM-RoBERTa's models), unigram.h */
} cb_tok_kind;

/*
 * How a SentencePiece tokenizer numbers its ids.  CamembertTokenizer: fairseq
 * offset 4 (<s>NOTUSED 0, <pad> 1, </s>NOTUSED 2, <unk> 3, <unk>NOTUSED 4),
 * the NOTUSED strings are added tokens.  XLMRobertaTokenizer: <s> 0, <pad> 1,
 * </s> 2, <unk> 3, SentencePiece id i -> i + 1, <mask> = pieces + 1; its
 * decode is the pieces joined, "▁" -> " ", stripped.
 */
typedef enum cb_tok_layout
{
	CB_TOK_LAYOUT_CAMEMBERT = 0,
	CB_TOK_LAYOUT_XLMR
} cb_tok_layout;

typedef struct cb_tokenizer
{
	/* Public, read-only. */
	cb_tok_kind kind;
	cb_tok_layout layout;
	int32_t		vocab_size;		/* ids are 0 .. vocab_size-1 (8005) */
	int32_t		sp_vocab_size;	/* pieces in the SentencePiece model (8000) */
	int32_t		pad_id;			/* 1 */
	int32_t		cls_id;			/* <s>, also bos (5) */
	int32_t		sep_id;			/* </s>, also eos (6) */
	int32_t		unk_id;			/* 3 */
	int32_t		mask_id;		/* <mask> (8004) */

	/* Private: views into the image. */
	cb_bbpe		bbpe;			/* CB_TOK_KIND_BYTE_BPE */
	cb_unigram	unigram;		/* CB_TOK_KIND_SP_UNIGRAM */
	int32_t		fairseq_offset;	/* SentencePiece id -> id: + this */
	const uint8_t *image;
	size_t		image_len;
	cb_bpe_vocab vocab;
	cb_normalizer normalizer;
	const char *unk_surface;	/* SentencePiece's decoding of its <unk> piece */
	size_t		unk_surface_len;
} cb_tokenizer;

typedef enum cb_truncation
{
	CB_TRUNCATE_LONGEST_FIRST = 0,	/* truncation=True / "longest_first" */
	CB_TRUNCATE_ONLY_FIRST,
	CB_TRUNCATE_ONLY_SECOND
} cb_truncation;

typedef struct cb_tok_workspace cb_tok_workspace;

/* The pieces of tokenizer.tokenize(): one cb_malloc'ed block, cb_free it. */
typedef struct cb_token_list
{
	size_t		count;
	const char **piece;			/* piece[i]: NUL-terminated UTF-8; a NUL byte of the text stays one (see length) */
	const uint32_t *length;		/* length[i]: bytes of piece[i] */
} cb_token_list;

/* ---- build / open ------------------------------------------------------ */

/* Compile a sentencepiece.bpe.model into a new cb_malloc'ed image (CamemBERT's ids). */
cb_status	cb_tokenizer_build(const uint8_t *model_bytes, size_t len,
							   void **image, size_t *image_len, cb_error *err);

/* The same with the ids of `layout`; a BPE or unigram model (its model_type says). */
cb_status	cb_tokenizer_build_layout(const uint8_t *model_bytes, size_t len, cb_tok_layout layout,
									  void **image, size_t *image_len, cb_error *err);

/* View an image (no copy, no allocation). */
cb_status	cb_tokenizer_open(const void *image, size_t image_len,
							  cb_tokenizer *tok, cb_error *err);

/* ---- workspace ---------------------------------------------------------- */

cb_tok_workspace *cb_tok_workspace_create(void);	/* NULL: out of memory */
void		cb_tok_workspace_destroy(cb_tok_workspace *ws);

/* Bytes of scratch the workspace holds (its word cache, ~400 KB, excluded). */
size_t		cb_tok_workspace_scratch_bytes(const cb_tok_workspace *ws);

/*
 * When the scratch is over `keep` bytes, free it (the word cache stays);
 * true if it did.  Ids returned by cb_tokenizer_encode_ws are then gone.
 */
bool		cb_tok_workspace_trim(cb_tok_workspace *ws, size_t keep);

/* Tests: normalize at most about this many bytes at a time (0: the default, 64 KiB). */
void		cb_tok_workspace_set_window(cb_tok_workspace *ws, size_t bytes);

/* ---- encoding ----------------------------------------------------------- */

/*
 * tokenizer(text, add_special_tokens=add_special_tokens,
 *           truncation=max_length > 0, max_length=max_length)["input_ids"]
 * max_length <= 0: no truncation.  Truncation keeps </s> and, as
 * transformers, returns the ids untruncated when the text alone cannot be
 * shortened enough (max_length < 3 with special tokens).
 * *ids is cb_malloc'ed (never NULL on success, even when *n_ids == 0).
 */
cb_status	cb_tokenizer_encode(const cb_tokenizer *tok, cb_tok_workspace *ws,
								const char *text, size_t len,
								bool add_special_tokens, int32_t max_length,
								int32_t **ids, size_t *n_ids, cb_error *err);

/*
 * The same, but the ids stay in the workspace (valid until its next use):
 * no allocation once the workspace has grown.  ws must not be NULL.
 * *truncated (if not NULL): pieces were dropped.
 *
 * Both stop reading the text once truncation is sure to happen and the
 * pieces it keeps are known (max_length - 1 pieces with special tokens,
 * max_length + 1 without): same ids as encoding everything and truncating,
 * in time and memory that depend on max_length, not on the text.
 */
cb_status	cb_tokenizer_encode_ws(const cb_tokenizer *tok, cb_tok_workspace *ws,
								   const char *text, size_t len,
								   bool add_special_tokens, int32_t max_length,
								   const int32_t **ids, size_t *n_ids, bool *truncated,
								   cb_error *err);

/* len(tokenizer(text, add_special_tokens=...)["input_ids"]), untruncated, without keeping the ids. */
cb_status	cb_tokenizer_count(const cb_tokenizer *tok, cb_tok_workspace *ws,
							   const char *text, size_t len, bool add_special_tokens,
							   size_t *count, cb_error *err);

/*
 * tokenizer(text_a, text_b, add_special_tokens=..., truncation=strategy,
 *           max_length=max_length)["input_ids"]:  <s> A </s></s> B </s>.
 * With only_first / only_second, a member that cannot lose enough tokens
 * leaves everything untruncated (what transformers returns).
 */
cb_status	cb_tokenizer_encode_pair(const cb_tokenizer *tok, cb_tok_workspace *ws,
									 const char *text_a, size_t len_a,
									 const char *text_b, size_t len_b,
									 bool add_special_tokens, cb_truncation strategy,
									 int32_t max_length,
									 int32_t **ids, size_t *n_ids, cb_error *err);

/* tokenizer.tokenize(text): pieces, added tokens as their strings. */
cb_status	cb_tokenizer_tokenize(const cb_tokenizer *tok, cb_tok_workspace *ws,
								  const char *text, size_t len,
								  cb_token_list **tokens, cb_error *err);

/* ---- decoding ----------------------------------------------------------- */

/*
 * tokenizer.decode(ids, skip_special_tokens=..., clean_up_tokenization_spaces=...)
 * *text is cb_malloc'ed and NUL-terminated (*text_len excludes the NUL).
 * An id outside 0 .. vocab_size-1 gives CB_ERR_INVALID.
 * fill-mask's token_str is decode of the single id.
 */
cb_status	cb_tokenizer_decode(const cb_tokenizer *tok, const int32_t *ids, size_t n_ids,
								bool skip_special_tokens, bool clean_up_tokenization_spaces,
								char **text, size_t *text_len, cb_error *err);

/* ---- vocabulary --------------------------------------------------------- */

/*
 * convert_ids_to_tokens(id): a NUL-terminated string inside the image (or a
 * static one for added tokens), valid UTF-8 without NUL (checked by build);
 * NULL when id is out of range.
 */
const char *cb_tokenizer_id_to_piece(const cb_tokenizer *tok, int32_t id, size_t *len);

/* convert_tokens_to_ids(piece): unknown strings give unk_id (3). */
int32_t		cb_tokenizer_piece_to_id(const cb_tokenizer *tok, const char *piece, size_t len);

/* id in all_special_ids (0-4, <s>, </s>, <mask>): what skip_special_tokens drops. */
bool		cb_tokenizer_is_special_id(const cb_tokenizer *tok, int32_t id);

#endif							/* CB_TOKENIZER_H */
