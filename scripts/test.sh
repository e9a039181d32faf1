#!/usr/bin/env bash
# test.sh — the whole test suite: the README's test command, and what CI runs.
#
#   scripts/test.sh
#
# Installs what is missing and builds/installs the extension (scripts/setup.sh), then runs
#   1. the C unit tests of the pure core (ASan + UBSan),          make unit
#   2. the pg_regress tests against the scratch cluster,           make installcheck
#   3. the TAP tests (t/*.pl, PostgreSQL::Test::Cluster), if any,  make tapcheck
#   4. the quick start from a private copy of the clone (as root), test/quickstart.sh
#   5. build hygiene and the packaging metadata,                   test/build.sh
#   6. the Debian package: built from a copy, installed, pg_regress against it, purged
#      (as root; the clone's build is installed again),            test/deb.sh
#   7. each libFuzzer target for FUZZ_SECONDS (default 10) on its seed corpus
#   8. that no server it started is left running
# and ends with one line: "N passed, N failed".
#
# Everything is compiled with -Werror (WERROR=1): the code must compile warning-free.  A plain
# `make` leaves it out, so that a user's newer compiler with new warnings still builds it.
#
# As root the servers run as the 'postgres' system user, which must not need to read the
# clone (it may be private, e.g. in /root): the tests' scratch cluster, their TAP nodes and a
# copy of the files the server and the TAP scripts read (the clone without build outputs:
# CAMEMBERT_ROOT and pg_regress's PG_ABS_SRCDIR point at it) live in the clone's scratch
# directory, /var/tmp/camembert-<hash>/ (owned by postgres, mode 0700; scripts/scratch.sh):
# test-cluster/, test-tree/ (the TAP nodes in test-tree/tmp_check/), and test/deb.sh's deb/,
# deb-cluster/.  They are kept for inspection until the next run; every server started is
# stopped, also on failure.  As another user: build/test-cluster and the clone itself.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/${PGMAJOR:-15}/bin/pg_config}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
export WERROR=1
LOG=$ROOT/build/test-logs
mkdir -p "$LOG"

passed=0
failed=0
add() { passed=$((passed + $1)); failed=$((failed + $2)); }

scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

SCRATCH=$(scripts/scratch.sh) || { echo "0 passed, 1 failed"; exit 1; }
# the tests' own scratch cluster, apart from the demo's
export CAMEMBERT_CLUSTER_DIR=$SCRATCH/test-cluster
if [ "$(id -u)" = 0 ]; then
	RUNAS=(runuser -u postgres --)
	# what the server and the TAP scripts read, copied where postgres can read it; the
	# copy is written by postgres from what root reads
	TREE=$SCRATCH/test-tree
	rm -rf "$TREE" && mkdir -m 0700 "$TREE" && chown postgres: "$TREE" &&
		tar -C "$ROOT" -cf - --exclude-vcs --exclude=./build --exclude=./.cluster \
			--exclude=./results --exclude=./tmp_check --exclude=./log --exclude='./regression.*' \
			--exclude='*.o' --exclude='*.bc' --exclude='*.so' . |
		env -C / "${RUNAS[@]}" tar -C "$TREE" -xf - ||
		{ echo "could not copy the test files to $TREE"; echo "0 passed, 1 failed"; exit 1; }
else
	RUNAS=()
	TREE=$ROOT
fi

# the TAP tests' nodes and logs (make tapcheck: PGXS's prove_installcheck)
TAPDIR=$TREE/tmp_check

