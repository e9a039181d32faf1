/*
 * ut_compute.h — the compute context (compute.h) the unit tests run the core
 * under: as many threads as OPENBLAS_NUM_THREADS says (the Makefile's `unit`
 * target runs the kernel and matrix tests at 1 and 2 threads, and the
 * ThreadSanitizer builds at 4: the tests' own way to choose, not the core's),
 * the core's allocator, no stop check.
 */
#ifndef UT_COMPUTE_H
#define UT_COMPUTE_H

#include "compute.h"

/* The tests' thread count: OPENBLAS_NUM_THREADS, else 1. */
int			ut_threads(void);

/* A context of ut_threads() threads (a static one: do not modify). */
const cb_compute *ut_compute(void);

#endif							/* UT_COMPUTE_H */
