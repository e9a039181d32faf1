/*
 * model_registry.c — models loaded once per server, in shared memory: the slots.
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
 * Persistence: camembert_load() also writes name → path, dtype into the
 * extension's configuration table camembert_registered_models (kept by
 * pg_dump).  After a restart or a crash the shared registry is empty; the
 * first backend that asks for a registered model loads it again, with the
 * recorded dtype (the others wait on the slot).
 *
 * This file holds the slots: loading into one, freeing one, load and unload.
 * What a transaction did to them is applied at its end by model_xact.c; a
 * backend's handles on the loaded segments are model_attach.c's.
 */#include "postgres.h"

#include <sys/stat.h>

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "executor/executor.h"
#include "utils/guc.h"
#include "lib/stringinfo.h"
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
#include "portability/instr_time.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "camembert.h"
#include "model_image.h"
#include "model_catalog.h"
#include "model_registry.h"
#include "model_segment.h"
#include "model_stats.h"
#include "sql_support.h"
#include "model_registry_internal.h"

#define CATALOG_TABLE	"camembert_registered_models"

RegistryShared *camembert_registry = NULL;

/* camembert.max_models: the slots, sized at server start */
int			camembert_max_models = 16;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

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
	camembert_registry = ShmemInitStruct("camembert model registry", registry_size(), &found);
	if (!found)
	{
		memset(camembert_registry, 0, registry_size());
		camembert_registry->lock = &(GetNamedLWLockTranche("camembert"))->lock;
		camembert_registry->next_generation = 1;
		camembert_registry->nslots = camembert_max_models;
		for (int i = 0; i < camembert_registry->nslots; i++)
			ConditionVariableInit(&camembert_registry->slots[i].cv);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
camembert_registry_init(void)
{
	/* a developer option, as post_auth_delay: lets tests watch a load in progress */
	DefineCustomIntVariable("camembert.debug_load_delay",
							"Milliseconds each model load waits before it reads the files (for tests).",
							NULL,
							&camembert_debug_load_delay,
							0, 0, 3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);

	/* sizes shared memory: only meaningful (and only allowed) at server start */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("camembert.max_models",
								"Number of models that can be loaded at the same time.",
								NULL,
								&camembert_max_models,
								16, 1, 1024,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);

	camembert_attach_init();

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
	if (camembert_registry == NULL)
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

/*
 * Loading and unloading write the catalog table: refused on a hot standby and
 * in a read-only transaction, before shared memory is touched (a standby
 * loads the primary's registrations on first use, from its own disk).
 */
static void
check_writable(const char *what)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot %s during recovery", what),
				 errhint("Load and unload models on the primary: a hot standby loads the models registered there on first use, from its own copy of the files at the same path.")));
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot %s in a read-only transaction", what),
				 errhint("camembert_load() and camembert_unload() write the table camembert_registered_models: run them in a read-write transaction.")));
}

void
camembert_check_model_name(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid model name \"%s\"", name),
				 errhint("A model name has 1 to %d bytes.", NAMEDATALEN - 1)));
}

/*
 * The precision of a dtype name (camembert_load's dtype argument, or a
 * registration's dtype column; NULL: a registration made before version
 * 0.3, whose load kept the file's dtype, i.e. auto).  `registered_as`
 * names the model when the name comes from the catalog table.
 */
cb_precision
camembert_parse_dtype(const char *dtype, const char *registered_as)
{
	cb_precision p;

	if (dtype == NULL)
		return CB_PRECISION_AUTO;
	if (cb_precision_from_name(dtype, &p))
		return p;
	if (registered_as != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model \"%s\" is registered with an invalid dtype \"%s\"",
						camembert_printable(registered_as), camembert_printable(dtype)),
				 errhint("The dtype is one of " CB_PRECISION_NAMES "; load the model again with camembert_load('%s', path, dtype => ...).",
						 camembert_printable(registered_as))));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid dtype \"%s\"", camembert_printable(dtype)),
			 errhint("The dtype is one of " CB_PRECISION_NAMES " (auto keeps the dtype of the model's files).")));
	pg_unreachable();
}

/* ---------------------------------------------------------------------------
 * Slots
 */

ModelSlot *
camembert_slot_find(const char *name)
{
	for (int i = 0; i < camembert_registry->nslots; i++)
	{
		ModelSlot  *slot = &camembert_registry->slots[i];

		if (slot->state != SLOT_FREE && strcmp(slot->name, name) == 0)
			return slot;
	}
	return NULL;
}

