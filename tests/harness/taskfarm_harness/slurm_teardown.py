"""The end of a Slurm cluster: every job cancelled, the daemons stopped, and
whatever is left of the cluster killed."""

import os
import time

from .process_groups import process_alive, terminate
from .slurm_config import program, slurm
from .slurm_processes import cluster_processes
from .state import read_json

CANCEL_TIMEOUT = 30.0     # scancel until the queue is empty (KillWait=5)
DAEMON_STOP_TIMEOUT = 15.0


def teardown(p, daemons=None):
    """Cancels every job, stops the daemons and kills what is left of the
    cluster of paths p (daemons: the supervisor's Popen by name, reaped
    here). Idempotent. Returns the PIDs still alive (empty when clean)."""
    # The same processes only (a PID may have been reused since).
    pids = {n: pid for n, (pid, st) in (read_json(p["daemons"]) or {}).items()
            if process_alive(pid, st)}
    if daemons:
        pids.update({n: d.pid for n, d in daemons.items()})
    if process_alive(pids.get("slurmctld")):
        slurm(p, program("scancel"), "--quiet", "--user", str(os.getuid()))
        deadline = time.monotonic() + CANCEL_TIMEOUT
        while time.monotonic() < deadline:
            rc, out = slurm(p, program("squeue"), "-h", "-o", "%i")
            if rc == 0 and not out.strip():
                break
            time.sleep(0.2)
    for name in ("slurmd", "slurmctld", "munged"):
        pid = pids.get(name)
        if process_alive(pid) and name == "munged":
            # Whatever slurmstepd is left still needs munge to wind up: kill
            # the rest of the cluster first.
            terminate(cluster_processes(p["dir"]), 5.0)
        if process_alive(pid):
            terminate([pid], DAEMON_STOP_TIMEOUT)
        if daemons and name in daemons:
            daemons[name].poll()
    left = cluster_processes(p["dir"])
    if left:
        terminate(left, 5.0)
    for d in (daemons or {}).values():
        d.poll()
    return cluster_processes(p["dir"])
