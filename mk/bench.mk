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
#   make bench-render  BENCHMARKS.md, bench/results.csv and the plots again from
#                      the figures of the last run (bench/figures.json), after a
#                      change of the report's prose (bench/report/*.md)
#
# bench and bench-smoke build the library and the C benchmark worker, make sure
# the harness venv (the real server and the Python client) exists, and run
# bench/bench.py with the venv's python; it installs nginx, wrk, valgrind,
# binutils, strace and postgresql from Debian's packages when they are missing
# (as root).

BENCH_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror
BENCH_WORKER := build/bench/bench_worker

.PHONY: bench bench-smoke bench-unit bench-render bench-python-rs

$(BENCH_WORKER): bench/bench_worker.c include/taskfarm_worker.h $(RELEASE_DIR)/libtaskfarm_worker.so
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -Iinclude $< -L$(RELEASE_DIR) -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR) -ltaskfarm_worker -o $@

## bench: the benchmarks, ours against the Python client (BENCHMARKS.md)
bench: build
	@$(MAKE) --no-print-directory $(BENCH_WORKER)
	@start=$$(date +%s); venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" bench/bench.py --worker-bin $(BENCH_WORKER) && \
	echo "make bench: done in $$(( $$(date +%s) - start )) s"

## bench-smoke: the benchmarks with tiny sizes, correctness checks only
bench-smoke: build
	@$(MAKE) --no-print-directory $(BENCH_WORKER)
	@start=$$(date +%s); venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" bench/bench.py --smoke --worker-bin $(BENCH_WORKER) && \
	echo "make bench-smoke: passed in $$(( $$(date +%s) - start )) s"

## bench-python-rs: the Python package's section alone, merged into bench/figures.json and BENCHMARKS.md
bench-python-rs: build
	@$(MAKE) --no-print-directory $(BENCH_WORKER)
	@venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" bench/bench.py --only python-rs --worker-bin $(BENCH_WORKER) --out-dir build/bench-python-rs && \
	"$$venv/bin/python" bench/bench.py --merge python_rs build/bench-python-rs/bench/figures.json --render bench/figures.json

## bench-unit: the unit tests of the benchmark's statistics and report
bench-unit:
	@venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" -m unittest discover -s bench/tests -t bench

## bench-render: BENCHMARKS.md again from bench/figures.json (no run)
bench-render:
	@venv=$$(tests/harness/venv.sh) && "$$venv/bin/python" bench/bench.py --render bench/figures.json

TEST_TARGETS += bench-unit bench-smoke
