/*
 * matmul_int8.h — inside the core: what the int8 product's driver
 * (matmul_int8.c) shares with its per-ISA kernels (matmul_int8_*.c).
 *
 * The driver quantizes the activations once (see matrix.h: per row,
 * round-to-nearest-even, in [-127, 127]) into qx[n][cols4], rows cols4
 * bytes apart, the padding columns [cols, cols4) quantized as 0.  For the
 * VNNI kernels it stores qx + 128 (unsigned bytes; padding 128), the
 * operand vpdpbusd takes unsigned, and the kernels subtract 128 * sums[j].
 * Then the threads take the 16-row blocks of W in panels, and a kernel
 * computes every row of y for the panel's columns.  The int32 sums are
 * exact while 127 * 127 * cols4 < 2^31 (cols4 < 133 144).
 */
#ifndef CB_MATMUL_INT8_H
#define CB_MATMUL_INT8_H

#include "matrix.h"

typedef struct cb_int8_job
{
	const cb_matrix *w;
	const uint8_t *qx;			/* [n][cols4]: q (portable) or q + 128 (VNNI) */
	const float *sx;			/* [n]: the rows' scales (amax / 127) */
	size_t		cols4;			/* cols rounded up to 4: qx's row stride */
	const float *bias;			/* [rows] or NULL */
	float	   *y;
	size_t		ldy;
	size_t		n;
} cb_int8_job;

/*
 * y[0 .. n)[16 * b0 .. min(16 * b1, rows)) for blocks [b0, b1) of 16 rows
 * of W: the kernels.  Each is compiled for its instruction set and must
 * only be called when cb_cpu() has it.
 */
void		cb_int8_blocks_portable(const cb_int8_job *job, size_t b0, size_t b1);
void		cb_int8_blocks_avx512vnni(const cb_int8_job *job, size_t b0, size_t b1);
void		cb_int8_blocks_avxvnni(const cb_int8_job *job, size_t b0, size_t b1);

#endif							/* CB_MATMUL_INT8_H */
