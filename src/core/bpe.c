/*
 * bpe.c — SentencePiece BPE merge loop, piece hash table and resegmentation.
 */
#include "bpe.h"

#include <string.h>

#include "sp_model.h"
#include "utf8.h"

struct cb_bpe_symbol
{
	int32_t		prev;			/* -1: first of its word */
	int32_t		next;			/* -1: last of its word */
	uint32_t	off;
	uint32_t	len;			/* 0: merged into its left neighbour */
	int32_t		id;				/* piece id once merged, -2: not looked up yet */
	uint32_t	freeze;			/* user-defined piece: never merged */
};

struct cb_bpe_pair
{
	float		score;
	int32_t		left;
	int32_t		right;
	uint32_t	size;			/* bytes of the merged piece, to detect stale entries */
	int32_t		id;				/* the merged piece */
};

/* The word cache: word bytes -> its pieces (offsets relative to the word). */
#define CACHE_SLOTS 8192		/* power of two */
#define CACHE_MAX_ENTRIES 6144
#define CACHE_MAX_WORD 48		/* bytes; longer words are not cached */
#define CACHE_BYTES (CACHE_MAX_ENTRIES * 16)
#define CACHE_TOKENS (CACHE_MAX_ENTRIES * 4)

typedef struct cache_slot
{
	uint32_t	hash;
	uint32_t	word_off;		/* into bytes */
	uint16_t	word_len;		/* 0: empty slot */
	uint16_t	n_tok;
	uint32_t	tok_off;		/* into toks */
} cache_slot;

typedef struct cache_tok
{
	uint16_t	off;
	uint16_t	len;
	int32_t		id;
} cache_tok;

struct cb_bpe_cache
{
	uint64_t	fingerprint;
	size_t		n_pieces;
	uint32_t	n_entries;
	uint32_t	bytes_used;
	uint32_t	toks_used;
	cache_slot	slots[CACHE_SLOTS];
	char		bytes[CACHE_BYTES];
	cache_tok	toks[CACHE_TOKENS];
};

/* ------------------------------------------------------------------------- */
/* Hashing and lookup */

uint32_t
cb_bpe_hash(const char *s, size_t len)
{
	uint64_t	h = 0x9E3779B97F4A7C15ull ^ (uint64_t) len;
	uint64_t	k;

	while (len >= 8)
	{
		memcpy(&k, s, 8);
		h = (h ^ k) * 0xBF58476D1CE4E5B9ull;
		h ^= h >> 31;
		s += 8;
		len -= 8;
	}
	k = 0;
	for (size_t i = 0; i < len; i++)
		k |= (uint64_t) (uint8_t) s[i] << (8 * i);
	h = (h ^ k) * 0x94D049BB133111EBull;
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ull;
	h ^= h >> 32;
	return (uint32_t) h;
}

static inline int32_t
find_hashed(const cb_bpe_vocab *v, const char *s, size_t len, uint32_t h)
{
	uint32_t	i = h & v->slot_mask;

	for (;;)
	{
		const cb_bpe_slot *slot = &v->slots[i];

		if (slot->index1 == 0)
			return -1;
		if (slot->hash == h)
		{
			const cb_bpe_piece *p = &v->pieces[slot->index1 - 1];

			if (p->str_len == len && memcmp(v->strings + p->str_off, s, len) == 0)
				return (int32_t) (slot->index1 - 1);
		}
		i = (i + 1) & v->slot_mask;
	}
}

int32_t
cb_bpe_find(const cb_bpe_vocab *v, const char *s, size_t len)
{
	return find_hashed(v, s, len, cb_bpe_hash(s, len));
}

size_t
cb_bpe_user_defined_match(const cb_bpe_vocab *v, const char *s, size_t len)
{
	if (!v->has_user_defined || len == 0 || !v->user_defined_first_byte[(uint8_t) s[0]])
		return 0;
	for (size_t l = len < v->max_user_defined_len ? len : v->max_user_defined_len; l > 0; l--)
	{
		int32_t		id = cb_bpe_find(v, s, l);

		if (id >= 0 && v->pieces[id].type == CB_SP_USER_DEFINED)
			return l;
	}
	return 0;
}

