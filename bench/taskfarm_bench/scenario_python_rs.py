"""The Python package taskfarm_worker_rs (python/, the Python client's API
over the library through ctypes) against the Python client taskfarm-worker
0.4.0, in one run: the canned server (as in a) and the real servers (SQLite
x1, PostgreSQL + gunicorn with 1 to 16 workers, as in c), with the C worker
beside them for reference. The clients (bench/bench_worker_rs.py for the
package):

  python        taskfarm-worker 0.4.0 (bench/bench_worker.py)
  rs            the package as a switched program gets it: every update sent
                at once (TASKFARM_UPDATE_INTERVAL=0, the package's default)
  rs-coalesced  the package with TaskFarmWorker(update_interval=1.0)
  c             bench/bench_worker.c over the library (every update sent)

run_python_rs() returns the section's figures (its own rows, sizes, date and
load: a run of this section alone is merged into a full run's figures.json
by `bench.py --merge`); report_python_rs renders them."""

import os
import sys
import time
import uuid as uuidlib
from pathlib import Path

from .canned_server import CannedServer, fake_jwt
from .checks import check, log
from .config import alternating
from .cpus import CLIENT_CPU, pinned
from .paths import BENCH_DIR, LIB, ROOT
from .processes import CLEANUP
from .real_server import RealServer, start_server
from .runs import measured_run, server_env
from .scenario_canned import canned_metrics
from .workers import Workers

KEY = "python_rs"  # the section's key in figures.json
CLIENTS = ("python", "rs", "rs-coalesced", "c")
START_CLIENTS = ("python", "rs", "c")  # start -> first task: coalescing changes nothing there
COALESCE_INTERVAL_S = 1.0  # the library's default for C

SIZES = {
    "full": dict(canned_reps=5, canned_tasks={"python": 200, "rs": 1000, "rs-coalesced": 2000, "c": 2000},
                 real_reps=3, sqlite_tasks=30, pg_workers=[1, 4, 16], pg_tasks=48, start_reps=3,
                 worker_timeout=240),
    "smoke": dict(canned_reps=1, canned_tasks={"python": 5, "rs": 10, "rs-coalesced": 10, "c": 10},
                  real_reps=1, sqlite_tasks=3, pg_workers=[], pg_tasks=6, start_reps=1,
                  worker_timeout=120),
}

# Requests per task when every update is sent (nginx confirms each count).
SENT_PER_TASK = {"python": 13, "rs": 12, "c": 12}


class PackageWorkers(Workers):
    """The benchmark workers with the package's worker besides C and Python's."""

    def command(self, client, run_uuid, max_tasks):
        if client.startswith("rs"):
            return [sys.executable, str(BENCH_DIR / "bench_worker_rs.py"), run_uuid, str(max_tasks)]
        return super().command(client, run_uuid, max_tasks)


def client_env(env, client):
    """The worker's environment: the package from python/ over the release
    library, and the coalescing interval for rs-coalesced."""
    if not client.startswith("rs"):
        return env
    path = os.pathsep.join(p for p in (str(ROOT / "python"), env.get("PYTHONPATH")) if p)
    env = dict(env, PYTHONPATH=path, TASKFARM_WORKER_LIB=str(LIB))
    if client == "rs-coalesced":
        env["BENCH_UPDATE_INTERVAL"] = str(COALESCE_INTERVAL_S)
    return env


def canned_rows(cfg, canned, workers, env):
    """Each client alone against the canned server, alternating: the task
    loop's requests/s, CPU per request and per task, peak RSS, start -> first
    task. Requests counted by the worker are checked against nginx's counter;
    the coalescing worker's are nginx's."""
    rows = []
    for client in CLIENTS:  # a warm-up of each (page cache, CPU frequency)
        workers.run_one(client, canned.run_uuid, 5, client_env(env, client))
    for rep in range(cfg["canned_reps"]):
        for client in alternating(CLIENTS, rep):
            n = cfg["canned_tasks"][client]
            before = canned.stub_requests()
            with pinned([CLIENT_CPU]):
                report = workers.run_one(client, canned.run_uuid, n, client_env(env, client))
            # nginx also counts the status request itself and the internal hop of POST worker.
            seen = canned.stub_requests() - before - 1 - 1
            check(report["tasks"] == n, f"python-rs canned {client}: {report['tasks']} tasks, wanted {n}")
            if client in SENT_PER_TASK:
                per_task = SENT_PER_TASK[client]
                check(report["requests"] == 3 + per_task * n,
                      f"python-rs canned {client}: {report['requests']} requests reported, "
                      f"wanted 3 + {per_task} x {n}")
                check(seen == report["requests"],
                      f"python-rs canned {client}: nginx saw {seen} requests, the worker reported "
                      f"{report['requests']}")
            else:
                report = dict(report, requests=seen, loop_requests=seen - 3)
                # At least the task request and one PUT (last update + done) per task.
                check(2 * n <= seen - 3 <= 12 * n,
                      f"python-rs canned {client}: nginx saw {seen - 3} requests for {n} tasks")
            m = canned_metrics(report)
            m.update(scenario="p-canned", db="canned", workers=1, client=client, rep=rep + 1,
                     server_seen_requests=seen,
                     client_cpu_ms_per_task=report["loop_cpu_s"] / report["tasks"] * 1e3)
            rows.append(m)
            log(f"python-rs canned rep {rep + 1} {client:12s}: {m['tasks_per_s']:7.0f} tasks/s, "
                f"{m['cpu_us_per_request']:7.1f} us CPU/req, {m['requests_per_task']:5.2f} req/task, "
                f"peak RSS {m['peak_rss_kb']} kB, first task {m['first_task_ms']:.1f} ms")
    return rows


