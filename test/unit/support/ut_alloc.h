/*
 * ut_alloc.h — the tests' counting allocator for the core's allocation hooks
 * (cb_common.h): install it with cb_set_allocator(&ut_counting_allocator).
 *
 * It counts blocks and bytes (live and peak) and can refuse requests, either
 * after a number of allocations (budget: every path must clean up when one
 * fails) or over a number of live bytes (limit: memory bounds).  A realloc is
 * a new block, a copy, then the old one freed: both are live for a moment, as
 * a copying allocator would have them, so the peak is an upper bound.
 */
#ifndef UT_ALLOC_H
#define UT_ALLOC_H

#include <stddef.h>

#include "cb_common.h"

typedef struct ut_alloc_counters
{
	long		allocs;			/* blocks handed out (realloc included) */
	long		frees;			/* blocks given back (realloc included) */
	long		live;			/* allocs - frees */
	size_t		live_bytes;
	size_t		peak_bytes;
	long		refused;		/* requests refused (budget or limit) */
	long		budget;			/* allocations left before they fail; -1: no budget */
	size_t		limit_bytes;	/* live bytes a request may not exceed; SIZE_MAX: no limit */
} ut_alloc_counters;

extern ut_alloc_counters ut_alloc;
extern const cb_allocator ut_counting_allocator;

/* Every counter to 0, no budget, no limit (blocks still live must not be freed after). */
void		ut_alloc_reset(void);

#endif							/* UT_ALLOC_H */
