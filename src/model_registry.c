/*
 * model_registry.c — models loaded once per server, in shared memory.
 *
 * Shared state: a fixed array of ModelSlot (camembert.max_models) in the main
 * shared memory segment, guarded by one LWLock, with a condition variable per
 * slot for backends waiting on a load in progress.
 *
 * A loaded model is one DSM segment, pinned so that it outlives the backend
 * that created it:
 *
 *     SegmentHeader | tokenizer image | model image   (images 64-byte aligned)
 *
 * Both images are position independent, so each backend maps the segment at
 * whatever address it gets and uses it in place: N backends cost one copy.
 *
 * Lifetime: camembert_unload() frees the slot and unpins the segment; backends
 * still using it keep their mapping (the segment lives until the last one
 * detaches), and detach when they next see that the slot's generation
 * changed.  So unloading never pulls memory from under a running query.
 *
 * Persistence: camembert_load() also writes name → path into the extension's
 * configuration table camembert_registered_models (kept by pg_dump).  After a
 * restart or a crash the shared registry is empty; the first backend that asks
 * for a registered model loads it again (the others wait on the slot).
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "utils/fmgroids.h"
#include "access/genam.h"
#include "access/table.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "camembert.h"
#include "model_image.h"
#include "model_registry.h"
#include "model_segment.h"

#define CATALOG_TABLE	"camembert_registered_models"

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
	int			loader_pid;
	ConditionVariable cv;		/* broadcast when a load ends */
} ModelSlot;

typedef struct RegistryShared
{
	LWLock	   *lock;
	uint64		next_generation;
	int			nslots;
	ModelSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} RegistryShared;

static RegistryShared *registry = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this backend's attached models, by name */
static HTAB *attached_models = NULL;

/* unloads to carry out when this transaction commits (TopTransactionContext) */
static List *pending_unloads = NIL;
static bool xact_callback_registered = false;

/* counts this backend's transactions: a handle used in the current one stays valid */
static uint64 xact_count = 1;

static void register_xact_callback(void);
static void cancel_pending_unload(const char *name);

static Size
registry_size(void)
{
	return add_size(offsetof(RegistryShared, slots),
					mul_size(sizeof(ModelSlot), camembert_max_models));
}

static void
registry_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(registry_size());
	RequestNamedLWLockTranche("camembert", 1);
}

static void
registry_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	registry = ShmemInitStruct("camembert model registry", registry_size(), &found);
	if (!found)
	{
		memset(registry, 0, registry_size());
		registry->lock = &(GetNamedLWLockTranche("camembert"))->lock;
		registry->next_generation = 1;
		registry->nslots = camembert_max_models;
		for (int i = 0; i < registry->nslots; i++)
			ConditionVariableInit(&registry->slots[i].cv);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
camembert_registry_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = registry_request;
#else
	registry_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = registry_startup;
}

void
camembert_require_preload(void)
{
	if (registry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("camembert is not loaded through shared_preload_libraries"),
				 errhint("Add 'camembert' to shared_preload_libraries in postgresql.conf and restart the server: models live in shared memory.")));
}

/* ---------------------------------------------------------------------------
 * Privileges and paths
 */

static void
check_load_privilege(const char *what)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errhint("Only superusers and members of pg_read_server_files may load or unload models, since that reads files on the server.")));
}

static void
check_model_name(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid model name \"%s\"", name),
				 errhint("A model name has 1 to %d bytes.", NAMEDATALEN - 1)));
}

/* ---------------------------------------------------------------------------
 * The catalog table (name → path), read and written as its owner.
 */

/* the schema of an extension (get_extension_schema is not exported before PG 16) */
static Oid
extension_schema(Oid ext_oid)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext_oid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
}

static Oid
catalog_table_oid(Oid *owner)
{
	Oid			ext_oid = get_extension_oid("camembert", true);
	Oid			nsp;
	Oid			relid;
	HeapTuple	tup;

	if (!OidIsValid(ext_oid))
		return InvalidOid;
	nsp = extension_schema(ext_oid);
	relid = get_relname_relid(CATALOG_TABLE, nsp);
	if (!OidIsValid(relid))
		return InvalidOid;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	*owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return relid;
}

/*
 * Run one statement on the catalog table as its owner.  Returns the path found
 * (for a SELECT) or NULL.
 */
