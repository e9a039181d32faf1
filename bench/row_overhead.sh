#!/usr/bin/env bash
# bench/row_overhead.sh — what the SQL layer costs per row, with a model whose forward pass
# costs almost nothing (the tiny golden classifier test/golden/models/cls3).
#
#   bash bench/row_overhead.sh            uses the extension installed for PG_CONFIG
#
# Scratch cluster of its own (scripts/cluster.sh, CAMEMBERT_CLUSTER_DIR=<scratch>/bench-rows),
# BENCH_ROWS rows (default 100,000) of ~12 tokens, max_parallel_workers_per_gather = 0, and
# BENCH_PASSES (default 5) passes of each query, alternating:
#   named   SELECT count(camembert_classify(body, 'cls')) FROM posts
#   null    SELECT count(camembert_classify(body)) FROM posts        (model resolved by the
#           extension: the one loaded classifier)
#   base    SELECT count(length(body)) FROM posts                    (the scan alone)
# and prints the median ms of each and (query - base) / rows in microseconds.  To compare two
# builds, install one, run, install the other, run (each prints its own table).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
ROWS=${BENCH_ROWS:-100000}
PASSES=${BENCH_PASSES:-5}
SCRATCH=$(scripts/scratch.sh)
export CAMEMBERT_CLUSTER_DIR=$SCRATCH/bench-rows
FIXTURES=$SCRATCH/bench-rows-models
if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); else RUNAS=(); fi

# the server reads the model from a copy it can reach (the clone may be private)
rm -rf "$FIXTURES" && mkdir -p "$FIXTURES" && { [ "$(id -u)" != 0 ] || chown postgres: "$FIXTURES"; }
sh test/golden/assemble.sh   # build/golden: test/golden's model directories, whole
tar -C build/golden/models -cf - cls3 | (cd / && "${RUNAS[@]}" tar -C "$FIXTURES" -xf -)

scripts/cluster.sh destroy >/dev/null 2>&1 || true
trap 'scripts/cluster.sh destroy >/dev/null 2>&1 || true' EXIT
scripts/cluster.sh start
q() { scripts/cluster.sh psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "DROP EXTENSION IF EXISTS camembert CASCADE" -c "CREATE EXTENSION camembert" \
	-c "SELECT camembert_load('cls', '$FIXTURES/cls3')" \
	-c "CREATE TABLE posts AS SELECT i, 'Le chat numéro ' || i || ' dort sur le canapé.' AS body
	      FROM generate_series(1, $ROWS) i" -c "VACUUM ANALYZE posts" >/dev/null

declare -A SQL=(
	[named]="SELECT count(camembert_classify(body, 'cls')) FROM posts"
	[null]="SELECT count(camembert_classify(body)) FROM posts"
	[base]="SELECT count(length(body)) FROM posts"
)
declare -A TIMES
for ((p = 0; p < PASSES; p++)); do
	for k in named null base; do
		ms=$(q -c "SET max_parallel_workers_per_gather = 0" -c '\timing on' -c "${SQL[$k]}" |
			sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
		TIMES[$k]="${TIMES[$k]:-} $ms"
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
base=$(echo "${TIMES[base]}" | median)
echo
echo "rows: $ROWS, passes: $PASSES, $(q -c 'SELECT camembert_version()')"
printf '| query | median ms | us per row over the scan |\n|---|---|---|\n'
for k in named null base; do
	m=$(echo "${TIMES[$k]}" | median)
	printf '| %s | %s | %s |\n' "$k" "$m" "$(awk -v m="$m" -v b="$base" -v r="$ROWS" 'BEGIN {printf "%.2f", (m - b) * 1000 / r}')"
done
