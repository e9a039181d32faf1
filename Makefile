# camembert — PGXS build.
#
#   make                 build the extension (camembert.so); WERROR=1 makes warnings errors
#                        (scripts/test.sh and CI set it; a user's newer compiler may warn more)
#   make install         install it into the PostgreSQL found by PG_CONFIG, with the bundled
#                        models (models/*/) in $(pg_config --sharedir)/camembert/models/
#   make unit            build and run the C unit tests of the pure core (ASan+UBSan)
#   make installcheck    run the pg_regress tests against a running server
#                        (scripts/cluster.sh sets PGHOST/PGPORT for the scratch cluster)
#   make tapcheck        run the TAP tests (t/*.pl), each with its own servers (not as root)
#   make golden          assemble build/golden/ and generate build/regress/*.sql, the fixtures the
#                        tests read, from test/golden (make unit, installcheck, tapcheck run it)
#   make fuzz            build the libFuzzer targets (clang)
#
# The pure C core lives in src/core and never includes a PostgreSQL header;
# the PostgreSQL layer lives in src/*.c.

EXTENSION = camembert
MODULE_big = camembert
PGFILEDESC = "camembert - CamemBERT inference inside PostgreSQL"

# The version, in one place: default_version of camembert.control.  camembert_version()
# returns it (-DCAMEMBERT_VERSION); its install script sql/camembert--$(EXTVERSION).sql must exist.
# (META.json and debian/changelog carry it too: test/build.sh checks that they agree.)
CAMEMBERT_DIR := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
EXTVERSION := $(shell sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" \
	$(CAMEMBERT_DIR)camembert.control)
ifeq ($(EXTVERSION),)
$(error camembert.control has no default_version)
endif
ifeq ($(wildcard $(CAMEMBERT_DIR)sql/camembert--$(EXTVERSION).sql),)
$(error sql/camembert--$(EXTVERSION).sql (default_version of camembert.control) does not exist)
endif

# The sources of the extension, listed: a new file is added here (test/build.sh fails on a
# source file listed nowhere).  CORE_TEST_SRCS are core files only the tests link.
CORE_SRCS := $(addprefix src/core/, \
	beam_search.c bpe.c bytebpe.c bytebpe_decode.c bytebpe_image.c cb_common.c compute.c config.c \
	cpu_features.c encoder_layer.c file_io.c forward.c generate.c \
	image_layout.c json.c logits_processors.c losses.c \
	matmul_bf16.c matmul_bf16_avx2.c matmul_bf16_avx512.c matmul_bf16_avx512bf16.c \
	matmul_f32.c matmul_f32_avx2.c matmul_f32_avx512.c \
	matmul_int8.c matmul_int8_avx512vnni.c matmul_int8_avxvnni.c matmul_widen.c \
	matrix.c model_convert.c model_files.c model_image.c model_source.c normalizer.c row_ops.c safetensors.c sp_model.c thread_pool.c \
	tf_h5.c tf_names.c tokenizer.c tokenizer_decode.c tokenizer_dir.c tokenizer_image.c torch_bin.c torch_pickle.c unigram.c utf8.c \
	zip_reader.c)
CORE_TEST_SRCS :=
PG_SRCS := $(addprefix src/, \
	camembert.c compute_context.c model_attach.c model_catalog.c model_preload.c model_registry.c model_resolve.c \
	model_segment.c model_stats.c model_xact.c sql_classify.c sql_embed.c sql_fill_mask.c sql_generate.c \
	sql_inference.c sql_losses.c sql_models.c sql_support.c sql_tokenizer.c sql_trigger.c)
OBJS = $(CORE_SRCS:.c=.o) $(PG_SRCS:.c=.o)

DATA = $(sort $(wildcard sql/camembert--*.sql))

# pg_regress tests: sql/<name>.sql, expected/<name>.out, run in this order.
REGRESS = $(shell cat test/regress_schedule 2>/dev/null)
REGRESS_OPTS = --load-extension=camembert
# ... after make golden (below): the fixtures they read are assembled and generated first
REGRESS_PREP = golden

# -Werror only when asked (WERROR=1): the code compiles warning-free with the compilers the
# tests use, but a user's newer compiler, with new warnings, must still build it.
WERROR_FLAG = $(if $(filter 1 yes,$(WERROR)),-Werror)
WARNINGS = -Wall -Wextra $(WERROR_FLAG) -Wno-unused-parameter -Wno-missing-field-initializers \
	-Wno-declaration-after-statement
# Debian's libhdf5 (libhdf5-dev) reads tf_model.h5 (src/core/tf_h5.c).
HDF5_CFLAGS := $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS := $(shell pkg-config --libs hdf5 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)
PG_CPPFLAGS = -Isrc/core $(HDF5_CFLAGS) -DCAMEMBERT_VERSION='"$(EXTVERSION)"'
PG_CFLAGS = -std=gnu11 $(WARNINGS)
SHLIB_LINK = $(HDF5_LIBS) -lopenblas -lm -lpthread

EXTRA_CLEAN = build tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The core's cb_assert (cb_common.h) is on where PostgreSQL's Assert is: a server built
# with --enable-cassert (USE_ASSERT_CHECKING in its pg_config.h).
ifneq ($(shell grep -s '^\#define USE_ASSERT_CHECKING 1' '$(includedir_server)/pg_config.h'),)
PG_CPPFLAGS += -DCB_ASSERTS=1
endif

# The bundled models (every models/<name>/ with a config.json) are installed with the
# extension, where the server can always read them whoever owns the clone:
# $(pg_config --sharedir)/camembert/models/<name>/.  DATA cannot hold folders, hence this rule.
MODELS := $(patsubst models/%/config.json,%,$(wildcard models/*/config.json))
modelsdir = $(datadir)/camembert/models

install: install-models
uninstall: uninstall-models

.PHONY: install-models uninstall-models
install-models:
	@set -e; for m in $(MODELS); do \
		$(MKDIR_P) '$(DESTDIR)$(modelsdir)'/$$m; \
		chmod 755 '$(DESTDIR)$(datadir)/camembert' '$(DESTDIR)$(modelsdir)' '$(DESTDIR)$(modelsdir)'/$$m; \
		$(INSTALL_DATA) models/$$m/* '$(DESTDIR)$(modelsdir)'/$$m/; \
	done

uninstall-models:
	rm -rf $(addprefix '$(DESTDIR)$(modelsdir)'/,$(MODELS))
	rmdir '$(DESTDIR)$(modelsdir)' '$(DESTDIR)$(datadir)/camembert' 2>/dev/null || true

# The golden fixtures.  test/golden (transformers' outputs: the spec) holds each file once;
# make golden makes what the tests read from it, in build/ (neither is committed):
#  - build/golden/: the complete golden tree, every model directory whole
#    (test/golden/assemble.sh writes the files several directories share, listed in
#    test/golden/copies.txt, from their single copy: camembert_load needs real files in the
#    model's directory).  The TAP scripts run assemble.sh themselves too.
#  - build/regress/*.sql: the golden tables the pg_regress scripts load, generated from the
#    reference outputs by test/golden/make_*.py (Debian's python3 and python3-numpy).
# make unit, installcheck (REGRESS_PREP) and tapcheck run it first.
GOLDEN_PYTHON ?= /usr/bin/python3
GOLDEN_INPUTS := $(shell find test/golden -type f ! -path '*/__pycache__/*' 2>/dev/null)
REGRESS_SQL_STAMP := build/regress/.generated

.PHONY: golden golden-models
golden: golden-models $(REGRESS_SQL_STAMP)
golden-models:
	@sh test/golden/assemble.sh

$(REGRESS_SQL_STAMP): $(GOLDEN_INPUTS)
	@rm -rf build/regress.tmp && mkdir -p build/regress.tmp
	@set -e; for g in make_regress_sql make_regress_extras make_family_regress_sql; do \
		$(GOLDEN_PYTHON) test/golden/$$g.py build/regress.tmp >/dev/null || \
		{ echo "test/golden/$$g.py failed (it needs $(GOLDEN_PYTHON) with numpy: Debian's python3-numpy)"; exit 1; }; \
	done
	@touch build/regress.tmp/.generated && rm -rf build/regress && mv build/regress.tmp build/regress

# TAP tests (t/*.pl, PostgreSQL::Test::Cluster): `make tapcheck` runs them with PGXS's own
# prove_installcheck (nodes and logs in tmp_check/; PROVE_TESTS=t/001_shared_models.pl for one,
# PROVE_FLAGS=-v).  initdb refuses root: as root, run it as the postgres user from a copy of
# the clone it can read, as scripts/test.sh does.  Not TAP_TESTS = 1: that makes installcheck
# run them right after pg_regress, as the same user, and pg_regress runs as root (against the
# scratch cluster, scripts/test.sh; under pg_virtualenv, in the Debian package's test stage,
# pg_buildext installcheck), where every TAP test would fail at initdb; the TAP tests also
# take minutes, and scripts/test.sh counts them apart.
.PHONY: tapcheck
tapcheck: golden-models
	$(prove_installcheck)

# test/build.sh: the version, the source lists (every src/**/*.c must be in one of them)
.PHONY: print-build
print-build:
	@echo 'EXTVERSION=$(EXTVERSION)'
	@echo 'EXTENSION_SRCS=$(CORE_SRCS) $(PG_SRCS)'
	@echo 'TEST_ONLY_SRCS=$(CORE_TEST_SRCS)'

# PostgreSQL's own headers (array.h macros) trip -Wsign-compare: relax it for the
# PostgreSQL layer only; the core keeps every warning.
$(PG_SRCS:.c=.o): CFLAGS += -Wno-sign-compare

# PGXS tracks no header dependencies: rebuild every object when any header changes, or
# when the warning flags or the version change (build/flags holds the last ones).
# (Its recipe runs on every build but touches it only when they differ: make then compares
# the objects with it.)
FLAGS_STAMP := build/flags
FLAGS_NOW := $(WARNINGS) $(EXTVERSION)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@
.PHONY: FORCE
FORCE:
$(OBJS) $(OBJS:.o=.bc): $(wildcard src/*.h src/core/*.h) $(FLAGS_STAMP)

# ---------------------------------------------------------------------------
# C unit tests of the pure core: plain cc, no PostgreSQL headers, sanitizers on.

UNIT_CC ?= cc
UNIT_CFLAGS ?= -std=c11 -D_GNU_SOURCE -DCB_ASSERTS=1 -O1 -g -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wextra $(WERROR_FLAG) -Isrc/core -Itest/unit $(HDF5_CFLAGS)
UNIT_LIBS = $(HDF5_LIBS) -lopenblas -lm -lpthread

UNIT_CORE_SRCS := $(CORE_SRCS) $(CORE_TEST_SRCS)
UNIT_CORE_OBJS := $(patsubst src/core/%.c,build/unit/core/%.o,$(UNIT_CORE_SRCS))
UNIT_TESTS := $(patsubst test/unit/%.c,build/unit/%,$(sort $(wildcard test/unit/test_*.c)))

build/unit/core/%.o: src/core/%.c $(wildcard src/core/*.h) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_CFLAGS) -c -o $@ $<

build/unit/test_%: test/unit/test_%.c $(UNIT_CORE_OBJS) $(wildcard test/unit/*.h) $(wildcard test/unit/support/*.c) \
		$(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_CFLAGS) -o $@ $< $(wildcard test/unit/support/*.c) $(UNIT_CORE_OBJS) $(UNIT_LIBS)

.PHONY: unit unit-build
unit-build: $(UNIT_TESTS)

# test_kernels, test_forward and test_matrix_* again under ThreadSanitizer (the
# thread pool of thread_pool.c; attention, GELU and the matrix products' items
# spread over threads, even for the small test models and matrices:
# CB_PARALLEL_MIN_FLOPS=0), with more threads than cores.
build/unit/tsan/test_%: test/unit/test_%.c $(UNIT_CORE_SRCS) $(wildcard src/core/*.h) $(wildcard test/unit/*.h) \
		$(wildcard test/unit/support/*.[ch]) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(UNIT_CC) -std=c11 -D_GNU_SOURCE -DCB_ASSERTS=1 -DCB_PARALLEL_MIN_FLOPS=0 -O1 -g -fsanitize=thread \
		-Wall -Wextra $(WERROR_FLAG) -Isrc/core -Itest/unit $(HDF5_CFLAGS) \
		-o $@ $< $(wildcard test/unit/support/*.c) $(UNIT_CORE_SRCS) $(UNIT_LIBS)

# test_kernels runs once per matrix-product code path and thread count;
# test_forward again on the cblas_sgemm path (the one a CPU without AVX2 takes).
# Every header compiles on its own and included twice (its include guard covers all of
# it): the core's with the unit flags, the PostgreSQL layer's with the server's.
.PHONY: headers
headers:
	@p=0; f=0; \
	for h in $(wildcard src/core/*.h); do \
		if printf '#include "%s"\n#include "%s"\n' $$(basename $$h) $$(basename $$h) | \
			$(UNIT_CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR_FLAG) -Isrc/core $(HDF5_CFLAGS) -fsyntax-only -x c -; \
		then p=$$((p + 1)); else f=$$((f + 1)); echo "FAIL $$h"; fi; done; \
	for h in $(wildcard src/*.h); do \
		if printf '#include "postgres.h"\n#include "%s"\n#include "%s"\n' $$(basename $$h) $$(basename $$h) | \
			$(CC) $(CPPFLAGS) -Isrc -Isrc/core -I$(includedir_server) -std=gnu11 -Wall $(WERROR_FLAG) -fsyntax-only -x c -; \
		then p=$$((p + 1)); else f=$$((f + 1)); echo "FAIL $$h"; fi; done; \
	echo "headers: $$p passed, $$f failed"; [ $$f = 0 ]

# The tests of the products (test_kernels*, test_matrix*) run once per code path and thread count.
PATH_TESTS := $(filter build/unit/test_kernels% build/unit/test_matrix%,$(UNIT_TESTS))

TSAN_MATRIX_TESTS := build/unit/tsan/test_matrix_int8 build/unit/tsan/test_matrix_bf16 \
	build/unit/tsan/test_matrix_widen

unit: golden-models unit-build build/unit/tsan/test_kernels build/unit/tsan/test_forward $(TSAN_MATRIX_TESTS)
	@status=0; export ASAN_OPTIONS=detect_leaks=1; \
	$(MAKE) -s headers || status=1; \
	for t in $(filter-out $(PATH_TESTS),$(UNIT_TESTS)); do $$t || status=1; done; \
	for t in $(PATH_TESTS); do for k in avx512 avx2 blas; do for n in 1 2; do \
		CAMEMBERT_KERNELS=$$k OPENBLAS_NUM_THREADS=$$n $$t || status=1; done; done; done; \
	out=$$(CAMEMBERT_KERNELS=blas build/unit/test_forward 2>&1) || status=1; \
	printf '%s\n' "$$out" | sed 's/^test_forward:/test_forward_blas:/'; \
	OPENBLAS_NUM_THREADS=4 build/unit/tsan/test_kernels || status=1; \
	for t in $(TSAN_MATRIX_TESTS); do OPENBLAS_NUM_THREADS=4 $$t || status=1; done; \
	out=$$(OPENBLAS_NUM_THREADS=4 build/unit/tsan/test_forward 2>&1) || status=1; \
	printf '%s\n' "$$out" | sed 's/^test_forward:/test_forward_tsan:/'; \
	exit $$status

# ---------------------------------------------------------------------------
# bench/bench_matrix.c: cb_matrix_product in every format against float32 (bench/README.md).
# The core at -O2, as PGXS builds the extension.

BENCH_CFLAGS = -std=gnu11 -D_GNU_SOURCE -O2 $(WARNINGS) -Isrc/core $(HDF5_CFLAGS)
BENCH_CORE_OBJS := $(patsubst src/core/%.c,build/bench/core/%.o,$(CORE_SRCS))

build/bench/core/%.o: src/core/%.c $(wildcard src/core/*.h)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(BENCH_CFLAGS) -c -o $@ $<

build/bench/bench_matrix: bench/bench_matrix.c $(BENCH_CORE_OBJS)
	$(UNIT_CC) $(BENCH_CFLAGS) -o $@ $< $(BENCH_CORE_OBJS) $(UNIT_LIBS)
