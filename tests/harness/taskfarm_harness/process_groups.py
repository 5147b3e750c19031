"""Processes and process groups, Linux /proc aware: PID 1 of a container may
never reap zombies, and a zombie still answers kill(pid, 0). Also the
daemons of a harness's supervisor and its watch over them (`Daemons`), shared
by the Slurm and Grid Engine harnesses."""

import ctypes
import os
import signal
import subprocess
import sys
import time

from .errors import HarnessError
from .state import write_json

STOP_TIMEOUT = 5.0


def stat_fields(pid):
    """The fields of /proc/PID/stat from the third on (state, ppid, pgrp,
    ...: fields[0] is the state, fields[11:15] utime, stime, cutime,
    cstime), None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses.
    return data[data.rindex(")") + 2:].split()


def pids():
    """Every process id in /proc."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _proc_stat(pid):
    """(state, pgrp, starttime) of a process from /proc, None if gone."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    return fields[0], int(fields[2]), int(fields[19])


def _have_proc():
    return os.path.isdir("/proc/self")


def process_alive(pid, starttime=None):
    """True while process pid exists and is not a zombie.

    With starttime (from /proc), a different process that reuses the pid
    counts as gone. No pid (None, 0) is not alive."""
    if not pid or pid <= 0:
        return False
    if _have_proc():
        st = _proc_stat(pid)
        if st is None or st[0] in ("Z", "X", "x"):
            return False
        return starttime is None or st[2] == starttime
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_starttime(pid):
    st = _proc_stat(pid) if _have_proc() else None
    return None if st is None else st[2]


def group_alive(pgid):
    """True while any live (non-zombie) process is in process group pgid."""
    if pgid <= 0:
        return False
    if _have_proc():
        for pid in pids():
            st = _proc_stat(pid)
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X", "x"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _wait_until(done, timeout):
    """Polls done() until it is true or timeout seconds have passed. True
    when done."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def wait_group_gone(pgid, timeout):
    return _wait_until(lambda: not group_alive(pgid), timeout)


def kill_group(pgid, timeout=STOP_TIMEOUT):
    """SIGTERM the group, wait up to timeout, then SIGKILL. True when gone."""
    if not group_alive(pgid):
        return True
    signal_group(pgid, signal.SIGTERM)
    if wait_group_gone(pgid, timeout):
        return True
    signal_group(pgid, signal.SIGKILL)
    return wait_group_gone(pgid, 5.0)


# --------------------------------------------------------------------------
# Single processes, by PID.


def die_with_parent():
    """preexec_fn of a daemon: SIGTERM to it when its parent (a harness's
    supervisor) dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def signal_process(pid, sig):
    """Sends sig to pid; a process gone or not ours is no error."""
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_gone(pids, timeout):
    """Waits until none of pids is alive. True when all are gone."""
    return _wait_until(lambda: not any(process_alive(p) for p in pids), timeout)


def terminate(pids, timeout):
    """SIGTERM, wait up to timeout, SIGKILL, wait. True when all are gone."""
    pids = [p for p in pids if process_alive(p)]
    for p in pids:
        signal_process(p, signal.SIGTERM)
    if wait_gone(pids, timeout):
        return True
    for p in pids:
        if process_alive(p):
            signal_process(p, signal.SIGKILL)
    return wait_gone(pids, 5.0)


def ancestors(pid):
    """pid, its parent, and so on up to (not including) PID 1."""
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        fields = stat_fields(pid)
        if fields is None:
            break
        pid = int(fields[1])
    return seen


def environ(pid):
    """The environment of pid as b"NAME=value" entries, [] when it cannot
    be read (gone, or not ours)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


# --------------------------------------------------------------------------
# CPU use of process groups.


def group_cpu_seconds(pgids):
    """CPU seconds (user + system, the reaped children's included) used so
    far by every live process in the process groups pgids."""
    ticks = 0
    for pid in pids():
        fields = stat_fields(pid)
        if fields is not None and int(fields[2]) in pgids:
            ticks += sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def pgid_of(pid):
    """The process group of pid, None when it is gone."""
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, TypeError):
        return None


class Daemons:
    """The daemons of a harness's supervisor (Slurm's, Grid Engine's): its
    children, each dying with it (die_with_parent), their pids and start
    times recorded in the file `record` for a teardown from elsewhere; and
    the supervisor's watch over them. `procs` maps a name to its Popen."""

    def __init__(self, env, cwd, record, log, watched):
        """`watched`: the process whose end ends the watch (None: none),
        known by its start time from now on; one that does not exist is
        refused."""
        self.env, self.cwd, self.record, self.log = env, cwd, record, log
        self.procs = {}
        self.stop = {"why": None}
        self.watched = watched
        self.watched_start = process_starttime(watched) if watched else None
        if watched and not process_alive(watched, self.watched_start):
            raise HarnessError(f"--watch-pid {watched}: no such process")

    def stop_on_signals(self):
        """SIGTERM and SIGINT end the watch (`watch`)."""
        def on_signal(signum, _frame):
            self.stop["why"] = f"signal {signal.Signals(signum).name}"
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def launch(self, name, cmd):
        """Starts daemon `name` (the command line `cmd`, in the foreground)."""
        self.log(f"starting {name}: {' '.join(cmd)}")
        self.procs[name] = subprocess.Popen(
            cmd, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
            stdout=sys.stdout, stderr=subprocess.STDOUT, close_fds=True,
            preexec_fn=die_with_parent)  # noqa: PLW1509 (a supervisor starts no threads)
        write_json(self.record, {n: [d.pid, process_starttime(d.pid)]
                                 for n, d in self.procs.items()})

    def watch(self, interval):
        """Until a signal (stop_on_signals), a daemon's exit or the end of
        the watched process. Returns 1 when a daemon exited, else 0;
        `stop["why"]` says why."""
        watched, watched_start = self.watched, self.watched_start
        code = 0
        while self.stop["why"] is None:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    self.stop["why"] = f"{name} exited with status {proc.returncode}"
                    code = 1
            if watched and not process_alive(watched, watched_start):
                self.stop["why"] = f"the watched process {watched} is gone"
            time.sleep(interval)
        return code

