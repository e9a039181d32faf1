/*
 * matmul_f32.c — the float32 matrix products (see matmul_f32.h): the code
 * path, the blocking of the work into tiles, threads, and the cblas path.
 * The tiles themselves are the ISA files' (matmul_f32_kernels.h).
 */
#include "matmul_f32.h"
#include "matmul_f32_kernels.h"
#include "thread_pool.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*
 * Layout of the work (X · Wᵀ, "nt"): the output is cut into tiles of MR rows
 * of X by NR rows of W; a tile keeps MR x NR vector accumulators in registers
 * and walks the shared dimension k in steps of one vector, loading MR + NR
 * vectors for MR x NR fused multiply-adds (4 x 6 with AVX-512: 24 zmm
 * accumulators), then adds each accumulator's lanes.  The loops around the
 * tiles keep one W block (NR rows x KC floats, 18 KB) in L1 while every row
 * block of X (RB rows x KC floats, 384 KB) streams from L2; K is cut in
 * chunks of at most KC so that both fit, the output then accumulating the
 * chunks.  Threads share the W blocks (the output columns).
 *
 * P · V ("nn", attention context): tiles of MR rows of P by up to 4 vectors
 * of columns of V; each step broadcasts one probability per row and loads
 * one row of V.
 */

#define MM_KC 768				/* shared-dimension chunk (floats) */
#define MM_RB 128				/* rows of X per block */
#define MM_PACK_ROWS 128		/* rows of X the packed-X kernel transposes at a time */
#define MM_PACK_MIN_ROWS 13		/* fewer rows: the dot-product kernel */
#ifndef OP_DOT_TAIL
#define OP_DOT_TAIL 12			/* a last block of this many rows or fewer: dot tiles */
#endif

typedef enum mm_isa
{
	MM_ISA_BLAS = 1,
	MM_ISA_AVX2,
	MM_ISA_AVX512
} mm_isa;

/* One product; tile functions of every ISA share this description. */
typedef struct mm_job
{
	const float *x;
	size_t		ldx;
	const float *w;
	size_t		ldw;
	const float *bias;
	float		alpha;
	float	   *y;
	size_t		ldy;
	size_t		n,
				out,
				in;
	mm_isa		isa;
	/* the packed-X kernel: rows [g0, g0 + g) of X, packed in xt */
	const float *xt;
	size_t		g0,
				g;
	/* threads take the columns in chunks of `chunk` from `next` (a busy core
	 * then simply takes fewer chunks) */
	size_t		chunk;
	atomic_size_t next;
} mm_job;

/* ---- choosing the code path ---- */

static mm_isa
current_isa(void)
{
	const cb_cpu_features *f = cb_cpu();

	return f->avx512 ? MM_ISA_AVX512 : f->avx2 ? MM_ISA_AVX2 : MM_ISA_BLAS;
}

const char *
cb_kernel_isa(void)
{
	switch (current_isa())
	{
		case MM_ISA_AVX512:
			return "avx512";
		case MM_ISA_AVX2:
			return "avx2";
		default:
			return "blas";
	}
}

#ifdef CB_HAVE_X86_KERNELS

/* Columns [j0, j1) of an nt product with tiles of at most mr_max x nr_max. */
static void
nt_columns(const mm_job *jb, size_t j0, size_t j1, const nt_tile_fn *tiles, int mr_max, int nr_max)
{
	size_t		chunks = (jb->in + MM_KC - 1) / MM_KC;
	size_t		kc = chunks > 0 ? (jb->in + chunks - 1) / chunks : 0;

	kc = (kc + 15) & ~(size_t) 15;
	for (size_t i0 = 0; i0 < jb->n; i0 += MM_RB)
	{
		size_t		i1 = jb->n - i0 < MM_RB ? jb->n : i0 + MM_RB;

		for (size_t k0 = 0; k0 < jb->in || k0 == 0; k0 += kc)
		{
			size_t		k = jb->in - k0 < kc ? jb->in - k0 : kc;

			for (size_t j = j0; j < j1; j += (size_t) nr_max)
			{
				size_t		nr = j1 - j < (size_t) nr_max ? j1 - j : (size_t) nr_max;
				const float *wj = jb->w + j * jb->ldw + k0;
				const float *bj = jb->bias != NULL ? jb->bias + j : NULL;

				for (size_t i = i0; i < i1; i += (size_t) mr_max)
				{
					size_t		mr = i1 - i < (size_t) mr_max ? i1 - i : (size_t) mr_max;

					tiles[(mr - 1) * (size_t) nr_max + (nr - 1)] (jb->x + i * jb->ldx + k0, jb->ldx,
																  wj, jb->ldw, k,
																  jb->y + i * jb->ldy + j, jb->ldy,
																  bj, jb->alpha, k0 > 0);
				}
			}
			if (k == 0)
				break;
		}
	}
}

