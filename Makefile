# godwit — build, run and test.
#
#   make            build build/godwit (optimised, with debug info)
#   make run        install what is missing, build, start the dev server (./run/)
#   make test       install what is missing, build, run every test
#   make fuzz       longer fuzz runs (FUZZ_SECONDS per target)
#   make clean
#
# src/ is in layers (docs/architecture.md), one directory each, lowest first
# in LAYERS. Each layer is a static library; the daemon, the unit tests and
# the fuzz targets link them top layer first, so a call that goes up a layer
# does not link. scripts/check-layers checks the includes.

CC       ?= cc
FUZZ_CC  ?= clang
PKGS     := libevent_core libevent_extra libevent_openssl libevent_pthreads libssl libcrypto \
            libunbound sqlite3 libcrypt yaml-0.1 libpsl gmime-3.0 libarchive \
            libpq libmariadb hiredis
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes \
            -Wstrict-prototypes -Wpointer-arith -Wvla -Werror \
            -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE $(WARN) -Isrc $(PKG_CFLAGS) $(CFLAGS)
# libmagic ships no .pc file
LDLIBS   := $(PKG_LIBS) -lmagic -lpthread

SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
# The unit tests and fuzz targets set fixed SCRAM nonces and CRAM-MD5
# challenges (net/sasl.h). Those setters are compiled only into a second
# object of net/sasl.c that is linked into the tests and fuzz targets ahead
# of the layer archives (so the archive's sasl.o is never pulled in); no
# daemon binary has them.
TEST_HOOKS := -DGODWIT_TEST_HOOKS