void
camembert_slot_wait(ModelSlot *slot, const char *name)
{
	/* called without the lock; returns when the slot is no longer loading `name` */
	ConditionVariablePrepareToSleep(&slot->cv);
	for (;;)
	{
		bool		loading;

		LWLockAcquire(camembert_registry->lock, LW_SHARED);
		loading = slot->state == SLOT_LOADING && strcmp(slot->name, name) == 0;
		LWLockRelease(camembert_registry->lock);
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

	LWLockAcquire(camembert_registry->lock, LW_EXCLUSIVE);
	if (slot->state == SLOT_LOADING && slot->loader_pid == MyProcPid)
	{
		slot->state = SLOT_FREE;
		slot->generation = camembert_registry->next_generation++;
		slot->loader_pid = 0;
	}
	LWLockRelease(camembert_registry->lock);
	ConditionVariableBroadcast(&slot->cv);
}

/*
 * camembert.debug_load_delay (a developer option, superuser only, as
 * PostgreSQL's post_auth_delay): hold a load open that long, in an
 * interruptible wait, so that tests can watch other backends wait for it.
 */
int			camembert_debug_load_delay = 0;

static void
debug_load_delay(void)
{
	instr_time	start;
	instr_time	now;

	if (camembert_debug_load_delay <= 0)
		return;
	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		long		left;

		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		left = camembert_debug_load_delay - (long) INSTR_TIME_GET_MILLISEC(now);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, left,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static Size
load_into_slot(ModelSlot *slot, const char *name, const char *path, cb_precision precision)
{
	Size		size = 0;

	/* the slot is ours (SLOT_LOADING, loader_pid = us) */
	PG_ENSURE_ERROR_CLEANUP(abandon_load, PointerGetDatum(slot));
	{
		instr_time	start;
		instr_time	elapsed;
		dsm_segment *seg;
		cb_architecture arch;
		cb_dtype	dtype;

		INSTR_TIME_SET_CURRENT(start);
		debug_load_delay();
		seg = camembert_build_segment(path, precision, &size, &arch, &dtype);

		LWLockAcquire(camembert_registry->lock, LW_EXCLUSIVE);
		dsm_pin_segment(seg);
		slot->generation = camembert_registry->next_generation++;
		((SegmentHeader *) dsm_segment_address(seg))->generation = slot->generation;
		slot->handle = dsm_segment_handle(seg);
		slot->segment_size = size;
		slot->architecture = arch;
		slot->state = SLOT_READY;
		slot->loader_pid = 0;
		LWLockRelease(camembert_registry->lock);
		dsm_detach(seg);
		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);
		ereport(LOG,
				(errmsg("camembert: loaded model \"%s\" from \"%s\" (%s, %s weights, dtype %s, %zu bytes of shared memory) in %.1f ms",
						camembert_printable(name), camembert_printable(path),
						cb_architecture_name(arch), cb_dtype_name(dtype),
						cb_precision_name(precision),
						(size_t) size, INSTR_TIME_GET_MILLISEC(elapsed))));
		camembert_stat_load(name);
	}
	PG_END_ENSURE_ERROR_CLEANUP(abandon_load, PointerGetDatum(slot));
	ConditionVariableBroadcast(&slot->cv);
	return size;
}

/* "database \"x\"" for messages; a dropped database by its OID */
static char *
database_label(Oid dboid)
{
	char	   *name = OidIsValid(dboid) ? get_database_name(dboid) : NULL;

	if (name != NULL)
		return psprintf("database \"%s\"", camembert_printable(name));
	return psprintf("database with OID %u", dboid);
}

/*
 * `name` is loaded (slot content copied in `loaded`) other than as `path`
 * with `precision` asks: an ERROR naming what is loaded, and for which
 * database when it is not this one (a name means one model per server).
 */
void
camembert_report_loaded_otherwise(const char *name, const char *loaded_path, cb_precision loaded_precision,
						Oid loaded_dboid, const char *path, cb_precision precision)
{
	if (OidIsValid(loaded_dboid) && loaded_dboid != MyDatabaseId)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("model \"%s\" is loaded on this server for %s from \"%s\" (dtype %s), but %s registers it from \"%s\" (dtype %s)",
						camembert_printable(name), database_label(loaded_dboid),
						camembert_printable(loaded_path), cb_precision_name(loaded_precision),
						database_label(MyDatabaseId), camembert_printable(path),
						cb_precision_name(precision)),
				 errhint("A model name means one model per server, shared by its databases: register the same path and dtype in both, use another name in one of them, or unload it in the other database first.")));
	if (strcmp(loaded_path, path) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("model \"%s\" is already loaded from \"%s\"", camembert_printable(name), camembert_printable(loaded_path)),
				 errhint("Run camembert_unload('%s') first, or choose another name.", camembert_printable(name))));
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("model \"%s\" is already loaded with dtype \"%s\", not \"%s\"", camembert_printable(name),
					cb_precision_name(loaded_precision), cb_precision_name(precision)),
			 errhint("Run camembert_unload('%s') first, or choose another name.", camembert_printable(name))));
}

