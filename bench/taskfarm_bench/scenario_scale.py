"""Scenario f: many workers at once on the PostgreSQL server (issue 30).

f1. The start storm of n C workers (one shared token), as the elements of a
    Slurm array of n say they are: with the default start spread, with
    none (TASKFARM_START_SPREAD=0) and with the windows of
    cfg["scale_spreads"]: seconds until every worker holds a task,
    the server's 5xx answers, refused connections and timeouts, peak
    requests per second, the server's CPU; beside them the Python client at
    the largest count this machine's memory allows (it has no token: each
    worker checks the password).
f2. A server restart with n workers waiting: every worker registered, the
    server SIGKILLed, every worker released into its task loop (its task
    request is refused and retried), the server started again after an
    outage; seconds from the server's return until every worker holds a
    task, and the retry wave (attempts per 100 ms), with jitter and without
    (TASKFARM_RETRY_JITTER=none).

Every attempt of every worker is a line of TASKFARM_LOG=debug on stderr;
all workers write to one pipe, read by one thread that stamps each line as
it arrives (ms resolution: the lines of a refused attempt follow it within
a fraction of a millisecond)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

from .checks import check, log
from .paths import BENCH_DIR, HARNESS

# Lines of TASKFARM_LOG=debug that end an attempt: `taskfarm: POST runs/U/task -> 201 (3.2 ms)`.
ATTEMPT = " -> "
PYTHON_MB = 28  # the Python client's peak RSS per process (scenario a)


class StampedPipe:
    """One pipe for the stderr of many processes; a thread stamps each line."""

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()
        self.lines = []  # (monotonic ns, line)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        with os.fdopen(self.read_fd, "rb", buffering=0) as f:
            pending = b""
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                now = time.monotonic_ns()
                pending += chunk
                *whole, pending = pending.split(b"\n")
                self.lines += [(now, w.decode(errors="replace")) for w in whole]

    def close_writer(self):
        os.close(self.write_fd)

    def finish(self):
        self.thread.join(timeout=30)
        return self.lines


def _environment(env, n, i, extra):
    e = {k: v for k, v in env.items()
         if not k.startswith(("TASKFARM_USER", "TASKFARM_PASSWORD", "SLURM_", "BENCH_"))}
    e.update(SLURM_ARRAY_TASK_COUNT=str(n), SLURM_ARRAY_TASK_MIN="0", SLURM_ARRAY_TASK_ID=str(i),
             TASKFARM_LOG="debug", TASKFARM_TIMEOUT="120", BENCH_UPDATES="1", BENCH_LIST_TASKS="1",
             BENCH_T0_NS=str(time.monotonic_ns()))
    e.update(extra)
    return e


def _spawn(cmd, env, pipe, barrier):
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE if barrier else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=pipe.write_fd, text=True)


def _reports(procs, timeout):
    reports = []
    deadline = time.monotonic() + timeout
    for p in procs:
        if time.monotonic() >= deadline and p.poll() is None:
            p.kill()  # past the deadline: every late one killed at once, not after a wait each
        try:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        lines = [line for line in (out or "").splitlines() if line.startswith("{")]
        reports.append(json.loads(lines[-1]) if p.returncode == 0 and lines else None)
    return reports


def _attempts(lines, since_ns=0):
    """(ns, line) of the attempts' lines after since_ns."""
    return [(t, line) for t, line in lines if ATTEMPT in line and t >= since_ns]


