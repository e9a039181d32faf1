#!/bin/sh
# crosscheck.sh [N_STRINGS] — differential test of our tokenizer against
# Debian's libsentencepiece on random text, for the golden model and for
# small models trained here (identity normalization, user-defined / control
# symbols, no dummy prefix, UNUSED pieces).  Run bench/bench_tokenizer.sh
# first (it installs the packages, makes the corpus and builds build/bench/core).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/build/bench"
N=${1:-30000}
CORPUS=$(ls "$OUT"/corpus_fr_*mb.txt | head -1)
g++ -O2 -I"$ROOT/src/core" -o "$OUT/crosscheck" "$ROOT/bench/tokenizer/crosscheck.cc" "$OUT"/core/*.o \
	-lsentencepiece $(pkg-config --libs hdf5) -lopenblas -lm
if [ ! -s "$OUT/models/unused.model" ]; then
	head -c 300000 "$CORPUS" >"$OUT/small_corpus.txt"
	/usr/bin/python3 "$ROOT/bench/tokenizer/make_test_models.py" "$OUT/small_corpus.txt" "$OUT/models"
fi
status=0
for m in "$ROOT/test/golden/tokenizer_fr8k/sentencepiece.bpe.model" "$OUT"/models/*.model; do
	"$OUT/crosscheck" "$m" "$N" 1 || status=1
done
exit $status
