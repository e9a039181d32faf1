/*
 * ut_alloc.c — see ut_alloc.h.
 */
#include "ut_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

ut_alloc_counters ut_alloc = {.budget = -1, .limit_bytes = SIZE_MAX};

/* the size of a block, before it: what free and realloc need */
typedef union header
{
	size_t		size;
	max_align_t align;
} header;

void
ut_alloc_reset(void)
{
	memset(&ut_alloc, 0, sizeof(ut_alloc));
	ut_alloc.budget = -1;
	ut_alloc.limit_bytes = SIZE_MAX;
}

static void *
count_alloc(size_t size)
{
	header	   *h;

	if (ut_alloc.budget == 0 || size > ut_alloc.limit_bytes - ut_alloc.live_bytes ||
		ut_alloc.live_bytes > ut_alloc.limit_bytes)
	{
		ut_alloc.refused++;
		return NULL;
	}
	h = malloc(sizeof(header) + size);
	if (h == NULL)
		return NULL;
	if (ut_alloc.budget > 0)
		ut_alloc.budget--;
	h->size = size;
	ut_alloc.allocs++;
	ut_alloc.live++;
	ut_alloc.live_bytes += size;
	if (ut_alloc.live_bytes > ut_alloc.peak_bytes)
		ut_alloc.peak_bytes = ut_alloc.live_bytes;
	return h + 1;
}

static void
count_free(void *p)
{
	header	   *h;

	if (p == NULL)
		return;
	h = (header *) p - 1;
	ut_alloc.frees++;
	ut_alloc.live--;
	ut_alloc.live_bytes -= h->size;
	free(h);
}

static void *
count_realloc(void *p, size_t size)
{
	void	   *q;
	size_t		old;

	if (p == NULL)
		return count_alloc(size);
	old = ((header *) p - 1)->size;
	q = count_alloc(size);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	count_free(p);
	return q;
}

const cb_allocator ut_counting_allocator = {count_alloc, count_realloc, count_free};
