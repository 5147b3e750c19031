# taskfarm_worker: build, test and demo. `make test` runs every test;
# `make demo` shows C workers working through a run on a local real server.

CARGO ?= cargo
CC ?= cc
RELEASE_DIR := target/release

.PHONY: all build header test demo lint rust-tests c-tests prerequisites clean

all: build

## build: the release libraries (.so with SONAME libtaskfarm_worker.so.0, .a)
build:
	$(CARGO) build --release --lib
	ln -sf libtaskfarm_worker.so $(RELEASE_DIR)/libtaskfarm_worker.so.0

## header: regenerate include/taskfarm_worker.h from the sources (commit it)
header:
	TASKFARM_BLESS_HEADER=1 $(CARGO) test --quiet --test header

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

prerequisites:
	@tests/prerequisites.sh

rust-tests:
	$(CARGO) test --no-fail-fast

c-tests: build
	tests/c/run.sh

## test: every test (lint, header check, Rust unit and integration tests
## against the real server and the fault server, C tests under valgrind)
test: prerequisites
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory lint rust-tests c-tests && \
	echo "make test: all passed in $$(( $$(date +%s) - start )) s"

## demo: a local real server, a run, C workers working through it
demo: prerequisites build
	examples/demo.sh

clean:
	$(CARGO) clean
	rm -rf build
