#!/usr/bin/env bash
# demo.sh — the README's main command: install what is missing, build, install,
# start the scratch cluster, load the bundled models and run the example queries.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/${PGMAJOR:-15}/bin/pg_config}

scripts/setup.sh
scripts/cluster.sh start
scripts/cluster.sh psql -v ON_ERROR_STOP=1 -v models="$ROOT/models" -f scripts/demo.sql
echo
echo "The scratch cluster is still running: scripts/cluster.sh psql   (stop it with scripts/cluster.sh stop)"
