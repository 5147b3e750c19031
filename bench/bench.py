#!/usr/bin/env python3
"""bench/bench.py: the benchmarks of taskfarm_worker against the reference
Python client (taskfarm-worker 0.4.0). Python 3 standard library only; run it
with the harness venv's python (it runs the Python workers with the same
interpreter, so taskfarm_worker must be importable): `make bench`, or

    venv=$(tests/harness/venv.sh)
    make build build/bench/bench_worker build/bench/fork_exec_loop \
        build/bench/two_requests_floor
    cargo build --release --features cli --bin taskfarm
    $venv/bin/python bench/bench.py [--smoke] [--out-dir DIR] [--worker-bin PATH]
        [--runner-bin PATH] [--fork-exec-bin PATH] [--two-requests-bin PATH]

What it does (BENCHMARKS.md, which it writes, says it with the figures):

  a. Client overhead: nginx with canned answers for every endpoint
     (bench/nginx.conf.in), one keep-alive connection; the C worker
     (bench/bench_worker.c over the library) and the Python worker
     (bench/bench_worker.py over TaskFarmWorker) each do per task: ask for a
     task, ten updates (10..100), done. Requests/s, client CPU per request,
     peak RSS, process start -> first task. The request count each worker
     reports is checked against nginx's own counter (stub_status).
  b. The limit: wrk -t1 -c1 on the same canned server, a GET and a PUT with a
     body (bench/wrk.lua), same Authorization header as the workers; run in
     each repetition of a, next to the clients, so that all see the same load.
  c. The real server (tests/harness/server.sh): SQLite with one worker, and
     PostgreSQL + gunicorn (4 workers) with 1, 2, 4, 8, 16 worker processes
     (`--db postgresql`). Workers register, wait at a barrier and start
     together. Tasks/s, client and server CPU per task; no task may be handed
     out twice (checked on every run, with the server's numDone).
  d. The start storm: 64 workers started at once on a run of 64 tasks on the
     PostgreSQL server, one task each: ours with the password, ours with one
     shared token (TASKFARM_TOKEN), Python with the password. Seconds until
     every worker holds its task, the server's CPU, and the GET /api/token
     lines in gunicorn's access log (n with a password, 0 with the token:
     checked).
  e. Coalesced progress on PostgreSQL + gunicorn: ours with the default
     update interval (1 s) against the Python client — the stress pattern
     with 1..32 workers, a tight loop of many updates per task, and runs of
     1k/10k/50k tasks without and with an index on tasks.run_id. Requests
     per task from gunicorn's access log. (a-c run with
     TASKFARM_UPDATE_INTERVAL=0: every update sent, as the Python client.)
  f. A callgrind profile of the C worker on the canned server, grouped by
     crate; system calls per request of both clients (strace -c); the
     library's stripped size by crate (nm).

  Python package: the Python worker over taskfarm_worker_rs (python/, this
     library through ctypes; bench/bench_worker_rs.py) against the Python
     client, every update sent and with coalescing (update_interval=1.0),
     the C worker beside them: a's and c's figures on the canned server,
     SQLite and PostgreSQL + gunicorn, and start -> first task against the
     real server (scenario_python_rs.py; `--only python-rs` runs it alone,
     `--merge python_rs FROM --render bench/figures.json` puts such a run
     into the full run's figures: `make bench-python-rs`).

  Many workers at once (the report's section f, scenario_scale.py): 1,000 C
     workers with a shared token started at once with the default start
     spread, none, 2.5 s and 10 s, the Python client beside them; a server
     restart with 1,000 workers waiting, with jitter and without
     (bench/retry_wave.svg). `--only scale` runs it alone, `--merge scale
     FROM --render bench/figures.json` puts it into the full run's figures:
     `make bench-scale`.

  `taskfarm run` (the report's section g, scenario_run.py): `taskfarm run
     UUID -- true` against the canned server and the real one (PostgreSQL +
     gunicorn), GNU parallel -j1, a /bin/sh loop and a plain fork+exec loop
     (bench/fork_exec_loop.c) running the same command locally: tasks/s,
     each launcher's own CPU per task (its children's apart, from
     /proc/PID/stat of the unreaped process) and the issue's target (the
     runner's own CPU per task at most twice fork+exec's own), with the
     library's own CPU per request alone (bench_worker on the canned
     server) and the floor of any client of the protocol, measured: the
     two requests per task of a minimal C client (bench/two_requests_floor.c),
     alone and with fork+exec of the command. `--only run`
     runs it alone, `--merge run FROM --render bench/figures.json` puts it
     into the full run's figures: `make bench-run`.

Both clients run in the same invocation, alternating (C first in even
repetitions, Python first in odd ones); the tables give medians. In a and b
the server (nginx) is pinned to one CPU and the client (C worker, Python
worker or wrk) to another, when there are two. The machine's load (load
average, busy CPUs from /proc/stat, and the CPU used by processes that are
not the benchmark's) is sampled every second and reported.

--render FIGURES: run nothing, write BENCHMARKS.md, results.csv and the plots
again from a run's saved figures (bench/figures.json, which every run writes
beside results.csv); the prose is in bench/report/*.md, the code in
bench/taskfarm_bench/ (its __init__.py lists the modules).

--smoke: tiny sizes, outputs into build/bench-smoke/ (never the committed
BENCHMARKS.md); every correctness check still applies. Exit status: 0 when
every run worked and every check passed (performance targets are reported,
not enforced), 1 otherwise.

Tools: nginx, wrk, valgrind, binutils, strace, GNU parallel and PostgreSQL (for the
harness's `--db postgresql`) from Debian; when one is missing and we are root
with apt-get, it is installed (`apt-get install -y --no-install-recommends
nginx wrk valgrind binutils strace parallel postgresql`), else the run fails saying
what to install. The harness (tests/harness/server.sh) runs the
PostgreSQL cluster and gunicorn; its venv holds the Python packages.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from taskfarm_bench.main import main  # noqa: E402 (after the path it is found on)

if __name__ == "__main__":
    sys.exit(main(description=__doc__.split("\n\n")[0]))
