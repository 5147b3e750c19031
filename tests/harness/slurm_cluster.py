#!/usr/bin/env python3
"""Start and stop a REAL single-node Slurm cluster for the tests and for people.

Debian's Slurm 22.05 (`slurmctld slurmd slurm-client munge`) run here without
systemd and without touching the system's configuration: every file lives in
one private state directory, the daemons listen on free ports, and nothing is
left running after `stop` -- nor after the watched process dies. Standard
library only (run it with any python3; tests/harness/slurm.sh is the shell
entry point).

    slurm_cluster.py start --state-dir DIR [--watch-pid PID] [--cpus N]
    slurm_cluster.py stop  --state-dir DIR
    slurm_cluster.py env   --state-dir DIR      # export SLURM_CONF=DIR/slurm.conf

`start` writes DIR/slurm.conf, then starts a supervisor (this script's
`_supervise` mode, detached in a session of its own, its output in
DIR/harness.log) that runs, in the foreground and as its own children:

    munged --foreground --force --key-file=DIR/munge/munge.key --socket=DIR/munge/munge.socket ...
    slurmctld -D -c -f DIR/slurm.conf      (state in DIR/state, log DIR/log/slurmctld.log)
    slurmd    -D    -f DIR/slurm.conf      (spool in DIR/spool, log DIR/log/slurmd.log)

munge gets its own random 1 KiB key (mode 0400 in a 0700 directory) and its
own socket, which slurm.conf names (`AuthInfo=socket=...`), so Slurm's
clients (sbatch, srun, squeue, sinfo, scontrol, scancel) need only
`SLURM_CONF=DIR/slurm.conf` in their environment. `start` waits -- by polling
`sinfo`, with a deadline -- until the node is `idle`, then writes
DIR/cluster.json and prints the same JSON on one line:

    {"slurm_conf": "DIR/slurm.conf", "pid": SUPERVISOR_PID, "node": "vm",
     "partition": "debug", "cpus": 2, "ctld_port": P, "slurmd_port": Q, ...}

The node is the local host (NodeAddr=127.0.0.1) with `--cpus` CPUs (default:
the machine's) and the real memory minus a margin; `SlurmdParameters=
config_overrides` lets the node claim more CPUs than the machine has (more
job steps at once on a small test machine). One partition, `debug`, default,
no time limit. Jobs run as the submitting user, with its environment
(sbatch's default `--export=ALL`): a job is configured as a user's is,
through the environment.

Stopping (`stop`, SIGTERM or SIGINT to the supervisor, or the watched process
gone): every job is cancelled and the queue waited for, then slurmd,
slurmctld and munged get SIGTERM, by PID (SIGKILL after a grace time), and
finally any process left that belongs to this cluster -- marked by
TASKFARM_SLURM_HARNESS=DIR in its environment (the daemons), by a Slurm
title and DIR as working directory (slurmstepd), or
by SLURM_CONF=DIR/slurm.conf together with a SLURM_JOB_ID (job processes) --
is killed by PID. `stop` waits for all of that and fails when anything is
still alive; zombies (killed processes that PID 1 has not reaped yet) do not
count. The supervisor also gives each daemon PR_SET_PDEATHSIG=SIGTERM, so a
SIGKILLed supervisor does not leave daemons behind either.

The daemons run as the user who starts the cluster (SlurmUser and
SlurmdUser); the tests run as root, which is what has been tried. A failed
start prints the last lines of the daemons' logs.
"""

import argparse
import ctypes
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

from taskfarm_harness.errors import HarnessError
from taskfarm_harness.loopback import HOST, free_port
from taskfarm_harness.process_groups import process_alive, process_starttime, stat_fields
from taskfarm_harness.state import log_tail, read_json, write_json

CLUSTER_JSON = "cluster.json"
HARNESS_LOG = "harness.log"
PARTITION = "debug"
MARK_ENV = "TASKFARM_SLURM_HARNESS"

READY_TIMEOUT = 90.0      # until the node is idle (a loaded machine)
WATCH_INTERVAL = 0.5
CANCEL_TIMEOUT = 30.0     # scancel until the queue is empty (KillWait=5)
DAEMON_STOP_TIMEOUT = 15.0
SUPERVISOR_STOP_TIMEOUT = 90.0
START_ATTEMPTS = 3        # a free port taken in between: new ports
MEMORY_MARGIN_MB = 512

