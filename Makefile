# dtx — top-level GNU Makefile.
#
# Two build flavours share one set of sources:
#   build/release  -O2, no failpoints           (make all / install / demo / bench)
#   build/test     -O1 -g, ASan+UBSan, failpoints compiled in (make check)
#
# Sources are found by wildcard, one directory per component:
#   common/*.c       -> libdtxcommon.a   (framing, TLS, config, logging, failpoints)
#   wal/*.c          -> libdtxwal.a      (the write-ahead log; wal/waldump_main.c is the tool)
#   client/*.c       -> libdtx.a/.so     (client/dtx_main.c and client/cli_*.c are the CLI)
#   coordinator/*.c  -> dtx-coordinator
#   participant/*.c  -> dtx-participant
#   tests/unit/test_*.c -> one check binary each
#   bench/*_main.c   -> one benchmark binary each (with bench/benchproc.c)

BUILD     ?= release
PREFIX    ?= /usr/local
DESTDIR   ?=
O         := build/$(BUILD)

# The version of dtx, defined here only.  It reaches the daemons' --version
# (-DDTX_VERSION), dtx.h (through the generated dtx_version.h, which is
# installed beside it; the CLI's --version prints it) and libdtx.pc.
VERSION     := 1.0.0
VERSION_NUM := $(shell echo $(VERSION) | awk -F. '{ print $$1 * 10000 + $$2 * 100 + $$3 }')
VERSION_H   := $(O)/include/dtx_version.h

