# crid build. Two entry points matter most (see README):
#   make run    installs dependencies and a default pod network, builds, runs the
#               daemon on its default socket
#   make check  installs dependencies, builds with ASan+UBSan, runs every test
# Other targets: all (release build), asan, unit, integration, criclient (the Go
# test client), fuzz (the libFuzzer targets, FUZZ_SECONDS each), install, clean.

VERSION := 0.1.0
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= /lib/systemd/system
DESTDIR ?=
PYTHON ?= /usr/bin/python3
# The default pod network (scripts/install-cni-config.sh), written by run and
# install only into an empty CNI configuration directory.
CNI_CONF_DIR ?= $(SYSCONFDIR)/cni/net.d
CNI_IPMASQ ?= false

PKGS := libnghttp2 libprotobuf-c yaml-0.1 jansson libcurl libarchive sqlite3 libssl libcrypto zlib
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
# The daemon loads libcurl, libarchive and OpenSSL on first use
# (src/common/lazylib.h): its binary links only the others.
LAZY_PKGS := libcurl libarchive libssl libcrypto
DAEMON_LIBS = $(shell pkg-config --libs $(filter-out $(LAZY_PKGS),$(PKGS))) -ldl

# -Ulinux: the generated CRI types have fields named "linux", a GNU C macro.
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -Ulinux -DCRID_VERSION='"$(VERSION)"' \
	-Wall -Wextra -Werror -Wformat=2 -Wshadow -Wpointer-arith -Wno-unused-parameter \
	-Wno-missing-field-initializers -fno-strict-aliasing -pthread
RELEASE_CFLAGS := -O2 -g
ASAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

# libFuzzer targets: everything built with Debian's clang, instrumented.
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined

VARIANT ?= release
BUILD := build/$(VARIANT)
GEN := build/gen
ifeq ($(VARIANT),asan)
  MODE_CFLAGS := $(ASAN_CFLAGS)
else ifeq ($(VARIANT),fuzz)
  MODE_CFLAGS := $(FUZZ_CFLAGS)
  CC := clang
else
  MODE_CFLAGS := $(RELEASE_CFLAGS)
  SHIM_LDFLAGS := -static-pie
endif
CFLAGS_ALL = $(BASE_CFLAGS) $(MODE_CFLAGS) -Isrc -I$(GEN) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(MODE_CFLAGS) -pthread $(LDFLAGS)

PROTO := proto/runtime/v1/api.proto
PROTO_C := $(GEN)/runtime/v1/api.pb-c.c
PROTO_H := $(GEN)/runtime/v1/api.pb-c.h

