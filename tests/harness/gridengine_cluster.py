#!/usr/bin/env python3
"""Start and stop a REAL single-node Grid Engine cell for the tests and for
people.

Debian's Son of Grid Engine 8.1.9 (`gridengine-master gridengine-exec
gridengine-client`) runs here without its init scripts and without touching
the system's cell (/var/lib/gridengine/default): every file lives in one
private state directory, the daemons listen on free ports, and nothing is
left running after `stop` -- nor after the watched process dies. Standard
library only (run it with any python3; tests/harness/gridengine.sh is the
shell entry point).

    gridengine_cluster.py start --state-dir DIR [--watch-pid PID] [--slots N]
    gridengine_cluster.py stop  --state-dir DIR
    gridengine_cluster.py env   --state-dir DIR   # export SGE_ROOT=... SGE_CELL=... ports

`start` writes a private SGE_ROOT, DIR/root (links to Debian's bin, lib,
utilbin and util, and the cell `taskfarm`: bootstrap with classic spooling
into DIR/spool, act_qmaster, host_aliases, settings.sh, and the global
configuration spooled by Debian's spoolinit and spooldefaults as the
package's init_cluster does), then starts a supervisor (this script's
`_supervise` mode, detached in a session of its own, its output in
DIR/harness.log) that runs, in the foreground (SGE_ND=1) and as its own
children:

    sge_qmaster    (spool DIR/spool/qmaster, log DIR/spool/qmaster/messages)
    sge_execd      (spool DIR/spool/execd/HOST, log .../messages)

In between, through the qmaster: the node a submit host, the scheduler run
every second and at each submission and end (schedule_interval 0:0:1,
flush_submit_sec and flush_finish_sec 1: a job starts within a second), one
queue `test.q` on the node with `--slots` slots (default 4), pe_list NONE,
load_thresholds NONE, no run-time limit of its own. Grid Engine's clients
(qsub, qstat, qdel, qmod, qconf) need only SGE_ROOT, SGE_CELL,
SGE_QMASTER_PORT and SGE_EXECD_PORT (`env`, or DIR/root/taskfarm/common/
settings.sh). `start` waits -- by polling `qstat -f`, with a deadline --
until the queue instance has no state flag (the execd has reported), then
writes DIR/cluster.json and prints the same JSON on one line:

    {"pid": SUPERVISOR_PID, "node": "vm", "queue": "test.q", "slots": 4,
     "ports": {"qmaster": P, "execd": Q}, "env": {"SGE_ROOT": ..., ...}, ...}

Host names: Grid Engine compares the name a client gives with the name its
address resolves to; where the host name resolves to 127.0.0.1 (which
resolves back to localhost) they differ, and host_aliases names them one
host. Users: the daemons run as the user who starts the cell (bootstrap
`admin_user none`), root in the tests. Debian's default configuration has
min_uid and min_gid 1000, and qsub as root is refused then ("job
rejected: your user id 0 is lower than minimum user id 1000 of cluster
configuration"): the cell has 0, so root's jobs run (as root, like the
Slurm tests' jobs).

Stopping (`stop`, SIGTERM or SIGINT to the supervisor, or the watched
process gone): `qconf -kej NODE` (the execd kills its jobs and exits), then
`qconf -km` (the qmaster exits), each waited for and then SIGTERM and
SIGKILL by PID, and finally any process left that belongs to this cell --
marked by TASKFARM_GRIDENGINE_HARNESS=DIR in its environment (the daemons
and their shepherds) or by SGE_ROOT=DIR/root with a JOB_ID (job processes)
-- is killed by PID. `stop` waits for all of that and fails when anything
is still alive. The supervisor also gives each daemon PR_SET_PDEATHSIG=
SIGTERM, so a SIGKILLed supervisor does not leave daemons behind either.

The work is done by the gridengine_* modules of tests/harness/
taskfarm_harness/ (the cell's files, its processes and teardown, the
supervisor); this file is their command line.
"""

import argparse
import json
import os
import shlex
import sys

from taskfarm_harness.errors import HarnessError
from taskfarm_harness.gridengine_config import read_info
from taskfarm_harness.gridengine_supervisor import start_cluster, stop_cluster, supervise
from taskfarm_harness.process_groups import process_alive


def cmd_start(args):
    info = start_cluster(args.state_dir, args.slots, args.watch_pid)
    print(json.dumps(info), flush=True)


def cmd_stop(args):
    note = stop_cluster(args.state_dir)
    if note:
        print(f"gridengine_cluster.py: {note}", file=sys.stderr)


def cmd_env(args):
    info = read_info(args.state_dir)
    if info is None or not process_alive(info.get("pid")):
        raise HarnessError(f"no running cell in {os.path.abspath(args.state_dir)}: "
                           "start one first")
    print("export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(info["env"].items())))


def cmd_supervise(args):
    return supervise(args.state_dir, args.watch_pid)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Start and stop a private single-node Grid Engine cell.")
    sub = parser.add_subparsers(dest="command", required=True)

    def state(p):
        p.add_argument("--state-dir", required=True,
                       help="directory of every file of the cell")

    p = sub.add_parser("start", help="start the cell, wait until its queue is ready")
    state(p)
    p.add_argument("--watch-pid", type=int,
                   help="stop the cell when this process is gone")
    p.add_argument("--slots", type=int, default=4, help="slots of the queue (default 4)")
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("stop", help="stop the daemons and every job")
    state(p)
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("env", help="print the export line for Grid Engine's clients")
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
        print(f"gridengine_cluster.py {args.command}: error: {e}", file=sys.stderr,
              flush=True)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
