/*
 * matmul_f32_kernels.h — inside the core: the micro-kernels of the float32
 * products (matmul_f32_avx512.c, matmul_f32_avx2.c) as the drivers of
 * matmul_f32.c see them.
 *
 * A tile computes a small block of the output with its accumulators in
 * registers; each shape (rows x columns, up to the ISA's largest) is its own
 * function, compiled with the loops unrolled for it, and the tables below
 * hold them by [rows - 1][columns - 1].  Every function here is compiled for
 * its instruction set (target attributes) and only called when cb_cpu()
 * says it is in use.
 *
 * The AVX-512 "packed X" kernel, for products of 13 rows or more
 * (MM_PACK_MIN_ROWS in matmul_f32.c): the rows of X (tokens) are first
 * transposed, MM_PACK_ROWS (128) at a time, into blocks of 32 tokens laid
 * out [k][32] (the caller's scratch); a tile then computes 12 outputs (12
 * rows of W, read in place with one broadcast each per k) for the 32 tokens
 * of a block with 24 accumulators, 2 vector loads and 12 broadcasts per 24
 * fused multiply-adds, and writes its 12 x 32 results transposed into Y.  A
 * block of 16 tokens or fewer uses one vector.  W rows are never copied.
 */
#ifndef CB_MATMUL_F32_KERNELS_H
#define CB_MATMUL_F32_KERNELS_H

#include "cpu_features.h"

#include <stddef.h>

/* A tile: y[MR][NR] (=|+=) alpha * x[MR][0..k) · w[NR][0..k)ᵀ (+ bias when !acc). */
typedef void (*nt_tile_fn) (const float *x, size_t ldx, const float *w, size_t ldw, size_t k,
							float *y, size_t ldy, const float *bias, float alpha, int acc);

/* A tile of P · V: y[MR][0..cols) = p[MR][0..k) · v[0..k)[0..cols), cols <= NV vectors. */
typedef void (*nn_tile_fn) (const float *p, size_t ldp, const float *v, size_t ldv, size_t k,
							float *y, size_t ldy, size_t cols);

#define MM_PACK_BLOCK 32		/* rows per packed block (OP_TB) */
#define OP_TB MM_PACK_BLOCK		/* tokens per packed block */
#define OP_MR 12				/* rows of W per tile */

/* A packed-X tile: y[t][0..MR) (=|+=) alpha * xt[0..k)[t] · w[MR][0..k)ᵀ
 * (+ bias when !acc) for the ntok tokens t of the block xt ([k][OP_TB]). */
typedef void (*op_tile_fn) (const float *xt, const float *w, size_t ldw, size_t k,
							float *y, size_t ldy, const float *bias, float alpha, int acc,
							size_t ntok);

#ifdef CB_HAVE_X86_KERNELS

#define TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* AVX-512 (matmul_f32_avx512.c): nt tiles up to 4 x 6, nn tiles up to 4 rows
 * x 4 vectors, packed-X tiles up to OP_MR rows of W x 2 vectors of tokens. */
extern const nt_tile_fn cb_nt512_tiles[4][6];
extern const nn_tile_fn cb_nn512_tiles[4][4];
extern const op_tile_fn cb_op512_tiles[OP_MR][2];

/* xt[b][k][32] = x[32 b + t][k] for the ntok rows of x (zeros past them). */
TARGET_AVX512 void cb_op_pack_512(const float *x, size_t ldx, size_t ntok, size_t in, float *xt);

/* AVX2 + FMA (matmul_f32_avx2.c): nt tiles up to 4 x 3, nn tiles up to 4 rows
 * x 2 vectors. */
extern const nt_tile_fn cb_nt256_tiles[4][3];
extern const nn_tile_fn cb_nn256_tiles[4][2];

#endif							/* CB_HAVE_X86_KERNELS */

#endif							/* CB_MATMUL_F32_KERNELS_H */
