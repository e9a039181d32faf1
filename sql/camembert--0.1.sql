-- camembert--0.1.sql: the SQL surface of the camembert extension.
\echo Use "CREATE EXTENSION camembert" to load this file. \quit

CREATE FUNCTION camembert_version() RETURNS text
	AS 'MODULE_PATHNAME', 'camembert_version'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