static char *
catalog_exec(const char *sql_template, const char *name, const char *path)
{
	Oid			owner;
	Oid			relid = catalog_table_oid(&owner);
	Oid			save_userid;
	int			save_sec_context;
	char	   *result = NULL;
	char	   *sql;
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	int			nargs = path ? 2 : 1;
	MemoryContext caller = CurrentMemoryContext;

	if (!OidIsValid(relid))
		return NULL;
	sql = psprintf(sql_template, quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
															CATALOG_TABLE));
	values[0] = CStringGetTextDatum(name);
	if (path)
		values[1] = CStringGetTextDatum(path);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args(sql, nargs, types, values, NULL, false, 1) < 0)
			elog(ERROR, "could not access %s", CATALOG_TABLE);
		if (SPI_processed > 0 && SPI_tuptable != NULL && SPI_tuptable->tupdesc->natts >= 1)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (v)
				result = MemoryContextStrdup(caller, v);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	return result;
}

char	  **
camembert_registry_registered_names(int *count)
{
	Oid			owner;
	Oid			relid = catalog_table_oid(&owner);
	char	  **names = NULL;
	int			n = 0;
	MemoryContext caller = CurrentMemoryContext;

	*count = 0;
	if (!OidIsValid(relid))
		return NULL;
	/* SELECT is granted to PUBLIC: no user switch needed */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT name FROM %s ORDER BY name",
							 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
														CATALOG_TABLE)),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s", CATALOG_TABLE);
	names = MemoryContextAlloc(caller, sizeof(char *) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (v)
			names[n++] = MemoryContextStrdup(caller, v);
	}
	SPI_finish();
	*count = n;
	return names;
}

/* ---------------------------------------------------------------------------
 * Slots
 */

static ModelSlot *
find_slot(const char *name)
{
	for (int i = 0; i < registry->nslots; i++)
	{
		ModelSlot  *slot = &registry->slots[i];

		if (slot->state != SLOT_FREE && strcmp(slot->name, name) == 0)
			return slot;
	}
	return NULL;
}

static void
wait_for_load(ModelSlot *slot, const char *name)
{
	/* called without the lock; returns when the slot is no longer loading `name` */
	ConditionVariablePrepareToSleep(&slot->cv);
	for (;;)
	{
		bool		loading;

		LWLockAcquire(registry->lock, LW_SHARED);
		loading = slot->state == SLOT_LOADING && strcmp(slot->name, name) == 0;
		LWLockRelease(registry->lock);
		if (!loading)
			break;
		ConditionVariableSleep(&slot->cv, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/* Cleanup if the loading backend fails (ERROR or FATAL): free the slot. */
static void
abandon_load(int code, Datum arg)
{
	ModelSlot  *slot = (ModelSlot *) DatumGetPointer(arg);

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	if (slot->state == SLOT_LOADING && slot->loader_pid == MyProcPid)
	{
		slot->state = SLOT_FREE;
		slot->generation = registry->next_generation++;
		slot->loader_pid = 0;
	}
	LWLockRelease(registry->lock);
	ConditionVariableBroadcast(&slot->cv);
}

static void
load_into_slot(ModelSlot *slot, const char *name, const char *path)
{
	/* the slot is ours (SLOT_LOADING, loader_pid = us) */
	PG_ENSURE_ERROR_CLEANUP(abandon_load, PointerGetDatum(slot));
	{
		Size		size = 0;
		dsm_segment *seg = camembert_build_segment(path, &size);

		LWLockAcquire(registry->lock, LW_EXCLUSIVE);
		dsm_pin_segment(seg);
		slot->handle = dsm_segment_handle(seg);
		slot->segment_size = size;
		slot->state = SLOT_READY;
		slot->loader_pid = 0;
		slot->generation = registry->next_generation++;
		LWLockRelease(registry->lock);
		dsm_detach(seg);
		ereport(LOG,
				(errmsg("camembert: loaded model \"%s\" from \"%s\" (%zu bytes of shared memory)",
						name, path, (size_t) size)));
	}
	PG_END_ENSURE_ERROR_CLEANUP(abandon_load, PointerGetDatum(slot));
	ConditionVariableBroadcast(&slot->cv);
}

/*
 * Make sure `name` is loaded from `path`.  Returns once it is READY (loaded by
 * us or by a concurrent backend).  ERROR if `name` is loaded from another path.
 */
static void
ensure_loaded(const char *name, const char *path)
{
	for (;;)
	{
		ModelSlot  *slot;
		ModelSlot  *free_slot = NULL;

		LWLockAcquire(registry->lock, LW_EXCLUSIVE);
		slot = find_slot(name);
		if (slot != NULL && slot->state == SLOT_READY)
		{
			bool		same = strcmp(slot->path, path) == 0;

			LWLockRelease(registry->lock);
			if (!same)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("model \"%s\" is already loaded from \"%s\"", name, slot->path),
						 errhint("Run camembert_unload('%s') first, or choose another name.", name)));
			return;
		}
		if (slot != NULL && slot->state == SLOT_LOADING)
		{
			LWLockRelease(registry->lock);
			wait_for_load(slot, name);
			continue;			/* loaded, or failed: look again */
		}
		for (int i = 0; i < registry->nslots; i++)
			if (registry->slots[i].state == SLOT_FREE)
			{
				free_slot = &registry->slots[i];
				break;
			}
		if (free_slot == NULL)
		{
			LWLockRelease(registry->lock);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("cannot load model \"%s\": all %d model slots are in use", name, registry->nslots),
					 errhint("Unload a model with camembert_unload(), or raise camembert.max_models and restart.")));
		}
		free_slot->state = SLOT_LOADING;
		strlcpy(free_slot->name, name, sizeof(free_slot->name));
		strlcpy(free_slot->path, path, sizeof(free_slot->path));
		free_slot->loader_pid = MyProcPid;
		free_slot->generation = registry->next_generation++;
		LWLockRelease(registry->lock);

		load_into_slot(free_slot, name, path);
		return;
	}
}

