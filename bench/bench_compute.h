/*
 * bench_compute.h — the compute context the bench programs run the core with.
 *
 * Its thread count is OPENBLAS_NUM_THREADS (openblas_get_num_threads), the
 * bench's way of choosing threads.  A core from before the context
 * (BENCH_CORE_DIR) read that setting itself: BENCH_HAS_COMPUTE is then 0 and
 * BENCH_CC (the first argument of the compute calls) expands to nothing.
 */
#ifndef BENCH_COMPUTE_H
#define BENCH_COMPUTE_H

extern int	openblas_get_num_threads(void);

#if __has_include("compute.h")
#include "compute.h"
#define BENCH_HAS_COMPUTE 1
#define BENCH_CC bench_compute(),
static inline const cb_compute *
bench_compute(void)
{
	static cb_compute cc;

	cc = cb_compute_serial();
	cc.threads = openblas_get_num_threads();
	return &cc;
}
#else
#define BENCH_HAS_COMPUTE 0
#define BENCH_CC
#endif

#endif							/* BENCH_COMPUTE_H */
