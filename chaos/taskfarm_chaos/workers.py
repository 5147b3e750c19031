"""The supervisor: a fixed number of worker slots, each with one worker
process; a worker that dies (any status but 0) is replaced by the next
generation of its slot. Every process is recorded — its name in the oracle
log (`w<slot>.<generation>`), pid, CLOCK_MONOTONIC start and end (ns), how it
ended, its clock skew — in `processes.json`, which the oracle reads. Workers
are our children, stopped by pid (SIGTERM, then SIGKILL) at the end."""

import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time

from .config import C_WORKER_BIN, PYTHON_WORKER

# A worker that died within this time is replaced only this long after (a
# worker that cannot start must not spin).
RESPAWN_DELAY_NS = 1_000_000_000


def faketime_library():
    """libfaketime's multithreaded variant (Debian package faketime)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        raise RuntimeError("libfaketimeMT.so.1 not found: apt-get install -y faketime")
    return found[0]


def last_line(path):
    """The last complete line of a worker's oracle log, '' when none."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 400))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line for line in tail.split("\n") if line]
    return lines[-1] if tail.endswith("\n") and lines else (lines[-2] if len(lines) > 1 else "")


def phase_of(line):
    """The event word of an oracle log line ("request", "start", ...)."""
    parts = line.split()
    return parts[3] if len(parts) > 3 else ""


class Supervisor:
    def __init__(self, cfg, uuid, env, journal_dir, stop_file):
        self.cfg = cfg
        self.uuid = uuid
        self.env = env
        self.journal_dir = journal_dir
        self.stop_file = stop_file
        self.log_dir = cfg.run_dir / "logs"
        self.out_dir = cfg.run_dir / "out"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.records = []           # every process, in start order
        self.procs = {}             # slot -> (Popen, record)
        self.generation = {}        # slot -> last generation
        self.pending_skew = {}      # slot -> offset for the next generation
        self.due = {}               # slot -> when its replacement starts (ns)
        self.replacing = True
        self.running = False

    def _command(self, skew):
        if self.cfg.client == "c":
            cmd = [str(C_WORKER_BIN), self.uuid]
        else:
            cmd = [sys.executable, str(PYTHON_WORKER), self.uuid]
        return cmd

    def spawn(self, slot):
        with self.lock:
            gen = self.generation.get(slot, 0) + 1
            self.generation[slot] = gen
            name = f"w{slot}.{gen}"
            skew = self.pending_skew.pop(slot, 0.0)
            env = dict(self.env)
            env.update({"CHAOS_LOG": str(self.log_dir / f"{name}.log"), "CHAOS_WORKER": name,
                        "CHAOS_TASK_MS": str(self.cfg.task_ms), "CHAOS_STOP": str(self.stop_file)})
            if self.cfg.client == "c":
                env.update({"TASKFARM_JOURNAL": str(self.journal_dir),
                            "TASKFARM_JOURNAL_HEARTBEAT": str(self.cfg.heartbeat),
                            "TASKFARM_STOP_SIGNALS": "TERM",
                            "TASKFARM_TIMEOUT": str(self.cfg.timeout)})
            if skew:
                # libfaketime preloaded as faketime(1) does, but without its
                # wrapper process: the pid we signal is the worker's. The
                # oracle's clock (CLOCK_MONOTONIC) stays true; the wall clock is off.
                env.update({"LD_PRELOAD": faketime_library(), "FAKETIME": f"{skew:+.3f}s",
                            "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
            with open(self.out_dir / f"{name}.out", "wb") as out:
                proc = subprocess.Popen(self._command(skew), env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT)
            rec = {"name": name, "slot": slot, "gen": gen, "pid": proc.pid,
                   "started": time.monotonic_ns(), "ended": None, "status": None, "skew": skew,
                   "log": str(self.log_dir / f"{name}.log")}
            self.records.append(rec)
            self.procs[slot] = (proc, rec)
            return rec

    def start(self):
        for slot in range(self.cfg.workers):
            self.spawn(slot)
        self.running = True
        threading.Thread(target=self._loop, name="supervisor", daemon=True).start()

    def _reap_exits(self):
        now = time.monotonic_ns()
        ended = []
        with self.lock:
            for slot, (proc, rec) in list(self.procs.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                rec["ended"], rec["status"] = now, rc
                del self.procs[slot]
                ended.append((slot, rc))
            for slot, rc in ended:
                if rc != 0 and self.replacing:
                    self.due[slot] = now + (RESPAWN_DELAY_NS if self._short_lived(slot) else 0)
            for slot, due in list(self.due.items()):
                if not self.replacing:
                    self.due.clear()
                elif due <= now and slot not in self.procs:
                    del self.due[slot]
                    self.spawn(slot)
        return ended

    def _short_lived(self, slot):
        last = [r for r in self.records if r["slot"] == slot][-1]
        return last["ended"] - last["started"] < RESPAWN_DELAY_NS

    def _loop(self):
        while self.running:
            self._reap_exits()
            time.sleep(0.02)

    def live(self, slot=None):
        """(Popen, record) of the live worker of `slot`, or of every slot."""
        with self.lock:
            if slot is not None:
                return self.procs.get(slot)
            return list(self.procs.values())

    def wave(self):
        """Starts a worker in every empty slot (the final wave after the
        orphans were restarted)."""
        with self.lock:
            for slot in range(self.cfg.workers):
                if slot not in self.procs:
                    self.spawn(slot)

    def resume(self):
        """After stop_all: replacing again, and a worker in every slot (the
        last wave, after the orphans were restarted)."""
        self.replacing = True
        self.running = True
        self.wave()
        threading.Thread(target=self._loop, name="supervisor", daemon=True).start()

    def wait_all_exited(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reap_exits()
            with self.lock:
                if not self.procs and not self.due:
                    return True
            time.sleep(0.05)
        return False

    def stop_all(self):
        """Every live worker, by pid: SIGCONT (a stopped one must see the
        SIGTERM), SIGTERM, then SIGKILL after 10 s. Returns the names of
        those that had to be signalled."""
        self.replacing = False
        self.running = False
        with self.lock:
            left = list(self.procs.values())
        for proc, _ in left:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for proc, _ in left:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap_exits()
        return [rec["name"] for _, rec in left]

    def save(self, path):
        with self.lock:
            path.write_text(json.dumps(self.records, indent=1))
