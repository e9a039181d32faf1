/*
 * npy.h — a reader for the .npy golden arrays of the unit tests.
 *
 * Only what test/golden uses: format version 1.0/2.0/3.0, little-endian
 * float32 ('<f4') or int32 ('<i4'), C order, up to UT_NPY_MAX_DIMS
 * dimensions.  Errors are printed to stderr (this is test code).
 */
#ifndef UT_NPY_H
#define UT_NPY_H

#include <stddef.h>
#include <stdint.h>

#define UT_NPY_MAX_DIMS 8

typedef struct ut_npy
{
	char		kind;			/* 'f' (float32) or 'i' (int32) */
	int			ndim;
	size_t		shape[UT_NPY_MAX_DIMS];
	size_t		count;			/* product of the shape */
	float	   *f;				/* kind 'f': count values */
	int32_t    *i;				/* kind 'i': count values */
} ut_npy;

/* Load path; returns 0 on success, -1 (after printing why) on failure. */
int			ut_npy_load(const char *path, ut_npy *out);
void		ut_npy_free(ut_npy *a);

#endif							/* UT_NPY_H */
