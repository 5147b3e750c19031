#!/usr/bin/env bash
# tests/harness/slurm.sh: a private single-node Slurm cluster (Debian's Slurm
# 22.05 and munge), for the tests and to try the examples by hand. A thin
# wrapper around tests/harness/slurm_cluster.py (read it for the details).
#
#   slurm.sh start DIR [--cpus N] [--watch-pid PID]
#       starts munged, slurmctld and slurmd with every file in DIR (config,
#       munge key and socket, state, spool, logs) on free ports, waits until
#       the node is idle, and prints DIR/cluster.json on one line:
#       {"slurm_conf": "DIR/slurm.conf", "pid": ..., "node": ..., "partition": "debug", ...}
#   slurm.sh stop DIR     cancels every job, stops the daemons (exit 0 when all is gone)
#   slurm.sh env DIR      the export line for eval: SLURM_CONF=DIR/slurm.conf
#
# Example (as root; Slurm's clients find the cluster through SLURM_CONF):
#   tests/harness/slurm.sh start build/slurm >/dev/null
#   eval "$(tests/harness/slurm.sh env build/slurm)"
#   sinfo; sbatch --wrap 'hostname'; squeue
#   tests/harness/slurm.sh stop build/slurm
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    sed -n '6,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2
case "$cmd" in
start | stop | env) exec python3 "$here/slurm_cluster.py" "$cmd" --state-dir "$dir" "$@" ;;
*) usage ;;
esac
