#!/usr/bin/env bash
# test.sh — the whole test suite: the README's test command, and what CI runs.
#
#   scripts/test.sh
#
# Installs what is missing and builds/installs the extension (scripts/setup.sh), then runs
#   1. the C unit tests of the pure core (ASan + UBSan),          make unit
#   2. the pg_regress tests against the scratch cluster,           make installcheck
#   3. the TAP tests (t/*.pl, PostgreSQL::Test::Cluster), if any,  prove
#   4. each libFuzzer target for FUZZ_SECONDS (default 10) on its seed corpus
# and ends with one line: "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/${PGMAJOR:-15}/bin/pg_config}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
LOG=$ROOT/build/test-logs
# the tests' own scratch cluster, apart from the demo's (.cluster)
export CAMEMBERT_CLUSTER_DIR=$ROOT/build/test-cluster
mkdir -p "$LOG"

passed=0
failed=0
add() { passed=$((passed + $1)); failed=$((failed + $2)); }

scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

# 1. unit tests: each program prints "<name>: N passed, N failed"
echo "== unit tests"
make -s unit PG_CONFIG="$PG_CONFIG" >"$LOG/unit.log" 2>&1
unit_rc=$?
grep -E '^[a-z0-9_]+: [0-9]+ passed, [0-9]+ failed' "$LOG/unit.log"
read -r p f < <(grep -E '^[a-z0-9_]+: [0-9]+ passed, [0-9]+ failed' "$LOG/unit.log" |
	awk '{p += $2; f += $4} END {print p+0, f+0}')
if [ "$unit_rc" != 0 ] && [ "$f" = 0 ]; then
	f=1; tail -30 "$LOG/unit.log"   # a crash or a build failure
elif [ "$f" != 0 ]; then
	grep -E '^FAIL' "$LOG/unit.log" | head -40
fi
add "$p" "$f"

# 2. pg_regress against the scratch cluster
echo "== pg_regress"
# a restart empties the server-wide model registry: tests start from a clean state
scripts/cluster.sh restart || { add 0 1; echo "$passed passed, $failed failed"; exit 1; }
eval "$(scripts/cluster.sh env)"
make -s installcheck PG_CONFIG="$PG_CONFIG" >"$LOG/regress.log" 2>&1
grep -E '^(test |ok |not ok |     )' "$LOG/regress.log" | sed 's/^/  /'
summary=$(grep -E 'tests? passed|tests? failed' "$LOG/regress.log" | head -1)
echo "  $summary"
if [[ $summary =~ All\ ([0-9]+)\ tests\ passed ]]; then
	add "${BASH_REMATCH[1]}" 0
elif [[ $summary =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
	add $((BASH_REMATCH[2] - BASH_REMATCH[1])) "${BASH_REMATCH[1]}"
	[ -f regression.diffs ] && head -80 regression.diffs
else
	tail -20 "$LOG/regress.log"; add 0 1
fi

# 3. TAP tests (PostgreSQL::Test::Cluster).  initdb refuses root: as root they run
#    as the postgres system user, with their scratch files in build/tap.
if compgen -G "t/*.pl" >/dev/null; then
	echo "== TAP"
	PGXS_DIR=$(dirname "$("$PG_CONFIG" --pgxs)")/../..
	rm -rf build/tap && mkdir -p build/tap
	RUNAS=()
	if [ "$(id -u)" = 0 ]; then chown postgres: build/tap; RUNAS=(runuser -u postgres --); fi
	"${RUNAS[@]}" env PERL5LIB="$PGXS_DIR/src/test/perl" TESTDIR="$ROOT/build/tap" CAMEMBERT_ROOT="$ROOT" \
		PATH="$("$PG_CONFIG" --bindir):$PATH" PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
		prove -v t/*.pl >"$LOG/tap.log" 2>&1
	awk '/^t\/.*\.pl/ {f = $1} /^ok [0-9]/ {p[f]++} /^not ok [0-9]/ {n[f]++}
		END {for (k in p) printf "  %s: %d passed, %d failed\n", k, p[k], n[k] + 0}' "$LOG/tap.log" | sort
	read -r p f < <(grep -E '^(ok|not ok) [0-9]+' "$LOG/tap.log" |
		awk '/^ok/ {p++} /^not ok/ {f++} END {print p+0, f+0}')
	if ! grep -q '^Result: PASS' "$LOG/tap.log"; then
		grep -E '^not ok|^#' "$LOG/tap.log" | head -40
		[ "$f" = 0 ] && { f=1; tail -30 "$LOG/tap.log"; }
	fi
	add "$p" "$f"
fi

# 4. fuzzers, bounded
if compgen -G "fuzz/fuzz_*.c" >/dev/null && [ "$FUZZ_SECONDS" -gt 0 ]; then
	echo "== fuzz (${FUZZ_SECONDS}s each)"
	for src in fuzz/fuzz_*.c; do
		t=$(basename "$src" .c); t=${t#fuzz_}
		if make -s -C fuzz "../build/fuzz/$t" >"$LOG/fuzz-build-$t.log" 2>&1 &&
			mkdir -p "build/fuzz/corpus/$t" &&
			(cd fuzz && "../build/fuzz/$t" -max_total_time="$FUZZ_SECONDS" \
				"../build/fuzz/corpus/$t" "corpus/$t" >"$LOG/fuzz-$t.log" 2>&1); then
			echo "  fuzz $t ok"; add 1 0
		else
			echo "  fuzz $t FAILED"; tail -30 "$LOG/fuzz-$t.log" "$LOG/fuzz-build-$t.log" 2>/dev/null; add 0 1
		fi
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
