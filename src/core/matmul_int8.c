/*
 * matmul_int8.c — products with CB_MATRIX_INT8_PACKED weights (see
 * matrix.h): each row of activations quantized to int8 at run time, exact
 * int32 dot products, one float scaling.  The portable path.
 */
#include "matrix_kernels.h"

#include <math.h>

size_t
cb_int8_product_scratch(const cb_matrix *w, size_t n)
{
	return n * cb_round_up(w->cols, 4) + n * sizeof(float) + 128;
}

void
cb_int8_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
				float *y, size_t ldy, size_t n, void *scratch)
{
	size_t		cols4 = cb_round_up(w->cols, 4);
	float	   *sx = cb_align64(scratch);
	int8_t	   *qx = cb_align64(sx + n);
	const int8_t *wd = w->data;

	for (size_t i = 0; i < n; i++)
	{
		const float *xr = x + i * ldx;
		float		amax = 0.0f,
					inv;

		for (size_t c = 0; c < w->cols; c++)
			if (fabsf(xr[c]) > amax)
				amax = fabsf(xr[c]);
		inv = amax > 0.0f ? 127.0f / amax : 0.0f;
		sx[i] = amax / 127.0f;
		for (size_t c = 0; c < cols4; c++)
		{
			int32_t		q = 0;

			if (c < w->cols && inv > 0.0f)
			{
				q = (int32_t) lrintf(xr[c] * inv);
				q = q > 127 ? 127 : (q < -127 ? -127 : q);
			}
			qx[i * cols4 + c] = (int8_t) q;
		}
	}
	for (size_t j = 0; j < w->rows; j++)
	{
		const int8_t *blk = wd + (j / CB_MATRIX_BLOCK) * cols4 * CB_MATRIX_BLOCK + (j % CB_MATRIX_BLOCK) * 4;

		for (size_t i = 0; i < n; i++)
		{
			const int8_t *xr = qx + i * cols4;
			int32_t		acc = 0;

			for (size_t c = 0; c < cols4; c++)
				acc += (int32_t) xr[c] * (int32_t) blk[(c / 4) * 64 + c % 4];
			y[i * ldy + j] = (float) acc * (sx[i] * w->scale[j]) + (bias != NULL ? bias[j] : 0.0f);
		}
	}
}

const char *
cb_int8_path(void)
{
	return "portable";
}
