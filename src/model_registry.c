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
 * Persistence: camembert_load() also writes name → path, dtype into the
 * extension's configuration table camembert_registered_models (kept by
 * pg_dump).  After a restart or a crash the shared registry is empty; the
 * first backend that asks for a registered model loads it again, with the
 * recorded dtype (the others wait on the slot).
 */
#include "postgres.h"

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

static RegistryShared *registry = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this backend's attached models, by name */
static HTAB *attached_models = NULL;

/*
 * What this transaction did to the registry, applied when it commits.  An
 * unload frees the model's shared memory at commit; a load of the same name
 * later in the transaction cancels it.  Each action remembers the
 * subtransaction that made it, so that ROLLBACK TO SAVEPOINT (or an error
 * caught by a PL/pgSQL block) takes it back, and RELEASE hands it to the
 * parent.  Kept in TopMemoryContext and emptied at every top-level end.
 */
typedef enum PendingKind
{
	PENDING_UNLOAD,
	PENDING_LOAD				/* cancels an earlier unload of the name */
} PendingKind;

typedef struct PendingAction
{
	PendingKind kind;
	int			nest_level;		/* GetCurrentTransactionNestLevel() when made */
	char		name[NAMEDATALEN];
	uint64		loaded_generation;	/* PENDING_LOAD: the slot generation this load
									 * filled (0: it was loaded already); freed if
									 * the (sub)transaction aborts */
} PendingAction;

static List *pending_actions = NIL;
static bool xact_callback_registered = false;

/* counts this backend's transactions: a handle used in the current one stays valid */
static uint64 xact_count = 1;

static void register_xact_callback(void);
static ExecutorStart_hook_type prev_executor_start = NULL;
static void camembert_executor_start(QueryDesc *queryDesc, int eflags);
static void add_pending_action(PendingKind kind, const char *name, uint64 loaded_generation);

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
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = camembert_executor_start;

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

/*
 * The precision of a dtype name (camembert_load's dtype argument, or a
 * registration's dtype column; NULL: a registration made before version
 * 0.3, whose load kept the file's dtype, i.e. auto).  `registered_as`
 * names the model when the name comes from the catalog table.
 */
static cb_precision
parse_dtype(const char *dtype, const char *registered_as)
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

		LWLockAcquire(registry->lock, LW_EXCLUSIVE);
		dsm_pin_segment(seg);
		slot->generation = registry->next_generation++;
		((SegmentHeader *) dsm_segment_address(seg))->generation = slot->generation;
		slot->handle = dsm_segment_handle(seg);
		slot->segment_size = size;
		slot->architecture = arch;
		slot->state = SLOT_READY;
		slot->loader_pid = 0;
		LWLockRelease(registry->lock);
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
static void
report_loaded_otherwise(const char *name, const char *loaded_path, cb_precision loaded_precision,
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
static Size
ensure_loaded(const char *name, const char *path, cb_precision precision,
			  TransactionId registered_by, uint64 *loaded_generation)
{
	if (loaded_generation)
		*loaded_generation = 0;
	for (;;)
	{
		ModelSlot  *slot;
		ModelSlot  *free_slot = NULL;
		Size		size;

		LWLockAcquire(registry->lock, LW_EXCLUSIVE);
		slot = find_slot(name);
		if (slot != NULL && slot->state == SLOT_READY)
		{
			bool		same = strcmp(slot->path, path) == 0 && slot->precision == precision;
			cb_precision loaded_precision = slot->precision;
			Oid			loaded_dboid = slot->dboid;
			char		loaded_path[MAXPGPATH];

			strlcpy(loaded_path, slot->path, sizeof(loaded_path));
			LWLockRelease(registry->lock);
			if (!same)
				report_loaded_otherwise(name, loaded_path, loaded_precision, loaded_dboid,
										path, precision);
			return 0;
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
					 errmsg("cannot load model \"%s\": all %d model slots are in use", camembert_printable(name), registry->nslots),
					 errhint("Unload a model with camembert_unload(), or raise camembert.max_models and restart.")));
		}
		free_slot->state = SLOT_LOADING;
		strlcpy(free_slot->name, name, sizeof(free_slot->name));
		strlcpy(free_slot->path, path, sizeof(free_slot->path));
		free_slot->precision = precision;
		free_slot->dboid = MyDatabaseId;
		free_slot->registered_by = registered_by;
		free_slot->loader_pid = MyProcPid;
		free_slot->generation = registry->next_generation++;
		LWLockRelease(registry->lock);

		size = load_into_slot(free_slot, name, path, precision);
		if (loaded_generation)
		{
			/* READY under the generation load_into_slot gave it (nobody frees it meanwhile but an unload, at commit) */
			LWLockAcquire(registry->lock, LW_SHARED);
			if (free_slot->state == SLOT_READY && strcmp(free_slot->name, name) == 0)
				*loaded_generation = free_slot->generation;
			LWLockRelease(registry->lock);
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
	check_model_name(name);
	return ensure_loaded(name, path, parse_dtype(dtype, name), registered_by, NULL);
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
	check_model_name(name);
	precision = parse_dtype(dtype, NULL);
	resolved = camembert_resolve_model_path(path);
	if (strlen(resolved) >= MAXPGPATH)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("model path is too long (%zu bytes)", strlen(resolved))));
	register_xact_callback();
	ensure_loaded(name, resolved, precision, GetTopTransactionId(), &loaded_generation);
	add_pending_action(PENDING_LOAD, name, loaded_generation);

	LWLockAcquire(registry->lock, LW_SHARED);
	slot = find_slot(name);
	if (slot != NULL && slot->state == SLOT_READY)
		architecture = cb_architecture_name(slot->architecture);
	LWLockRelease(registry->lock);
	camembert_catalog_register(name, resolved, architecture, cb_precision_name(precision));
}

