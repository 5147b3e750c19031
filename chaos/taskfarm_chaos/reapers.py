"""`taskfarm reap --watch` beside the workers, on this host or on "another
host": the same command under `unshare -p -f --kill-child --mount-proc -u`,
with another host name and a PID namespace of its own, so that the pids the
workers' journals record mean nothing to it (another PID namespace than the
journal's: issue 26's proof by boot id and PID namespace does not apply) and
its verdicts on this host's workers rest on their heartbeats alone. One
reaper at a time, as the README asks ("one reaper per run"); the schedule's
"reaper-swap" moves it from one host to the other. A reaper is stopped with
its whole PID namespace (SIGKILL: it handles no stop signal) and, once every
process of it is proved gone, its lock (`reap-<run>.lock`) is removed: a
reaper in another PID namespace cannot prove the holder dead, so it would
never take the lock over (the message of `taskfarm reap` says to remove the
file once no reaper runs there). A reaper that exits before the end (a
failed write on a full journal disk, a server away too long) is started
again. Each reaper's JSON passes go to its own file; `eras` says which host
reaped when; `verdicts` lists, with the time the soak read it, every task a
pass gave back and the verdict on the worker that held it (the oracle
excuses an overlap only when that verdict rested on the heartbeat alone);
`looks` counts every verdict of every pass by host and by what it rested
on (a pid, or the heartbeat alone)."""

import json
import os
import signal
import subprocess
import threading
import time

from taskfarm_harness.process_groups import process_alive, signal_process, wait_gone

from .config import TASKFARM_BIN

OTHER_HOST = "chaos-login-node"


