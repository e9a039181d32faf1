#!/usr/bin/env bash
# bench/run.sh — the engine at each precision (float32, bfloat16, int8; auto on an F16 copy of
# the weights) against PyTorch eager and ONNX Runtime on a camembert-base-shaped model, the SQL
# path end to end, and the memory of backends sharing the model; one table at the end.
#
#   bash bench/run.sh                 (as root the first time: it may apt-get python3-torch,
#                                      and npm-installs onnxruntime-node into build/)
#
# Environment:
#   BENCH_SQL=0              skip the PostgreSQL part (no make install, no cluster)
#   BENCH_PRECISIONS="bfloat16 int8 auto-f16"
#                            our engine's images besides float32 (which always runs): a
#                            cb_precision name on the F32 model, or auto-f16 (auto on an F16
#                            copy of it); "" for float32 alone
#   BENCH_SQL_PRECISIONS     the same list for the SQL part (default: BENCH_PRECISIONS); each is
#                            loaded with camembert_load(..., dtype => ...) and skipped if the
#                            installed extension refuses it
#   BENCH_SQL_INSTALL=0      time the extension already installed (for PG_CONFIG) instead of
#                            building and installing this tree's (scripts/setup.sh)
#   BENCH_ORT=0              no ONNX Runtime (otherwise: npm ci --ignore-scripts of
#                            bench/ort/package-lock.json into build/bench/engine/ort)
#   BENCH_SECONDS=2          time spent timing each case (at least 3 passes)
#   BENCH_ROWS=2000          rows of ~40 tokens for the SQL part
#   BENCH_THREADS="1 2"      thread counts for the engine / PyTorch part
#   BENCH_CORE_DIR=DIR       time the engine built from another copy of src/core (e.g. the last
#                            commit's: mkdir /tmp/orig && git archive HEAD src/core | tar -x -C /tmp/orig,
#                            then BENCH_CORE_DIR=/tmp/orig/src/core); implies BENCH_SQL=0 (the SQL
#                            part runs the installed extension, built from this tree)
#   BENCH_OPENBLAS_CORETYPE  OpenBLAS kernel family for every process of the run (ours, PyTorch,
#                            the server); default: SkylakeX when the CPU has AVX-512 but this
#                            OpenBLAS picks an AVX2 kernel for it (OpenBLAS 0.3.21 does not know
#                            Zen 4/5), so that PyTorch's matrix products get the best OpenBLAS
#                            can do here; "default" leaves OpenBLAS's own choice.
#
# Everything it builds is cached under build/bench/engine/ (never committed): the model
# (bench/make_base_shaped_model.py), its F16 copy and ONNX export (bench/bench.py f16copy,
# onnx), onnxruntime-node, the driver (bench/bench_engine.c), inputs, texts.
# Results of each run: build/bench/engine/results/<date>/ (raw lines + table.md).
# The PostgreSQL part installs the extension (scripts/setup.sh) and runs its own scratch
# cluster in build/bench/cluster (scripts/cluster.sh with CAMEMBERT_CLUSTER_DIR; created
# afresh each run, stopped at the end).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Debian's libhdf5 (src/core/tf_h5.c reads tf_model.h5)
HDF5_CFLAGS=$(pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS=$(pkg-config --libs hdf5 2>/dev/null || echo "-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5")
OUT=$ROOT/build/bench/engine
PY=/usr/bin/python3
SECS=${BENCH_SECONDS:-2}
ROWS=${BENCH_ROWS:-2000}
THREADS=${BENCH_THREADS:-"1 2"}
MODEL=$OUT/base_cls
MODEL16=$OUT/base_cls_f16
ONNX=$OUT/base_cls.onnx
ORT_DIR=$OUT/ort
PRECISIONS=${BENCH_PRECISIONS-"bfloat16 int8 auto-f16"}
SQL_PRECISIONS=${BENCH_SQL_PRECISIONS-$PRECISIONS}
CORE_DIR=$ROOT/src/core
BIN=$OUT/bench_engine
LIB=$OUT/libcbbench.so
if [ -n "${BENCH_CORE_DIR:-}" ]; then
	CORE_DIR=$(cd "$BENCH_CORE_DIR" && pwd)
	BIN=$OUT/alt/bench_engine
	LIB=$OUT/alt/libcbbench.so
	BENCH_SQL=0
	rm -rf "$OUT/alt"
	mkdir -p "$OUT/alt"
fi
# a core from before cb_precision (BENCH_CORE_DIR) times float32 only, loaded as it was
F32_PREC=float32
if ! grep -q CB_PRECISION_NAMES "$CORE_DIR/model.h"; then
	F32_PREC=
	PRECISIONS=
fi
# the model directory and cb_precision of an engine label
label_dir() { if [ "$1" = auto-f16 ]; then echo "$MODEL16"; else echo "$MODEL"; fi; }
label_prec() { if [ "$1" = auto-f16 ]; then echo auto; else echo "$1"; fi; }
RES=$OUT/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" "$RES"
START=$(date +%s)

log() { printf '[%4ds] %s\n' $(($(date +%s) - START)) "$*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# 1. packages: Debian's PyTorch and numpy for /usr/bin/python3, OpenBLAS, a compiler
missing=()
for p in python3-torch python3-numpy libopenblas-dev build-essential; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "run.sh: missing packages ${missing[*]}; run as root" >&2; exit 1; }
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. the model (once)
if [ ! -f "$MODEL/model.safetensors" ] || [ "$ROOT/bench/make_base_shaped_model.py" -nt "$MODEL/model.safetensors" ]; then
	log "writing the camembert-base-shaped model"
	"$PY" "$ROOT/bench/make_base_shaped_model.py" "$MODEL" >&2
fi

case " $PRECISIONS $SQL_PRECISIONS " in
*" auto-f16 "*)
	if [ ! -f "$MODEL16/model.safetensors" ] || [ "$MODEL/model.safetensors" -nt "$MODEL16/model.safetensors" ]; then
		log "writing its F16 copy (bench.py f16copy)"
		"$PY" "$ROOT/bench/bench.py" f16copy "$MODEL" "$MODEL16"
	fi
	;;
