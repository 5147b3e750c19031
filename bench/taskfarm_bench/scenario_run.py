"""Scenario g: `taskfarm run UUID -- true`, the runner's own cost per task,
beside launchers that run the same command locally, in one run (issue 29):

  runner-canned      taskfarm run against the canned server (nginx, as in
                     a): the runner's own cost with a server that costs
                     nothing; it never runs out of tasks, so it runs for a
                     window and is stopped with SIGTERM; its tasks are
                     counted from nginx's requests (RUNNER_REQUESTS).
  runner-postgresql  taskfarm run against the real server (PostgreSQL +
                     gunicorn -w 4, as in c), a run of cfg["pg_tasks"]
                     tasks to its end; every task checked done.
  parallel           GNU parallel -j1 running the command once per input line.
  fork-exec          bench/fork_exec_loop.c: fork, execv, waitpid, nothing
                     else: the floor.
  shell-loop         a `while` loop of /bin/sh running the command.
  library            bench/bench_worker.c over the library on the canned
                     server, one update per task sent at once (task,
                     update, done: 3 requests per task): the library's own
                     CPU per request, with no command, so that the runner's
                     floor (fork+exec's own + RUNNER_REQUESTS requests) can
                     be said.
  two-requests       bench/two_requests_floor.c on the canned server: the
                     two requests of a task (POST task, PUT done) made by
                     the leanest client there can be (one write(2) per
                     request, read(2) until Content-Length, no library),
                     no command: the cost of the protocol itself.
  floor              the same program running the command per task too
                     (fork, execv, waitpid, between its two requests): the
                     floor of any runner of this protocol, measured.
  *-nginx-cpu        runner-canned, two-requests and floor again with the
                     client pinned to nginx's CPU in place of the other one:
                     the cost of a request over loopback depends on where
                     its two ends run (a wake-up across CPUs, or none).

Every launcher runs one command at a time (-j1), /usr/bin/true (`true`
resolved once, so that no PATH search differs), pinned to the client's CPU
(nginx on the other). Each is measured the same way (own_cpu): its own CPU
(its children's excluded) and its children's, per task; tasks per second
over its wall time. The launchers alternate within each repetition.

run_run() returns the section's figures (its rows, sizes, date and load: a
run of it alone, `--only run`, is merged into a full run's figures by
`bench.py --merge run FROM --render bench/figures.json`); report_run
renders them."""

import json
import os
import shutil
import subprocess
import time
import uuid as uuidlib
from pathlib import Path

from .canned_server import CannedServer, fake_jwt
from .checks import check, log
from .config import alternating
from .cpus import CLIENT_CPU, SERVER_CPU, pinned
from .own_cpu import TICK_S, run_measured
from .processes import CLEANUP
from .real_server import RealServer, start_server
from .runs import server_env

KEY = "run"  # the section's key in figures.json (and `--only run`)
LAUNCHERS = ("runner-canned", "runner-postgresql", "parallel", "fork-exec", "shell-loop", "library", "two-requests",
             "floor", "runner-canned-nginx-cpu", "two-requests-nginx-cpu", "floor-nginx-cpu")
NGINX_CPU = "-nginx-cpu"  # the suffix of a launcher pinned to nginx's CPU
TARGET_RATIO = 2.0  # the runner's own CPU per task at most twice fork+exec's own per exec

SIZES = {
    "full": dict(reps=5, canned_window_s=5.0, pg_tasks=300, parallel_jobs=1000, fork_exec=3000,
                 shell_loop=3000, library_tasks=1500, two_requests=5000, floor=3000, timeout=600),
    "smoke": dict(reps=1, canned_window_s=0.5, pg_tasks=5, parallel_jobs=10, fork_exec=20, shell_loop=20,
                  library_tasks=10, two_requests=10, floor=10, timeout=120),
}

# nginx's requests for a runner on the canned server: before its first task
# GET token, GET runs/UUID, POST worker (and nginx's internal hop of POST
# worker: 4); per task POST runs/UUID/task and the PUT of done (2); at the
# SIGTERM, the PUT that hands back a task it held (with its POST: one task
# too many at most). The calibration run (with --joblog) checks these
# against the job log.
RUNNER_SETUP_REQUESTS = 4
RUNNER_REQUESTS = 2


def true_path():
    path = shutil.which("true")
    if path is None:
        raise RuntimeError("no `true` on PATH")
    return os.path.realpath(path)


