#!/usr/bin/env bash
# demo.sh — the README's main command: install what is missing, build, install (the
# extension and the bundled models, into PostgreSQL's share directory), start the scratch
# cluster, load the bundled models from where they were installed and run the example queries.
# The server never reads the clone: it can stay private (e.g. in /root, mode 0700).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/${PGMAJOR:-15}/bin/pg_config}

scripts/setup.sh
scripts/cluster.sh start
MODELS=$("$PG_CONFIG" --sharedir)/camembert/models
scripts/cluster.sh psql -v ON_ERROR_STOP=1 -v models="$MODELS" -f scripts/demo.sql
echo
echo "The scratch cluster (in $(scripts/cluster.sh dir)) is still running:" \
	"scripts/cluster.sh psql   (stop it with scripts/cluster.sh stop, remove it with scripts/cluster.sh destroy)"
