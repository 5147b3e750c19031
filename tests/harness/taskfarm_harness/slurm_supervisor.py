"""The supervisor of a Slurm cluster, the daemons' parent: started detached
(the `_supervise` mode of tests/harness/slurm_cluster.py) and waited for
until the node is idle, its watch over the daemons and the watched process,
and its stop."""

import os
import shutil
import subprocess
import sys
import time

from .errors import HarnessError
from .loopback import free_port
from .process_groups import Daemons, process_alive, process_starttime, terminate
from .slurm_config import (
    CLUSTER_JSON,
    PARTITION,
    check_programs,
    make_munge_key,
    node_state,
    paths,
    program,
    read_info,
    write_config,
    write_info,
)
from .slurm_processes import MARK_ENV, cluster_processes
from .slurm_teardown import teardown
from .state import log_tail

READY_TIMEOUT = 90.0      # until the node is idle (a loaded machine)
WATCH_INTERVAL = 0.5
SUPERVISOR_STOP_TIMEOUT = 90.0
START_ATTEMPTS = 3        # a free port taken in between: new ports
# The command line whose `_supervise` subcommand is the supervisor.
CLI = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "slurm_cluster.py")


def log(msg):
    """A line of the supervisor's log (its stdout, DIR/harness.log)."""
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} slurm_cluster.py: {msg}", flush=True)


def supervise(state_dir, watched):
    """Runs munged, slurmctld and slurmd of state_dir as children until a
    signal, a daemon's exit or the end of process watched (None: none),
    then tears the cluster down. Returns the exit status."""
    p = paths(state_dir)
    env = dict(os.environ)
    env[MARK_ENV] = p["dir"]
    env["SLURM_CONF"] = p["conf"]
    daemons = Daemons(env, p["dir"], p["daemons"], log, watched)
    daemons.stop_on_signals()
    code = 0
    try:
        daemons.launch("munged", [program("munged"), "--foreground", "--force",
                                  f"--key-file={p['munge_key']}",
                                  f"--socket={p['munge_socket']}",
                                  f"--pid-file={p['munge_pid']}",
                                  f"--log-file={p['munge_log']}",
                                  f"--seed-file={p['munge_seed']}"])
        deadline = time.monotonic() + 30
        while not os.path.exists(p["munge_socket"]):
            if daemons.procs["munged"].poll() is not None or time.monotonic() > deadline:
                raise HarnessError("munged did not create its socket:\n"
                                   + log_tail(p["munge_log"]))
            time.sleep(0.05)
        daemons.launch("slurmctld", [program("slurmctld"), "-D", "-c", "-f", p["conf"]])
        daemons.launch("slurmd", [program("slurmd"), "-D", "-f", p["conf"]])
        code = daemons.watch(WATCH_INTERVAL)
    except HarnessError as e:
        log(f"error: {e}")
        code = 1
    except BaseException as e:  # noqa: BLE001 - always tear down
        log(f"error: {e!r}")
        code = 1
    log(f"stopping the cluster ({daemons.stop['why'] or 'start failed'})")
    teardown(p, daemons.procs)
    log("stopped")
    return code


def _start_once(p, cpus, watch_pid):
    """One start on fresh ports: (info, None), or (None, why it failed)."""
    ctld_port, slurmd_port = free_port(), free_port()
    while slurmd_port == ctld_port:
        slurmd_port = free_port()
    node = write_config(p, cpus, ctld_port, slurmd_port)
    info = {"slurm_conf": p["conf"], "pid": 0, "node": node,
            "partition": PARTITION, "cpus": cpus, "ctld_port": ctld_port,
            "slurmd_port": slurmd_port, "munge_socket": p["munge_socket"],
            "state_dir": p["dir"], "log": p["log"], "watch_pid": watch_pid}
    write_info(p["dir"], info)
    cmd = [sys.executable, CLI, "_supervise", "--state-dir", p["dir"]]
    if watch_pid:
        cmd += ["--watch-pid", str(watch_pid)]
    with open(p["log"], "ab") as out:
        sup = subprocess.Popen(cmd, cwd=p["dir"], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT,
                               close_fds=True, start_new_session=True)
    info["pid"] = sup.pid
    # With the pid's start time, a later stop never signals another process
    # that reuses the pid (the supervisor may be gone by then).
    info["pid_starttime"] = process_starttime(sup.pid)
    write_info(p["dir"], info)
    deadline = time.monotonic() + READY_TIMEOUT
    state = None
    while True:
        if sup.poll() is not None:
            return None, (f"the supervisor exited with status {sup.returncode} "
                          f"(node state {state!r})")
        state = node_state(p, node)
        if state == "idle":
            return info, None
        if time.monotonic() >= deadline:
            terminate([sup.pid], SUPERVISOR_STOP_TIMEOUT)
            return None, (f"node {node} not idle within {READY_TIMEOUT:.0f} s "
                          f"(sinfo says {state!r})")
        time.sleep(0.1)


def _port_taken(p):
    text = log_tail(p["ctld_log"], 40) + log_tail(p["slurmd_log"], 40)
    return "Address already in use" in text


def start_cluster(state_dir, cpus, watch_pid):
    """Starts a fresh cluster in state_dir (no jobs or cluster name from
    before; cpus None: the machine's) and waits until its node is idle.
    Returns the info written to cluster.json."""
    check_programs()
    p = paths(state_dir)
    old = read_info(p["dir"])
    if old and (process_alive(old.get("pid"), old.get("pid_starttime"))
                or cluster_processes(p["dir"])):
        raise HarnessError(f"a cluster from {p['dir']} is still running: "
                           "stop it first")
    for d in ("state", "spool"):
        shutil.rmtree(p[d], ignore_errors=True)
    for d in ("dir", "state", "spool", "logs", "run"):
        os.makedirs(p[d], exist_ok=True)
    make_munge_key(p)
    if os.path.exists(p["daemons"]):
        os.remove(p["daemons"])
    cpus = cpus or os.cpu_count() or 1
    failure = None
    for _ in range(START_ATTEMPTS):
        info, failure = _start_once(p, cpus, watch_pid)
        if info is not None:
            return info
        if not _port_taken(p):
            break
    raise HarnessError(
        f"starting the Slurm cluster in {p['dir']} failed: {failure}\n"
        f"--- {p['log']} ---\n{log_tail(p['log'])}\n"
        f"--- {p['ctld_log']} ---\n{log_tail(p['ctld_log'])}\n"
        f"--- {p['slurmd_log']} ---\n{log_tail(p['slurmd_log'])}")


def stop_cluster(state_dir):
    """Stops the supervisor of state_dir (which tears the cluster down),
    then tears down what is left (a killed supervisor, a daemon that did not
    stop). Returns a note for stderr when there is nothing to stop, else
    None; fails when anything of the cluster is still alive."""
    p = paths(state_dir)
    info = read_info(p["dir"])
    if info is None:
        return f"no {CLUSTER_JSON} in {p['dir']}: nothing to stop"
    if process_alive(info.get("pid"), info.get("pid_starttime")):
        terminate([info.get("pid")], SUPERVISOR_STOP_TIMEOUT)
    left = teardown(p)
    if left:
        raise HarnessError(f"still alive after stop: {left}")
    return None
