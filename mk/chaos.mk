# mk/chaos.mk: the chaos soak (chaos/). Included by the Makefile.
#
#   make chaos          one soak of our library on the real server (PostgreSQL +
#                       gunicorn) under a seeded schedule of faults, then the
#                       Python client taskfarm-worker 0.4.0 on the same schedule;
#                       their figures go into chaos/figures.json and RELIABILITY.md
#                       is written from it. CHAOS_SEED (default: drawn, printed),
#                       CHAOS_SECONDS (120), CHAOS_TASKS (1000), CHAOS_WORKERS (8).
#                       Root is needed (a tmpfs journal in a mount namespace of its
#                       own; the reaper on "another host" in a PID and UTS
#                       namespace of its own, unshare -p -f -u).
#   make chaos-short    our library alone, about two minutes of faults on the fixed
#                       seed CHAOS_SHORT_SEED, failing on any violation (part of
#                       `make test`; root, as make chaos)
#   make chaos-unit     the unit tests of the oracle, the schedule and the report,
#                       and the server faults on the real server (root only)
#                       (chaos/tests/, Python unittest; part of `make test`)
#   make chaos-render   RELIABILITY.md again from chaos/figures.json (no soak)

CHAOS_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror
CHAOS_WORKER := build/chaos/chaos_worker
CHAOS_SHORT_SEED ?= 27

.PHONY: chaos chaos-short chaos-unit chaos-render chaos-tools

$(CHAOS_WORKER): chaos/chaos_worker.c include/taskfarm_worker.h $(RELEASE_DIR)/libtaskfarm_worker.so
	@mkdir -p $(dir $@)
	$(CC) $(CHAOS_CFLAGS) -Iinclude $< -L$(RELEASE_DIR) -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR) -ltaskfarm_worker -o $@

# The library, the C worker and the `taskfarm` tool (its reaper).
chaos-tools: build
	$(RELEASE_CARGO) build --release --features cli --bin taskfarm
	@$(MAKE) --no-print-directory $(CHAOS_WORKER)

## chaos: a soak of our library and of the Python client on one seed (RELIABILITY.md)
chaos: chaos-tools
	@venv=$$(tests/harness/venv.sh) && seed=$${CHAOS_SEED:-$$(od -An -N3 -tu4 /dev/urandom | tr -d ' ')} && \
	echo "make chaos: seed $$seed" && \
	CHAOS_SEED=$$seed "$$venv/bin/python" chaos/chaos.py --client c --figures chaos/figures.json && \
	CHAOS_SEED=$$seed "$$venv/bin/python" chaos/chaos.py --client python --figures chaos/figures.json

## chaos-short: two minutes of soak on a fixed seed; fails on any violation
chaos-short: chaos-tools
	@venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" chaos/chaos.py --client c --seed $(CHAOS_SHORT_SEED) --seconds 120 --tasks 800 \
	    --out-dir build/chaos-short --fail-on-violation

## chaos-unit: the unit tests of the oracle, the schedule, the report and the server faults
chaos-unit:
	@venv=$$(tests/harness/venv.sh) && \
	"$$venv/bin/python" -m unittest discover -s chaos/tests -t chaos

## chaos-render: RELIABILITY.md again from chaos/figures.json (no soak)
chaos-render:
	@venv=$$(tests/harness/venv.sh) && "$$venv/bin/python" chaos/chaos.py --render chaos/figures.json

TEST_TARGETS += chaos-unit chaos-short
