#!/bin/sh
# bench_bpe_tokenizer.sh — our byte-level BPE (src/core/bytebpe.c, RoBERTa's
# tokenizer) against npm's gpt-tokenizer (GPT-2's r50k_base, the same merges:
# test/golden/roberta/tokenizer is GPT-2's vocabulary re-indexed by + 4) on the
# same ~10 MB of French text, line by line, in the same run.
#
#   bench/bench_bpe_tokenizer.sh        (from anywhere; root for apt-get / npm the first time)
#   REPEAT=5 CORPUS_MB=10 bench/bench_bpe_tokenizer.sh
#
# Checks that the ids are identical (ours - 4 = GPT-2's) line by line and
# prints MB/s and tokens/s side by side.  Corpus and binaries cached in build/bench/.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/build/bench"
DIR=${DIR:-"$ROOT/test/golden/roberta/tokenizer"}
REPEAT=${REPEAT:-4}
CORPUS_MB=${CORPUS_MB:-10}
CORPUS="$OUT/corpus_fr_${CORPUS_MB}mb.txt"
PY=/usr/bin/python3
CC=${CC:-cc}
CFLAGS=${CFLAGS:-"-O2 -std=c11 -D_GNU_SOURCE"}
NPM_PREFIX="$OUT/npm"
GPT_TOKENIZER=${GPT_TOKENIZER:-gpt-tokenizer@4.0.0}
mkdir -p "$OUT" "$NPM_PREFIX"

missing=""
for p in manpages-fr debian-faq-fr developers-reference-fr maint-guide-fr groff-base; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
	echo "installing:$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
[ -d "$NPM_PREFIX/node_modules/gpt-tokenizer" ] ||
	npm install --no-audit --no-fund --prefix "$NPM_PREFIX" "$GPT_TOKENIZER" >/dev/null

if [ ! -s "$CORPUS" ]; then
	"$PY" "$ROOT/bench/tokenizer/make_corpus.py" "$CORPUS" "$CORPUS_MB"
fi

mkdir -p "$OUT/core"
objs=""
for c in "$ROOT"/src/core/*.c; do
	o="$OUT/core/$(basename "$c" .c).o"
	$CC $CFLAGS -I"$ROOT/src/core" -c "$c" -o "$o"
	objs="$objs $o"
done
$CC $CFLAGS -I"$ROOT/src/core" -o "$OUT/bbpe_driver" "$ROOT/bench/tokenizer/bbpe_driver.c" $objs -lopenblas -lm -lpthread

echo "tokenizer: $DIR"
echo "corpus: $CORPUS ($(wc -c <"$CORPUS") bytes, $(wc -l <"$CORPUS") lines)"
# alternate the two, twice, so that load on the machine hits both alike
for round in 1 2; do
	NPM_PREFIX="$NPM_PREFIX" node "$ROOT/bench/tokenizer/bbpe_js.mjs" "$CORPUS" "$REPEAT" "$OUT/bbpe_js_ids.txt"
	"$OUT/bbpe_driver" "$DIR" "$CORPUS" "$REPEAT" "$OUT/bbpe_cb_ids.txt"
done
lines=$(wc -l <"$OUT/bbpe_cb_ids.txt")
differ=$(paste -d '\n' "$OUT/bbpe_cb_ids.txt" "$OUT/bbpe_js_ids.txt" | paste - - | awk -F '\t' '$1 != $2' | wc -l)
echo "ids: $differ of $lines lines differ"