DAEMON_MAIN := src/main.c
SHIM_MAIN := src/shim/shim_main.c
LAZY_STUBS := src/common/lazylib_stubs.c
LIB_SRCS := $(sort $(filter-out $(DAEMON_MAIN) $(SHIM_MAIN) $(LAZY_STUBS),$(wildcard src/*/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/api.pb-c.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all asan deps deps-test run check unit integration criclient install clean
all: $(BUILD)/crid $(BUILD)/crid-shim $(BUILD)/crid-sandbox-init

deps:
	sh scripts/install-deps.sh build run

deps-test:
	sh scripts/install-deps.sh build run test

asan:
	$(MAKE) VARIANT=asan all

$(PROTO_C) $(PROTO_H): $(PROTO)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto $(PROTO)

$(BUILD)/gen/api.pb-c.o: $(PROTO_C) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/src/%.o: src/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libcrid.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/crid: $(BUILD)/src/main.o $(LAZY_STUBS:%.c=$(BUILD)/%.o) $(BUILD)/libcrid.a
	$(CC) $(LDFLAGS_ALL) -Wl,--as-needed -o $@ $^ $(DAEMON_LIBS)

# The per-container monitor: libc only, so it stays small; linked
# statically as a PIE (but under the sanitizers, whose runtimes are shared), so that
# each of its processes dirties no pages of the dynamic loader and libc.
$(BUILD)/crid-shim: $(BUILD)/src/shim/shim_main.o $(BUILD)/libcrid.a
	$(CC) $(LDFLAGS_ALL) $(SHIM_LDFLAGS) -Wl,--as-needed -o $@ $^

# The process of a pod's sandbox container (one sandbox per pod, e.g.
# gVisor): static, since its root file system holds nothing else; never
# sanitized (ASan does not link statically).
$(BUILD)/crid-sandbox-init: src/sandbox_init.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -static -s -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcrid.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(shell pkg-config --cflags check) -o $@ $^ $(PKG_LIBS) $(shell pkg-config --libs check) $(LDFLAGS_ALL)

# make fuzz: each target for FUZZ_SECONDS on its corpus (the committed
# seeds of tests/fuzz/corpus/<target>, plus what it finds, kept in
# build/fuzz/corpus/<target>); findings are written to build/fuzz/findings.
# make fuzz-check (part of make check): each target briefly on its seeds.
FUZZ_TARGETS := grpc request reference manifest challenge unpack config cdi
FUZZ_SECONDS ?= 60
FUZZ_CHECK_SECONDS ?= 4
FUZZ_BINS := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-run fuzz-check
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libcrid.a
	@mkdir -p $(dir $@)
	clang $(BASE_CFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc -I$(GEN) $(PKG_CFLAGS) -o $@ $< \
		build/fuzz/libcrid.a $(PKG_LIBS)

fuzz-build:
	sh scripts/install-deps.sh build test
	$(MAKE) VARIANT=fuzz build/fuzz/libcrid.a $(FUZZ_BINS)

fuzz: fuzz-build
	$(MAKE) fuzz-run CORPUS=build/fuzz/corpus SECONDS=$(FUZZ_SECONDS)

fuzz-check:
	$(MAKE) VARIANT=fuzz build/fuzz/libcrid.a $(FUZZ_BINS)
	rm -rf build/fuzz/check-corpus
	$(MAKE) fuzz-run CORPUS=build/fuzz/check-corpus SECONDS=$(FUZZ_CHECK_SECONDS)

fuzz-run:
	@set -e; mkdir -p build/fuzz/findings; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(CORPUS)/$$t; \
		echo "== fuzz_$$t for $(SECONDS) s"; \
		ASAN_OPTIONS=detect_leaks=1 build/fuzz/fuzz_$$t -max_total_time=$(SECONDS) -timeout=20 \
			-rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
			-artifact_prefix=build/fuzz/findings/$$t- $(CORPUS)/$$t tests/fuzz/corpus/$$t \
			2>build/fuzz/fuzz_$$t.log || { tail -60 build/fuzz/fuzz_$$t.log; exit 1; }; \
		grep -E "^stat::number_of_executed_units|^Done" build/fuzz/fuzz_$$t.log | tr '\n' ' '; echo; \
	done

-include $(LIB_OBJS:.o=.d) $(BUILD)/src/main.d
-include $(BUILD)/src/shim/shim_main.d

run: deps
	$(MAKE) all
	sh scripts/install-cni-config.sh $(CNI_CONF_DIR) $(CNI_IPMASQ)
	$(BUILD)/crid $(CRID_ARGS)

unit:
	$(MAKE) VARIANT=asan unit-run

.PHONY: unit-run
unit-run: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CK_FORK=yes $$t; done

integration:
	$(MAKE) VARIANT=asan all criclient
	CRID_BIN=$(CURDIR)/build/asan/crid $(PYTHON) -m pytest -v tests/integration

# The release build too: -O2 finds warnings (-Werror) that -O1 does not,
# and `make run` builds it.
check: deps-test
	$(MAKE) VARIANT=release all
	$(MAKE) VARIANT=asan all unit-run criclient
	$(MAKE) fuzz-check
	CRID_BIN=$(CURDIR)/build/asan/crid $(PYTHON) -m pytest -v -p no:cacheprovider tests/integration

# The kubelet-style CRI client in Go of the tests and benchmarks:
# build/criclient/criclient, built offline from Debian's Go packages.
criclient:
	sh scripts/build-criclient.sh

# Onto this machine (no DESTDIR), the packages crid runs with come first:
# the OCI runtimes, Debian's CNI plugins and iptables.
install: all
	@if [ -z "$(DESTDIR)" ]; then sh scripts/install-deps.sh run; fi
	install -D -m 0755 $(BUILD)/crid $(DESTDIR)$(PREFIX)/bin/crid
	install -D -m 0755 $(BUILD)/crid-shim $(DESTDIR)$(PREFIX)/bin/crid-shim
	install -D -m 0755 $(BUILD)/crid-sandbox-init $(DESTDIR)$(PREFIX)/bin/crid-sandbox-init
	install -D -m 0644 packaging/crid.service $(DESTDIR)$(SYSTEMDUNITDIR)/crid.service
	sed -i 's|@BINDIR@|$(PREFIX)/bin|' $(DESTDIR)$(SYSTEMDUNITDIR)/crid.service
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/crid/crid.d
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/crid/crid.yaml ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/crid/crid.yaml"; \
	else \
		install -m 0644 packaging/crid.yaml $(DESTDIR)$(SYSCONFDIR)/crid/crid.yaml; \
	fi
	sh scripts/install-cni-config.sh $(DESTDIR)$(CNI_CONF_DIR) $(CNI_IPMASQ)
	install -D -m 0644 packaging/apparmor/crid-default $(DESTDIR)$(SYSCONFDIR)/apparmor.d/crid-default
	@# Loaded where AppArmor runs: RuntimeDefault is refused until it is.
	@if [ -z "$(DESTDIR)" ] && command -v apparmor_parser >/dev/null && \
	    [ -d /sys/kernel/security/apparmor ]; then \
		apparmor_parser -r -W $(SYSCONFDIR)/apparmor.d/crid-default; \
	fi

clean:
	rm -rf build

# make bench: installs what the benchmarks need (containerd included, for the
# comparison), builds the release crid and the Go client, and runs the
# benchmarks of bench/: the pull benchmark, then the node benchmark (crid,
# containerd and the floor, bench/node_bench.py). Pass options with
# BENCH_ARGS (pull_bench.py) and NODE_BENCH_ARGS (node_bench.py), e.g.
# make bench-node NODE_BENCH_ARGS="--json /tmp/node.json --markdown".
.PHONY: bench bench-node bench-deps
bench-deps:
	sh scripts/install-deps.sh build run test
	@if [ ! -x /usr/bin/containerd ]; then \
		echo "bench: installing containerd" >&2; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends containerd || \
		{ apt-get update -q && apt-get install -y --no-install-recommends containerd; }; \
	fi
	$(MAKE) VARIANT=release all criclient

bench: bench-deps
	$(PYTHON) bench/pull_bench.py $(BENCH_ARGS)
	$(PYTHON) bench/node_bench.py $(NODE_BENCH_ARGS)

bench-node: bench-deps
	$(PYTHON) bench/node_bench.py $(NODE_BENCH_ARGS)