void
camembert_registry_load(const char *name, const char *path)
{
	char	   *resolved;

	camembert_require_preload();
	check_load_privilege("load a model");
	check_model_name(name);
	resolved = camembert_resolve_model_path(path);
	if (strlen(resolved) >= MAXPGPATH)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("model path is too long (%zu bytes)", strlen(resolved))));
	register_xact_callback();
	cancel_pending_unload(name);
	ensure_loaded(name, resolved);
	catalog_exec("INSERT INTO %s (name, path) VALUES ($1, $2) "
				 "ON CONFLICT (name) DO UPDATE SET path = EXCLUDED.path, registered_at = now()",
				 name, resolved);
}

/*
 * Free a READY slot and unpin its segment.  Backends still attached keep the
 * segment alive until they detach.  Called at commit: must not fail.
 */
static void
free_slot(const char *name)
{
	ModelSlot  *slot;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	slot = find_slot(name);
	if (slot != NULL && slot->state == SLOT_READY)
	{
		dsm_handle	h = slot->handle;

		slot->state = SLOT_FREE;
		slot->handle = 0;
		slot->name[0] = '\0';
		slot->path[0] = '\0';
		slot->generation = registry->next_generation++;
		dsm_unpin_segment(h);
	}
	LWLockRelease(registry->lock);
}

static void
registry_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
			foreach(lc, pending_unloads)
				free_slot((const char *) lfirst(lc));
			pending_unloads = NIL;
			xact_count++;
			break;
		case XACT_EVENT_ABORT:
			pending_unloads = NIL;
			xact_count++;
			break;
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			xact_count++;
			break;
		default:
			break;
	}
}

