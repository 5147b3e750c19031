"""The supervisor of a Grid Engine cell, the daemons' parent: started
detached (the `_supervise` mode of tests/harness/gridengine_cluster.py),
it starts the qmaster, configures the cell through it (submit host,
scheduler, queue) and starts the execd; `start` waits until the queue is
ready; the supervisor watches the daemons and the watched process, and
stops the cell."""

import os
import subprocess
import sys
import time

from .errors import HarnessError
from .gridengine_config import (
    CLUSTER_JSON,
    QUEUE,
    check_programs,
    client,
    client_env,
    execd_log,
    host_names,
    paths,
    read_info,
    scheduler_conf,
    write_cell,
    write_info,
    write_queue,
)
from .gridengine_teardown import MARK_ENV, cell_processes, daemon_command, teardown
from .loopback import free_port
from .process_groups import Daemons, process_alive, terminate
from .state import log_tail

READY_TIMEOUT = 90.0      # until the queue is ready (a loaded machine)
QMASTER_TIMEOUT = 60.0    # until the qmaster answers qconf
WATCH_INTERVAL = 0.5
SUPERVISOR_STOP_TIMEOUT = 90.0
START_ATTEMPTS = 3        # a free port taken in between: new ports
CLI = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "gridengine_cluster.py")


def log(msg):
    """A line of the supervisor's log (its stdout, DIR/harness.log)."""
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} gridengine_cluster.py: {msg}", flush=True)


def _configure(p, info):
    """Through the running qmaster: the node a submit host, the scheduler
    every second, the queue."""
    ports, node = info["ports"], info["node"]
    deadline = time.monotonic() + QMASTER_TIMEOUT
    while True:
        rc, out = client(p, ports, "/usr/bin/qconf", "-sh")
        if rc == 0:
            break
        if time.monotonic() > deadline:
            raise HarnessError(f"the qmaster does not answer qconf: {out}")
        time.sleep(0.1)
    rc, current = client(p, ports, "/usr/bin/qconf", "-ssconf")
    steps = [("-as", node), ("-Msconf", scheduler_conf(p, current) if rc == 0 else ""),
             ("-Aq", write_queue(p, node, info["slots"]))]
    for option, arg in steps:
        rc, out = client(p, ports, "/usr/bin/qconf", option, arg)
        if rc != 0:
            raise HarnessError(f"qconf {option} {arg} failed: {out}")
        log(f"qconf {option} {os.path.basename(arg)}: {out.strip()}")


def supervise(state_dir, watched):
    """Runs the qmaster and the execd of state_dir as children until a
    signal, a daemon's exit or the end of process watched (None: none),
    then tears the cell down. Returns the exit status."""
    p = paths(state_dir)
    info = read_info(p["dir"])
    env = client_env(p, info["ports"])
    env[MARK_ENV] = p["dir"]
    env["SGE_ND"] = "1"  # the daemons stay in the foreground, our children
    daemons = Daemons(env, p["dir"], p["daemons"], log, watched)
    daemons.stop_on_signals()
    code = 0
    try:
        daemons.launch("sge_qmaster", daemon_command("sge_qmaster"))
        _configure(p, info)
        daemons.launch("sge_execd", daemon_command("sge_execd"))
        code = daemons.watch(WATCH_INTERVAL)
    except HarnessError as e:
        log(f"error: {e}")
        code = 1
    except BaseException as e:  # noqa: BLE001 - always tear down
        log(f"error: {e!r}")
        code = 1
    log(f"stopping the cell ({daemons.stop['why'] or 'start failed'})")
    began = time.monotonic()
    left = teardown(p, info, daemons.procs)
    log(f"stopped in {time.monotonic() - began:.1f} s" + (f"; still alive: {left}" if left else ""))
    return code


