/*
 * matrix_kernels.h — inside the core: the products of each matrix format,
 * which matrix.c dispatches to (see matrix.h for what each computes).
 *
 *   matmul_widen.c          CB_MATRIX_F16 / CB_MATRIX_BF16: rows widened to
 *                           float32 into scratch, then cb_kernel_matmul_nt
 *   matmul_bf16.c           CB_MATRIX_BF16_PACKED: driver + portable path;
 *                           matmul_bf16_avx512bf16.c (vdpbf16ps),
 *                           matmul_bf16_avx512.c, matmul_bf16_avx2.c
 *                           (widening in registers) (matmul_bf16.h)
 *   matmul_int8.c           CB_MATRIX_INT8_PACKED: driver, activation
 *                           quantization, portable path;
 *                           matmul_int8_avx512vnni.c, matmul_int8_avxvnni.c
 *                           its micro-kernels (matmul_int8.h)
 *
 * Each trio: the scratch it needs (bytes), the product, the path it takes
 * now (cb_cpu()).
 */
#ifndef CB_MATRIX_KERNELS_H
#define CB_MATRIX_KERNELS_H

#include "matrix.h"

size_t		cb_widen_product_scratch(const cb_matrix *w, size_t n, int threads);
void		cb_widen_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
							 float *y, size_t ldy, size_t n, void *scratch, int threads);
const char *cb_widen_path(void);

size_t		cb_bf16_product_scratch(const cb_matrix *w, size_t n);
void		cb_bf16_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
							float *y, size_t ldy, size_t n, void *scratch, int threads);
const char *cb_bf16_path(void);

size_t		cb_int8_product_scratch(const cb_matrix *w, size_t n);
void		cb_int8_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
							float *y, size_t ldy, size_t n, void *scratch, int threads);
const char *cb_int8_path(void);

/* Round a size up to a multiple of a power of two. */
static inline size_t
cb_round_up(size_t n, size_t to)
{
	return (n + to - 1) & ~(to - 1);
}

/* A pointer rounded up to 64 bytes. */
static inline void *
cb_align64(void *p)
{
	return (void *) (((uintptr_t) p + 63) & ~(uintptr_t) 63);
}

#endif							/* CB_MATRIX_KERNELS_H */
