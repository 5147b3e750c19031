"""The benchmark workers (bench/bench_worker.c over the library,
bench/bench_worker.py over the Python client): started alone, as a group
released together at a barrier, or all at once; their JSON reports."""

import json
import os
import subprocess
import sys
import threading
import time

from .paths import BENCH_DIR


class Workers:
    def __init__(self, worker_bin, timeout):
        self.worker_bin = str(worker_bin)
        self.timeout = timeout

    def command(self, client, run_uuid, max_tasks):
        if client == "c":
            return [self.worker_bin, run_uuid, str(max_tasks)]
        return [sys.executable, str(BENCH_DIR / "bench_worker.py"), run_uuid, str(max_tasks)]

    @staticmethod
    def parse(client, out, err, code):
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if code != 0 or not lines:
            raise RuntimeError(f"{client} worker failed (exit {code}):\n{err[-2000:]}\n{out[-500:]}")
        return json.loads(lines[-1])

    def run_one(self, client, run_uuid, max_tasks, env):
        """One worker, no barrier: start -> first task is meaningful."""
        cmd = self.command(client, run_uuid, max_tasks)
        env = dict(env)
        env.pop("BENCH_BARRIER", None)
        env["BENCH_T0_NS"] = str(time.monotonic_ns())
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise RuntimeError(f"{client} worker timed out after {self.timeout} s:\n{err[-2000:]}") from None
        return self.parse(client, out, err, p.returncode)

    def run_group(self, client, run_uuid, n, env, on_go=None):
        """n workers started together; each sets up (token, run, worker
        registration), says ready, and all start their task loop at the same
        moment. Returns (reports, go_ns)."""
        env = dict(env, BENCH_BARRIER="1", BENCH_LIST_TASKS="1")
        procs = []
        killer = threading.Timer(self.timeout, lambda: [p.kill() for p in procs])
        killer.start()
        try:
            for _ in range(n):
                env["BENCH_T0_NS"] = str(time.monotonic_ns())
                procs.append(subprocess.Popen(
                    self.command(client, run_uuid, 0), env=env, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            for p in procs:
                line = p.stdout.readline()
                if line.strip() != "ready":
                    p.kill()
                    err = p.stderr.read()
                    raise RuntimeError(f"{client} worker did not get ready:\n{line}{err[-2000:]}")
            if on_go:
                on_go()
            go = time.monotonic_ns()
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
                p.stdin.close()
            reports = []
            for p in procs:
                out = p.stdout.read()
                err = p.stderr.read()
                p.wait()
                reports.append(self.parse(client, out, err, p.returncode))
            return reports, go
        finally:
            killer.cancel()
            _kill_left(procs)

    def run_at_once(self, client, run_uuid, n, env, max_tasks=1):
        """n workers started as fast as we can fork them, no barrier (the
        start storm). Returns their reports."""
        procs = []
        killer = threading.Timer(self.timeout, lambda: [p.kill() for p in procs])
        killer.start()
        try:
            for _ in range(n):
                procs.append(subprocess.Popen(self.command(client, run_uuid, max_tasks), env=env,
                                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
            reports = []
            for p in procs:
                out, err = p.communicate()
                reports.append(self.parse(client, out, err, p.returncode))
            return reports
        finally:
            killer.cancel()
            _kill_left(procs)


def _kill_left(procs):
    """Kills and reaps the workers still running (after a failure or a timeout)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def run_child_rusage(cmd, env, timeout):
    """Runs cmd, returns (stdout, stderr, exit code, rusage of the child)."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    try:
        out = p.stdout.read()
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        timer.cancel()
    return out, err, p.returncode, ru

