/*
 * tokenizer.c — encoding with the SentencePiece tokenizer (see tokenizer.h):
 * the workspace, added-token splitting, piece -> id mapping, truncation, pairs,
 * tokenize(), and the id <-> piece vocabulary.  The image: tokenizer_image.c;
 * decoding: tokenizer_decode.c.
 */
#include "tokenizer.h"

#include <string.h>

#include "image_layout.h"
#include "sp_model.h"
#include "tokenizer_internal.h"
#include "utf8.h"

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
		size_t		head = cb_align8(sizeof(cb_token_list));
		size_t		ptrs = cb_align8(n * sizeof(char *));
		size_t		lens = cb_align8(n * sizeof(uint32_t));
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
