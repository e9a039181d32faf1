-- camembert--0.2--0.3.sql: update from 0.2 to 0.3.
\echo Use "ALTER EXTENSION camembert UPDATE TO '0.3'" to load this file. \quit

-- camembert_load(name, path, dtype): the precision of the weights.  Each
-- registration records its dtype, so that a reload after a restart (the
-- preload worker, or the first call) loads the model as it was loaded.  Rows
-- of 0.1 and 0.2 get auto: their models were built from the files' weights
-- widened to float32, which are the numbers of auto.  A view of yours on
-- camembert_models() or camembert_loaded_models() must be dropped first (see
-- below).
ALTER TABLE @extschema@.camembert_registered_models ADD COLUMN dtype text NOT NULL DEFAULT 'auto';

-- A third parameter with a default beside the old two-parameter function would
-- make every two-argument call ambiguous: the old one is replaced (privileges
-- granted on camembert_load(text, text) are not carried over).
DROP FUNCTION @extschema@.camembert_load(text, text);

-- dtype: the weight matrices kept in the files' dtype (auto), or converted to
-- float32, bfloat16 or int8 at load.
CREATE FUNCTION @extschema@.camembert_load(name text, path text, dtype text DEFAULT 'auto') RETURNS void
	AS 'MODULE_PATHNAME', 'camembert_load'
	LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.camembert_load(text, text, text) IS
	'load a Hugging Face CamemBERT model directory into shared memory, weights in dtype auto, float32, bfloat16 or int8 (superusers and pg_read_server_files)';

-- New OUT column "precision": the functions are dropped and created again
-- (camembert_models() reads camembert_loaded_models(); nothing else uses them).
DROP FUNCTION @extschema@.camembert_models();
DROP FUNCTION @extschema@.camembert_loaded_models();

-- dtype: of the weight files; precision: the dtype camembert_load was given
CREATE FUNCTION @extschema@.camembert_loaded_models(
	OUT name text, OUT path text, OUT architecture text, OUT task text,
	OUT labels text[], OUT parameters bigint, OUT bytes bigint, OUT dtype text,
	OUT "precision" text)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'camembert_loaded_models'
	LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.camembert_loaded_models() IS
	'models in shared memory now, whatever database registered them';

-- Registered (this database) and loaded (this server) models.  Pinned
-- search_path and qualified operators: nothing a caller defines can run inside.
CREATE FUNCTION @extschema@.camembert_models(
	OUT name text, OUT path text, OUT architecture text, OUT task text,
	OUT labels text[], OUT parameters bigint, OUT bytes bigint, OUT dtype text,
	OUT "precision" text, OUT loaded boolean)
	RETURNS SETOF record
	LANGUAGE sql VOLATILE PARALLEL RESTRICTED
	SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT COALESCE(l.name, r.name), COALESCE(l.path, r.path),
	       COALESCE(l.architecture, r.architecture), l.task,
	       l.labels, l.parameters, l.bytes, l.dtype,
	       COALESCE(l."precision", r.dtype), l.name IS NOT NULL
	  FROM @extschema@.camembert_loaded_models() AS l
	  FULL JOIN @extschema@.camembert_registered_models AS r ON r.name OPERATOR(pg_catalog.=) l.name
	 ORDER BY 1
	$$;
