/*
 * bytebpe.c — encoding with RoBERTa's byte-level BPE (see bytebpe.h): the character
 * classes of GPT-2's pattern, the id <-> token vocabulary, the scratch and word cache,
 * the merges, the pre-tokenization.  The image: bytebpe_image.c; decoding: bytebpe_decode.c.
 */
#include "bytebpe.h"

#include <stdlib.h>
#include <string.h>

#include "bpe.h"				/* cb_bpe_hash */
#include "bytebpe_internal.h"
#include "utf8.h"

#include "unicode_class_table.inc"

/* ------------------------------------------------------------------------- */
/* Characters */

int
cb_bbpe_char_class(uint32_t cp)
{
	size_t		lo = 0,
				hi = sizeof(kUnicodeClassRanges) / sizeof(kUnicodeClassRanges[0]);

	if (cp < 0x80)
	{
		if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
			return 1;
		if (cp >= '0' && cp <= '9')
			return 2;
		if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D))
			return 3;
		return 0;
	}
	while (lo < hi)
	{
		size_t		mid = (lo + hi) / 2;

		if (cp < kUnicodeClassRanges[mid][0])
			hi = mid;
		else if (cp > kUnicodeClassRanges[mid][1])
			lo = mid + 1;
		else
			return (int) kUnicodeClassRanges[mid][2];
	}
	return 0;
}

/* ------------------------------------------------------------------------- */
/* Vocabulary */

const char *
cb_bbpe_id_to_token(const cb_bbpe *bb, int32_t id, size_t *len)
{
	const cb_bbpe_added *a;

	if (bb == NULL || id < 0 || id >= bb->id_limit)
		return NULL;
	a = added_of_id(bb, id);
	if (a != NULL)
	{
		if (len)
			*len = a->str_len;
		return bb->strings + a->str_off;
	}
	if (bb->tokens[id].str_len == 0)
		return NULL;
	if (len)
		*len = bb->tokens[id].str_len;
	return bb->strings + bb->tokens[id].str_off;
}

int32_t
cb_bbpe_token_to_id(const cb_bbpe *bb, const char *s, size_t len)
{
	int32_t		id;

	for (size_t i = 0; i < bb->n_added; i++)
		if (bb->added[i].str_len == len && memcmp(bb->strings + bb->added[i].str_off, s, len) == 0)
			return bb->added[i].id;
	id = find_string(bb->slots, bb->slot_mask, bb->tokens, bb->strings, s, len);
	return id >= 0 ? id : bb->unk_id;
}

bool
cb_bbpe_is_special_id(const cb_bbpe *bb, int32_t id)
{
	const cb_bbpe_added *a = added_of_id(bb, id);

	return a != NULL && (a->flags & CB_BBPE_SPECIAL) != 0;
}

/* ------------------------------------------------------------------------- */
/* Scratch and the word cache */

/*
 * Recent words' ids: open addressing over CACHE_SLOTS slots; keys and ids in
 * one arena; everything is dropped when either is full.
 */
#define CACHE_SLOTS 16384
#define CACHE_ARENA ((size_t) 768 << 10)
#define CACHE_MAX_WORD 255

typedef struct cache_slot
{
	uint32_t	hash;
	uint32_t	off;			/* key bytes, then the ids (4-byte aligned) */
	uint16_t	key_len;		/* 0: empty */
	uint16_t	n_ids;
} cache_slot;

struct cb_bbpe_cache
{
	uint64_t	fingerprint;
	size_t		used_slots;
	size_t		arena_len;
	cache_slot	slots[CACHE_SLOTS];
	uint8_t		arena[CACHE_ARENA];
};

static void
cache_clear(cb_bbpe_cache *c, uint64_t fingerprint)
{
	memset(c->slots, 0, sizeof(c->slots));
	c->used_slots = 0;
	c->arena_len = 0;
	c->fingerprint = fingerprint;
}

typedef struct heap_ent
{
	uint32_t	rank;
	uint32_t	pos;
	int32_t		left;
	int32_t		right;
} heap_ent;