esac

# 2b. ONNX Runtime: onnxruntime-node (its CPU libraries are in the npm package; the install
#     script, which only fetches GPU add-ons, is not run) and the ONNX export of the model
ORT_ARGS=()
if [ "${BENCH_ORT:-1}" != 0 ]; then
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		if [ "$(id -u)" = 0 ]; then
			log "installing Debian's nodejs and npm (for ONNX Runtime; BENCH_ORT=0 to skip it)"
			DEBIAN_FRONTEND=noninteractive apt-get update -qq
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
		else
			log "no node/npm: ONNX Runtime skipped (run as root once, or BENCH_ORT=0)"
			BENCH_ORT=0
		fi
	fi
fi
if [ "${BENCH_ORT:-1}" != 0 ]; then
	if [ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] ||
		! cmp -s "$ROOT/bench/ort/package-lock.json" "$ORT_DIR/package-lock.json"; then
		log "npm ci --ignore-scripts onnxruntime-node into $ORT_DIR"
		rm -rf "$ORT_DIR"
		mkdir -p "$ORT_DIR"
		cp "$ROOT/bench/ort/package.json" "$ROOT/bench/ort/package-lock.json" "$ORT_DIR/"
		(cd "$ORT_DIR" && npm ci --ignore-scripts --no-audit --no-fund >&2)
	fi
	if [ ! -f "$ONNX" ] || [ "$MODEL/model.safetensors" -nt "$ONNX" ]; then
		log "exporting the PyTorch model to ONNX (bench.py onnx)"
		"$PY" "$ROOT/bench/bench.py" onnx "$MODEL" "$ONNX"
	fi
	ORT_ARGS=(--ort "$ROOT/bench/ort/ort_bench.js" "$ONNX" "$ORT_DIR/node_modules")
fi

# 3. the driver and the library (when a source is newer), the inputs, the texts
if [ ! -x "$BIN" ] || [ ! -f "$LIB" ] ||
	[ -n "$(find "$CORE_DIR" "$ROOT/bench" -maxdepth 1 -newer "$LIB" -name '*.[ch]' | head -1)" ]; then
	log "building bench_engine and libcbbench.so from $CORE_DIR (-O2, as PGXS builds the extension)"
	cc -O2 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -I"$CORE_DIR" $HDF5_CFLAGS -o "$BIN" \
		"$ROOT/bench/bench_engine.c" "$CORE_DIR"/[a-z]*.c $HDF5_LIBS -lopenblas -lm -lpthread
	cc -O2 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -fPIC -shared -I"$CORE_DIR" $HDF5_CFLAGS -o "$LIB" \
		"$ROOT/bench/bench_lib.c" "$CORE_DIR"/[a-z]*.c $HDF5_LIBS -lopenblas -lm -lpthread
