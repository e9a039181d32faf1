/*
 * thread_pool.c — the threads the kernels compute on (see thread_pool.h):
 * the pool, cb_kernel_parallel_for, and how many threads some work is worth.
 */
#include "thread_pool.h"
#include "cb_common.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#ifdef CB_HAVE_X86_KERNELS
#include <pthread.h>
#include <signal.h>
#endif

#define POOL_MAX_THREADS 16		/* the caller and at most 15 helpers */

/* The cblas code path (neither AVX2 nor AVX-512 in use: matmul_f32.c):
 * OpenBLAS's threads, none of ours. */
static bool
blas_path(void)
{
	const cb_cpu_features *f = cb_cpu();

	return !f->avx512 && !f->avx2;
}

#ifdef CB_HAVE_X86_KERNELS

/* ---- the thread pool ----
 *
 * A job is a function that takes chunks of work from a shared counter until
 * none is left (next_chunk in matmul_f32.c, item_part below): the caller
 * runs it, and so do the helpers that wake up in time.  A helper enters a
 * job through `state` (a count of helpers inside, plus a CLOSED bit); when
 * the caller has finished its own run every chunk is taken, so it closes the
 * job and waits only for helpers still inside.  A helper that wakes late finds the job closed and leaves
 * without touching it: a busy core (another process on it) slows a product
 * down to the speed of the threads that do run, and never stalls it.
 */

#define POOL_CLOSED 0x40000000

static struct
{
	pthread_mutex_t lock;		/* guards sleepers and the condition variables */
	pthread_cond_t wake;
	pthread_cond_t done;
	pthread_mutex_t busy;		/* held by the thread that runs a job */
	int			n_workers;
	int			sleepers;
	atomic_uint generation;		/* bumped for each job, after fn/arg/max_inside are set */
	atomic_int	state;			/* helpers inside the job | POOL_CLOSED */
	cb_pool_fn	fn;
	void	   *arg;
	atomic_int	max_inside;		/* helpers the job wants (atomic: a helper that
								 * finds a job full leaves without any other
								 * synchronisation, and the next job rewrites it) */
	unsigned	start_generation[POOL_MAX_THREADS];	/* the generation when helper i started */
}			pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.busy = PTHREAD_MUTEX_INITIALIZER,
};

#define POOL_SPINS 4000			/* polls (~50 us) before a thread sleeps */

static inline void
cpu_relax(void)
{
#ifdef CB_HAVE_X86_KERNELS
	__builtin_ia32_pause();
#endif
}

static void *
pool_worker(void *self)
{
	unsigned	seen = pool.start_generation[(intptr_t) self];	/* written before pthread_create */

	cb_mark_helper_thread();	/* never allocates: cb_common.h */

	for (;;)
	{
		unsigned	g;
		int			st,
					max_inside;

		for (int spin = 0; (g = atomic_load(&pool.generation)) == seen && spin < POOL_SPINS; spin++)
			cpu_relax();
		if (g == seen)
		{
			pthread_mutex_lock(&pool.lock);
			pool.sleepers++;
			while ((g = atomic_load(&pool.generation)) == seen)
				pthread_cond_wait(&pool.wake, &pool.lock);
			pool.sleepers--;
			pthread_mutex_unlock(&pool.lock);
		}
		seen = g;
		/* enter the current job unless it is closed or has its helpers */
		st = atomic_load(&pool.state);
		max_inside = atomic_load_explicit(&pool.max_inside, memory_order_relaxed);
		while ((st & POOL_CLOSED) == 0 && st < max_inside &&
			   !atomic_compare_exchange_weak(&pool.state, &st, st + 1))
			;
		if ((st & POOL_CLOSED) != 0 || st >= max_inside)
			continue;
		/* inside: fn and arg are those of the current job */
		pool.fn(pool.arg);
		if (atomic_fetch_sub(&pool.state, 1) == (POOL_CLOSED | 1))
		{
			pthread_mutex_lock(&pool.lock);
			pthread_cond_signal(&pool.done);
			pthread_mutex_unlock(&pool.lock);
		}
	}
	return NULL;
}

