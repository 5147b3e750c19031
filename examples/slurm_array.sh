#!/bin/bash
# examples/slurm_array.sh: 16 workers on one taskfarm run, as a Slurm array job.
#
# Each element of the array (one per index 1-16) starts one worker process
# on the run; the server hands every task to exactly one of them, so any
# number of elements may run at once, start late, or be resubmitted.
#
# 0. Once: put the worker program where every node finds it. This script
#    runs $HOME/bin/taskfarm-worker (WORKER=/path/to/program overrides it);
#    $HOME is on a file system the compute nodes share on most clusters.
#    Build examples/worker.c (or your own worker) against an install of the
#    library on a login node and copy it there:
#
#        make install PREFIX=$HOME/opt/taskfarm_worker     # in this repository
#        export PKG_CONFIG_PATH=$HOME/opt/taskfarm_worker/lib/pkgconfig
#        mkdir -p ~/bin
#        cc -O2 examples/worker.c $(pkg-config --cflags --libs taskfarm_worker) \
#            -Wl,-rpath,$HOME/opt/taskfarm_worker/lib -o ~/bin/taskfarm-worker
#
#    (the rpath lets the nodes find libtaskfarm_worker.so.0 without
#    LD_LIBRARY_PATH; the install also puts the `taskfarm` tool in
#    $HOME/opt/taskfarm_worker/bin).
#
# 1. Once, before submitting: create the run (any machine that reaches the
#    server) and keep its UUID:
#
#        export TASKFARM_URL=https://taskfarm.example.org/api/
#        export TASKFARM_USER=alice TASKFARM_PASSWORD=...   # or the file below
#        uuid=$(./worker -n 1000)          # examples/worker.c, or watch_run -n 1000
#
# 2. Submit, passing the run's UUID as the argument. Options on sbatch's
#    command line override the #SBATCH lines below (e.g. --array=1-100):
#
#        export TASKFARM_TOKEN=$(taskfarm token)   # optional: one password check
#        sbatch examples/slurm_array.sh "$uuid"    # for all elements, see below
#
#    sbatch hands its environment (TASKFARM_URL, TASKFARM_TOKEN, WORKER, ...)
#    to every element (its default --export=ALL). With TASKFARM_TOKEN the
#    elements send no password: each password check costs the server about a
#    quarter of a second of CPU, so a thousand elements starting together
#    would keep it busy for minutes. The token does not expire; it stops
#    working only when the server's secret key changes.
#
# 3. Watch it: ./watch_run "$uuid" (examples/watch_run.c) or `taskfarm watch "$uuid"`.
#
# Credentials: rather than exporting the password into the job's
# environment, keep them in a file only you can read; it is read here:
#
#        cat > ~/.config/taskfarm/env <<EOF     # then: chmod 600 ~/.config/taskfarm/env
#        TASKFARM_URL=https://taskfarm.example.org/api/
#        TASKFARM_USER=alice
#        TASKFARM_PASSWORD=...
#        EOF
#
# The file only helps when the password is NOT exported in the shell that
# runs sbatch: sbatch's default --export=ALL copies that shell's whole
# environment into the job, an exported TASKFARM_PASSWORD included (it then
# shows in the job's /proc/PID/environ, and this script uses it and skips the
# file). So after step 1, submit without it:
#
#        env -u TASKFARM_PASSWORD sbatch examples/slurm_array.sh "$uuid"
#
# (or `unset TASKFARM_PASSWORD` first; never put it in #SBATCH --export=...).
#
# At the time limit (or on scancel) Slurm sends SIGTERM: with
# TASKFARM_STOP_SIGNALS=TERM (set below) the worker hands its task back
# (waiting, percentage kept) and ends, and under Slurm it takes no task that
# the time left cannot fit (TASKFARM_TASK_SECONDS: the estimate before its
# first task is done). A worker killed outright (SIGKILL, node failure) leaves
# its task "computing": `taskfarm reset UUID` (the command-line tool built
# with this library) or tf_taskfarm_restart(tf, false) hands such tasks out
# again once no worker runs. A resubmission of this script finishes the run.
#
# Outside Slurm, `bash examples/slurm_array.sh UUID` runs one worker here.

#SBATCH --job-name=taskfarm
#SBATCH --array=1-16
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem-per-cpu=2G
#SBATCH --time=04:00:00
#SBATCH --output=taskfarm-%A_%a.out
#   (%A: the array job's id, %a: the element's index)

set -euo pipefail

uuid=${1:?usage: sbatch slurm_array.sh RUN_UUID}

# The worker program: a build of examples/worker.c (or your own code) on a
# shared file system. WORKER=/path/to/program overrides it.
worker=${WORKER:-$HOME/bin/taskfarm-worker}

# Credentials and server, unless already in the environment: a token
# (TASKFARM_TOKEN, see above) or user and password.
env_file=${TASKFARM_ENV_FILE:-$HOME/.config/taskfarm/env}
if [ -z "${TASKFARM_PASSWORD:-}${TASKFARM_TOKEN:-}" ] && [ -r "$env_file" ]; then
    set -a # export what the file sets
    # shellcheck source=/dev/null
    . "$env_file"
    set +a
fi
: "${TASKFARM_URL:?set TASKFARM_URL (and TASKFARM_TOKEN or TASKFARM_USER and TASKFARM_PASSWORD), or write $env_file}"
if [ -z "${TASKFARM_TOKEN:-}" ]; then
    : "${TASKFARM_USER:?set TASKFARM_USER (or TASKFARM_TOKEN)}"
    : "${TASKFARM_PASSWORD:?set TASKFARM_PASSWORD (or TASKFARM_TOKEN)}"
fi

# The library's network settings: 60 s per attempt, retries with backoff.
# A cluster's HTTP proxy applies to the server too: exempt it if it is local.
export TASKFARM_TIMEOUT=${TASKFARM_TIMEOUT:-60}
export TASKFARM_RETRIES=${TASKFARM_RETRIES:-10}
# SIGTERM (time limit, scancel, preemption): hand the held task back, then end.
export TASKFARM_STOP_SIGNALS=${TASKFARM_STOP_SIGNALS:-TERM}
# export NO_PROXY=taskfarm.example.org

# If the program was linked against an install outside the loader's path
# (make install PREFIX=$HOME/opt/taskfarm_worker) without an rpath:
# export LD_LIBRARY_PATH=$HOME/opt/taskfarm_worker/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# Without a shared token every element checks the password once (about a
# quarter of a second of the server's CPU each): spread their starts.
index=${SLURM_ARRAY_TASK_ID:-1}
[ -n "${TASKFARM_TOKEN:-}" ] || sleep $((index % 8))

echo "array element $index of job ${SLURM_ARRAY_JOB_ID:-(none)} on $(hostname): run $uuid"
# srun places the step on the allocated CPU and forwards signals; outside
# Slurm the worker runs directly. The worker takes tasks until none is left.
if [ -n "${SLURM_JOB_ID:-}" ]; then
    srun --ntasks=1 "$worker" "$uuid"
else
    "$worker" "$uuid"
fi
echo "array element $index: no task left"