/*
 * Make sure `name` is loaded from `path` with `precision`, for this
 * database's registration.  Returns once it is READY (loaded by us or by a
 * concurrent backend): the bytes of shared memory this call loaded, 0 if it
 * was loaded already; *loaded_generation (if given) the slot generation this
 * call filled, 0 if none.  ERROR if `name` is loaded from another path, or
 * with another dtype.
 */
Size
camembert_slot_ensure_loaded(const char *name, const char *path, cb_precision precision,
			  TransactionId registered_by, uint64 *loaded_generation)
{
	if (loaded_generation)
		*loaded_generation = 0;
	for (;;)
	{
		ModelSlot  *slot;
		ModelSlot  *free_slot = NULL;
		Size		size;

		LWLockAcquire(camembert_registry->lock, LW_EXCLUSIVE);
		slot = camembert_slot_find(name);
		if (slot != NULL && slot->state == SLOT_READY)
		{
			bool		same = strcmp(slot->path, path) == 0 && slot->precision == precision;
			cb_precision loaded_precision = slot->precision;
			Oid			loaded_dboid = slot->dboid;
			char		loaded_path[MAXPGPATH];

			strlcpy(loaded_path, slot->path, sizeof(loaded_path));
			LWLockRelease(camembert_registry->lock);
			if (!same)
				camembert_report_loaded_otherwise(name, loaded_path, loaded_precision, loaded_dboid,
										path, precision);
			return 0;
		}
		if (slot != NULL && slot->state == SLOT_LOADING)
		{
			LWLockRelease(camembert_registry->lock);
			camembert_slot_wait(slot, name);
			continue;			/* loaded, or failed: look again */
		}
		for (int i = 0; i < camembert_registry->nslots; i++)
			if (camembert_registry->slots[i].state == SLOT_FREE)
			{
				free_slot = &camembert_registry->slots[i];
				break;
			}
		if (free_slot == NULL)
		{
			LWLockRelease(camembert_registry->lock);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("cannot load model \"%s\": all %d model slots are in use", camembert_printable(name), camembert_registry->nslots),
					 errhint("Unload a model with camembert_unload(), or raise camembert.max_models and restart.")));
		}
		free_slot->state = SLOT_LOADING;
		strlcpy(free_slot->name, name, sizeof(free_slot->name));
		strlcpy(free_slot->path, path, sizeof(free_slot->path));
		free_slot->precision = precision;
		free_slot->dboid = MyDatabaseId;
		free_slot->registered_by = registered_by;
		free_slot->loader_pid = MyProcPid;
		free_slot->generation = camembert_registry->next_generation++;
		LWLockRelease(camembert_registry->lock);

		size = load_into_slot(free_slot, name, path, precision);
		if (loaded_generation)
		{
			/* READY under the generation load_into_slot gave it (nobody frees it meanwhile but an unload, at commit) */
			LWLockAcquire(camembert_registry->lock, LW_SHARED);
			if (free_slot->state == SLOT_READY && strcmp(free_slot->name, name) == 0)
				*loaded_generation = free_slot->generation;
			LWLockRelease(camembert_registry->lock);
		}
		return size;
	}
}

/*
 * For the preload worker (model_preload.c): make sure `name` is loaded from
 * `path` with `dtype`, a registration read from a catalog table, as the
 * server (no privilege check, no catalog write).  Returns the bytes of shared
 * memory this call loaded, or 0 when the name was already loaded (or being
 * loaded by another backend, whose load this waited for).
 */
