/*
 * camembert.h — what the PostgreSQL layer's files share: GUC variables and
 * the entry points of each file.
 */
#ifndef CAMEMBERT_H
#define CAMEMBERT_H

#include "postgres.h"

#include "cb_common.h"

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

/* Set the thread count from camembert.threads (capped by camembert.max_threads) before a forward pass. */
extern void camembert_apply_threads(void);

#endif							/* CAMEMBERT_H */
