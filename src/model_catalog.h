/*
 * model_catalog.h — the extension's catalog table camembert_registered_models:
 * which models this database has registered (name → path, architecture, dtype), so
 * that they load again on first use after a restart.  pg_dump keeps the rows.
 *
 * Every access runs as the table's owner under SECURITY_RESTRICTED_OPERATION,
 * with search_path pinned to pg_catalog, pg_temp and every object and
 * operator schema-qualified: nothing the calling user defines (functions,
 * operators, a schema first in search_path) can run as the owner.
 */
#ifndef MODEL_CATALOG_H
#define MODEL_CATALOG_H

#include "postgres.h"

#include "nodes/pg_list.h"

typedef struct CatalogEntry
{
	char	   *name;
	char	   *path;
	char	   *architecture;	/* "CamembertForMaskedLM" ...; NULL if unknown
								 * (a row registered by version 0.1) */
	char	   *dtype;			/* the dtype camembert_load was given ("auto",
								 * "int8" ...); NULL before version 0.3 of the
								 * table (then "auto", what those loads did) */
	TransactionId xmin;			/* of the row: the transaction that registered it */
} CatalogEntry;

/* The row for `name` (palloc'ed), or NULL when not registered. */
extern CatalogEntry *camembert_catalog_lookup(const char *name);

/* Every row, ordered by name: a List of CatalogEntry *. */
extern List *camembert_catalog_entries(void);

/*
 * Insert or update the row for `name`.  A table of an older version (the
 * extension not yet updated) gets the columns it has.
 */
extern void camembert_catalog_register(const char *name, const char *path,
									   const char *architecture, const char *dtype);

/* Delete the row for `name`; true if there was one. */
extern bool camembert_catalog_forget(const char *name);

#endif							/* MODEL_CATALOG_H */
