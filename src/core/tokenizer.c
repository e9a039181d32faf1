/*
 * tokenizer.c — the tokenizer image (build / open) and the CamemBERT layer:
 * added-token splitting, piece -> id mapping, truncation, pairs, decoding.
 */
#include "tokenizer.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "sp_model.h"
#include "utf8.h"

/* ------------------------------------------------------------------------- */
/* CamemBERT's added tokens (transformers' CamembertTokenizer.__init__). */

typedef struct added_token
{
	const char *str;
	uint32_t	len;
} added_token;

enum
{
	ADDED_S_NOTUSED = 0,
	ADDED_PAD,
	ADDED_S_END_NOTUSED,
	ADDED_UNK,
	ADDED_UNK_NOTUSED,
	ADDED_CLS,
	ADDED_SEP,
	ADDED_MASK,
	N_ADDED
};

static const added_token kAdded[N_ADDED] = {
	{"<s>NOTUSED", 10},
	{"<pad>", 5},
	{"</s>NOTUSED", 11},
	{"<unk>", 5},
	{"<unk>NOTUSED", 12},
	{"<s>", 3},
	{"</s>", 4},
	{"<mask>", 6},
};

static int32_t
added_id(const cb_tokenizer *tok, int k)
{
	switch (k)
	{
		case ADDED_CLS:
			return tok->cls_id;
		case ADDED_SEP:
			return tok->sep_id;
		case ADDED_MASK:
			return tok->mask_id;
		default:
			return k;			/* 0 .. 4 */
	}
}

/*
 * XLMRobertaTokenizer's added tokens are CamemBERT's without the NOTUSED ones
 * (fairseq_tokens_to_ids <s> 0, <pad> 1, </s> 2, <unk> 3, and <mask>).
 */
#define ADDED_ALL ((1u << N_ADDED) - 1)
#define ADDED_XLMR ((1u << ADDED_PAD) | (1u << ADDED_UNK) | (1u << ADDED_CLS) | (1u << ADDED_SEP) | \
					(1u << ADDED_MASK))

static inline uint32_t
added_set(cb_tok_layout layout)
{
	return layout == CB_TOK_LAYOUT_XLMR ? ADDED_XLMR : ADDED_ALL;
}

/* Index of the added token equal to s, or -1. */
static int
added_exact(cb_tok_layout layout, const char *s, size_t len)
{
	uint32_t	set = added_set(layout);

	if (len < 3 || s[0] != '<')
		return -1;
	for (int k = 0; k < N_ADDED; k++)
		if ((set >> k) & 1 && kAdded[k].len == len && memcmp(kAdded[k].str, s, len) == 0)
			return k;
	return -1;
}

/* Index of the longest added token that prefixes s, or -1 (s[0] == '<'). */
static int
added_prefix(cb_tok_layout layout, const char *s, size_t avail)
{
	int			best = -1;
	uint32_t	best_len = 0;
	uint32_t	set = added_set(layout);

	for (int k = 0; k < N_ADDED; k++)
	{
		uint32_t	l = kAdded[k].len;

		if (!((set >> k) & 1))
			continue;

		if (l <= avail && l > best_len && memcmp(kAdded[k].str, s, l) == 0)
		{
			best = k;
			best_len = l;
		}
	}
	return best;
}

/* ------------------------------------------------------------------------- */
/* The image */

#define IMAGE_MAGIC "CBTOKIMG"
#define IMAGE_VERSION 2
#define IMAGE_BYTE_ORDER 0x01020304u

#define FLAG_ADD_DUMMY_PREFIX 0x01u
#define FLAG_REMOVE_EXTRA_WS 0x02u
#define FLAG_ESCAPE_WS 0x04u
#define FLAG_HAS_CHARSMAP 0x08u
#define FLAG_HAS_USER_DEFINED 0x10u
#define FLAG_HAS_UNUSED 0x20u
#define FLAG_SPLIT_WORDS 0x40u
#define FLAG_UNIGRAM 0x80u		/* Viterbi over piece scores (unigram.h), not BPE merges */

typedef struct image_section
{
	uint64_t	off;
	uint64_t	len;			/* bytes */
} image_section;

typedef struct image_header
{
	char		magic[8];
	uint32_t	version;
	uint32_t	header_size;
	uint64_t	image_len;
	uint32_t	byte_order;
	uint32_t	flags;
	uint32_t	n_pieces;
	uint32_t	slot_capacity;
	int32_t		sp_unk_id;
	uint32_t	max_user_defined_len;
	int32_t		vocab_size;
	int32_t		pad_id;
	int32_t		cls_id;
	int32_t		sep_id;
	int32_t		unk_id;
	int32_t		mask_id;
	uint64_t	fingerprint;	/* FNV-1a 64 of the model file */
	image_section pieces;		/* cb_bpe_piece[n_pieces] */
	image_section slots;		/* cb_bpe_slot[slot_capacity] */
	image_section strings;		/* every piece string, each followed by a NUL */
	image_section trie;			/* uint32 darts-clone units */
	image_section pool;			/* charsmap replacement strings, NUL-terminated */
	image_section unk_surface;	/* NUL-terminated */
	uint8_t		first_byte[256];
	uint8_t		user_defined_first_byte[256];
	/* version 2: the id layout and the unigram trie */
	uint32_t	layout;			/* cb_tok_layout */
	uint32_t	trie_nodes;
	uint32_t	edge_capacity;
	float		min_score;
	float		max_score;
	uint32_t	reserved2;
	image_section node_piece;	/* int32[trie_nodes] */
	image_section edges;		/* cb_unigram_edge[edge_capacity] */
} image_header;

static size_t
align8(size_t x)
{
	return (x + 7) & ~(size_t) 7;
}

static const char kSpaceSymbol[3] = {'\xE2', '\x96', '\x81'};
static const char kDefaultUnkSurface[] = " \xE2\x81\x87 ";

/* Does s[0..len) contain "▁" at a byte offset >= 1? */
static bool
has_inner_space_symbol(const char *s, size_t len)
{
	for (size_t i = 1; i + 3 <= len; i++)
		if (memcmp(s + i, kSpaceSymbol, 3) == 0)
			return true;
	return false;
}

