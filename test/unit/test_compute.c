/*
 * test_compute.c — the compute context (compute.h): its thread count, its
 * allocator, its stop check, and the rule that the pool's helper threads
 * never allocate (cb_assert, on in the unit builds: CB_ASSERTS).
 */
#include "unit.h"

#include "compute.h"
#include "kernels.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long context_allocs,
			context_frees,
			plain_allocs;

static void *
context_alloc(size_t size)
{
	context_allocs++;
	return malloc(size ? size : 1);
}

static void *
context_realloc(void *p, size_t size)
{
	return realloc(p, size ? size : 1);
}

static void
context_free(void *p)
{
	context_frees++;
	free(p);
}

static void *
plain_alloc(size_t size)
{
	plain_allocs++;
	return malloc(size ? size : 1);
}

static bool
is_blas(void)
{
	return strcmp(cb_kernel_isa(), "blas") == 0;
}

static void
test_threads(void)
{
	cb_compute	cc = cb_compute_serial();

	CHECK_EQ_INT(cc.threads, 1);
	CHECK(cc.allocator == NULL && cc.stop == NULL);
	CHECK_EQ_INT(cb_compute_threads(&cc), 1);
	CHECK_EQ_INT(cb_compute_threads(NULL), 1);
	cc.threads = 0;
	CHECK_EQ_INT(cb_compute_threads(&cc), 1);
	cc.threads = 3;
	CHECK_EQ_INT(cb_compute_threads(&cc), is_blas() ? 1 : 3);
	cc.threads = 1000;
	CHECK_EQ_INT(cb_compute_threads(&cc), is_blas() ? 1 : 16);
}

static void
test_allocator(void)
{
	static const cb_allocator ctx = {context_alloc, context_realloc, context_free};
	static const cb_allocator plain = {plain_alloc, context_realloc, free};
	cb_compute	cc = cb_compute_serial();
	void	   *p;

	context_allocs = context_frees = plain_allocs = 0;
	cb_set_allocator(&plain);
	/* no allocator in the context: the core's */
	p = cb_compute_alloc(&cc, 10);
	CHECK(p != NULL);
	cb_compute_free(&cc, p);
	CHECK_EQ_INT(plain_allocs, 1);
	/* the context's, and only it */
	cc.allocator = &ctx;
	p = cb_compute_alloc(&cc, 10);
	CHECK(p != NULL);
	cb_compute_free(&cc, p);
	cb_compute_free(&cc, NULL);
	CHECK_EQ_INT(context_allocs, 1);
	CHECK_EQ_INT(context_frees, 1);
	CHECK_EQ_INT(plain_allocs, 1);
	cb_set_allocator(NULL);
}

static bool
stop_after_two(void *arg)
{
	int		   *calls = arg;

	return ++*calls >= 2;
}

static void
test_stop(void)
{
	cb_compute	cc = cb_compute_serial();
	cb_error	err;
	int			calls = 0;

	CHECK(!cb_compute_stopped(&cc));
	CHECK(!cb_compute_stopped(NULL));
	cc.stop = stop_after_two;
	cc.stop_arg = &calls;
	CHECK(!cb_compute_stopped(&cc));
	CHECK(cb_compute_stopped(&cc));
	CHECK_EQ_INT(calls, 2);
	CHECK_EQ_INT(cb_compute_canceled(&err, "a test"), CB_ERR_CANCELED);
	CHECK_EQ_STR(err.message, "canceled a test");
	CHECK_EQ_STR(cb_status_name(CB_ERR_CANCELED), "canceled");
}

/* ---- helper threads never allocate ---- */

typedef struct helper_job
{
	atomic_int	helper_in;		/* a helper has taken an item */
	bool		allocate;		/* the helper's item calls cb_malloc */
} helper_job;

static void
helper_item(void *arg, size_t item, int worker)
{
	helper_job *jb = arg;

	(void) item;
	(void) worker;
	if (!cb_on_helper_thread())
	{
		/* the calling thread waits (at most ~5 s) for a helper to take an item */
		for (int i = 0; i < 5000 && atomic_load(&jb->helper_in) == 0; i++)
		{
			struct timespec ms = {0, 1000000};

			nanosleep(&ms, NULL);
		}
		return;
	}
	atomic_store(&jb->helper_in, 1);
	if (jb->allocate)
		free(cb_malloc(16));	/* must abort: cb_assert in cb_malloc */
}

/* Run the job in a child; its wait status. */
static int
run_in_child(bool allocate, bool *helper_ran)
{
	int			fds[2],
				status = 0;
	pid_t		pid;
	char		ran = 0;

	if (pipe(fds) != 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
	{
		helper_job	jb = {0, allocate};

		close(fds[0]);
		/* the abort's message is expected: keep the test's output clean */
		if (allocate && freopen("/dev/null", "w", stderr) == NULL)
			_exit(3);
		cb_kernel_parallel_for(2, 2, 1e12, helper_item, &jb);
		ran = (char) atomic_load(&jb.helper_in);
		if (write(fds[1], &ran, 1) != 1)
			_exit(4);
		_exit(0);
	}
	close(fds[1]);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		status = -1;
	*helper_ran = read(fds[0], &ran, 1) == 1 && ran != 0;
	close(fds[0]);
	return status;
}

static void
test_helpers_never_allocate(void)
{
	bool		ran = false;
	int			status;

#if defined(CB_ASSERTS) && CB_ASSERTS
	CHECK(true);
#else
	CHECK_MSG(false, "the unit tests are built without CB_ASSERTS: cb_assert is off");
#endif
	if (is_blas())
	{
		printf("  cblas path: no pool, no helper thread to check\n");
		return;
	}
	/* without the allocation the job completes on a helper too */
	status = run_in_child(false, &ran);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed: status %d", status);
	CHECK_MSG(ran, "no helper thread took an item");
	/* a helper that calls cb_malloc aborts the process */
	status = run_in_child(true, &ran);
	CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
			  "a helper thread's cb_malloc did not abort (status %d)", status);
}

int
main(void)
{
	RUN(test_threads);
	RUN(test_allocator);
	RUN(test_stop);
	RUN(test_helpers_never_allocate);
	return unit_finish("test_compute");
}
