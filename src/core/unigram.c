/*
 * unigram.c — SentencePiece's unigram Viterbi (see unigram.h).
 */
#include "unigram.h"

#include <stdlib.h>
#include <string.h>

#include "sp_model.h"
#include "utf8.h"

static inline bool
in_trie(const cb_bpe_piece *p)
{
	return p->type == CB_SP_NORMAL || p->type == CB_SP_USER_DEFINED || p->type == CB_SP_UNUSED;
}

static inline uint32_t
edge_hash(uint32_t parent, uint32_t byte)
{
	uint64_t	h = ((uint64_t) parent << 8 | byte) * 0x9E3779B97F4A7C15ull;

	return (uint32_t) (h >> 32);
}

typedef struct str_ref
{
	const char *s;
	uint32_t	len;
} str_ref;

static int
cmp_ref(const void *a, const void *b)
{
	const str_ref *x = a,
			   *y = b;
	size_t		n = x->len < y->len ? x->len : y->len;
	int			c = memcmp(x->s, y->s, n);

	if (c != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

cb_status
cb_unigram_trie_size(const cb_bpe_vocab *v, uint32_t *n_nodes, uint32_t *edge_capacity, cb_error *err)
{
	str_ref    *refs = cb_malloc((v->n_pieces ? v->n_pieces : 1) * sizeof(str_ref));
	size_t		n = 0;
	uint64_t	nodes = 1;
	uint64_t	cap = 16;

	if (refs == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate the unigram trie");
	for (size_t i = 0; i < v->n_pieces; i++)
		if (in_trie(&v->pieces[i]))
		{
			refs[n].s = v->strings + v->pieces[i].str_off;
			refs[n].len = v->pieces[i].str_len;
			n++;
		}
	qsort(refs, n, sizeof(str_ref), cmp_ref);
	/* distinct prefixes: each string adds its bytes beyond the common prefix with the one before */
	for (size_t i = 0; i < n; i++)
	{
		uint32_t	lcp = 0;

		if (i > 0)
			while (lcp < refs[i].len && lcp < refs[i - 1].len && refs[i].s[lcp] == refs[i - 1].s[lcp])
				lcp++;
		nodes += refs[i].len - lcp;
	}
	cb_free(refs);
	if (nodes >= ((uint64_t) 1 << 30))
		return cb_set_error(err, CB_ERR_LIMIT, "sentencepiece model: the pieces' trie is too large");
	while (cap <= 2 * nodes)
		cap *= 2;
	*n_nodes = (uint32_t) nodes;
	*edge_capacity = (uint32_t) cap;
	return CB_OK;
}

static inline uint32_t
find_edge(const cb_unigram_edge *edges, uint32_t mask, uint32_t parent, uint32_t byte, bool *found)
{
	uint32_t	i = edge_hash(parent, byte) & mask;

	for (;;)
	{
		if (edges[i].parent1 == 0)
		{
			*found = false;
			return i;
		}
		if (edges[i].parent1 == parent + 1 && edges[i].byte == byte)
		{
			*found = true;
			return i;
		}
		i = (i + 1) & mask;
	}
}

void
cb_unigram_trie_fill(const cb_bpe_vocab *v, int32_t *node_piece, uint32_t n_nodes,
					 cb_unigram_edge *edges, uint32_t edge_capacity)
{
	uint32_t	next = 1;
	uint32_t	mask = edge_capacity - 1;

	for (uint32_t i = 0; i < n_nodes; i++)
		node_piece[i] = -1;
	for (size_t k = 0; k < v->n_pieces; k++)
	{
		const cb_bpe_piece *p = &v->pieces[k];
		const uint8_t *s = (const uint8_t *) v->strings + p->str_off;
		uint32_t	node = 0;

		if (!in_trie(p))
			continue;
		for (uint32_t j = 0; j < p->str_len; j++)
		{
			bool		found;
			uint32_t	e = find_edge(edges, mask, node, s[j], &found);

			if (!found)
			{
				edges[e].parent1 = node + 1;
				edges[e].byte = s[j];
				edges[e].child = next++;
			}
			node = edges[e].child;
		}
		node_piece[node] = (int32_t) k;
		if (k % 65536 == 65535)
			cb_check_interrupts();
	}
}

bool
cb_unigram_trie_valid(const int32_t *node_piece, uint32_t n_nodes, const cb_unigram_edge *edges,
					  uint32_t edge_capacity, size_t n_pieces)
{
	size_t		used = 0;

	if (n_nodes == 0 || edge_capacity < 16 || (edge_capacity & (edge_capacity - 1)) != 0)
		return false;
	for (uint32_t i = 0; i < n_nodes; i++)
		if (node_piece[i] < -1 || (node_piece[i] >= 0 && (size_t) node_piece[i] >= n_pieces))
			return false;
	for (uint32_t i = 0; i < edge_capacity; i++)
	{
		if (edges[i].parent1 == 0)
			continue;
		used++;
		if (edges[i].parent1 > n_nodes || edges[i].child >= n_nodes || edges[i].byte > 255)
			return false;
	}
	return used < edge_capacity;
}

/* ------------------------------------------------------------------------- */

typedef struct best_node
{
	float		score;
	int32_t		starts_at;		/* -1: none */
	int32_t		id;
} best_node;

#define UNK_PENALTY 10.0f

cb_status
cb_unigram_encode(const cb_unigram *u, const cb_bpe_vocab *v, cb_unigram_work *w,
				  const char *norm, size_t len,
				  cb_bpe_flush_fn flush, void *flush_arg, bool *stopped, cb_error *err)
{
	best_node  *best;
	const uint8_t *t = (const uint8_t *) norm;
	const float unk_score = u->min_score - UNK_PENALTY;
	size_t		starts_at = 0;
	size_t		since_check = 0;
	size_t		n_tok = 0;
	cb_status	st;

	*stopped = false;
	if (len == 0)
		return CB_OK;
	if (len > INT32_MAX - 1)
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: a text of %zu bytes is too long for one pass", len);
	if (w->cap < len + 1)
	{
		size_t		cap = len + 1 < 4096 ? 4096 : len + 1;

		cb_free(w->best);
		w->best = cb_malloc(cap * sizeof(best_node));
		w->cap = w->best ? cap : 0;
		if (w->best == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate %zu bytes", cap * sizeof(best_node));
	}
	if (w->tokens == NULL)
	{
		w->tokens = cb_malloc(CB_BPE_TOKEN_BATCH * sizeof(cb_bpe_token));
		if (w->tokens == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate the token batch");
	}
	best = w->best;
	for (size_t i = 0; i <= len; i++)
	{
		best[i].score = 0.0f;
		best[i].starts_at = -1;
		best[i].id = -1;
	}
	while (starts_at < len)
	{
		const float till_here = best[starts_at].score;
		size_t		mblen = cb_utf8_lead_len(t[starts_at]);
		bool		has_single_node = false;
		uint32_t	node = 0;

		if (mblen > len - starts_at)
			mblen = len - starts_at;
		for (size_t key_pos = starts_at; key_pos < len;)
		{
			bool		found;
			uint32_t	e = find_edge(u->edges, u->edge_mask, node, t[key_pos], &found);
			int32_t		ret;

			if (!found)
				break;
			node = u->edges[e].child;
			key_pos++;
			ret = u->node_piece[node];
			if (ret >= 0)
			{
				const cb_bpe_piece *p = &v->pieces[ret];
				size_t		length = key_pos - starts_at;
				best_node  *target = &best[key_pos];

				if (p->type == CB_SP_UNUSED)
					continue;
				{
					/*
					 * SentencePiece: `IsUserDefined ? length * max_score_ - 0.1 :
					 * GetScore` has type double (the conditional's common type),
					 * so every candidate is summed and compared in double, then
					 * stored as a float: ties break as there.
					 */
					double		score = p->type == CB_SP_USER_DEFINED ?
						((float) length * u->max_score - 0.1) : (double) p->score;
					double		cand = score + till_here;

					if (target->starts_at == -1 || cand > target->score)
					{
						target->score = (float) cand;
						target->starts_at = (int32_t) starts_at;
						target->id = ret;
					}
				}
				if (!has_single_node && length == mblen)
					has_single_node = true;
			}
		}
		if (!has_single_node)
		{
			best_node  *target = &best[starts_at + mblen];
			float		cand = unk_score + till_here;

			if (target->starts_at == -1 || cand > target->score)
			{
				target->score = cand;
				target->starts_at = (int32_t) starts_at;
				target->id = v->unk_id;
			}
		}
		starts_at += mblen;
		if (++since_check >= 65536)
		{
			since_check = 0;
			cb_check_interrupts();
		}
	}

	/*
	 * Backtrack: the path, right to left, is linked through starts_at; reverse
	 * the links (into id's place is not possible: reuse score's bits for "next")
	 * so that the tokens go out left to right.
	 */
	{
		int32_t		ends_at = (int32_t) len;
		int32_t		next_end = -1;

		while (ends_at > 0)
		{
			int32_t		start = best[ends_at].starts_at;
			float		link;

			memcpy(&link, &next_end, sizeof(link));
			best[ends_at].score = link; /* the end of the piece after this one */
			next_end = ends_at;
			ends_at = start;
		}
		/* next_end: the end of the first piece */
		for (int32_t end = next_end; end > 0;)
		{
			int32_t		following;
			int32_t		start = best[end].starts_at;

			memcpy(&following, &best[end].score, sizeof(following));
			w->tokens[n_tok].off = (uint32_t) start;
			w->tokens[n_tok].len = (uint32_t) (end - start);
			w->tokens[n_tok].id = best[end].id;
			if (++n_tok == CB_BPE_TOKEN_BATCH)
			{
				if ((st = flush(flush_arg, w->tokens, n_tok, stopped, err)) != CB_OK || *stopped)
					return st;
				n_tok = 0;
			}
			end = following;
		}
	}
	if (n_tok > 0)
		return flush(flush_arg, w->tokens, n_tok, stopped, err);
	return CB_OK;
}

size_t
cb_unigram_work_scratch_bytes(const cb_unigram_work *w)
{
	return w->cap * sizeof(best_node) + (w->tokens ? CB_BPE_TOKEN_BATCH * sizeof(cb_bpe_token) : 0);
}

void
cb_unigram_work_free(cb_unigram_work *w)
{
	cb_free(w->best);
	cb_free(w->tokens);
	w->best = NULL;
	w->tokens = NULL;
	w->cap = 0;
}
