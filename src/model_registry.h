/*
 * model_registry.h — models loaded once per server, in shared memory.
 *
 * The registry is a fixed array of slots in the main shared memory segment
 * (camembert.max_models of them), guarded by one LWLock.  A loaded model is a
 * pinned DSM segment holding the tokenizer image and the model image (see
 * src/core/tokenizer.h and src/core/model_image.h); backends attach it
 * read-only and keep the mapping until the slot's generation changes.
 */
#ifndef MODEL_REGISTRY_H
#define MODEL_REGISTRY_H

#include "postgres.h"

#include "storage/dsm.h"

#include "model.h"
#include "tokenizer.h"

/* A backend's handle on a loaded model: valid until the next registry call. */
typedef struct CamembertModel
{
	char		name[NAMEDATALEN];
	char		path[MAXPGPATH];
	uint64		generation;		/* slot generation this handle was attached at */
	dsm_handle	handle;			/* of the segment */
	uint64		used_in_xact;	/* the backend transaction that last used it */
	uint64		checked_in_xact;	/* ... that compared it with this database's
									 * registration */
	dsm_segment *segment;
	MemoryContext context;		/* holds the views' small arrays */
	cb_tokenizer tokenizer;		/* view into the segment */
	cb_model	model;			/* view into the segment */
	Size		segment_size;
} CamembertModel;

extern void camembert_registry_init(void);	/* from _PG_init */

/* camembert.debug_load_delay: milliseconds each load waits first (tests) */
extern int	camembert_debug_load_delay;

/* camembert.parallel_models: the leader's models, for its parallel workers */
extern char *camembert_parallel_models;
extern void camembert_require_preload(void);

/*
 * Load (or find already loaded) a model with the precision `dtype` names
 * ("auto", "float32", "bfloat16", "int8"; NULL: auto); registers it in the
 * catalog table.
 */
extern void camembert_registry_load(const char *name, const char *path, const char *dtype);
extern bool camembert_registry_unload(const char *name);

/*
 * Load a registered model (its dtype column; NULL: auto) as the server, for
 * the preload worker; bytes loaded, 0 if it already was.
 */
extern Size camembert_registry_preload(const char *name, const char *path, const char *dtype,
										TransactionId registered_by);

/* flags of camembert_model_get */
#define MODEL_GET_MISSING_OK	0x01	/* return NULL instead of an ERROR */
#define MODEL_GET_NO_AUTOLOAD	0x02	/* do not load a registered model */
#define MODEL_GET_ANY_REGISTRATION 0x04 /* whatever is loaded under the name, without
										 * comparing it with this database's
										 * registration (listings) */

/*
 * Find a model by name and attach it; a model registered in the catalog table
 * but not in shared memory (after a restart, or on a hot standby) is loaded
 * first, unless MODEL_GET_NO_AUTOLOAD.  Once per transaction the model in
 * shared memory is compared with this database's registration: one loaded
 * for this database whose registration changed since is reloaded (or freed,
 * if the registration is gone); one loaded for another database that this
 * one registers otherwise is an ERROR.
 */
extern CamembertModel *camembert_model_get(const char *name, int flags);

/* This backend's transaction counter: a handle used in transaction x stays valid in x. */
extern uint64 camembert_registry_xact(void);

/* Is a handle returned in this transaction still the one camembert_model_get would return? */
extern bool camembert_model_still_valid(const CamembertModel *model);

/* Names of the models loaded now (palloc'ed array, *count entries). */
extern char **camembert_registry_loaded_names(int *count);

#endif							/* MODEL_REGISTRY_H */
