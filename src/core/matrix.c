/*
 * matrix.c — weight matrices in every format (see matrix.h): blob layout,
 * encoding from float32, decoding a row, and the product's dispatch to the
 * format's kernels (matrix_kernels.h).
 */
#include "matrix.h"
#include "matrix_kernels.h"
#include "matmul_f32.h"

#include <math.h>
#include <string.h>

/* ---- 16-bit floats -------------------------------------------------------- */

static inline uint32_t
f32_bits(float f)
{
	uint32_t	u;

	memcpy(&u, &f, 4);
	return u;
}

static inline float
bits_f32(uint32_t u)
{
	float		f;

	memcpy(&f, &u, 4);
	return f;
}

float
cb_bf16_to_f32(uint16_t h)
{
	return bits_f32((uint32_t) h << 16);
}

uint16_t
cb_f32_to_bf16(float f)
{
	uint32_t	u = f32_bits(f);

	if ((u & 0x7FFFFFFFu) > 0x7F800000u)	/* NaN: keep it a (quiet) NaN */
		return (uint16_t) ((u >> 16) | 0x40);
	u += 0x7FFFu + ((u >> 16) & 1);		/* round to nearest even */
	return (uint16_t) (u >> 16);
}

float
cb_f16_to_f32(uint16_t h)
{
	uint32_t	sign = (uint32_t) (h & 0x8000) << 16;
	uint32_t	exp = (h >> 10) & 0x1F;
	uint32_t	mant = h & 0x3FF;

	if (exp == 0x1F)			/* inf / nan (payload kept) */
		return bits_f32(sign | 0x7F800000u | (mant << 13));
	if (exp != 0)
		return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
	if (mant == 0)
		return bits_f32(sign);
	/* subnormal: normalize */
	exp = 113;
	while ((mant & 0x400) == 0)
	{
		mant <<= 1;
		exp--;
	}
	mant &= 0x3FF;
	return bits_f32(sign | (exp << 23) | (mant << 13));
}

uint16_t
cb_f32_to_f16(float f)
{
	uint32_t	u = f32_bits(f);
	uint32_t	sign = (u >> 16) & 0x8000;
	uint32_t	a = u & 0x7FFFFFFFu;

	if (a > 0x7F800000u)		/* NaN */
		return (uint16_t) (sign | 0x7E00 | ((a >> 13) & 0x3FF));
	if (a >= 0x477FF000u)		/* rounds to >= 65536: infinity */
		return (uint16_t) (sign | 0x7C00);
	if (a < 0x38800000u)		/* below 2^-14: subnormal (or zero) */
	{
		/* a / 2^-24, rounded to nearest even, in float arithmetic (exact steps) */
		float		v = bits_f32(a) * 16777216.0f;	/* x * 2^24 */

		return (uint16_t) (sign | (uint32_t) lrintf(v));
	}
	a += 0xFFFu + ((a >> 13) & 1);
	return (uint16_t) (sign | ((a - 0x38000000u) >> 13));
}

/* ---- layout ----------------------------------------------------------------- */

const char *
cb_matrix_format_name(cb_matrix_format f)
{
	switch (f)
	{
		case CB_MATRIX_F32:
			return "f32";
		case CB_MATRIX_F16:
			return "f16";
		case CB_MATRIX_BF16:
			return "bf16";
		case CB_MATRIX_BF16_PACKED:
			return "bf16-packed";
		case CB_MATRIX_INT8_PACKED:
			return "int8-packed";
	}
	return NULL;
}

/* a * b + c, or 0 on overflow */
static size_t
mul_add(size_t a, size_t b, size_t c)
{
	if (b != 0 && a > (SIZE_MAX - c) / b)
		return 0;
	return a * b + c;
}

