#!/usr/bin/env bash
# quickstart.sh — the README's quick start from a private clone, as root (scripts/test.sh, step 4).
#
#   bash test/quickstart.sh       prints "  ok - ..." / "  FAILED - ..." lines, then
#                                 "quickstart: N passed, N failed"
#
# Copies this working tree (without build outputs) into <a fresh mode-0700 folder>/camembert,
# as a newcomer's clone in /root would be, and runs there `bash scripts/demo.sh`: build and
# install against PG_CONFIG, start the clone's scratch cluster, load the three bundled models
# and query each.  Then checks that the server never needed the clone (the models came from
# PostgreSQL's share directory, the cluster lives outside the clone, owned by postgres, and the
# clone is still private), that `scripts/cluster.sh stop` leaves no server running and that
# `scripts/cluster.sh destroy` removes the scratch directory.  Whatever happens, the clone's
# server is stopped and its files removed.  Skipped unless run as root (the case where the
# server runs as another user).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/${PGMAJOR:-15}/bin/pg_config}
# as a newcomer would: nothing of scripts/test.sh's own cluster
unset CAMEMBERT_CLUSTER_DIR CAMEMBERT_SCRATCH_DIR CAMEMBERT_CLUSTER_CONF PGHOST PGPORT PGUSER PGDATABASE

if [ "$(id -u)" != 0 ]; then
	echo "  skipped - the quick start from a private clone needs root (the server then runs as postgres)"
	echo "quickstart: 0 passed, 0 failed"
	exit 0
fi

passed=0
failed=0
check() {
	local what=$1; shift
	if "$@"; then echo "  ok - $what"; passed=$((passed + 1))
	else echo "  FAILED - $what"; failed=$((failed + 1)); fi
}

PARENT=$(mktemp -d "${TMPDIR:-/tmp}/camembert-quickstart.XXXXXX") || exit 1   # mode 0700, root's
CLONE=$PARENT/camembert
cleanup() {
	if [ -x "$CLONE/scripts/cluster.sh" ]; then
		(cd "$CLONE" && scripts/cluster.sh destroy) >/dev/null 2>&1
		# an older cluster.sh keeps the cluster in the clone
		CAMEMBERT_CLUSTER_DIR=$CLONE/.cluster "$CLONE/scripts/cluster.sh" stop >/dev/null 2>&1
	fi
	rm -rf "$PARENT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$CLONE" &&
	tar -C "$ROOT" -cf - --exclude-vcs --exclude=./build --exclude=./.cluster \
		--exclude=./results --exclude=./tmp_check --exclude=./log --exclude='./regression.*' \
		--exclude='*.o' --exclude='*.bc' --exclude='*.so' . | tar -C "$CLONE" -xf - || exit 1
check "the clone is private: user postgres cannot read it" \
	bash -c "! runuser -u postgres -- test -r '$CLONE/camembert.control' 2>/dev/null"

echo "== bash scripts/demo.sh (in $CLONE)"
start=$SECONDS
(cd "$CLONE" && bash scripts/demo.sh) >"$PARENT/demo.log" 2>&1
rc=$?
sed 's/^/    /' "$PARENT/demo.log" | tail -n 40
echo "   ($((SECONDS - start)) s)"
check "scripts/demo.sh succeeds" test "$rc" = 0

SHAREDIR=$("$PG_CONFIG" --sharedir)
loaded=$(cd "$CLONE" && scripts/cluster.sh psql -Atc \
	"SELECT string_agg(name || '=' || path, ' ' ORDER BY name) FROM camembert_models()" 2>&1)
echo "    models: $loaded"
check "the three bundled models were loaded from $SHAREDIR/camembert/models" test "$loaded" = \
	"fr-clm=$SHAREDIR/camembert/models/fr-clm fr-mlm=$SHAREDIR/camembert/models/fr-mlm langid=$SHAREDIR/camembert/models/langid"
answers=$(cd "$CLONE" && scripts/cluster.sh psql -Atc "
	SELECT (SELECT count(*) FROM camembert_fill_mask('Le noyau <mask> gère les processus.', 'fr-mlm')),
	       camembert_classify('Die Datei existiert nicht.', 'langid'),
	       length(camembert_generate('La commande ls', 'fr-clm', max_new_tokens => 4)) > 0" 2>&1)
echo "    answers: $answers"
check "each bundled model answers (fill_mask, classify, generate)" test "$answers" = "5|de|t"

DIR=$(cd "$CLONE" && scripts/cluster.sh dir 2>/dev/null) && [ -n "$DIR" ] || DIR=$CLONE/.cluster
SCRATCH=$(dirname "$DIR")
echo "    cluster: $DIR"
check "the scratch cluster lives outside the clone, in a folder of postgres's, mode 0700" \
	bash -c "[[ '$DIR' != '$PARENT'/* ]] && [ \"\$(stat -c %U:%a '$SCRATCH')\" = postgres:700 ]"
check "the clone was not opened up (its parent is still mode 0700)" \
	test "$(stat -c %U:%a "$PARENT")" = root:700

# the cluster trusts whoever connects: only its own user may reach it (no TCP, a 0700 socket)
listening=$(cd "$CLONE" && scripts/cluster.sh psql -Atc \
	"SELECT current_setting('listen_addresses') || '|' || current_setting('unix_socket_permissions')" 2>&1)
check "the scratch cluster listens on no TCP address and its socket is 0700 ($listening)" \
	test "$listening" = "|0700"
PSQL=$("$PG_CONFIG" --bindir)/psql
PORT=$(cat "$DIR/port" 2>/dev/null)
check "another local user cannot connect, by TCP or by the socket" \
	bash -c "! runuser -u nobody -- '$PSQL' -h 127.0.0.1 -p '$PORT' -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1 &&
		! runuser -u nobody -- '$PSQL' -h '$DIR' -p '$PORT' -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1"

(cd "$CLONE" && scripts/cluster.sh stop) >/dev/null 2>&1
left=$(ps -eo pid=,args= | P="$DIR/" awk 'index($0, ENVIRON["P"])')
[ -z "$left" ] || echo "$left"
check "scripts/cluster.sh stop leaves no server running" \
	bash -c "[ -z '$left' ] && [ ! -e '$DIR/data/postmaster.pid' ]"
(cd "$CLONE" && scripts/cluster.sh destroy) >/dev/null 2>&1
check "scripts/cluster.sh destroy removes the scratch directory" test ! -e "$SCRATCH"

echo "quickstart: $passed passed, $failed failed"
[ "$failed" = 0 ]