/*
 * Free the READY slot of `name` (only if it still holds `generation`, when
 * that is not 0) and unpin its segment.  Backends still attached keep the
 * segment alive until they detach.  Called at commit and abort: must not
 * fail.  `why` ends the log line.
 */
static void
free_slot(const char *name, uint64 generation, const char *why)
{
	ModelSlot  *slot;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	slot = find_slot(name);
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
		slot->generation = registry->next_generation++;
		registry->last_unload_generation = slot->generation;
		dsm_unpin_segment(h);
		LWLockRelease(registry->lock);
		ereport(LOG,
				(errmsg("camembert: unloaded model \"%s\" (from \"%s\", %zu bytes of shared memory, freed when the last backend using it detaches)%s",
						camembert_printable(name), camembert_printable(path), (size_t) size, why)));
		return;
	}
	LWLockRelease(registry->lock);
}

static void
add_pending_action(PendingKind kind, const char *name, uint64 loaded_generation)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	PendingAction *a = palloc0(sizeof(PendingAction));

	a->kind = kind;
	a->nest_level = GetCurrentTransactionNestLevel();
	strlcpy(a->name, name, sizeof(a->name));
	a->loaded_generation = loaded_generation;
	pending_actions = lappend(pending_actions, a);
	MemoryContextSwitchTo(old);
}

static void
clear_pending_actions(void)
{
	list_free_deep(pending_actions);
	pending_actions = NIL;
}

/* At commit: each name's last action decides. */
static void
apply_pending_actions(void)
{
	ListCell   *lc;

	foreach(lc, pending_actions)
	{
		PendingAction *a = (PendingAction *) lfirst(lc);
		ListCell   *lc2;
		bool		last = true;

		if (a->kind != PENDING_UNLOAD)
			continue;
		for_each_cell(lc2, pending_actions, lnext(pending_actions, lc))
		{
			if (strcmp(((PendingAction *) lfirst(lc2))->name, a->name) == 0)
				last = false;
		}
		if (last)
			free_slot(a->name, 0, "");
	}
}

/*
 * A (sub)transaction that loaded a model aborts: its catalog row is gone, so
 * the memory it filled is freed too (not if another backend's load of the
 * same name already used it: then it is still that generation, and the
 * registration of the other backend, once committed, names it; freeing it
 * then only costs a reload on next use).  `level` 0: every action.
 */