def real_rows(cfg, db, server, workers, env, counts, num_tasks):
    """Scenario c's measured runs for every client (requests from the
    server's log, the same way for all), then start -> first task of one
    worker on a run of one task (the password check included)."""
    rows = []
    env = server_env(env, server)
    for n in counts:
        for rep in range(cfg["real_reps"]):
            for client in alternating(CLIENTS, rep):
                row, _ = measured_run(server, workers, client_env(env, client), f"python-rs {db} {client} x{n}",
                                      client, n, max(num_tasks, 4 * n), requests_from_log=True)
                row.update(scenario=f"p-{db}", db=db, workers=n, client=client, rep=rep + 1)
                rows.append(row)
                log(f"python-rs {db} x{n:<2d} rep {rep + 1} {client:12s}: {row['tasks_per_s']:6.1f} tasks/s, "
                    f"client {row['client_cpu_ms_per_task']:.2f} ms CPU/task, "
                    f"server {row['server_cpu_ms_per_task']:.1f} ms CPU/task, "
                    f"{row['requests_per_task']:.2f} req/task, dups {row['duplicates']}")
    for rep in range(cfg["start_reps"]):
        for client in alternating(START_CLIENTS, rep):
            run_uuid = server.create_run(1)
            report = workers.run_one(client, run_uuid, 1, client_env(env, client))
            check(report["tasks"] == 1, f"python-rs {db} start {client}: {report['tasks']} tasks, wanted 1")
            check(server.run_info(run_uuid)["numDone"] == 1, f"python-rs {db} start {client}: the task is not done")
            rows.append(dict(scenario=f"p-start-{db}", db=db, workers=1, client=client, rep=rep + 1, tasks=1,
                             first_task_ms=report["first_task_s"] * 1e3, peak_rss_kb=report["peak_rss_kb"]))
            log(f"python-rs {db} start rep {rep + 1} {client:6s}: first task {report['first_task_s'] * 1e3:.1f} ms")
    return rows


def run_python_rs(smoke, worker_bin, env, workdir, sampler):
    """The section's run: its figures (rows, sizes, date, load)."""
    cfg = SIZES["smoke" if smoke else "full"]
    started, load_before, t0 = time.monotonic(), os.getloadavg(), time.monotonic()
    workers = PackageWorkers(worker_bin, cfg["worker_timeout"])
    env = dict(env, TASKFARM_UPDATE_INTERVAL="0")
    rows = []
    log("python-rs: the package, the Python client and C against the canned server")
    canned = CannedServer(Path(workdir) / "python-rs", uuidlib.uuid4().hex, fake_jwt()).start()
    canned_env = dict(env, TASKFARM_URL=canned.url, TASKFARM_USER="bench", TASKFARM_PASSWORD="bench",
                      TASKFARM_TIMEOUT="30")
    try:
        rows += canned_rows(cfg, canned, workers, canned_env)
    finally:
        canned.stop()
    for db, counts, tasks in (("sqlite", [1], cfg["sqlite_tasks"]),
                              ("postgresql", cfg["pg_workers"], cfg["pg_tasks"])):
        if not counts:  # the smoke leaves PostgreSQL out (scenarios c and e run it)
            continue
        log(f"python-rs: the real server, {db}")
        state = Path(workdir) / f"python-rs-{db}"
        info, err = start_server(state, db, sampler)
        if info is None:
            check(False, f"python-rs: the harness could not start the {db} server: {err}")
            continue
        try:
            server = RealServer(info, state)
            server.login()
            rows += real_rows(cfg, db, server, workers, env, counts, tasks)
        finally:
            CLEANUP.stop_server(state)
    return dict(rows=rows, cfg=cfg, smoke=smoke, date=time.strftime("%Y-%m-%d %H:%M %Z"),
                elapsed=time.monotonic() - started, load=sampler.summary(t0), load_before=load_before,
                interval=COALESCE_INTERVAL_S)