/* The next chunk of columns [*j0, *j1) of a job (false when none is left). */
static bool
next_chunk(mm_job *jb, size_t *j0, size_t *j1)
{
	size_t		c = atomic_fetch_add(&jb->next, 1) * jb->chunk;

	if (c >= jb->out)
		return false;
	*j0 = c;
	*j1 = jb->out - c < jb->chunk ? jb->out : c + jb->chunk;
	return true;
}

static void
nt_part(void *arg)
{
	mm_job	   *jb = arg;
	const nt_tile_fn *tiles = jb->isa == MM_ISA_AVX512 ? &cb_nt512_tiles[0][0] : &cb_nt256_tiles[0][0];
	size_t		j0,
				j1;

	while (next_chunk(jb, &j0, &j1))
		nt_columns(jb, j0, j1, tiles, 4, jb->isa == MM_ISA_AVX512 ? 6 : 3);
}

/* The packed-X kernel on chunks of columns, for the rows of the job's group. */
static void
op_part(void *arg)
{
	mm_job	   *jb = arg;
	size_t		chunks = (jb->in + MM_KC - 1) / MM_KC;
	size_t		kc = (((jb->in + chunks - 1) / chunks) + 15) & ~(size_t) 15;
	size_t		blocks = (jb->g + OP_TB - 1) / OP_TB;
	size_t		c0,
				c1;

	while (next_chunk(jb, &c0, &c1))
		for (size_t k0 = 0; k0 < jb->in; k0 += kc)
		{
			size_t		k = jb->in - k0 < kc ? jb->in - k0 : kc;

			for (size_t j = c0; j < c1; j += OP_MR)
			{
				size_t		mr = c1 - j < OP_MR ? c1 - j : OP_MR;
				const float *wj = jb->w + j * jb->ldw + k0;
				const float *bj = jb->bias != NULL ? jb->bias + j : NULL;

				for (size_t b = 0; b < blocks; b++)
				{
					size_t		t = b * OP_TB;	/* first row of the block in the group */
					size_t		rows = jb->g - t < OP_TB ? jb->g - t : OP_TB;
					const float *xt = jb->xt + (b * jb->in + k0) * OP_TB;

					/*
					 * A full block: two vectors of rows.  Otherwise a half
					 * (one vector) while 16 rows remain, or more than
					 * OP_DOT_TAIL; the last few rows, which would leave most
					 * lanes idle, go through dot-product tiles on the same
					 * rows of W while they are in L1.
					 */
					if (rows == OP_TB)
					{
						cb_op512_tiles[mr - 1][1] (xt, wj, jb->ldw, k, jb->y + (jb->g0 + t) * jb->ldy + j,
												   jb->ldy, bj, jb->alpha, k0 > 0, OP_TB);
						continue;
					}
					for (size_t half = 0; half < 2 && rows > 0; half++)
					{
						size_t		r = rows < 16 ? rows : 16;
						size_t		i0 = jb->g0 + t + 16 * half;

						if (r == 16 || r > OP_DOT_TAIL)
							cb_op512_tiles[mr - 1][0] (xt + 16 * half, wj, jb->ldw, k,
													   jb->y + i0 * jb->ldy + j, jb->ldy, bj, jb->alpha,
													   k0 > 0, r);
						else
							for (size_t i = i0; i < i0 + r; i += 4)
							{
								size_t		m = i0 + r - i < 4 ? i0 + r - i : 4;

								for (size_t jj = 0; jj < mr; jj += 6)
								{
									size_t		cols = mr - jj < 6 ? mr - jj : 6;

									cb_nt512_tiles[m - 1][cols - 1] (jb->x + i * jb->ldx + k0, jb->ldx,
																	 wj + jj * jb->ldw, jb->ldw, k,
																	 jb->y + i * jb->ldy + j + jj, jb->ldy,
																	 bj != NULL ? bj + jj : NULL,
																	 jb->alpha, k0 > 0);
								}
							}
						rows -= r;
					}
				}
			}
		}
}

/* Columns per chunk: whole tiles, about 8 chunks per thread (all columns for one). */
static size_t
chunk_columns(size_t out, size_t tile, int threads)
{
	size_t		tiles = (out + tile - 1) / tile;
	size_t		per = threads > 1 ? tiles / (8 * (size_t) threads) : tiles;

	return (per > 0 ? per : 1) * tile;
}

#endif							/* CB_HAVE_X86_KERNELS: the drivers */

