/*
 * compute_context.c — the one place the PostgreSQL layer builds the core's
 * compute context (compute.h) for forward passes and generation:
 *
 *   threads    camembert.threads, capped by camembert.max_threads
 *   allocator  the current memory context (camembert_core_allocator), so an
 *              ERROR raised while core code is on the stack frees everything
 *   stop       CHECK_FOR_INTERRUPTS(): a pending cancel or termination
 *              throws from inside the check (longjmp), as it did before the
 *              context existed; it never returns "stop" itself, so the
 *              SQLSTATE and message are PostgreSQL's own
 */
#include "postgres.h"

#include <signal.h>
#include <pthread.h>

#include "miscadmin.h"

#include "camembert.h"
#include "matmul_f32.h"

/* openblas_set_num_threads is OpenBLAS-specific; declare it to stay header-agnostic. */
extern void openblas_set_num_threads(int num_threads);

static bool
check_interrupts(void *arg)
{
	(void) arg;
	CHECK_FOR_INTERRUPTS();
	return false;
}

/*
 * The engine's own products run on the kernels' pool, whose threads block
 * every signal.  OpenBLAS is only told a count where the engine calls it for
 * the products (a CPU without AVX2): telling it starts its threads, so that
 * is done with every signal blocked in this thread and they inherit the mask
 * — PostgreSQL's signal handlers must only ever run in the backend's own
 * thread.  Elsewhere OpenBLAS is never called, and starts no thread.
 */
static void
tell_openblas(int threads)
{
	static int	told = -1;

	if (told != threads && strcmp(cb_kernel_isa(), "blas") == 0)
	{
		sigset_t	all;
		sigset_t	old;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		openblas_set_num_threads(threads);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		told = threads;
	}
}

const cb_compute *
camembert_compute(void)
{
	static cb_compute cc;

	cc.threads = Min(camembert_threads, camembert_max_threads);
	cc.allocator = &camembert_core_allocator;
	cc.stop = check_interrupts;
	cc.stop_arg = NULL;
	tell_openblas(cc.threads);
	return &cc;
}
