"""A launcher's own CPU, apart from its children's (the section on `taskfarm
run`): the process is run to its end (or stopped with SIGTERM after a
window), waited for without being reaped (waitid with WNOWAIT), and its
/proc/PID/stat read while it is a zombie: utime + stime are its own CPU, all
threads, children excluded; cutime + cstime its reaped children's (the
commands it ran). Then it is reaped with wait4, whose rusage (its own and
its reaped children's together, microseconds) checks the sum.

/proc/PID/stat counts in clock ticks (USER_HZ, 10 ms here): a run long
enough for thousands of tasks makes that a small error per task."""

import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    """What one launcher did: seconds of wall time and of CPU."""
    wall_s: float          # from the start to the end (or to the SIGTERM of a window)
    self_s: float          # its own CPU (utime + stime of /proc/PID/stat)
    children_s: float      # its reaped children's (cutime + cstime)
    rusage_s: float        # wait4's ru_utime + ru_stime: its own and its children's, in µs
    returncode: int        # as subprocess gives it (-N: killed by signal N)

    def as_dict(self):
        return asdict(self)


def parse_stat(text):
    """(own, children's) CPU seconds from the text of a /proc/PID/stat."""
    # The command name is in parentheses and may hold spaces and parentheses:
    # the fields after its last `)` start at state (field 3); utime is field 14.
    fields = text[text.rindex(")") + 2:].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) * TICK_S, (cutime + cstime) * TICK_S


def stat_times(pid):
    """(own, children's) CPU seconds of a process from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        return parse_stat(f.read())


def run_measured(cmd, env, timeout, stdout, stderr, window_s=None, stdin=subprocess.DEVNULL):
    """Runs cmd to its end, or with window_s for window_s seconds and then
    SIGTERM; stdout and stderr: open files. A run that outlasts `timeout` is
    killed and raises TimeoutError."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdin=stdin, stdout=stdout, stderr=stderr)
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    try:
        end = None
        if window_s is not None:
            time.sleep(max(0.0, start + window_s - time.monotonic()))
            end = time.monotonic()
            p.send_signal(signal.SIGTERM)
        os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
        if end is None:
            end = time.monotonic()
        own, children = stat_times(p.pid)
        _, status, usage = os.wait4(p.pid, 0)
    finally:
        timed_out = not killer.is_alive()
        killer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    if timed_out:
        raise TimeoutError(f"{cmd[0]} ran longer than {timeout} s")
    return Measured(wall_s=end - start, self_s=own, children_s=children,
                    rusage_s=usage.ru_utime + usage.ru_stime, returncode=p.returncode)
