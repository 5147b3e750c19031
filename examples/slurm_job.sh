#!/bin/bash
# examples/slurm_job.sh: one Slurm job of many workers (srun), one password
# check for all of them.
#
#   sbatch -n 16 examples/slurm_job.sh "$uuid"          # 16 worker processes
#   sbatch -n 64 --export=ALL,WORKER=$HOME/bin/mpi_worker,SLURM_MPI_TYPE=pmix \
#       examples/slurm_job.sh "$uuid"                   # 64 MPI ranks (mpi_worker.c)
#
# The job fetches the token once (`taskfarm token`: the one password check)
# and exports it as TASKFARM_TOKEN; srun starts the job's tasks with that
# environment, and each worker starts with the token instead of checking the
# password again. SLURM_MPI_TYPE is srun's --mpi (pmix for Open MPI, pmi2 for
# MPICH); for an MPI program, `srun --mpi=list` says what the cluster has.
#
# Server and credentials as in examples/slurm_array.sh: TASKFARM_URL,
# TASKFARM_USER and TASKFARM_PASSWORD in the environment of sbatch or in
# ~/.config/taskfarm/env. WORKER: the worker program (default
# ~/bin/taskfarm-worker, a build of examples/worker.c); the `taskfarm` tool
# must be on the PATH (or TASKFARM_CLI=/path/to/taskfarm).

#SBATCH --job-name=taskfarm
#SBATCH --ntasks=16
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --output=taskfarm-%j.out

set -euo pipefail

uuid=${1:?usage: sbatch slurm_job.sh RUN_UUID}
worker=${WORKER:-$HOME/bin/taskfarm-worker}
taskfarm=${TASKFARM_CLI:-taskfarm}

env_file=${TASKFARM_ENV_FILE:-$HOME/.config/taskfarm/env}
if [ -z "${TASKFARM_PASSWORD:-}${TASKFARM_TOKEN:-}" ] && [ -r "$env_file" ]; then
    set -a
    # shellcheck source=/dev/null
    . "$env_file"
    set +a
fi
: "${TASKFARM_URL:?set TASKFARM_URL (and TASKFARM_USER, TASKFARM_PASSWORD), or write $env_file}"

# The one password check of the job (skipped when sbatch's environment
# already had a token). The token is a secret: never echo it.
if [ -z "${TASKFARM_TOKEN:-}" ]; then
    TASKFARM_TOKEN=$("$taskfarm" token)
    export TASKFARM_TOKEN
fi
# A password left in the environment is sent only if the server refuses the
# token (its secret key changed).

echo "job ${SLURM_JOB_ID:-(none)}: ${SLURM_NTASKS:-1} workers on run $uuid"
srun "$worker" "$uuid"
echo "job ${SLURM_JOB_ID:-(none)}: no task left"