def queue_state(p, info):
    """The states of the queue instance on the node (qstat -f): "" when it
    is ready, None when qstat cannot tell yet."""
    rc, out = client(p, info["ports"], "/usr/bin/qstat", "-f", "-q", QUEUE)
    if rc != 0:
        return None
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0].startswith(f"{QUEUE}@"):
            # queuename qtype resv/used/tot. load_avg arch [states]
            return " ".join(fields[5:]) if len(fields) > 5 else ""
    return None


def _start_once(p, slots, watch_pid):
    """One start on fresh ports: (info, None), or (None, why it failed)."""
    ports = {"qmaster": free_port(), "execd": free_port()}
    while ports["execd"] == ports["qmaster"]:
        ports["execd"] = free_port()
    node, aliases = host_names()
    write_cell(p, node, aliases, ports)
    env = {k: v for k, v in client_env(p, ports).items() if k.startswith("SGE_")}
    info = {"pid": 0, "node": node, "queue": QUEUE, "slots": slots, "ports": ports,
            "env": env, "state_dir": p["dir"], "log": p["log"], "watch_pid": watch_pid}
    write_info(p["dir"], info)
    cmd = [sys.executable, CLI, "_supervise", "--state-dir", p["dir"]]
    if watch_pid:
        cmd += ["--watch-pid", str(watch_pid)]
    with open(p["log"], "ab") as out:
        sup = subprocess.Popen(cmd, cwd=p["dir"], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT,
                               close_fds=True, start_new_session=True)
    info["pid"] = sup.pid
    write_info(p["dir"], info)
    deadline = time.monotonic() + READY_TIMEOUT
    state = None
    while True:
        if sup.poll() is not None:
            return None, (f"the supervisor exited with status {sup.returncode} "
                          f"(queue state {state!r})")
        state = queue_state(p, info)
        if state == "":
            return info, None
        if time.monotonic() >= deadline:
            terminate([sup.pid], SUPERVISOR_STOP_TIMEOUT)
            return None, (f"queue {QUEUE}@{node} not ready within {READY_TIMEOUT:.0f} s "
                          f"(qstat -f says {state!r})")
        time.sleep(0.1)


def _port_taken(p, info_node):
    text = log_tail(p["qmaster_log"], 40) + log_tail(execd_log(p, info_node), 40) \
        + log_tail(p["log"], 40)
    return "Address already in use" in text or "can't bind" in text


def start_cluster(state_dir, slots, watch_pid):
    """Starts a fresh cell in state_dir (no jobs from before) and waits
    until its queue is ready. Returns the info written to cluster.json."""
    check_programs()
    p = paths(state_dir)
    old = read_info(p["dir"])
    if old and (process_alive(old.get("pid")) or cell_processes(p["dir"])):
        raise HarnessError(f"a Grid Engine cell from {p['dir']} is still running: "
                           "stop it first")
    os.makedirs(p["dir"], exist_ok=True)
    failure = None
    node = host_names()[0]
    for _ in range(START_ATTEMPTS):
        info, failure = _start_once(p, slots, watch_pid)
        if info is not None:
            return info
        if not _port_taken(p, node):
            break
    raise HarnessError(
        f"starting the Grid Engine cell in {p['dir']} failed: {failure}\n"
        f"--- {p['log']} ---\n{log_tail(p['log'])}\n"
        f"--- {p['qmaster_log']} ---\n{log_tail(p['qmaster_log'])}\n"
        f"--- execd messages ---\n{log_tail(execd_log(p, node))}")


def stop_cluster(state_dir):
    """Stops the supervisor of state_dir (which tears the cell down), then
    tears down what is left (a killed supervisor, a daemon that did not
    stop). Returns a note for stderr when there is nothing to stop, else
    None; fails when anything of the cell is still alive."""
    p = paths(state_dir)
    info = read_info(p["dir"])
    if info is None:
        return f"no {CLUSTER_JSON} in {p['dir']}: nothing to stop"
    terminate([info.get("pid")], SUPERVISOR_STOP_TIMEOUT)
    left = teardown(p, info)
    if left:
        raise HarnessError(f"still alive after stop: {left}")
    return None
