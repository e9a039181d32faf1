#!/usr/bin/env bash
# deb.sh — the Debian package: build it from a fresh copy of the clone, install it, run the
# pg_regress suite against the installed package (scripts/test.sh, step 6; as root).
#
#   bash test/deb.sh          prints "  ok - ..." / "  FAILED - ..." lines, then
#                             "deb: N passed, N failed"
#
# 1. Copies the clone's files (git ls-files: tracked and untracked-not-ignored, no build
#    outputs; a tree without git: everything but the build outputs) to a scratch folder and
#    builds the binary package there: DEB_BUILD_OPTIONS="nocheck noddebs parallel=2"
#    dpkg-buildpackage -us -uc -b (debian/rules: pg_buildext).  The package's own test stage
#    (pg_virtualenv) is skipped: step 3 runs the same tests on the installed package.
# 2. Checks the .deb: name and version (debian/changelog, camembert.control), dependencies
#    (the server, OpenBLAS), its files (library, control file, every install and update
#    script, the bundled models, copyright) and nothing of the tests.
# 3. Installs it with apt-get into the system PostgreSQL (PG_CONFIG's; the extension's files
#    installed there before are set aside first), checks dpkg owns what the server loads, starts a scratch cluster
#    (scripts/cluster.sh, shared_preload_libraries = 'camembert') and runs the pg_regress
#    tests of the copy against it (make installcheck: make golden first makes their fixtures
#    in the copy's build/ from its test/golden, with Debian's python3-numpy).
# 4. Purges the package (checks its files are gone) and puts back the extension's files that
#    were installed before (scripts/test.sh installs the clone's build first: the rest of the
#    suite expects it), as they were; also when interrupted.
# Skipped unless run as root (it installs packages); fails if dpkg-buildpackage, debhelper or
# pg_buildext (postgresql-server-dev-all) is missing (scripts/setup.sh installs them).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PGMAJOR=${PGMAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PGMAJOR/bin/pg_config}
PKG=postgresql-$PGMAJOR-camembert

if [ "$(id -u)" != 0 ]; then
	echo "  skipped - the Debian package test installs a package: it needs root"
	echo "deb: 0 passed, 0 failed"
	exit 0
fi

passed=0
failed=0
check() {
	local what=$1; shift
	if "$@"; then echo "  ok - $what"; passed=$((passed + 1))
	else echo "  FAILED - $what"; failed=$((failed + 1)); fi
}
finish() { echo "deb: $passed passed, $failed failed"; [ "$failed" = 0 ]; exit; }

# the package installs where the system's server looks: PG_CONFIG must be that server's
if [ "$PG_CONFIG" != "/usr/lib/postgresql/$PGMAJOR/bin/pg_config" ]; then
	check "PG_CONFIG is the system's PostgreSQL $PGMAJOR (not $PG_CONFIG)" false
	finish
fi

SCRATCH=$(scripts/scratch.sh) || { check "scratch directory" false; finish; }
WORK=$SCRATCH/deb            # written by root, read by postgres (the fixtures): mode 0755
export CAMEMBERT_CLUSTER_DIR=$SCRATCH/deb-cluster
unset CAMEMBERT_CLUSTER_CONF PGHOST PGPORT PGUSER PGDATABASE
LOG=$ROOT/build/test-logs
mkdir -p "$LOG"

