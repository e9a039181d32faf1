/*
 * kernels.h — the element-wise and row-wise float32 kernels of the forward
 * pass: LayerNorm (optionally fused with bias + residual), exact (erf) GELU
 * fused with a bias, softmax, tanh, log-sum-exp.
 *
 * Every kernel works on row-major [rows][cols] float32 arrays, in place where
 * the name says so, and follows what PyTorch computes (float32 results;
 * LayerNorm statistics are accumulated in double, which only removes rounding
 * noise).  Nothing here allocates (cb_malloc) or fails.
 *
 * Matrix products (cb_kernel_matmul_nt / _nn): our own AVX-512 or AVX2+FMA
 * micro-kernels, chosen at run time from the CPU (functions compiled with
 * target attributes: no -m flag needed), else cblas_sgemm.  They read the
 * weights in place, in PyTorch's [out][in] layout, without the packing copy
 * a BLAS sgemm makes of them on every call: for the few-row products of
 * inference (a sentence is 10 to 500 rows) that copy costs as much as the
 * arithmetic.  The AVX-512 path transposes the activations instead (few
 * rows, into the caller's scratch).  Sums are taken in another order than a
 * BLAS's, so results differ from cblas_sgemm's by float rounding (relative
 * ~1e-7 per product).  With AVX-512, GELU and softmax also run 16 lanes wide
 * (the same operations per lane as their 4-lane code).
 *
 * Threads: a product large enough to share runs on
 * openblas_get_num_threads() threads (OPENBLAS_NUM_THREADS, or
 * openblas_set_num_threads, which camembert.threads calls): the calling
 * thread and helper threads of a small pool created on first use, with every
 * signal blocked, that only compute and wait.  One thread of a process uses
 * the pool at a time; a second thread calling meanwhile computes alone.
 *
 * CAMEMBERT_KERNELS=blas|avx2|avx512 in the environment (read once) selects a
 * code path the CPU supports, for tests and benchmarks; cb_kernel_isa() names
 * the one in use.
 */
#ifndef CB_KERNELS_H
#define CB_KERNELS_H

#include <stddef.h>

/* 0.5 * x * (1 + erf(x / sqrt(2))): transformers' "gelu" (exact form). */
float		cb_gelu(float x);

/* x[r][c] = gelu(x[r][c] + bias[c]); bias may be NULL. */
void		cb_kernel_bias_gelu(float *x, size_t rows, size_t cols, const float *bias);

/* x[r][c] = tanh(x[r][c] + bias[c]); bias may be NULL. */
void		cb_kernel_bias_tanh(float *x, size_t rows, size_t cols, const float *bias);

/* x[r][c] += bias[c]. */
void		cb_kernel_add_bias(float *x, size_t rows, size_t cols, const float *bias);

/* In place LayerNorm of every row: (x - mean) / sqrt(var + eps) * gamma + beta
 * (biased variance, as torch.nn.LayerNorm). */
void		cb_kernel_layernorm(float *x, size_t rows, size_t cols,
								const float *gamma, const float *beta, float eps);

/*
 * The post-LN residual step of a transformer block, fused:
 *     x[r] = LayerNorm(y[r] + bias + x[r])
 * y is the output of the dense layer (without its bias); x holds the residual
 * on entry and the result on exit.  bias may be NULL.
 */
void		cb_kernel_bias_residual_layernorm(float *x, const float *y, size_t rows, size_t cols,
											  const float *bias, const float *gamma,
											  const float *beta, float eps);

/* In place softmax of one row of n values (n >= 1).  Entries equal to
 * -INFINITY become exactly 0. */
void		cb_kernel_softmax(float *x, size_t n);

/* log(sum(exp(x[i]))) in double precision (n >= 1). */
double		cb_kernel_logsumexp(const float *x, size_t n);

/* Index of the largest value (the first one on ties, as torch.argmax). */
size_t		cb_kernel_argmax(const float *x, size_t n);

/*
 * y[i][j] = alpha * sum_k x[i][k] * w[j][k] + bias[j]
 * for i < n, j < out, k < in ("X · Wᵀ": w is a linear layer's weight
 * [out][in], or the keys of attention); bias may be NULL (0).  Rows of x, w
 * and y start ld* floats apart; y must not overlap x or w.
 * pack: NULL, or cb_kernel_matmul_pack_floats(n, in) floats of scratch (any
 * alignment) that lets the AVX-512 path use its faster kernel for products
 * of 13 rows or more (it transposes up to 128 rows of x there at a time).
 */
void		cb_kernel_matmul_nt(const float *x, size_t ldx, const float *w, size_t ldw,
								const float *bias, float alpha, float *y, size_t ldy,
								size_t n, size_t out, size_t in, float *pack);
size_t		cb_kernel_matmul_pack_floats(size_t n, size_t in);

/*
 * y[i][j] = sum_k p[i][k] * v[k][j] for i < n, j < out, k < in ("P · V":
 * attention probabilities times values).  Runs on the calling thread only.
 */
void		cb_kernel_matmul_nn(const float *p, size_t ldp, const float *v, size_t ldv,
								float *y, size_t ldy, size_t n, size_t out, size_t in);

/*
 * fn(arg, item, worker) for every item in [0, items), on up to `workers`
 * threads of the pool (the caller and helpers; fewer when the items' `flops`
 * would give a thread less than ~1 MFLOP, or when another thread holds the
 * pool); worker < workers names the thread running the item, for scratch of
 * its own.  Items are handed out one at a time from a shared counter.
 * Matrix products called inside run on their thread alone.
 */
typedef void (*cb_kernel_item_fn) (void *arg, size_t item, int worker);
void		cb_kernel_parallel_for(size_t items, int workers, double flops,
								   cb_kernel_item_fn fn, void *arg);

/* Threads a product or cb_kernel_parallel_for may use now (>= 1): the
 * count given to cb_kernel_set_threads() (before any call,
 * openblas_get_num_threads()), at most 16; 1 on the cblas code path. */
int			cb_kernel_threads(void);
void		cb_kernel_set_threads(int threads);

/* "avx512", "avx2" or "blas": the matrix-product code path in use. */
const char *cb_kernel_isa(void);

#endif							/* CB_KERNELS_H */