fi
"$PY" "$ROOT/bench/bench.py" cases "$OUT/cases.bin"
[ -f "$OUT/texts_$ROWS.txt" ] || "$PY" "$ROOT/bench/bench.py" texts "$OUT/texts_$ROWS.txt" "$ROWS"

# 4. OpenBLAS's kernel family for the whole run
CORE=$("$PY" - <<'EOF'
import ctypes
lib = ctypes.CDLL("libopenblas.so.0")
lib.openblas_get_corename.restype = ctypes.c_char_p
print(lib.openblas_get_corename().decode())
EOF
)
CORETYPE=${BENCH_OPENBLAS_CORETYPE:-}
if [ -z "$CORETYPE" ]; then
	CORETYPE=default
	if grep -qw avx512f /proc/cpuinfo && [[ "$CORE" =~ ^(Haswell|Zen)$ ]]; then
		CORETYPE=SkylakeX
	fi
fi
if [ "$CORETYPE" != default ]; then
	export OPENBLAS_CORETYPE=$CORETYPE
fi
{
	echo "cpu $(lscpu | sed -n 's/^Model name: *//p' | tr ' ' '_') cores $(nproc)"
	echo "openblas_detected $CORE openblas_used ${OPENBLAS_CORETYPE:-$CORE}"
	echo "kernels $(OPENBLAS_NUM_THREADS=1 "$BIN" --isa | sed -n 's/^isa //p')"
	echo "core $CORE_DIR"
} > "$RES/machine.txt"
echo "$(load1)" > "$RES/load.txt"
log "load $(load1); OpenBLAS core $CORE, used ${OPENBLAS_CORETYPE:-$CORE}; results in $RES"

