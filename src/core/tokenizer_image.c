/*
 * tokenizer_image.c — the SentencePiece tokenizer's image (see tokenizer.h):
 * cb_tokenizer_build checks a sentencepiece model and compiles it, cb_tokenizer_open
 * validates an image in place and views it (a byte-level BPE image: bytebpe.h).
 */
#include "tokenizer.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "image_layout.h"
#include "sp_model.h"
#include "tokenizer_internal.h"
#include "utf8.h"

/* ------------------------------------------------------------------------- */
/* The image */

#define IMAGE_MAGIC "CBTOKIMG"
#define IMAGE_VERSION 2

#define FLAG_ADD_DUMMY_PREFIX 0x01u
#define FLAG_REMOVE_EXTRA_WS 0x02u
#define FLAG_ESCAPE_WS 0x04u
#define FLAG_HAS_CHARSMAP 0x08u
#define FLAG_HAS_USER_DEFINED 0x10u
#define FLAG_HAS_UNUSED 0x20u
#define FLAG_SPLIT_WORDS 0x40u
#define FLAG_UNIGRAM 0x80u		/* Viterbi over piece scores (unigram.h), not BPE merges */

/* The image's header: it starts with the fields of cb_image_prefix (image_layout.h). */
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
	cb_image_section pieces;	/* cb_bpe_piece[n_pieces] */
	cb_image_section slots;	/* cb_bpe_slot[slot_capacity] */
	cb_image_section strings;	/* every piece string, each followed by a NUL */
	cb_image_section trie;	/* uint32 darts-clone units */
	cb_image_section pool;	/* charsmap replacement strings, NUL-terminated */
	cb_image_section unk_surface;	/* NUL-terminated */
	uint8_t		first_byte[256];
	uint8_t		user_defined_first_byte[256];
	/* version 2: the id layout and the unigram trie */
	uint32_t	layout;			/* cb_tok_layout */
	uint32_t	trie_nodes;
	uint32_t	edge_capacity;
	float		min_score;
	float		max_score;
	uint32_t	reserved2;
	cb_image_section node_piece;	/* int32[trie_nodes] */
	cb_image_section edges;	/* cb_unigram_edge[edge_capacity] */
} image_header;

CB_IMAGE_HEADER_STARTS_WITH_PREFIX(image_header);

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
	cb_image_section s_pieces,
				s_slots,
				s_strings,
				s_trie,
				s_pool,
				s_unk;

	off = cb_align8(sizeof(image_header));
	s_pieces = cb_image_next_section(&off, m.n_pieces * sizeof(cb_bpe_piece));
	s_slots = cb_image_next_section(&off, cap * sizeof(cb_bpe_slot));
	s_strings = cb_image_next_section(&off, strings_len);
	s_trie = cb_image_next_section(&off, (trie_bytes / 4) * 4);
	s_pool = cb_image_next_section(&off, trie != NULL ? pool_len + 1 : 0);
	s_unk = cb_image_next_section(&off, unk_surface_len + 1);

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
	h->byte_order = CB_IMAGE_BYTE_ORDER;
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
	h->fingerprint = cb_fnv1a64(CB_FNV1A64_INIT, model_bytes, len);
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
			size_t		new_off = off;
			cb_image_section s_node_piece,
						s_edges;
			uint8_t    *grown;
			float		min_score = FLT_MAX,
						max_score = FLT_MIN;	/* SentencePiece's initial values */

			if ((st = cb_unigram_trie_size(&v, &nodes, &ecap, err)) != CB_OK)
				goto done;
			s_node_piece = cb_image_next_section(&new_off, (size_t) nodes * sizeof(int32_t));
			s_edges = cb_image_next_section(&new_off, (size_t) ecap * sizeof(cb_unigram_edge));
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
			cb_unigram_trie_fill(&v, (int32_t *) (img + s_node_piece.off), nodes,
								 (cb_unigram_edge *) (img + s_edges.off), ecap);
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
			h->node_piece = s_node_piece;
			h->edges = s_edges;
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
	cb_status	st;

	if (image == NULL || tok == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_open: NULL argument");
	memset(tok, 0, sizeof(*tok));
	if (cb_bbpe_is_image(image, image_len))
	{
		st = cb_bbpe_open(image, image_len, &tok->bbpe, err);
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
	if ((st = cb_image_check_header(image, image_len, IMAGE_MAGIC, IMAGE_VERSION, sizeof(image_header),
									"tokenizer image", err)) != CB_OK)
		return st;
	n = h->n_pieces;
	cap = h->slot_capacity;
	if (n == 0 || n > CB_SP_MAX_PIECES)
		return bad_image(err, "bad piece count");
	if (cap <= n || (cap & (cap - 1)) != 0)
		return bad_image(err, "bad hash capacity");
	if (!cb_image_section_ok(&h->pieces, image_len, 8) || h->pieces.len != n * sizeof(cb_bpe_piece) ||
		!cb_image_section_ok(&h->slots, image_len, 8) || h->slots.len != cap * sizeof(cb_bpe_slot) ||
		!cb_image_section_ok(&h->strings, image_len, 1) || h->strings.len == 0 ||
		!cb_image_section_ok(&h->trie, image_len, 4) || h->trie.len % 4 != 0 ||
		!cb_image_section_ok(&h->pool, image_len, 1) ||
		!cb_image_section_ok(&h->unk_surface, image_len, 1) || h->unk_surface.len == 0)
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
		if (!cb_image_section_ok(&h->node_piece, image_len, 8) ||
			h->node_piece.len != (uint64_t) h->trie_nodes * 4 ||
			!cb_image_section_ok(&h->edges, image_len, 8) ||
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