static void
undo_pending_loads(int level)
{
	ListCell   *lc;

	foreach(lc, pending_actions)
	{
		PendingAction *a = (PendingAction *) lfirst(lc);

		if (a->kind == PENDING_LOAD && a->loaded_generation != 0 && a->nest_level >= level)
			free_slot(a->name, a->loaded_generation, ", since the transaction that loaded it was rolled back");
	}
}

/* Has this transaction loaded or unloaded `name` (so that the catalog row and memory may differ until it ends)? */
static bool
has_pending_action(const char *name)
{
	ListCell   *lc;

	foreach(lc, pending_actions)
		if (strcmp(((PendingAction *) lfirst(lc))->name, name) == 0)
			return true;
	return false;
}

static void
registry_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (pending_actions != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has loaded or unloaded a camembert model"),
						 errhint("Run camembert_load() and camembert_unload() in a transaction of their own.")));
			break;
		case XACT_EVENT_COMMIT:
			apply_pending_actions();
			clear_pending_actions();
			xact_count++;
			break;
		case XACT_EVENT_ABORT:
			undo_pending_loads(0);
			clear_pending_actions();
			xact_count++;
			break;
		case XACT_EVENT_PREPARE:
			clear_pending_actions();
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

/*
 * A subtransaction that aborts takes its actions back; one that commits
 * hands them to its parent.
 */
