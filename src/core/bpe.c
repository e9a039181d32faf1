/*
 * bpe.c — SentencePiece BPE merge loop, piece hash table and resegmentation.
 */
#include "bpe.h"

#include <string.h>

#include "sp_model.h"
#include "utf8.h"

static const char kSpaceSymbol[3] = {'\xE2', '\x96', '\x81'};

/* One agenda entry: the pair that starts at symbol `left` (an index into the word). */
struct cb_bpe_pair
{
	float		score;
	uint32_t	left;
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

/* Make room for `need` elements; the old contents are lost (every caller refills). */
static cb_status
reserve_fresh(void **ptr, size_t *cap, size_t need, size_t elem, cb_error *err)
{
	size_t		new_cap,
				bytes;

	if (need <= *cap)
		return CB_OK;
	/* small: double (few calls); large: exactly (no slack on the longest words) */
	new_cap = *cap * 2 < 4096 ? (*cap * 2 > need ? *cap * 2 : need) : need;
	if (new_cap < 64)
		new_cap = 64;
	if (!cb_mul_size(new_cap, elem, &bytes))
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: scratch size overflow");
	cb_free(*ptr);				/* before allocating: the peak is the new size only */
	*ptr = NULL;
	*cap = 0;
	*ptr = cb_malloc(bytes);
	if (*ptr == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate %zu bytes of scratch", bytes);
	*cap = new_cap;
	return CB_OK;
}

/* Room for a word of n characters (off[] gets n + 1). */
static cb_status
reserve_word(cb_bpe_work *w, size_t n, cb_error *err)
{
	size_t		cap = w->sym_cap;
	size_t		c1 = cap,
				c2 = cap,
				c3 = cap;
	cb_status	st;

	if (n + 1 <= cap)
		return CB_OK;
	if ((st = reserve_fresh((void **) &w->off, &c1, n + 1, sizeof(uint32_t), err)) != CB_OK ||
		(st = reserve_fresh((void **) &w->span, &c2, c1, sizeof(uint16_t), err)) != CB_OK ||
		(st = reserve_fresh((void **) &w->hpos, &c3, c1, sizeof(uint32_t), err)) != CB_OK)
	{
		cb_free(w->off);
		cb_free(w->span);
		cb_free(w->hpos);
		w->off = NULL;
		w->span = NULL;
		w->hpos = NULL;
		w->sym_cap = 0;
		return st;
	}
	w->sym_cap = c1;
	return CB_OK;
}

size_t
cb_bpe_work_scratch_bytes(const cb_bpe_work *w)
{
	return w->sym_cap * (sizeof(uint32_t) * 2 + sizeof(uint16_t)) +
		w->heap_cap * sizeof(cb_bpe_pair) +
		(w->tokens != NULL ? CB_BPE_TOKEN_BATCH * sizeof(cb_bpe_token) : 0) +
		w->stack_cap * sizeof(uint32_t) +
		w->unused_cap * sizeof(uint32_t) +
		w->touched_cap * sizeof(uint32_t);
}

void
cb_bpe_work_free_scratch(cb_bpe_work *w)
{
	cb_bpe_cache *cache = w->cache;
	bool		no_cache = w->no_cache;

	w->cache = NULL;
	cb_bpe_work_free(w);
	w->cache = cache;
	w->no_cache = no_cache;
}

void
cb_bpe_work_free(cb_bpe_work *w)
{
	if (w == NULL)
		return;
	cb_free(w->off);
	cb_free(w->span);
	cb_free(w->hpos);
	cb_free(w->heap);
	cb_free(w->tokens);
	cb_free(w->stack);
	cb_free(w->unused_left);
	cb_free(w->touched);
	cb_free(w->cache);
	memset(w, 0, sizeof(*w));
}

/* ------------------------------------------------------------------------- */
/* The agenda: a binary max-heap on (score, then smallest left), indexed by
 * w->hpos so that a pair can be changed or removed in place. */

typedef struct merge_ctx
{
	const cb_bpe_vocab *v;
	cb_bpe_work *w;
	const char *norm;			/* the word's bytes are norm[off[0] .. off[n]) */
	uint32_t   *off;
	uint16_t   *span;
	uint32_t   *hpos;
	cb_bpe_pair *heap;
	size_t		n_heap;
	uint32_t	n;				/* characters of the word */
} merge_ctx;

static inline bool
pair_before(const cb_bpe_pair *a, const cb_bpe_pair *b)
{
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static inline void
heap_place(merge_ctx *c, size_t i, cb_bpe_pair item)
{
	c->heap[i] = item;
	c->hpos[item.left] = (uint32_t) i + 1;
}

static void
sift_up(merge_ctx *c, size_t i, cb_bpe_pair item)
{
	while (i > 0)
	{
		size_t		parent = (i - 1) / 2;

		if (!pair_before(&item, &c->heap[parent]))
			break;
		heap_place(c, i, c->heap[parent]);
		i = parent;
	}
	heap_place(c, i, item);
}

static void
sift_down(merge_ctx *c, size_t i, cb_bpe_pair item)
{
	size_t		count = c->n_heap;

	for (;;)
	{
		size_t		ch = 2 * i + 1;

		if (ch >= count)
			break;
		if (ch + 1 < count && pair_before(&c->heap[ch + 1], &c->heap[ch]))
			ch++;
		if (!pair_before(&c->heap[ch], &item))
			break;
		heap_place(c, i, c->heap[ch]);
		i = ch;
	}
	heap_place(c, i, item);
}

/* Take the entry at heap index i out. */
static void
heap_remove_at(merge_ctx *c, size_t i)
{
	cb_bpe_pair last = c->heap[--c->n_heap];

	c->hpos[c->heap[i].left] = 0;
	if (i == c->n_heap)
		return;
	if (i > 0 && pair_before(&last, &c->heap[(i - 1) / 2]))
		sift_up(c, i, last);
	else
		sift_down(c, i, last);
}

static inline void
remove_pair(merge_ctx *c, uint32_t s)
{
	uint32_t	h = c->hpos[s];

	if (h != 0 && h != CB_BPE_FROZEN)
		heap_remove_at(c, h - 1);
}

/*
 * The pair that starts at symbol l (SentencePiece's MaybeAddNewSymbolPair):
 * in the agenda when l and its right neighbour concatenate to a mergeable
 * piece and neither is frozen, else not.  `build`: filling the initial
 * agenda (heapified afterwards).
 */
/* set_pair(build): in span[l] (1 then), "l's pair is mergeable, its score in hpos[l]" */
#define SPAN_PAIR 0x8000

/* Room for one more agenda entry (it never holds more than n - 1). */
static cb_status
heap_room(merge_ctx *c, cb_error *err)
{
	cb_bpe_work *w = c->w;
	size_t		cap = w->heap_cap < 32 ? 64 : 2 * w->heap_cap;
	cb_bpe_pair *p;

	if (cap > c->n)
		cap = c->n;
	/* the agenda never holds more than n - 1 pairs: a full one is below n */
	cb_assert(cap > c->n_heap);
	p = cb_realloc(w->heap, cap * sizeof(cb_bpe_pair));
	if (p == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate %zu bytes of scratch",
							cap * sizeof(cb_bpe_pair));
	w->heap = c->heap = p;
	w->heap_cap = cap;
	return CB_OK;
}

static inline cb_status
set_pair(merge_ctx *c, uint32_t l, bool build, cb_error *err)
{
	uint32_t	r,
				lo,
				size;
	int32_t		id;
	const cb_bpe_piece *p;
	cb_bpe_pair pair;

	if (c->hpos[l] == CB_BPE_FROZEN)
		return CB_OK;
	r = l + c->span[l];
	if (r >= c->n || c->hpos[r] == CB_BPE_FROZEN)
	{
		remove_pair(c, l);
		return CB_OK;
	}
	lo = c->off[l];
	size = c->off[r + c->span[r]] - lo;
	id = cb_bpe_find(c->v, c->norm + lo, size);
	if (id < 0 || !((p = &c->v->pieces[id])->flags & CB_BPE_MERGEABLE))
	{
		remove_pair(c, l);
		return CB_OK;
	}
	pair.score = p->score;
	pair.left = l;
	if (build)
	{
		/* counted now, placed once the agenda has exactly the room (merge_word) */
		memcpy(&c->hpos[l], &pair.score, sizeof(float));	/* not NaN: never 0 or FROZEN */
		c->span[l] |= SPAN_PAIR;
		c->n_heap++;
	}
	else if (c->hpos[l] != 0)
	{
		size_t		i = c->hpos[l] - 1;

		if (i > 0 && pair_before(&pair, &c->heap[(i - 1) / 2]))
			sift_up(c, i, pair);
		else
			sift_down(c, i, pair);
	}
	else
	{
		if (c->n_heap == c->w->heap_cap)
		{
			cb_status	st = heap_room(c, err);

			if (st != CB_OK)
				return st;
		}
		c->n_heap++;
		sift_up(c, c->n_heap - 1, pair);
	}

	if (p->type == CB_SP_UNUSED)
	{
		/* SentencePiece's rev_merge[piece] = (left, right): the last one wins. */
		cb_bpe_work *w = c->w;

		if (w->unused_left[id] == 0)
			w->touched[w->n_touched++] = (uint32_t) id;
		w->unused_left[id] = c->off[r] - lo;
	}
	return CB_OK;
}

/* Merge the word's symbols (span[] and hpos[] initialized), as SentencePiece's main loop. */
static cb_status
merge_word(merge_ctx *c, cb_error *err)
{
	uint32_t	n = c->n;
	uint32_t	merges = 0;
	cb_status	st;

	/* the initial pairs, in SentencePiece's order (UNUSED records), then the agenda */
	c->n_heap = 0;
	for (uint32_t i = 0; i + 1 < n; i++)
	{
		if ((st = set_pair(c, i, true, err)) != CB_OK)
			return st;
		if ((i & 0xFFFF) == 0xFFFF)
			cb_check_interrupts();
	}
	if ((st = reserve_fresh((void **) &c->w->heap, &c->w->heap_cap, c->n_heap,
							sizeof(cb_bpe_pair), err)) != CB_OK)
		return st;
	c->heap = c->w->heap;
	c->n_heap = 0;
	for (uint32_t i = 0; i + 1 < n; i++)
	{
		if (c->span[i] & SPAN_PAIR)
		{
			cb_bpe_pair pair;

			c->span[i] = 1;
			memcpy(&pair.score, &c->hpos[i], sizeof(float));
			pair.left = i;
			heap_place(c, c->n_heap++, pair);
		}
		if ((i & 0xFFFF) == 0xFFFF)
			cb_check_interrupts();
	}
	for (size_t i = c->n_heap / 2; i-- > 0;)
		sift_down(c, i, c->heap[i]);

	while (c->n_heap > 0)
	{
		uint32_t	l = c->heap[0].left;
		uint32_t	r = l + c->span[l];
		uint32_t	end = r + c->span[r];
		uint16_t	len = (uint16_t) (end - l);

		heap_remove_at(c, 0);
		remove_pair(c, r);
		/* a mergeable piece is at most CB_SP_MAX_PIECE_BYTES long: the span fits */
		c->span[l] = len;
		c->span[end - 1] = len;
		if ((l > 0 && (st = set_pair(c, l - c->span[l - 1], false, err)) != CB_OK) ||
			(st = set_pair(c, l, false, err)) != CB_OK)
			return st;
		if (++merges == 65536)
		{
			merges = 0;
			cb_check_interrupts();
		}
	}
	return CB_OK;
}

/* ------------------------------------------------------------------------- */
/* Output */

typedef struct emit_ctx
{
	cb_bpe_flush_fn flush;
	void	   *arg;
	bool		stop;
} emit_ctx;

static inline cb_status
flush_tokens(cb_bpe_work *w, emit_ctx *e, cb_error *err)
{
	cb_status	st;

	if (w->n_tokens == 0)
		return CB_OK;
	st = e->flush(e->arg, w->tokens, w->n_tokens, &e->stop, err);
	w->n_tokens = 0;
	return st;
}

static inline cb_status
push_token(cb_bpe_work *w, emit_ctx *e, uint32_t off, uint32_t len, int32_t id, cb_error *err)
{
	cb_bpe_token *t;

	if (w->n_tokens == CB_BPE_TOKEN_BATCH)
	{
		cb_status	st = flush_tokens(w, e, err);

		if (st != CB_OK)
			return st;
	}
	t = &w->tokens[w->n_tokens++];
	t->off = off;
	t->len = len;
	t->id = id;
	return CB_OK;
}

/* Emit the final symbol [off, off+len), resegmenting UNUSED pieces. */
static cb_status
emit_symbol(const cb_bpe_vocab *v, cb_bpe_work *w, emit_ctx *e, const char *norm,
			uint32_t off, uint32_t len, cb_error *err)
{
	size_t		sp = 0;
	cb_status	st;

	if (!v->has_unused)
	{
		int32_t		id = cb_bpe_find(v, norm + off, len);

		return push_token(w, e, off, len, id >= 0 ? id : v->unk_id, err);
	}
	/* each split pops one part and pushes two, none empty: at most len parts wait */
	if ((st = reserve_fresh((void **) &w->stack, &w->stack_cap, 2 * (size_t) len + 2,
							sizeof(uint32_t), err)) != CB_OK)
		return st;
	w->stack[sp++] = off;
	w->stack[sp++] = len;
	while (sp > 0)
	{
		uint32_t	l = w->stack[--sp];
		uint32_t	o = w->stack[--sp];
		int32_t		id = cb_bpe_find(v, norm + o, l);

		if (id >= 0 && v->pieces[id].type == CB_SP_UNUSED &&
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
		if ((st = push_token(w, e, o, l, id >= 0 ? id : v->unk_id, err)) != CB_OK)
			return st;
	}
	return CB_OK;
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

/* ------------------------------------------------------------------------- */
/* The word cache */

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

/* Append the cached pieces of the word (room checked by the caller). */
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

/* ------------------------------------------------------------------------- */
/* Encoding */

/* Bytes of the symbol that starts at norm[pos] (SentencePiece's split into characters). */
static inline size_t
symbol_len(const cb_bpe_vocab *v, const char *norm, size_t pos, size_t len, bool *frozen)
{
	size_t		m;

	if (v->has_user_defined && (m = cb_bpe_user_defined_match(v, norm + pos, len - pos)) > 0)
	{
		*frozen = true;
		return m;
	}
	*frozen = false;
	m = cb_utf8_lead_len((uint8_t) norm[pos]);
	return m > len - pos ? len - pos : m;
}

static inline bool
starts_word(const char *norm, size_t pos, size_t len)
{
	return pos + 3 <= len && norm[pos] == kSpaceSymbol[0] &&
		norm[pos + 1] == kSpaceSymbol[1] && norm[pos + 2] == kSpaceSymbol[2];
}

static cb_status
encode_words(const cb_bpe_vocab *v, cb_bpe_work *w, const char *norm, size_t len,
			 emit_ctx *e, cb_error *err)
{
	cb_bpe_cache *cache = v->split_words && !w->no_cache ? get_cache(v, w) : NULL;
	merge_ctx	c;
	size_t		pos = 0;
	size_t		since_check = 0;
	cb_status	st;

	c.v = v;
	c.w = w;
	c.norm = norm;

	while (pos < len)
	{
		size_t		end,
					n = 0;
		bool		frozen;
		uint32_t	wlen;

		/* the word: its first symbol and every next one that does not start with "▁" */
		end = pos + symbol_len(v, norm, pos, len, &frozen);
		n = 1;
		while (end < len && !(v->split_words && starts_word(norm, end, len)))
		{
			end += symbol_len(v, norm, end, len, &frozen);
			if ((++n & 0xFFFF) == 0)
				cb_check_interrupts();
		}
		wlen = (uint32_t) (end - pos);

		/* its pieces fit in the batch (a longer word is flushed as it goes) */
		if (w->n_tokens + wlen > CB_BPE_TOKEN_BATCH && (st = flush_tokens(w, e, err)) != CB_OK)
			return st;
		if (e->stop)
			return CB_OK;
		{
			bool		cacheable = cache != NULL && wlen <= CACHE_MAX_WORD;
			uint32_t	h = 0;
			size_t		t0 = w->n_tokens;

			if (cacheable)
			{
				h = cb_bpe_hash(norm + pos, wlen);
				if (cache_lookup(cache, w, norm + pos, wlen, h, (uint32_t) pos))
					goto next_word;
			}
			if (n > UINT32_MAX - 2)
				return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: word of %zu characters is too long", n);
			if ((st = reserve_word(w, n, err)) != CB_OK)
				return st;
			/* the symbols again, into the arrays */
			{
				size_t		p = pos;

				for (uint32_t i = 0; i < n; i++)
				{
					size_t		m = symbol_len(v, norm, p, end, &frozen);

					w->off[i] = (uint32_t) p;
					w->span[i] = 1;
					w->hpos[i] = frozen ? CB_BPE_FROZEN : 0;
					p += m;
					if ((i & 0xFFFF) == 0xFFFF)
						cb_check_interrupts();
				}
				w->off[n] = (uint32_t) end;
			}
			c.off = w->off;
			c.span = w->span;
			c.hpos = w->hpos;
			c.n = (uint32_t) n;
			if ((st = merge_word(&c, err)) != CB_OK)
				return st;
			for (uint32_t s = 0; s < n; s += c.span[s])
			{
				uint32_t	o = c.off[s];

				if ((st = emit_symbol(v, w, e, norm, o, c.off[s + c.span[s]] - o, err)) != CB_OK)
					return st;
				if (e->stop)
					return CB_OK;
			}
			if (cacheable)
				cache_insert(cache, norm + pos, wlen, h, w->tokens + t0, w->n_tokens - t0, (uint32_t) pos);
		}
next_word:
		since_check += n;
		pos = end;
		if (since_check >= 65536)
		{
			since_check = 0;
			cb_check_interrupts();
		}
	}
	return flush_tokens(w, e, err);
}

cb_status
cb_bpe_encode(const cb_bpe_vocab *v, cb_bpe_work *w, const char *norm, size_t len,
			  cb_bpe_flush_fn flush, void *flush_arg, bool *stopped, cb_error *err)
{
	cb_status	st;
	emit_ctx	e;

	if (stopped != NULL)
		*stopped = false;
	w->n_tokens = 0;
	if (len == 0)
		return CB_OK;
	if (len >= INT32_MAX / 4)
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: normalized text of %zu bytes is too long", len);
	if (w->tokens == NULL)
	{
		w->tokens = cb_malloc(CB_BPE_TOKEN_BATCH * sizeof(cb_bpe_token));
		if (w->tokens == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate BPE scratch");
	}
	reset_unused(w);
	if (v->has_unused)
	{
		if (w->unused_cap < v->n_pieces)
		{
			cb_free(w->unused_left);
			w->unused_cap = 0;
			w->unused_left = cb_calloc(v->n_pieces, sizeof(uint32_t));
			if (w->unused_left == NULL)
				return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate BPE scratch");
			w->unused_cap = v->n_pieces;
		}
		if ((st = reserve_fresh((void **) &w->touched, &w->touched_cap, v->n_pieces + 1,
								sizeof(uint32_t), err)) != CB_OK)
			return st;
	}
	e.flush = flush;
	e.arg = flush_arg;
	e.stop = false;
	st = encode_words(v, w, norm, len, &e, err);
	reset_unused(w);
	w->n_tokens = 0;
	if (stopped != NULL)
		*stopped = e.stop;
	return st;
}
