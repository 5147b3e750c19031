"""Each fault of the schedule carried out, in a thread of its own at its
time, and what it hit recorded for the report and the oracle (`log`): the
worker (its name in the oracle log), the phase it was in when the signal
landed (the last line of its log once it was dead), the windows' lengths.
Server faults take turns (one lock), so do the proxy's windows and the full
disk."""

import signal
import threading
import time

from taskfarm_harness.process_groups import signal_process

from .workers import last_line, phase_of

WANTED_PHASE = {"kill-task": "start", "kill-request": "request", "kill-done": "computed"}
PHASE_WAIT = 8.0


class Faults:
    def __init__(self, cfg, supervisor, server, proxy, disk, reapers):
        self.cfg = cfg
        self.sup = supervisor
        self.server = server
        self.proxy = proxy
        self.disk = disk
        self.reapers = reapers
        self.log = []
        self.lock = threading.Lock()
        self.window_lock = threading.Lock()
        self.disk_lock = threading.Lock()
        self.stopped = set()  # pids under SIGSTOP now
        self.threads = []

    def launch(self, fault):
        t = threading.Thread(target=self._run, args=(fault,), name=f"fault-{fault['kind']}", daemon=True)
        t.start()
        self.threads.append(t)

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def _run(self, fault):
        entry = dict(fault)
        entry["began"] = time.monotonic_ns()
        try:
            getattr(self, "_" + fault["kind"].replace("-", "_"))(fault, entry)
        except Exception as e:  # recorded, the soak goes on
            entry["error"] = f"{type(e).__name__}: {e}"
        entry["finished"] = time.monotonic_ns()
        with self.lock:
            self.log.append(entry)

    # ------------------------------------------------------------ workers

    def _target(self, slot):
        """The live, running (not stopped) worker of slot, else of any slot."""
        order = [slot] + [s for s in range(self.cfg.workers) if s != slot]
        for s in order:
            live = self.sup.live(s)
            if live and live[0].pid not in self.stopped and live[0].poll() is None:
                return live
        return None

    def _in_phase(self, slot, phase):
        """The first worker seen in `phase` (its slot's first, then any)."""
        deadline = time.monotonic() + PHASE_WAIT
        while time.monotonic() < deadline:
            own = time.monotonic() < deadline - PHASE_WAIT / 2
            slots = [slot] if own else range(self.cfg.workers)
            for s in slots:
                live = self.sup.live(s)
                if not live or live[0].pid in self.stopped:
                    continue
                if phase_of(last_line(live[1]["log"])) == phase:
                    return live
            time.sleep(0.002)
        return None

    def _kill(self, fault, entry):
        wanted = WANTED_PHASE[fault["kind"]]
        live = self._in_phase(fault["slot"], wanted)
        if live is None:
            entry["result"] = f"no worker seen in phase {wanted}"
            return
        proc, rec = live
        signal_process(proc.pid, signal.SIGKILL)
        entry["signalled"] = time.monotonic_ns()
        proc.wait()
        line = last_line(rec["log"])
        entry.update({"target": rec["name"], "pid": proc.pid, "wanted": wanted,
                      "landed": phase_of(line), "last_line": line})

    _kill_task = _kill
    _kill_request = _kill
    _kill_done = _kill

    def _term(self, fault, entry):
        live = self._target(fault["slot"])
        if live is None:
            entry["result"] = "no live worker"
            return
        proc, rec = live
        entry["phase"] = phase_of(last_line(rec["log"]))
        signal_process(proc.pid, signal.SIGTERM)
        entry["signalled"] = time.monotonic_ns()
        entry.update({"target": rec["name"], "pid": proc.pid})

    def _stop(self, fault, entry):
        live = self._target(fault["slot"])
        if live is None:
            entry["result"] = "no live worker"
            return
        proc, rec = live
        self.stopped.add(proc.pid)
        signal_process(proc.pid, signal.SIGSTOP)
        entry.update({"target": rec["name"], "pid": proc.pid, "phase": phase_of(last_line(rec["log"])),
                      "stopped": time.monotonic_ns()})
        time.sleep(fault["seconds"])
        signal_process(proc.pid, signal.SIGCONT)
        entry["continued"] = time.monotonic_ns()
        self.stopped.discard(proc.pid)

    _stop_short = _stop
    _stop_long = _stop

    def _skew(self, fault, entry):
        """The slot's worker ends (SIGTERM, a stop signal) and its successor
        runs with its wall clock off by `offset` seconds."""
        live = self._target(fault["slot"])
        if live is None:
            entry["result"] = "no live worker"
            return
        proc, rec = live
        self.sup.pending_skew[rec["slot"]] = fault["offset"]
        signal_process(proc.pid, signal.SIGTERM)
        entry["signalled"] = time.monotonic_ns()
        entry.update({"target": rec["name"], "pid": proc.pid, "successor_slot": rec["slot"]})

    # ------------------------------------------------------------ server

    def _server_kill(self, fault, entry):
        entry["master"] = self.server.kill_and_restart()

    def _postgres_restart(self, fault, entry):
        entry["postmaster"] = self.server.restart_postgres()

    # ------------------------------------------------------------ windows

    def _window(self, fault, entry):
        mode = fault["kind"].split("-", 1)[1]
        with self.window_lock:
            before = self.proxy.hits[mode]
            self.proxy.set_mode(mode)
            entry["opened"] = time.monotonic_ns()
            time.sleep(fault["seconds"])
            self.proxy.set_mode(None)
            entry["closed"] = time.monotonic_ns()
            # Answers held by "delay" are counted when they arrive.
            entry["hits"] = self.proxy.hits[mode] - before

    _proxy_drop = _window
    _proxy_delay = _window
    _proxy_cut = _window
    _proxy_reset = _window

    def _disk_full(self, fault, entry):
        with self.disk_lock:
            entry["filled_bytes"] = self.disk.fill()
            entry["opened"] = time.monotonic_ns()
            time.sleep(fault["seconds"])
            self.disk.unfill()
            entry["closed"] = time.monotonic_ns()

    def _reaper_swap(self, fault, entry):
        if self.reapers is None:
            entry["result"] = "no reaper (Python client)"
            return
        entry["host"] = self.reapers.swap()
