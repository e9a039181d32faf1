/*
 * matmul_f32.h — the float32 matrix products of the forward pass: X · Wᵀ
 * (linear layers, attention scores) and P · V (attention context).
 *
 * Our own AVX-512 or AVX2+FMA micro-kernels, chosen at run time from the CPU
 * (cpu_features.h; functions compiled with target attributes: no -m flag
 * needed), else cblas_sgemm.  They read the weights in place, in PyTorch's
 * [out][in] layout, without the packing copy a BLAS sgemm makes of them on
 * every call: for the few-row products of inference (a sentence is 10 to 500
 * rows) that copy costs as much as the arithmetic.  The AVX-512 path
 * transposes the activations instead (few rows, into the caller's scratch).
 * Sums are taken in another order than a BLAS's, so results differ from
 * cblas_sgemm's by float rounding (relative ~1e-7 per product).
 *
 *   matmul_f32.c          the drivers: code path, blocking, threads, cblas
 *   matmul_f32_avx512.c   AVX-512 tiles, the packed-X tiles and their packing
 *   matmul_f32_avx2.c     AVX2+FMA tiles
 *   matmul_f32_kernels.h  what the drivers see of the tiles
 *
 * A product large enough to share runs on up to the `threads` it is given,
 * threads of the pool (thread_pool.h), which share its output columns.
 *
 * CAMEMBERT_KERNELS=blas|avx2|avx512 in the environment (read once:
 * cpu_features.h) selects a code path the CPU supports, for tests and
 * benchmarks; cb_kernel_isa() names the one in use.
 */
#ifndef CB_MATMUL_F32_H
#define CB_MATMUL_F32_H

#include <stddef.h>

/*
 * y[i][j] = alpha * sum_k x[i][k] * w[j][k] + bias[j]
 * for i < n, j < out, k < in ("X · Wᵀ": w is a linear layer's weight
 * [out][in], or the keys of attention); bias may be NULL (0).  Rows of x, w
 * and y start ld* floats apart; y must not overlap x or w.
 * pack: NULL, or cb_kernel_matmul_pack_floats(n, in) floats of scratch (any
 * alignment) that lets the AVX-512 path use its faster kernel for products
 * of 13 rows or more (it transposes up to 128 rows of x there at a time).
 * threads: at most this many threads of the pool share the product (the
 * compute context's count, cb_compute_threads; 1 inside a parallel item).
 */
void		cb_kernel_matmul_nt(const float *x, size_t ldx, const float *w, size_t ldw,
								const float *bias, float alpha, float *y, size_t ldy,
								size_t n, size_t out, size_t in, float *pack, int threads);
size_t		cb_kernel_matmul_pack_floats(size_t n, size_t in);

/*
 * y[i][j] = sum_k p[i][k] * v[k][j] for i < n, j < out, k < in ("P · V":
 * attention probabilities times values).  Runs on the calling thread only.
 */
void		cb_kernel_matmul_nn(const float *p, size_t ldp, const float *v, size_t ldv,
								float *y, size_t ldy, size_t n, size_t out, size_t in);

/* "avx512", "avx2" or "blas": the matrix-product code path in use. */
const char *cb_kernel_isa(void);

#endif							/* CB_MATMUL_F32_H */
