/*
 * model_xact.c — what a transaction did to the model registry, applied when it
 * ends: an unload frees the model's shared memory at commit, a load rolled back
 * frees what it loaded; subtransactions take their actions back or hand them
 * to their parent.  Also counts this backend's transactions, so that a handle
 * used in a transaction stays that transaction's (model_attach.c).
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

/*
 * What this transaction did to the registry, applied when it commits.  An
 * unload frees the model's shared memory at commit; a load of the same name
 * later in the transaction cancels it.  Each action remembers the
 * subtransaction that made it, so that ROLLBACK TO SAVEPOINT (or an error
 * caught by a PL/pgSQL block) takes it back, and RELEASE hands it to the
 * parent.  Kept in TopMemoryContext and emptied at every top-level end.
 */
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

uint64
camembert_registry_xact(void)
{
	return xact_count;
}

void
camembert_pending_add(PendingKind kind, const char *name, uint64 loaded_generation)
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
			camembert_slot_free(a->name, 0, "");
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
			camembert_slot_free(a->name, a->loaded_generation, ", since the transaction that loaded it was rolled back");
	}
}

/* Has this transaction loaded or unloaded `name` (so that the catalog row and memory may differ until it ends)? */
bool
camembert_pending_has(const char *name)
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

void
camembert_pending_register_callbacks(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(registry_xact_callback, NULL);
		RegisterSubXactCallback(registry_subxact_callback, NULL);
		xact_callback_registered = true;
	}
}