PKGS      := libpq libevent libevent_pthreads openssl json-c
CC        ?= cc
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# the daemons alone: HTTPS (etcd's gateway, the operations endpoint) and
# systemd's readiness notification
SRV_PKGS   := libevent_openssl libsystemd
SRV_CFLAGS := $(shell pkg-config --cflags $(SRV_PKGS) 2>/dev/null)
SRV_LIBS_X := $(shell pkg-config --libs $(SRV_PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
             -Wmissing-prototypes -Wstrict-prototypes -Wvla
BASEFLAGS := -std=gnu11 -D_GNU_SOURCE -fPIC -pthread -MMD -MP $(WARN) \
             -Icommon -Iwal -Iclient -I$(O)/include $(PKG_CFLAGS) $(SRV_CFLAGS)

ifeq ($(BUILD),test)
  SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  CFLAGS    ?= -O1 -g
  ALLFLAGS  := $(BASEFLAGS) $(CFLAGS) $(SAN) -DDTX_FAILPOINTS=1
  LDFLAGS_X := $(SAN)
else ifeq ($(BUILD),valgrind)
  CFLAGS    ?= -O1 -g
  ALLFLAGS  := $(BASEFLAGS) $(CFLAGS) -DDTX_FAILPOINTS=1
  LDFLAGS_X :=
else
  CFLAGS    ?= -O2 -g
  ALLFLAGS  := $(BASEFLAGS) $(CFLAGS)
  LDFLAGS_X :=
endif
LIBS := $(PKG_LIBS) -lpthread -lm

COMMON_SRC := $(wildcard common/*.c)
WAL_SRC    := $(filter-out wal/waldump_main.c,$(wildcard wal/*.c))
CLI_SRC    := $(wildcard client/cli_*.c) $(wildcard client/dtx_main.c)
LIBDTX_SRC := $(filter-out $(CLI_SRC),$(wildcard client/*.c))
COORD_SRC  := $(wildcard coordinator/*.c)
PART_SRC   := $(wildcard participant/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
BENCH_SRC  := $(wildcard bench/*_main.c)
BENCH_LIB  := bench/benchproc.c
TOOL_SRC   := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(O)/obj/%.o,$(1))

LIBCOMMON := $(O)/lib/libdtxcommon.a
LIBWAL    := $(O)/lib/libdtxwal.a
LIBDTX_A  := $(O)/lib/libdtx.a
LIBDTX_SO := $(O)/lib/libdtx.so.1
# the static library as installed (see its rule)
LIBDTX_DIST_A := $(O)/lib/dist/libdtx.a
COORD_OBJ_NOMAIN := $(filter-out $(O)/obj/coordinator/main.o,$(call obj,$(COORD_SRC)))
PART_OBJ_NOMAIN  := $(filter-out $(O)/obj/participant/main.o,$(call obj,$(PART_SRC)))

BINS :=
ifneq ($(COORD_SRC),)
  BINS += $(O)/bin/dtx-coordinator
endif
ifneq ($(PART_SRC),)
  BINS += $(O)/bin/dtx-participant
endif
ifneq ($(wildcard wal/waldump_main.c),)
  BINS += $(O)/bin/dtx-waldump
endif
ifneq ($(CLI_SRC),)
  BINS += $(O)/bin/dtx
endif
LIBS_OUT := $(LIBCOMMON)
ifneq ($(WAL_SRC),)
  LIBS_OUT += $(LIBWAL)
endif
ifneq ($(LIBDTX_SRC),)
  LIBS_OUT += $(LIBDTX_A) $(LIBDTX_SO) $(LIBDTX_DIST_A)
endif
UNIT_BINS  := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRC))
BENCH_BINS := $(patsubst bench/%_main.c,$(O)/bin/bench-%,$(BENCH_SRC))
TOOL_BINS  := $(patsubst tests/tools/%.c,$(O)/bin/tool-%,$(TOOL_SRC))
ALL_LIBS_A := $(filter-out $(LIBDTX_DIST_A),$(filter %.a,$(LIBS_OUT)))
# link order: client lib, wal, common
LINK_LIBS  := $(filter $(LIBDTX_A),$(ALL_LIBS_A)) $(filter $(LIBWAL),$(ALL_LIBS_A)) $(LIBCOMMON)

PHONY_X := unit-bins check-build
.PHONY: $(PHONY_X) all build check unit integration demo bench bench-wal bench-floor install clean fmt fmt-check layers deps \
        valgrind chaos chaos-failover bench-recovery bench-failover help example bench-python \
        bench-admission bench-metrics
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build BUILD=release

build: $(LIBS_OUT) $(BINS) $(BENCH_BINS) $(TOOL_BINS)

$(O)/obj/%.o: %.c | $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -c $< -o $@

# The daemons take the version from the command line; a new version
# rewrites $(VERSION_H), which rebuilds them.
$(O)/obj/coordinator/main.o $(O)/obj/participant/main.o: ALLFLAGS += -DDTX_VERSION='"$(VERSION)"'
$(O)/obj/coordinator/main.o $(O)/obj/participant/main.o: $(VERSION_H)

# Generated, not in git: rewritten only when its text changes, so that a
# Makefile edit rebuilds nothing else.
$(VERSION_H): Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' '/* dtx_version.h: generated from VERSION in the Makefile; do not edit. */' \
	    '#ifndef DTX_VERSION_H' '#define DTX_VERSION_H' \
	    '#define DTX_VERSION_NUM $(VERSION_NUM)' '#define DTX_VERSION_STR "$(VERSION)"' \
	    '#endif' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@; ar rcs $@ $^

$(LIBWAL): $(call obj,$(WAL_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@; ar rcs $@ $^

# libdtx.a carries the protocol codec it needs, so it links on its own.
$(LIBDTX_A): $(call obj,$(LIBDTX_SRC)) $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@; ar rcs $@ $^

$(LIBDTX_SO): $(call obj,$(LIBDTX_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libdtx.so.1 -Wl,--exclude-libs,ALL -Wl,--as-needed $(LDFLAGS_X) -o $@ $(call obj,$(LIBDTX_SRC)) $(LIBCOMMON) $(LIBS)
	@ln -sf libdtx.so.1 $(O)/lib/libdtx.so

# The static library a user links: libdtx's objects and what they use of
# libdtxcommon (the codec; the linker picks the members) in one relocatable
# object whose only global symbols are the shared
# library's exports (the API), so that dtx's internal names (buf_*,
# proto_*, ...) cannot clash with a program's own.  The build's libdtx.a,
# which dtx's own programs and tests link, keeps them.
$(LIBDTX_DIST_A): $(call obj,$(LIBDTX_SRC)) $(LIBCOMMON) $(LIBDTX_SO)
	@mkdir -p $(dir $@)
	@nm -D --defined-only $(LIBDTX_SO) | awk '$$3 ~ /^dtx_/ {print $$3}' > $(@D)/api.syms
	@ld -r -o $(@D)/libdtx.o $(call obj,$(LIBDTX_SRC)) $(LIBCOMMON)
	@objcopy --keep-global-symbols=$(@D)/api.syms $(@D)/libdtx.o
	@rm -f $@; ar rcs $@ $(@D)/libdtx.o

SRV_LIBS := $(filter $(LIBWAL),$(ALL_LIBS_A)) $(LIBCOMMON)

$(O)/bin/dtx-coordinator: $(call obj,$(COORD_SRC)) $(SRV_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_X) -o $@ $(call obj,$(COORD_SRC)) $(SRV_LIBS) $(SRV_LIBS_X) $(LIBS)

$(O)/bin/dtx-participant: $(call obj,$(PART_SRC)) $(SRV_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_X) -o $@ $(call obj,$(PART_SRC)) $(SRV_LIBS) $(SRV_LIBS_X) $(LIBS)

$(O)/bin/dtx-waldump: $(call obj,wal/waldump_main.c) $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_X) -o $@ $^ $(LIBS)

$(O)/bin/dtx: $(call obj,$(CLI_SRC)) $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_X) -o $@ $(call obj,$(CLI_SRC)) $(LINK_LIBS) $(LIBS)

# shared by every benchmark binary: not an intermediate file to remove
.SECONDARY: $(call obj,$(BENCH_LIB))
$(O)/bin/bench-%: $(O)/obj/bench/%_main.o $(call obj,$(BENCH_LIB)) $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_X) -o $@ $< $(call obj,$(BENCH_LIB)) $(LINK_LIBS) $(LIBS)

# Small programs used by integration tests (tests/tools/NAME.c -> bin/tool-NAME).
$(O)/bin/tool-%: $(O)/obj/tests/tools/%.o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_X) -o $@ $< $(LINK_LIBS) $(LIBS)

# Unit tests may reach into coordinator/participant internals (not their main.o).
# (explicit rules, so that these add prerequisites: a pattern rule without a
# recipe would not)
$(filter $(O)/tests/test_coord%,$(UNIT_BINS)): $(COORD_OBJ_NOMAIN)
$(filter $(O)/tests/test_part%,$(UNIT_BINS)): $(PART_OBJ_NOMAIN)
$(O)/tests/%: $(O)/obj/tests/unit/%.o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_X) -o $@ $< $(if $(filter test_coord%,$*),$(COORD_OBJ_NOMAIN)) \
	    $(if $(filter test_part%,$*),$(PART_OBJ_NOMAIN)) $(LINK_LIBS) $(CHECK_LIBS) \
	    $(if $(filter test_coord% test_part%,$*),$(SRV_LIBS_X)) $(LIBS)

$(O)/obj/tests/unit/%.o: tests/unit/%.c | $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(CHECK_CFLAGS) -Icoordinator -Iparticipant -c $< -o $@

# ---------------------------------------------------------------------------
# Tests.  `make check` = deps + sanitizer build + unit tests + integration tests.
# The runner prints one summary line: "N passed, N failed".

check: deps
	@$(MAKE) --no-print-directory fmt-check
	@tests/layers/check.sh
	@$(MAKE) --no-print-directory build unit-bins BUILD=test
	@$(MAKE) --no-print-directory build BUILD=release
	@tests/run-all.sh

unit: 
	@$(MAKE) --no-print-directory build BUILD=test
	@$(MAKE) --no-print-directory unit-bins BUILD=test
	@TESTS_ONLY=unit tests/run-all.sh

unit-bins: $(UNIT_BINS)

integration:
	@$(MAKE) --no-print-directory build BUILD=test
	@TESTS_ONLY=integration tests/run-all.sh

check-build:
	@$(MAKE) --no-print-directory build unit-bins BUILD=test

valgrind: deps
	@$(MAKE) --no-print-directory build unit-bins BUILD=valgrind
	@VALGRIND=1 DTX_BUILD=valgrind TESTS_ONLY=unit tests/run-all.sh
	@DTX_VALGRIND=1 DTX_BUILD=valgrind TESTS_ONLY=integration TESTS_MATCH='^e2e$$' \
	    tests/run-all.sh
	@# the etcd client and [ha] under load, etcd restarted, a clean stop
	@DTX_VALGRIND=1 DTX_BUILD=valgrind CASE=etcd-restart bash tests/integration/ha.sh
	@# the operations endpoints, reload (TLS contexts swapped, the pool resized), JSON logs
	@DTX_VALGRIND=1 DTX_BUILD=valgrind CASE=health,reload,notify bash tests/integration/ops.sh
	@# slot admission: a transaction queued for a slot, its timeout, the grant once it is back,
	@# a grant when every participant of the transaction is gone
	@DTX_VALGRIND=1 DTX_BUILD=valgrind CASE=timeout,granted-down bash tests/integration/mixed.sh

demo: deps
	@$(MAKE) --no-print-directory build BUILD=release
	@tests/demo.sh

# the Python package's microservices example (client/python/examples/microservices)
example: deps
	@$(MAKE) --no-print-directory build BUILD=release
	@client/python/examples/microservices/run.sh

bench: deps
	@$(MAKE) --no-print-directory build BUILD=release
	@bench/run-bench.sh

bench-wal: deps
	@$(MAKE) --no-print-directory build BUILD=release
	@bench/run-bench-wal.sh

bench-floor: deps
	@$(MAKE) --no-print-directory build BUILD=release
	@bench/run-bench-floor.sh

# one-shot transfers from Python processes against the C bench client
bench-python: deps
	@$(MAKE) --no-print-directory build BUILD=release
	@bench/run-bench-python.sh

# an authorised client's p99 with 10,000 silent sockets held open against
# the coordinator, against a quiet run (and under a reconnect flood)
bench-admission: deps
	@$(MAKE) --no-print-directory build BUILD=release
	@bench/run-bench-admission.sh

# what metrics cost: one-shot transfers with the operations endpoints off,
# against on and scraped every second
bench-metrics: deps
	@$(MAKE) --no-print-directory build BUILD=release
	@bench/run-bench-metrics.sh

# failover time: kill -9 to the first commit on the promoted standby, and
# 1,000 in-doubt transactions resolved by it (needs failpoints: the test build)
bench-failover: deps
	@$(MAKE) --no-print-directory build BUILD=test
	@bench/run-bench-failover.sh

# in-doubt recovery time (needs failpoints: the test build)
bench-recovery: deps
	@$(MAKE) --no-print-directory build BUILD=test
	@bench/run-bench-recovery.sh

chaos: deps
	@$(MAKE) --no-print-directory build BUILD=test
	@tests/chaos.sh $(SECONDS)

# the chaos test with coordinator failover among its faults (docs/failover.md)
chaos-failover: deps
	@$(MAKE) --no-print-directory build BUILD=test
	@HA=$(HA) tests/chaos-failover.sh $(SECONDS)

deps:
	@tests/lib/deps.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/man/man1
	for b in $(notdir $(BINS)); do install -m 755 build/release/bin/$$b $(DESTDIR)$(PREFIX)/bin/; done
	if [ -f build/release/lib/libdtx.so.1 ]; then \
	  install -m 644 build/release/lib/dist/libdtx.a $(DESTDIR)$(PREFIX)/lib/; \
	  install -m 755 build/release/lib/libdtx.so.1 $(DESTDIR)$(PREFIX)/lib/; \
	  ln -sf libdtx.so.1 $(DESTDIR)$(PREFIX)/lib/libdtx.so; \
	  install -m 644 client/dtx.h build/release/include/dtx_version.h $(DESTDIR)$(PREFIX)/include/; \
	  sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' client/libdtx.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libdtx.pc; \
	fi
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/sysusers.d \
	    $(DESTDIR)$(PREFIX)/share/dtx
	for u in coordinator/dtx-coordinator.service.in participant/dtx-participant.service.in; do \
	  sed 's|@BINDIR@|$(PREFIX)/bin|g' $$u > $(DESTDIR)$(PREFIX)/lib/systemd/system/$$(basename $$u .in); done
	install -m 644 common/dtx.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/dtx.conf
	install -m 644 docs/prometheus/dtx-alerts.yml $(DESTDIR)$(PREFIX)/share/dtx/
	for m in docs/man/*.1; do [ -f "$$m" ] && \
	  sed 's|@VERSION@|$(VERSION)|' $$m > $(DESTDIR)$(PREFIX)/share/man/man1/$$(basename $$m) || true; done
	py=$${PYTHON3:-$$(command -v /usr/bin/python3 || command -v python3)}; \
	if [ -n "$$py" ]; then $$py client/python/build_backend/dtx_build.py install --prefix "$(PREFIX)" \
	  --destdir "$(DESTDIR)"; else echo "install: no python3: the dtx Python package is not installed"; fi

FMT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
fmt:
	clang-format -i $(FMT_FILES)

# the include order of each directory's modules (tests/layers/layers.conf)
layers:
	@tests/layers/check.sh

fmt-check:
	@clang-format --dry-run --Werror $(FMT_FILES) || \
	  { echo "fmt-check: run 'make fmt' (clang-format, .clang-format)" >&2; exit 1; }

clean:
	rm -rf build

help:
	@echo "targets: all check demo example bench bench-wal bench-floor bench-recovery bench-failover bench-python bench-admission chaos chaos-failover install clean fmt deps valgrind layers fuzz fuzz-build fuzz-corpus"

# ---------------------------------------------------------------------------
# Fuzzing (docs/testing.md, "Fuzzing").  One libFuzzer target per decoder of
# bytes from outside: tests/fuzz/fuzz_NAME.c -> build/fuzz/bin/fuzz_NAME,
# built with clang, ASan and UBSan from the same sources into build/fuzz/
# (rules of their own, whatever BUILD says).
#   make fuzz FUZZ_SECONDS=N   build, then run each target N seconds (60) on
#                              its corpus; per target: execs/s, cov, ft, crashes
#   make fuzz-build            build only (tests/integration/fuzz.sh runs it)
#   make fuzz-corpus           rewrite tests/fuzz/corpus/ with the encoders
#                              (tests/fuzz/gen_corpus.c)

FUZZ_O       := build/fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_BASE    := -std=gnu11 -D_GNU_SOURCE -pthread -MMD -MP -O1 -g $(FUZZ_SAN) \
                -Icommon -Iwal -Iclient -Icoordinator -Iparticipant -Itests/fuzz \
                -I$(FUZZ_O)/include -I$(FUZZ_O)/gen $(PKG_CFLAGS) $(SRV_CFLAGS)
# dtx's sources, instrumented for coverage; gcc holds them to -Werror, and a
# warning only clang gives must not stop the fuzzers
FUZZ_LIBFLAGS := $(FUZZ_BASE) $(filter-out -Werror,$(WARN)) -Wno-unused-function \
                 -fsanitize=fuzzer-no-link
FUZZ_TFLAGS   := $(FUZZ_BASE) $(WARN) -fsanitize=fuzzer-no-link
FUZZ_TARGETS  := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS     := $(patsubst %,$(FUZZ_O)/bin/fuzz_%,$(FUZZ_TARGETS))
fuzzobj        = $(patsubst %.c,$(FUZZ_O)/obj/%.o,$(1))
FUZZ_COMMON_A := $(FUZZ_O)/lib/libdtxcommon.a
FUZZ_WAL_A    := $(FUZZ_O)/lib/libdtxwal.a
FUZZ_LIBDTX_A := $(FUZZ_O)/lib/libdtx.a
FUZZ_LIBS     := $(FUZZ_LIBDTX_A) $(FUZZ_WAL_A) $(FUZZ_COMMON_A)
FUZZ_PART_OBJ := $(call fuzzobj,$(filter-out participant/main.c,$(PART_SRC)))
FUZZ_VERSION_H := $(FUZZ_O)/include/dtx_version.h

.PHONY: fuzz fuzz-build fuzz-corpus

fuzz: deps
	@nice -n 10 $(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-build: $(FUZZ_BINS)

fuzz-corpus: $(FUZZ_O)/bin/gen-corpus
	$(FUZZ_O)/bin/gen-corpus tests/fuzz/corpus

$(FUZZ_VERSION_H): $(VERSION_H)
	@mkdir -p $(dir $@)
	@cp $< $@

$(FUZZ_O)/obj/tests/fuzz/%.o: tests/fuzz/%.c | $(FUZZ_VERSION_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_TFLAGS) -c $< -o $@

$(FUZZ_O)/obj/%.o: %.c | $(FUZZ_VERSION_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_LIBFLAGS) -c $< -o $@

$(FUZZ_COMMON_A): $(call fuzzobj,$(COMMON_SRC))
$(FUZZ_WAL_A): $(call fuzzobj,$(WAL_SRC))
$(FUZZ_LIBDTX_A): $(call fuzzobj,$(LIBDTX_SRC))
$(FUZZ_COMMON_A) $(FUZZ_WAL_A) $(FUZZ_LIBDTX_A):
	@mkdir -p $(dir $@)
	@rm -f $@; ar rcs $@ $^

# The coordinator's configuration table is static in its main.c: the part
# from "---- configuration" to the end of coord_sections is copied out for
# fuzz_config (tests/fuzz/coord_config.c).
$(FUZZ_O)/gen/coord_config.inc: coordinator/main.c
	@mkdir -p $(dir $@)
	@awk '/^\/\* ---- configuration/ { on = 1 } on { print } \
	      on && /^static const config_section coord_sections\[\] = \{/ { sec = 1 } \
	      sec && /^\};/ { exit }' $< >$@.tmp
	@grep -q '^static const config_section coord_sections\[\] = {' $@.tmp || \
	  { echo "fuzz: coordinator/main.c: no coord_sections after \"---- configuration\"" >&2; \
	    rm -f $@.tmp; exit 1; }
	@mv -f $@.tmp $@
$(FUZZ_O)/obj/tests/fuzz/coord_config.o: $(FUZZ_O)/gen/coord_config.inc

FUZZ_EXTRA_config      := $(FUZZ_O)/obj/tests/fuzz/coord_config.o
FUZZ_EXTRA_participant := $(FUZZ_PART_OBJ)
FUZZ_EXTRA_etcd        := $(call fuzzobj,coordinator/etcd.c)
$(FUZZ_O)/bin/fuzz_etcd: $(FUZZ_EXTRA_etcd)
$(FUZZ_O)/bin/fuzz_config: $(FUZZ_EXTRA_config)
$(FUZZ_O)/bin/fuzz_participant: $(FUZZ_EXTRA_participant)
# the targets' objects are kept (not intermediate files to remove)
.SECONDARY: $(patsubst %,$(FUZZ_O)/obj/tests/fuzz/fuzz_%.o,$(FUZZ_TARGETS))
$(FUZZ_O)/bin/fuzz_%: $(FUZZ_O)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIBS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_EXTRA_$*) $(FUZZ_LIBS) $(SRV_LIBS_X) $(PKG_LIBS) \
	    -lpthread -lm

$(FUZZ_O)/bin/gen-corpus: $(FUZZ_O)/obj/tests/fuzz/gen_corpus.o $(FUZZ_LIBS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SAN) -o $@ $< $(FUZZ_LIBS) $(PKG_LIBS) -lpthread -lm

-include $(shell find $(FUZZ_O) -name '*.d' 2>/dev/null)

-include $(shell find $(O) -name '*.d' 2>/dev/null)
