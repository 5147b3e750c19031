# mk/bench.mk: the benchmarks (bench/). Included by the Makefile.
#
#   make bench         every scenario at full size, the start storm of 64
#                      workers included; writes BENCHMARKS.md, bench/results.csv,
#                      bench/figures.json and the plots (bench/*.svg); the
#                      recorded run took 708 s on 2 quiet cores
#   make bench-smoke   the same with tiny sizes into build/bench-smoke/, checking
#                      correctness only (part of `make test`)
#   make bench-unit    the unit tests of the benchmark's statistics and report
#                      (bench/tests/, Python unittest; part of `make test`)
#   make bench-python-rs  the section on the Python package (taskfarm_worker_rs
#                      against taskfarm-worker 0.4.0) alone at full size, merged
#                      into bench/figures.json (the other figures kept) and
#                      rendered: BENCHMARKS.md says it came from a run of its own
#   make bench-scale   section f (many workers at once) alone at full size, merged
#                      into bench/figures.json likewise
#   make bench-run     section g (`taskfarm run -- true` against GNU parallel, a
#                      shell loop and fork+exec) alone at full size, merged
#                      into bench/figures.json likewise
#   make bench-render  BENCHMARKS.md, bench/results.csv and the plots again from
#                      the figures of the last run (bench/figures.json), after a
#                      change of the report's prose (bench/report/*.md)
#
# bench and bench-smoke build the library, the C benchmark worker, the
# fork+exec loop, the two-request floor and the command-line tool (release; the smoke's in debug, as
# the tests build it), make sure
# the harness venv (the real server and the Python client) exists, and run
# bench/bench.py with the venv's python; it installs nginx, wrk, valgrind,
# binutils, strace, parallel and postgresql from Debian's packages when they are missing
# (as root).

BENCH_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror
BENCH_WORKER := build/bench/bench_worker
FORK_EXEC_LOOP := build/bench/fork_exec_loop
TWO_REQUESTS_FLOOR := build/bench/two_requests_floor
# Scenario g's runner: the command-line tool, in release (the smoke's in debug,
# the binary of the Rust tests' build).
RUNNER_BIN := $(RELEASE_DIR)/taskfarm
RUNNER_ARGS = --runner-bin $(RUNNER_BIN) --fork-exec-bin $(FORK_EXEC_LOOP) --two-requests-bin $(TWO_REQUESTS_FLOOR)
SMOKE_RUNNER_ARGS = --runner-bin target/debug/taskfarm --fork-exec-bin $(FORK_EXEC_LOOP) \
	--two-requests-bin $(TWO_REQUESTS_FLOOR)

.PHONY: bench bench-smoke bench-unit bench-render bench-python-rs bench-scale bench-run bench-programs

$(BENCH_WORKER): bench/bench_worker.c include/taskfarm_worker.h $(RELEASE_DIR)/libtaskfarm_worker.so
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -Iinclude $< -L$(RELEASE_DIR) -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR) -ltaskfarm_worker -o $@

$(FORK_EXEC_LOOP): bench/fork_exec_loop.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) $< -o $@

$(TWO_REQUESTS_FLOOR): bench/two_requests_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) $< -o $@

# The C programs of the benchmark.
bench-programs: build
	@$(MAKE) --no-print-directory $(BENCH_WORKER) $(FORK_EXEC_LOOP) $(TWO_REQUESTS_FLOOR)

## bench: the benchmarks, ours against the Python client (BENCHMARKS.md)
bench: bench-programs
	$(RELEASE_CARGO) build --release --features cli --bin taskfarm
	@start=$$(date +%s); venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" bench/bench.py --worker-bin $(BENCH_WORKER) $(RUNNER_ARGS) && \
	echo "make bench: done in $$(( $$(date +%s) - start )) s"

## bench-smoke: the benchmarks with tiny sizes, correctness checks only
## (the tool: target/debug/taskfarm, as `cargo test` builds it for the tests;
## a `cargo build` of it would compile another one in its place)
bench-smoke: bench-programs rust-test-build
	@start=$$(date +%s); venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" bench/bench.py --smoke --worker-bin $(BENCH_WORKER) $(SMOKE_RUNNER_ARGS) && \
	echo "make bench-smoke: passed in $$(( $$(date +%s) - start )) s"

## bench-python-rs: the Python package's section alone, merged into bench/figures.json and BENCHMARKS.md
bench-python-rs: build
	@$(MAKE) --no-print-directory $(BENCH_WORKER)
	@venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" bench/bench.py --only python-rs --worker-bin $(BENCH_WORKER) --out-dir build/bench-python-rs && \
	"$$venv/bin/python" bench/bench.py --merge python_rs build/bench-python-rs/bench/figures.json --render bench/figures.json

## bench-scale: section f (many workers at once) alone, merged into bench/figures.json and BENCHMARKS.md
bench-scale: build
	@$(MAKE) --no-print-directory $(BENCH_WORKER)
	@venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" bench/bench.py --only scale --worker-bin $(BENCH_WORKER) --out-dir build/bench-scale && \
	"$$venv/bin/python" bench/bench.py --merge scale build/bench-scale/bench/figures.json --render bench/figures.json

## bench-run: section g (`taskfarm run -- true` against GNU parallel and fork+exec) alone, merged into bench/figures.json and BENCHMARKS.md
bench-run: bench-programs
	$(RELEASE_CARGO) build --release --features cli --bin taskfarm
	@venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" bench/bench.py --only run --worker-bin $(BENCH_WORKER) $(RUNNER_ARGS) --out-dir build/bench-run && \
	"$$venv/bin/python" bench/bench.py --merge run build/bench-run/bench/figures.json --render bench/figures.json

## bench-unit: the unit tests of the benchmark's statistics and report
bench-unit:
	@venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" -m unittest discover -s bench/tests -t bench

## bench-render: BENCHMARKS.md again from bench/figures.json (no run)
bench-render:
	@venv=$$(tests/harness/venv.sh) && "$$venv/bin/python" bench/bench.py --render bench/figures.json

TEST_TARGETS += bench-unit bench-smoke
