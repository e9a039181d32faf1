/*
 * ut_compute.c — the unit tests' compute context (ut_compute.h).
 */
#include "ut_compute.h"

#include <stdlib.h>

int
ut_threads(void)
{
	const char *s = getenv("OPENBLAS_NUM_THREADS");
	int			n = s != NULL ? atoi(s) : 1;

	return n >= 1 ? n : 1;
}

const cb_compute *
ut_compute(void)
{
	static cb_compute cc;

	cc = cb_compute_serial();
	cc.threads = ut_threads();
	return &cc;
}
