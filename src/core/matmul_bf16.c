/*
 * matmul_bf16.c — products with CB_MATRIX_BF16_PACKED weights (see
 * matrix.h): activations rounded to bfloat16, float32 sums.  The portable
 * path.
 */
#include "matrix_kernels.h"

size_t
cb_bf16_product_scratch(const cb_matrix *w, size_t n)
{
	return n * cb_round_up(w->cols, 2) * sizeof(uint16_t) + 64;
}

void
cb_bf16_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
				float *y, size_t ldy, size_t n, void *scratch)
{
	size_t		cols2 = cb_round_up(w->cols, 2);
	uint16_t   *xb = cb_align64(scratch);
	const uint16_t *wd = w->data;

	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < cols2; c++)
			xb[i * cols2 + c] = c < w->cols ? cb_f32_to_bf16(x[i * ldx + c]) : 0;
	for (size_t j = 0; j < w->rows; j++)
	{
		const uint16_t *blk = wd + (j / CB_MATRIX_BLOCK) * cols2 * CB_MATRIX_BLOCK + (j % CB_MATRIX_BLOCK) * 2;

		for (size_t i = 0; i < n; i++)
		{
			const uint16_t *xr = xb + i * cols2;
			float		acc = 0.0f;

			for (size_t p = 0; p < cols2 / 2; p++)
			{
				acc += cb_bf16_to_f32(xr[2 * p]) * cb_bf16_to_f32(blk[p * 32]);
				acc += cb_bf16_to_f32(xr[2 * p + 1]) * cb_bf16_to_f32(blk[p * 32 + 1]);
			}
			y[i * ldy + j] = acc + (bias != NULL ? bias[j] : 0.0f);
		}
	}
}

const char *
cb_bf16_path(void)
{
	return "portable";
}
