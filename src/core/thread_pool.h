/*
 * thread_pool.h — the threads the kernels compute on (thread_pool.c).
 *
 * The calling thread and helper threads of a small pool created on first
 * use, with every signal blocked, that only compute and wait (they never
 * allocate: cb_common.h).  How many: the count each call is given (the
 * compute context's, compute.h), at most 16; fewer when the work would give
 * a thread too little to do.  One thread of a process uses the pool at a time; a
 * second thread calling meanwhile computes alone.  On the cblas code path
 * (a CPU with neither AVX2 nor AVX-512, or CAMEMBERT_KERNELS=blas:
 * cpu_features.h) everything runs on the calling thread, OpenBLAS having
 * threads of its own.
 */
#ifndef CB_THREAD_POOL_H
#define CB_THREAD_POOL_H

#include "cpu_features.h"

#include <stddef.h>

/*
 * fn(arg, item, worker) for every item in [0, items), on up to `workers`
 * threads of the pool (the caller and helpers; fewer when the items' `flops`
 * would give a thread less than ~1 MFLOP, or when another thread holds the
 * pool); worker < workers names the thread running the item, for scratch of
 * its own.  Items are handed out one at a time from a shared counter.
 * Matrix products called inside run on their thread alone.
 */
typedef void (*cb_kernel_item_fn) (void *arg, size_t item, int worker);
void		cb_kernel_parallel_for(size_t items, int workers, double flops,
								   cb_kernel_item_fn fn, void *arg);

/* The threads a product may use when `threads` are wanted: in [1, 16];
 * 1 on the cblas code path. */
int			cb_kernel_clamp_threads(int threads);

/* ---- for the kernels of the core ---- */

/*
 * Run fn(arg) on the calling thread and on up to threads - 1 helpers, all
 * at once; returns when every run has returned.  fn takes its work in
 * chunks from a shared counter in arg until none is left: helpers that wake
 * late find nothing (or the job closed) and leave.  Alone on the calling
 * thread when threads <= 1, when another thread holds the pool, or when no
 * helper can be started.  The pool exists with the x86-64 kernels only.
 */
#ifdef CB_HAVE_X86_KERNELS
typedef void (*cb_pool_fn) (void *arg);
void		cb_pool_run(cb_pool_fn fn, void *arg, int threads);
#endif

/* At most t threads, fewer while a thread's share of `flops` is under
 * min_share FLOPs. */
int			cb_threads_worth(int t, double flops, double min_share);

/* Threads for a product of `flops` whose work splits into `blocks` parts
 * (column blocks): cb_kernel_clamp_threads(threads), fewer while a
 * thread's share would be under 0.5 MFLOP or under two blocks. */
int			cb_threads_for(double flops, size_t blocks, int threads);

#endif							/* CB_THREAD_POOL_H */