class Launchers:
    """The commands of the section, and where their output goes."""

    def __init__(self, cfg, workdir, runner_bin, fork_exec_bin, worker_bin, two_requests_bin, env):
        self.cfg, self.dir, self.env = cfg, Path(workdir), env
        self.runner_bin, self.fork_exec_bin = str(runner_bin), str(fork_exec_bin)
        self.two_requests_bin = str(two_requests_bin)
        self.worker_bin = str(worker_bin)
        self.true = true_path()
        self.lines = self.dir / "parallel-input"
        self.lines.write_text("".join(f"{i}\n" for i in range(cfg["parallel_jobs"])))

    def measure(self, name, cmd, env, window_s=None, stdin_path=None):
        """cmd run and measured, pinned to the client's CPU (nginx's for a
        launcher named *-nginx-cpu)."""
        out, err = self.dir / f"{name}.stdout", self.dir / f"{name}.stderr"
        cpu = SERVER_CPU if name.endswith(NGINX_CPU) else CLIENT_CPU
        with open(out, "wb") as o, open(err, "wb") as e, \
                open(stdin_path or os.devnull, "rb") as i, pinned([cpu]):
            m = run_measured(cmd, env, self.cfg["timeout"], o, e, window_s=window_s, stdin=i)
        return m, out.read_text(errors="replace"), err.read_text(errors="replace")


def row(launcher, db, rep, tasks, m, **extra):
    """The figures of one launcher's run."""
    per = (lambda s: s / tasks * 1e6) if tasks else (lambda s: None)  # noqa: E731
    return dict(scenario="g-run", db=db, workers=1, client=launcher, rep=rep, tasks=tasks, wall_s=m.wall_s,
                tasks_per_s=tasks / m.wall_s if m.wall_s else None, self_us_per_task=per(m.self_s),
                children_us_per_task=per(m.children_s), self_s=m.self_s, children_s=m.children_s,
                rusage_s=m.rusage_s, **extra)


def check_sum(label, m):
    """The /proc figures against wait4's: own + children's equals wait4's sum
    within the ticks' rounding (two of each, and 2 %)."""
    total = m.self_s + m.children_s
    check(abs(total - m.rusage_s) <= 4 * TICK_S + 0.02 * m.rusage_s,
          f"{label}: /proc says {m.self_s:.3f} + {m.children_s:.3f} s of CPU, wait4 {m.rusage_s:.3f} s")


