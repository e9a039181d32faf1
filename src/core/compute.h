/*
 * compute.h — the compute context: what the compute path of the core
 * (cb_forward, the decoder, cb_generate, cb_beam_search, the matrix
 * products) runs with, passed explicitly instead of read from process-wide
 * settings:
 *
 *   threads    how many threads the kernels may use (the caller and helpers
 *              of the pool, thread_pool.h); the core never asks OpenBLAS
 *   allocator  where the compute path allocates (its workspaces, the
 *              decoder's KV cache, generation's buffers)
 *   stop       an interrupt check, called at safe points (between layers,
 *              at every generated token) on the calling thread
 *
 * The stop check returns true to stop: the call then frees what it allocated
 * and returns CB_ERR_CANCELED.  It may also not return at all (PostgreSQL's
 * CHECK_FOR_INTERRUPTS longjmps out of it): at every check the compute path
 * holds nothing but memory from the context's allocator, which the caller
 * reclaims (PostgreSQL: with the memory context).
 *
 * Helper threads of the pool only compute: they never allocate, free or
 * check for interrupts (cb_assert, in debug builds, catches a helper that
 * calls cb_compute_alloc, cb_compute_free, cb_compute_stopped or cb_malloc).
 *
 * How far the context reaches: the compute path only.  The readers (model
 * files, images) and the tokenizers keep the core's plain allocator and
 * interrupt hook (cb_common.h, rules 2 and 3): they run on the calling thread
 * alone, they are called from many places that have no context to hand (the
 * loaders, the tokenizer's SQL functions), and their interrupt points sit in
 * deep loops where a "stop" return would need an error path through every
 * function; a longjmp from the hook is what they were written for.
 */
#ifndef CB_COMPUTE_H
#define CB_COMPUTE_H

#include "cb_common.h"

typedef struct cb_compute
{
	int			threads;		/* kernel threads wanted (>= 1; see cb_compute_threads) */
	const cb_allocator *allocator;	/* NULL: the core's allocator (cb_malloc) */
	bool		(*stop) (void *arg);	/* NULL: never stop; true: stop now */
	void	   *stop_arg;
} cb_compute;

/* One thread, the core's allocator, never stops: cb_compute_serial(). */
cb_compute	cb_compute_serial(void);

/* The threads the kernels use under cc: cc->threads clamped to [1, 16];
 * 1 on the cblas code path (OpenBLAS has threads of its own there). */
int			cb_compute_threads(const cb_compute *cc);

/* Allocation through the context (never on a helper thread). */
void	   *cb_compute_alloc(const cb_compute *cc, size_t size);
void		cb_compute_free(const cb_compute *cc, void *ptr);

/* Run the stop check (on the calling thread only): true to stop.  It may
 * also longjmp (see above). */
bool		cb_compute_stopped(const cb_compute *cc);

/* Set err to CB_ERR_CANCELED ("canceled <what>") and return it. */
cb_status	cb_compute_canceled(cb_error *err, const char *what);

#endif							/* CB_COMPUTE_H */