PROGRAMS = {
    "munged": "munge",
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sinfo": "slurm-client",
    "squeue": "slurm-client",
    "scancel": "slurm-client",
    "sbatch": "slurm-client",
}


# --------------------------------------------------------------------------
# Processes (/proc: PID 1 of a container may reap slowly, and a zombie still
# answers kill(pid, 0)).


def wait_gone(pids, timeout):
    """Waits until none of pids is alive. True when all are gone."""
    deadline = time.monotonic() + timeout
    while any(process_alive(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def terminate(pids, timeout):
    """SIGTERM, wait up to timeout, SIGKILL, wait. True when all are gone."""
    pids = [p for p in pids if process_alive(p)]
    for p in pids:
        _signal(p, signal.SIGTERM)
    if wait_gone(pids, timeout):
        return True
    for p in pids:
        if process_alive(p):
            _signal(p, signal.SIGKILL)
    return wait_gone(pids, 5.0)


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _ancestors(pid):
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        fields = stat_fields(pid)
        if fields is None:
            break
        pid = int(fields[1])
    return seen


def cluster_processes(state_dir):
    """PIDs of live processes that belong to the cluster of state_dir: marked
    with MARK_ENV=state_dir (the daemons, slurmstepd), or job processes
    (SLURM_JOB_ID and SLURM_CONF=state_dir/slurm.conf). Never this process or
    its ancestors (a shell that set SLURM_CONF to run `stop`)."""
    mark = f"{MARK_ENV}={state_dir}".encode()
    conf = f"SLURM_CONF={os.path.join(state_dir, 'slurm.conf')}".encode()
    mine = _ancestors(os.getpid())
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in mine or not process_alive(pid):
            continue
        env = _environ(pid)
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


# --------------------------------------------------------------------------
# Files.


def paths(state_dir):
    d = os.path.abspath(state_dir)
    return {
        "dir": d,
        "conf": os.path.join(d, "slurm.conf"),
        "json": os.path.join(d, CLUSTER_JSON),
        "log": os.path.join(d, HARNESS_LOG),
        "munge_dir": os.path.join(d, "munge"),
        "munge_key": os.path.join(d, "munge", "munge.key"),
        "munge_socket": os.path.join(d, "munge", "munge.socket"),
        "munge_pid": os.path.join(d, "munge", "munged.pid"),
        "munge_log": os.path.join(d, "munge", "munged.log"),
        "munge_seed": os.path.join(d, "munge", "munged.seed"),
        "state": os.path.join(d, "state"),
        "spool": os.path.join(d, "spool"),
        "logs": os.path.join(d, "log"),
        "run": os.path.join(d, "run"),
        "daemons": os.path.join(d, "run", "daemons.json"),
        "ctld_log": os.path.join(d, "log", "slurmctld.log"),
        "slurmd_log": os.path.join(d, "log", "slurmd.log"),
    }


def read_info(state_dir):
    return read_json(paths(state_dir)["json"])


def write_info(state_dir, info):
    write_json(paths(state_dir)["json"], info)


def check_programs():
    missing = sorted({pkg for prog, pkg in PROGRAMS.items()
                      if shutil.which(prog) is None and
                      not os.access(f"/usr/sbin/{prog}", os.X_OK)})
    if missing:
        raise HarnessError(
            "Slurm or munge is missing: apt-get install -y "
            "slurmctld slurmd slurm-client munge "
            f"(missing packages: {', '.join(missing)})")


def program(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


def machine_memory_mb():
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 2048


def write_config(p, cpus, ctld_port, slurmd_port):
    node = socket.gethostname().split(".")[0]
    user = pwd.getpwuid(os.getuid()).pw_name
    memory = max(512, machine_memory_mb() - MEMORY_MARGIN_MB)
    conf = f"""\
# Written by tests/harness/slurm_cluster.py: a private single-node cluster.
ClusterName=tf{secrets.token_hex(3)}
SlurmctldHost={node}({HOST})
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={p['munge_socket']}
CredType=cred/munge
StateSaveLocation={p['state']}
SlurmdSpoolDir={p['spool']}
SlurmctldPidFile={p['run']}/slurmctld.pid
SlurmdPidFile={p['run']}/slurmd.pid
SlurmctldLogFile={p['ctld_log']}
SlurmdLogFile={p['slurmd_log']}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=600
MailProg=/bin/true
NodeName={node} NodeAddr={HOST} CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    with open(p["conf"], "w", encoding="utf-8") as f:
        f.write(conf)
    return node


def make_munge_key(p):
    os.makedirs(p["munge_dir"], exist_ok=True)
    os.chmod(p["munge_dir"], 0o700)
    if not os.path.exists(p["munge_key"]):
        fd = os.open(p["munge_key"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(1024))


def client_env(p):
    env = dict(os.environ)
    env["SLURM_CONF"] = p["conf"]
    return env


def slurm(p, *args, timeout=20):
    """Runs a Slurm client; (returncode, stdout+stderr). Never raises on a
    failing command (returncode None: it could not run or timed out)."""
    try:
        r = subprocess.run(list(args), env=client_env(p), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, check=False)
        return r.returncode, r.stdout + r.stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)


# --------------------------------------------------------------------------
# Supervisor: the daemons' parent.


def _pdeathsig():
    """preexec_fn: SIGTERM to the child when the supervisor dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def cmd_supervise(args):
    p = paths(args.state_dir)
    stop = {"why": None}

    def on_signal(signum, _frame):
        stop["why"] = f"signal {signal.Signals(signum).name}"

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watched = args.watch_pid
    watched_start = process_starttime(watched) if watched else None
    if watched and not process_alive(watched, watched_start):
        raise HarnessError(f"--watch-pid {watched}: no such process")

    env = dict(os.environ)
    env[MARK_ENV] = p["dir"]
    env["SLURM_CONF"] = p["conf"]
    daemons = {}

    def launch(name, cmd):
        log(f"starting {name}: {' '.join(cmd)}")
        daemons[name] = subprocess.Popen(
            cmd, env=env, cwd=p["dir"], stdin=subprocess.DEVNULL,
            stdout=sys.stdout, stderr=subprocess.STDOUT, close_fds=True,
            preexec_fn=_pdeathsig)  # noqa: PLW1509 (this process starts no threads)
        write_json(p["daemons"], {n: [d.pid, process_starttime(d.pid)]
                                  for n, d in daemons.items()})

    code = 0
    try:
        launch("munged", [program("munged"), "--foreground", "--force",
                          f"--key-file={p['munge_key']}",
                          f"--socket={p['munge_socket']}",
                          f"--pid-file={p['munge_pid']}",
                          f"--log-file={p['munge_log']}",
                          f"--seed-file={p['munge_seed']}"])
        deadline = time.monotonic() + 30
        while not os.path.exists(p["munge_socket"]):
            if daemons["munged"].poll() is not None or time.monotonic() > deadline:
                raise HarnessError("munged did not create its socket:\n"
                                   + log_tail(p["munge_log"]))
            time.sleep(0.05)
        launch("slurmctld", [program("slurmctld"), "-D", "-c", "-f", p["conf"]])
        launch("slurmd", [program("slurmd"), "-D", "-f", p["conf"]])
        while stop["why"] is None:
            for name, proc in daemons.items():
                if proc.poll() is not None:
                    stop["why"] = f"{name} exited with status {proc.returncode}"
                    code = 1
            if watched and not process_alive(watched, watched_start):
                stop["why"] = f"the watched process {watched} is gone"
            time.sleep(WATCH_INTERVAL)
    except HarnessError as e:
        log(f"error: {e}")
        code = 1
    except BaseException as e:  # noqa: BLE001 - always tear down
        log(f"error: {e!r}")
        code = 1
    log(f"stopping the cluster ({stop['why'] or 'start failed'})")
    teardown(p, daemons)
    log("stopped")
    return code


def log(msg):
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} slurm_cluster.py: {msg}", flush=True)


def teardown(p, daemons=None):
    """Cancels every job, stops the daemons and kills what is left of the
    cluster. Idempotent. Returns the PIDs still alive (empty when clean)."""
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


# --------------------------------------------------------------------------
# Subcommands.


def node_state(p, node):
    rc, out = slurm(p, program("sinfo"), "-h", "-N", "-n", node, "-o", "%T",
                    timeout=10)
    return out.strip() if rc == 0 else None


def start_once(p, cpus, watch_pid):
    ctld_port, slurmd_port = free_port(), free_port()
    while slurmd_port == ctld_port:
        slurmd_port = free_port()
    node = write_config(p, cpus, ctld_port, slurmd_port)
    info = {"slurm_conf": p["conf"], "pid": 0, "node": node,
            "partition": PARTITION, "cpus": cpus, "ctld_port": ctld_port,
            "slurmd_port": slurmd_port, "munge_socket": p["munge_socket"],
            "state_dir": p["dir"], "log": p["log"], "watch_pid": watch_pid}
    write_info(p["dir"], info)
    cmd = [sys.executable, os.path.abspath(__file__), "_supervise",
           "--state-dir", p["dir"]]
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
                          f"(node state {state!r})")
        state = node_state(p, node)
        if state == "idle":
            return info, None
        if time.monotonic() >= deadline:
            stop_supervisor(p, sup.pid)
            return None, (f"node {node} not idle within {READY_TIMEOUT:.0f} s "
                          f"(sinfo says {state!r})")
        time.sleep(0.1)


def port_taken(p):
    text = log_tail(p["ctld_log"], 40) + log_tail(p["slurmd_log"], 40)
    return "Address already in use" in text


def cmd_start(args):
    check_programs()
    p = paths(args.state_dir)
    old = read_info(p["dir"])
    if old and (process_alive(old.get("pid")) or cluster_processes(p["dir"])):
        raise HarnessError(f"a cluster from {p['dir']} is still running: "
                           "stop it first")
    # A fresh cluster every time: no jobs or cluster name from before.
    for d in ("state", "spool"):
        shutil.rmtree(p[d], ignore_errors=True)
    for d in ("dir", "state", "spool", "logs", "run"):
        os.makedirs(p[d], exist_ok=True)
    make_munge_key(p)
    if os.path.exists(p["daemons"]):
        os.remove(p["daemons"])
    cpus = args.cpus or os.cpu_count() or 1
    failure = None
    for _ in range(START_ATTEMPTS):
        info, failure = start_once(p, cpus, args.watch_pid)
        if info is not None:
            print(json.dumps(info), flush=True)
            return
        if not port_taken(p):
            break
    raise HarnessError(
        f"starting the Slurm cluster in {p['dir']} failed: {failure}\n"
        f"--- {p['log']} ---\n{log_tail(p['log'])}\n"
        f"--- {p['ctld_log']} ---\n{log_tail(p['ctld_log'])}\n"
        f"--- {p['slurmd_log']} ---\n{log_tail(p['slurmd_log'])}")


def stop_supervisor(p, pid):
    if process_alive(pid):
        _signal(pid, signal.SIGTERM)
        wait_gone([pid], SUPERVISOR_STOP_TIMEOUT)
    if process_alive(pid):
        _signal(pid, signal.SIGKILL)
        wait_gone([pid], 5.0)


def cmd_stop(args):
    p = paths(args.state_dir)
    info = read_info(p["dir"])
    if info is None:
        print(f"slurm_cluster.py: no {CLUSTER_JSON} in {p['dir']}: nothing to stop",
              file=sys.stderr)
        return
    stop_supervisor(p, info.get("pid"))
    # The supervisor has torn everything down; this is the backstop (the
    # supervisor was killed, or a daemon did not stop).
    left = teardown(p)
    if left:
        raise HarnessError(f"still alive after stop: {left}")


def cmd_env(args):
    info = read_info(args.state_dir)
    if info is None or not process_alive(info.get("pid")):
        raise HarnessError(f"no running cluster in {os.path.abspath(args.state_dir)}: "
                           "start one first")
    print(f"export SLURM_CONF={info['slurm_conf']}")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Start and stop a private single-node Slurm cluster.")
    sub = parser.add_subparsers(dest="command", required=True)

    def state(p):
        p.add_argument("--state-dir", required=True,
                       help="directory of every file of the cluster")

    p = sub.add_parser("start", help="start the cluster, wait until the node is idle")
    state(p)
    p.add_argument("--watch-pid", type=int,
                   help="stop the cluster when this process is gone")
    p.add_argument("--cpus", type=int, help="CPUs of the node (default: the machine's)")
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("stop", help="cancel every job, stop the daemons")
    state(p)
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("env", help="print the export line for SLURM_CONF")
    state(p)
    p.set_defaults(func=cmd_env)
    p = sub.add_parser("_supervise", help=argparse.SUPPRESS)
    state(p)
    p.add_argument("--watch-pid", type=int)
    p.set_defaults(func=cmd_supervise)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        code = args.func(args)
    except HarnessError as e:
        print(f"slurm_cluster.py {args.command}: error: {e}", file=sys.stderr,
              flush=True)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
