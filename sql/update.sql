-- ALTER EXTENSION camembert UPDATE from the released 0.1: the tests after this
-- one run against the updated extension.
DROP EXTENSION camembert;
CREATE EXTENSION camembert VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'camembert';
ALTER EXTENSION camembert UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'camembert';
-- what the extension is made of after the update (the same query in
-- extension.sql lists a fresh install: the two must agree)
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