Size
camembert_registry_preload(const char *name, const char *path, const char *dtype,
						   TransactionId registered_by)
{
	camembert_require_preload();
	camembert_check_model_name(name);
	return camembert_slot_ensure_loaded(name, path, camembert_parse_dtype(dtype, name), registered_by, NULL);
}

void
camembert_registry_load(const char *name, const char *path, const char *dtype)
{
	char	   *resolved;
	ModelSlot  *slot;
	const char *architecture = NULL;
	cb_precision precision;
	uint64		loaded_generation;

	camembert_require_preload();
	check_load_privilege("load a model");
	check_writable("load a model");
	camembert_check_model_name(name);
	precision = camembert_parse_dtype(dtype, NULL);
	resolved = camembert_resolve_model_path(path);
	if (strlen(resolved) >= MAXPGPATH)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("model path is too long (%zu bytes)", strlen(resolved))));
	camembert_pending_register_callbacks();
	camembert_slot_ensure_loaded(name, resolved, precision, GetTopTransactionId(), &loaded_generation);
	camembert_pending_add(PENDING_LOAD, name, loaded_generation);

	LWLockAcquire(camembert_registry->lock, LW_SHARED);
	slot = camembert_slot_find(name);
	if (slot != NULL && slot->state == SLOT_READY)
		architecture = cb_architecture_name(slot->architecture);
	LWLockRelease(camembert_registry->lock);
	camembert_catalog_register(name, resolved, architecture, cb_precision_name(precision));
}

/*
 * Free the READY slot of `name` (only if it still holds `generation`, when
 * that is not 0) and unpin its segment.  Backends still attached keep the
 * segment alive until they detach.  Called at commit and abort: must not
 * fail.  `why` ends the log line.
 */
void
camembert_slot_free(const char *name, uint64 generation, const char *why)
{
	ModelSlot  *slot;

	LWLockAcquire(camembert_registry->lock, LW_EXCLUSIVE);
	slot = camembert_slot_find(name);
	if (slot != NULL && slot->state == SLOT_READY &&
		(generation == 0 || slot->generation == generation))
	{
		dsm_handle	h = slot->handle;
		char		path[MAXPGPATH];
		Size		size = slot->segment_size;

		strlcpy(path, slot->path, sizeof(path));
		slot->state = SLOT_FREE;
		slot->handle = 0;
		slot->name[0] = '\0';
		slot->path[0] = '\0';
		slot->dboid = InvalidOid;
		slot->registered_by = InvalidTransactionId;
		slot->generation = camembert_registry->next_generation++;
		camembert_registry->last_unload_generation = slot->generation;
		dsm_unpin_segment(h);
		LWLockRelease(camembert_registry->lock);
		ereport(LOG,
				(errmsg("camembert: unloaded model \"%s\" (from \"%s\", %zu bytes of shared memory, freed when the last backend using it detaches)%s",
						camembert_printable(name), camembert_printable(path), (size_t) size, why)));
		return;
	}
	LWLockRelease(camembert_registry->lock);
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

	camembert_require_preload();
	check_load_privilege("unload a model");
	check_writable("unload a model");
	camembert_pending_register_callbacks();

	for (;;)
	{
		LWLockAcquire(camembert_registry->lock, LW_SHARED);
		slot = camembert_slot_find(name);
		if (slot != NULL && slot->state == SLOT_LOADING)
		{
			LWLockRelease(camembert_registry->lock);
			camembert_slot_wait(slot, name);
			continue;
		}
		found = slot != NULL;
		LWLockRelease(camembert_registry->lock);
		break;
	}
	if (camembert_catalog_forget(name))
		found = true;
	if (found)
		camembert_pending_add(PENDING_UNLOAD, name, 0);
	return found;
}

char	  **
camembert_registry_loaded_names(int *count)
{
	char	  **names;
	int			n = 0;

	camembert_require_preload();
	names = palloc(sizeof(char *) * camembert_registry->nslots);
	LWLockAcquire(camembert_registry->lock, LW_SHARED);
	for (int i = 0; i < camembert_registry->nslots; i++)
		if (camembert_registry->slots[i].state == SLOT_READY)
			names[n++] = pstrdup(camembert_registry->slots[i].name);
	LWLockRelease(camembert_registry->lock);
	*count = n;
	return names;
}