/* bytes of the data part, and (int8) the offsets of scales and sums */
static size_t
layout(cb_matrix_format f, size_t rows, size_t cols, size_t *scale_off, size_t *sums_off)
{
	size_t		rows16,
				data,
				total;

	*scale_off = *sums_off = 0;
	if (rows > SIZE_MAX / 2 - 64 || cols > SIZE_MAX / 2 - 64)
		return 0;
	rows16 = cb_round_up(rows, CB_MATRIX_BLOCK);
	switch (f)
	{
		case CB_MATRIX_F32:
			return mul_add(rows, cols, 0) > SIZE_MAX / 4 ? 0 : rows * cols * 4;
		case CB_MATRIX_F16:
		case CB_MATRIX_BF16:
			return mul_add(rows, cols, 0) > SIZE_MAX / 2 ? 0 : rows * cols * 2;
		case CB_MATRIX_BF16_PACKED:
			data = mul_add(rows16, cb_round_up(cols, 2), 0);
			return data > SIZE_MAX / 2 ? 0 : data * 2;
		case CB_MATRIX_INT8_PACKED:
			data = mul_add(rows16, cb_round_up(cols, 4), 0);
			if (data == 0 && rows16 != 0 && cols != 0)
				return 0;
			if (data > SIZE_MAX - 64 - 8 * rows16 - 64)
				return 0;
			*scale_off = cb_round_up(data, 64);
			*sums_off = cb_round_up(*scale_off + 4 * rows16, 64);
			total = *sums_off + 4 * rows16;
			return total;
	}
	return 0;
}

size_t
cb_matrix_blob_bytes(cb_matrix_format f, size_t rows, size_t cols)
{
	size_t		s,
				u;

	return layout(f, rows, cols, &s, &u);
}

cb_matrix
cb_matrix_view(cb_matrix_format f, size_t rows, size_t cols, const void *blob)
{
	cb_matrix	m;
	size_t		scale_off,
				sums_off;

	memset(&m, 0, sizeof(m));
	m.format = f;
	m.rows = rows;
	m.cols = cols;
	m.data = blob;
	(void) layout(f, rows, cols, &scale_off, &sums_off);
	if (f == CB_MATRIX_INT8_PACKED)
	{
		m.scale = (const float *) ((const char *) blob + scale_off);
		m.sums = (const int32_t *) ((const char *) blob + sums_off);
	}
	return m;
}

/* ---- encoding ----------------------------------------------------------------- */

static void
encode_bf16_packed(size_t rows, size_t cols, uint16_t *data, size_t row0, size_t nrows, const float *src)
{
	size_t		cols2 = cb_round_up(cols, 2);
	size_t		end = row0 + nrows == rows ? cb_round_up(rows, CB_MATRIX_BLOCK) : row0 + nrows;

	for (size_t r = row0; r < end; r++)
	{
		uint16_t   *blk = data + (r / CB_MATRIX_BLOCK) * cols2 * CB_MATRIX_BLOCK + (r % CB_MATRIX_BLOCK) * 2;

		for (size_t c = 0; c < cols2; c++)
		{
			float		v = (r < rows && c < cols) ? src[(r - row0) * cols + c] : 0.0f;

			blk[(c / 2) * 32 + c % 2] = cb_f32_to_bf16(v);
		}
	}
}

static void
encode_int8_packed(size_t rows, size_t cols, void *blob, size_t row0, size_t nrows, const float *src)
{
	size_t		scale_off,
				sums_off;
	size_t		cols4 = cb_round_up(cols, 4);
	size_t		end = row0 + nrows == rows ? cb_round_up(rows, CB_MATRIX_BLOCK) : row0 + nrows;
	int8_t	   *data = blob;
	float	   *scale;
	int32_t    *sums;

	(void) layout(CB_MATRIX_INT8_PACKED, rows, cols, &scale_off, &sums_off);
	scale = (float *) ((char *) blob + scale_off);
	sums = (int32_t *) ((char *) blob + sums_off);
	for (size_t r = row0; r < end; r++)
	{
		int8_t	   *blk = data + (r / CB_MATRIX_BLOCK) * cols4 * CB_MATRIX_BLOCK + (r % CB_MATRIX_BLOCK) * 4;
		const float *row = r < rows ? src + (r - row0) * cols : NULL;
		float		amax = 0.0f,
					inv = 0.0f;
		int32_t		sum = 0;

		for (size_t c = 0; row != NULL && c < cols; c++)
			if (fabsf(row[c]) > amax)
				amax = fabsf(row[c]);
		if (amax > 0.0f && isfinite(amax))
			inv = 127.0f / amax;
		for (size_t c = 0; c < cols4; c++)
		{
			int32_t		q = 0;

			if (row != NULL && c < cols && inv > 0.0f)
			{
				q = (int32_t) lrintf(row[c] * inv);
				q = q > 127 ? 127 : (q < -127 ? -127 : q);
			}
			blk[(c / 4) * 64 + c % 4] = (int8_t) q;
			sum += q;
		}
		scale[r] = inv > 0.0f ? amax / 127.0f : 0.0f;
		sums[r] = sum;
	}
}

