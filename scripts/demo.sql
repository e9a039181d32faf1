-- demo.sql: the example queries of the README's main command.
\set ECHO queries
CREATE EXTENSION IF NOT EXISTS camembert;
SELECT camembert_version();
