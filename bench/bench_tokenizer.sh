#!/bin/sh
# bench_tokenizer.sh — our tokenizer (src/core) against SentencePiece's own C++
# library (Debian libsentencepiece-dev) on the same ~10 MB of French text,
# line by line, as a user tokenizes rows.
#
#   bench/bench_tokenizer.sh            (from anywhere; needs root for apt-get
#                                        the first time)
#   MODEL=path/sentencepiece.bpe.model REPEAT=5 CORPUS_MB=10 bench/bench_tokenizer.sh
#
# It installs what it needs (idempotently), caches the corpus and the
# binaries under build/bench/, checks that the ids are identical (in
# CamemBERT id space) and prints MB/s and tokens/s side by side.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Debian's libhdf5 (src/core/tf_h5.c reads tf_model.h5)
HDF5_CFLAGS=$(pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS=$(pkg-config --libs hdf5 2>/dev/null || echo "-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5")
OUT="$ROOT/build/bench"
MODEL=${MODEL:-"$ROOT/test/golden/tokenizer_fr8k/sentencepiece.bpe.model"}
REPEAT=${REPEAT:-3}
CORPUS_MB=${CORPUS_MB:-10}
CORPUS="$OUT/corpus_fr_${CORPUS_MB}mb.txt"
PY=/usr/bin/python3
CC=${CC:-cc}
CXX=${CXX:-g++}
CFLAGS=${CFLAGS:-"-O2 -std=c11 -D_GNU_SOURCE"}
CXXFLAGS=${CXXFLAGS:-"-O2"}
mkdir -p "$OUT"

# 1. Packages (only what is missing).
missing=""
for p in manpages-fr debian-faq-fr developers-reference-fr maint-guide-fr groff-base \
	libsentencepiece-dev g++; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	if [ "$(id -u)" != 0 ]; then
		echo "need root to apt-get install:$missing" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# 2. Corpus (cached).
if [ ! -s "$CORPUS" ]; then
	"$PY" "$ROOT/bench/tokenizer/make_corpus.py" "$CORPUS" "$CORPUS_MB"
fi

# 3. Drivers: ours against src/core, the C++ one against libsentencepiece.
mkdir -p "$OUT/core"
objs=""
for c in "$ROOT"/src/core/*.c; do
	o="$OUT/core/$(basename "$c" .c).o"
	$CC $CFLAGS -I"$ROOT/src/core" $HDF5_CFLAGS -c "$c" -o "$o"
	objs="$objs $o"
done
$CC $CFLAGS -I"$ROOT/src/core" -o "$OUT/cb_driver" "$ROOT/bench/tokenizer/cb_driver.c" $objs $HDF5_LIBS -lopenblas -lm
$CXX $CXXFLAGS -o "$OUT/sp_driver" "$ROOT/bench/tokenizer/sp_driver.cc" \
	$(pkg-config --cflags --libs sentencepiece 2>/dev/null || echo -lsentencepiece)

# 4. Run both on the same text; compare ids.
echo "model: $MODEL"
echo "corpus: $CORPUS ($(wc -c <"$CORPUS") bytes, $(wc -l <"$CORPUS") lines)"
"$OUT/sp_driver" "$MODEL" "$CORPUS" "$REPEAT" "$OUT/sp_ids.bin"
"$OUT/cb_driver" "$MODEL" "$CORPUS" "$REPEAT" "$OUT/sp_ids.bin"
