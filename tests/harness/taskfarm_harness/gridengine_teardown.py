"""The processes of a Grid Engine cell of the harness, found through /proc,
and the cell's end: the execd stopped with its jobs (`qconf -kej`), the
qmaster (`qconf -km`), then by PID whatever is left."""

import os
import time

from .gridengine_config import LIBEXEC, client
from .process_groups import ancestors, environ, pids, process_alive, terminate
from .state import read_json

# In the environment of the cell's daemons (and so of the execd's shepherds):
# MARK_ENV=<state dir>.
MARK_ENV = "TASKFARM_GRIDENGINE_HARNESS"
DAEMON_STOP_TIMEOUT = 20.0  # qconf -km until the qmaster has exited


def cell_processes(state_dir):
    """PIDs of live processes that belong to the cell of state_dir: marked
    with MARK_ENV=state_dir (the daemons, the shepherds), or job processes
    (a JOB_ID, and SGE_ROOT=state_dir/root, which the execd sets in every
    job). Never this process or its ancestors (a shell that set SGE_ROOT to
    run `stop`)."""
    mark = f"{MARK_ENV}={state_dir}".encode()
    sge_root = f"SGE_ROOT={os.path.join(state_dir, 'root')}".encode()
    mine = ancestors(os.getpid())
    found = []
    for pid in pids():
        if pid in mine or not process_alive(pid):
            continue
        env = environ(pid)
        if mark in env or (sge_root in env and any(e.startswith(b"JOB_ID=") for e in env)):
            found.append(pid)
    return found


def teardown(p, info, daemons=None):
    """Stops the execd with its jobs and the qmaster of the cell of paths p
    (info: its cluster.json; daemons: the supervisor's Popen by name,
    reaped here), then kills what is left. Idempotent. Returns the PIDs
    still alive (empty when clean)."""
    pids_by_name = {n: pid for n, (pid, st) in (read_json(p["daemons"]) or {}).items()
                    if process_alive(pid, st)}
    if daemons:
        pids_by_name.update({n: d.pid for n, d in daemons.items()})
    ports = (info or {}).get("ports")
    if ports and process_alive(pids_by_name.get("sge_qmaster")):
        if process_alive(pids_by_name.get("sge_execd")):
            client(p, ports, "/usr/bin/qconf", "-kej", info["node"], timeout=15)
        client(p, ports, "/usr/bin/qconf", "-km", timeout=15)
    for name in ("sge_execd", "sge_qmaster"):
        pid = pids_by_name.get(name)
        if process_alive(pid):
            deadline = time.monotonic() + DAEMON_STOP_TIMEOUT
            while process_alive(pid) and time.monotonic() < deadline:
                if daemons and name in daemons:
                    daemons[name].poll()
                time.sleep(0.05)
            terminate([pid], 5.0)
        if daemons and name in daemons:
            daemons[name].poll()
    left = cell_processes(p["dir"])
    if left:
        terminate(left, 5.0)
    for d in (daemons or {}).values():
        d.poll()
    return cell_processes(p["dir"])


def daemon_command(name):
    """The daemon's binary (not /usr/sbin's wrapper script: the PID the
    harness keeps is the daemon's)."""
    return [os.path.join(LIBEXEC, name)]
