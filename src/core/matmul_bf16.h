/*
 * matmul_bf16.h — inside the core: the code paths of the
 * CB_MATRIX_BF16_PACKED product (matmul_bf16.c drives them; matrix.h says
 * what the product computes), and a way for the tests to run each one.
 *
 * Every path computes each output the same way:
 *
 *     acc = 0
 *     for every pair of columns p (in order):
 *         acc += x[2p + 1] * W[j][2p + 1]     (each += rounded to float32)
 *         acc += x[2p] * W[j][2p]
 *     y = acc + bias[j]        (y = acc when there is no bias)
 *
 * with x rounded to bfloat16 by bf16_round below, which is what AVX512_BF16's
 * vdpbf16ps does (odd element first, checked on the hardware) and what its
 * vcvtne2ps2bf16 rounds.  The bf16 x bf16 products are exact in float32, so a
 * fused multiply-add of widened values rounds exactly as vdpbf16ps does: the
 * paths give bit-identical results, except where vdpbf16ps flushes denormals
 * (bfloat16 weights below 2^-126, products or partial sums below 2^-126),
 * which the widening paths keep.
 *
 * A path is a tile function over the packed layout, the largest tile it
 * computes, how it wants the activations converted, and how far the loops
 * block them; the driver runs the same loop nest for all.
 */
#ifndef CB_MATMUL_BF16_H
#define CB_MATMUL_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "cpu_features.h"
#include "matrix.h"

#define CB_BF16_FIRST 1			/* the first k chunk: start the sums at 0, else at y */
#define CB_BF16_LAST 2			/* the last k chunk: add the bias */

/*
 * A tile: for t < mr tokens and the 16 * nv outputs of nv blocks of 16 rows,
 *     y[t][16 v + l] = sums over `pairs` column pairs (see above)
 * x: the converted activations of token 0 at the tile's first pair (ldx
 * elements from one token to the next); w: the tile's first block at that
 * pair (ldw uint16 from one block to the next, 32 per pair); y, ldy: the
 * outputs; bias: the tile's first output's bias, or NULL; last: the outputs
 * of the last block that exist (1..16: the lanes past it are neither read
 * nor written).
 */
typedef void (*cb_bf16_tile_fn) (int mr, int nv, const void *x, size_t ldx,
								 const uint16_t *w, size_t ldw, size_t pairs,
								 float *y, size_t ldy, const float *bias, int flags, size_t last);

/* Convert n rows of activations (cols floats, ldx apart) into xs (rows of
 * cols rounded up to 2 entries, ldxs apart; the padding entry 0). */
typedef void (*cb_bf16_convert_fn) (const float *x, size_t ldx, size_t n, size_t cols,
									void *xs, size_t ldxs);

typedef struct cb_bf16_kernel
{
	const char *name;			/* what cb_bf16_path() says */
	int			mr,
				nv;				/* the largest tile: tokens x blocks of 16 rows */
	size_t		kc;				/* column pairs per k chunk */
	size_t		x_bytes;		/* 2: bfloat16 activations; 4: float32 holding bf16 values */
	cb_bf16_convert_fn convert;
	cb_bf16_tile_fn tile;
} cb_bf16_kernel;

/* The tokens the driver converts at a time (the scratch holds that many). */
#ifndef CB_BF16_GROUP
#define CB_BF16_GROUP 256
#endif

/* The activation rounding of every path: round to nearest even, NaN kept
 * a quiet NaN, zeros and denormals to a zero of their sign (as
 * vcvtne2ps2bf16).  The result as float32 bits. */
static inline uint32_t
cb_bf16_round_bits(uint32_t u)
{
	uint32_t	a = u & 0x7FFFFFFFu;

	if (a > 0x7F800000u)
		return (u | 0x00400000u) & 0xFFFF0000u;
	if (a < 0x00800000u)
		return u & 0x80000000u;
	return (u + 0x7FFFu + ((u >> 16) & 1)) & 0xFFFF0000u;
}

extern const cb_bf16_kernel cb_bf16_portable;
#ifdef CB_HAVE_X86_KERNELS
extern const cb_bf16_kernel cb_bf16_avx2;		/* AVX2 + FMA, widening */
extern const cb_bf16_kernel cb_bf16_avx512;		/* AVX-512F, widening */
extern const cb_bf16_kernel cb_bf16_avx512bf16; /* AVX512_BF16: vdpbf16ps */
#endif

/* The path cb_bf16_product takes (from cb_cpu()). */
const cb_bf16_kernel *cb_bf16_kernel_current(void);

/* The path of that name ("avx512-bf16", "avx512", "avx2", "portable") if
 * cb_cpu() allows it, else NULL: for the tests. */
const cb_bf16_kernel *cb_bf16_kernel_named(const char *name);

/* cb_bf16_product on a given path (scratch: cb_bf16_product_scratch). */
void		cb_bf16_product_on(const cb_bf16_kernel *k, const float *x, size_t ldx,
							   const cb_matrix *w, const float *bias, float *y, size_t ldy,
							   size_t n, void *scratch, int threads);

#endif							/* CB_MATMUL_BF16_H */