static cb_status
check_model(const cb_sp_model *m, cb_error *err)
{
	int			n_unknown = 0;
	size_t		bad;

	if (!m->has_trainer_spec)
		return cb_set_error(err, CB_ERR_FORMAT,
							"sentencepiece model: no trainer_spec (truncated or not a SentencePiece model?)");
	if (m->model_type != CB_SP_MODEL_BPE && m->model_type != CB_SP_MODEL_UNIGRAM)
		return cb_set_error(err, CB_ERR_UNSUPPORTED,
							"sentencepiece model: model_type %s is not supported (only BPE and UNIGRAM)",
							m->model_type == CB_SP_MODEL_WORD ? "WORD" : "CHAR");
	if (m->byte_fallback)
		return cb_set_error(err, CB_ERR_UNSUPPORTED,
							"sentencepiece model: byte_fallback is not supported");
	if (m->treat_whitespace_as_suffix)
		return cb_set_error(err, CB_ERR_UNSUPPORTED,
							"sentencepiece model: treat_whitespace_as_suffix is not supported");
	if (m->denormalizer_charsmap.len > 0)
		return cb_set_error(err, CB_ERR_UNSUPPORTED,
							"sentencepiece model: a denormalizer (denormalizer_spec.precompiled_charsmap) is not supported");
	if (m->n_pieces == 0)
		return cb_set_error(err, CB_ERR_FORMAT, "sentencepiece model: no pieces");
	for (size_t i = 0; i < m->n_pieces; i++)
	{
		const cb_sp_piece *p = &m->pieces[i];

		if (p->piece.len == 0)
			return cb_set_error(err, CB_ERR_FORMAT, "sentencepiece model: piece %zu is empty", i);
		if (p->piece.len > CB_SP_MAX_PIECE_BYTES)
			return cb_set_error(err, CB_ERR_LIMIT,
								"sentencepiece model: piece %zu is %zu bytes long (limit %d)",
								i, p->piece.len, CB_SP_MAX_PIECE_BYTES);
		/* pieces come out of camembert_tokens / camembert_decode as text */
		if (!cb_utf8_is_text(p->piece.data, p->piece.len, &bad))
			return p->piece.data[bad] == 0 ?
				cb_set_error(err, CB_ERR_FORMAT,
							 "sentencepiece model: piece %zu contains a NUL byte (at byte %zu of %zu)",
							 i, bad, p->piece.len) :
				cb_set_error(err, CB_ERR_FORMAT,
							 "sentencepiece model: piece %zu is not valid UTF-8 (byte 0x%02X at byte %zu of %zu)",
							 i, p->piece.data[bad], bad, p->piece.len);
		if (isnan(p->score))
			return cb_set_error(err, CB_ERR_FORMAT, "sentencepiece model: piece %zu has a NaN score", i);
		if (p->type == CB_SP_BYTE)
			return cb_set_error(err, CB_ERR_FORMAT,
								"sentencepiece model: byte piece %zu found although byte_fallback is false", i);
		if (p->type == CB_SP_UNKNOWN && ++n_unknown > 1)
			return cb_set_error(err, CB_ERR_FORMAT,
								"sentencepiece model: more than one unknown piece (piece %zu)", i);
		if ((p->type == CB_SP_UNKNOWN || p->type == CB_SP_CONTROL) &&
			cb_utf8_lead_len(p->piece.data[0]) >= p->piece.len)
			return cb_set_error(err, CB_ERR_UNSUPPORTED,
								"sentencepiece model: control/unknown piece %zu is a single character", i);
		if (i % 65536 == 65535)
			cb_check_interrupts();
	}
	if (n_unknown == 0)
		return cb_set_error(err, CB_ERR_FORMAT, "sentencepiece model: no unknown piece");
	/* decoding an unknown piece gives unk_surface */
	if (m->unk_surface.present && !cb_utf8_is_text(m->unk_surface.data, m->unk_surface.len, &bad))
		return cb_set_error(err, CB_ERR_FORMAT,
							"sentencepiece model: trainer_spec.unk_surface is not valid UTF-8 or contains a NUL byte (at byte %zu)",
							bad);
	return CB_OK;
}

/*
 * The charsmap's replacement strings become part of the normalized text,
 * whose bytes come out of camembert_tokens (an unknown piece is its own
 * text): every replacement that a match can produce must be valid UTF-8.
 * A match ends on a unit with a leaf, whose value (the pool offset) is in
 * the unit at (that unit's index ^ its offset): check the string of every
 * such unit, reachable or not (a superset of what matching can reach; value
 * units, bit 31 set, cannot be matched).  ok_from[v]: the string that starts
 * at pool offset v, up to its NUL (or the pool's end, where the image adds
 * one), is valid UTF-8; computed right to left in one pass.
 */