def runner_canned(lx, canned, canned_env, rep, joblog=None, launcher="runner-canned"):
    """The runner on the canned server for a window; its tasks from nginx."""
    before = canned.stub_requests()
    cmd = [lx.runner_bin, "run", canned.run_uuid]
    if joblog is not None:
        cmd += ["--joblog", str(joblog)]
    m, _, err = lx.measure(launcher, cmd + ["--", lx.true], canned_env, window_s=lx.cfg["canned_window_s"])
    # nginx also counts the status request itself.
    seen = canned.stub_requests() - before - 1
    tasks = max(0, (seen - RUNNER_SETUP_REQUESTS) // RUNNER_REQUESTS)
    label = f"{launcher} rep {rep}"
    check(m.returncode == -15, f"{label}: taskfarm run ended with {m.returncode}, not by the SIGTERM: {err[-800:]}")
    check(tasks > 0, f"{label}: no task done ({seen} requests): {err[-800:]}")
    check_sum(label, m)
    return row(launcher, "canned", rep, tasks, m, requests=seen), seen


def calibrate(lx, canned, canned_env):
    """A runner with --joblog on the canned server, not measured: the tasks
    counted from nginx's requests must be those of its job log."""
    joblog = lx.dir / "calibration.jsonl"
    r, seen = runner_canned(lx, canned, canned_env, 0, joblog=joblog)
    entries = [json.loads(line) for line in joblog.read_text().splitlines() if line.strip()]
    done = sum(e["outcome"] == "done" for e in entries)
    other = [e["outcome"] for e in entries if e["outcome"] != "done"]
    # The SIGTERM may find a task held: its POST and the PUT that hands it
    # back count as one task more than the job log's (stopped or not begun).
    check(r["tasks"] - done in (0, 1) and other in ([], ["stopped"]),
          f"run canned: {seen} requests of nginx make {r['tasks']} tasks, the job log says {done} done "
          f"and {other}: the requests are not {RUNNER_SETUP_REQUESTS} + {RUNNER_REQUESTS} per task")
    log(f"run calibration: {done} tasks in the job log, {r['tasks']} from nginx's {seen} requests")


def runner_postgresql(lx, server, env, rep):
    n = lx.cfg["pg_tasks"]
    run_uuid = server.create_run(n)
    cpu0 = server.cpu_seconds()
    m, _, err = lx.measure("runner-postgresql", [lx.runner_bin, "run", run_uuid, "--", lx.true],
                           server_env(env, server))
    server_cpu = server.cpu_seconds() - cpu0
    label = f"run postgresql rep {rep}"
    done = server.run_info(run_uuid)["numDone"]
    check(m.returncode == 0, f"{label}: taskfarm run exited with {m.returncode}: {err[-800:]}")
    check(done == n, f"{label}: the server counts {done} of {n} tasks done")
    check_sum(label, m)
    return row("runner-postgresql", "postgresql", rep, done, m, server_cpu_ms_per_task=server_cpu / n * 1e3)


def parallel(lx, rep):
    n = lx.cfg["parallel_jobs"]
    m, _, err = lx.measure("parallel", ["parallel", "--will-cite", "-j1", "-N0", lx.true], lx.env,
                           stdin_path=lx.lines)
    check(m.returncode == 0, f"parallel rep {rep}: exit {m.returncode}: {err[-800:]}")
    check_sum(f"parallel rep {rep}", m)
    return row("parallel", "local", rep, n, m)


def fork_exec(lx, rep):
    n = lx.cfg["fork_exec"]
    m, out, err = lx.measure("fork-exec", [lx.fork_exec_bin, str(n), lx.true], lx.env)
    label = f"fork-exec rep {rep}"
    ok = check(m.returncode == 0, f"{label}: exit {m.returncode}: {err[-800:]}")
    own = json.loads(out.splitlines()[-1]) if ok and out.strip() else {}
    check(own.get("execs") == n, f"{label}: {own.get('execs')} execs, wanted {n}")
    # Its own getrusage against /proc's figure of it (the method of every row).
    own_self = own.get("self_user_s", 0) + own.get("self_sys_s", 0)
    check(abs(own_self - m.self_s) <= 4 * TICK_S + 0.05 * own_self,
          f"{label}: getrusage says {own_self:.3f} s of its own CPU, /proc {m.self_s:.3f} s")
    check_sum(label, m)
    return row("fork-exec", "local", rep, n, m, own_self_us_per_exec=own_self / n * 1e6 if own else None)


def shell_loop(lx, rep):
    n = lx.cfg["shell_loop"]
    script = 'i=0; while [ "$i" -lt "$1" ]; do "$2"; i=$((i + 1)); done'
    m, _, err = lx.measure("shell-loop", ["/bin/sh", "-c", script, "sh", str(n), lx.true], lx.env)
    check(m.returncode == 0, f"shell-loop rep {rep}: exit {m.returncode}: {err[-800:]}")
    check_sum(f"shell-loop rep {rep}", m)
    return row("shell-loop", "local", rep, n, m)


def library(lx, canned, canned_env, rep):
    """The library alone on the canned server: bench_worker's own CPU per
    request over its task loop (the row's "tasks" are its requests)."""
    n = lx.cfg["library_tasks"]
    env = dict(canned_env, BENCH_UPDATES="1", TASKFARM_UPDATE_INTERVAL="0")
    before = canned.stub_requests()
    m, out, err = lx.measure("library", [lx.worker_bin, canned.run_uuid, str(n)], env)
    seen = canned.stub_requests() - before - 1
    label = f"library rep {rep}"
    ok = check(m.returncode == 0, f"{label}: exit {m.returncode}: {err[-800:]}")
    got = json.loads(out.splitlines()[-1]) if ok and out.strip() else {}
    requests = got.get("loop_requests", 0)
    check(got.get("tasks") == n and requests == 3 * n,
          f"{label}: {got.get('tasks')} tasks and {requests} requests, wanted {n} and {3 * n}")
    # Its 3 set-up requests (and nginx's hop of POST worker) besides the loop's.
    check(seen == requests + RUNNER_SETUP_REQUESTS, f"{label}: nginx saw {seen} requests, the worker says "
          f"{requests} + {RUNNER_SETUP_REQUESTS}")
    check_sum(label, m)
    r = row("library", "canned", rep, requests, m)
    loop_cpu = got.get("loop_cpu_s")
    r["self_us_per_task"] = loop_cpu / requests * 1e6 if requests and loop_cpu is not None else None
    r["tasks_per_s"] = requests / got["loop_wall_s"] if requests and got.get("loop_wall_s") else None
    return r


def two_requests(lx, canned, rep, with_command, suffix=""):
    """bench/two_requests_floor.c on the canned server: the two requests of
    each task alone ("two-requests") or around fork+exec of the command
    ("floor"); its requests checked against nginx's count and its own
    getrusage against /proc's figure, as fork-exec's."""
    launcher = ("floor" if with_command else "two-requests") + suffix
    n = lx.cfg["floor" if with_command else "two_requests"]
    cmd = [lx.two_requests_bin, str(canned.port), canned.run_uuid, canned.token, str(n)]
    before = canned.stub_requests()
    m, out, err = lx.measure(launcher, cmd + ([lx.true] if with_command else []), lx.env)
    seen = canned.stub_requests() - before - 1
    label = f"{launcher} rep {rep}"
    ok = check(m.returncode == 0, f"{label}: exit {m.returncode}: {err[-800:]}")
    got = json.loads(out.splitlines()[-1]) if ok and out.strip() else {}
    execs = n if with_command else 0
    check(got.get("tasks") == n and got.get("requests") == 2 * n and got.get("execs") == execs,
          f"{label}: {got.get('tasks')} tasks, {got.get('requests')} requests and {got.get('execs')} execs, "
          f"wanted {n}, {2 * n} and {execs}")
    check(seen == 2 * n, f"{label}: nginx saw {seen} requests, wanted {2 * n}")
    own_self = got.get("self_user_s", 0) + got.get("self_sys_s", 0)
    check(abs(own_self - m.self_s) <= 4 * TICK_S + 0.05 * own_self,
          f"{label}: getrusage says {own_self:.3f} s of its own CPU, /proc {m.self_s:.3f} s")
    check_sum(label, m)
    return row(launcher, "canned", rep, n, m, requests=seen,
               self_user_us_per_task=got["self_user_s"] / n * 1e6 if got else None,
               self_sys_us_per_task=got["self_sys_s"] / n * 1e6 if got else None)


def run_run(smoke, runner_bin, fork_exec_bin, env, workdir, sampler, worker_bin, two_requests_bin):
    """The section's run: its figures (rows, sizes, date, load)."""
    cfg = SIZES["smoke" if smoke else "full"]
    started, load_before, t0 = time.monotonic(), os.getloadavg(), time.monotonic()
    # A user's runner: progress coalesced at the library's default interval.
    env = {k: v for k, v in env.items() if k != "TASKFARM_UPDATE_INTERVAL"}
    wd = Path(workdir) / "run"
    wd.mkdir(parents=True, exist_ok=True)
    lx = Launchers(cfg, wd, runner_bin, fork_exec_bin, worker_bin, two_requests_bin, env)
    rows = []
    log("scenario g: taskfarm run -- true, GNU parallel, fork+exec, a shell loop and the two-request floor")
    canned = CannedServer(wd, uuidlib.uuid4().hex, fake_jwt()).start()
    state = wd / "server-pg"
    try:
        canned_env = dict(env, TASKFARM_URL=canned.url, TASKFARM_USER="bench", TASKFARM_PASSWORD="bench",
                          TASKFARM_TIMEOUT="30")
        calibrate(lx, canned, canned_env)
        info, err = start_server(state, "postgresql", sampler)
        if info is None:
            check(False, f"scenario g: the harness could not start the PostgreSQL server: {err}")
            return None
        server = RealServer(info, state)
        server.login()
        for rep in range(1, cfg["reps"] + 1):
            for launcher in alternating(LAUNCHERS, rep - 1):
                if launcher.startswith("runner-canned"):
                    r, _ = runner_canned(lx, canned, canned_env, rep, launcher=launcher)
                elif launcher == "runner-postgresql":
                    r = runner_postgresql(lx, server, env, rep)
                elif launcher == "library":
                    r = library(lx, canned, canned_env, rep)
                elif launcher.startswith(("two-requests", "floor")):
                    base = launcher.removesuffix(NGINX_CPU)
                    r = two_requests(lx, canned, rep, base == "floor", launcher[len(base):])
                else:
                    r = {"parallel": parallel, "fork-exec": fork_exec, "shell-loop": shell_loop}[launcher](lx, rep)
                rows.append(r)
                log(f"g rep {rep} {launcher:17s}: {r['tasks_per_s'] or 0:8.1f} tasks/s, "
                    f"own CPU {r['self_us_per_task'] or 0:8.1f} µs/task, "
                    f"children {r['children_us_per_task'] or 0:8.1f} µs/task")
    finally:
        canned.stop()
        CLEANUP.stop_server(state)
    return dict(rows=rows, cfg=cfg, smoke=smoke, date=time.strftime("%Y-%m-%d %H:%M %Z"),
                elapsed=time.monotonic() - started, load=sampler.summary(t0), load_before=load_before,
                command=lx.true, target_ratio=TARGET_RATIO, tick_s=TICK_S,
                shell=os.path.realpath("/bin/sh"), job_shell=env.get("SHELL"), parallel_version=parallel_version())


def parallel_version():
    r = subprocess.run(["parallel", "--version"], capture_output=True, text=True, check=False)
    return r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else None