void
cb_matrix_encode_rows(cb_matrix_format f, size_t rows, size_t cols, void *blob,
					  size_t row0, size_t nrows, const float *src)
{
	switch (f)
	{
		case CB_MATRIX_F32:
			memcpy((float *) blob + row0 * cols, src, nrows * cols * sizeof(float));
			break;
		case CB_MATRIX_F16:
		case CB_MATRIX_BF16:
			{
				uint16_t   *d = (uint16_t *) blob + row0 * cols;

				for (size_t i = 0; i < nrows * cols; i++)
					d[i] = f == CB_MATRIX_F16 ? cb_f32_to_f16(src[i]) : cb_f32_to_bf16(src[i]);
			}
			break;
		case CB_MATRIX_BF16_PACKED:
			encode_bf16_packed(rows, cols, blob, row0, nrows, src);
			break;
		case CB_MATRIX_INT8_PACKED:
			encode_int8_packed(rows, cols, blob, row0, nrows, src);
			break;
	}
}

void
cb_matrix_row(const cb_matrix *m, size_t row, float *out)
{
	size_t		blk = row / CB_MATRIX_BLOCK,
				lane = row % CB_MATRIX_BLOCK;

	switch (m->format)
	{
		case CB_MATRIX_F32:
			memcpy(out, (const float *) m->data + row * m->cols, m->cols * sizeof(float));
			break;
		case CB_MATRIX_F16:
			for (size_t c = 0; c < m->cols; c++)
				out[c] = cb_f16_to_f32(((const uint16_t *) m->data)[row * m->cols + c]);
			break;
		case CB_MATRIX_BF16:
			for (size_t c = 0; c < m->cols; c++)
				out[c] = cb_bf16_to_f32(((const uint16_t *) m->data)[row * m->cols + c]);
			break;
		case CB_MATRIX_BF16_PACKED:
			{
				const uint16_t *b = (const uint16_t *) m->data + blk * cb_round_up(m->cols, 2) * CB_MATRIX_BLOCK + lane * 2;

				for (size_t c = 0; c < m->cols; c++)
					out[c] = cb_bf16_to_f32(b[(c / 2) * 32 + c % 2]);
			}
			break;
		case CB_MATRIX_INT8_PACKED:
			{
				const int8_t *b = (const int8_t *) m->data + blk * cb_round_up(m->cols, 4) * CB_MATRIX_BLOCK + lane * 4;
				float		s = m->scale[row];

				for (size_t c = 0; c < m->cols; c++)
					out[c] = (float) b[(c / 4) * 64 + c % 4] * s;
			}
			break;
	}
}

/* ---- products -------------------------------------------------------------------- */

size_t
cb_matrix_product_scratch(const cb_matrix *w, size_t n, int threads)
{
	switch (w->format)
	{
		case CB_MATRIX_F32:
			return cb_kernel_matmul_pack_floats(n, w->cols) * sizeof(float);
		case CB_MATRIX_F16:
		case CB_MATRIX_BF16:
			return cb_widen_product_scratch(w, n, threads);
		case CB_MATRIX_BF16_PACKED:
			return cb_bf16_product_scratch(w, n);
		case CB_MATRIX_INT8_PACKED:
			return cb_int8_product_scratch(w, n);
	}
	return 0;
}

void
cb_matrix_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
				  float *y, size_t ldy, size_t n, void *scratch, int threads)
{
	switch (w->format)
	{
		case CB_MATRIX_F32:
			cb_kernel_matmul_nt(x, ldx, w->data, w->cols, bias, 1.0f, y, ldy, n, w->rows, w->cols,
								scratch, threads);
			break;
		case CB_MATRIX_F16:
		case CB_MATRIX_BF16:
			cb_widen_product(x, ldx, w, bias, y, ldy, n, scratch, threads);
			break;
		case CB_MATRIX_BF16_PACKED:
			cb_bf16_product(x, ldx, w, bias, y, ldy, n, scratch, threads);
			break;
		case CB_MATRIX_INT8_PACKED:
			cb_int8_product(x, ldx, w, bias, y, ldy, n, scratch, threads);
			break;
	}
}

const char *
cb_matrix_path(cb_matrix_format f)
{
	switch (f)
	{
		case CB_MATRIX_F32:
			return cb_kernel_isa();
		case CB_MATRIX_F16:
		case CB_MATRIX_BF16:
			return cb_widen_path();
		case CB_MATRIX_BF16_PACKED:
			return cb_bf16_path();
		case CB_MATRIX_INT8_PACKED:
			return cb_int8_path();
	}
	return "none";
}
