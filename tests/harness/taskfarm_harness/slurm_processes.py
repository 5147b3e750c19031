"""The processes of a Slurm cluster of the harness, found through /proc."""

import os

from .process_groups import ancestors, environ, pids, process_alive

# In the environment of the cluster's daemons: MARK_ENV=<state dir>.
MARK_ENV = "TASKFARM_SLURM_HARNESS"


def cluster_processes(state_dir):
    """PIDs of live processes that belong to the cluster of state_dir: marked
    with MARK_ENV=state_dir (the daemons, slurmstepd), or job processes
    (SLURM_JOB_ID and SLURM_CONF=state_dir/slurm.conf). Never this process or
    its ancestors (a shell that set SLURM_CONF to run `stop`)."""
    mark = f"{MARK_ENV}={state_dir}".encode()
    conf = f"SLURM_CONF={os.path.join(state_dir, 'slurm.conf')}".encode()
    mine = ancestors(os.getpid())
    found = []
    for pid in pids():
        if pid in mine or not process_alive(pid):
            continue
        env = environ(pid)
        if mark in env or (conf in env and
                           any(e.startswith(b"SLURM_JOB_ID=") for e in env)) \
                or _is_our_slurm_daemon(pid, state_dir):
            found.append(pid)
    return found


def _is_our_slurm_daemon(pid, state_dir):
    """slurmstepd (and slurmctld's slurmscriptd) overwrite their environment
    with their title; they keep the daemons' working directory, state_dir."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return cwd == os.path.realpath(state_dir) and (cmdline.startswith(b"slurm") or
                                 b"/slurm" in cmdline.split(b"\0")[0])
