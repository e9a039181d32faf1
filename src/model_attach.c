/*
 * model_attach.c — this backend's handles on the models in shared memory: a
 * name attached (mapped read-only) once and kept for the transaction, the
 * once-per-transaction comparison with this database's registration, the
 * lazy load of a registered model, and the models a parallel query's leader
 * hands to its workers.
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
#include "model_registry_internal.h"

/* this backend's attached models, by name */
static HTAB *attached_models = NULL;

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
	LWLockAcquire(camembert_registry->lock, LW_SHARED);
	last_unload = camembert_registry->last_unload_generation;
	LWLockRelease(camembert_registry->lock);
	if (last_unload >= parallel_start_generation)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model \"%s\" changed while a parallel query was running", camembert_printable(name)),
				 errhint("Run the statement again.")));
}

static ExecutorStart_hook_type prev_executor_start = NULL;

static void
camembert_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (camembert_registry != NULL && !IsParallelWorker() && !IsInParallelMode() &&
		queryDesc->plannedstmt->parallelModeNeeded)
	{
		StringInfoData buf;
		int			n;
		char	  **names = camembert_registry_loaded_names(&n);
		HASH_SEQ_STATUS seq;
		CamembertModel *m;
		uint64		start;

		LWLockAcquire(camembert_registry->lock, LW_SHARED);
		start = camembert_registry->next_generation;
		LWLockRelease(camembert_registry->lock);

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

				if (m->segment == NULL || m->used_in_xact != camembert_registry_xact())
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

bool
camembert_model_still_valid(const CamembertModel *model)
{
	return model != NULL && model->segment != NULL && model->used_in_xact == camembert_registry_xact();
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
		camembert_check_model_name(name);
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
	camembert_pending_register_callbacks();
	if (handle->segment != NULL && handle->used_in_xact == camembert_registry_xact() &&
		(handle->checked_in_xact == camembert_registry_xact() || (flags & MODEL_GET_ANY_REGISTRATION)))
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
			handle->used_in_xact = camembert_registry_xact();
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
		!camembert_pending_has(name);
	if (check_registration)
	{
		entry = camembert_catalog_lookup(name);
		if (entry != NULL)
			registered_precision = camembert_parse_dtype(entry->dtype, name);
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

		LWLockAcquire(camembert_registry->lock, LW_SHARED);
		slot = camembert_slot_find(name);
		ready = slot != NULL && slot->state == SLOT_READY;
		loading = slot != NULL && slot->state == SLOT_LOADING;
		if (ready)
		{
			view_slot(slot, &view);
			slot_dboid = slot->dboid;
			slot_registered_by = slot->registered_by;
			slot_precision = slot->precision;
		}
		LWLockRelease(camembert_registry->lock);

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
				camembert_slot_free(name, view.generation,
						  entry == NULL ? ", since its registration in this database was removed" :
						  ", since its registration in this database changed");
				continue;
			}
			camembert_report_loaded_otherwise(name, view.path, slot_precision, slot_dboid,
									entry->path, registered_precision);
		}

		if (ready)
		{
			if (check_registration)
				handle->checked_in_xact = camembert_registry_xact();
			if (handle->segment == NULL || handle->generation != view.generation)
			{
				release_handle(handle);
				if (!attach_or_release(handle, name, &view))
					continue;	/* unloaded meanwhile: look again */
			}
			handle->used_in_xact = camembert_registry_xact();
			return handle;
		}

		if (loading)
		{
			camembert_slot_wait(slot, name);
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
				camembert_slot_ensure_loaded(name, entry->path, camembert_parse_dtype(entry->dtype, name), entry->xmin, NULL);
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

void
camembert_attach_init(void)
{
	/* written by the leader of a parallel query, read by its workers (model_attach.c) */
	DefineCustomStringVariable("camembert.parallel_models",
							   "Models the leader of a parallel query uses (internal).",
							   NULL,
							   &camembert_parallel_models,
							   "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							   NULL, NULL, NULL);

	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = camembert_executor_start;
}
