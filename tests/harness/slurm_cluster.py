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

The work is done by the slurm_* modules of tests/harness/taskfarm_harness/
(the state directory and its files, the cluster's processes, the teardown,
the supervisor); this file is their command line.
"""

import argparse
import json
import os
import sys

from taskfarm_harness.errors import HarnessError
from taskfarm_harness.process_groups import process_alive
from taskfarm_harness.slurm_config import read_info
from taskfarm_harness.slurm_supervisor import start_cluster, stop_cluster, supervise


def cmd_start(args):
    info = start_cluster(args.state_dir, args.cpus, args.watch_pid)
    print(json.dumps(info), flush=True)


def cmd_stop(args):
    note = stop_cluster(args.state_dir)
    if note:
        print(f"slurm_cluster.py: {note}", file=sys.stderr)


def cmd_env(args):
    info = read_info(args.state_dir)
    if info is None or not process_alive(info.get("pid")):
        raise HarnessError(f"no running cluster in {os.path.abspath(args.state_dir)}: "
                           "start one first")
    print(f"export SLURM_CONF={info['slurm_conf']}")


def cmd_supervise(args):
    return supervise(args.state_dir, args.watch_pid)


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
