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