cb_status
cb_bpe_fill_slots(const cb_bpe_piece *pieces, size_t n, const char *strings,
				  cb_bpe_slot *slots, size_t capacity, cb_error *err)
{
	size_t		mask = capacity - 1;

	memset(slots, 0, capacity * sizeof(cb_bpe_slot));
	for (size_t k = 0; k < n; k++)
	{
		const char *s = strings + pieces[k].str_off;
		size_t		len = pieces[k].str_len;
		uint32_t	h = cb_bpe_hash(s, len);
		size_t		i = h & mask;

		while (slots[i].index1 != 0)
		{
			const cb_bpe_piece *q = &pieces[slots[i].index1 - 1];

			if (slots[i].hash == h && q->str_len == len &&
				memcmp(strings + q->str_off, s, len) == 0)
				return cb_set_error(err, CB_ERR_FORMAT,
									"sentencepiece model: pieces %u and %zu are the same string \"%.*s\"",
									slots[i].index1 - 1, k, (int) (len > 64 ? 64 : len), s);
			i = (i + 1) & mask;
		}
		slots[i].hash = h;
		slots[i].index1 = (uint32_t) k + 1;
		if (k % 65536 == 65535)
			cb_check_interrupts();
	}
	return CB_OK;
}

/* ------------------------------------------------------------------------- */
/* Scratch */

