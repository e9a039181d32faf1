/*
 * model_catalog.c — the catalog table camembert_registered_models (see
 * model_catalog.h).
 *
 * The table belongs to the extension (its owner is whoever created the
 * extension, a superuser).  Loading and unloading are allowed to members of
 * pg_read_server_files, and the lazy reload after a restart runs from any
 * session, so the statements here run as the table's owner.  That is only
 * safe the way PostgreSQL's own maintenance code does it (VACUUM, REFRESH
 * MATERIALIZED VIEW, index builds): the user is switched with
 * SECURITY_RESTRICTED_OPERATION, search_path is pinned to pg_catalog, pg_temp
 * for the duration, and every table, function and operator in the SQL text
 * is schema-qualified, so no object of the caller's can be resolved.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "access/relscan.h"

#include "model_catalog.h"

#define CATALOG_TABLE	"camembert_registered_models"

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

typedef struct CatalogTable
{
	Oid			relid;
	Oid			owner;
	char	   *qualified_name; /* "schema".camembert_registered_models */
	bool		has_architecture;	/* the column exists (version 0.2 on) */
	bool		has_dtype;		/* the column exists (version 0.3 on) */
} CatalogTable;

/* Find the table of the extension in this database; false if there is none. */
static bool
catalog_table(CatalogTable *t)
{
	Oid			ext_oid = get_extension_oid("camembert", true);
	Oid			nsp;
	HeapTuple	tup;

	if (!OidIsValid(ext_oid))
		return false;
	nsp = extension_schema(ext_oid);
	if (!OidIsValid(nsp))
		return false;
	t->relid = get_relname_relid(CATALOG_TABLE, nsp);
	if (!OidIsValid(t->relid))
		return false;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(t->relid));
	if (!HeapTupleIsValid(tup))
		return false;
	t->owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	t->qualified_name = quote_qualified_identifier(get_namespace_name(nsp), CATALOG_TABLE);
	t->has_architecture = get_attnum(t->relid, "architecture") != InvalidAttrNumber;
	t->has_dtype = get_attnum(t->relid, "dtype") != InvalidAttrNumber;
	return true;
}

/*
 * Run one statement on the catalog table as its owner, restricted.  The
 * result rows are copied into the caller's memory context as CatalogEntry
 * (columns name, path, architecture, dtype when the statement returns them).
 */
