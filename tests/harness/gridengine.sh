#!/usr/bin/env bash
# tests/harness/gridengine.sh: a private single-node Grid Engine cell
# (Debian's Son of Grid Engine 8.1.9), for the tests and to try the job
# scripts by hand. A thin wrapper around tests/harness/gridengine_cluster.py
# (read it for the details).
#
#   gridengine.sh start DIR [--slots N] [--watch-pid PID]
#       writes a private SGE_ROOT and cell in DIR, starts sge_qmaster and
#       sge_execd on free ports, one queue test.q of N slots (default 4),
#       waits until it is ready, and prints DIR/cluster.json on one line:
#       {"pid": ..., "node": ..., "queue": "test.q", "ports": ..., "env": ...}
#   gridengine.sh stop DIR   stops the execd with its jobs and the qmaster (exit 0 when all is gone)
#   gridengine.sh env DIR    the export line for eval: SGE_ROOT, SGE_CELL and the ports
#
# Example (as root; Grid Engine's clients find the cell through the environment):
#   tests/harness/gridengine.sh start build/ge >/dev/null
#   eval "$(tests/harness/gridengine.sh env build/ge)"
#   qhost; qsub -b y -cwd -l h_rt=60 hostname; qstat
#   tests/harness/gridengine.sh stop build/ge
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    sed -n '7,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2
case "$cmd" in
start | stop | env) exec python3 "$here/gridengine_cluster.py" "$cmd" --state-dir "$dir" "$@" ;;
*) usage ;;
esac