static cb_status
grow(void **ptr, size_t *cap, size_t need, size_t elem, cb_error *err)
{
	size_t		bytes;
	size_t		new_cap;
	void	   *p;

	if (need <= *cap)
		return CB_OK;
	new_cap = *cap < 64 ? 64 : *cap;
	while (new_cap < need)
	{
		if (!cb_mul_size(new_cap, 2, &new_cap))
			return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: scratch size overflow");
	}
	if (!cb_mul_size(new_cap, elem, &bytes))
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: scratch size overflow");
	p = cb_realloc(*ptr, bytes);
	if (p == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate %zu bytes of scratch", bytes);
	*ptr = p;
	*cap = new_cap;
	return CB_OK;
}

void
cb_bpe_work_free(cb_bpe_work *w)
{
	if (w == NULL)
		return;
	cb_free(w->symbols);
	cb_free(w->heap);
	cb_free(w->tokens);
	cb_free(w->stack);
	cb_free(w->unused_left);
	cb_free(w->touched);
	cb_free(w->cache);
	memset(w, 0, sizeof(*w));
}

/* ------------------------------------------------------------------------- */
/* The agenda: a binary max-heap on (score, then smallest left). */

static inline bool
pair_before(const cb_bpe_pair *a, const cb_bpe_pair *b)
{
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static inline void
heap_push(cb_bpe_pair *heap, size_t *n, cb_bpe_pair item)
{
	size_t		i = (*n)++;

	while (i > 0)
	{
		size_t		parent = (i - 1) / 2;

		if (!pair_before(&item, &heap[parent]))
			break;
		heap[i] = heap[parent];
		i = parent;
	}
	heap[i] = item;
}

static inline cb_bpe_pair
heap_pop(cb_bpe_pair *heap, size_t *n)
{
	cb_bpe_pair top = heap[0];
	cb_bpe_pair last = heap[--(*n)];
	size_t		count = *n;
	size_t		i = 0;

	if (count == 0)
		return top;
	for (;;)
	{
		size_t		c = 2 * i + 1;

		if (c >= count)
			break;
		if (c + 1 < count && pair_before(&heap[c + 1], &heap[c]))
			c++;
		if (!pair_before(&heap[c], &last))
			break;
		heap[i] = heap[c];
		i = c;
	}
	heap[i] = last;
	return top;
}

typedef struct merge_ctx
{
	const cb_bpe_vocab *v;
	cb_bpe_work *w;
	const char *norm;
	cb_bpe_symbol *sym;
	cb_bpe_pair *heap;
	size_t		n_heap;
} merge_ctx;

static inline void
maybe_add_pair(merge_ctx *c, int32_t left, int32_t right)
{
	const cb_bpe_symbol *l,
			   *r;
	const cb_bpe_piece *p;
	int32_t		id;
	cb_bpe_pair pair;

	if (left < 0 || right < 0)
		return;
	l = &c->sym[left];
	r = &c->sym[right];
	if (l->freeze || r->freeze)
		return;
	id = cb_bpe_find(c->v, c->norm + l->off, (size_t) l->len + r->len);
	if (id < 0)
		return;
	p = &c->v->pieces[id];
	if (!(p->flags & CB_BPE_MERGEABLE))
		return;
	pair.score = p->score;
	pair.left = left;
	pair.right = right;
	pair.size = l->len + r->len;
	pair.id = id;
	heap_push(c->heap, &c->n_heap, pair);

	if (p->type == CB_SP_UNUSED)
	{
		/* SentencePiece's rev_merge[piece] = (left, right): the last one wins. */
		cb_bpe_work *w = c->w;

		if (w->unused_left[id] == 0)
			w->touched[w->n_touched++] = (uint32_t) id;
		w->unused_left[id] = l->len;
	}
}

/* Merge the symbols first..last (linked), as SentencePiece's main loop. */
static void
merge_range(merge_ctx *c, int32_t first, int32_t last)
{
	cb_bpe_symbol *sym = c->sym;

	c->n_heap = 0;
	for (int32_t i = first + 1; i <= last; i++)
		maybe_add_pair(c, i - 1, i);

	while (c->n_heap > 0)
	{
		cb_bpe_pair top = heap_pop(c->heap, &c->n_heap);
		cb_bpe_symbol *l = &sym[top.left];
		cb_bpe_symbol *r = &sym[top.right];

		if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
			continue;
		l->len += r->len;
		l->id = top.id;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = top.left;
		r->len = 0;
		maybe_add_pair(c, l->prev, top.left);
		maybe_add_pair(c, top.left, l->next);
	}
}

/* Emit the final symbol [off, off+len), resegmenting UNUSED pieces. */
static void
emit_symbol(const cb_bpe_vocab *v, cb_bpe_work *w, const char *norm, uint32_t off, uint32_t len,
			int32_t known_id)
{
	size_t		sp = 0;

	if (!v->has_unused)
	{
		cb_bpe_token *t = &w->tokens[w->n_tokens++];
		int32_t		id = known_id != -2 ? known_id : cb_bpe_find(v, norm + off, len);

		t->off = off;
		t->len = len;
		t->id = id >= 0 ? id : v->unk_id;
		return;
	}
	w->stack[sp++] = off;
	w->stack[sp++] = len;
	while (sp > 0)
	{
		uint32_t	l = w->stack[--sp];
		uint32_t	o = w->stack[--sp];
		int32_t		id = cb_bpe_find(v, norm + o, l);

		if (id >= 0 && v->has_unused && v->pieces[id].type == CB_SP_UNUSED &&
			w->unused_left[id] > 0 && w->unused_left[id] < l)
		{
			uint32_t	left = w->unused_left[id];

			/* right part first on the stack so that the left one comes out first */
			w->stack[sp++] = o + left;
			w->stack[sp++] = l - left;
			w->stack[sp++] = o;
			w->stack[sp++] = left;
			continue;
		}
		cb_bpe_token *t = &w->tokens[w->n_tokens++];

		t->off = o;
		t->len = l;
		t->id = id >= 0 ? id : v->unk_id;
	}
}

/* Forget SentencePiece's rev_merge records (they live for one call). */
static void
reset_unused(cb_bpe_work *w)
{
	if (w->unused_left != NULL)
	{
		for (size_t k = 0; k < w->n_touched; k++)
			w->unused_left[w->touched[k]] = 0;
	}
	w->n_touched = 0;
}

/* The work's cache for this model (allocated on first use; NULL: none). */
static cb_bpe_cache *
get_cache(const cb_bpe_vocab *v, cb_bpe_work *w)
{
	cb_bpe_cache *c = w->cache;

	if (c == NULL)
	{
		c = cb_malloc(sizeof(cb_bpe_cache));
		if (c == NULL)
			return NULL;		/* no cache: slower, still correct */
		memset(c->slots, 0, sizeof(c->slots));
		c->n_entries = c->bytes_used = c->toks_used = 0;
		c->fingerprint = v->fingerprint;
		c->n_pieces = v->n_pieces;
		w->cache = c;
	}
	if (c->fingerprint != v->fingerprint || c->n_pieces != v->n_pieces)
	{
		memset(c->slots, 0, sizeof(c->slots));
		c->n_entries = c->bytes_used = c->toks_used = 0;
		c->fingerprint = v->fingerprint;
		c->n_pieces = v->n_pieces;
	}
	return c;
}

static bool
cache_lookup(const cb_bpe_cache *c, cb_bpe_work *w, const char *word, uint32_t len, uint32_t h,
			 uint32_t base)
{
	for (uint32_t i = h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1))
	{
		const cache_slot *s = &c->slots[i];

		if (s->word_len == 0)
			return false;
		if (s->hash == h && s->word_len == len && memcmp(c->bytes + s->word_off, word, len) == 0)
		{
			for (uint32_t k = 0; k < s->n_tok; k++)
			{
				const cache_tok *ct = &c->toks[s->tok_off + k];
				cb_bpe_token *t = &w->tokens[w->n_tokens++];

				t->off = base + ct->off;
				t->len = ct->len;
				t->id = ct->id;
			}
			return true;
		}
	}
}

static void
cache_insert(cb_bpe_cache *c, const char *word, uint32_t len, uint32_t h,
			 const cb_bpe_token *toks, size_t n_tok, uint32_t base)
{
	uint32_t	i;

	if (c->n_entries >= CACHE_MAX_ENTRIES || c->bytes_used + len > CACHE_BYTES ||
		c->toks_used + n_tok > CACHE_TOKENS)
	{
		memset(c->slots, 0, sizeof(c->slots));
		c->n_entries = c->bytes_used = c->toks_used = 0;
	}
	for (i = h & (CACHE_SLOTS - 1); c->slots[i].word_len != 0; i = (i + 1) & (CACHE_SLOTS - 1))
		;
	c->slots[i].hash = h;
	c->slots[i].word_off = c->bytes_used;
	c->slots[i].word_len = (uint16_t) len;
	c->slots[i].n_tok = (uint16_t) n_tok;
	c->slots[i].tok_off = c->toks_used;
	memcpy(c->bytes + c->bytes_used, word, len);
	c->bytes_used += len;
	for (size_t k = 0; k < n_tok; k++)
	{
		c->toks[c->toks_used + k].off = (uint16_t) (toks[k].off - base);
		c->toks[c->toks_used + k].len = (uint16_t) toks[k].len;
		c->toks[c->toks_used + k].id = toks[k].id;
	}
	c->toks_used += (uint32_t) n_tok;
	c->n_entries++;
}

static const char kSpaceSymbol[3] = {'\xE2', '\x96', '\x81'};

cb_status
cb_bpe_encode(const cb_bpe_vocab *v, cb_bpe_work *w, const char *norm, size_t len, cb_error *err)
{
	cb_status	st;
	size_t		need;
	size_t		n_sym = 0;
	merge_ctx	c;
	cb_bpe_cache *cache;

	w->n_tokens = 0;
	if (len == 0)
		return CB_OK;
	if (len >= INT32_MAX / 4)
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: normalized text of %zu bytes is too long", len);

	if ((st = grow((void **) &w->symbols, &w->symbols_cap, len, sizeof(cb_bpe_symbol), err)) != CB_OK)
		return st;
	reset_unused(w);
	if (v->has_unused)
	{
		/* resegmentation can give one piece per byte; its stack: each split
		 * pushes 2 entries (4 words) and pops 1 */
		if ((st = grow((void **) &w->tokens, &w->tokens_cap, len, sizeof(cb_bpe_token), err)) != CB_OK)
			return st;
		if ((st = grow((void **) &w->stack, &w->stack_cap, 4 * len + 8, sizeof(uint32_t), err)) != CB_OK)
			return st;
		if (w->unused_cap < v->n_pieces)
		{
			cb_free(w->unused_left);
			w->unused_cap = 0;
			w->unused_left = cb_calloc(v->n_pieces, sizeof(uint32_t));
			if (w->unused_left == NULL)
				return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate BPE scratch");
			w->unused_cap = v->n_pieces;
		}
		if ((st = grow((void **) &w->touched, &w->touched_cap, v->n_pieces + 1, sizeof(uint32_t), err)) != CB_OK)
			return st;
	}

	/* Split into characters (user-defined pieces are single frozen symbols). */
	for (size_t pos = 0; pos < len;)
	{
		cb_bpe_symbol *s = &w->symbols[n_sym];
		size_t		m = 0;

		s->freeze = 0;
		if (v->has_user_defined)
		{
			m = cb_bpe_user_defined_match(v, norm + pos, len - pos);
			s->freeze = m > 0;
		}
		if (m == 0)
		{
			m = cb_utf8_lead_len((uint8_t) norm[pos]);
			if (m > len - pos)
				m = len - pos;
		}
		s->off = (uint32_t) pos;
		s->len = (uint32_t) m;
		s->id = -2;
		pos += m;
		n_sym++;
	}

	/* without UNUSED pieces, every final symbol is one output piece */
	if (!v->has_unused &&
		(st = grow((void **) &w->tokens, &w->tokens_cap, n_sym, sizeof(cb_bpe_token), err)) != CB_OK)
		return st;

	cache = v->split_words && !w->no_cache ? get_cache(v, w) : NULL;
	c.v = v;
	c.w = w;
	c.norm = norm;
	c.sym = w->symbols;
	c.heap = w->heap;
	c.n_heap = 0;

	/* Words: [first, last], split before each "▁" when that is safe. */
	int32_t		first = 0;
	int32_t		since_check = 0;

	for (int32_t i = 0; i < (int32_t) n_sym; i++)
	{
		bool		ends = i + 1 == (int32_t) n_sym;

		if (!ends && v->split_words)
		{
			const cb_bpe_symbol *nx = &w->symbols[i + 1];

			ends = nx->len >= 3 && memcmp(norm + nx->off, kSpaceSymbol, 3) == 0;
		}
		w->symbols[i].prev = i == first ? -1 : i - 1;
		w->symbols[i].next = ends ? -1 : i + 1;
		if (!ends)
			continue;
		/* the agenda holds at most the initial pairs + 2 per merge */
		need = 3 * (size_t) (i - first + 1) + 4;
		if (need > w->heap_cap)
		{
			if ((st = grow((void **) &w->heap, &w->heap_cap, need, sizeof(cb_bpe_pair), err)) != CB_OK)
				return st;
			c.heap = w->heap;
		}
		{
			uint32_t	wstart = w->symbols[first].off;
			uint32_t	wlen = w->symbols[i].off + w->symbols[i].len - wstart;
			bool		cacheable = cache != NULL && wlen <= CACHE_MAX_WORD;
			uint32_t	h = 0;
			size_t		t0 = w->n_tokens;

			if (cacheable)
			{
				h = cb_bpe_hash(norm + wstart, wlen);
				if (cache_lookup(cache, w, norm + wstart, wlen, h, wstart))
					goto next_word;
			}
			merge_range(&c, first, i);
			for (int32_t k = first; k >= 0; k = w->symbols[k].next)
				emit_symbol(v, w, norm, w->symbols[k].off, w->symbols[k].len, w->symbols[k].id);
			if (cacheable)
				cache_insert(cache, norm + wstart, wlen, h, w->tokens + t0, w->n_tokens - t0, wstart);
		}
next_word:
		since_check += i + 1 - first;
		first = i + 1;
		if (since_check >= 65536)
		{
			since_check = 0;
			cb_check_interrupts();
		}
	}
	reset_unused(w);
	return CB_OK;
}