static void
registry_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	switch (event)
	{
		case SUBXACT_EVENT_ABORT_SUB:
			undo_pending_loads(level);
			foreach(lc, pending_actions)
			{
				PendingAction *a = (PendingAction *) lfirst(lc);

				if (a->nest_level >= level)
				{
					pending_actions = foreach_delete_current(pending_actions, lc);
					pfree(a);
				}
			}
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			foreach(lc, pending_actions)
			{
				PendingAction *a = (PendingAction *) lfirst(lc);

				if (a->nest_level >= level)
					a->nest_level = level - 1;
			}
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
		RegisterSubXactCallback(registry_subxact_callback, NULL);
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

	camembert_require_preload();
	check_load_privilege("unload a model");
	check_writable("unload a model");
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
	if (camembert_catalog_forget(name))
		found = true;
	if (found)
		add_pending_action(PENDING_UNLOAD, name, 0);
	return found;
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

/* What a backend needs to attach a slot's segment, copied under the lock. */
typedef struct SlotView
{
	dsm_handle	handle;
	uint64		generation;
	Size		segment_size;
	char		path[MAXPGPATH];
} SlotView;

static void
view_slot(const ModelSlot *slot, SlotView *view)
{
	view->handle = slot->handle;
	view->generation = slot->generation;
	view->segment_size = slot->segment_size;
	strlcpy(view->path, slot->path, sizeof(view->path));
}

/*
 * Attach the segment `view` describes, without the registry lock.  Returns
 * false if it is gone (unloaded and detached by everyone meanwhile) or is no
 * longer the generation the view names (its handle was reused): the caller
 * looks again.  ERROR if it is damaged.
 */
static bool
attach_handle(CamembertModel *handle, const char *name, const SlotView *view)
{
	dsm_segment *seg;
	SegmentHeader *hdr;
	const char *base;
	cb_error	err;
	MemoryContext old;

	seg = dsm_attach(view->handle);
	if (seg == NULL)
		return false;
	base = dsm_segment_address(seg);
	hdr = (SegmentHeader *) base;
	if (dsm_segment_map_length(seg) < sizeof(SegmentHeader) ||
		hdr->magic != SEGMENT_MAGIC || hdr->version != SEGMENT_VERSION ||
		hdr->generation != view->generation)
	{
		dsm_detach(seg);
		return false;
	}
	dsm_pin_mapping(seg);
	handle->segment = seg;
	handle->handle = view->handle;
	handle->generation = view->generation;
	handle->segment_size = view->segment_size;
	strlcpy(handle->path, view->path, sizeof(handle->path));
	handle->context = AllocSetContextCreate(TopMemoryContext, "camembert model",
											ALLOCSET_SMALL_SIZES);

	if (hdr->tokenizer_offset > dsm_segment_map_length(seg) ||
		hdr->tokenizer_length > dsm_segment_map_length(seg) - hdr->tokenizer_offset ||
		hdr->model_offset > dsm_segment_map_length(seg) ||
		hdr->model_length > dsm_segment_map_length(seg) - hdr->model_offset)
		elog(ERROR, "shared memory of model \"%s\" is corrupted", camembert_printable(name));

	old = MemoryContextSwitchTo(handle->context);
	if (cb_tokenizer_open(base + hdr->tokenizer_offset, hdr->tokenizer_length,
						  &handle->tokenizer, &err) != CB_OK ||
		cb_model_view(base + hdr->model_offset, hdr->model_length,
					  &handle->model, &err) != CB_OK)
	{
		MemoryContextSwitchTo(old);
		camembert_report_core_error(&err, name, NULL);
	}
	MemoryContextSwitchTo(old);
	return true;
}

/* attach_handle, leaving the handle empty if it fails or raises an ERROR */
static bool
attach_or_release(CamembertModel *handle, const char *name, const SlotView *view)
{
	bool		attached = false;

	PG_TRY();
	{
		attached = attach_handle(handle, name, view);
	}
	PG_CATCH();
	{
		release_handle(handle);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (!attached)
		release_handle(handle);
	return attached;
}

/* ---------------------------------------------------------------------------
 * Parallel query: workers use exactly the leader's models.
 *
 * A worker resolves model names on its own, possibly after another session
 * has reloaded a name, while the leader keeps the model the name meant in its
 * transaction.  So when a statement that may run workers starts, the leader
 * writes every model it holds (a segment handle and generation per name) and
 * the registry's next generation into camembert.parallel_models, a hidden
 * setting; PostgreSQL hands the leader's settings to each worker.  A worker
 * attaches exactly those segments (kept alive by the leader's mappings).  A
 * name the leader did not hold at the start is resolved as usual, by leader
 * and workers alike, unless a model was unloaded since the statement
 * started: then they could disagree, and the call fails instead.
 */
char	   *camembert_parallel_models = NULL;

typedef struct ParallelModel
{
	char		name[NAMEDATALEN];
	dsm_handle	handle;
	uint64		generation;
} ParallelModel;

static ParallelModel *parallel_models = NULL;	/* parsed, TopMemoryContext */
static int	n_parallel_models = 0;
static uint64 parallel_start_generation = 0;
static char *parallel_models_parsed = NULL; /* the setting they were parsed from */

/* "G;hexname:handle:generation;..." */
static void
parse_parallel_models(void)
{
	const char *p = camembert_parallel_models;
	MemoryContext old;

	if (p == NULL || p[0] == '\0')
	{
		n_parallel_models = 0;
		parallel_start_generation = 0;
		return;
	}
	if (parallel_models_parsed != NULL && strcmp(parallel_models_parsed, p) == 0)
		return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (parallel_models_parsed)
		pfree(parallel_models_parsed);
	parallel_models_parsed = pstrdup(p);
	if (parallel_models)
		pfree(parallel_models);
	parallel_models = palloc0(sizeof(ParallelModel) * (strlen(p) / 4 + 1));
	MemoryContextSwitchTo(old);
	n_parallel_models = 0;

	parallel_start_generation = strtoull(p, (char **) &p, 10);
	while (*p == ';')
	{
		const char *colon = strchr(++p, ':');
		ParallelModel *m = &parallel_models[n_parallel_models];
		unsigned long long h;
		unsigned long long g;
		char	   *end;

		if (colon == NULL || (colon - p) % 2 != 0 || (colon - p) / 2 >= NAMEDATALEN)
			break;
		hex_decode(p, colon - p, m->name);
		m->name[(colon - p) / 2] = '\0';
		h = strtoull(colon + 1, &end, 10);
		if (*end != ':')
			break;
		g = strtoull(end + 1, &end, 10);
		m->handle = (dsm_handle) h;
		m->generation = g;
		n_parallel_models++;
		p = end;
	}
}

static const ParallelModel *
find_parallel_model(const char *name)
{
	parse_parallel_models();
	for (int i = 0; i < n_parallel_models; i++)
		if (strcmp(parallel_models[i].name, name) == 0)
			return &parallel_models[i];
	return NULL;
}

/*
 * In a worker or a leader running workers, a name the leader did not hold
 * at the statement's start may be resolved only if no model was unloaded
 * since (else leader and workers could see different models).
 */
static void
check_parallel_resolution(const char *name)
{
	uint64		last_unload;

	if (!IsInParallelMode() || parallel_start_generation == 0)
		return;
	LWLockAcquire(registry->lock, LW_SHARED);
	last_unload = registry->last_unload_generation;
	LWLockRelease(registry->lock);
	if (last_unload >= parallel_start_generation)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model \"%s\" changed while a parallel query was running", camembert_printable(name)),
				 errhint("Run the statement again.")));
}