static void
register_xact_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(registry_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

/*
 * Unload: forget the model in the catalog now, and free its shared memory
 * when this transaction commits (nothing happens if it aborts), so that no
 * other backend can see the model gone from memory but still registered,
 * and load it again, in between.
 */
bool
camembert_registry_unload(const char *name)
{
	bool		found = false;
	ModelSlot  *slot;
	MemoryContext old;

	camembert_require_preload();
	check_load_privilege("unload a model");
	register_xact_callback();

	for (;;)
	{
		LWLockAcquire(registry->lock, LW_SHARED);
		slot = find_slot(name);
		if (slot != NULL && slot->state == SLOT_LOADING)
		{
			LWLockRelease(registry->lock);
			wait_for_load(slot, name);
			continue;
		}
		found = slot != NULL;
		LWLockRelease(registry->lock);
		break;
	}
	if (catalog_exec("DELETE FROM %s WHERE name = $1 RETURNING path", name, NULL) != NULL)
		found = true;
	if (found)
	{
		old = MemoryContextSwitchTo(TopTransactionContext);
		pending_unloads = lappend(pending_unloads, pstrdup(name));
		MemoryContextSwitchTo(old);
	}
	return found;
}

static void
cancel_pending_unload(const char *name)
{
	ListCell   *lc;

	foreach(lc, pending_unloads)
	{
		if (strcmp((const char *) lfirst(lc), name) == 0)
		{
			pending_unloads = foreach_delete_current(pending_unloads, lc);
		}
	}
}

char	  **
camembert_registry_loaded_names(int *count)
{
	char	  **names;
	int			n = 0;

	camembert_require_preload();
	names = palloc(sizeof(char *) * registry->nslots);
	LWLockAcquire(registry->lock, LW_SHARED);
	for (int i = 0; i < registry->nslots; i++)
		if (registry->slots[i].state == SLOT_READY)
			names[n++] = pstrdup(registry->slots[i].name);
	LWLockRelease(registry->lock);
	*count = n;
	return names;
}

/* ---------------------------------------------------------------------------
 * This backend's handles
 */

static void
release_handle(CamembertModel *handle)
{
	if (handle->segment != NULL)
	{
		dsm_detach(handle->segment);
		handle->segment = NULL;
	}
	if (handle->context != NULL)
	{
		MemoryContextDelete(handle->context);
		handle->context = NULL;
	}
	handle->generation = 0;
}

static void
attach_handle(CamembertModel *handle, ModelSlot *slot)
{
	/* called with the registry lock held (shared): the segment cannot vanish */
	dsm_segment *seg;
	SegmentHeader *hdr;
	const char *base;
	cb_error	err;
	MemoryContext old;

	seg = dsm_attach(slot->handle);
	if (seg == NULL)
		elog(ERROR, "could not attach the shared memory of model \"%s\"", slot->name);
	dsm_pin_mapping(seg);
	handle->segment = seg;
	handle->generation = slot->generation;
	handle->segment_size = slot->segment_size;
	strlcpy(handle->path, slot->path, sizeof(handle->path));
	handle->context = AllocSetContextCreate(TopMemoryContext, "camembert model",
											ALLOCSET_SMALL_SIZES);

	base = dsm_segment_address(seg);
	hdr = (SegmentHeader *) base;
	if (hdr->magic != SEGMENT_MAGIC || hdr->version != SEGMENT_VERSION ||
		hdr->model_offset + hdr->model_length > dsm_segment_map_length(seg))
		elog(ERROR, "shared memory of model \"%s\" is corrupted", slot->name);

	old = MemoryContextSwitchTo(handle->context);
	if (cb_tokenizer_open(base + hdr->tokenizer_offset, hdr->tokenizer_length,
						  &handle->tokenizer, &err) != CB_OK ||
		cb_model_view(base + hdr->model_offset, hdr->model_length,
					  &handle->model, &err) != CB_OK)
	{
		MemoryContextSwitchTo(old);
		camembert_report_core_error(&err, slot->name, NULL);
	}
	MemoryContextSwitchTo(old);
}

CamembertModel *
camembert_model_get(const char *name, int flags)
{
	bool		missing_ok = (flags & MODEL_GET_MISSING_OK) != 0;
	CamembertModel *handle;
	bool		found;
	bool		tried_catalog = false;

	camembert_require_preload();

	if (attached_models == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(CamembertModel);
#if PG_VERSION_NUM >= 140000
		attached_models = hash_create("camembert attached models", 8, &ctl,
									  HASH_ELEM | HASH_STRINGS);
#else
		attached_models = hash_create("camembert attached models", 8, &ctl, HASH_ELEM);
#endif
	}
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
	{
		if (missing_ok)
			return NULL;
		check_model_name(name);
	}
	handle = hash_search(attached_models, name, HASH_ENTER, &found);
	if (!found)
	{
		handle->generation = 0;
		handle->used_in_xact = 0;
		handle->segment = NULL;
		handle->context = NULL;
	}

	/*
	 * Within one transaction a name keeps meaning the model it first meant:
	 * a concurrent unload or reload does not change it under a running
	 * query (our mapping keeps the old segment alive).
	 */
	register_xact_callback();
	if (handle->segment != NULL && handle->used_in_xact == xact_count)
		return handle;

	for (;;)
	{
		ModelSlot  *slot;
		char	   *path;

		LWLockAcquire(registry->lock, LW_SHARED);
		slot = find_slot(name);
		if (slot != NULL && slot->state == SLOT_READY)
		{
			if (handle->segment == NULL || handle->generation != slot->generation)
			{
				release_handle(handle);
				PG_TRY();
				{
					attach_handle(handle, slot);
				}
				PG_CATCH();
				{
					LWLockReleaseAll();
					release_handle(handle);
					PG_RE_THROW();
				}
				PG_END_TRY();
			}
			LWLockRelease(registry->lock);
			handle->used_in_xact = xact_count;
			return handle;
		}
		LWLockRelease(registry->lock);

		if (slot != NULL && slot->state == SLOT_LOADING)
		{
			wait_for_load(slot, name);
			continue;
		}

		/* not loaded: drop a stale mapping, then try the catalog once */
		release_handle(handle);
		if (!tried_catalog && (flags & MODEL_GET_NO_AUTOLOAD) == 0)
		{
			tried_catalog = true;
			path = catalog_exec("SELECT path FROM %s WHERE name = $1", name, NULL);
			if (path != NULL)
			{
				ensure_loaded(name, path);
				continue;
			}
		}
		hash_search(attached_models, name, HASH_REMOVE, NULL);
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" is not loaded", name),
				 errhint("Load it with SELECT camembert_load('%s', '/path/to/model/directory').", name)));
	}
}
