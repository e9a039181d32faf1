/*
 * test_common.c — the core's shared conventions: errors, allocation hooks,
 * overflow-checked sizes, interrupt hook.
 */
#include "cb_common.h"
#include "unit.h"
#include "support/ut_alloc.h"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static int	interrupts;

static void
test_error_message(void)
{
	cb_error	err;

	CHECK_EQ_INT(cb_set_error(&err, CB_ERR_FORMAT, "tensor \"%s\" at offset %d", "a.b", 42), CB_ERR_FORMAT);
	CHECK_EQ_INT(err.status, CB_ERR_FORMAT);
	CHECK_EQ_STR(err.message, "tensor \"a.b\" at offset 42");
	/* a NULL error is allowed and still returns the status */
	CHECK_EQ_INT(cb_set_error(NULL, CB_ERR_IO, "x"), CB_ERR_IO);

	/* messages longer than the buffer are cut, never overflow */
	char		longname[2000];

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cb_set_error(&err, CB_ERR_LIMIT, "%s", longname);
	CHECK_EQ_INT(strlen(err.message), CB_ERROR_MESSAGE_MAX - 1);

	cb_clear_error(&err);
	CHECK_EQ_INT(err.status, CB_OK);
	CHECK_EQ_STR(err.message, "");
	CHECK_EQ_STR(cb_status_name(CB_ERR_NOMEM), "out of memory");
}

static void
test_size_arithmetic(void)
{
	size_t		out;

	CHECK(cb_mul_size(1000, 1000, &out) && out == 1000000);
	CHECK(!cb_mul_size(SIZE_MAX / 2, 3, &out));
	CHECK(cb_add_size(1, 2, &out) && out == 3);
	CHECK(!cb_add_size(SIZE_MAX, 1, &out));
	/* calloc refuses an overflowing request instead of allocating a wrapped size */
	CHECK(cb_calloc(SIZE_MAX / 4, 8) == NULL);
}

static void
test_allocator_hooks(void)
{
	ut_alloc_reset();
	cb_set_allocator(&ut_counting_allocator);
	void	   *p = cb_malloc(16);
	int		   *z = cb_calloc(4, sizeof(int));

	CHECK(p != NULL);
	CHECK(z != NULL && z[0] == 0 && z[3] == 0);
	cb_free(p);
	cb_free(z);
	cb_free(NULL);				/* no call for NULL */
	CHECK_EQ_INT(ut_alloc.allocs, 2);
	CHECK_EQ_INT(ut_alloc.frees, 2);
	cb_set_allocator(NULL);
	p = cb_malloc(8);
	cb_free(p);
	CHECK_EQ_INT(ut_alloc.allocs, 2);	/* back to libc */
}

static void
count_interrupt(void)
{
	interrupts++;
}

static void
test_interrupt_hook(void)
{
	cb_check_interrupts();		/* no hook: nothing happens */
	cb_set_interrupt_hook(count_interrupt);
	cb_check_interrupts();
	cb_check_interrupts();
	CHECK_EQ_INT(interrupts, 2);
	cb_set_interrupt_hook(NULL);
	cb_check_interrupts();
	CHECK_EQ_INT(interrupts, 2);
}

static void
test_grow_array(void)
{
	cb_error	err;
	int32_t    *v = NULL;
	size_t		cap = 0;

	/* grows to at least 32, keeps what it held */
	CHECK_EQ_INT(cb_grow_array((void **) &v, &cap, 5, sizeof(int32_t), "ids", &err), CB_OK);
	CHECK(v != NULL && cap == 32);
	for (int i = 0; i < 32; i++)
		v[i] = i;
	CHECK_EQ_INT(cb_grow_array((void **) &v, &cap, 33, sizeof(int32_t), "ids", &err), CB_OK);
	CHECK(cap == 64 && v[31] == 31 && v[0] == 0);
	/* enough room: nothing changes */
	CHECK_EQ_INT(cb_grow_array((void **) &v, &cap, 60, sizeof(int32_t), "ids", &err), CB_OK);
	CHECK(cap == 64);
	/* a size that overflows is refused with the array's name; the array is untouched */
	int32_t    *before = v;

	CHECK_EQ_INT(cb_grow_array((void **) &v, &cap, SIZE_MAX / 2, sizeof(int32_t), "ids", &err), CB_ERR_LIMIT);
	CHECK(v == before && cap == 64);
	CHECK(strstr(err.message, "ids") != NULL);
	cb_free(v);
}

/* cb_assert is on in the unit build: a false invariant aborts, naming the condition */
static void
test_assert(void)
{
	int			fds[2];
	pid_t		pid;
	int			status = 0;
	char		msg[256] = {0};
	ssize_t		n;

	cb_assert(1 + 1 == 2);		/* true: nothing happens */
	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
	{
		dup2(fds[1], 2);
		cb_assert(sizeof(int) == 1);
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "the child ended with status %d", status);
	CHECK(n > 0 && strstr(msg, "sizeof(int) == 1") != NULL && strstr(msg, "test_common.c") != NULL);
}

static void
test_printable(void)
{
	char		buf[8];

	/* control bytes become '?' */
	CHECK(strcmp(cb_printable("a\nb\x7f", 4, buf, sizeof(buf)), "a?b?") == 0);
	/* exactly fits: kept whole */
	CHECK(strcmp(cb_printable("1234567", 7, buf, sizeof(buf)), "1234567") == 0);
	/* longer: cut, "..." at the end */
	CHECK(strcmp(cb_printable("123456789", 9, buf, sizeof(buf)), "1234...") == 0);
	/* only len bytes are read (no NUL needed) */
	CHECK(strcmp(cb_printable("abcdef", 2, buf, sizeof(buf)), "ab") == 0);
}

int
main(void)
{
	RUN(test_assert);
	RUN(test_printable);
	RUN(test_grow_array);
	RUN(test_error_message);
	RUN(test_size_arithmetic);
	RUN(test_allocator_hooks);
	RUN(test_interrupt_hook);
	return unit_finish("common");
}