static cb_status
check_charsmap(const uint8_t *trie, size_t trie_bytes, const uint8_t *pool, size_t pool_len,
			   cb_error *err)
{
	size_t		units = trie_bytes / 4;
	uint8_t    *ok_from = cb_calloc(pool_len / 8 + 1, 1);
	cb_status	st = CB_OK;

	if (ok_from == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate %zu bytes", pool_len / 8 + 1);
	for (size_t v = pool_len; v-- > 0;)
	{
		size_t		k;
		bool		ok;

		if (pool[v] == 0)
			ok = true;
		else if (pool[v] < 0x80)
			ok = v + 1 == pool_len || (ok_from[(v + 1) / 8] >> ((v + 1) % 8)) & 1;
		else
			ok = cb_utf8_valid_sp(pool + v, pool_len - v, &k) &&
				(v + k == pool_len || (ok_from[(v + k) / 8] >> ((v + k) % 8)) & 1);
		if (ok)
			ok_from[v / 8] |= (uint8_t) (1u << (v % 8));
		if (v % 1048576 == 0)
			cb_check_interrupts();
	}
	for (size_t i = 0; i < units && st == CB_OK; i++)
	{
		uint32_t	u,
					value;
		size_t		node;

		memcpy(&u, trie + 4 * i, 4);
		if ((u >> 31) != 0 || ((u >> 8) & 1u) == 0)
			continue;
		node = i ^ (size_t) ((u >> 10) << ((u & (1u << 9)) >> 6));
		if (node >= units)
			continue;
		memcpy(&value, trie + 4 * node, 4);
		value &= (1u << 31) - 1u;
		if ((size_t) value < pool_len && !((ok_from[value / 8] >> (value % 8)) & 1))
			st = cb_set_error(err, CB_ERR_FORMAT,
							  "sentencepiece model: a precompiled_charsmap replacement (at pool offset %u) is not valid UTF-8",
							  value);
		if (i % 1048576 == 1048575)
			cb_check_interrupts();
	}
	cb_free(ok_from);
	return st;
}

cb_status
cb_tokenizer_build(const uint8_t *model_bytes, size_t len,
				   void **image_out, size_t *image_len_out, cb_error *err)
{
	return cb_tokenizer_build_layout(model_bytes, len, CB_TOK_LAYOUT_CAMEMBERT, image_out, image_len_out, err);
}

cb_status
cb_tokenizer_build_layout(const uint8_t *model_bytes, size_t len, cb_tok_layout layout,
						  void **image_out, size_t *image_len_out, cb_error *err)
{
	cb_sp_model m;
	cb_status	st;
	const uint8_t *trie = NULL,
			   *pool = NULL;
	size_t		trie_bytes = 0,
				pool_len = 0;
	size_t		strings_len = 0;
	size_t		cap = 16;
	size_t		off;
	uint8_t    *img = NULL;
	image_header *h;
	cb_bpe_piece *pieces;
	char	   *strings;
	const uint8_t *unk_surface;
	size_t		unk_surface_len;
	bool		has_ud = false,
				has_unused = false,
				inner_space = false;
	uint32_t	max_ud = 0;
	int32_t		sp_unk = -1;

	if (image_out == NULL || image_len_out == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_build: NULL output");
	*image_out = NULL;
	*image_len_out = 0;

	st = cb_sp_model_parse(model_bytes, len, &m, err);
	if (st != CB_OK)
		return st;
	st = check_model(&m, err);
	if (st != CB_OK)
		goto done;

	if (m.precompiled_charsmap.len > 0)
	{
		st = cb_charsmap_split(m.precompiled_charsmap.data, m.precompiled_charsmap.len,
							   &trie, &trie_bytes, &pool, &pool_len, err);
		if (st == CB_OK)
			st = check_charsmap(trie, trie_bytes, pool, pool_len, err);
		if (st != CB_OK)
			goto done;
	}
	if (m.unk_surface.present)
	{
		unk_surface = m.unk_surface.data;
		unk_surface_len = m.unk_surface.len;
	}
	else
	{
		unk_surface = (const uint8_t *) kDefaultUnkSurface;
		unk_surface_len = strlen(kDefaultUnkSurface);
	}

	for (size_t i = 0; i < m.n_pieces; i++)
		strings_len += m.pieces[i].piece.len + 1;	/* <= 1 GiB + 16 Mi: no overflow */
	if (strings_len > UINT32_MAX)
	{
		st = cb_set_error(err, CB_ERR_LIMIT, "sentencepiece model: piece strings too large");
		goto done;
	}
	while (cap < 2 * m.n_pieces)
		cap *= 2;

	/* Layout. */
	image_section s_pieces,
				s_slots,
				s_strings,
				s_trie,
				s_pool,
				s_unk;

	off = align8(sizeof(image_header));
	s_pieces.off = off;
	s_pieces.len = m.n_pieces * sizeof(cb_bpe_piece);
	off = align8(off + s_pieces.len);
	s_slots.off = off;
	s_slots.len = cap * sizeof(cb_bpe_slot);
	off = align8(off + s_slots.len);
	s_strings.off = off;
	s_strings.len = strings_len;
	off = align8(off + s_strings.len);
	s_trie.off = off;
	s_trie.len = (trie_bytes / 4) * 4;
	off = align8(off + s_trie.len);
	s_pool.off = off;
	s_pool.len = trie != NULL ? pool_len + 1 : 0;
	off = align8(off + s_pool.len);
	s_unk.off = off;
	s_unk.len = unk_surface_len + 1;
	off = align8(off + s_unk.len);

	img = cb_calloc(1, off);
	if (img == NULL)
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate a %zu-byte image", off);
		goto done;
	}
	h = (image_header *) img;
	pieces = (cb_bpe_piece *) (img + s_pieces.off);
	strings = (char *) (img + s_strings.off);

	/* Pieces and strings. */
	{
		size_t		so = 0;

		for (size_t i = 0; i < m.n_pieces; i++)
		{
			const cb_sp_piece *sp = &m.pieces[i];
			cb_bpe_piece *p = &pieces[i];

			p->str_off = (uint32_t) so;
			p->str_len = (uint32_t) sp->piece.len;
			p->score = sp->score;
			p->type = (uint8_t) sp->type;
			p->flags = 0;
			memcpy(strings + so, sp->piece.data, sp->piece.len);
			strings[so + sp->piece.len] = '\0';
			so += sp->piece.len + 1;

			if (sp->type == CB_SP_NORMAL || sp->type == CB_SP_USER_DEFINED || sp->type == CB_SP_UNUSED)
			{
				p->flags |= CB_BPE_MERGEABLE;
				if (has_inner_space_symbol((const char *) sp->piece.data, sp->piece.len))
					inner_space = true;
			}
			if (added_exact(layout, (const char *) sp->piece.data, sp->piece.len) >= 0)
				p->flags |= CB_BPE_ADDED_TOKEN | CB_BPE_SPECIAL_STRING;
			if (sp->type == CB_SP_USER_DEFINED)
			{
				has_ud = true;
				if (sp->piece.len > max_ud)
					max_ud = (uint32_t) sp->piece.len;
				h->user_defined_first_byte[sp->piece.data[0]] = 1;
			}
			if (sp->type == CB_SP_UNUSED)
				has_unused = true;
			if (sp->type == CB_SP_UNKNOWN)
				sp_unk = (int32_t) i;
		}
	}
	st = cb_bpe_fill_slots(pieces, m.n_pieces, strings,
						   (cb_bpe_slot *) (img + s_slots.off), cap, err);
	if (st != CB_OK)
		goto done;

	if (trie != NULL)
	{
		memcpy(img + s_trie.off, trie, s_trie.len);
		memcpy(img + s_pool.off, pool, pool_len);
		img[s_pool.off + pool_len] = '\0';
		cb_charsmap_first_bytes((const uint32_t *) (img + s_trie.off), s_trie.len / 4, h->first_byte);
	}
	memcpy(img + s_unk.off, unk_surface, unk_surface_len);
	img[s_unk.off + unk_surface_len] = '\0';

	memcpy(h->magic, IMAGE_MAGIC, 8);
	h->version = IMAGE_VERSION;
	h->header_size = sizeof(image_header);
	h->image_len = off;
	h->byte_order = IMAGE_BYTE_ORDER;
	h->flags = (m.add_dummy_prefix ? FLAG_ADD_DUMMY_PREFIX : 0) |
		(m.remove_extra_whitespaces ? FLAG_REMOVE_EXTRA_WS : 0) |
		(m.escape_whitespaces ? FLAG_ESCAPE_WS : 0) |
		(trie != NULL ? FLAG_HAS_CHARSMAP : 0) |
		(has_ud ? FLAG_HAS_USER_DEFINED : 0) |
		(has_unused ? FLAG_HAS_UNUSED : 0) |
		(!has_unused && !inner_space ? FLAG_SPLIT_WORDS : 0);
	h->n_pieces = (uint32_t) m.n_pieces;
	h->slot_capacity = (uint32_t) cap;
	h->sp_unk_id = sp_unk;
	h->max_user_defined_len = max_ud;
	h->fingerprint = 0xCBF29CE484222325ull;
	for (size_t i = 0; i < len; i++)
		h->fingerprint = (h->fingerprint ^ model_bytes[i]) * 0x100000001B3ull;
	h->pieces = s_pieces;
	h->slots = s_slots;
	h->strings = s_strings;
	h->trie = s_trie;
	h->pool = s_pool;
	h->unk_surface = s_unk;

	/* CamemBERT ids. */
	{
		cb_bpe_vocab v;
		int32_t		sp_bos,
					sp_eos,
					sp_mask;

		memset(&v, 0, sizeof(v));
		v.pieces = pieces;
		v.n_pieces = m.n_pieces;
		v.strings = strings;
		v.strings_len = strings_len;
		v.slots = (const cb_bpe_slot *) (img + s_slots.off);
		v.slot_mask = (uint32_t) cap - 1;
		sp_bos = cb_bpe_find(&v, "<s>", 3);
		sp_eos = cb_bpe_find(&v, "</s>", 4);
		sp_mask = cb_bpe_find(&v, "<mask>", 6);
		h->layout = (uint32_t) layout;
		if (layout == CB_TOK_LAYOUT_XLMR)
		{
			/*
			 * XLMRobertaTokenizer: fairseq ids <s> 0, <pad> 1, </s> 2, <unk> 3,
			 * SentencePiece id i -> i + 1 (i >= 3), <mask> last.
			 */
			if (m.n_pieces < 3 || (size_t) m.n_pieces + 2 > INT32_MAX)
			{
				st = cb_set_error(err, CB_ERR_UNSUPPORTED,
								  "sentencepiece model: %zu pieces: XLM-RoBERTa needs <unk>, <s>, </s> first",
								  m.n_pieces);
				goto done;
			}
			h->cls_id = 0;
			h->pad_id = CB_TOK_ID_PAD;
			h->sep_id = 2;
			h->unk_id = CB_TOK_ID_UNK;
			h->mask_id = (int32_t) m.n_pieces + 1;
			h->vocab_size = (int32_t) m.n_pieces + 2;
		}
		else if (sp_bos <= 0 || sp_eos <= 0)
		{
			st = cb_set_error(err, CB_ERR_UNSUPPORTED,
							  "sentencepiece model: CamemBERT needs \"<s>\" and \"</s>\" pieces (not at id 0)");
			goto done;
		}
		if ((size_t) m.n_pieces + 5 > INT32_MAX)
		{
			st = cb_set_error(err, CB_ERR_LIMIT, "sentencepiece model: too many pieces");
			goto done;
		}
		if (layout != CB_TOK_LAYOUT_XLMR)
		{
		h->pad_id = CB_TOK_ID_PAD;
		h->unk_id = CB_TOK_ID_UNK;
		h->cls_id = sp_bos + CB_TOK_FAIRSEQ_OFFSET;
		h->sep_id = sp_eos + CB_TOK_FAIRSEQ_OFFSET;
		if (sp_mask > 0)
		{
			h->mask_id = sp_mask + CB_TOK_FAIRSEQ_OFFSET;
			h->vocab_size = (int32_t) m.n_pieces + CB_TOK_FAIRSEQ_OFFSET;
		}
		else
		{
			h->mask_id = (int32_t) m.n_pieces + CB_TOK_FAIRSEQ_OFFSET;
			h->vocab_size = (int32_t) m.n_pieces + CB_TOK_FAIRSEQ_OFFSET + 1;
		}
		}

		/* Unigram: the pieces' trie and the score range, appended to the image. */
		if (m.model_type == CB_SP_MODEL_UNIGRAM)
		{
			uint32_t	nodes,
						ecap;
			size_t		np_off,
						e_off,
						new_off;
			uint8_t    *grown;
			float		min_score = FLT_MAX,
						max_score = FLT_MIN;	/* SentencePiece's initial values */

			if ((st = cb_unigram_trie_size(&v, &nodes, &ecap, err)) != CB_OK)
				goto done;
			np_off = off;
			e_off = align8(np_off + (size_t) nodes * sizeof(int32_t));
			new_off = align8(e_off + (size_t) ecap * sizeof(cb_unigram_edge));
			grown = cb_realloc(img, new_off);
			if (grown == NULL)
			{
				st = cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate a %zu-byte image", new_off);
				goto done;
			}
			img = grown;
			memset(img + off, 0, new_off - off);
			h = (image_header *) img;
			v.pieces = (const cb_bpe_piece *) (img + s_pieces.off);
			v.strings = (const char *) (img + s_strings.off);
			v.slots = (const cb_bpe_slot *) (img + s_slots.off);
			cb_unigram_trie_fill(&v, (int32_t *) (img + np_off), nodes, (cb_unigram_edge *) (img + e_off), ecap);
			for (size_t i = 0; i < m.n_pieces; i++)
				if (m.pieces[i].type == CB_SP_NORMAL)
				{
					min_score = fminf(min_score, m.pieces[i].score);
					max_score = fmaxf(max_score, m.pieces[i].score);
				}
			h->flags |= FLAG_UNIGRAM;
			h->trie_nodes = nodes;
			h->edge_capacity = ecap;
			h->min_score = min_score;
			h->max_score = max_score;
			h->node_piece.off = np_off;
			h->node_piece.len = (size_t) nodes * sizeof(int32_t);
			h->edges.off = e_off;
			h->edges.len = (size_t) ecap * sizeof(cb_unigram_edge);
			h->image_len = new_off;
			off = new_off;
		}
	}

	/* Self-check: the image must open. */
	{
		cb_tokenizer t;

		st = cb_tokenizer_open(img, off, &t, err);
		if (st != CB_OK)
			goto done;
	}
	*image_out = img;
	*image_len_out = off;
	img = NULL;
	st = CB_OK;

done:
	cb_free(img);
	cb_sp_model_free(&m);
	return st;
}

static bool
section_ok(const image_section *s, size_t image_len, size_t align)
{
	return s->off <= image_len && s->len <= image_len - s->off && s->off % align == 0;
}

static cb_status
bad_image(cb_error *err, const char *what)
{
	return cb_set_error(err, CB_ERR_FORMAT, "tokenizer image: %s", what);
}

cb_status
cb_tokenizer_open(const void *image, size_t image_len, cb_tokenizer *tok, cb_error *err)
{
	const uint8_t *img = image;
	const image_header *h = image;
	const cb_bpe_piece *pieces;
	const cb_bpe_slot *slots;
	const char *strings;
	size_t		n,
				cap,
				used = 0;

	if (image == NULL || tok == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_open: NULL argument");
	memset(tok, 0, sizeof(*tok));
	if (cb_bbpe_is_image(image, image_len))
	{
		cb_status	st = cb_bbpe_open(image, image_len, &tok->bbpe, err);

		if (st != CB_OK)
			return st;
		tok->kind = CB_TOK_KIND_BYTE_BPE;
		tok->image = img;
		tok->image_len = image_len;
		tok->vocab_size = tok->bbpe.id_limit;
		tok->sp_vocab_size = tok->bbpe.vocab_size;
		tok->pad_id = tok->bbpe.pad_id;
		tok->cls_id = tok->bbpe.cls_id;
		tok->sep_id = tok->bbpe.sep_id;
		tok->unk_id = tok->bbpe.unk_id;
		tok->mask_id = tok->bbpe.mask_id;
		return CB_OK;
	}
	if (((uintptr_t) image & 7) != 0)
		return cb_set_error(err, CB_ERR_INVALID, "tokenizer image: not 8-byte aligned");
	if (image_len < sizeof(image_header))
		return bad_image(err, "shorter than its header");
	if (memcmp(h->magic, IMAGE_MAGIC, 8) != 0)
		return bad_image(err, "bad magic");
	if (h->version != IMAGE_VERSION)
		return cb_set_error(err, CB_ERR_UNSUPPORTED, "tokenizer image: version %u, expected %u",
							h->version, IMAGE_VERSION);
	if (h->byte_order != IMAGE_BYTE_ORDER)
		return cb_set_error(err, CB_ERR_UNSUPPORTED, "tokenizer image: built on a host of another byte order");
	if (h->header_size != sizeof(image_header) || h->image_len != image_len)
		return bad_image(err, "header size or image length mismatch");
	n = h->n_pieces;
	cap = h->slot_capacity;
	if (n == 0 || n > CB_SP_MAX_PIECES)
		return bad_image(err, "bad piece count");
	if (cap <= n || (cap & (cap - 1)) != 0)
		return bad_image(err, "bad hash capacity");
	if (!section_ok(&h->pieces, image_len, 8) || h->pieces.len != n * sizeof(cb_bpe_piece) ||
		!section_ok(&h->slots, image_len, 8) || h->slots.len != cap * sizeof(cb_bpe_slot) ||
		!section_ok(&h->strings, image_len, 1) || h->strings.len == 0 ||
		!section_ok(&h->trie, image_len, 4) || h->trie.len % 4 != 0 ||
		!section_ok(&h->pool, image_len, 1) ||
		!section_ok(&h->unk_surface, image_len, 1) || h->unk_surface.len == 0)
		return bad_image(err, "a section is out of bounds");
	strings = (const char *) img + h->strings.off;
	if (strings[h->strings.len - 1] != '\0' || img[h->unk_surface.off + h->unk_surface.len - 1] != '\0')
		return bad_image(err, "unterminated strings");
	if ((h->flags & FLAG_HAS_CHARSMAP) &&
		(h->trie.len == 0 || h->pool.len == 0 || img[h->pool.off + h->pool.len - 1] != '\0'))
		return bad_image(err, "bad charsmap sections");
	if (h->sp_unk_id < 0 || (size_t) h->sp_unk_id >= n)
		return bad_image(err, "bad unknown id");
	if (h->layout == CB_TOK_LAYOUT_XLMR)
	{
		if (n < 3 || h->vocab_size != (int32_t) n + 2 || h->cls_id != 0 || h->sep_id != 2 ||
			h->mask_id != (int32_t) n + 1 || h->pad_id != CB_TOK_ID_PAD || h->unk_id != CB_TOK_ID_UNK)
			return bad_image(err, "bad special ids");
	}
	else if (h->layout != CB_TOK_LAYOUT_CAMEMBERT ||
			 h->vocab_size < (int32_t) n || h->vocab_size - (int32_t) n > 5 ||
			 h->cls_id < 5 || h->cls_id >= h->vocab_size || h->sep_id < 5 || h->sep_id >= h->vocab_size ||
			 h->mask_id < 5 || h->mask_id >= h->vocab_size ||
			 h->pad_id != CB_TOK_ID_PAD || h->unk_id != CB_TOK_ID_UNK)
		return bad_image(err, "bad special ids");
	if (h->flags & FLAG_UNIGRAM)
	{
		if (!section_ok(&h->node_piece, image_len, 8) || h->node_piece.len != (uint64_t) h->trie_nodes * 4 ||
			!section_ok(&h->edges, image_len, 8) ||
			h->edges.len != (uint64_t) h->edge_capacity * sizeof(cb_unigram_edge) ||
			!cb_unigram_trie_valid((const int32_t *) (img + h->node_piece.off), h->trie_nodes,
								   (const cb_unigram_edge *) (img + h->edges.off), h->edge_capacity, n) ||
			isnan(h->min_score) || isnan(h->max_score))
			return bad_image(err, "bad unigram trie");
		tok->unigram.node_piece = (const int32_t *) (img + h->node_piece.off);
		tok->unigram.n_nodes = h->trie_nodes;
		tok->unigram.edges = (const cb_unigram_edge *) (img + h->edges.off);
		tok->unigram.edge_mask = h->edge_capacity - 1;
		tok->unigram.min_score = h->min_score;
		tok->unigram.max_score = h->max_score;
		tok->kind = CB_TOK_KIND_SP_UNIGRAM;
	}
	tok->layout = (cb_tok_layout) h->layout;
	tok->fairseq_offset = h->layout == CB_TOK_LAYOUT_XLMR ? 1 : CB_TOK_FAIRSEQ_OFFSET;

	pieces = (const cb_bpe_piece *) (img + h->pieces.off);
	for (size_t i = 0; i < n; i++)
	{
		const cb_bpe_piece *p = &pieces[i];

		/* BPE's spans (uint16) rely on the length limit */
		if (p->str_len == 0 || p->str_len > CB_SP_MAX_PIECE_BYTES ||
			(size_t) p->str_off + p->str_len >= h->strings.len ||
			strings[p->str_off + p->str_len] != '\0' ||
			p->type < CB_SP_NORMAL || p->type > CB_SP_UNUSED)
			return bad_image(err, "bad piece entry");
	}
	if (pieces[h->sp_unk_id].type != CB_SP_UNKNOWN)
		return bad_image(err, "the unknown id is not an unknown piece");
	slots = (const cb_bpe_slot *) (img + h->slots.off);
	for (size_t i = 0; i < cap; i++)
	{
		if (slots[i].index1 > n)
			return bad_image(err, "bad hash slot");
		used += slots[i].index1 != 0;
	}
	if (used >= cap)
		return bad_image(err, "full hash table");

	tok->image = img;
	tok->image_len = image_len;
	tok->vocab_size = h->vocab_size;
	tok->sp_vocab_size = (int32_t) n;
	tok->pad_id = h->pad_id;
	tok->cls_id = h->cls_id;
	tok->sep_id = h->sep_id;
	tok->unk_id = h->unk_id;
	tok->mask_id = h->mask_id;

	tok->vocab.pieces = pieces;
	tok->vocab.n_pieces = n;
	tok->vocab.strings = strings;
	tok->vocab.strings_len = h->strings.len;
	tok->vocab.slots = slots;
	tok->vocab.slot_mask = (uint32_t) (cap - 1);
	tok->vocab.unk_id = h->sp_unk_id;
	tok->vocab.has_user_defined = (h->flags & FLAG_HAS_USER_DEFINED) != 0;
	tok->vocab.has_unused = (h->flags & FLAG_HAS_UNUSED) != 0;
	tok->vocab.split_words = (h->flags & FLAG_SPLIT_WORDS) != 0 && !tok->vocab.has_unused;
	tok->vocab.max_user_defined_len = h->max_user_defined_len;
	tok->vocab.user_defined_first_byte = h->user_defined_first_byte;
	tok->vocab.fingerprint = h->fingerprint;

	if (h->flags & FLAG_HAS_CHARSMAP)
	{
		tok->normalizer.trie = (const uint32_t *) (img + h->trie.off);
		tok->normalizer.trie_units = h->trie.len / 4;
		tok->normalizer.pool = (const char *) img + h->pool.off;
		tok->normalizer.pool_len = h->pool.len;
	}
	tok->normalizer.first_byte = h->first_byte;
	tok->normalizer.add_dummy_prefix = (h->flags & FLAG_ADD_DUMMY_PREFIX) != 0;
	tok->normalizer.remove_extra_whitespaces = (h->flags & FLAG_REMOVE_EXTRA_WS) != 0;
	tok->normalizer.escape_whitespaces = (h->flags & FLAG_ESCAPE_WS) != 0;
	tok->normalizer.user_defined = tok->vocab.has_user_defined ? &tok->vocab : NULL;
	tok->unk_surface = (const char *) img + h->unk_surface.off;
	tok->unk_surface_len = h->unk_surface.len - 1;
	return CB_OK;
}

/* ------------------------------------------------------------------------- */
/* Workspace */

typedef struct id_vec
{
	int32_t    *v;
	size_t		n;
	size_t		cap;
} id_vec;

typedef struct piece_ref
{
	uint32_t	off;			/* into the token byte store */
	uint32_t	len;
} piece_ref;

/* Normalized text handed to BPE at a time: first, then at most (doubling). */
#define WINDOW_FIRST 4096
#define WINDOW_MAX 65536

struct cb_tok_workspace
{
	cb_norm_buf norm;			/* normalized text not yet encoded */
	cb_bpe_work bpe;
	cb_bbpe_work bbpe;			/* byte-level BPE */
	cb_unigram_work unigram;
	id_vec		ids;
	id_vec		ids_b;
	cb_norm_buf run;			/* a run of unknown pieces not yet ended */
	/* tokenize(): the pieces' bytes and where each one is */
	cb_norm_buf tok_bytes;
	piece_ref  *refs;
	size_t		n_refs;
	size_t		refs_cap;
	size_t		window_max;		/* 0: WINDOW_MAX */
};

cb_tok_workspace *
cb_tok_workspace_create(void)
{
	return cb_calloc(1, sizeof(cb_tok_workspace));
}

static void
free_scratch(cb_tok_workspace *ws)
{
	cb_norm_buf_free(&ws->norm);
	cb_bpe_work_free_scratch(&ws->bpe);
	cb_bbpe_work_free_scratch(&ws->bbpe);
	cb_unigram_work_free(&ws->unigram);
	cb_free(ws->ids.v);
	cb_free(ws->ids_b.v);
	memset(&ws->ids, 0, sizeof(ws->ids));
	memset(&ws->ids_b, 0, sizeof(ws->ids_b));
	cb_norm_buf_free(&ws->run);
	cb_norm_buf_free(&ws->tok_bytes);
	cb_free(ws->refs);
	ws->refs = NULL;
	ws->n_refs = 0;
	ws->refs_cap = 0;
}

void
cb_tok_workspace_destroy(cb_tok_workspace *ws)
{
	if (ws == NULL)
		return;
	free_scratch(ws);
	cb_bpe_work_free(&ws->bpe);
	cb_bbpe_work_free(&ws->bbpe);
	cb_free(ws);
}

size_t
cb_tok_workspace_scratch_bytes(const cb_tok_workspace *ws)
{
	if (ws == NULL)
		return 0;
	return ws->norm.cap + cb_bpe_work_scratch_bytes(&ws->bpe) + cb_bbpe_work_scratch_bytes(&ws->bbpe) +
		cb_unigram_work_scratch_bytes(&ws->unigram) +
		(ws->ids.cap + ws->ids_b.cap) * sizeof(int32_t) + ws->run.cap +
		ws->tok_bytes.cap + ws->refs_cap * sizeof(piece_ref);
}

bool
cb_tok_workspace_trim(cb_tok_workspace *ws, size_t keep)
{
	if (ws == NULL || cb_tok_workspace_scratch_bytes(ws) <= keep)
		return false;
	free_scratch(ws);
	return true;
}

void
cb_tok_workspace_set_window(cb_tok_workspace *ws, size_t bytes)
{
	ws->window_max = bytes;
}

static inline cb_status
ids_reserve(id_vec *v, size_t extra, cb_error *err)
{
	if (v->n + extra <= v->cap)
		return CB_OK;
	return cb_grow_array((void **) &v->v, &v->cap, v->n + extra, sizeof(int32_t), "tokenizer", err);
}

/* Record one piece string for tokenize(). */
static cb_status
add_piece_string(cb_tok_workspace *ws, const char *s, size_t len, cb_error *err)
{
	cb_status	st;

	if ((st = cb_grow_array((void **) &ws->refs, &ws->refs_cap, ws->n_refs + 1, sizeof(piece_ref), "tokenizer", err)) != CB_OK)
		return st;
	if ((st = cb_norm_buf_reserve(&ws->tok_bytes, len + 1, err)) != CB_OK)
		return st;
	if (ws->tok_bytes.len + len + 1 > UINT32_MAX)
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: token strings too large");
	ws->refs[ws->n_refs].off = (uint32_t) ws->tok_bytes.len;
	ws->refs[ws->n_refs].len = (uint32_t) len;
	ws->n_refs++;
	memcpy(ws->tok_bytes.data + ws->tok_bytes.len, s, len);
	ws->tok_bytes.len += len;
	ws->tok_bytes.data[ws->tok_bytes.len++] = '\0';
	return CB_OK;
}

/* ------------------------------------------------------------------------- */
/* Encoding */

/* convert_tokens_to_ids for one piece string. */
static int32_t
id_of_string(const cb_tokenizer *tok, const char *s, size_t len)
{
	int			k = added_exact(tok->layout, s, len);
	int32_t		sp;

	if (k >= 0)
		return added_id(tok, k);
	sp = cb_bpe_find(&tok->vocab, s, len);
	if (sp < 0)
		sp = tok->vocab.unk_id;
	return sp == 0 ? CB_TOK_ID_UNK : sp + tok->fairseq_offset;
}

/*
 * Where the pieces of one text go.  A piece is final once the next one is
 * known not to be unknown (a run of unknown pieces is one piece), so the
 * count only grows by final pieces, and stopping at stop_at gives the same
 * first pieces as encoding everything.
 */
typedef struct encode_ctx
{
	const cb_tokenizer *tok;
	cb_tok_workspace *ws;
	id_vec	   *out;			/* NULL: count only */
	bool		want_strings;	/* tokenize(): the pieces' strings too */
	size_t		count;			/* final pieces so far */
	size_t		stop_at;		/* 0: never */
	bool		stopped;
	const char *norm;			/* the normalized text the BPE offsets refer to */
	bool		run_open;		/* ws->run holds a run of unknown pieces */
	bool		run_long;		/* ... longer than any piece: its bytes were dropped */
} encode_ctx;

static inline cb_status
emit_piece(encode_ctx *c, int32_t id, const char *s, size_t len, cb_error *err)
{
	cb_status	st;

	if (c->out != NULL)
	{
		if (c->out->n == c->out->cap && (st = ids_reserve(c->out, 1, err)) != CB_OK)
			return st;
		c->out->v[c->out->n++] = id;
	}
	if (c->want_strings && (st = add_piece_string(c->ws, s, len, err)) != CB_OK)
		return st;
	if (++c->count == c->stop_at)
		c->stopped = true;
	return CB_OK;
}

/* A run of unknown pieces ends: it is one piece (PopulateSentencePieceText). */
static cb_status
end_run(encode_ctx *c, cb_error *err)
{
	cb_norm_buf *run = &c->ws->run;
	int32_t		id;

	if (!c->run_open)
		return CB_OK;
	c->run_open = false;
	/* longer than CB_SP_MAX_PIECE_BYTES: neither a piece nor an added token */
	if (c->run_long)
		id = c->tok->vocab.unk_id == 0 ? CB_TOK_ID_UNK : c->tok->vocab.unk_id + c->tok->fairseq_offset;
	else
		id = id_of_string(c->tok, run->data, run->len);
	c->run_long = false;
	return emit_piece(c, id, run->data, run->len, err);
}

/* cb_bpe_flush_fn: map SentencePiece pieces to CamemBERT ids. */
static cb_status
map_pieces(void *arg, const cb_bpe_token *t, size_t n, bool *stop, cb_error *err)
{
	encode_ctx *c = arg;
	const cb_tokenizer *tok = c->tok;
	const char *norm = c->norm;
	cb_status	st;

	for (size_t i = 0; i < n && !c->stopped; i++)
	{
		const cb_bpe_piece *p = &tok->vocab.pieces[t[i].id];
		int32_t		id;

		if (p->type == CB_SP_UNKNOWN)
		{
			cb_norm_buf *run = &c->ws->run;

			if (!c->run_open)
				run->len = 0;
			c->run_open = true;
			if (c->run_long)
				continue;
			if (!c->want_strings && run->len + t[i].len > CB_SP_MAX_PIECE_BYTES)
			{
				c->run_long = true;
				continue;
			}
			if ((st = cb_norm_buf_reserve(run, t[i].len, err)) != CB_OK)
				return st;
			memcpy(run->data + run->len, norm + t[i].off, t[i].len);
			run->len += t[i].len;
			continue;
		}
		if (c->run_open)
		{
			if ((st = end_run(c, err)) != CB_OK)
				return st;
			if (c->stopped)
				break;
		}
		if (p->flags & CB_BPE_ADDED_TOKEN)
			id = added_id(tok, added_exact(tok->layout, norm + t[i].off, t[i].len));
		else
			id = t[i].id == 0 ? CB_TOK_ID_UNK : t[i].id + tok->fairseq_offset;
		if ((st = emit_piece(c, id, norm + t[i].off, t[i].len, err)) != CB_OK)
			return st;
	}
	*stop = c->stopped;
	cb_check_interrupts();
	return CB_OK;
}

static inline bool
is_space_symbol(const char *s)
{
	return memcmp(s, kSpaceSymbol, 3) == 0;
}

/*
 * SentencePiece-encode one chunk (no added tokens inside) and append its
 * pieces.  The text is normalized a window at a time; when no merge can
 * cross a "▁" (split_words), the words before the last "▁" are encoded and
 * dropped, so only about a window plus the longest word is ever held
 * (a trailing run of "▁" waits: it goes if the text ends there).
 */
static cb_status
encode_chunk(const cb_tokenizer *tok, cb_tok_workspace *ws, const char *text, size_t len,
			 encode_ctx *c, cb_error *err)
{
	const cb_normalizer *nz = &tok->normalizer;
	cb_norm_buf *nb = &ws->norm;
	cb_norm_state ns;
	bool		split = tok->vocab.split_words;
	bool		hold_run = nz->remove_extra_whitespaces && nz->escape_whitespaces;
	size_t		window_max = ws->window_max ? ws->window_max : WINDOW_MAX;
	size_t		window = window_max < WINDOW_FIRST ? window_max : WINDOW_FIRST;
	size_t		last_ws = 0;	/* a "▁" at or after the start of nb (0: none known) */
	size_t		run_start = 0;	/* where nb's trailing run of "▁" starts */
	cb_status	st;

	memset(&ns, 0, sizeof(ns));
	nb->len = 0;
	c->run_open = false;
	c->run_long = false;
	while (!ns.done)
	{
		size_t		before = nb->len;
		size_t		cut;
		bool		stopped;

		st = cb_normalize_step(nz, text, len, &ns, nb, split ? nb->len + window : SIZE_MAX, err);
		if (st != CB_OK)
			return st;
		if (ns.done)
			cut = nb->len;
		else
		{
			/* the last "▁" (a word's start) and the trailing run of them, from the new bytes */
			size_t		p = nb->len;

			while (p >= before + 3 && is_space_symbol(nb->data + p - 3))
				p -= 3;
			if (p != before)
				run_start = p;
			for (size_t q = nb->len; q >= before + 3 && q >= 3; q--)
			{
				if ((uint8_t) nb->data[q - 3] == 0xE2 && is_space_symbol(nb->data + q - 3))
				{
					last_ws = q - 3;
					break;
				}
			}
			cut = hold_run && run_start < nb->len ? run_start : last_ws;
			if (window < window_max)
				window = window * 2 < window_max ? window * 2 : window_max;
			if (cut == 0)
			{
				cb_check_interrupts();	/* a round is at most a window */
				continue;		/* one word so far: read on */
			}
		}
		c->norm = nb->data;
		if (tok->kind == CB_TOK_KIND_SP_UNIGRAM)
			st = cb_unigram_encode(&tok->unigram, &tok->vocab, &ws->unigram, nb->data, cut, map_pieces, c,
								   &stopped, err);
		else
			st = cb_bpe_encode(&tok->vocab, &ws->bpe, nb->data, cut, map_pieces, c, &stopped, err);
		if (st != CB_OK || stopped)
			return st;
		if (nb->len > cut)
			memmove(nb->data, nb->data + cut, nb->len - cut);
		nb->len -= cut;
		last_ws = last_ws >= cut ? last_ws - cut : 0;
		run_start = run_start >= cut ? run_start - cut : 0;
	}
	return end_run(c, err);
}

/* cb_bbpe_emit_fn: byte-level BPE pieces into the context. */
static cb_status
bbpe_emit(void *arg, int32_t id, const char *piece, size_t len, bool *stop, cb_error *err)
{
	encode_ctx *c = arg;
	cb_status	st = emit_piece(c, id, piece, len, err);

	*stop = c->stopped;
	return st;
}

/* tokenize() + convert_tokens_to_ids() of one text, appended to the context's output. */
static cb_status
encode_text(const cb_tokenizer *tok, cb_tok_workspace *ws, const char *text, size_t len,
			encode_ctx *c, cb_error *err)
{
	cb_status	st;
	size_t		start = 0;
	size_t		since_check = 0;

	if (text == NULL && len > 0)
		return cb_set_error(err, CB_ERR_INVALID, "tokenizer: NULL text");
	if (len > CB_TOK_MAX_TEXT_BYTES)
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: text of %zu bytes is over the %zu-byte limit",
							len, CB_TOK_MAX_TEXT_BYTES);
	if (tok->kind == CB_TOK_KIND_BYTE_BPE)
		return cb_bbpe_encode(&tok->bbpe, &ws->bbpe, text, len, bbpe_emit, c, NULL, err);

	/* Split on the added tokens (leftmost, then longest), a chunk at a time. */
	while (!c->stopped)
	{
		size_t		pos = start;
		size_t		chunk_len;
		int			k = -1;

		while (pos < len)
		{
			const char *lt = memchr(text + pos, '<', len - pos);

			if (lt == NULL)
			{
				pos = len;
				break;
			}
			pos = (size_t) (lt - text);
			k = added_prefix(tok->layout, text + pos, len - pos);
			if (k >= 0)
				break;
			pos++;
			if (++since_check >= 65536)
			{
				since_check = 0;
				cb_check_interrupts();
			}
		}
		chunk_len = pos - start;
		/* <mask> has lstrip=True: it eats the whitespace on its left. */
		if (k == ADDED_MASK)
			chunk_len = cb_py_rstrip_len(text + start, chunk_len);
		if (chunk_len > 0 && (st = encode_chunk(tok, ws, text + start, chunk_len, c, err)) != CB_OK)
			return st;
		if (k < 0 || c->stopped)
			break;
		if ((st = emit_piece(c, added_id(tok, k), kAdded[k].str, kAdded[k].len, err)) != CB_OK)
			return st;
		start = pos + kAdded[k].len;
		if (++since_check >= 65536)
		{
			since_check = 0;
			cb_check_interrupts();
		}
	}
	return CB_OK;
}

static void
ctx_init(encode_ctx *c, const cb_tokenizer *tok, cb_tok_workspace *ws, id_vec *out,
		 bool want_strings, size_t stop_at)
{
	memset(c, 0, sizeof(*c));
	c->tok = tok;
	c->ws = ws;
	c->out = out;
	c->want_strings = want_strings;
	c->stop_at = stop_at;
}

/* Copy cls + a + sep [+ sep + b + sep] into a new cb_malloc'ed array. */
static cb_status
assemble(const cb_tokenizer *tok, const int32_t *a, size_t la, const int32_t *b, size_t lb,
		 bool pair, bool add_special, int32_t **ids, size_t *n_ids, cb_error *err)
{
	size_t		total = la + lb + (add_special ? (pair ? 4 : 2) : 0);
	int32_t    *out = cb_malloc(total ? total * sizeof(int32_t) : sizeof(int32_t));
	size_t		k = 0;

	if (out == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate %zu ids", total);
	if (add_special)
		out[k++] = tok->cls_id;
	if (la)
		memcpy(out + k, a, la * sizeof(int32_t));
	k += la;
	if (add_special)
		out[k++] = tok->sep_id;
	if (pair)
	{
		if (add_special)
			out[k++] = tok->sep_id;
		if (lb)
			memcpy(out + k, b, lb * sizeof(int32_t));
		k += lb;
		if (add_special)
			out[k++] = tok->sep_id;
	}
	*ids = out;
	*n_ids = k;
	return CB_OK;
}

/* The length the single-sequence truncation keeps (transformers' truncate_sequences). */
static size_t
truncated_length(size_t la, bool add_special, int32_t max_length)
{
	size_t		total = la + (add_special ? 2 : 0);

	if (max_length > 0 && total > (size_t) max_length)
	{
		size_t		remove = total - (size_t) max_length;

		if (la > remove)
			return la - remove;
		/* transformers logs an error and leaves the ids untruncated */
	}
	return la;
}

cb_status
cb_tokenizer_encode_ws(const cb_tokenizer *tok, cb_tok_workspace *ws,
					   const char *text, size_t len,
					   bool add_special_tokens, int32_t max_length,
					   const int32_t **ids, size_t *n_ids, bool *truncated, cb_error *err)
{
	cb_status	st;
	size_t		la,
				keep;
	size_t		limit = 0;
	encode_ctx	c;

	if (tok == NULL || ws == NULL || ids == NULL || n_ids == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_encode_ws: NULL argument");
	if (truncated != NULL)
		*truncated = false;
	ws->ids.n = 0;
	ws->n_refs = 0;
	ws->tok_bytes.len = 0;
	if ((st = ids_reserve(&ws->ids, 1, err)) != CB_OK)
		return st;
	ws->ids.n = 1;				/* room for <s> */
	/* truncation keeps `limit` pieces: once limit + 1 are known, the rest cannot matter */
	if (max_length > (add_special_tokens ? 2 : 0))
		limit = (size_t) max_length - (add_special_tokens ? 2 : 0);
	ctx_init(&c, tok, ws, &ws->ids, false, limit > 0 ? limit + 1 : 0);
	if ((st = encode_text(tok, ws, text, len, &c, err)) != CB_OK)
		return st;
	la = ws->ids.n - 1;
	keep = truncated_length(la, add_special_tokens, max_length);
	if (truncated != NULL)
		*truncated = keep < la;
	if ((st = ids_reserve(&ws->ids, 1, err)) != CB_OK)
		return st;
	if (add_special_tokens)
	{
		ws->ids.v[0] = tok->cls_id;
		ws->ids.v[keep + 1] = tok->sep_id;
		*ids = ws->ids.v;
		*n_ids = keep + 2;
	}
	else
	{
		*ids = ws->ids.v + 1;
		*n_ids = keep;
	}
	return CB_OK;
}

cb_status
cb_tokenizer_count(const cb_tokenizer *tok, cb_tok_workspace *ws,
				   const char *text, size_t len, bool add_special_tokens,
				   size_t *count, cb_error *err)
{
	cb_tok_workspace *own = NULL;
	encode_ctx	c;
	cb_status	st;

	if (tok == NULL || count == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_count: NULL argument");
	*count = 0;
	if (ws == NULL)
	{
		own = ws = cb_tok_workspace_create();
		if (ws == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate a workspace");
		ws->bpe.no_cache = ws->bbpe.no_cache = true;	/* one call: the word cache would not pay */
	}
	ctx_init(&c, tok, ws, NULL, false, 0);
	st = encode_text(tok, ws, text, len, &c, err);
	if (st == CB_OK)
		*count = c.count + (add_special_tokens ? 2 : 0);
	cb_tok_workspace_destroy(own);
	return st;
}

cb_status
cb_tokenizer_encode(const cb_tokenizer *tok, cb_tok_workspace *ws,
					const char *text, size_t len,
					bool add_special_tokens, int32_t max_length,
					int32_t **ids, size_t *n_ids, cb_error *err)
{
	cb_tok_workspace *own = NULL;
	const int32_t *view;
	size_t		n;
	cb_status	st;

	if (ids == NULL || n_ids == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_encode: NULL output");
	*ids = NULL;
	*n_ids = 0;
	if (ws == NULL)
	{
		own = ws = cb_tok_workspace_create();
		if (ws == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate a workspace");
		ws->bpe.no_cache = ws->bbpe.no_cache = true;	/* one call: the word cache would not pay */
	}
	st = cb_tokenizer_encode_ws(tok, ws, text, len, add_special_tokens, max_length, &view, &n, NULL, err);
	if (st == CB_OK && own != NULL)
	{
		/* our own workspace: hand its ids over rather than copy them */
		if (view != ws->ids.v && n > 0)
			memmove(ws->ids.v, view, n * sizeof(int32_t));
		*ids = ws->ids.v;
		*n_ids = n;
		ws->ids.v = NULL;
		ws->ids.cap = 0;
	}
	else if (st == CB_OK)
	{
		int32_t    *out = cb_malloc(n ? n * sizeof(int32_t) : sizeof(int32_t));

		if (out == NULL)
			st = cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate %zu ids", n);
		else
		{
			if (n)
				memcpy(out, view, n * sizeof(int32_t));
			*ids = out;
			*n_ids = n;
		}
	}
	cb_tok_workspace_destroy(own);
	return st;
}

cb_status
cb_tokenizer_encode_pair(const cb_tokenizer *tok, cb_tok_workspace *ws,
						 const char *text_a, size_t len_a,
						 const char *text_b, size_t len_b,
						 bool add_special_tokens, cb_truncation strategy,
						 int32_t max_length,
						 int32_t **ids, size_t *n_ids, cb_error *err)
{
	cb_tok_workspace *own = NULL;
	cb_status	st;
	size_t		la,
				lb,
				total;
	encode_ctx	ca,
				cb;

	if (tok == NULL || ids == NULL || n_ids == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_encode_pair: NULL argument");
	*ids = NULL;
	*n_ids = 0;
	if (strategy != CB_TRUNCATE_LONGEST_FIRST && strategy != CB_TRUNCATE_ONLY_FIRST &&
		strategy != CB_TRUNCATE_ONLY_SECOND)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_encode_pair: bad truncation strategy %d",
							(int) strategy);
	if (ws == NULL)
	{
		own = ws = cb_tok_workspace_create();
		if (ws == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate a workspace");
		ws->bpe.no_cache = ws->bbpe.no_cache = true;	/* one call: the word cache would not pay */
	}
	ws->ids.n = 0;
	ws->ids_b.n = 0;
	ws->n_refs = 0;
	ws->tok_bytes.len = 0;
	ctx_init(&ca, tok, ws, &ws->ids, false, 0);
	ctx_init(&cb, tok, ws, &ws->ids_b, false, 0);
	if ((st = encode_text(tok, ws, text_a, len_a, &ca, err)) != CB_OK ||
		(st = encode_text(tok, ws, text_b, len_b, &cb, err)) != CB_OK)
		goto done;
	la = ws->ids.n;
	lb = ws->ids_b.n;
	total = la + lb + (add_special_tokens ? 4 : 0);
	if (max_length > 0 && total > (size_t) max_length)
	{
		size_t		remove = total - (size_t) max_length;

		if (strategy == CB_TRUNCATE_LONGEST_FIRST)
		{
			/* transformers 4.37 truncate_sequences, longest_first with a pair */
			size_t		diff = la > lb ? la - lb : lb - la;
			size_t		first = diff < remove ? diff : remove;
			size_t		second = remove - first;
			size_t		a_rm,
						b_rm;

			if (la > lb)
			{
				a_rm = first + second / 2;
				b_rm = second - second / 2;
			}
			else
			{
				a_rm = second / 2;
				b_rm = first + second - second / 2;
			}
			la = a_rm >= la ? 0 : la - a_rm;
			lb = b_rm >= lb ? 0 : lb - b_rm;
		}
		else if (strategy == CB_TRUNCATE_ONLY_FIRST)
		{
			if (la > remove)
				la -= remove;
		}
		else
		{
			if (lb > remove)
				lb -= remove;
		}
	}
	st = assemble(tok, ws->ids.v, la, ws->ids_b.v, lb, true, add_special_tokens, ids, n_ids, err);
done:
	cb_tok_workspace_destroy(own);
	return st;
}

cb_status
cb_tokenizer_tokenize(const cb_tokenizer *tok, cb_tok_workspace *ws,
					  const char *text, size_t len,
					  cb_token_list **tokens, cb_error *err)
{
	cb_tok_workspace *own = NULL;
	cb_status	st;
	encode_ctx	c;

	if (tok == NULL || tokens == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_tokenize: NULL argument");
	*tokens = NULL;
	if (ws == NULL)
	{
		own = ws = cb_tok_workspace_create();
		if (ws == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate a workspace");
		ws->bpe.no_cache = ws->bbpe.no_cache = true;	/* one call: the word cache would not pay */
	}
	ws->ids.n = 0;
	ws->n_refs = 0;
	ws->tok_bytes.len = 0;
	ctx_init(&c, tok, ws, NULL, true, 0);	/* the strings only */
	st = encode_text(tok, ws, text, len, &c, err);
	if (st == CB_OK)
	{
		size_t		n = ws->n_refs;
		size_t		head = align8(sizeof(cb_token_list));
		size_t		ptrs = align8(n * sizeof(char *));
		size_t		lens = align8(n * sizeof(uint32_t));
		size_t		total = head + ptrs + lens + ws->tok_bytes.len;
		uint8_t    *block = cb_malloc(total);

		if (block == NULL)
			st = cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate %zu bytes of tokens", total);
		else
		{
			cb_token_list *list = (cb_token_list *) block;
			const char **piece = (const char **) (block + head);
			uint32_t   *length = (uint32_t *) (block + head + ptrs);
			char	   *bytes = (char *) (block + head + ptrs + lens);

			if (ws->tok_bytes.len)
				memcpy(bytes, ws->tok_bytes.data, ws->tok_bytes.len);
			for (size_t i = 0; i < n; i++)
			{
				piece[i] = bytes + ws->refs[i].off;
				length[i] = ws->refs[i].len;
			}
			list->count = n;
			list->piece = piece;
			list->length = length;
			*tokens = list;
		}
	}
	cb_tok_workspace_destroy(own);
	return st;
}

/* ------------------------------------------------------------------------- */
/* Vocabulary */

static int
added_index_of_id(const cb_tokenizer *tok, int32_t id)
{
	if (tok->layout == CB_TOK_LAYOUT_XLMR)
	{
		if (id == CB_TOK_ID_PAD)
			return ADDED_PAD;
		if (id == CB_TOK_ID_UNK)
			return ADDED_UNK;
	}
	else if (id >= 0 && id <= CB_TOK_ID_UNK_NOTUSED)
		return id;
	if (id == tok->cls_id)
		return ADDED_CLS;
	if (id == tok->sep_id)
		return ADDED_SEP;
	if (id == tok->mask_id)
		return ADDED_MASK;
	return -1;
}

const char *
cb_tokenizer_id_to_piece(const cb_tokenizer *tok, int32_t id, size_t *len)
{
	int			k;
	int32_t		sp;

	if (tok == NULL || id < 0 || id >= tok->vocab_size)
		return NULL;
	if (tok->kind == CB_TOK_KIND_BYTE_BPE)
		return cb_bbpe_id_to_token(&tok->bbpe, id, len);
	k = added_index_of_id(tok, id);
	if (k >= 0)
	{
		if (len)
			*len = kAdded[k].len;
		return kAdded[k].str;
	}
	sp = id - tok->fairseq_offset;
	if (sp < 0 || (size_t) sp >= tok->vocab.n_pieces)
		return NULL;
	if (len)
		*len = tok->vocab.pieces[sp].str_len;
	return tok->vocab.strings + tok->vocab.pieces[sp].str_off;
}

int32_t
cb_tokenizer_piece_to_id(const cb_tokenizer *tok, const char *piece, size_t len)
{
	if (tok == NULL || (piece == NULL && len > 0))
		return tok == NULL ? CB_TOK_ID_UNK : tok->unk_id;
	if (tok->kind == CB_TOK_KIND_BYTE_BPE)
		return cb_bbpe_token_to_id(&tok->bbpe, piece, len);
	return id_of_string(tok, piece, len);
}

bool
cb_tokenizer_is_special_id(const cb_tokenizer *tok, int32_t id)
{
	if (tok->kind == CB_TOK_KIND_BYTE_BPE)
		return cb_bbpe_is_special_id(&tok->bbpe, id);
	return added_index_of_id(tok, id) >= 0;
}

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