static void
free_symbols(cb_bbpe_work *w)
{
	cb_free(w->sym);
	cb_free(w->next);
	cb_free(w->prev);
	cb_free(w->heap);
	cb_free(w->pending);
	w->sym = w->next = w->prev = NULL;
	w->heap = w->pending = NULL;
	w->cap = 0;
}

static cb_status
work_reserve(cb_bbpe_work *w, size_t n, cb_error *err)
{
	size_t		cap;

	if (n <= w->cap)
		return CB_OK;
	cap = w->cap < 256 ? 256 : w->cap;
	while (cap < n)
		cap *= 2;
	free_symbols(w);			/* not w->text: it may be the text being encoded */
	w->sym = cb_malloc(cap * sizeof(int32_t));
	w->next = cb_malloc(cap * sizeof(int32_t));
	w->prev = cb_malloc(cap * sizeof(int32_t));
	w->heap = cb_malloc(3 * cap * sizeof(heap_ent));
	w->pending = cb_malloc(2 * cap * sizeof(heap_ent));
	if (w->sym == NULL || w->next == NULL || w->prev == NULL || w->heap == NULL || w->pending == NULL)
	{
		free_symbols(w);
		return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate BPE scratch for %zu bytes", n);
	}
	w->cap = cap;
	return CB_OK;
}

size_t
cb_bbpe_work_scratch_bytes(const cb_bbpe_work *w)
{
	return w->cap * (3 * sizeof(int32_t) + 5 * sizeof(heap_ent)) + w->text_cap;
}

void
cb_bbpe_work_free_scratch(cb_bbpe_work *w)
{
	free_symbols(w);
	cb_free(w->text);
	w->text = NULL;
	w->text_cap = 0;
}

void
cb_bbpe_work_free(cb_bbpe_work *w)
{
	if (w == NULL)
		return;
	cb_bbpe_work_free_scratch(w);
	cb_free(w->cache);
	w->cache = NULL;
}

/* ------------------------------------------------------------------------- */
/* Merging one word */

