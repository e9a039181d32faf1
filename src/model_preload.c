/*
 * model_preload.c — load the registered models when the server starts.
 *
 * After a restart, or the crash restart that follows a backend killed by the
 * OOM killer, shared memory is empty and the first query that names a model
 * would pay its load.  With camembert.preload = on (the default), _PG_init
 * registers a static background worker, the preload launcher, as
 * contrib/pg_prewarm's autoprewarm does.  It starts once the server accepts
 * read-only connections (BgWorkerStart_ConsistentState: a hot standby
 * preloads too, since reading the catalog table is all it needs), and for
 * each database of camembert.preload_databases in turn starts a dynamic
 * worker that connects to it, reads the registrations
 * (camembert_registered_models, through model_catalog.c) and loads each
 * model that is not loaded yet, with its recorded dtype, through the
 * registry's slots: a backend that asks for a model while it is being
 * preloaded waits on the slot's condition variable, as it waits for any load.  One model's failure is a LOG line, the
 * others still load.  The first database naming a model wins; the same name
 * registered with another path or dtype in a later database is a LOG line.
 *
 * Loading runs as the server: the registrations were made by privileged
 * users (camembert_load checks), and the catalog is read as its owner,
 * restricted (model_catalog.c).
 *
 * The launcher then stays, idle, until shutdown: a static worker that has
 * exited is forgotten by the postmaster, and the launcher must be there to be
 * started again after a crash restart.  It costs one of max_worker_processes,
 * plus one more while a database is being preloaded.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procsignal.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "model_catalog.h"
#include "model_preload.h"
#include "model_registry.h"
#include "sql_support.h"

static bool camembert_preload = true;
static char *camembert_preload_databases = NULL;

PGDLLEXPORT void camembert_preload_launcher_main(Datum main_arg);
PGDLLEXPORT void camembert_preload_database_main(Datum main_arg);

static bool
check_preload_databases(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitIdentifierString(raw, ',', &names);

	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	list_free(names);
	pfree(raw);
	return ok;
}

void
camembert_preload_init(void)
{
	BackgroundWorker worker;

	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomBoolVariable("camembert.preload",
							 "Load the registered models when the server starts.",
							 "A background worker loads the models registered in camembert.preload_databases at start and after a crash restart.",
							 &camembert_preload,
							 true,
							 PGC_POSTMASTER, 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("camembert.preload_databases",
							   "Databases whose registered models are loaded at server start.",
							   "A comma-separated list of database names, read in order; the first database that registers a name wins.",
							   &camembert_preload_databases,
							   "postgres",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   check_preload_databases, NULL, NULL);

	if (!camembert_preload)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 10;	/* if it fails; it never exits otherwise */
	strlcpy(worker.bgw_library_name, "camembert", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "camembert_preload_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "camembert preload launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "camembert preload", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* Start the worker for one database and wait until it has finished. */
static void
preload_database(const char *dbname)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "camembert", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "camembert_preload_database_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "camembert preload worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "camembert preload", BGW_MAXLEN);
	strlcpy(worker.bgw_extra, dbname, BGW_EXTRALEN);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(LOG,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("camembert: could not start the preload worker for database \"%s\"", dbname),
				 errhint("Raise max_worker_processes.")));
		return;
	}
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_POSTMASTER_DIED)
		proc_exit(1);
	if (status == BGWH_STARTED)
		status = WaitForBackgroundWorkerShutdown(handle);
	if (status == BGWH_POSTMASTER_DIED)
		proc_exit(1);
	pfree(handle);
}

void
camembert_preload_launcher_main(Datum main_arg)
{
	char	   *raw;
	List	   *names;
	ListCell   *lc;
	TimestampTz start = GetCurrentTimestamp();

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	/* without a database connection SIGUSR1 is ignored: the postmaster's notices that a worker started or stopped come that way */
	pqsignal(SIGUSR1, procsignal_sigusr1_handler);
	BackgroundWorkerUnblockSignals();

	raw = pstrdup(camembert_preload_databases ? camembert_preload_databases : "");
	if (!SplitIdentifierString(raw, ',', &names))
		names = NIL;			/* checked by the GUC's check hook */

	foreach(lc, names)
	{
		if (ShutdownRequestPending)
			proc_exit(0);
		preload_database((const char *) lfirst(lc));
	}
	if (names != NIL)
		ereport(LOG,
				(errmsg("camembert: preload of database(s) \"%s\" finished in %ld ms",
						camembert_preload_databases,
						(long) (TimestampDifferenceMilliseconds(start, GetCurrentTimestamp())))));

	/* stay until shutdown: a crash restart starts this worker again */
	while (!ShutdownRequestPending)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	proc_exit(0);
}

/* Load one registration; false (after a LOG line) if it failed. */
static bool
preload_one(const char *dbname, const CatalogEntry *entry, int *loaded)
{
	MemoryContext caller = CurrentMemoryContext;
	TimestampTz start = GetCurrentTimestamp();
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, psprintf("preloading model %s", entry->name));
	PG_TRY();
	{
		Size		size = camembert_registry_preload(entry->name, entry->path, entry->dtype,
													entry->xmin);

		if (size > 0)
		{
			(*loaded)++;
			ereport(LOG,
					(errmsg("camembert: preloaded model \"%s\" of database \"%s\" from \"%s\" (%zu bytes) in %ld ms",
							camembert_printable(entry->name), dbname, camembert_printable(entry->path),
							(size_t) size,
							(long) TimestampDifferenceMilliseconds(start, GetCurrentTimestamp()))));
		}
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		/* LOG, not WARNING: for the server log LOG ranks higher (log_min_messages) */
		ereport(LOG,
				(errcode(edata->sqlerrcode),
				 errmsg("camembert: could not preload model \"%s\" of database \"%s\" from \"%s\": %s",
						camembert_printable(entry->name), dbname,
						camembert_printable(entry->path), edata->message)));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

void
camembert_preload_database_main(Datum main_arg)
{
	char		dbname[NAMEDATALEN];
	List	   *entries;
	ListCell   *lc;
	MemoryContext work;
	int			loaded = 0;
	int			failed = 0;

	strlcpy(dbname, MyBgworkerEntry->bgw_extra, sizeof(dbname));

	/* SIGTERM ends the worker at the next CHECK_FOR_INTERRUPTS, also inside a load */
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);

	work = AllocSetContextCreate(TopMemoryContext, "camembert preload", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(work);

	/* the registrations, read in a transaction of their own */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "reading camembert_registered_models");
	{
		MemoryContext xact = MemoryContextSwitchTo(work);

		entries = camembert_catalog_entries();	/* NIL without the extension */
		MemoryContextSwitchTo(xact);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(work);

	foreach(lc, entries)
	{
		const CatalogEntry *entry = (const CatalogEntry *) lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		if (entry->name == NULL || entry->path == NULL)
			continue;
		if (!preload_one(dbname, entry, &loaded))
			failed++;
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	ereport(LOG,
			(errmsg("camembert: database \"%s\": %d registered model(s), %d preloaded, %d failed",
					dbname, list_length(entries), loaded, failed)));
	proc_exit(0);
}
