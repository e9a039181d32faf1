/*
 * row_ops.h — the element-wise and row-wise float32 kernels of the forward
 * pass: LayerNorm (optionally fused with bias + residual), exact (erf) GELU
 * fused with a bias, softmax, tanh, log-sum-exp, argmax (row_ops.c).
 *
 * Every kernel works on row-major [rows][cols] float32 arrays, in place where
 * the name says so, and follows what PyTorch computes (float32 results;
 * LayerNorm statistics are accumulated in double, which only removes rounding
 * noise).  Nothing here allocates (cb_malloc) or fails.  With AVX-512 (in
 * use: cpu_features.h), GELU and softmax run 16 lanes wide (the same
 * operations per lane as their 4-lane code).
 */
#ifndef CB_ROW_OPS_H
#define CB_ROW_OPS_H

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

#endif							/* CB_ROW_OPS_H */
