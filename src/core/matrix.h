/*
 * matrix.h — a weight matrix held in one of the formats a model image can
 * store, and its product with float32 activations.
 *
 * W is [rows][cols] in PyTorch's linear-layer sense: rows = out_features,
 * cols = in_features; the word embeddings ([vocab][hidden]) are one too,
 * read a row at a time (cb_matrix_row) and, tied, as the LM decoder.
 *
 * Formats:
 *
 *   CB_MATRIX_F32    float32, row-major [rows][cols].
 *   CB_MATRIX_F16    IEEE binary16, row-major: the bytes of the weight file,
 *   CB_MATRIX_BF16   bfloat16, row-major:      kept as stored (precision
 *                    'auto').  Products widen every weight exactly to
 *                    float32 and compute as CB_MATRIX_F32 does, with the
 *                    same kernels in the same order: on our own kernels'
 *                    paths (avx512, avx2) the results are bit-identical to
 *                    those of the F32 matrix holding the widened values;
 *                    on the cblas path, equal to float rounding (sgemm
 *                    blocks a block of rows as it likes).
 *   CB_MATRIX_BF16_PACKED  (precision 'bfloat16')  bfloat16 rounded from
 *                    float32 to nearest even, in blocks of 16 rows by pairs
 *                    of columns: element (r, c) is uint16
 *                    data[((r / 16) * (cols2 / 2) + c / 2) * 32 + (r % 16) * 2 + c % 2]
 *                    with cols2 = cols rounded up to 2 and rows to 16 (the
 *                    padding is zero).  Products round each activation to
 *                    bfloat16 (nearest even) and accumulate the exact
 *                    bf16 x bf16 products in float32, in vdpbf16ps's order
 *                    (per column pair, the odd column then the even one,
 *                    rounding after each): AVX512_BF16, or widened to
 *                    float32 in registers (AVX-512F, AVX2) or portable C,
 *                    all bit-identical except that vdpbf16ps flushes
 *                    denormals (matmul_bf16.h).
 *   CB_MATRIX_INT8_PACKED  (precision 'int8')  symmetric per row ("per
 *                    output channel"): scale[r] = max_c |W[r][c]| / 127,
 *                    q[r][c] = round-to-nearest-even(W[r][c] * (127 / amax_r))
 *                    clamped to [-127, 127] (0 when the row is all zero or
 *                    not finite), in blocks of 16 rows by
 *                    quads of columns: element (r, c) is int8
 *                    data[((r / 16) * (cols4 / 4) + c / 4) * 64 + (r % 16) * 4 + c % 4]
 *                    (cols4: cols rounded up to 4, rows to 16, zero padding),
 *                    then float scale[rows16] and int32 sums[rows16]
 *                    (sums[r] = sum_c q[r][c]).  Products quantize each row
 *                    of activations at run time ("dynamic quantization"):
 *                    amax = max_k |x[i][k]|, sx = amax / 127,
 *                    qx[k] = round-to-nearest-even(x[i][k] * (127 / amax))
 *                    in [-127, 127] (all 0 when amax is 0), and compute
 *                        y[i][j] = (float) acc * (sx * scale[j]) + bias[j],
 *                        acc = sum_k qx[k] * q[j][k]   (exact, int32)
 *                    The VNNI paths compute acc as sum (qx + 128) * q - 128 *
 *                    sums[j] (vpdpbusd multiplies unsigned by signed bytes);
 *                    every path gives bit-identical results.  A row of x
 *                    holding a NaN or an infinity gives NaN outputs; a row
 *                    so small that 127 / amax overflows gives the bias.
 *
 * A matrix lives in one *blob*: its data, then (int8) the scales and sums,
 * each part starting 64-byte aligned relative to the blob; the blob itself
 * must be 64-byte aligned.  cb_matrix_blob_bytes gives its size,
 * cb_matrix_encode_rows fills it from float32 rows, cb_matrix_view points
 * a cb_matrix at it.
 */
#ifndef CB_MATRIX_H
#define CB_MATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cb_matrix_format
{
	CB_MATRIX_F32 = 0,
	CB_MATRIX_F16,
	CB_MATRIX_BF16,
	CB_MATRIX_BF16_PACKED,
	CB_MATRIX_INT8_PACKED
} cb_matrix_format;

#define CB_MATRIX_NUM_FORMATS 5
#define CB_MATRIX_BLOCK 16		/* rows per block of the packed formats */

typedef struct cb_matrix
{
	cb_matrix_format format;
	size_t		rows,
				cols;
	const void *data;			/* see the format */
	const float *scale;			/* INT8_PACKED: [rows rounded up to 16], else NULL */
	const int32_t *sums;		/* INT8_PACKED: [rows rounded up to 16], else NULL */
} cb_matrix;

/* "f32", "f16", "bf16", "bf16-packed", "int8-packed" (NULL if unknown). */
const char *cb_matrix_format_name(cb_matrix_format f);

/* Bytes of a blob (0 if the size overflows size_t). */
size_t		cb_matrix_blob_bytes(cb_matrix_format f, size_t rows, size_t cols);

/* A matrix over a blob of cb_matrix_blob_bytes(f, rows, cols) bytes. */
cb_matrix	cb_matrix_view(cb_matrix_format f, size_t rows, size_t cols, const void *blob);

/*
 * Encode rows [row0, row0 + nrows) of W, given as float32 src[nrows][cols],
 * into the blob.  For the packed formats row0 is a multiple of 16, and the
 * call that ends at `rows` also zeroes the padding rows of the last block
 * (call in any order, each row once).  F16 and BF16 round to nearest even.
 */
void		cb_matrix_encode_rows(cb_matrix_format f, size_t rows, size_t cols, void *blob,
								  size_t row0, size_t nrows, const float *src);

/* out[0 .. cols) = row `row` of W as float32 (int8: q * scale, in float). */
void		cb_matrix_row(const cb_matrix *m, size_t row, float *out);

/*
 * y[i][j] = sum_k x[i][k] * W[j][k] + bias[j]   for i < n, j < rows, k < cols
 * bias may be NULL (0); rows of x and y start ldx and ldy floats apart; y
 * must not overlap x.  scratch: cb_matrix_product_scratch(m, n, threads)
 * bytes (any alignment), sized for the same `threads`.  Large products are
 * shared between up to `threads` kernel threads (the compute context's
 * count, cb_compute_threads), as cb_kernel_matmul_nt's are.
 */
void		cb_matrix_product(const float *x, size_t ldx, const cb_matrix *w, const float *bias,
							  float *y, size_t ldy, size_t n, void *scratch, int threads);
size_t		cb_matrix_product_scratch(const cb_matrix *w, size_t n, int threads);

/* The code path a format's products take now (e.g. "avx512-vnni",
 * "avx-vnni", "portable", "avx512-bf16", "avx512"): for tests and bench. */
const char *cb_matrix_path(cb_matrix_format f);

/* float32 <-> 16-bit floats, exact widening and round-to-nearest-even narrowing. */
float		cb_f16_to_f32(uint16_t h);
float		cb_bf16_to_f32(uint16_t h);
uint16_t	cb_f32_to_f16(float f);
uint16_t	cb_f32_to_bf16(float f);

#endif							/* CB_MATRIX_H */