static void
camembert_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (registry != NULL && !IsParallelWorker() && !IsInParallelMode() &&
		queryDesc->plannedstmt->parallelModeNeeded)
	{
		StringInfoData buf;
		int			n;
		char	  **names = camembert_registry_loaded_names(&n);
		HASH_SEQ_STATUS seq;
		CamembertModel *m;
		uint64		start;

		LWLockAcquire(registry->lock, LW_SHARED);
		start = registry->next_generation;
		LWLockRelease(registry->lock);

		/* attach every loaded model (a name used earlier in the transaction keeps its model) */
		for (int i = 0; i < n; i++)
			(void) camembert_model_get(names[i], MODEL_GET_MISSING_OK | MODEL_GET_NO_AUTOLOAD |
									   MODEL_GET_ANY_REGISTRATION);

		initStringInfo(&buf);
		appendStringInfo(&buf, UINT64_FORMAT, start);
		if (attached_models != NULL)
		{
			hash_seq_init(&seq, attached_models);
			while ((m = hash_seq_search(&seq)) != NULL)
			{
				char		hex[NAMEDATALEN * 2 + 1];
				size_t		len = strlen(m->name);

				if (m->segment == NULL || m->used_in_xact != xact_count)
					continue;
				hex[hex_encode(m->name, len, hex)] = '\0';
				appendStringInfo(&buf, ";%s:%u:" UINT64_FORMAT, hex, (unsigned) m->handle, m->generation);
			}
		}
		(void) set_config_option("camembert.parallel_models", buf.data,
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
		pfree(buf.data);
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

uint64
camembert_registry_xact(void)
{
	return xact_count;
}

bool
camembert_model_still_valid(const CamembertModel *model)
{
	return model != NULL && model->segment != NULL && model->used_in_xact == xact_count;
}

/*
 * Did the registration a slot was loaded for end before this transaction's
 * snapshot?  If not (a camembert_load still running, or committed since the
 * snapshot was taken) the slot is newer than the row this backend sees, and
 * comparing them would undo another session's load: the slot is used as it
 * is.  A transaction that ended before the snapshot committed: one that
 * aborted has freed what it loaded.
 */
static bool
registration_precedes_snapshot(TransactionId registered_by)
{
	Snapshot	snapshot;

	if (!TransactionIdIsNormal(registered_by))
		return true;
	if (TransactionIdIsCurrentTransactionId(registered_by))
		return false;
	snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
	return !XidInMVCCSnapshot(registered_by, snapshot);
}

CamembertModel *
camembert_model_get(const char *name, int flags)
{
	bool		missing_ok = (flags & MODEL_GET_MISSING_OK) != 0;
	CamembertModel *handle;
	bool		found;
	bool		tried_catalog = false;
	bool		check_registration;
	CatalogEntry *entry = NULL;
	cb_precision registered_precision = CB_PRECISION_AUTO;

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
		handle->checked_in_xact = 0;
		handle->segment = NULL;
		handle->context = NULL;
	}

	/*
	 * Within one transaction a name keeps meaning the model it first meant:
	 * a concurrent unload or reload does not change it under a running
	 * query (our mapping keeps the old segment alive).
	 */
	register_xact_callback();
	if (handle->segment != NULL && handle->used_in_xact == xact_count &&
		(handle->checked_in_xact == xact_count || (flags & MODEL_GET_ANY_REGISTRATION)))
		return handle;

	if (IsParallelWorker())
	{
		const ParallelModel *pm = find_parallel_model(name);

		if (pm != NULL)
		{
			SlotView	view;

			release_handle(handle);
			memset(&view, 0, sizeof(view));
			view.handle = pm->handle;
			view.generation = pm->generation;
			if (!attach_or_release(handle, name, &view))
			{
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("model \"%s\" of the parallel query's leader is gone", camembert_printable(name)),
						 errhint("Run the statement again.")));
			}
			handle->segment_size = dsm_segment_map_length(handle->segment);
			handle->used_in_xact = xact_count;
			return handle;
		}
	}
	if (IsInParallelMode())
	{
		parse_parallel_models();
		check_parallel_resolution(name);
	}

	/*
	 * Once per transaction, what shared memory holds is compared with this
	 * database's registration (one index probe): on a hot standby the
	 * primary may have unloaded the name or registered it from another path
	 * or dtype since this server loaded it, and another database of this
	 * server may have loaded the name as something else.  Not within the
	 * transaction that loads or unloads the name itself (the row and the
	 * memory agree again at its end), nor in a parallel worker (it uses the
	 * leader's models), nor for a listing.
	 */
	check_registration = (flags & MODEL_GET_ANY_REGISTRATION) == 0 && !IsParallelWorker() &&
		!has_pending_action(name);
	if (check_registration)
	{
		entry = camembert_catalog_lookup(name);
		if (entry != NULL)
			registered_precision = parse_dtype(entry->dtype, name);
	}

	for (;;)
	{
		ModelSlot  *slot;
		SlotView	view;
		bool		ready;
		bool		loading;
		Oid			slot_dboid = InvalidOid;
		TransactionId slot_registered_by = InvalidTransactionId;
		cb_precision slot_precision = CB_PRECISION_AUTO;

		LWLockAcquire(registry->lock, LW_SHARED);
		slot = find_slot(name);
		ready = slot != NULL && slot->state == SLOT_READY;
		loading = slot != NULL && slot->state == SLOT_LOADING;
		if (ready)
		{
			view_slot(slot, &view);
			slot_dboid = slot->dboid;
			slot_registered_by = slot->registered_by;
			slot_precision = slot->precision;
		}
		LWLockRelease(registry->lock);

		if (ready && check_registration && registration_precedes_snapshot(slot_registered_by) &&
			(entry == NULL ? slot_dboid == MyDatabaseId :
			 strcmp(view.path, entry->path) != 0 || slot_precision != registered_precision))
		{
			/*
			 * Loaded for this database's registration, which has changed
			 * or gone (on the primary, since this server loaded it): free
			 * it, then load what the registration says now, or report it
			 * not loaded.  Backends using it keep it to their
			 * transaction's end.  Loaded for another database: the name
			 * means one model per server, an ERROR names both.
			 */
			if (slot_dboid == MyDatabaseId)
			{
				free_slot(name, view.generation,
						  entry == NULL ? ", since its registration in this database was removed" :
						  ", since its registration in this database changed");
				continue;
			}
			report_loaded_otherwise(name, view.path, slot_precision, slot_dboid,
									entry->path, registered_precision);
		}

		if (ready)
		{
			if (check_registration)
				handle->checked_in_xact = xact_count;
			if (handle->segment == NULL || handle->generation != view.generation)
			{
				release_handle(handle);
				if (!attach_or_release(handle, name, &view))
					continue;	/* unloaded meanwhile: look again */
			}
			handle->used_in_xact = xact_count;
			return handle;
		}

		if (loading)
		{
			wait_for_load(slot, name);
			continue;
		}

		/* not loaded: drop a stale mapping, then try the catalog once */
		release_handle(handle);
		if (!tried_catalog && (flags & MODEL_GET_NO_AUTOLOAD) == 0)
		{
			tried_catalog = true;
			if (!check_registration)
				entry = camembert_catalog_lookup(name);
			if (entry != NULL && entry->path != NULL)
			{
				ensure_loaded(name, entry->path, parse_dtype(entry->dtype, name), entry->xmin, NULL);
				continue;
			}
		}
		hash_search(attached_models, name, HASH_REMOVE, NULL);
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" is not loaded", camembert_printable(name)),
				 errhint("Load it with SELECT camembert_load('%s', '/path/to/model/directory').", camembert_printable(name))));
	}
}