/* Start helpers up to `want`; returns how many exist. */
static int
pool_grow(int want)
{
	sigset_t	all,
				old;
	pthread_attr_t attr;

	if (want > POOL_MAX_THREADS - 1)
		want = POOL_MAX_THREADS - 1;
	if (pool.n_workers >= want)
		return pool.n_workers;
	if (pthread_attr_init(&attr) != 0)
		return pool.n_workers;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* helpers never take a signal: they inherit a fully blocked mask */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (pool.n_workers < want)
	{
		pthread_t	tid;

		/* no job is in flight: the helper will take the next one published */
		pool.start_generation[pool.n_workers] = atomic_load(&pool.generation);
		if (pthread_create(&tid, &attr, pool_worker, (void *) (intptr_t) pool.n_workers) != 0)
			break;
		pool.n_workers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return pool.n_workers;
}

/* Run fn(arg) on the calling thread and on up to threads - 1 helpers. */
void
cb_pool_run(cb_pool_fn fn, void *arg, int threads)
{
	int			st;

	if (threads <= 1 || pthread_mutex_trylock(&pool.busy) != 0)
	{
		fn(arg);
		return;
	}
	if (pool_grow(threads - 1) == 0)
	{
		pthread_mutex_unlock(&pool.busy);
		fn(arg);
		return;
	}
	pool.fn = fn;
	pool.arg = arg;
	atomic_store_explicit(&pool.max_inside, threads - 1, memory_order_relaxed);
	atomic_store(&pool.state, 0);
	pthread_mutex_lock(&pool.lock);
	atomic_fetch_add(&pool.generation, 1);
	if (pool.sleepers > 0)
		pthread_cond_broadcast(&pool.wake);
	pthread_mutex_unlock(&pool.lock);

	fn(arg);

	/* every chunk is taken: no more helpers in; wait for those inside */
	st = atomic_fetch_or(&pool.state, POOL_CLOSED);
	if ((st & ~POOL_CLOSED) != 0)
	{
		for (int spin = 0; (atomic_load(&pool.state) & ~POOL_CLOSED) != 0 && spin < POOL_SPINS; spin++)
			cpu_relax();
		pthread_mutex_lock(&pool.lock);
		while ((atomic_load(&pool.state) & ~POOL_CLOSED) != 0)
			pthread_cond_wait(&pool.done, &pool.lock);
		pthread_mutex_unlock(&pool.lock);
	}
	pthread_mutex_unlock(&pool.busy);
}

/* cb_kernel_parallel_for's job: items from a counter, a worker number per thread */
typedef struct item_job
{
	cb_kernel_item_fn fn;
	void	   *arg;
	size_t		items;
	int			workers;
	atomic_size_t next;
	atomic_int	joined;
} item_job;

static void
item_part(void *arg)
{
	item_job   *jb = arg;
	int			worker = atomic_fetch_add(&jb->joined, 1);
	size_t		i;

	if (worker >= jb->workers)
		return;					/* cannot happen: the pool admits workers - 1 helpers */
	while ((i = atomic_fetch_add(&jb->next, 1)) < jb->items)
		jb->fn(jb->arg, i, worker);
}

#endif							/* CB_HAVE_X86_KERNELS: the pool */

/* At most t threads, fewer while a thread's share of `flops` is under
 * min_share FLOPs. */
int
cb_threads_worth(int t, double flops, double min_share)
{
	while (t > 1 && flops / t < min_share)
		t--;
	return t;
}

/* Threads for a product of `flops` with `blocks` column blocks. */
int
cb_threads_for(double flops, size_t blocks, int threads)
{
	/* below ~1 MFLOP a share is a few microseconds: waking a helper costs as much */
	int			t = cb_threads_worth(cb_kernel_clamp_threads(threads), flops, 5e5);

	while (t > 1 && blocks < (size_t) (2 * t))
		t--;
	return t;
}

int
cb_kernel_clamp_threads(int threads)
{
	if (blas_path())
		return 1;
	return threads < 1 ? 1 : (threads > POOL_MAX_THREADS ? POOL_MAX_THREADS : threads);
}

/* A worker of cb_kernel_parallel_for gets at least this many FLOPs (a share
 * below ~1 MFLOP costs about what waking a helper does).  The unit tests'
 * ThreadSanitizer build uses 0, so that the small test models run the
 * parallel paths too. */
#ifndef CB_PARALLEL_MIN_FLOPS
#define CB_PARALLEL_MIN_FLOPS 1e6
#endif

void
cb_kernel_parallel_for(size_t items, int workers, double flops, cb_kernel_item_fn fn, void *arg)
{
#ifdef CB_HAVE_X86_KERNELS
	workers = cb_threads_worth(workers, flops, CB_PARALLEL_MIN_FLOPS);
	if (workers > 1 && items > 1 && !blas_path())
	{
		item_job	jb = {fn, arg, items, workers, 0, 0};

		cb_pool_run(item_part, &jb, (size_t) workers < items ? workers : (int) items);
		return;
	}
#endif
	(void) workers;
	(void) flops;
	for (size_t i = 0; i < items; i++)
		fn(arg, i, 0);
}
