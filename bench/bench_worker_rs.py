#!/usr/bin/env python3
"""bench/bench_worker_rs.py: the benchmark worker over taskfarm_worker_rs
(python/: the Python client's API over libtaskfarm_worker through ctypes).

The same program as bench/bench_worker.py with the one import line changed
(`from taskfarm_worker_rs import TaskFarmWorker`), and the same JSON line at
the end (process start, peak RSS and CPU are measured by its functions): per
task, ask for a task (`worker.task`), report progress ten times (10, 20, ...,
100), `done()`.

    python bench_worker_rs.py RUN_UUID [MAX_TASKS]

Server, credentials and BENCH_* as for bench/bench_worker.py, and:
  BENCH_UPDATE_INTERVAL  seconds, given to TaskFarmWorker(update_interval=...)
                         (the package's coalescing); unset: the package's
                         default, every update sent at once (with
                         TASKFARM_UPDATE_INTERVAL=0 from the driver).
The package is found on PYTHONPATH and the library through
TASKFARM_WORKER_LIB (the driver sets both).

Requests are counted as bench/bench_worker.c counts them, one per library call
that sends one (3 to set up, then one per task request, update and done),
which holds only when every update is sent: with BENCH_UPDATE_INTERVAL the
worker cannot see how many were coalesced, so "requests" and "loop_requests"
are null and the driver counts them on the server (nginx's counter,
gunicorn's access log).
"""

import time

_T_MAIN = time.monotonic_ns()

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

from bench_worker import cpu_seconds, peak_rss_kb, process_start_ns  # noqa: E402 (its twin: same figures)


def main():
    t0, t0_source = process_start_ns()
    if len(sys.argv) not in (2, 3):
        print(f"usage: {sys.argv[0]} RUN_UUID [MAX_TASKS]", file=sys.stderr)
        return 2
    uuid = sys.argv[1]
    max_tasks = int(sys.argv[2]) if len(sys.argv) == 3 else 0
    list_tasks = os.environ.get("BENCH_LIST_TASKS") == "1"
    barrier = os.environ.get("BENCH_BARRIER") == "1"
    updates = int(os.environ.get("BENCH_UPDATES") or 10)
    sleep_s = int(os.environ.get("BENCH_UPDATE_SLEEP_US") or 0) / 1e6
    interval = os.environ.get("BENCH_UPDATE_INTERVAL")
    interval = float(interval) if interval else None

    # Imported here: its import (and the library's loading) is part of start -> first task.
    from taskfarm_worker_rs import TaskFarmWorker

    url = os.environ.get("TASKFARM_URL", "http://localhost:5000/api/")
    if not url.endswith("/"):
        url += "/"
    worker = TaskFarmWorker(os.environ["TASKFARM_USER"], os.environ["TASKFARM_PASSWORD"], uuid,
                            url_base=url, update_interval=interval)
    requests = 3  # GET token, GET runs/UUID, POST worker
    if barrier:
        print("ready", flush=True)
        sys.stdin.readline()

    ru_loop = resource.getrusage(resource.RUSAGE_SELF)
    loop_start = time.monotonic_ns()
    first_task = None
    received = []
    tasks = 0
    loop_requests = 0
    while max_tasks <= 0 or tasks < max_tasks:
        task = worker.task
        loop_requests += 1  # POST runs/UUID/task (nothing is held here)
        if task is None:
            break
        if first_task is None:
            first_task = time.monotonic_ns()
        if list_tasks:
            received.append(task)
        for i in range(1, updates + 1):
            if sleep_s:
                time.sleep(sleep_s)
            worker.update(100.0 * i / updates)
            loop_requests += 1  # PUT runs/UUID/tasks/ID percentCompleted
        worker.done()
        loop_requests += 1  # PUT runs/UUID/tasks/ID status done
        tasks += 1
    end = time.monotonic_ns()
    ru_end = resource.getrusage(resource.RUSAGE_SELF)
    peak = peak_rss_kb()
    worker.close()  # after the figures, as bench_worker.c frees its worker
    counted = interval is None or interval == 0

    report = {
        "client": "rs" if counted else "rs-coalesced",
        "tasks": tasks,
        "requests": requests + loop_requests if counted else None,
        "loop_requests": loop_requests if counted else None,
        "wall_s": (end - t0) / 1e9,
        "loop_wall_s": (end - loop_start) / 1e9,
        "cpu_s": cpu_seconds(ru_end),
        "loop_cpu_s": cpu_seconds(ru_end) - cpu_seconds(ru_loop),
        "loop_user_s": ru_end.ru_utime - ru_loop.ru_utime,
        "loop_sys_s": ru_end.ru_stime - ru_loop.ru_stime,
        "peak_rss_kb": peak,
        "maxrss_kb": ru_end.ru_maxrss,
        "first_task_s": -1.0 if first_task is None else (first_task - t0) / 1e9,
        "t0_source": t0_source,
        "loop_start_ns": loop_start,
        "end_ns": end,
    }
    if list_tasks:
        report["task_list"] = received
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
