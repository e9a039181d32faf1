/*
 * matmul_widen.c — products with CB_MATRIX_F16 / CB_MATRIX_BF16 weights
 * (kept as the file stores them): blocks of rows widened exactly to float32
 * into scratch, then the float32 product on them (matrix.h: bit-identical to
 * the widened matrix's product).
 */
#include "matrix_kernels.h"
#include "kernels.h"

#define WIDEN_ROWS 96			/* rows of W widened at a time: a multiple of every tile width (12, 6, 4, 3), so the float32 kernels tile each block as they tile the whole matrix */

size_t
cb_widen_product_scratch(const cb_matrix *w, size_t n)
{
	return (WIDEN_ROWS * w->cols + cb_kernel_matmul_pack_floats(n, w->cols)) * sizeof(float) + 64;
}

void
cb_widen_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
				 float *y, size_t ldy, size_t n, void *scratch)
{
	float	   *wide = cb_align64(scratch);
	float	   *pack = wide + WIDEN_ROWS * w->cols;

	for (size_t j = 0; j < w->rows; j += WIDEN_ROWS)
	{
		size_t		m = w->rows - j < WIDEN_ROWS ? w->rows - j : WIDEN_ROWS;

		for (size_t r = 0; r < m; r++)
			cb_matrix_row(w, j + r, wide + r * w->cols);
		cb_kernel_matmul_nt(x, ldx, wide, w->cols, bias != NULL ? bias + j : NULL, 1.0f,
							y + j, ldy, n, m, w->cols, pack);
	}
}

const char *
cb_widen_path(void)
{
	return cb_kernel_isa();
}
