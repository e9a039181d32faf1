/*
 * golden_model.h — test helpers shared by the forward and generation tests:
 * loading a golden model directory through the model image API, reading
 * int / float arrays out of JSON fixtures, and accumulating max |Δ| of
 * comparisons against golden arrays.
 */
#ifndef UT_GOLDEN_MODEL_H
#define UT_GOLDEN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "json.h"

typedef struct ut_loaded_model
{
	cb_model	model;
	void	   *block;			/* cb_malloc'ed image allocation */
} ut_loaded_model;

/* Build the image of dir with cb_model_source_* and view it; 0 on success
 * (else prints the error and returns -1). */
int			ut_load_model(const char *dir, ut_loaded_model *out);
/* The same at a precision (ut_load_model: CB_PRECISION_AUTO). */
int			ut_load_model_precision(const char *dir, cb_precision precision, ut_loaded_model *out);
void		ut_unload_model(ut_loaded_model *m);

/* Parse a JSON file (prints the error and returns NULL on failure). */
cb_json_doc *ut_json_load(const char *path);

/* Copy a JSON array of numbers into out (at most max); returns the count,
 * or -1 if v is not an array of numbers. */
long		ut_json_ints(const cb_json_value *v, int32_t *out, size_t max);
long		ut_json_floats(const cb_json_value *v, float *out, size_t max);
/* A number member (NAN if missing). */
double		ut_json_number(const cb_json_value *obj, const char *key);

/* Running comparison of float arrays. */
typedef struct ut_diff
{
	double		max_abs;
	size_t		count;			/* values compared */
	size_t		over;			/* values over the tolerance */
	double		tol;
	int			printed;		/* first failures printed */
} ut_diff;

void		ut_diff_init(ut_diff *d, double tol);
/* Compare n values; `where` names them in the first few failure lines. */
void		ut_diff_add(ut_diff *d, const float *got, const float *want, size_t n, const char *where);
void		ut_diff_add1(ut_diff *d, double got, double want, const char *where);

#endif							/* UT_GOLDEN_MODEL_H */