size_t
cb_kernel_matmul_pack_floats(size_t n, size_t in)
{
	size_t		rows = n < MM_PACK_ROWS ? n : MM_PACK_ROWS;

	/* 32-row blocks; + 16 floats to align the start */
	rows = (rows + MM_PACK_BLOCK - 1) / MM_PACK_BLOCK * MM_PACK_BLOCK;
	return rows * in + 16;
}

void
cb_kernel_matmul_nt(const float *x, size_t ldx, const float *w, size_t ldw,
					const float *bias, float alpha, float *y, size_t ldy,
					size_t n, size_t out, size_t in, float *pack, int threads)
{
	mm_isa		isa = current_isa();

	if (n == 0 || out == 0)
		return;
	if (isa == MM_ISA_BLAS)
	{
		float		beta = 0.0f;

		if (bias != NULL)
		{
			for (size_t r = 0; r < n; r++)
				memcpy(y + r * ldy, bias, out * sizeof(float));
			beta = 1.0f;
		}
		if (in == 0)
		{
			if (bias == NULL)
				for (size_t r = 0; r < n; r++)
					memset(y + r * ldy, 0, out * sizeof(float));
			return;
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int) n, (int) out, (int) in,
					alpha, x, (int) ldx, w, (int) ldw, beta, y, (int) ldy);
		return;
	}
#ifdef CB_HAVE_X86_KERNELS
	{
		mm_job		jb = {x, ldx, w, ldw, bias, alpha, y, ldy, n, out, in, isa, NULL, 0, 0, 0, 0};
		int			wanted = threads;

		if (isa == MM_ISA_AVX512 && pack != NULL && n >= MM_PACK_MIN_ROWS && in > 0)
		{
			float	   *xt = (float *) (((uintptr_t) pack + 63) & ~(uintptr_t) 63);

			threads = cb_threads_for(2.0 * (double) (n < MM_PACK_ROWS ? n : MM_PACK_ROWS) *
									 (double) out * (double) in, (out + OP_MR - 1) / OP_MR, wanted);
			jb.xt = xt;
			jb.chunk = chunk_columns(out, OP_MR, threads);
			for (size_t g0 = 0; g0 < n; g0 += MM_PACK_ROWS)
			{
				jb.g0 = g0;
				jb.g = n - g0 < MM_PACK_ROWS ? n - g0 : MM_PACK_ROWS;
				atomic_store(&jb.next, 0);
				cb_op_pack_512(x + g0 * ldx, ldx, jb.g, in, xt);
				cb_pool_run(op_part, &jb, threads);
			}
			return;
		}
		threads = cb_threads_for(2.0 * (double) n * (double) out * (double) in, (out + 5) / 6, wanted);
		jb.chunk = chunk_columns(out, isa == MM_ISA_AVX512 ? 6 : 3, threads);
		atomic_store(&jb.next, 0);
		cb_pool_run(nt_part, &jb, threads);
	}
#else
	(void) pack;
	(void) threads;
#endif
}

void
cb_kernel_matmul_nn(const float *p, size_t ldp, const float *v, size_t ldv,
					float *y, size_t ldy, size_t n, size_t out, size_t in)
{
	mm_isa		isa = current_isa();

	if (n == 0 || out == 0)
		return;
	if (in == 0)
	{
		for (size_t r = 0; r < n; r++)
			memset(y + r * ldy, 0, out * sizeof(float));
		return;
	}
#ifdef CB_HAVE_X86_KERNELS
	if (isa != MM_ISA_BLAS)
	{
		const nn_tile_fn *tiles = isa == MM_ISA_AVX512 ? &cb_nn512_tiles[0][0] : &cb_nn256_tiles[0][0];
		size_t		lanes = isa == MM_ISA_AVX512 ? 16 : 8;
		size_t		nv_max = isa == MM_ISA_AVX512 ? 4 : 2;
		size_t		span = lanes * nv_max;

		for (size_t c = 0; c < out; c += span)
		{
			size_t		cols = out - c < span ? out - c : span;
			size_t		nv = (cols + lanes - 1) / lanes;

			for (size_t i = 0; i < n; i += 4)
			{
				size_t		mr = n - i < 4 ? n - i : 4;

				tiles[(mr - 1) * nv_max + (nv - 1)] (p + i * ldp, ldp, v + c, ldv, in,
													 y + i * ldy + c, ldy, cols);
			}
		}
		return;
	}
#else
	(void) isa;
#endif
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) n, (int) out, (int) in,
				1.0f, p, (int) ldp, v, (int) ldv, 0.0f, y, (int) ldy);
}
