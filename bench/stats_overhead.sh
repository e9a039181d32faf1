#!/usr/bin/env bash
# bench/stats_overhead.sh — the cost of camembert_stat_models on the cheapest call there is:
# rows/s of SELECT camembert_classify(body, 'cls') over short rows with the tiny golden
# classifier (test/golden/models/cls3), camembert.track on and off, in alternation.
#
#   PG_CONFIG=... bash bench/stats_overhead.sh      (the extension installed in that PostgreSQL)
#
# Environment:
#   STATS_ROWS=100000   rows of the table (short French sentences, ~10 tokens with specials)
#   STATS_ROUNDS=5      on/off pairs timed (after one untimed warm-up pass of each)
#
# Runs its own scratch cluster in build/bench/stats-cluster (scripts/cluster.sh with
# CAMEMBERT_CLUSTER_DIR; stopped at the end).  One backend, no parallel query
# (max_parallel_workers_per_gather = 0): the figure is the per-call cost in one process.
# Prints each pass and the medians; the ratio is rows/s with tracking over rows/s without.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${STATS_ROWS:-100000}
ROUNDS=${STATS_ROUNDS:-5}
export CAMEMBERT_CLUSTER_DIR=${CAMEMBERT_CLUSTER_DIR:-$ROOT/build/bench/stats-cluster}
CL=$ROOT/scripts/cluster.sh

"$CL" start >/dev/null
trap '"$CL" stop >/dev/null 2>&1 || true' EXIT
eval "$("$CL" env)"
sh "$ROOT/test/golden/assemble.sh"   # build/golden: test/golden's model directories, whole
MODEL_DIR=$ROOT/build/golden/models/cls3

psql -X -q -v ON_ERROR_STOP=1 postgres <<SQL
DROP DATABASE IF EXISTS stats_bench;
CREATE DATABASE stats_bench;
SQL
psql -X -q -v ON_ERROR_STOP=1 stats_bench <<SQL
CREATE EXTENSION camembert;
SELECT camembert_unload('cls');
SELECT camembert_load('cls', '$MODEL_DIR');
CREATE TABLE posts AS
	SELECT 'Le camembert numéro ' || i || ' était très bon.' AS body FROM generate_series(1, $ROWS) AS i;
VACUUM ANALYZE posts;
CREATE FUNCTION pass(track boolean) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; n bigint;
BEGIN
	PERFORM set_config('camembert.track', CASE WHEN track THEN 'on' ELSE 'off' END, false);
	t0 := clock_timestamp();
	SELECT count(camembert_classify(body, 'cls')) INTO n FROM posts;
	RETURN n / extract(epoch FROM clock_timestamp() - t0);
END \$\$;
SQL

psql -X -q -A -t -v ON_ERROR_STOP=1 stats_bench <<SQL
SET max_parallel_workers_per_gather = 0;
SELECT pass(true), pass(false);	-- warm-up, not counted
CREATE TEMP TABLE runs (round int, track boolean, rows_per_s float8);
DO \$\$
BEGIN
	FOR r IN 1..$ROUNDS LOOP
		-- alternate which goes first, so that a drift of the machine favours neither
		IF r % 2 = 1 THEN
			INSERT INTO runs VALUES (r, true, pass(true)), (r, false, pass(false));
		ELSE
			INSERT INTO runs VALUES (r, false, pass(false)), (r, true, pass(true));
		END IF;
	END LOOP;
END \$\$;
\pset format aligned
\pset tuples_only off
SELECT round, track, round(rows_per_s) AS rows_per_s FROM runs ORDER BY round, track DESC;
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY rows_per_s) FILTER (WHERE track)) AS median_on,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY rows_per_s) FILTER (WHERE NOT track)) AS median_off,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY rows_per_s) FILTER (WHERE track)
            / percentile_cont(0.5) WITHIN GROUP (ORDER BY rows_per_s) FILTER (WHERE NOT track))::numeric, 4) AS ratio_on_off
  FROM runs;
SELECT model, calls, texts, tokens, round(mean_time_ms::numeric, 4) AS mean_time_ms FROM camembert_stat_models;
SQL
psql -X -q postgres -c "DROP DATABASE stats_bench" >/dev/null
