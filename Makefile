# taskfarm_worker: build, test and demo. `make test` runs every test;
# `make demo` shows workers working through a run on a local real server.
#
# Each language or tool adds its own rules in mk/*.mk and appends its test
# target to TEST_TARGETS.

CARGO ?= cargo
CC ?= cc
RELEASE_DIR := target/release
# The crate's version (the [package] table of Cargo.toml) and the shared
# library's SONAME, libtaskfarm_worker.so.MAJOR.
TFW_VERSION := $(shell awk -F'"' '/^\[/ { p = ($$0 == "[package]") } p && /^version *=/ { print $$2; exit }' Cargo.toml)
SONAME := libtaskfarm_worker.so.$(firstword $(subst ., ,$(TFW_VERSION)))

# Test targets run by `make test` beside lint and the Rust test binaries,
# TEST_JOBS at a time (mk/rust-tests.sh; each prints its output whole when it
# ends): every suite works in a scratch directory of its own, on free ports,
# with servers of its own.
TEST_TARGETS := c-tests server-doc-tests
# How many test binaries and suites run at once (mk/rust-tests.sh).
TEST_JOBS ?= 4
export TEST_JOBS
# Release builds run with CC set (make's CC, `cc` unless given): ring's build
# script reads CC, and a test suite's `make install` runs with CC set, so
# without it that install would rebuild the release libraries and the tool
# (and relink the .so under the running tests) instead of finding them fresh.
RELEASE_CARGO = env CC="$(CC)" $(CARGO)

.PHONY: all build header reference test demo lint rust-tests rust-test-build stress c-tests exports prerequisites demo-prerequisites server-doc-tests clean

all: build

## build: the release libraries (.so with SONAME libtaskfarm_worker.so.0, .a)
## and the list of system libraries the .a needs (native-static-libs.txt).
## The crate is an rlib in Cargo.toml (a Rust project depending on it builds
## no C library and runs no build script): the C libraries, the SONAME and
## the list are asked for here. No crate of the `cli` feature and no cbindgen
## is compiled; the dependencies are built as the tool's build needs them
## (bitcode for LTO, no rlib of the crate asked for here), so `make install`
## compiles only the tool's own crates after this.
build:
	mk/install/native-static-libs.sh $(RELEASE_DIR) \
	    $(RELEASE_CARGO) rustc --release --lib --crate-type cdylib,staticlib -- \
	    -C link-arg=-Wl,-soname,$(SONAME) --print native-static-libs
	[ "$$(readlink $(RELEASE_DIR)/$(SONAME))" = libtaskfarm_worker.so ] || \
	    ln -sf libtaskfarm_worker.so $(RELEASE_DIR)/$(SONAME)

## header: regenerate include/taskfarm_worker.h from the sources, and the
## reference pages from it (commit both)
header:
	TASKFARM_BLESS_HEADER=1 $(CARGO) test --quiet --test header
	$(MAKE) --no-print-directory reference

## reference: docs/reference/, one page per C function, from the header's
## comments (mk/reference.py; tests/docs.rs fails when it is stale)
reference:
	python3 mk/reference.py --markdown docs/reference

## lint: formatting, clippy and rustdoc (every public item documented, no
## broken doc link), warnings are errors, with and without the `cli` feature;
## ruff on the Python and shellcheck on the shell scripts (mk/lint.sh)
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --features cli -- -D warnings
	$(CARGO) clippy --lib -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --features cli --quiet
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet
	mk/lint.sh

prerequisites:
	@tests/prerequisites.sh

demo-prerequisites:
	@tests/prerequisites.sh demo

## rust-tests: `cargo test --features cli` compiled once, then its test
## binaries side by side, TEST_JOBS at a time (mk/rust-tests.sh). The
## concurrency tests compile a C worker against the release library.
rust-tests: build
	CARGO="$(CARGO)" mk/rust-tests.sh

# The Rust tests compiled (mk/rust-tests.sh's step 1), target/debug/taskfarm
# with them: the tool as the tests run it.
rust-test-build:
	$(CARGO) test --features cli --no-run

## stress: the concurrency tests with bigger sizes (PostgreSQL; about 2.5 min)
stress: build
	TASKFARM_STRESS_TASKS=3000 TASKFARM_STRESS_PROCESSES=48 TASKFARM_STRESS_THREADS=8 \
	TASKFARM_STRESS_INTEROP_TASKS=1000 TASKFARM_STRESS_INTEROP_C=8 TASKFARM_STRESS_INTEROP_PYTHON=8 \
	$(CARGO) test --features cli --test concurrency -- --nocapture --test-threads=1

## exports: the shared library exports every function the header declares
exports: build
	tests/check_exports.sh $(RELEASE_DIR)/libtaskfarm_worker.so include/taskfarm_worker.h

c-tests: build exports
	tests/c/run.sh

## server-doc-tests: docs/server.md followed command by command (gunicorn,
## PostgreSQL, nginx with TLS), a C worker run through the result
server-doc-tests: build
	tests/server_doc/run.sh

-include $(sort $(wildcard mk/*.mk))

## test: every test (lint, header check, Rust unit and integration tests
## against the real server and the fault server, C programs under valgrind):
## the release libraries, the Rust tests and the harness venv built side by
## side (two cargo runs on two profiles: each fills the core the other leaves
## idle, as in a release LTO link; the release build's output is printed when
## it ends), then lint, the test
## binaries, the doc tests and the suites of TEST_TARGETS side by side,
## TEST_JOBS (4) at a time, the longest first (mk/rust-tests.sh); the test
## servers' user gets a password hash of 1,000 rounds
## (TASKFARM_TEST_PASSWORD_ROUNDS, tests/harness/taskfarm_harness/database.py)
test: prerequisites
	@start=$$(date +%s); build_log=$$(mktemp); \
	export TASKFARM_TEST_PASSWORD_ROUNDS=$${TASKFARM_TEST_PASSWORD_ROUNDS:-1000}; \
	tests/harness/venv.sh >/dev/null & venv=$$!; \
	$(MAKE) --no-print-directory build >"$$build_log" 2>&1 & build=$$!; \
	$(CARGO) test --features cli --no-run; tests=$$?; \
	wait $$build; built=$$?; cat "$$build_log"; rm -f "$$build_log"; \
	[ $$built = 0 ] && [ $$tests = 0 ] && wait $$venv && \
	CARGO="$(CARGO)" MAKE="$(MAKE)" TEST_SUITES="lint $(TEST_TARGETS)" mk/rust-tests.sh && \
	echo "make test: all passed in $$(( $$(date +%s) - start )) s"

## demo: a local real server, a run, workers working through it (needs only
## Rust, a C, C++ and Fortran compiler and Python: tests/prerequisites.sh demo)
demo: demo-prerequisites build
	examples/demo.sh

clean:
	$(CARGO) clean
	rm -rf build
