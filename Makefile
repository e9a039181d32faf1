# camembert — PGXS build.
#
#   make                 build the extension (camembert.so)
#   make install         install it into the PostgreSQL found by PG_CONFIG, with the bundled
#                        models (models/*/) in $(pg_config --sharedir)/camembert/models/
#   make unit            build and run the C unit tests of the pure core (ASan+UBSan)
#   make installcheck    run the pg_regress tests against a running server
#                        (scripts/cluster.sh sets PGHOST/PGPORT for the scratch cluster)
#   make fuzz            build the libFuzzer targets (clang)
#
# The pure C core lives in src/core and never includes a PostgreSQL header;
# the PostgreSQL layer lives in src/*.c.

EXTENSION = camembert
MODULE_big = camembert
PGFILEDESC = "camembert - CamemBERT inference inside PostgreSQL"

CORE_SRCS := $(sort $(wildcard src/core/*.c))
PG_SRCS := $(sort $(wildcard src/*.c))
OBJS = $(CORE_SRCS:.c=.o) $(PG_SRCS:.c=.o)

DATA = $(sort $(wildcard sql/camembert--*.sql))

# pg_regress tests: sql/<name>.sql, expected/<name>.out, run in this order.
REGRESS = $(shell cat test/regress_schedule 2>/dev/null)
REGRESS_OPTS = --load-extension=camembert

WARNINGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
	-Wno-declaration-after-statement
# Debian's libhdf5 (libhdf5-dev) reads tf_model.h5 (src/core/tf_h5.c).
HDF5_CFLAGS := $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS := $(shell pkg-config --libs hdf5 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)
PG_CPPFLAGS = -Isrc/core $(HDF5_CFLAGS)
PG_CFLAGS = -std=gnu11 $(WARNINGS)
SHLIB_LINK = $(HDF5_LIBS) -lopenblas -lm -lpthread

EXTRA_CLEAN = build

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

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

# PostgreSQL's own headers (array.h macros) trip -Wsign-compare: relax it for the
# PostgreSQL layer only; the core keeps every warning.
$(PG_SRCS:.c=.o): CFLAGS += -Wno-sign-compare

# PGXS tracks no header dependencies: rebuild every object when any header changes.
$(OBJS) $(OBJS:.o=.bc): $(wildcard src/*.h src/core/*.h)

# ---------------------------------------------------------------------------
# C unit tests of the pure core: plain cc, no PostgreSQL headers, sanitizers on.

UNIT_CC ?= cc
UNIT_CFLAGS ?= -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wextra -Werror -Isrc/core -Itest/unit $(HDF5_CFLAGS)
UNIT_LIBS = $(HDF5_LIBS) -lopenblas -lm -lpthread

UNIT_CORE_OBJS := $(patsubst src/core/%.c,build/unit/core/%.o,$(CORE_SRCS))
UNIT_TESTS := $(patsubst test/unit/%.c,build/unit/%,$(sort $(wildcard test/unit/test_*.c)))

build/unit/core/%.o: src/core/%.c $(wildcard src/core/*.h)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_CFLAGS) -c -o $@ $<

build/unit/test_%: test/unit/test_%.c $(UNIT_CORE_OBJS) $(wildcard test/unit/*.h) $(wildcard test/unit/support/*.c)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_CFLAGS) -o $@ $< $(wildcard test/unit/support/*.c) $(UNIT_CORE_OBJS) $(UNIT_LIBS)

.PHONY: unit unit-build
unit-build: $(UNIT_TESTS)

# test_kernels, test_forward and test_matrix_* again under ThreadSanitizer (the
# thread pool of thread_pool.c; attention, GELU and the matrix products' items
# spread over threads, even for the small test models and matrices:
# CB_PARALLEL_MIN_FLOPS=0), with more threads than cores.
build/unit/tsan/test_%: test/unit/test_%.c $(CORE_SRCS) $(wildcard src/core/*.h) $(wildcard test/unit/*.h) \
		$(wildcard test/unit/support/*.[ch])
	@mkdir -p $(dir $@)
	$(UNIT_CC) -std=c11 -D_GNU_SOURCE -DCB_PARALLEL_MIN_FLOPS=0 -O1 -g -fsanitize=thread \
		-Wall -Wextra -Werror -Isrc/core -Itest/unit $(HDF5_CFLAGS) \
		-o $@ $< $(wildcard test/unit/support/*.c) $(CORE_SRCS) $(UNIT_LIBS)

# test_kernels runs once per matrix-product code path and thread count;
# test_forward again on the cblas_sgemm path (the one a CPU without AVX2 takes).
# Every header compiles on its own and included twice (its include guard covers all of
# it): the core's with the unit flags, the PostgreSQL layer's with the server's.
.PHONY: headers
headers:
	@p=0; f=0; \
	for h in $(wildcard src/core/*.h); do \
		if printf '#include "%s"\n#include "%s"\n' $$(basename $$h) $$(basename $$h) | \
			$(UNIT_CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc/core $(HDF5_CFLAGS) -fsyntax-only -x c -; \
		then p=$$((p + 1)); else f=$$((f + 1)); echo "FAIL $$h"; fi; done; \
	for h in $(wildcard src/*.h); do \
		if printf '#include "postgres.h"\n#include "%s"\n#include "%s"\n' $$(basename $$h) $$(basename $$h) | \
			$(CC) $(CPPFLAGS) -Isrc -Isrc/core -I$(includedir_server) -std=gnu11 -Wall -Werror -fsyntax-only -x c -; \
		then p=$$((p + 1)); else f=$$((f + 1)); echo "FAIL $$h"; fi; done; \
	echo "headers: $$p passed, $$f failed"; [ $$f = 0 ]

# The tests of the products (test_kernels*, test_matrix*) run once per code path and thread count.
PATH_TESTS := $(filter build/unit/test_kernels% build/unit/test_matrix%,$(UNIT_TESTS))

TSAN_MATRIX_TESTS := build/unit/tsan/test_matrix_int8 build/unit/tsan/test_matrix_bf16 \
	build/unit/tsan/test_matrix_widen

unit: unit-build build/unit/tsan/test_kernels build/unit/tsan/test_forward $(TSAN_MATRIX_TESTS)
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
