/*
 * model_stats.c — per-model usage statistics in shared memory.
 *
 * A fixed-size shared hash table (camembert.stat_max entries) keyed by
 * (model name, user, database), as contrib/pg_stat_statements keeps its
 * entries: the table is guarded by one LWLock, taken in shared mode to find
 * an entry and to update its counters (each entry's counters under its own
 * spinlock), in exclusive mode only to insert a new key or to reset.  So a
 * call costs one shared LWLock acquisition, one hash lookup and one spinlock,
 * after the forward pass: nothing is held while the model runs, and nothing
 * is allocated.
 *
 * When the table is full, a new key is not entered: its calls and loads are
 * counted in a single "dropped" counter instead (camembert_stat_dropped()).
 * Existing entries are never evicted, so a number once shown only grows until
 * camembert_stat_reset(); raise camembert.stat_max if dropped grows.
 *
 * Counted: each call of an inference function (classify, its array form and
 * the label trigger, classify_scores, fill_mask, generate, embed, score,
 * logits, hidden_states) that returns without an ERROR; texts are the non-NULL
 * inputs it ran the model on, tokens their tokens as the model saw them
 * (specials included, after truncation; plus the generated tokens for
 * generate).  The tokenizer functions run no model and are not counted.
 * Loads: each load of the model into shared memory (camembert_load, or the
 * automatic reload of a registered model after a restart), by the user and
 * database that caused it.
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "model_registry.h"
#include "model_stats.h"
#include "sql_support.h"

bool		camembert_stat_track = true;
int			camembert_stat_max = 1000;

typedef struct StatKey
{
	Oid			userid;
	Oid			dbid;
	char		model[NAMEDATALEN];	/* zero-padded: the key is hashed as bytes */
} StatKey;

typedef struct StatEntry
{
	StatKey		key;			/* first: the hash key */
	slock_t		mutex;			/* protects the counters below */
	int64		loads;
	int64		calls;
	int64		texts;
	int64		tokens;
	double		total_time;		/* milliseconds */
	TimestampTz last_used;		/* 0: never called */
} StatEntry;

typedef struct StatShared
{
	LWLock	   *lock;			/* the hash table: shared to find/update, exclusive to insert/reset */
	slock_t		mutex;			/* protects dropped */
	int64		dropped;		/* calls and loads not recorded: table full */
} StatShared;

static StatShared *stat_shared = NULL;
static HTAB *stat_hash = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
stats_size(void)
{
	return add_size(MAXALIGN(sizeof(StatShared)),
					hash_estimate_size(camembert_stat_max, sizeof(StatEntry)));
}

static void
stats_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(stats_size());
	RequestNamedLWLockTranche("camembert_stats", 1);
}

