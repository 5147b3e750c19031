#!/usr/bin/env python3
"""bench/bench_worker.py: the benchmark worker over the reference Python
client (taskfarm_worker.TaskFarmWorker, taskfarm-worker 0.4.0).

The twin of bench/bench_worker.c: per task exactly what the Python client's
stress test does — ask for a task (`worker.task`), report progress ten times
(10, 20, ..., 100), `done()` — then one JSON line on stdout with the same
figures and keys as the C worker.

    python bench_worker.py RUN_UUID [MAX_TASKS]

Server and credentials from TASKFARM_URL, TASKFARM_USER, TASKFARM_PASSWORD;
BENCH_T0_NS, BENCH_BARRIER, BENCH_LIST_TASKS, BENCH_UPDATES and
BENCH_UPDATE_SLEEP_US as for the C worker. Requests are counted
where they leave: a wrapper around requests' HTTPAdapter.send (each attempt,
retries included).
"""

import time

_T_MAIN = time.monotonic_ns()

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def process_start_ns():
    env = os.environ.get("BENCH_T0_NS", "")
    if env:
        return int(env), "launcher"
    with open("/proc/self/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    fields = data[data.rindex(")") + 2:].split()
    ticks = int(fields[19])
    start_boot = ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    shift = time.clock_gettime_ns(time.CLOCK_BOOTTIME) - time.monotonic_ns()
    return start_boot - shift, "proc"


def peak_rss_kb():
    """VmHWM (kB): the peak RSS of this program. Not ru_maxrss: Linux keeps
    the launcher's RSS in ru_maxrss across fork + exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def cpu_seconds(ru):
    return ru.ru_utime + ru.ru_stime


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

    # Imported here: their import time is part of start -> first task.
    import requests.adapters
    from taskfarm_worker import TaskFarmWorker

    counter = [0]
    send = requests.adapters.HTTPAdapter.send

    def counting_send(self, *args, **kwargs):
        counter[0] += 1
        return send(self, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = counting_send

    url = os.environ.get("TASKFARM_URL", "http://localhost:5000/api/")
    if not url.endswith("/"):
        url += "/"
    worker = TaskFarmWorker(os.environ["TASKFARM_USER"],
                            os.environ["TASKFARM_PASSWORD"], uuid, url_base=url)
    if barrier:
        print("ready", flush=True)
        sys.stdin.readline()

    ru_loop = resource.getrusage(resource.RUSAGE_SELF)
    loop_start = time.monotonic_ns()
    requests_before_loop = counter[0]
    first_task = None
    received = []
    tasks = 0
    while max_tasks <= 0 or tasks < max_tasks:
        task = worker.task
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
        worker.done()
        tasks += 1
    end = time.monotonic_ns()
    ru_end = resource.getrusage(resource.RUSAGE_SELF)

    report = {
        "client": "python",
        "tasks": tasks,
        "requests": counter[0],
        "loop_requests": counter[0] - requests_before_loop,
        "wall_s": (end - t0) / 1e9,
        "loop_wall_s": (end - loop_start) / 1e9,
        "cpu_s": cpu_seconds(ru_end),
        "loop_cpu_s": cpu_seconds(ru_end) - cpu_seconds(ru_loop),
        "loop_user_s": ru_end.ru_utime - ru_loop.ru_utime,
        "loop_sys_s": ru_end.ru_stime - ru_loop.ru_stime,
        "peak_rss_kb": peak_rss_kb(),
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
