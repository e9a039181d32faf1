#!/usr/bin/env bash
# scratch.sh — where this clone keeps what the server must reach: the scratch clusters, and
# the copy of the test files the test suite runs from.
#
#   scripts/scratch.sh            print the directory, creating it if needed
#   . scripts/scratch.sh          (bash) defines camembert_scratch [--create], which prints it
#
# As root the server runs as the 'postgres' system user, which must never need to read the
# clone (a clone in /root is mode 0700, and it should stay so).  The directory is then
# /var/tmp/camembert-<hash of the clone's path>: one per clone, outside it, owned by postgres,
# mode 0700.  Whatever is found there under that name is refused unless it is exactly that
# (not a symbolic link, no other owner, no wider mode).  CAMEMBERT_SCRATCH_DIR chooses another
# path (same rules).  As another user the server runs as that user: the clone's build/ folder.

camembert_scratch() {
	local root dir
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
	if [ "$(id -u)" != 0 ]; then
		dir=${CAMEMBERT_SCRATCH_DIR:-$root/build}
		if [ "${1:-}" = --create ]; then mkdir -p "$dir" || return 1; fi
		echo "$dir"
		return
	fi
	dir=${CAMEMBERT_SCRATCH_DIR:-/var/tmp/camembert-$(printf '%s' "$root" | sha256sum | cut -c1-16)}
	if [ "${1:-}" = --create ] && [ ! -e "$dir" ] && [ ! -L "$dir" ]; then
		# no -p: if anything appeared there meanwhile, mkdir fails
		mkdir -m 0700 "$dir" && chown postgres: "$dir" || return 1
	fi
	if [ -e "$dir" ] || [ -L "$dir" ]; then
		if [ -L "$dir" ] || [ ! -d "$dir" ] || [ "$(stat -c %U:%a "$dir")" != postgres:700 ]; then
			echo "scratch.sh: $dir is not a directory owned by postgres with mode 0700;" \
				"remove it, or choose another path with CAMEMBERT_SCRATCH_DIR" >&2
			return 1
		fi
		if ! (cd / && runuser -u postgres -- test -w "$dir" -a -x "$dir"); then
			echo "scratch.sh: user postgres cannot reach $dir; choose another path with CAMEMBERT_SCRATCH_DIR" >&2
			return 1
		fi
	fi
	echo "$dir"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	camembert_scratch --create
fi
