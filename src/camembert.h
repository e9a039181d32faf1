/*
 * camembert.h — what the PostgreSQL layer's files share: GUC variables and
 * the entry points of each file.
 */
#ifndef CAMEMBERT_H
#define CAMEMBERT_H

#include "postgres.h"

#include "cb_common.h"
#include "compute.h"

/* GUCs (camembert.c) */
extern int	camembert_threads;
extern char *camembert_default_model;
extern char *camembert_model_dir;
extern int	camembert_max_new_tokens;
extern int	camembert_max_models;
extern int	camembert_max_threads;

/*
 * Turn a failed core call into an ERROR: SQLSTATE from the status, the core's
 * message as the detail-free primary message, and the given hint (may be NULL).
 */
extern void camembert_report_core_error(const cb_error *err, const char *context,
										const char *hint) pg_attribute_noreturn();

/* The allocator the core uses in PostgreSQL: the current memory context (camembert.c). */
extern const cb_allocator camembert_core_allocator;

/*
 * The compute context of the next call of the core's compute path (forward,
 * generate, beam search): camembert.threads capped by camembert.max_threads,
 * the memory context allocator, CHECK_FOR_INTERRUPTS (compute_context.c).
 */
extern const cb_compute *camembert_compute(void);

#endif							/* CAMEMBERT_H */
