#!/usr/bin/env bash
# build.sh — build hygiene and packaging metadata (scripts/test.sh, step 5).
#
#   bash test/build.sh        prints "  ok - ..." / "  FAILED - ..." lines, then
#                             "build: N passed, N failed"
#
# Checks, without installing anything:
#   - the version is in one place: the Makefile reads default_version of camembert.control and
#     compiles it into camembert_version() (in a scratch copy whose control says another
#     version), and refuses a version without its install script;
#   - the extension's sources are listed: every src/**/*.c is in the extension's list or the
#     test-only list, and no test-only file is linked into camembert.so (which must be built:
#     scripts/test.sh builds it first);
#   - -Werror only with WERROR=1: a user's newer compiler must build it;
#   - META.json, debian/changelog, debian/control and CHANGELOG.md agree with camembert.control.
#   - the fixtures are committed once each (test/golden, fuzz/corpus), and none generated.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/${PGMAJOR:-15}/bin/pg_config}
unset WERROR   # the checks below say when it is set

passed=0
failed=0
check() {
	local what=$1; shift
	if "$@"; then echo "  ok - $what"; passed=$((passed + 1))
	else echo "  FAILED - $what"; failed=$((failed + 1)); fi
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/camembert-build.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

control_version=$(sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" camembert.control)
info=$(make -s print-build PG_CONFIG="$PG_CONFIG" 2>&1)
get() { printf '%s\n' "$info" | sed -n "s/^$1=//p"; }
EXTVERSION=$(get EXTVERSION)

# --- the version
check "the Makefile's EXTVERSION ($EXTVERSION) is camembert.control's default_version ($control_version)" \
	test -n "$control_version" -a "$EXTVERSION" = "$control_version"

# A scratch copy (the make runs below change build/flags; the clone's objects stay as built)
# whose control says 9.9: camembert.o must carry "9.9" and nothing else.
V=$TMP/v
mkdir -p "$V/fuzz" && cp -r Makefile camembert.control sql src "$V"/ && cp fuzz/Makefile "$V/fuzz/" &&
	sed -i "s/^default_version.*/default_version = '9.9'/" "$V/camembert.control" &&
	cp "sql/camembert--$control_version.sql" "$V/sql/camembert--9.9.sql"
make -C "$V" src/camembert.o PG_CONFIG="$PG_CONFIG" >"$TMP/v.log" 2>&1
check "camembert_version() returns the control's version: camembert.o built with default_version '9.9' holds \"9.9\"" \
	bash -c "strings -a -n 3 '$V/src/camembert.o' | grep -qx '9.9'"
check "camembert.c holds no version literal of its own (\"$control_version\")" \
	bash -c "! grep -q '\"$control_version\"' src/camembert.c"

# -Werror only when asked
werror() { make -s -n -B -C "$V" "$@" src/camembert.o src/core/forward.o PG_CONFIG="$PG_CONFIG" 2>&1 |
	grep -cE -- '-Werror( |$).* -c -o '; }
check "make compiles without -Werror by default" test "$(werror)" = 0
check "make WERROR=1 compiles with -Werror" test "$(werror WERROR=1)" = 2
check "make unit compiles without -Werror by default, with it under WERROR=1" \
	bash -c "[ \"\$(make -s -n -B -C '$V' build/unit/core/json.o PG_CONFIG='$PG_CONFIG' | grep -cE -- '-Werror( |\$).* -c -o ')\" = 0 ] &&
		[ \"\$(make -s -n -B -C '$V' WERROR=1 build/unit/core/json.o PG_CONFIG='$PG_CONFIG' | grep -cE -- '-Werror( |\$).* -c -o ')\" = 1 ]"
check "the fuzzers compile without -Werror by default, with it under WERROR=1" \
	bash -c "[ \"\$(make -s -n -B -C '$V/fuzz' ../build/fuzz/obj/json.o | grep -cE -- '-Werror( |\$)')\" = 0 ] &&
		[ \"\$(make -s -n -B -C '$V/fuzz' WERROR=1 ../build/fuzz/obj/json.o | grep -cE -- '-Werror( |\$)')\" = 1 ]"
# an object built without -Werror is built again under WERROR=1 (else a warning slips through
# a tree built before), and not again with the same flags
make -C "$V" WERROR=1 src/camembert.o PG_CONFIG="$PG_CONFIG" >"$TMP/v2.log" 2>&1
make -C "$V" WERROR=1 src/camembert.o PG_CONFIG="$PG_CONFIG" >"$TMP/v3.log" 2>&1
check "camembert.o is compiled again when WERROR changes, not when it does not (build/flags)" \
	bash -c "grep -qE -- '-Werror( |\$).* -o src/camembert.o' '$TMP/v2.log' && ! grep -q -- ' -o src/camembert.o' '$TMP/v3.log'"

sed -i "s/^default_version.*/default_version = '9.8'/" "$V/camembert.control"
check "make refuses a default_version without its install script (sql/camembert--9.8.sql)" \
	bash -c "! make -s -C '$V' -n PG_CONFIG='$PG_CONFIG' 2>'$TMP/v98.log' >/dev/null &&
		grep -q 'camembert--9.8.sql' '$TMP/v98.log'"

# --- the sources
ext_srcs=$(get EXTENSION_SRCS)
test_srcs=$(get TEST_ONLY_SRCS)
unlisted=()
for f in src/*.c src/core/*.c; do
	case " $ext_srcs $test_srcs " in *" $f "*) ;; *) unlisted+=("$f") ;; esac
done
check "every src/**/*.c is in the Makefile's source lists${unlisted[*]:+ (not: ${unlisted[*]})}" \
	test -n "$ext_srcs" -a "${#unlisted[@]}" = 0
missing=()
for f in $ext_srcs $test_srcs; do [ -f "$f" ] || missing+=("$f"); done
check "every file of the source lists exists${missing[*]:+ (not: ${missing[*]})}" test "${#missing[@]}" = 0

# the test-only files' global symbols are not in camembert.so
if [ -f camembert.so ]; then
	nm -D --defined-only camembert.so | awk '{print $NF}' | sort -u >"$TMP/so.syms"
	for f in $test_srcs; do
		cc -std=c11 -D_GNU_SOURCE -Isrc/core -c -o "$TMP/t.o" "$f" &&
			nm -g --defined-only "$TMP/t.o" | awk '{print $NF}' | sort -u >"$TMP/t.syms"
		check "test-only $f is not linked into camembert.so ($(wc -l <"$TMP/t.syms") symbols)" \
			bash -c "[ -s '$TMP/t.syms' ] && [ -z \"\$(comm -12 '$TMP/so.syms' '$TMP/t.syms')\" ]"
	done
	check "camembert.so is the extension: it defines camembert_version and _PG_init" \
		bash -c "grep -qx camembert_version '$TMP/so.syms' && grep -qx _PG_init '$TMP/so.syms'"
else
	check "camembert.so is built (make)" false
fi

# --- the packaging metadata agree with camembert.control
check "LICENSE is the PostgreSQL License" grep -q 'Permission to use, copy, modify, and distribute this software' LICENSE
meta() { python3 -c "import json,sys; m=json.load(open('META.json')); print(eval(sys.argv[1]))" "$1" 2>/dev/null; }
semver=$control_version; [[ $semver =~ ^[0-9]+\.[0-9]+$ ]] && semver=$semver.0
check "META.json: version $semver (camembert.control's $control_version)" test "$(meta "m['version']")" = "$semver"
check "META.json: provides camembert $semver, file sql/camembert--$control_version.sql, license postgresql" \
	test "$(meta "m['provides']['camembert']['version'], m['provides']['camembert']['file'], m['license'], m['meta-spec']['version']")" = \
		"('$semver', 'sql/camembert--$control_version.sql', 'postgresql', '1.0.0')"
deb_version=$(dpkg-parsechangelog -S Version 2>/dev/null || sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
check "debian/changelog: version $deb_version is camembert.control's $control_version (or $control_version-N, $control_version+...)" \
	bash -c "[[ '$deb_version' =~ ^${control_version//./\\.}([-+~].*)?\$ ]]"
check "debian/control is debian/control.in for debian/pgversions (pg_buildext updatecontrol)" \
	bash -c "cd '$TMP' && rm -rf d && mkdir d && cp -r '$ROOT/debian' d/ && cd d &&
		pg_buildext updatecontrol >/dev/null 2>&1 && cmp -s debian/control '$ROOT/debian/control'"
check "CHANGELOG.md has a section for $control_version" grep -qE "^## ${control_version//./\\.}( |$)" CHANGELOG.md

# --- the fixtures: each file once, nothing generated from them committed
# (test/golden/copies.txt and fuzz/seeds.txt list the copies the tests need; make golden and
# make -C fuzz seeds make them, and the SQL of test/golden/make_*.py, in build/)
fixture_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then git ls-files -z -- "$@"
	else find "$@" -type f ! -path '*/__pycache__/*' -print0; fi
}
dups=$(fixture_files test/golden fuzz/corpus | xargs -0 sha256sum | sort |
	awk '$1 == h {print p; print $2} {h = $1; p = $2}' | sort -u)
check "no file of test/golden or fuzz/corpus is committed twice${dups:+: $(printf '%s\n' "$dups" | wc -l) copies, e.g. $(printf '%s\n' "$dups" | head -2 | tr '\n' ' ')}" \
	test -z "$dups"
generated=$(fixture_files test/golden | tr '\0' '\n' | grep -E '\.sql$')
check "no SQL generated from the golden is committed (make golden writes build/regress/)${generated:+: $(printf '%s\n' "$generated" | head -3 | tr '\n' ' ')}" \
	test -z "$generated"

echo "build: $passed passed, $failed failed"
[ "$failed" = 0 ]