# the extension's files in the system PostgreSQL (make install's), kept aside to be put back
libdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
ext_files() {
	compgen -G "$libdir/camembert.so"; compgen -G "$libdir/bitcode/camembert*"
	compgen -G "$sharedir/extension/camembert*"; compgen -G "$sharedir/camembert"
}
BACKUP=$SCRATCH/deb-installed-before.tar
had_build=0
installed=0
restore() {
	[ "$had_build" = 1 ] || return 0
	tar -C / -xpf "$BACKUP" && rm -f "$BACKUP" && had_build=2
}
cleanup() {
	scripts/cluster.sh destroy >/dev/null 2>&1
	if [ "$installed" = 1 ] || dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q installed; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$PKG" >>"$LOG/deb-purge.log" 2>&1
	fi
	restore || echo "  (could not put back the files of $BACKUP)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok installed'; then
	check "$PKG is not installed already (the test would remove it)" false
	trap - EXIT; finish
fi
for tool in dpkg-buildpackage dh pg_buildext; do
	command -v "$tool" >/dev/null || { check "$tool is installed (scripts/setup.sh)" false; trap - EXIT; finish; }
done

# --- 1. build from a fresh copy
rm -rf "$WORK" && mkdir -p "$WORK/camembert" && chmod 0755 "$WORK" "$WORK/camembert" || { check "$WORK" false; finish; }
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
		(cd "$ROOT" && xargs -0 stat --printf '%n\0' 2>/dev/null) |   # not files deleted meanwhile
		tar -C "$ROOT" --null -T - -cf - | tar -C "$WORK/camembert" -xf -
else
	tar -C "$ROOT" -cf - --exclude=./build --exclude=./.cluster --exclude=./results \
		--exclude=./tmp_check --exclude=./log --exclude='./regression.*' \
		--exclude='*.o' --exclude='*.bc' --exclude='*.so' . | tar -C "$WORK/camembert" -xf -
fi
chmod -R a+rX "$WORK/camembert"   # the server reads the fixtures, whatever the clone's umask
check "the copy has no build outputs" \
	bash -c "[ -f '$WORK/camembert/debian/rules' ] && [ -z \"\$(find '$WORK/camembert' -name '*.o' -o -name '*.so' | head -1)\" ]"

start=$SECONDS
(cd "$WORK/camembert" && env -u WERROR DEB_BUILD_OPTIONS="nocheck noddebs parallel=2" DEB_BUILD_PROFILES=nocheck \
	dpkg-buildpackage -us -uc -b) >"$LOG/deb-build.log" 2>&1
rc=$?
control_version=$(sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" camembert.control)
version=$(cd "$WORK/camembert" && dpkg-parsechangelog -S Version)
DEB=$(ls "$WORK"/"${PKG}_${version}"_*.deb 2>/dev/null | head -1)
check "dpkg-buildpackage builds $PKG $version ($((SECONDS - start)) s)" test "$rc" = 0 -a -n "$DEB"
if [ "$rc" != 0 ] || [ -z "$DEB" ]; then
	grep -vE '^(gcc|clang|/usr/bin/clang|g\+\+) ' "$LOG/deb-build.log" | tail -30; finish
fi

# --- 2. what the package holds
field() { dpkg-deb -f "$DEB" "$1"; }
check "the package: $(field Package) $(field Version) $(field Architecture)" \
	test "$(field Package)" = "$PKG" -a "$(field Version)" = "$version"
check "its version ($version) is camembert.control's ($control_version)" \
	bash -c "[[ '$version' =~ ^${control_version//./\\.}([-+~].*)?\$ ]]"
check "it depends on the server, OpenBLAS and libhdf5: $(field Depends)" \
	bash -c "grep -qE '(^|, )postgresql-$PGMAJOR( |,|\$)' <<<'$(field Depends)' && grep -q libopenblas <<<'$(field Depends)' && grep -q libhdf5 <<<'$(field Depends)'"
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' >"$WORK/files"
share=/usr/share/postgresql/$PGMAJOR
want=("/usr/lib/postgresql/$PGMAJOR/lib/camembert.so" "$share/extension/camembert.control"
	"/usr/share/doc/$PKG/copyright")
for f in sql/camembert--*.sql; do want+=("$share/extension/$(basename "$f")"); done
for m in models/*/config.json; do want+=("$share/camembert/$m"); done
absent=()
for f in "${want[@]}"; do grep -qxF "$f" "$WORK/files" || absent+=("$f"); done
check "it holds the library, the control file, ${#want[@]} files in all (every install and update script, the bundled models)${absent[*]:+; absent: ${absent[*]}}" \
	test "${#absent[@]}" = 0
check "it holds nothing of the tests (pg_regress scripts, golden fixtures)" \
	bash -c "! grep -qE '/extension/(extension|tasks|update|tokenizer|inference|stats|bad_input)\\.sql\$|golden|/test/' '$WORK/files'"
check "its camembert.control is the clone's" \
	bash -c "dpkg-deb --fsys-tarfile '$DEB' | tar -xOf - '.$share/extension/camembert.control' | cmp -s - camembert.control"

# --- 3. installed, the regression suite against it
# what make install put there, kept aside and removed (the package must not find it)
mapfile -t before < <(ext_files)
if [ "${#before[@]}" -gt 0 ]; then
	tar -C / -cpf "$BACKUP" "${before[@]#/}" && had_build=1 && rm -rf "${before[@]}" ||
		{ check "the installed extension's files are kept aside ($BACKUP)" false; finish; }
fi
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$DEB" >"$LOG/deb-install.log" 2>&1
rc=$?
check "apt-get installs it" test "$rc" = 0
if [ "$rc" != 0 ]; then tail -20 "$LOG/deb-install.log"; finish; fi
check "dpkg owns what the server loads (camembert.so, camembert.control, the $control_version script)" \
	bash -c "for f in /usr/lib/postgresql/$PGMAJOR/lib/camembert.so $share/extension/camembert.control \
		$share/extension/camembert--$control_version.sql; do
		[ \"\$(dpkg -S \"\$f\" 2>/dev/null | cut -d: -f1)\" = '$PKG' ] || exit 1; done"

scripts/cluster.sh destroy >/dev/null 2>&1
if scripts/cluster.sh start >"$LOG/deb-cluster.log" 2>&1; then
	eval "$(scripts/cluster.sh env)"
	make -s -C "$WORK/camembert" installcheck PG_CONFIG="$PG_CONFIG" >"$LOG/deb-regress.log" 2>&1
	summary=$(grep -E 'tests? passed|tests? failed' "$LOG/deb-regress.log" | head -1)
	# in pg_regress's database, which it leaves with the extension created
	version_sql=$(scripts/cluster.sh psql -d contrib_regression -Atc "SELECT camembert_version()" 2>&1)
	scripts/cluster.sh stop
	check "pg_regress against the installed package: ${summary//[= ]/ }" \
		bash -c "[[ '$summary' =~ All\ [0-9]+\ tests\ passed ]]"
	[[ $summary =~ All\ [0-9]+\ tests\ passed ]] || { grep -E '^(not ok|test )' "$LOG/deb-regress.log" | head;
		head -60 "$WORK/camembert/regression.diffs" 2>/dev/null; }
	check "camembert_version() of the installed library is $control_version${version_sql:+ (it says $version_sql)}" \
		test "$version_sql" = "$control_version"
else
	check "a scratch cluster starts with the installed package preloaded" false
	tail -20 "$LOG/deb-cluster.log"
fi
scripts/cluster.sh destroy >/dev/null 2>&1

# --- 4. purge
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$PKG" >"$LOG/deb-purge.log" 2>&1
rc=$?
installed=0
check "apt-get purge removes it, and its files" \
	bash -c "[ $rc = 0 ] && ! dpkg-query -W -f='\${Status}' '$PKG' 2>/dev/null | grep -q installed &&
		[ ! -e /usr/lib/postgresql/$PGMAJOR/lib/camembert.so ] && [ ! -e $share/extension/camembert.control ] &&
		[ ! -e $share/camembert ]"
cleanup; trap - EXIT
if [ "$had_build" != 0 ]; then
	check "the files installed before (${#before[@]}: the clone's build) are back" \
		bash -c "for f in ${before[*]}; do [ -e \"\$f\" ] || exit 1; done"
fi
finish
