#!/usr/bin/env bash
# bench/accuracy.sh — every precision of the engine (float32, auto, bfloat16, int8) against
# float32 on the held-out data of the three bundled models, and against the golden
# transformers outputs; one table, a PASS/FAIL per gate (exit status 1 if one fails).
#
#   bash bench/accuracy.sh       (~4 minutes; the first run also renders the held-out text
#                                 from Debian's man pages: ~3 more minutes on an idle machine)
#
# The held-out text is not stored in the repository: models/train/build_corpus.py (the very
# script that built the training corpus) renders it again from the Debian packages it lists,
# deterministically, into build/accuracy/corpus/ (kept between runs).  Missing packages are
# named, then installed with apt-get when run as root (ACCURACY_INSTALL=0: never install,
# stop instead).  bench/README.md says why and what the figures must be.
#
# Environment:
#   ACCURACY_PRECISIONS=float32,auto,bfloat16,int8   (float32, the reference, always runs)
#   ACCURACY_PROMPTS=32      greedy-generation prompts (first 4 words of held-out lines)
#   ACCURACY_THREADS=1       OPENBLAS_NUM_THREADS of the evaluation
#   ACCURACY_INSTALL=1       0: do not apt-get missing packages (stop and name them)
#   ACCURACY_GOLDEN=DIR      golden models (default build/golden/models: the repository's copy
#                            of shared/golden/models, test/golden, assembled whole)
# Output: the table on stdout, also in build/accuracy/results/<date>.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Debian's libhdf5 (src/core/tf_h5.c reads tf_model.h5)
HDF5_CFLAGS=$(pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS=$(pkg-config --libs hdf5 2>/dev/null || echo "-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5")
OUT=$ROOT/build/accuracy
PY=/usr/bin/python3
PRECISIONS=${ACCURACY_PRECISIONS:-float32,auto,bfloat16,int8}
PROMPTS=${ACCURACY_PROMPTS:-32}
GOLDEN=${ACCURACY_GOLDEN:-$ROOT/build/golden/models}
[ -n "${ACCURACY_GOLDEN:-}" ] || sh "$ROOT/test/golden/assemble.sh"
BIN=$OUT/accuracy
START=$(date +%s)
log() { printf '[%4ds] %s\n' $(($(date +%s) - START)) "$*" >&2; }
mkdir -p "$OUT/results"

# 1. packages: the text (what build_corpus.py renders; the versions the models were built
#    from, models/README.md), groff to render it, a compiler and OpenBLAS for the engine
declare -A WANT=([manpages-fr]=4.18.1-1 [manpages-de]=4.18.1-1 [manpages-es]=4.18.1-1 [manpages]=6.03-2
	[debian-reference-fr]=2.100 [debian-faq-fr]=11.1 [groff-base]=1.22.4)
missing=()
for p in "${!WANT[@]}" python3 libopenblas-dev build-essential; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ] || [ "${ACCURACY_INSTALL:-1}" = 0 ]; then
		echo "accuracy.sh: missing Debian packages: ${missing[*]}" >&2
		echo "  (the held-out text is rendered from the man pages; install them with" >&2
		echo "   apt-get install ${missing[*]} )" >&2
		exit 1
	fi
	log "installing the missing Debian packages ${missing[*]} (apt-get; ACCURACY_INSTALL=0 to stop instead)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
versions=""
for p in $(printf '%s\n' "${!WANT[@]}" | sort); do
	v=$(dpkg-query -W -f='${Version}' "$p")
	versions+="$p=$v "
	case "$v" in
	"${WANT[$p]}"*) ;;
	*) log "note: $p is $v, the models were evaluated on ${WANT[$p]}: the held-out set may differ (the harness lines will say)" ;;
	esac
done

# 2. the held-out text (models/train/build_corpus.py, once per set of package versions)
CORPUS=$OUT/corpus
if [ ! -f "$CORPUS/stats.json" ] || [ ! -f "$CORPUS/versions.txt" ] ||
	[ "$(cat "$CORPUS/versions.txt")" != "$versions" ] ||
	[ "$ROOT/models/train/build_corpus.py" -nt "$CORPUS/stats.json" ]; then
	log "rendering the held-out text: models/train/build_corpus.py $OUT (a few minutes)"
	rm -rf "$CORPUS"
	"$PY" "$ROOT/models/train/build_corpus.py" "$OUT" 2> "$OUT/corpus.log" || {
		cat "$OUT/corpus.log" >&2
		exit 1
	}
	echo "$versions" > "$CORPUS/versions.txt"
fi

# 3. the harness (when a source is newer)
if [ ! -x "$BIN" ] ||
	[ -n "$(find "$ROOT/src/core" "$ROOT/bench/accuracy.c" "$ROOT/test/unit/support" -newer "$BIN" -name '*.[ch]' | head -1)" ]; then
	log "building bench/accuracy.c with src/core (-O2)"
	cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$ROOT/src/core" -I"$ROOT/test/unit" $HDF5_CFLAGS -o "$BIN" \
		"$ROOT/bench/accuracy.c" "$ROOT/test/unit/support/npy.c" "$ROOT"/src/core/[a-z]*.c $HDF5_LIBS -lopenblas -lm -lpthread
fi

# 4. the evaluation
log "evaluating $PRECISIONS (load $(cut -d' ' -f1 /proc/loadavg))"
RESULT=$OUT/results/$(date +%Y%m%d-%H%M%S).md
status=0
OPENBLAS_NUM_THREADS=${ACCURACY_THREADS:-1} "$BIN" --corpus "$CORPUS" --models "$ROOT/models" --golden "$GOLDEN" \
	--precisions "$PRECISIONS" --prompts "$PROMPTS" > "$RESULT" || status=$?
cat "$RESULT"
log "done (table in $RESULT)"
exit $status