LAYERS   := lib mail store net msgauth filter smtpd pop3d imapd mta daemon ops cli
MAIN     := src/cli/main.c
SRCS     := $(sort $(filter-out $(MAIN),$(wildcard $(LAYERS:%=src/%/*.c))))
HDRS     := $(wildcard $(LAYERS:%=src/%/*.h))
# link order: the top layer first
LINK_LAYERS := $(shell echo $(LAYERS) | tr ' ' '\n' | tac)
layer_libs = $(foreach l,$(LINK_LAYERS),$(if $(wildcard src/$(l)/*.c),$(1)/libgodwit-$(l).a))
LIBS      := $(call layer_libs,build)
ASAN_LIBS := $(call layer_libs,build/asan)
FUZZ_LIBS := $(call layer_libs,build/fuzz)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)

OBJS      := $(SRCS:src/%.c=build/obj/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o)
FUZZ_OBJS := $(SRCS:src/%.c=build/fuzz/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)

FUZZ_SECONDS ?= 20
PYTEST   := /usr/bin/python3 -m pytest

.PHONY: all deps run test layers unit fuzz-smoke fuzz integration asan clean format bench

all: build/godwit

deps:
	@./scripts/install-deps.sh

build/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/asan/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c -o $@ $<

build/fuzz/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CFLAGS) -O1 $(SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

build/asan/hooks/sasl.o: src/net/sasl.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) $(TEST_HOOKS) -c -o $@ $<

build/fuzz/hooks/sasl.o: src/net/sasl.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CFLAGS) -O1 $(SAN) $(TEST_HOOKS) -fsanitize=fuzzer-no-link -c -o $@ $<

# One archive per layer, rebuilt from scratch: `ar r` would keep objects of
# deleted sources. main.c is not in one.
layer_objs = $(filter-out $(1)/obj/cli/main.o,$(patsubst src/%.c,$(1)/obj/%.o,$(wildcard src/$(2)/*.c)))
.SECONDEXPANSION:
# the archives and objects are made by chained pattern rules; keep them
.SECONDARY: $(LIBS) $(ASAN_LIBS) $(FUZZ_LIBS) $(OBJS) $(ASAN_OBJS) $(FUZZ_OBJS)
build/libgodwit-%.a: $$(call layer_objs,build,%)
	rm -f $@ && ar rcs $@ $^
build/asan/libgodwit-%.a: $$(call layer_objs,build/asan,%)
	rm -f $@ && ar rcs $@ $^
build/fuzz/libgodwit-%.a: $$(call layer_objs,build/fuzz,%)
	rm -f $@ && ar rcs $@ $^

build/godwit: $(MAIN) $(LIBS)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

build/asan/godwit: $(MAIN) $(ASAN_LIBS)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $< $(ASAN_LIBS) $(LDLIBS)

build/asan/tests/%: tests/unit/%.c build/asan/hooks/sasl.o $(ASAN_LIBS) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) $(TEST_HOOKS) -Itests/unit -o $@ $< \
		build/asan/hooks/sasl.o $(ASAN_LIBS) \
		$(LDLIBS) $$(pkg-config --libs cmocka)

# The power-loss tests' recorder (tests/durability/syncrec.c), loaded into
# the daemon with LD_PRELOAD by tests/integration/test_powerloss.py; never
# linked into godwit.
build/tests/syncrec.so: tests/durability/syncrec.c Makefile
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -D_GNU_SOURCE $(WARN) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

# The DKIM verifier's test driver (tests/tools/dkim_verify.c), used by
# tests/integration/test_dkim.py; never linked into godwit.
build/asan/tools/dkim_verify: tests/tools/dkim_verify.c $(ASAN_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $< $(ASAN_LIBS) $(LDLIBS)

# The attachment walk's micro benchmark (bench/attach_walk.c, run by
# bench/attach-walk); never linked into godwit.
build/bench/attach_walk: bench/attach_walk.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

build/fuzz/%: fuzz/%.c build/fuzz/hooks/sasl.o $(FUZZ_LIBS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CFLAGS) -O1 $(SAN) $(TEST_HOOKS) -fsanitize=fuzzer -o $@ $< \
		build/fuzz/hooks/sasl.o $(FUZZ_LIBS) $(LDLIBS)

asan: build/asan/godwit

# ---- the two commands -------------------------------------------------

run: deps build/godwit
	@./scripts/dev-setup.sh
	exec ./build/godwit serve -c run/godwit.yaml

test: deps
	@$(MAKE) --no-print-directory build/godwit build/asan/godwit $(UNIT_BINS) $(FUZZ_BINS) build/tests/syncrec.so build/asan/tools/dkim_verify
	@$(MAKE) --no-print-directory layers unit fuzz-smoke integration

# the include rule between the layers of src/ (docs/architecture.md)
layers:
	@./scripts/check-layers

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# A short run of every fuzz target, starting from its seed corpus, one per
# CPU at a time (scripts/fuzz-smoke.sh).
fuzz-smoke: $(FUZZ_BINS)
	@./scripts/fuzz-smoke.sh $${FUZZ_SMOKE_SECONDS:-10} $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@$(MAKE) --no-print-directory fuzz-smoke FUZZ_SMOKE_SECONDS=$(FUZZ_SECONDS)

# test_soak.py measures memory on the normal build (GODWIT_PLAIN_BIN).
# The tests mostly wait (on daemons, peers, timers), so they run in
# PYTEST_JOBS processes (pytest-xdist), a whole file per process. Their
# directories go below a 0755 directory of our own: the daemon user must
# reach them, and pytest sets its own /tmp/pytest-of-root back to 0700
# whenever a session starts. Kept when a test failed, removed otherwise.
PYTEST_JOBS ?= 2
integration: build/asan/godwit build/godwit build/tests/syncrec.so build/asan/tools/dkim_verify
	@base=$$(mktemp -d /tmp/godwit-it-XXXXXX) && chmod 755 $$base && \
	GODWIT_BIN=$(CURDIR)/build/asan/godwit \
	GODWIT_PLAIN_BIN=$(CURDIR)/build/godwit \
		$(PYTEST) -q -p no:cacheprovider -n $(PYTEST_JOBS) --dist loadfile \
		--basetemp=$$base tests/integration $(PYTEST_ARGS); \
	rc=$$?; if [ $$rc -eq 0 ]; then rm -rf $$base; \
	else echo "integration: test directories kept in $$base"; fi; exit $$rc

format:
	clang-format -i $(SRCS) $(MAIN) $(HDRS) $(UNIT_SRCS) $(FUZZ_SRCS)

clean:
	rm -rf build
