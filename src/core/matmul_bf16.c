/*
 * matmul_bf16.c — products with CB_MATRIX_BF16_PACKED weights (see matrix.h
 * and matmul_bf16.h): activations rounded to bfloat16, exact bf16 x bf16
 * products summed in float32.  The driver, and the portable path.
 *
 * The driver takes the tokens CB_BF16_GROUP at a time: the calling thread
 * converts a group's activations into the scratch (the path's format), then
 * the threads share the group's output columns in chunks of whole tiles
 * (cb_kernel_parallel_for).  A chunk walks the shared dimension in chunks of
 * kc column pairs (768 columns on every x86 path: a panel of tiles, 100 KB
 * of weights, stays in L2 while every token of the group passes over it;
 * the partial sums wait in y).  The token tiles are the innermost loop:
 * each reads its rows of activations (L1) and the panel.
 *
 * Measured on Zen 5 (one thread, 768x768, 3072x768, 768x3072 weights, n =
 * 1..2048): vdpbf16ps 6x4 tiles run at 2.0-2.6x the float32 product;
 * smaller k chunks (96, 192 pairs) were 5-20% slower, 8x3 and 4x4 tiles
 * about the same.  The widening paths run at 1.0-1.1x the float32 product
 * of their ISA from 64 tokens up (more at a few tokens, where half the
 * weight bytes count).
 */
#include "matmul_bf16.h"
#include "matrix_kernels.h"
#include "kernels.h"

#include <string.h>

/* ---- the portable path ---------------------------------------------------- */

static inline float
bits_to_f32(uint32_t u)
{
	float		f;

	memcpy(&f, &u, 4);
	return f;
}

static void
convert_portable(const float *x, size_t ldx, size_t n, size_t cols, void *xs, size_t ldxs)
{
	for (size_t t = 0; t < n; t++)
	{
		const float *src = x + t * ldx;
		float	   *dst = (float *) xs + t * ldxs;

		for (size_t c = 0; c < cols; c++)
		{
			uint32_t	u;

			memcpy(&u, &src[c], 4);
			dst[c] = bits_to_f32(cb_bf16_round_bits(u));
		}
		if (cols % 2 != 0)
			dst[cols] = 0.0f;
	}
}

static void
tile_portable(int mr, int nv, const void *xv, size_t ldx, const uint16_t *w, size_t ldw,
			  size_t pairs, float *y, size_t ldy, const float *bias, int flags, size_t last)
{
	const float *x = xv;

	for (int v = 0; v < nv; v++)
	{
		size_t		lanes = v + 1 < nv ? 16 : last;
		const uint16_t *wb = w + (size_t) v * ldw;

		for (int i = 0; i < mr; i++)
		{
			const float *xr = x + (size_t) i * ldx;
			float	   *yr = y + (size_t) i * ldy + 16 * (size_t) v;
			float		acc[16];

			for (size_t l = 0; l < 16; l++)
				acc[l] = (flags & CB_BF16_FIRST) || l >= lanes ? 0.0f : yr[l];
			for (size_t p = 0; p < pairs; p++)
			{
				float		xo = xr[2 * p + 1],
							xe = xr[2 * p];
				const uint16_t *wp = wb + 32 * p;

				for (size_t l = 0; l < 16; l++)
				{
					acc[l] += xo * bits_to_f32((uint32_t) wp[2 * l + 1] << 16);
					acc[l] += xe * bits_to_f32((uint32_t) wp[2 * l] << 16);
				}
			}
			for (size_t l = 0; l < lanes; l++)
				yr[l] = (flags & CB_BF16_LAST) && bias != NULL ? acc[l] + bias[16 * v + l] : acc[l];
		}
	}
}

const cb_bf16_kernel cb_bf16_portable = {
	.name = "portable",
	.mr = 4,
	.nv = 1,
	.kc = 128,
	.x_bytes = 4,
	.convert = convert_portable,
	.tile = tile_portable,
};

/* ---- choosing the path ---------------------------------------------------- */

const cb_bf16_kernel *
cb_bf16_kernel_current(void)
{
#ifdef CB_HAVE_X86_KERNELS
	const cb_cpu_features *f = cb_cpu();

	if (f->avx512_bf16)
		return &cb_bf16_avx512bf16;
	if (f->avx512)
		return &cb_bf16_avx512;
	if (f->avx2)
		return &cb_bf16_avx2;
#endif
	return &cb_bf16_portable;
}

const cb_bf16_kernel *
cb_bf16_kernel_named(const char *name)
{
#ifdef CB_HAVE_X86_KERNELS
	const cb_cpu_features *f = cb_cpu();

	if (strcmp(name, cb_bf16_avx512bf16.name) == 0)
		return f->avx512_bf16 ? &cb_bf16_avx512bf16 : NULL;
	if (strcmp(name, cb_bf16_avx512.name) == 0)
		return f->avx512 ? &cb_bf16_avx512 : NULL;
	if (strcmp(name, cb_bf16_avx2.name) == 0)
		return f->avx2 ? &cb_bf16_avx2 : NULL;
#endif
	if (strcmp(name, cb_bf16_portable.name) == 0)
		return &cb_bf16_portable;
	return NULL;
}

