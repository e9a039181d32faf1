/*
 * model_registry_internal.h — what the three files of the model registry share
 * (not for the rest of the extension, which uses model_registry.h):
 *
 *   model_registry.c   the slots in shared memory: loading, unloading, freeing
 *   model_xact.c       what a transaction did to them, applied at its end
 *   model_attach.c     this backend's handles on loaded models, parallel workers
 */
#ifndef MODEL_REGISTRY_INTERNAL_H
#define MODEL_REGISTRY_INTERNAL_H

#include "postgres.h"

#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/lwlock.h"

#include "matrix.h"
#include "model.h"

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_LOADING,
	SLOT_READY
} SlotState;

typedef struct ModelSlot
{
	SlotState	state;
	char		name[NAMEDATALEN];
	char		path[MAXPGPATH];
	dsm_handle	handle;
	Size		segment_size;
	uint64		generation;		/* changes whenever the slot's content changes */
	cb_precision precision;		/* the dtype it is (being) loaded with */
	cb_architecture architecture;	/* of the model, once READY */
	Oid			dboid;			/* the database whose registration it was loaded for */
	TransactionId registered_by;	/* the transaction of that registration: the
									 * row's xmin, or camembert_load's own */
	int			loader_pid;
	ConditionVariable cv;		/* broadcast when a load ends */
} ModelSlot;

typedef struct RegistryShared
{
	LWLock	   *lock;
	uint64		next_generation;
	uint64		last_unload_generation; /* generation given by the last unload */
	int			nslots;
	ModelSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} RegistryShared;

/* the registry in the main shared memory segment (NULL without shared_preload_libraries) */
extern RegistryShared *camembert_registry;

/* model_registry.c: the slots (camembert_registry->lock is taken inside) */
extern ModelSlot *camembert_slot_find(const char *name);	/* caller holds the lock */
extern void camembert_slot_wait(ModelSlot *slot, const char *name);
extern Size camembert_slot_ensure_loaded(const char *name, const char *path, cb_precision precision,
										 TransactionId registered_by, uint64 *loaded_generation);
extern void camembert_slot_free(const char *name, uint64 generation, const char *why);
extern void camembert_check_model_name(const char *name);
extern cb_precision camembert_parse_dtype(const char *dtype, const char *registered_as);
extern void camembert_report_loaded_otherwise(const char *name, const char *loaded_path,
											  cb_precision loaded_precision, Oid loaded_dboid,
											  const char *path, cb_precision precision) pg_attribute_noreturn();

/* model_xact.c: what this transaction did to the registry */
typedef enum PendingKind
{
	PENDING_UNLOAD,
	PENDING_LOAD				/* cancels an earlier unload of the name */
} PendingKind;

extern void camembert_pending_add(PendingKind kind, const char *name, uint64 loaded_generation);
extern bool camembert_pending_has(const char *name);
extern void camembert_pending_register_callbacks(void);

/* model_attach.c: installs the executor hook that hands models to parallel workers */
extern void camembert_attach_init(void);

#endif							/* MODEL_REGISTRY_INTERNAL_H */