static inline bool
heap_less(const heap_ent *a, const heap_ent *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push(heap_ent *h, size_t *n, heap_ent e)
{
	size_t		i = (*n)++;

	while (i > 0)
	{
		size_t		p = (i - 1) / 2;

		if (!heap_less(&e, &h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = e;
}

static heap_ent
heap_pop(heap_ent *h, size_t *n)
{
	heap_ent	top = h[0];
	heap_ent	last = h[--(*n)];
	size_t		i = 0;

	for (;;)
	{
		size_t		c = 2 * i + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && heap_less(&h[c + 1], &h[c]))
			c++;
		if (!heap_less(&h[c], &last))
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n > 0)
		h[i] = last;
	return top;
}

/* GPT-2's loop on sym[0..n): returns the new count (symbols in place). */
static size_t
merge_short(const cb_bbpe *bb, int32_t *sym, size_t n)
{
	while (n > 1)
	{
		uint32_t	best = UINT32_MAX;
		int32_t		bl = -1,
					br = -1,
					bm = -1;
		size_t		out = 0;

		for (size_t i = 0; i + 1 < n; i++)
		{
			const cb_bbpe_merge_slot *m = find_merge(bb, sym[i], sym[i + 1]);

			if (m != NULL && m->rank < best)
			{
				best = m->rank;
				bl = sym[i];
				br = sym[i + 1];
				bm = m->merged;
			}
		}
		if (bl < 0)
			break;
		for (size_t i = 0; i < n;)
		{
			if (i + 1 < n && sym[i] == bl && sym[i + 1] == br)
			{
				sym[out++] = bm;
				i += 2;
			}
			else
				sym[out++] = sym[i++];
		}
		n = out;
	}
	return n;
}

static inline void
push_pair(const cb_bbpe *bb, heap_ent *h, size_t *n, const int32_t *sym, uint32_t pos, int32_t right_pos)
{
	const cb_bbpe_merge_slot *m;

	if (right_pos < 0)
		return;
	m = find_merge(bb, sym[pos], sym[right_pos]);
	if (m != NULL)
	{
		heap_ent	e = {m->rank, pos, sym[pos], sym[right_pos]};

		heap_push(h, n, e);
	}
}

/*
 * The same result for long words in O(n log n): a heap of (rank, position)
 * of the current adjacent pairs that are merges.  The lowest rank's
 * occurrences come out left to right, as GPT-2's pass takes them; the pairs
 * that its merges make wait in `pending` until the pass is over (GPT-2 sees
 * them in its next round).  A popped entry whose symbols changed is stale.
 */
static size_t
merge_long(const cb_bbpe *bb, cb_bbpe_work *w, size_t n)
{
	int32_t    *sym = w->sym,
			   *next = w->next,
			   *prev = w->prev;
	heap_ent   *heap = w->heap,
			   *pending = w->pending;
	size_t		nh = 0,
				np = 0,
				out = 0;
	size_t		steps = 0;

	for (size_t i = 0; i < n; i++)
	{
		prev[i] = (int32_t) i - 1;
		next[i] = i + 1 < n ? (int32_t) i + 1 : -1;
	}
	for (size_t i = 0; i + 1 < n; i++)
		push_pair(bb, heap, &nh, sym, (uint32_t) i, (int32_t) i + 1);
	while (nh > 0)
	{
		uint32_t	rank = heap[0].rank;

		while (nh > 0 && heap[0].rank == rank)
		{
			heap_ent	e = heap_pop(heap, &nh);
			int32_t		r = next[e.pos];
			const cb_bbpe_merge_slot *m;

			if (++steps % 65536 == 0)
				cb_check_interrupts();
			if (sym[e.pos] != e.left || r < 0 || sym[r] != e.right)
				continue;
			m = find_merge(bb, e.left, e.right);
			sym[e.pos] = m->merged;
			sym[r] = -1;
			next[e.pos] = next[r];
			if (next[r] >= 0)
				prev[next[r]] = (int32_t) e.pos;
			if (prev[e.pos] >= 0)
				push_pair(bb, pending, &np, sym, (uint32_t) prev[e.pos], (int32_t) e.pos);
			push_pair(bb, pending, &np, sym, e.pos, next[e.pos]);
		}
		for (size_t i = 0; i < np; i++)
			heap_push(heap, &nh, pending[i]);
		np = 0;
	}
	for (int32_t i = 0; i >= 0; i = next[i])
		sym[out++] = sym[i];
	return out;
}

/* ------------------------------------------------------------------------- */
/* Encoding */

typedef struct enc_state
{
	const cb_bbpe *bb;
	cb_bbpe_work *w;
	cb_bbpe_emit_fn emit;
	void	   *arg;
	bool		stopped;
	size_t		since_check;
} enc_state;

static cb_status
emit_ids(enc_state *s, const int32_t *ids, size_t n, cb_error *err)
{
	const cb_bbpe *bb = s->bb;
	cb_status	st;

	for (size_t i = 0; i < n && !s->stopped; i++)
	{
		const cb_bbpe_token *t = &bb->tokens[ids[i]];

		if ((st = s->emit(s->arg, ids[i], bb->strings + t->str_off, t->str_len, &s->stopped, err)) != CB_OK)
			return st;
	}
	return CB_OK;
}

static cb_status
encode_word(enc_state *s, const uint8_t *word, size_t len, cb_error *err)
{
	const cb_bbpe *bb = s->bb;
	cb_bbpe_work *w = s->w;
	cb_bbpe_cache *c = NULL;
	uint32_t	h = 0;
	uint32_t	slot = 0;
	size_t		n;
	cb_status	st;
	size_t		long_word = w->long_word ? w->long_word : CB_BBPE_LONG_WORD;

	if (len == 1)
	{
		int32_t		id = bb->byte_id[word[0]];

		return emit_ids(s, &id, 1, err);
	}
	if (len <= CACHE_MAX_WORD && !w->no_cache)
	{
		if (w->cache == NULL)
		{
			w->cache = cb_malloc(sizeof(cb_bbpe_cache));
			if (w->cache != NULL)
				cache_clear(w->cache, bb->fingerprint);
		}
		c = w->cache;
		if (c != NULL)
		{
			if (c->fingerprint != bb->fingerprint)
				cache_clear(c, bb->fingerprint);
			h = cb_bpe_hash((const char *) word, len);
			slot = h & (CACHE_SLOTS - 1);
			for (;;)
			{
				const cache_slot *cs = &c->slots[slot];

				if (cs->key_len == 0)
					break;
				if (cs->hash == h && cs->key_len == len && memcmp(c->arena + cs->off, word, len) == 0)
				{
					int32_t		ids[CACHE_MAX_WORD];
					size_t		ioff = (cs->off + len + 3) & ~(size_t) 3;

					memcpy(ids, c->arena + ioff, cs->n_ids * sizeof(int32_t));
					return emit_ids(s, ids, cs->n_ids, err);
				}
				slot = (slot + 1) & (CACHE_SLOTS - 1);
			}
		}
	}
	if ((st = work_reserve(w, len, err)) != CB_OK)
		return st;
	for (size_t i = 0; i < len; i++)
		w->sym[i] = bb->byte_id[word[i]];
	n = len <= long_word ? merge_short(bb, w->sym, len) : merge_long(bb, w, len);
	if (c != NULL)
	{
		size_t		ioff = (c->arena_len + len + 3) & ~(size_t) 3;
		size_t		need = ioff + n * sizeof(int32_t);

		if (need > CACHE_ARENA || c->used_slots >= CACHE_SLOTS / 2)
		{
			cache_clear(c, bb->fingerprint);
			slot = h & (CACHE_SLOTS - 1);
			ioff = (len + 3) & ~(size_t) 3;
			need = ioff + n * sizeof(int32_t);
		}
		{
			cache_slot *cs = &c->slots[slot];

			cs->hash = h;
			cs->off = (uint32_t) c->arena_len;
			cs->key_len = (uint16_t) len;
			cs->n_ids = (uint16_t) n;
			memcpy(c->arena + c->arena_len, word, len);
			memcpy(c->arena + ioff, w->sym, n * sizeof(int32_t));
			c->arena_len = need;
			c->used_slots++;
		}
	}
	return emit_ids(s, w->sym, n, err);
}

/* The class of the character at t[i] (and its length). */
static inline int
class_at(const uint8_t *t, size_t len, size_t i, size_t *clen)
{
	if (t[i] < 0x80)
	{
		*clen = 1;
		return cb_bbpe_char_class(t[i]);
	}
	return cb_bbpe_char_class(cb_utf8_decode_sp(t + i, len - i, clen));
}

/* re.findall(GPT-2's pattern, chunk), each piece merged and emitted. */
static cb_status
encode_chunk(enc_state *s, const uint8_t *t, size_t len, cb_error *err)
{
	size_t		i = 0;
	cb_status	st;

	while (i < len && !s->stopped)
	{
		size_t		start = i;
		size_t		cl;
		int			k = class_at(t, len, i, &cl);

		if (t[i] == '\'' && i + 1 < len)
		{
			uint8_t		a = t[i + 1],
						b = i + 2 < len ? t[i + 2] : 0;

			if (a == 's' || a == 't' || a == 'm' || a == 'd')
				i += 2;
			else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
				i += 3;
		}
		if (i == start)
		{
			int			run;		/* the class of the run, -1: whitespace rule */

			if (t[i] == ' ' && i + 1 < len)
			{
				size_t		cl2;
				int			k2 = class_at(t, len, i + 1, &cl2);

				if (k2 != 3)
				{
					run = k2;
					i += 1;
				}
				else
					run = -1;
			}
			else
				run = k == 3 ? -1 : k;
			if (run >= 0)
			{
				while (i < len)
				{
					size_t		l;

					if (class_at(t, len, i, &l) != run)
						break;
					i += l;
				}
			}
			else
			{
				/* \s+(?!\S) | \s+ */
				size_t		last = i;
				size_t		n_chars = 0;

				while (i < len)
				{
					size_t		l;

					if (class_at(t, len, i, &l) != 3)
						break;
					last = i;
					i += l;
					n_chars++;
				}
				if (i < len && n_chars >= 2)
					i = last;	/* leave the last one to the next piece */
			}
		}
		if ((st = encode_word(s, t + start, i - start, err)) != CB_OK)
			return st;
		if (++s->since_check >= 4096)
		{
			s->since_check = 0;
			cb_check_interrupts();
		}
	}
	return CB_OK;
}

/* The longest added token at t (avail bytes), or NULL. */
static const cb_bbpe_added *
added_at(const cb_bbpe *bb, const char *t, size_t avail)
{
	const cb_bbpe_added *best = NULL;

	for (size_t k = 0; k < bb->n_added; k++)
	{
		const cb_bbpe_added *a = &bb->added[k];

		if (a->str_len <= avail && (best == NULL || a->str_len > best->str_len) &&
			(uint8_t) bb->strings[a->str_off] == (uint8_t) t[0] &&
			memcmp(bb->strings + a->str_off, t, a->str_len) == 0)
			best = a;
	}
	return best;
}

cb_status
cb_bbpe_encode(const cb_bbpe *bb, cb_bbpe_work *w, const char *text, size_t len,
			   cb_bbpe_emit_fn emit, void *arg, bool *stopped, cb_error *err)
{
	enc_state	s;
	size_t		start = 0;
	uint8_t		first[256] = {0};
	const cb_bbpe_added *prev = NULL;
	cb_status	st;

	if (bb == NULL || w == NULL || emit == NULL || (text == NULL && len > 0))
		return cb_set_error(err, CB_ERR_INVALID, "cb_bbpe_encode: NULL argument");
	memset(&s, 0, sizeof(s));
	s.bb = bb;
	s.w = w;
	s.emit = emit;
	s.arg = arg;
	if (stopped)
		*stopped = false;

	/* prepare_for_tokenization: add_prefix_space */
	if (bb->add_prefix_space && len > 0 && cb_py_lstrip_len(text, len) == 0)
	{
		if (w->text_cap < len + 1)
		{
			cb_free(w->text);
			w->text = cb_malloc(len + 1);
			w->text_cap = w->text ? len + 1 : 0;
			if (w->text == NULL)
				return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate %zu bytes", len + 1);
		}
		w->text[0] = ' ';
		memcpy(w->text + 1, text, len);
		text = w->text;
		len++;
	}
	for (size_t k = 0; k < bb->n_added; k++)
		first[(uint8_t) bb->strings[bb->added[k].str_off]] = 1;

	/* tokens_trie.split, then the added tokens' lstrip / rstrip on their neighbours */
	while (!s.stopped)
	{
		size_t		pos = start;
		const cb_bbpe_added *a = NULL;
		size_t		cstart = start,
					cend;

		while (pos < len)
		{
			if (first[(uint8_t) text[pos]] && (a = added_at(bb, text + pos, len - pos)) != NULL)
				break;
			pos++;
			if (++s.since_check >= 65536)
			{
				s.since_check = 0;
				cb_check_interrupts();
			}
		}
		cend = pos;
		if (prev != NULL && (prev->flags & CB_BBPE_RSTRIP))
			cstart += cb_py_lstrip_len(text + cstart, cend - cstart);
		if (a != NULL && (a->flags & CB_BBPE_LSTRIP))
			cend = cstart + cb_py_rstrip_len(text + cstart, cend - cstart);
		if (cend > cstart && (st = encode_chunk(&s, (const uint8_t *) text + cstart, cend - cstart, err)) != CB_OK)
			return st;
		if (a == NULL || s.stopped)
			break;
		if ((st = emit(arg, a->id, bb->strings + a->str_off, a->str_len, &s.stopped, err)) != CB_OK)
			return st;
		start = pos + a->str_len;
		prev = a;
	}
	if (stopped)
		*stopped = s.stopped;
	return CB_OK;
}

