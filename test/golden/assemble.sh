#!/bin/sh
# test/golden/assemble.sh [DEST] — build/golden/, the complete golden tree the tests read.
#
# test/golden keeps each file once: test/golden/copies.txt lists the files several golden
# directories share (the tokenizer of every French model ...).  A model directory must be
# complete on disk for camembert_load: the extension confines a model's files to its
# directory, and a symbolic link out of it is refused, on purpose.  So this script copies
# test/golden's directories to DEST (default: <repository>/build/golden) and writes there each
# copy of copies.txt from its single file, checking that it is byte for byte the reference's
# (its sha256).  Nothing to do when DEST is up to date (nothing in test/golden newer than it);
# else the tree is assembled aside and renamed into place: a reader never sees half of one.
#
# make runs it (make golden: before make unit, installcheck and tapcheck); each TAP script runs
# it too (a copy of the clone without build/ must work).  Needs only sh and coreutils.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=$ROOT/test/golden
DEST=${1:-$ROOT/build/golden}
STAMP=$DEST/.assembled
me=test/golden/assemble.sh

if [ -f "$STAMP" ] && [ -z "$(find "$SRC" -newer "$STAMP" -print | head -n 1)" ]; then
	exit 0
fi

mkdir -p "$(dirname "$DEST")"
TMP=$(mktemp -d "$DEST.tmp.XXXXXX")
OLD=
trap 'rm -rf "$TMP" "$TMP.sums" ${OLD:+"$OLD"}' EXIT
trap 'exit 1' HUP INT TERM

# the directories (models/, roberta/, xlmr/, tokenizer_fr8k/, tf_damaged/), as committed
for d in "$SRC"/*; do
	[ -d "$d" ] || continue
	case ${d##*/} in __pycache__) continue ;; esac
	cp -R "$d" "$TMP/"
done

# the copies, from their single file
n=0
while read -r copy from sum rest; do
	case $copy in '' | '#'*) continue ;; esac
	if [ -z "$sum" ] || [ -n "$rest" ]; then
		echo "$me: copies.txt: bad line: $copy $from $sum $rest" >&2; exit 1
	fi
	case "$copy/$from" in /* | *..*)
		echo "$me: copies.txt: $copy, $from: paths inside test/golden only" >&2; exit 1 ;;
	esac
	if [ -e "$SRC/$copy" ]; then
		echo "$me: test/golden/$copy is committed and listed in copies.txt: keep one" >&2; exit 1
	fi
	if [ ! -f "$SRC/$from" ]; then
		echo "$me: test/golden/$from (the single copy of $copy) is missing" >&2; exit 1
	fi
	[ -d "$TMP/${copy%/*}" ] || mkdir -p "$TMP/${copy%/*}"
	cp "$SRC/$from" "$TMP/$copy"
	echo "$sum  $copy" >>"$TMP.sums"
	n=$((n + 1))
done <"$SRC/copies.txt"
[ "$n" -gt 0 ] || { echo "$me: copies.txt lists no copy" >&2; exit 1; }
# every copy is the reference's file (one sha256sum for all: this runs on busy machines)
if ! (cd "$TMP" && sha256sum --check --quiet --strict "$TMP.sums" >&2); then
	echo "$me: a file of test/golden is not the one of copies.txt's sha256 (above)" >&2; exit 1
fi

# the server (the postgres user) reads it, whatever the umask
chmod -R a+rX "$TMP"
touch "$TMP/.assembled"

if [ -d "$DEST" ]; then
	OLD=$(mktemp -d "$DEST.old.XXXXXX")
	mv "$DEST" "$OLD/" 2>/dev/null || true
fi
# another run may have put its own in place meanwhile: then that one is used
mv -T "$TMP" "$DEST" 2>/dev/null || [ -f "$STAMP" ] ||
	{ echo "$me: cannot rename $TMP to $DEST" >&2; exit 1; }
