/*
 * cb_common.c — error reporting, allocation and interrupt hooks of the core.
 */
#include "cb_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *
libc_alloc(size_t size)
{
	return malloc(size ? size : 1);
}

static void *
libc_realloc(void *ptr, size_t size)
{
	return realloc(ptr, size ? size : 1);
}

static const cb_allocator libc_allocator = {libc_alloc, libc_realloc, free};
static cb_allocator current_allocator = {libc_alloc, libc_realloc, free};
static void (*interrupt_hook) (void) = NULL;
static _Thread_local bool helper_thread = false;

void
cb_assert_fail(const char *cond, const char *file, int line)
{
	fprintf(stderr, "camembert core: assertion \"%s\" failed at %s:%d\n", cond, file, line);
	fflush(stderr);
	abort();
}

void
cb_mark_helper_thread(void)
{
	helper_thread = true;
}

bool
cb_on_helper_thread(void)
{
	return helper_thread;
}

cb_status
cb_set_error(cb_error *err, cb_status status, const char *fmt,...)
{
	if (err != NULL)
	{
		va_list		ap;

		err->status = status;
		err->sys_errno = 0;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return status;
}

void
cb_clear_error(cb_error *err)
{
	if (err != NULL)
	{
		err->status = CB_OK;
		err->sys_errno = 0;
		err->message[0] = '\0';
	}
}

const char *
cb_status_name(cb_status status)
{
	switch (status)
	{
		case CB_OK:
			return "ok";
		case CB_ERR_IO:
			return "i/o error";
		case CB_ERR_FORMAT:
			return "invalid format";
		case CB_ERR_UNSUPPORTED:
			return "unsupported";
		case CB_ERR_NOMEM:
			return "out of memory";
		case CB_ERR_INVALID:
			return "invalid argument";
		case CB_ERR_LIMIT:
			return "limit exceeded";
		case CB_ERR_ACCESS:
			return "access denied";
		case CB_ERR_CANCELED:
			return "canceled";
	}
	return "unknown";
}

void
cb_set_allocator(const cb_allocator *allocator)
{
	current_allocator = allocator ? *allocator : libc_allocator;
}

void *
cb_malloc(size_t size)
{
	cb_assert(!helper_thread);
	return current_allocator.alloc(size);
}

void *
cb_calloc(size_t count, size_t size)
{
	size_t		total;
	void	   *p;

	if (!cb_mul_size(count, size, &total))
		return NULL;
	cb_assert(!helper_thread);
	p = current_allocator.alloc(total);
	if (p != NULL)
		memset(p, 0, total);
	return p;
}

void *
cb_realloc(void *ptr, size_t size)
{
	cb_assert(!helper_thread);
	if (ptr == NULL)
		return current_allocator.alloc(size);
	return current_allocator.realloc(ptr, size);
}

cb_status
cb_grow_array(void **ptr, size_t *cap, size_t need, size_t elem,
			  const char *what, cb_error *err)
{
	size_t		new_cap,
				bytes;
	void	   *p;

	if (need <= *cap)
		return CB_OK;
	new_cap = *cap < 32 ? 32 : *cap;
	while (new_cap < need)
	{
		/* doubling, then 1.5x from 4 Mi elements: less slack on huge inputs */
		if (!cb_add_size(new_cap, new_cap < ((size_t) 4 << 20) ? new_cap : new_cap / 2, &new_cap))
			return cb_set_error(err, CB_ERR_LIMIT, "%s: array size overflow", what);
	}
	if (!cb_mul_size(new_cap, elem, &bytes))
		return cb_set_error(err, CB_ERR_LIMIT, "%s: array size overflow", what);
	p = cb_realloc(*ptr, bytes);
	if (p == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "%s: cannot allocate %zu bytes", what, bytes);
	*ptr = p;
	*cap = new_cap;
	cb_assert(*cap >= need);
	return CB_OK;
}

const char *
cb_printable(const char *s, size_t len, char *buf, size_t bufsize)
{
	size_t		n = len < bufsize - 1 ? len : bufsize - 1;

	cb_assert(bufsize > 3);
	memcpy(buf, s, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	if (n < len)
		memcpy(buf + n - 3, "...", 3);
	return buf;
}

void
cb_free(void *ptr)
{
	cb_assert(!helper_thread);
	if (ptr != NULL)
		current_allocator.free(ptr);
}

void
cb_set_interrupt_hook(void (*hook) (void))
{
	interrupt_hook = hook;
}

void
cb_check_interrupts(void)
{
	if (interrupt_hook != NULL)
		interrupt_hook();
}
