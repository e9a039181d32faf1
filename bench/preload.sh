#!/usr/bin/env bash
# bench/preload.sh — the first classification after a restart, with camembert.preload off and on,
# on the camembert-base-shaped model (bench/make_base_shaped_model.py, cached in
# build/bench/engine/base_cls as bench/run.sh does).
#
#   PG_CONFIG=... bash bench/preload.sh          (the extension installed: make install)
#
# Environment: BENCH_PRELOAD_RUNS=3 (restarts per setting).
# A scratch cluster of its own in build/bench/preload-cluster (scripts/cluster.sh), created
# afresh, stopped at the end.  For each setting and run: restart (pg_ctl -w returns once the
# server accepts connections), then
#   off: at once, the first SELECT camembert_classify(..., 'base') (psql \timing), then a second;
#   on:  wait until camembert_loaded_models() lists 'base' (polled every 20 ms, loading
#        nothing), note the time since pg_postmaster_start_time() and the worker's own
#        "preloaded model ... in N ms" line, then the first and second classifications.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODEL=$ROOT/build/bench/engine/base_cls
RUNS=${BENCH_PRELOAD_RUNS:-3}
TEXT="Le camembert est un fromage au lait cru de vache, fabriqué en Normandie depuis le XVIIIe siècle."
export PG_CONFIG=${PG_CONFIG:-pg_config}
export CAMEMBERT_CLUSTER_DIR=$ROOT/build/bench/preload-cluster

if [ ! -f "$MODEL/model.safetensors" ] || [ "$ROOT/bench/make_base_shaped_model.py" -nt "$MODEL/model.safetensors" ]; then
	echo "writing the camembert-base-shaped model" >&2
	/usr/bin/python3 "$ROOT/bench/make_base_shaped_model.py" "$MODEL" >&2
fi

CL=(bash "$ROOT/scripts/cluster.sh")
trap '"${CL[@]}" stop || true' EXIT
"${CL[@]}" destroy >/dev/null 2>&1 || true
"${CL[@]}" start
DIR=$("${CL[@]}" dir)
LOG=$DIR/server.log
q() { "${CL[@]}" psql -At -v ON_ERROR_STOP=1 "$@"; }
# psql's \timing of one statement, in ms
timed() { q -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }

q -q -c "CREATE EXTENSION camembert" -c "SELECT camembert_load('base', '$MODEL')" >/dev/null
bytes=$(q -c "SELECT bytes FROM camembert_loaded_models() WHERE name = 'base'")
echo "model: $MODEL ($bytes bytes of shared memory); $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf '| preload | run | server start → loaded (ms) | worker load (ms) | 1st classify (ms) | 2nd classify (ms) |\n'
printf '|---|---|---|---|---|---|\n'
for setting in off on; do
	q -q -c "ALTER SYSTEM SET camembert.preload = $setting"
	for run in $(seq 1 "$RUNS"); do
		offset=$(stat -c %s "$LOG")
		"${CL[@]}" restart
		ready="-"; worker="-"
		if [ "$setting" = on ]; then
			for _ in $(seq 1 3000); do
				ready=$(q -c "SELECT CASE WHEN EXISTS (SELECT FROM camembert_loaded_models() WHERE name = 'base')
					THEN round(extract(epoch FROM clock_timestamp() - pg_postmaster_start_time()) * 1000) END")
				[ -n "$ready" ] && break
				sleep 0.02
			done
			# the worker logs its line just after the slot turns ready
			for _ in $(seq 1 100); do
				worker=$(tail -c +"$((offset + 1))" "$LOG" | sed -n 's/.*preloaded model "base" .* in \([0-9]*\) ms.*/\1/p' | tail -1)
				[ -n "$worker" ] && break
				sleep 0.05
			done
		fi
		first=$(timed "SELECT camembert_classify('$TEXT', 'base')")
		second=$(timed "SELECT camembert_classify('$TEXT', 'base')")
		printf '| %s | %s | %s | %s | %s | %s |\n' "$setting" "$run" "$ready" "${worker:--}" "$first" "$second"
	done
done
