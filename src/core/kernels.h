/*
 * kernels.h — the float32 kernels of the forward pass, one header per
 * concern:
 *
 *   row_ops.h       element- and row-wise: GELU, tanh, bias, LayerNorm (+ fused
 *                   residual), softmax, log-sum-exp, argmax
 *   matmul_f32.h    the matrix products (X · Wᵀ, P · V) and their code path
 *   thread_pool.h   the threads they compute on, cb_kernel_parallel_for
 *
 * For code that uses all three (the forward pass); other code includes the
 * one it needs.
 */
#ifndef CB_KERNELS_H
#define CB_KERNELS_H

#include "matmul_f32.h"
#include "row_ops.h"
#include "thread_pool.h"

#endif							/* CB_KERNELS_H */
