#!/usr/bin/env bash
# setup.sh — install what is missing (Debian 12, as root), build, install.
# The build has -Werror when WERROR=1 (scripts/test.sh sets it).
#
#   scripts/setup.sh          packages + build + install
#   scripts/setup.sh --deps   packages only
#
# Idempotent: packages already installed are not touched; apt runs only when one is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGMAJOR=${PGMAJOR:-15}

# Runtime + build: the server (with pgbench), its headers, OpenBLAS, libhdf5 (tf_model.h5).  Tests:
# IPC::Run for the TAP tests, clang and its sanitizer/fuzzer runtime for the
# fuzzers, Debian's python3 + numpy to generate the SQL fixtures from the golden (make golden);
# debhelper, dpkg-dev and pg_buildext (postgresql-server-dev-all) to build the Debian package.
PACKAGES=(
	build-essential
	"postgresql-$PGMAJOR" "postgresql-server-dev-$PGMAJOR"
	libopenblas-dev
	libhdf5-dev
	libipc-run-perl
	clang libclang-rt-dev
	python3 python3-numpy
	debhelper dpkg-dev postgresql-server-dev-all
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup.sh: missing packages (${missing[*]}); run as root or install them" >&2
		exit 1
	fi
	echo "setup.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${1:-}" = "--deps" ] && exit 0

export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PGMAJOR/bin/pg_config}
make -C "$ROOT" -s -j2 PG_CONFIG="$PG_CONFIG"
if [ "$(id -u)" = 0 ]; then
	make -C "$ROOT" -s install PG_CONFIG="$PG_CONFIG"
else
	sudo make -C "$ROOT" -s install PG_CONFIG="$PG_CONFIG"
fi
echo "setup.sh: camembert built and installed into $("$PG_CONFIG" --pkglibdir)," \
	"its bundled models into $("$PG_CONFIG" --sharedir)/camembert/models"
