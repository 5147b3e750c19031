"""The Slurm cluster's state directory: where every file goes, cluster.json,
slurm.conf, the munge key; the programs it needs, and Slurm's clients run
against its slurm.conf."""

import os
import pwd
import secrets
import shutil
import socket
import subprocess

from .errors import HarnessError
from .loopback import HOST
from .state import read_json, write_json

CLUSTER_JSON = "cluster.json"
HARNESS_LOG = "harness.log"
PARTITION = "debug"
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


def paths(state_dir):
    """Every path of the cluster of state_dir, by role."""
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
    """The cluster.json of state_dir, None when there is none."""
    return read_json(paths(state_dir)["json"])


def write_info(state_dir, info):
    write_json(paths(state_dir)["json"], info)


def check_programs():
    """Fails with the apt-get line to run when a program is missing."""
    missing = sorted({pkg for prog, pkg in PROGRAMS.items()
                      if shutil.which(prog) is None and
                      not os.access(f"/usr/sbin/{prog}", os.X_OK)})
    if missing:
        raise HarnessError(
            "Slurm or munge is missing: apt-get install -y "
            "slurmctld slurmd slurm-client munge "
            f"(missing packages: {', '.join(missing)})")


def program(name):
    """The path of program name: on PATH, else in /usr/sbin."""
    return shutil.which(name) or f"/usr/sbin/{name}"


def machine_memory_mb():
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 2048


def write_config(p, cpus, ctld_port, slurmd_port):
    """Writes slurm.conf of paths p; returns the node's name."""
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
    """A random 1 KiB key, mode 0400 in a 0700 directory; an existing key
    is kept."""
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


def node_state(p, node):
    """The node's state as sinfo says it (`idle`, ...), None when sinfo
    fails."""
    rc, out = slurm(p, program("sinfo"), "-h", "-N", "-n", node, "-o", "%T",
                    timeout=10)
    return out.strip() if rc == 0 else None