# every server this run starts is stopped when it ends, however it ends
stop_servers() {
	scripts/cluster.sh stop >/dev/null 2>&1
	CAMEMBERT_CLUSTER_DIR=$SCRATCH/deb-cluster scripts/cluster.sh stop >/dev/null 2>&1   # test/deb.sh's
	local pid
	# TAP nodes stop themselves, unless prove was killed
	for pid in "$TAPDIR"/*/pgdata/postmaster.pid; do
		[ -f "$pid" ] && env -C / "${RUNAS[@]}" "$("$PG_CONFIG" --bindir)/pg_ctl" \
			-D "$(dirname "$pid")" -m immediate stop >/dev/null 2>&1
	done
	return 0
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
# a fresh cluster: an empty model registry, and no registration of an earlier run that the
# preload (camembert.preload) would load at start
scripts/cluster.sh destroy >/dev/null 2>&1
scripts/cluster.sh start || { add 0 1; echo "$passed passed, $failed failed"; exit 1; }
eval "$(scripts/cluster.sh env)"
make -s -C "$TREE" installcheck PG_CONFIG="$PG_CONFIG" >"$LOG/regress.log" 2>&1
scripts/cluster.sh stop   # only pg_regress uses it
grep -E '^(test |ok |not ok |     )' "$LOG/regress.log" | sed 's/^/  /'
summary=$(grep -E 'tests? passed|tests? failed' "$LOG/regress.log" | head -1)
echo "  $summary"
if [[ $summary =~ All\ ([0-9]+)\ tests\ passed ]]; then
	add "${BASH_REMATCH[1]}" 0
elif [[ $summary =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
	add $((BASH_REMATCH[2] - BASH_REMATCH[1])) "${BASH_REMATCH[1]}"
	[ -f "$TREE/regression.diffs" ] && head -80 "$TREE/regression.diffs"
else
	tail -20 "$LOG/regress.log"; add 0 1
fi

# 3. TAP tests (PostgreSQL::Test::Cluster): make tapcheck, PGXS's prove_installcheck.
#    initdb refuses root: as root they run as the postgres system user, from the copy, with
#    their nodes and logs in its tmp_check/.
if compgen -G "t/*.pl" >/dev/null; then
	echo "== TAP"
	(cd / && "${RUNAS[@]}" make -s -C "$TREE" tapcheck PG_CONFIG="$PG_CONFIG" PROVE_FLAGS=-v) >"$LOG/tap.log" 2>&1
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

# 4. the quick start from a private clone (as root; skipped otherwise)
echo "== quick start from a private clone"
bash test/quickstart.sh >"$LOG/quickstart.log" 2>&1
qs_rc=$?
grep -E '^  (ok|FAILED|skipped)' "$LOG/quickstart.log"
read -r p f < <(grep -E '^quickstart: [0-9]+ passed, [0-9]+ failed' "$LOG/quickstart.log" |
	awk '{print $2 + 0, $4 + 0}')
p=${p:-0} f=${f:-0}
if [ "$qs_rc" != 0 ]; then
	[ "$f" = 0 ] && f=1
	tail -30 "$LOG/quickstart.log"
fi
add "$p" "$f"

# a step whose script prints "  ok - ..." / "  FAILED - ..." lines and "<name>: N passed, N failed"
step() {
	local name=$1 script=$2 rc p f
	bash "$script" >"$LOG/$name.log" 2>&1
	rc=$?
	grep -E '^  (ok|FAILED|skipped)' "$LOG/$name.log"
	read -r p f < <(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$LOG/$name.log" |
		awk '{print $2 + 0, $4 + 0}')
	p=${p:-0} f=${f:-0}
	if [ "$rc" != 0 ]; then
		[ "$f" = 0 ] && f=1
		tail -30 "$LOG/$name.log"
	fi
	add "$p" "$f"
}

# 5. build hygiene, packaging metadata
echo "== build and packaging metadata"
step build test/build.sh

# 6. the Debian package (as root; skipped otherwise)
echo "== Debian package"
step deb test/deb.sh

# 7. fuzzers, bounded
if compgen -G "fuzz/fuzz_*.c" >/dev/null && [ "$FUZZ_SECONDS" -gt 0 ]; then
	echo "== fuzz (${FUZZ_SECONDS}s each)"
	# the core's objects once, on every core (each target below then only links);
	# a failure here shows again in the target's own build below
	make -s -j"$(nproc)" -C fuzz all >"$LOG/fuzz-build.log" 2>&1 || true
	# the seeds kept elsewhere in the repository (fuzz/seeds.txt), in build/fuzz/seeds/<target>/
	make -s -C fuzz seeds >"$LOG/fuzz-seeds.log" 2>&1 || { cat "$LOG/fuzz-seeds.log"; add 0 1; }
	for src in fuzz/fuzz_*.c; do
		t=$(basename "$src" .c); t=${t#fuzz_}
		if make -s -C fuzz "../build/fuzz/$t" >"$LOG/fuzz-build-$t.log" 2>&1 &&
			mkdir -p "build/fuzz/corpus/$t" "build/fuzz/seeds/$t" &&
			(cd fuzz && "../build/fuzz/$t" -max_total_time="$FUZZ_SECONDS" \
				"../build/fuzz/corpus/$t" "corpus/$t" "../build/fuzz/seeds/$t" >"$LOG/fuzz-$t.log" 2>&1); then
			echo "  fuzz $t ok"; add 1 0
		else
			echo "  fuzz $t FAILED"; tail -30 "$LOG/fuzz-$t.log" "$LOG/fuzz-build-$t.log" 2>/dev/null; add 0 1
		fi
	done
fi

# 8. no server left running: the test cluster, the TAP nodes and the package test's cluster
echo "== servers stopped"
stop_servers
left=$(ps -eo pid=,args= |
	P1="$CAMEMBERT_CLUSTER_DIR/" P2="$TAPDIR/" P3="$SCRATCH/deb-cluster/" \
	awk 'index($0, ENVIRON["P1"]) || index($0, ENVIRON["P2"]) || index($0, ENVIRON["P3"])')
if [ -z "$left" ] && ! compgen -G "$CAMEMBERT_CLUSTER_DIR/data/postmaster.pid" >/dev/null &&
	! compgen -G "$SCRATCH/deb-cluster/data/postmaster.pid" >/dev/null &&
	! compgen -G "$TAPDIR/*/pgdata/postmaster.pid" >/dev/null; then
	echo "  ok - no server of this run is left running"; add 1 0
else
	echo "  FAILED - servers left running:"; echo "$left"; add 0 1
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
