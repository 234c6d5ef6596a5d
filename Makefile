# godwit — build, run and test.
#
#   make            build build/godwit (optimised, with debug info)
#   make run        install what is missing, build, start the dev server (./run/)
#   make test       install what is missing, build, run every test
#   make fuzz       longer fuzz runs (FUZZ_SECONDS per target)
#   make clean
#
# Every source under src/ and src/lib/ except main.c goes into a static
# library that the daemon, the unit tests and the fuzz targets link against.

CC       ?= cc
FUZZ_CC  ?= clang
PKGS     := libevent_core libevent_openssl libevent_pthreads libssl libcrypto \
            libunbound sqlite3 libcrypt yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes \
            -Wstrict-prototypes -Wpointer-arith -Wvla -Werror \
            -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE $(WARN) -Isrc $(PKG_CFLAGS) $(CFLAGS)
LDLIBS   := $(PKG_LIBS) -lpthread

SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined

SRCS     := $(sort $(filter-out src/main.c,$(wildcard src/*.c src/lib/*.c)))
HDRS     := $(wildcard src/*.h src/lib/*.h)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)

OBJS      := $(SRCS:src/%.c=build/obj/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o)
FUZZ_OBJS := $(SRCS:src/%.c=build/fuzz/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)

FUZZ_SECONDS ?= 20
PYTEST   := /usr/bin/python3 -m pytest

.PHONY: all deps run test unit fuzz-smoke fuzz integration asan clean format bench

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

# rebuilt from scratch: `ar r` would keep objects of deleted sources
build/libgodwit.a: $(OBJS)
	rm -f $@ && ar rcs $@ $^
build/asan/libgodwit.a: $(ASAN_OBJS)
	rm -f $@ && ar rcs $@ $^
build/fuzz/libgodwit.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^

build/godwit: src/main.c build/libgodwit.a
	$(CC) $(ALL_CFLAGS) -o $@ $< build/libgodwit.a $(LDLIBS)

build/asan/godwit: src/main.c build/asan/libgodwit.a
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $< build/asan/libgodwit.a $(LDLIBS)

build/asan/tests/%: tests/unit/%.c build/asan/libgodwit.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -Itests/unit -o $@ $< build/asan/libgodwit.a \
		$(LDLIBS) $$(pkg-config --libs cmocka)

# The power-loss tests' recorder (tests/durability/syncrec.c), loaded into
# the daemon with LD_PRELOAD by tests/integration/test_powerloss.py; never
# linked into godwit.
build/tests/syncrec.so: tests/durability/syncrec.c Makefile
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -D_GNU_SOURCE $(WARN) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

build/fuzz/%: fuzz/%.c build/fuzz/libgodwit.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CFLAGS) -O1 $(SAN) -fsanitize=fuzzer -o $@ $< \
		build/fuzz/libgodwit.a $(LDLIBS)

asan: build/asan/godwit

# ---- the two commands -------------------------------------------------

run: deps build/godwit
	@./scripts/dev-setup.sh
	exec ./build/godwit serve -c run/godwit.yaml

test: deps
	@$(MAKE) --no-print-directory build/godwit build/asan/godwit $(UNIT_BINS) $(FUZZ_BINS) build/tests/syncrec.so
	@$(MAKE) --no-print-directory unit fuzz-smoke integration

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# A short run of every fuzz target, starting from its seed corpus.
fuzz-smoke: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
		mkdir -p build/fuzz/corpus/$$n; \
		echo "== $$n ($${FUZZ_SMOKE_SECONDS:-10}s)"; \
		$$f -max_total_time=$${FUZZ_SMOKE_SECONDS:-10} -max_len=4096 \
			-print_final_stats=0 build/fuzz/corpus/$$n $$( [ -d fuzz/corpus/$$n ] && echo fuzz/corpus/$$n ) \
			2>build/fuzz/$$n.log || { tail -50 build/fuzz/$$n.log; exit 1; }; done

fuzz: $(FUZZ_BINS)
	@$(MAKE) --no-print-directory fuzz-smoke FUZZ_SMOKE_SECONDS=$(FUZZ_SECONDS)

# test_soak.py measures memory on the normal build (GODWIT_PLAIN_BIN)
integration: build/asan/godwit build/godwit build/tests/syncrec.so
	GODWIT_BIN=$(CURDIR)/build/asan/godwit \
	GODWIT_PLAIN_BIN=$(CURDIR)/build/godwit \
		$(PYTEST) -q tests/integration $(PYTEST_ARGS)

format:
	clang-format -i $(SRCS) src/main.c $(HDRS) $(UNIT_SRCS) $(FUZZ_SRCS)

clean:
	rm -rf build