class Reapers:
    def __init__(self, cfg, uuid, env, journal_dir):
        self.cfg = cfg
        self.uuid = uuid
        self.env = env
        self.journal_dir = journal_dir
        self.dir = cfg.run_dir / "reapers"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.proc = None
        self.host = "local"
        self.count = 0
        self.eras = []       # [host, start ns, end ns or None]
        self.restarts = 0
        self.running = False
        self.verdicts = []   # {t, host, task, worker (uuid), verdict, reason}
        self.looks = {}      # host -> {kind of verdict: count} (see looks_of)
        self.locks_removed = 0

    def command(self, host, *extra):
        cmd = [str(TASKFARM_BIN), "--json", "reap", self.uuid, "--journal", str(self.journal_dir),
               "--stale", str(self.cfg.stale), "--max-attempts", "1000", *extra]
        if host == "other":
            cmd = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts",
                   "sh", "-c", 'hostname "$0" && exec "$@"', OTHER_HOST, *cmd]
        return cmd

    def lock_path(self):
        return os.path.join(str(self.journal_dir), f"reap-{self.uuid}.lock")

    def _start(self, host):
        self.count += 1
        out = open(self.dir / f"reaper-{self.count}-{host}.jsonl", "wb")
        err = open(self.dir / f"reaper-{self.count}-{host}.err", "wb")
        self.proc = subprocess.Popen(self.command(host, "--watch", "1"), env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        err.close()
        threading.Thread(target=self._read_passes, args=(self.proc.stdout, out, host),
                         name="reaper-passes", daemon=True).start()
        self.host = host
        self.eras.append([host, time.monotonic_ns(), None])

    def _read_passes(self, pipe, out, host):
        """Copies a reaper's JSON passes to its file as they come, and keeps
        each give-back with the verdict that caused it and the time it was
        read (after the give-back was sent)."""
        with pipe, out:
            for raw in pipe:
                t = time.monotonic_ns()
                out.write(raw)
                out.flush()
                self.verdicts.extend(give_backs(raw, t, host))
                counts = self.looks.setdefault(host, {})
                for kind in looks_of(raw):
                    counts[kind] = counts.get(kind, 0) + 1

    def _end_era(self):
        if self.eras and self.eras[-1][2] is None:
            self.eras[-1][2] = time.monotonic_ns()

    def start(self):
        with self.lock:
            self._start("local")
            self.running = True
        threading.Thread(target=self._loop, name="reapers", daemon=True).start()

    def _loop(self):
        while self.running:
            with self.lock:
                if self.running and self.proc is not None and self.proc.poll() is not None:
                    self._stop_current()
                    if self.proc.returncode != 0:
                        self.restarts += 1
                        self._start(self.host)
            time.sleep(0.2)

    def _stop_current(self):
        """Ends the current reaper and everything of its PID namespace,
        then removes its lock."""
        if self.proc is not None:
            tree = descendants(self.proc.pid)
            if self.proc.poll() is None:
                # The other host's reaper is PID 1 of its namespace: only
                # SIGKILL reaches it from here, and --kill-child passes
                # unshare's death on to it.
                signal_process(self.proc.pid, signal.SIGTERM if self.host == "local" else signal.SIGKILL)
                if not wait_gone([self.proc.pid], 10):
                    signal_process(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            for pid in tree:
                signal_process(pid, signal.SIGKILL)
            if not wait_gone(tree, 30):
                raise RuntimeError(f"the reaper's processes {tree} outlived SIGKILL")
            try:
                os.unlink(self.lock_path())
                self.locks_removed += 1
            except FileNotFoundError:
                pass
        self._end_era()

    def swap(self):
        """The reaper moves to the other host; returns where it runs now
        (nothing moves once the reapers are stopped)."""
        with self.lock:
            if not self.running:
                return self.host
            self._stop_current()
            self._start("other" if self.host == "local" else "local")
            return self.host

    def stop(self):
        with self.lock:
            self.running = False
            self._stop_current()

    def alive(self):
        return self.proc is not None and process_alive(self.proc.pid)

    def restart_orphans(self, passes=3):
        """Passes with --restart-orphans (no worker left: the moment the
        README says it is safe), one a second, until one restarts the
        orphans or finds none: a pass restarts only orphans the pass before
        saw too (a worker that is starting may hold one). Returns the last
        pass's JSON report."""
        report = {"error": "no pass ran"}
        with open(self.dir / "restart-orphans.jsonl", "a", encoding="utf-8") as log:
            for i in range(passes):
                if i:
                    time.sleep(1.0)
                r = subprocess.run(self.command("local", "--restart-orphans"), env=self.env,
                                   capture_output=True, text=True, timeout=600, check=False)
                log.write(r.stdout + r.stderr)
                reports = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
                report = reports[-1] if reports else {"error": r.stderr.strip()[-500:]}
                if report.get("restarted") or not report.get("orphans"):
                    break
        return report

    def totals(self):
        """Tasks given back, dones delivered and tasks set aside over every
        pass of every reaper (from their JSON lines)."""
        given_back = delivered = 0
        set_aside = set()
        for path in sorted(self.dir.glob("reaper-*.jsonl")):
            for line in path.read_text(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                try:
                    report = json.loads(line)
                except ValueError:
                    continue
                given_back += len(report.get("given_back") or [])
                delivered += len(report.get("delivered") or [])
                set_aside.update(report.get("set_aside") or [])
        return {"given_back": given_back, "delivered": delivered, "set_aside": sorted(set_aside),
                "reaper_restarts": self.restarts, "reapers": self.count,
                "locks_removed": self.locks_removed, "looks": self.looks,
                "heartbeat_only_give_backs": sum(1 for v in self.verdicts
                                                 if rests_on_heartbeat(v.get("reason", "")))}


def descendants(pid):
    """Every live descendant of pid (through /proc's children lists)."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children", encoding="ascii") as f:
                kids = [int(p) for p in f.read().split()]
        except OSError:
            kids = []
        out.extend(kids)
        todo.extend(kids)
    return out


def rests_on_heartbeat(reason):
    """True when a verdict's reason rests on the heartbeat alone (the
    reaper could judge neither the pid nor a batch job)."""
    return "heartbeat" in reason and not reason.startswith(("process ", "pid "))


def looks_of(raw):
    """The kind of each verdict of one JSON pass: `pid` (the process was
    judged), `heartbeat-alive`, `heartbeat-gone` (the heartbeat alone), or
    `other` (a freed journal, a batch job)."""
    try:
        report = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(report, dict):
        return []
    kinds = []
    for w in report.get("workers") or []:
        if not isinstance(w, dict):
            continue
        reason = str(w.get("reason", ""))
        if rests_on_heartbeat(reason):
            kinds.append(f"heartbeat-{w.get('verdict')}")
        elif reason.startswith(("process ", "pid ")):
            kinds.append("pid")
        else:
            kinds.append("other")
    return kinds


def give_backs(raw, t, host):
    """The tasks one JSON pass (a line of bytes) gave back, each with the
    verdict on the worker that held it: [{t, host, task, worker, verdict,
    reason}]."""
    try:
        report = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(report, dict):
        return []
    seen = {w.get("worker"): w for w in report.get("workers") or [] if isinstance(w, dict)}
    out = []
    for action in report.get("given_back") or []:
        w = seen.get(action.get("worker"), {})
        out.append({"t": t, "host": host, "task": action.get("task"), "worker": action.get("worker"),
                    "verdict": w.get("verdict"), "reason": w.get("reason", "")})
    return out
