/*
 * unigram.h — SentencePiece's unigram segmentation (unigram_model.cc,
 * Model::EncodeOptimized, as in 0.1.97) over the piece table of a tokenizer
 * image (bpe.h's cb_bpe_vocab: strings, scores, types).
 *
 * Viterbi over the normalized text, one character at a time: every piece
 * that starts there (found by walking a byte trie stored in the image) is a
 * candidate for the best path ending where it ends, scored by the sum of
 * piece scores (added and compared in double, kept in float, as SentencePiece
 * does: ties break as there; a user-defined piece scores
 * length * max_score - 0.1); a character that starts no
 * piece of its own length is an unknown piece scoring min_score - 10.  The
 * first candidate wins ties.  UNUSED pieces are never taken.  The best path
 * is handed over, left to right, as cb_bpe_tokens (same callback as BPE).
 *
 * The trie: node 0 is the root; edges are in an open-addressing table keyed
 * by (parent, byte); node_piece[n] is the piece a node ends, or -1.  Malformed
 * tries cannot loop: each step consumes one byte of the text.
 *
 * Memory: 12 bytes per character of the text handed over (the best-path
 * array), in a cb_unigram_work; the caller hands words or windows.  Checks
 * for interrupts every 65536 characters.
 */
#ifndef CB_UNIGRAM_H
#define CB_UNIGRAM_H

#include "cb_common.h"
#include "bpe.h"

typedef struct cb_unigram_edge
{
	uint32_t	parent1;		/* parent + 1, 0 = empty */
	uint32_t	child;
	uint32_t	byte;
} cb_unigram_edge;

typedef struct cb_unigram
{
	const int32_t *node_piece;	/* [n_nodes] */
	uint32_t	n_nodes;
	const cb_unigram_edge *edges;
	uint32_t	edge_mask;		/* capacity - 1 */
	float		min_score;		/* over NORMAL pieces */
	float		max_score;
} cb_unigram;

typedef struct cb_unigram_work
{
	void	   *best;			/* best-path nodes */
	size_t		cap;
	cb_bpe_token *tokens;		/* CB_BPE_TOKEN_BATCH */
} cb_unigram_work;

/*
 * Sizes of the trie of these pieces (the mergeable ones: NORMAL,
 * USER_DEFINED, UNUSED), then fill it: node_piece[n_nodes], edges[capacity]
 * (a power of two > edges, zeroed by the caller).
 */
cb_status	cb_unigram_trie_size(const cb_bpe_vocab *v, uint32_t *n_nodes, uint32_t *edge_capacity,
								 cb_error *err);
void		cb_unigram_trie_fill(const cb_bpe_vocab *v, int32_t *node_piece, uint32_t n_nodes,
								 cb_unigram_edge *edges, uint32_t edge_capacity);

/* Check a trie in an image (indices in range). */
bool		cb_unigram_trie_valid(const int32_t *node_piece, uint32_t n_nodes, const cb_unigram_edge *edges,
								  uint32_t edge_capacity, size_t n_pieces);

cb_status	cb_unigram_encode(const cb_unigram *u, const cb_bpe_vocab *v, cb_unigram_work *w,
							  const char *norm, size_t len,
							  cb_bpe_flush_fn flush, void *flush_arg, bool *stopped, cb_error *err);

size_t		cb_unigram_work_scratch_bytes(const cb_unigram_work *w);
void		cb_unigram_work_free(cb_unigram_work *w);

#endif							/* CB_UNIGRAM_H */