def _client_figures(lines, t0):
    attempts = _attempts(lines, t0)
    per_second = Counter((t - t0) // 1_000_000_000 for t, _ in attempts)
    return dict(
        attempts=len(attempts),
        refused=sum("Connection refused" in line for _, line in attempts),
        timeouts=sum(" within " in line for _, line in attempts),
        peak_rps=max(per_second.values()) if per_second else 0,
        retries=sum(": retry " in line for _, line in lines),
    )


def _server_errors(server, offset):
    new = server.log_since(offset).decode(errors="replace").splitlines()
    return sum(1 for line in new if '" 5' in line or "Traceback" in line)


def _storm(server, worker_cmd, env, n, extra, timeout, name, client="c"):
    """n workers at once; the figures of f1."""
    run = server.create_run(n)
    pipe = StampedPipe()
    offset, cpu0 = server.log_size(), server.cpu_seconds()
    t0 = time.monotonic_ns()
    procs, starts = [], []
    for i in range(n):
        e = _environment(env, n, i, extra)
        starts.append(int(e["BENCH_T0_NS"]))
        procs.append(_spawn(worker_cmd(client, run), e, pipe, barrier=False))
    pipe.close_writer()
    reports = _reports(procs, timeout)
    lines = pipe.finish()
    failed = sum(r is None for r in reports)
    holds = [(s + r["first_task_s"] * 1e9 - t0) / 1e9 for s, r in zip(starts, reports) if r]
    handed = sorted(t for r in reports if r for t in r["task_list"])
    errors = [line for _, line in lines if line.startswith("bench_worker")][:3]
    check(failed == 0 and handed == list(range(n)),
          f"scale storm x{n}, {name}: {failed} worker(s) failed {errors}; tasks {handed[:10]}...")
    figures = dict(workers=n, failed=failed, all_hold_s=max(holds, default=0.0),
                   server_cpu_s=server.cpu_seconds() - cpu0, server_5xx=_server_errors(server, offset),
                   **_client_figures(lines, t0))
    return figures


def _restart_wave(server, state, worker_cmd, env, n, extra, outage_s, timeout, name):
    """n workers registered and waiting; the server killed; the workers
    released; the server back after outage_s: the figures of f2. Spare
    tasks: a hand-out whose answer died with the server stays computing."""
    run = server.create_run(n + n // 10 + 5)
    pipe = StampedPipe()
    procs, starts = [], []
    for i in range(n):
        # The spread is not what f2 measures: every worker registers at once.
        e = _environment(env, n, i, dict(extra, TASKFARM_START_SPREAD="0", BENCH_BARRIER="1",
                                         BENCH_TASK_AGAIN="20"))
        starts.append(int(e["BENCH_T0_NS"]))
        procs.append(_spawn(worker_cmd("c", run), e, pipe, barrier=True))
    pipe.close_writer()
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            p.kill()
            time.sleep(0.5)
            tail = "\n".join(line for _, line in pipe.lines[-5:])
            check(False, f"scale restart: a worker did not get ready:\n{tail}")
    os.killpg(server.info["pid"], signal.SIGKILL)
    go = time.monotonic_ns()
    for p in procs:
        try:
            p.stdin.write("go\n")
            p.stdin.close()
        except BrokenPipeError:
            pass
        p.stdin = None  # communicate() must not touch it again
    time.sleep(outage_s)
    r = subprocess.run([str(HARNESS), "restart", str(state)], capture_output=True, text=True,
                       timeout=600, check=False)
    back = time.monotonic_ns()
    check(r.returncode == 0, f"scale restart: the harness could not restart the server: {r.stderr[-800:]}")
    info = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    server.info.update(info)
    reports = _reports(procs, timeout)
    lines = pipe.finish()
    failed = sum(r is None for r in reports)
    holds = [(s + rep["first_task_s"] * 1e9 - back) / 1e9 for s, rep in zip(starts, reports)
             if rep and rep["first_task_s"] >= 0]
    bins = Counter((t - go) // 100_000_000 for t, line in _attempts(lines, go) if "/task " in line)
    last = max(bins, default=0)
    wave = [bins.get(b, 0) for b in range(last + 1)]
    errors = [line for _, line in lines if line.startswith("bench_worker")][:3]
    check(failed == 0, f"scale restart x{n}, {name}: {failed} worker(s) failed: {errors}")
    return dict(workers=n, failed=failed, outage_s=(back - go) / 1e9, all_work_s=max(holds, default=0.0),
                wave=wave, wave_peak=max(wave, default=0), **_client_figures(lines, go))


def python_count(n):
    """The most Python workers this machine's memory allows, at most n: half
    of MemAvailable at PYTHON_MB each."""
    with open("/proc/meminfo") as f:
        avail_kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    return max(1, min(n, int(avail_kb / 1024 * 0.5 / PYTHON_MB)))


def scenario_scale(cfg, server, state, worker_bin, env):
    """Scenario f (see the module's documentation): a dict of figures."""
    n = cfg["scale_workers"]
    timeout = cfg["worker_timeout"] + n // 4

    def worker_cmd(client, run):
        if client == "c":
            return [str(worker_bin), run, "1"]
        return [sys.executable, str(BENCH_DIR / "bench_worker.py"), run, "1"]

    token_env = dict(TASKFARM_URL=server.url, TASKFARM_TOKEN=server.token)
    fig = dict(workers=n, storm={}, restart={})
    # Beside the default window (DEFAULT_SECS_PER_WORKER per worker) and
    # none, shorter and longer ones: what the default's choice rests on.
    spreads = [("default spread", {}), ("no spread", dict(TASKFARM_START_SPREAD="0"))]
    spreads += [(f"spread {s:g} s", dict(TASKFARM_START_SPREAD=f"{s:g}")) for s in cfg["scale_spreads"]]
    for name, extra in spreads:
        log(f"scenario f1: {n} workers at once, {name}")
        fig["storm"][name] = _storm(server, worker_cmd, env, n, dict(token_env, **extra), timeout, name)
        log(f"  every worker holds a task after {fig['storm'][name]['all_hold_s']:.2f} s")
    py = python_count(n)
    log(f"scenario f1: {py} Python workers at once (the password each)")
    fig["storm"]["python"] = _storm(server, worker_cmd, env, py,
                                    dict(TASKFARM_URL=server.url, TASKFARM_USER=server.user,
                                         TASKFARM_PASSWORD=server.password),
                                    # A password check each, a few seconds of the server's
                                    # CPU on a loaded machine: more time than the C workers.
                                    timeout + 4 * py, "python", client="python")
    for name, extra in (("jitter", {}), ("no jitter", dict(TASKFARM_RETRY_JITTER="none"))):
        log(f"scenario f2: a server restart with {n} workers waiting, {name}")
        fig["restart"][name] = _restart_wave(server, state, worker_cmd, env, n, dict(token_env, **extra),
                                             cfg["scale_outage_s"], timeout, name)
        log(f"  all work again {fig['restart'][name]['all_work_s']:.2f} s after the server's return; "
            f"peak {fig['restart'][name]['wave_peak']} attempts per 100 ms")
    return fig