const char *
cb_bf16_path(void)
{
	return cb_bf16_kernel_current()->name;
}

/* ---- the driver ------------------------------------------------------------ */

typedef struct bf16_job
{
	const cb_bf16_kernel *k;
	const void *xs;				/* the group's converted activations */
	size_t		ldxs;
	const uint16_t *w;
	size_t		ldw;			/* uint16 from one block of 16 rows to the next */
	size_t		pairs;
	size_t		rows;
	const float *bias;
	float	   *y;				/* the group's first token */
	size_t		ldy;
	size_t		g;				/* tokens in the group */
	size_t		chunk;			/* blocks of 16 rows per item */
	size_t		blocks;
} bf16_job;

/* Blocks [chunk * item, ...) of the output for the group's tokens. */
static void
bf16_item(void *arg, size_t item, int worker)
{
	const bf16_job *jb = arg;
	const cb_bf16_kernel *k = jb->k;
	size_t		b0 = item * jb->chunk,
				b1 = jb->blocks - b0 < jb->chunk ? jb->blocks : b0 + jb->chunk;
	size_t		kc = k->kc;

	(void) worker;
	for (size_t k0 = 0; k0 < jb->pairs || k0 == 0; k0 += kc)
	{
		size_t		kk = jb->pairs - k0 < kc ? jb->pairs - k0 : kc;
		int			flags = (k0 == 0 ? CB_BF16_FIRST : 0) | (k0 + kk == jb->pairs ? CB_BF16_LAST : 0);
		const char *xk = (const char *) jb->xs + 2 * k0 * k->x_bytes;

		for (size_t b = b0; b < b1; b += (size_t) k->nv)
		{
			int			nv = b1 - b < (size_t) k->nv ? (int) (b1 - b) : k->nv;
			size_t		j = 16 * b;
			size_t		end = 16 * (b + (size_t) nv);
			size_t		last = 16 - (end > jb->rows ? end - jb->rows : 0);
			const uint16_t *wb = jb->w + b * jb->ldw + 32 * k0;

			for (size_t t = 0; t < jb->g; t += (size_t) k->mr)
			{
				int			mr = jb->g - t < (size_t) k->mr ? (int) (jb->g - t) : k->mr;

				k->tile(mr, nv, xk + t * jb->ldxs * k->x_bytes, jb->ldxs, wb, jb->ldw, kk,
						jb->y + t * jb->ldy + j, jb->ldy, jb->bias != NULL ? jb->bias + j : NULL,
						flags, last);
			}
		}
		if (kk == 0)
			break;
	}
}

size_t
cb_bf16_product_scratch(const cb_matrix *w, size_t n)
{
	size_t		g = n < CB_BF16_GROUP ? n : CB_BF16_GROUP;

	/* room for the widest activations of any path (float32) */
	return g * cb_round_up(w->cols, 2) * sizeof(float) + 64;
}

void
cb_bf16_product_on(const cb_bf16_kernel *k, const float *x, size_t ldx, const cb_matrix *w,
				   const float *bias, float *y, size_t ldy, size_t n, void *scratch, int threads)
{
	bf16_job	jb;
	size_t		tiles;

	if (n == 0 || w->rows == 0)
		return;
	threads = cb_kernel_clamp_threads(threads);
	memset(&jb, 0, sizeof(jb));
	jb.k = k;
	jb.xs = cb_align64(scratch);
	jb.ldxs = cb_round_up(w->cols, 2);
	jb.w = w->data;
	jb.pairs = jb.ldxs / 2;
	jb.ldw = jb.ldxs * CB_MATRIX_BLOCK;
	jb.rows = w->rows;
	jb.bias = bias;
	jb.ldy = ldy;
	jb.blocks = (w->rows + CB_MATRIX_BLOCK - 1) / CB_MATRIX_BLOCK;
	/* whole tiles, about 4 items per thread (one item on one thread) */
	tiles = (jb.blocks + (size_t) k->nv - 1) / (size_t) k->nv;
	jb.chunk = (threads > 1 && tiles >= 4 * (size_t) threads ? tiles / (4 * (size_t) threads) : 1) *
		(size_t) k->nv;
	if (threads <= 1)
		jb.chunk = tiles * (size_t) k->nv;
	for (size_t g0 = 0; g0 < n; g0 += CB_BF16_GROUP)
	{
		jb.g = n - g0 < CB_BF16_GROUP ? n - g0 : CB_BF16_GROUP;
		jb.y = y + g0 * ldy;
		k->convert(x + g0 * ldx, ldx, jb.g, w->cols, (void *) jb.xs, jb.ldxs);
		cb_kernel_parallel_for((jb.blocks + jb.chunk - 1) / jb.chunk, threads,
							   2.0 * (double) jb.g * (double) w->rows * (double) w->cols,
							   bf16_item, &jb);
	}
}

void
cb_bf16_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
				float *y, size_t ldy, size_t n, void *scratch, int threads)
{
	cb_bf16_product_on(cb_bf16_kernel_current(), x, ldx, w, bias, y, ldy, n, scratch, threads);
}