# 5. engine and PyTorch, per thread count
for t in $THREADS; do
	export OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t
	log "threads $t: sgemm peak"
	"$BIN" --sgemm 2048 3072 768 5 > "$RES/sgemm_t$t.txt"
	# PyTorch under both OpenMP wait policies, and each side's best counts: spinning
	# OpenMP threads can starve OpenBLAS's on 2 cores (PyTorch at 2 threads was then 5 to
	# 20 times slower than at 1), while passive waiting made PyTorch at 1 thread ~2x slower
	# (ONNX Runtime likewise: its intra-op threads spin in the ACTIVE run, not in the PASSIVE one)
	engines=(--engine "float32=$MODEL:$F32_PREC")
	for p in $PRECISIONS; do
		engines+=(--engine "$p=$(label_dir "$p"):$(label_prec "$p")")
	done
	for policy in ACTIVE PASSIVE; do
		spin=()
		if [ ${#ORT_ARGS[@]} -gt 0 ]; then
			spin=("${ORT_ARGS[@]}" "$([ $policy = ACTIVE ] && echo 1 || echo 0)")
		fi
		log "threads $t: engine (float32 $PRECISIONS), PyTorch${spin:+, ONNX Runtime}, alternated, OMP_WAIT_POLICY=$policy ($(load1))"
		OMP_WAIT_POLICY=$policy "$PY" "$ROOT/bench/bench.py" compare "$MODEL" "$OUT/cases.bin" "$LIB" "$t" "$SECS" \
			"${engines[@]}" "${spin[@]}" > "$RES/compare_t${t}_$policy.txt"
	done
	# our engine alone in its own process (no PyTorch pass between ours): the same shapes
	log "threads $t: engine alone, float32 $PRECISIONS ($(load1))"
	for p in float32 $PRECISIONS; do
		file=$RES/alone_t${t}_$p.txt
		prec=(--precision "$(label_prec "$p")")
		if [ $p = float32 ]; then
			file=$RES/alone_t$t.txt
			[ -n "$F32_PREC" ] || prec=()
		fi
		for shape in "1 16 20" "1 64 10" "1 128 6" "1 512 4" "8 64 4" "32 64 3"; do
			# shellcheck disable=SC2086
			"$BIN" "${prec[@]}" "$(label_dir "$p")" $shape 2>/dev/null | grep '^batch' >> "$file"
		done
	done
	"$BIN" --sgemm 2048 3072 768 5 >> "$RES/sgemm_t$t.txt"	# the peak again: the best of both counts
done
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# 6. PostgreSQL: rows/s, SQL overhead, memory of 8 backends
if [ "${BENCH_SQL:-1}" != 0 ]; then
	if [ "${BENCH_SQL_INSTALL:-1}" != 0 ]; then
		log "make install (scripts/setup.sh)"
		bash "$ROOT/scripts/setup.sh" >&2
	fi
	export CAMEMBERT_CLUSTER_DIR=$OUT/../cluster
	trap 'bash "$ROOT/scripts/cluster.sh" stop || true' EXIT
	# a fresh cluster each run (its port, chosen at initdb, may have been taken since)
	bash "$ROOT/scripts/cluster.sh" destroy >/dev/null 2>&1 || true
	bash "$ROOT/scripts/cluster.sh" start
	eval "$(bash "$ROOT/scripts/cluster.sh" env)"
	# the engine on the same texts, one at a time: half before the SQL runs, half after, so
	# that a change of the machine's load during the run weighs on both sides alike
	"$PY" "$ROOT/bench/bench.py" split "$OUT/texts_$ROWS.txt" "$OUT/texts_a.txt" "$OUT/texts_b.txt"
	sh "$ROOT/test/golden/assemble.sh"   # build/golden/models/cls3, the tiny model, whole
	"$PY" "$ROOT/bench/bench.py" sqlsetup "$MODEL" "$OUT/texts_$ROWS.txt" > "$RES/sql.txt"
	log "engine on the first half of the texts, one at a time ($(load1))"
	"$BIN" --texts "$MODEL" "$OUT/texts_a.txt" > "$RES/texts.txt"
	log "SQL: $ROWS rows, no parallel worker ($(load1))"
	"$PY" "$ROOT/bench/bench.py" sql 0 >> "$RES/sql.txt"
	log "engine on the second half of the texts ($(load1))"
	"$BIN" --texts "$MODEL" "$OUT/texts_b.txt" >> "$RES/texts.txt"
	log "SQL: $ROWS rows, max_parallel_workers_per_gather 2 ($(load1))"
	"$PY" "$ROOT/bench/bench.py" sql 2 >> "$RES/sql.txt"
	# the PostgreSQL layer's own cost per row, measured where the forward pass is cheap
	log "SQL overhead with the tiny model build/golden/models/cls3 (test/golden's, assembled)"
	"$BIN" --texts "$ROOT/build/golden/models/cls3" "$OUT/texts_$ROWS.txt" > "$RES/texts_tiny.txt"
	"$PY" "$ROOT/bench/bench.py" sql 0 bench_tiny >> "$RES/sql.txt"
	"$BIN" --texts "$ROOT/build/golden/models/cls3" "$OUT/texts_$ROWS.txt" >> "$RES/texts_tiny.txt"
	# every other precision: camembert_load(..., dtype => ...) if the installed extension
	# takes it, its shared memory, and the rows/s with no parallel worker; then unloaded (the
	# memory of 8 backends below is float32's)
	for p in $SQL_PRECISIONS; do
		name=bench_base_${p//-/_}
		log "SQL, $p: camembert_load($name, dtype => $(label_prec "$p"))"
		"$PY" "$ROOT/bench/bench.py" sqlload "$name" "$(label_dir "$p")" "$(label_prec "$p")" >> "$RES/sql.txt"
		if tail -1 "$RES/sql.txt" | grep -q " loaded "; then
			log "SQL, $p: $ROWS rows, no parallel worker ($(load1))"
			"$PY" "$ROOT/bench/bench.py" sql 0 "$name" >> "$RES/sql.txt"
			psql -X -q -At -d postgres -c "SELECT camembert_unload('$name')" >/dev/null
		fi
	done
	log "memory of 8 backends"
	"$PY" "$ROOT/bench/bench.py" memory 8 > "$RES/memory.txt"
fi

echo "$(load1)" >> "$RES/load.txt"
log "done"
"$PY" "$ROOT/bench/bench.py" report "$RES" | tee "$RES/table.md"
