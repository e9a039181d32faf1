-- The extension is installed (pg_regress --load-extension) and preloaded.
SELECT extname, extversion FROM pg_extension WHERE extname = 'camembert';
SELECT camembert_version();

-- what the extension is made of (sql/update.sql lists the same after ALTER
-- EXTENSION camembert UPDATE from 0.1: the two must agree)
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'camembert')
 ORDER BY 1;
SELECT attname, format_type(atttypid, atttypmod), attnotnull, pg_get_expr(adbin, adrelid) AS default
  FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
 WHERE attrelid = 'camembert_registered_models'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
-- the functions whose parameters or columns an update changed
SELECT oid::regprocedure AS function, pg_get_function_arguments(oid) AS arguments,
       pg_get_function_result(oid) AS result
  FROM pg_proc WHERE proname IN ('camembert_load', 'camembert_loaded_models', 'camembert_models', 'camembert_generate')
 ORDER BY 1::text;
SELECT proname, proconfig FROM pg_proc WHERE proconfig IS NOT NULL AND proname LIKE 'camembert%' ORDER BY 1;

-- GUCs and their defaults
-- (camembert.max_threads defaults to the number of cores)
SELECT name, CASE WHEN name = 'camembert.max_threads' THEN 'cores' ELSE setting END AS setting, context
  FROM pg_settings WHERE name LIKE 'camembert.%' ORDER BY name;
SELECT setting::int >= 1 AS max_threads_at_least_one FROM pg_settings WHERE name = 'camembert.max_threads';

-- bounds are enforced
SET camembert.threads = 0;
SET camembert.threads = 1025;
SET camembert.threads = 2;
SHOW camembert.threads;
RESET camembert.threads;

-- the prefix is reserved: a typo is an error, not a silent placeholder
SET camembert.thread = 2;

-- only superusers may confine or widen the model directory
CREATE ROLE camembert_plain_user;
SET ROLE camembert_plain_user;
SET camembert.model_dir = '/';
-- nor raise the ceiling on threads
SET camembert.max_threads = 64;
-- the internal setting of parallel queries is not listed
SELECT count(*) FROM pg_settings WHERE name = 'camembert.parallel_models';
RESET ROLE;
DROP ROLE camembert_plain_user;

-- Test helper used by the later tests: the SQLSTATE, message and hint of the
-- error a statement raises (no source line numbers in expected output).
CREATE FUNCTION regress_error(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	hint text;
BEGIN
	EXECUTE statement;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
	RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN hint <> '' THEN E'\nHINT: ' || hint ELSE '' END;
END $$;
SELECT regress_error('SELECT 1/0');

-- Test helper: the largest |a[i] - b[i]|, or Infinity when the shapes differ.
CREATE FUNCTION regress_max_abs_diff(a float8[], b float8[]) RETURNS float8 LANGUAGE sql AS $$
	SELECT CASE WHEN array_dims(a) IS DISTINCT FROM array_dims(b) THEN 'Infinity'::float8
	            ELSE (SELECT coalesce(max(abs(x - y)), 0) FROM unnest(a, b) AS u(x, y)) END
$$;
SELECT regress_max_abs_diff('{1,2}', '{1,2.5}'), regress_max_abs_diff('{1,2}', '{{1,2}}');
