/*
 * compute.c — the compute context (compute.h).
 */
#include "compute.h"
#include "thread_pool.h"

#include <stdlib.h>

cb_compute
cb_compute_serial(void)
{
	cb_compute	cc = {1, NULL, NULL, NULL};

	return cc;
}

int
cb_compute_threads(const cb_compute *cc)
{
	return cb_kernel_clamp_threads(cc != NULL ? cc->threads : 1);
}

void *
cb_compute_alloc(const cb_compute *cc, size_t size)
{
	cb_assert(!cb_on_helper_thread());
	if (cc == NULL || cc->allocator == NULL)
		return cb_malloc(size);
	return cc->allocator->alloc(size);
}

void
cb_compute_free(const cb_compute *cc, void *ptr)
{
	cb_assert(!cb_on_helper_thread());
	if (ptr == NULL)
		return;
	if (cc == NULL || cc->allocator == NULL)
		cb_free(ptr);
	else
		cc->allocator->free(ptr);
}

bool
cb_compute_stopped(const cb_compute *cc)
{
	cb_assert(!cb_on_helper_thread());
	return cc != NULL && cc->stop != NULL && cc->stop(cc->stop_arg);
}

cb_status
cb_compute_canceled(cb_error *err, const char *what)
{
	return cb_set_error(err, CB_ERR_CANCELED, "canceled %s", what);
}