static void
stats_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	stat_shared = ShmemInitStruct("camembert model statistics", sizeof(StatShared), &found);
	if (!found)
	{
		stat_shared->lock = &(GetNamedLWLockTranche("camembert_stats"))->lock;
		SpinLockInit(&stat_shared->mutex);
		stat_shared->dropped = 0;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(StatKey);
	info.entrysize = sizeof(StatEntry);
	stat_hash = ShmemInitHash("camembert model statistics hash",
							  camembert_stat_max, camembert_stat_max,
							  &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

void
camembert_stats_init(void)
{
	DefineCustomBoolVariable("camembert.track",
							 "Collects per-model statistics (camembert_stat_models).",
							 NULL,
							 &camembert_stat_track,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	/* sizes shared memory: only meaningful (and only allowed) at server start */
	DefineCustomIntVariable("camembert.stat_max",
							"Number of (model, user, database) entries camembert_stat_models keeps.",
							"When full, new entries are not recorded and camembert_stat_dropped() counts their calls.",
							&camembert_stat_max,
							1000, 1, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = stats_request;
#else
	stats_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = stats_startup;
}

/*
 * The entry of (name, this user, this database), the table lock held in
 * shared mode (on return, also when NULL: the table was full).  Enters it
 * when missing and there is room.
 */
static StatEntry *
stat_entry(const char *name)
{
	StatKey		key;
	StatEntry  *entry;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.userid = GetUserId();
	key.dbid = MyDatabaseId;
	strlcpy(key.model, name, sizeof(key.model));

	LWLockAcquire(stat_shared->lock, LW_SHARED);
	entry = hash_search(stat_hash, &key, HASH_FIND, NULL);
	if (entry != NULL)
		return entry;

	/* a new key: insert under the exclusive lock, then go back to shared */
	LWLockRelease(stat_shared->lock);
	LWLockAcquire(stat_shared->lock, LW_EXCLUSIVE);
	entry = hash_search(stat_hash, &key, HASH_FIND, NULL);
	if (entry == NULL && hash_get_num_entries(stat_hash) < camembert_stat_max)
	{
		entry = hash_search(stat_hash, &key, HASH_ENTER_NULL, &found);
		if (entry != NULL && !found)
		{
			SpinLockInit(&entry->mutex);
			entry->loads = entry->calls = entry->texts = entry->tokens = 0;
			entry->total_time = 0;
			entry->last_used = 0;
		}
	}
	LWLockRelease(stat_shared->lock);
	LWLockAcquire(stat_shared->lock, LW_SHARED);
	/* a reset may have run in between */
	return hash_search(stat_hash, &key, HASH_FIND, NULL);
}

static void
count_dropped(void)
{
	SpinLockAcquire(&stat_shared->mutex);
	stat_shared->dropped++;
	SpinLockRelease(&stat_shared->mutex);
}

void
camembert_stat_call(const char *name, int64 n_texts, int64 n_tokens, const instr_time *start)
{
	instr_time	elapsed;
	TimestampTz now;
	StatEntry  *entry;

	if (stat_hash == NULL || !camembert_stat_track || INSTR_TIME_IS_ZERO(*start))
		return;
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, *start);
	now = GetCurrentTimestamp();

	entry = stat_entry(name);
	if (entry != NULL)
	{
		SpinLockAcquire(&entry->mutex);
		entry->calls++;
		entry->texts += n_texts;
		entry->tokens += n_tokens;
		entry->total_time += INSTR_TIME_GET_MILLISEC(elapsed);
		entry->last_used = now;
		SpinLockRelease(&entry->mutex);
	}
	else
		count_dropped();
	LWLockRelease(stat_shared->lock);
}

void
camembert_stat_load(const char *name)
{
	StatEntry  *entry;

	if (stat_hash == NULL || !camembert_stat_track)
		return;
	entry = stat_entry(name);
	if (entry != NULL)
	{
		SpinLockAcquire(&entry->mutex);
		entry->loads++;
		SpinLockRelease(&entry->mutex);
	}
	else
		count_dropped();
	LWLockRelease(stat_shared->lock);
}

/*
 * camembert_stat_models_internal() → SETOF (model, userid, dbid, loads, calls,
 * texts, tokens, total_time_ms, mean_time_ms, last_used): every entry for
 * superusers and members of pg_read_all_stats, else the caller's own.
 */
PG_FUNCTION_INFO_V1(camembert_stat_models_internal);
Datum
camembert_stat_models_internal(PG_FUNCTION_ARGS)
{
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	Oid			userid = GetUserId();
	bool		see_all;
	HASH_SEQ_STATUS seq;
	StatEntry  *entry;

	camembert_require_preload();
	see_all = superuser() || has_privs_of_role(userid, ROLE_PG_READ_ALL_STATS);
	store = camembert_srf_begin(fcinfo, &tupdesc);

	LWLockAcquire(stat_shared->lock, LW_SHARED);
	hash_seq_init(&seq, stat_hash);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[10];
		bool		nulls[10] = {0};
		StatEntry	tmp;

		if (!see_all && entry->key.userid != userid)
			continue;
		SpinLockAcquire(&entry->mutex);
		tmp = *entry;
		SpinLockRelease(&entry->mutex);

		/* bytes in the encoding of the database that made the entry */
		values[0] = PointerGetDatum(cstring_to_text(camembert_printable(tmp.key.model)));
		values[1] = ObjectIdGetDatum(tmp.key.userid);
		values[2] = ObjectIdGetDatum(tmp.key.dbid);
		values[3] = Int64GetDatum(tmp.loads);
		values[4] = Int64GetDatum(tmp.calls);
		values[5] = Int64GetDatum(tmp.texts);
		values[6] = Int64GetDatum(tmp.tokens);
		values[7] = Float8GetDatum(tmp.total_time);
		if (tmp.calls > 0)
			values[8] = Float8GetDatum(tmp.total_time / tmp.calls);
		else
			nulls[8] = true;
		if (tmp.last_used != 0)
			values[9] = TimestampTzGetDatum(tmp.last_used);
		else
			nulls[9] = true;
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	LWLockRelease(stat_shared->lock);
	return (Datum) 0;
}

/* camembert_stat_reset() → void: forget every entry and the dropped count */
PG_FUNCTION_INFO_V1(camembert_stat_reset);
Datum
camembert_stat_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	StatEntry  *entry;

	camembert_require_preload();
	LWLockAcquire(stat_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, stat_hash);
	while ((entry = hash_seq_search(&seq)) != NULL)
		hash_search(stat_hash, &entry->key, HASH_REMOVE, NULL);
	SpinLockAcquire(&stat_shared->mutex);
	stat_shared->dropped = 0;
	SpinLockRelease(&stat_shared->mutex);
	LWLockRelease(stat_shared->lock);
	PG_RETURN_VOID();
}

/* camembert_stat_dropped() → bigint: calls and loads not recorded since the reset (table full) */
PG_FUNCTION_INFO_V1(camembert_stat_dropped);
Datum
camembert_stat_dropped(PG_FUNCTION_ARGS)
{
	int64		dropped;

	camembert_require_preload();
	SpinLockAcquire(&stat_shared->mutex);
	dropped = stat_shared->dropped;
	SpinLockRelease(&stat_shared->mutex);
	PG_RETURN_INT64(dropped);
}