static List *
catalog_run(const CatalogTable *t, const char *sql, int nargs, Datum *values,
			bool read_only, uint64 *processed)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	char		nulls[4] = {' ', ' ', ' ', ' '};
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	MemoryContext caller = CurrentMemoryContext;
	List	   *volatile rows = NIL;
	volatile uint64 count = 0;

	Assert(nargs <= 4);
	for (int i = 0; i < nargs; i++)
		if (values[i] == (Datum) 0)
			nulls[i] = 'n';

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(t->owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		int			rc;

		/* pinned search_path, undone below (or by the abort on ERROR) */
		save_nestlevel = NewGUCNestLevel();
		(void) set_config_option("search_path", "pg_catalog, pg_temp",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
		if (rc < 0)
			elog(ERROR, "could not access %s: %s", t->qualified_name, SPI_result_code_string(rc));
		count = SPI_processed;
		if (SPI_tuptable != NULL)
		{
			TupleDesc	desc = SPI_tuptable->tupdesc;

			for (uint64 i = 0; i < SPI_processed; i++)
			{
				HeapTuple	tup = SPI_tuptable->vals[i];
				MemoryContext old = MemoryContextSwitchTo(caller);
				CatalogEntry *e = palloc0(sizeof(CatalogEntry));

				MemoryContextSwitchTo(old);
				for (int c = 1; c <= desc->natts; c++)
				{
					char	   *v = SPI_getvalue(tup, desc, c);
					char	   *colname = SPI_fname(desc, c);
					char	   *copy = v ? MemoryContextStrdup(caller, v) : NULL;

					if (strcmp(colname, "name") == 0)
						e->name = copy;
					else if (strcmp(colname, "path") == 0)
						e->path = copy;
					else if (strcmp(colname, "architecture") == 0)
						e->architecture = copy;
					else if (strcmp(colname, "dtype") == 0)
						e->dtype = copy;
					else if (strcmp(colname, "xmin") == 0 && v != NULL)
						e->xmin = (TransactionId) strtoul(v, NULL, 10);
				}
				old = MemoryContextSwitchTo(caller);
				rows = lappend(rows, e);
				MemoryContextSwitchTo(old);
			}
		}
		SPI_finish();
		AtEOXact_GUC(false, save_nestlevel);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	if (processed)
		*processed = count;
	return rows;
}

/* The columns a lookup reads: those this version of the table has. */
static const char *
catalog_columns(const CatalogTable *t)
{
	return psprintf("xmin, name, path%s%s", t->has_architecture ? ", architecture" : "",
					t->has_dtype ? ", dtype" : "");
}

/*
 * The row for one name, read on every first use of a model in a transaction
 * (model_attach.c compares what shared memory holds with it), so it is a
 * plain index scan on the primary key rather than an SQL statement: no user
 * code can run (no SQL is parsed; the only function called is texteq, through
 * the index's own operator class), and no privilege is needed, as for
 * PostgreSQL's own catalog reads.  The table's identity is kept until a
 * relcache invalidation says it changed (ALTER/DROP EXTENSION, a new index).
 */
typedef struct CatalogIdentity
{
	bool		valid;
	Oid			relid;
	Oid			pkindex;
	AttrNumber	att_name;
	AttrNumber	att_path;
	AttrNumber	att_architecture;	/* InvalidAttrNumber before version 0.2 */
	AttrNumber	att_dtype;		/* InvalidAttrNumber before version 0.3 */
} CatalogIdentity;

static CatalogIdentity identity;
static bool identity_callback_registered = false;
static uint64 identity_invalidations = 0;

static void
identity_invalidate(Datum arg, Oid relid)
{
	identity_invalidations++;
	if (relid == InvalidOid || relid == identity.relid)
		identity.valid = false;
}

/* false: no table in this database, or one without a primary key on name */
static bool
catalog_identity(void)
{
	CatalogTable t;
	Relation	rel;
	uint64		invalidations;

	if (identity.valid)
		return true;
	if (!identity_callback_registered)
	{
		CacheRegisterRelcacheCallback(identity_invalidate, (Datum) 0);
		identity_callback_registered = true;
	}
	invalidations = identity_invalidations;
	if (!catalog_table(&t))
		return false;
	rel = table_open(t.relid, AccessShareLock);
	(void) RelationGetIndexList(rel);	/* sets rd_pkindex */
	identity.relid = t.relid;
	identity.pkindex = rel->rd_pkindex;
	identity.att_name = get_attnum(t.relid, "name");
	identity.att_path = get_attnum(t.relid, "path");
	identity.att_architecture = get_attnum(t.relid, "architecture");
	identity.att_dtype = get_attnum(t.relid, "dtype");
	table_close(rel, AccessShareLock);
	if (!OidIsValid(identity.pkindex) || identity.att_name != 1 ||
		identity.att_path == InvalidAttrNumber)
		return false;
	/* what was read is used now, but kept only if nothing was invalidated meanwhile */
	identity.valid = invalidations == identity_invalidations;
	return true;
}

static char *
row_text(HeapTuple tup, TupleDesc desc, AttrNumber att)
{
	bool		isnull;
	Datum		d;

	if (att == InvalidAttrNumber)
		return NULL;
	d = heap_getattr(tup, att, desc, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

CatalogEntry *
camembert_catalog_lookup(const char *name)
{
	CatalogEntry *entry = NULL;
	Relation	rel;
	Relation	index;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Snapshot	snapshot;

	if (!catalog_identity())
	{
		CatalogTable t;
		List	   *rows;
		Datum		values[1];

		/* no primary key (someone dropped it): the same question in SQL */
		if (!catalog_table(&t))
			return NULL;
		values[0] = CStringGetTextDatum(name);
		rows = catalog_run(&t,
						   psprintf("SELECT %s FROM %s WHERE name OPERATOR(pg_catalog.=) $1",
									catalog_columns(&t), t.qualified_name),
						   1, values, true, NULL);
		return rows == NIL ? NULL : (CatalogEntry *) linitial(rows);
	}

	rel = table_open(identity.relid, AccessShareLock);
	index = index_open(identity.pkindex, AccessShareLock);
	ScanKeyInit(&key, identity.att_name, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(name));
	key.sk_collation = index->rd_indcollation[0];
	snapshot = RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot());
	scan = systable_beginscan(rel, identity.pkindex, true, snapshot, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);

		entry = palloc0(sizeof(CatalogEntry));
		entry->name = row_text(tup, desc, identity.att_name);
		entry->path = row_text(tup, desc, identity.att_path);
		entry->architecture = row_text(tup, desc, identity.att_architecture);
		entry->dtype = row_text(tup, desc, identity.att_dtype);
		entry->xmin = HeapTupleHeaderGetXmin(tup->t_data);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return entry;
}

List *
camembert_catalog_entries(void)
{
	CatalogTable t;

	if (!catalog_table(&t))
		return NIL;
	return catalog_run(&t,
					   psprintf("SELECT %s FROM %s ORDER BY name COLLATE pg_catalog.\"C\"",
								catalog_columns(&t), t.qualified_name),
					   0, NULL, true, NULL);
}

void
camembert_catalog_register(const char *name, const char *path, const char *architecture,
						   const char *dtype)
{
	CatalogTable t;
	Datum		values[4];

	if (!catalog_table(&t))
		return;
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(path);
	values[2] = architecture ? CStringGetTextDatum(architecture) : (Datum) 0;
	values[3] = CStringGetTextDatum(dtype);
	if (t.has_dtype)
		catalog_run(&t,
					psprintf("INSERT INTO %s AS r (name, path, architecture, dtype) VALUES ($1, $2, $3, $4) "
							 "ON CONFLICT (name) DO UPDATE SET path = EXCLUDED.path, "
							 "architecture = EXCLUDED.architecture, dtype = EXCLUDED.dtype, "
							 "registered_at = pg_catalog.now()",
							 t.qualified_name),
					4, values, false, NULL);
	else if (t.has_architecture)
		catalog_run(&t,
					psprintf("INSERT INTO %s AS r (name, path, architecture) VALUES ($1, $2, $3) "
							 "ON CONFLICT (name) DO UPDATE SET path = EXCLUDED.path, "
							 "architecture = EXCLUDED.architecture, registered_at = pg_catalog.now()",
							 t.qualified_name),
					3, values, false, NULL);
	else
		catalog_run(&t,
					psprintf("INSERT INTO %s AS r (name, path) VALUES ($1, $2) "
							 "ON CONFLICT (name) DO UPDATE SET path = EXCLUDED.path, "
							 "registered_at = pg_catalog.now()",
							 t.qualified_name),
					2, values, false, NULL);
}

bool
camembert_catalog_forget(const char *name)
{
	CatalogTable t;
	Datum		values[1];
	uint64		processed = 0;

	if (!catalog_table(&t))
		return false;
	values[0] = CStringGetTextDatum(name);
	catalog_run(&t,
				psprintf("DELETE FROM %s WHERE name OPERATOR(pg_catalog.=) $1", t.qualified_name),
				1, values, false, &processed);
	return processed > 0;
}
