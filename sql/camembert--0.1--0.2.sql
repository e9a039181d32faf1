-- camembert--0.1--0.2.sql: update from 0.1 to 0.2.
\echo Use "ALTER EXTENSION camembert UPDATE TO '0.2'" to load this file. \quit

-- The architecture of each registered model, so that a NULL model argument is
-- resolved from the registrations without loading every model.  Rows of 0.1
-- have none (NULL): they count as candidates once loaded.
ALTER TABLE @extschema@.camembert_registered_models ADD COLUMN architecture text;

-- Pinned search_path and qualified operators: nothing a caller defines can
-- run inside.
CREATE OR REPLACE FUNCTION @extschema@.camembert_models(
	OUT name text, OUT path text, OUT architecture text, OUT task text,
	OUT labels text[], OUT parameters bigint, OUT bytes bigint, OUT dtype text,
	OUT loaded boolean)
	RETURNS SETOF record
	LANGUAGE sql VOLATILE PARALLEL RESTRICTED
	SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT COALESCE(l.name, r.name), COALESCE(l.path, r.path),
	       COALESCE(l.architecture, r.architecture), l.task,
	       l.labels, l.parameters, l.bytes, l.dtype, l.name IS NOT NULL
	  FROM @extschema@.camembert_loaded_models() AS l
	  FULL JOIN @extschema@.camembert_registered_models AS r ON r.name OPERATOR(pg_catalog.=) l.name
	 ORDER BY 1
	$$;

-- ---------------------------------------------------------------------------
-- Statistics (README "Monitoring"): per (model, user, database), kept in
-- shared memory since the last camembert_stat_reset().  Superusers and members
-- of pg_read_all_stats see every row, other roles their own.
CREATE FUNCTION camembert_stat_models_internal(
	OUT model text, OUT userid oid, OUT dbid oid,
	OUT loads bigint, OUT calls bigint, OUT texts bigint, OUT tokens bigint,
	OUT total_time_ms float8, OUT mean_time_ms float8, OUT last_used timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'camembert_stat_models_internal'
	LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW camembert_stat_models AS
	SELECT * FROM @extschema@.camembert_stat_models_internal();
GRANT SELECT ON camembert_stat_models TO PUBLIC;

CREATE FUNCTION camembert_stat_reset() RETURNS void
	AS 'MODULE_PATHNAME', 'camembert_stat_reset'
	LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION camembert_stat_reset() FROM PUBLIC;
COMMENT ON FUNCTION camembert_stat_reset() IS
	'forget every entry of camembert_stat_models (superusers, unless granted)';

CREATE FUNCTION camembert_stat_dropped() RETURNS bigint
	AS 'MODULE_PATHNAME', 'camembert_stat_dropped'
	LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION camembert_stat_dropped() IS
	'calls and loads not recorded since the last reset: camembert.stat_max entries in use';
