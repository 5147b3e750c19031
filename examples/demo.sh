#!/usr/bin/env bash
# examples/demo.sh (`make demo`): workers working through a run on a local
# REAL taskfarm server.
#
#  1. builds examples/worker.c against target/release (`make build` first);
#  2. starts a local taskfarm 0.4.0 server on SQLite (tests/harness/server.sh,
#     in a temporary directory, stopped by PID on exit);
#  3. creates a run of DEMO_TASKS tasks (default 20) with `worker -n`;
#  4. runs DEMO_WORKERS workers (default 3) at the same time, their lines
#     interleaved, and prints the run's progress every second;
#  5. checks that every task was done exactly once: the workers' done counts
#     add up to the number of tasks, no task was done by two workers, and the
#     server says numDone = N and percentDone = 100. Exits non-zero if not.
#
# SQLite: the test server has no row locks, so two workers asking for a task
# at the same moment can be handed the same one; the server then also answers
# HTTP 500 to every later request for a task of that run (PROTOCOL.md). So by
# default the workers take turns asking for a task (WORKER_LOCK_FILE, see
# examples/worker.c) while they compute and report at the same time.
# DEMO_NO_LOCK=1 shows what happens without that; PostgreSQL (production)
# needs no lock.
#
# Environment: DEMO_TASKS, DEMO_WORKERS, WORKER_STEP_MS (default 100 ms per
# step, 4 steps per task), DEMO_NO_LOCK=1, CC (default cc).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
CC=${CC:-cc}
lib_dir=$root/target/release
tasks=${DEMO_TASKS:-20}
num_workers=${DEMO_WORKERS:-3}
export WORKER_STEP_MS=${WORKER_STEP_MS:-100}
no_lock=${DEMO_NO_LOCK:-0}
start=$(date +%s)

die() { echo "demo: $*" >&2; exit 1; }

command -v "$CC" >/dev/null 2>&1 || die "the C compiler '$CC' is missing: apt-get install -y gcc"
[ -e "$lib_dir/libtaskfarm_worker.so.0" ] || die "$lib_dir/libtaskfarm_worker.so.0 is missing: run make build"
[[ $tasks =~ ^[1-9][0-9]*$ ]] || die "DEMO_TASKS=$tasks is not a number of tasks"
[[ $num_workers =~ ^[1-9][0-9]*$ ]] || die "DEMO_WORKERS=$num_workers is not a number of workers"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tf-demo.XXXXXX")
server_dir=$tmp/server
pids=()
tail_pid=
cleanup() {
    status=$?
    # Only the processes this script started, by their PID.
    for pid in "${pids[@]}" $tail_pid; do
        kill "$pid" 2>/dev/null
    done
    if [ -f "$server_dir/server.json" ]; then
        tests/harness/server.sh stop "$server_dir" >/dev/null 2>&1 ||
            echo "demo: could not stop the server of $server_dir" >&2
    fi
    rm -rf "$tmp"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building examples/worker.c"
"$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -Iinclude examples/worker.c \
    -L"$lib_dir" -Wl,-rpath,"$lib_dir" -ltaskfarm_worker -o "$tmp/worker" ||
    die "examples/worker.c does not build"
worker=$tmp/worker

echo "== starting a local taskfarm server (SQLite)"
tests/harness/server.sh start "$server_dir" --watch-pid $$ >/dev/null ||
    die "could not start the taskfarm server"
eval "$(tests/harness/server.sh env "$server_dir")"
echo "   $TASKFARM_URL (user $TASKFARM_USER)"

uuid=$("$worker" -n "$tasks") || die "could not create a run"
echo "== run $uuid: $tasks tasks, $num_workers workers, 4 steps of $WORKER_STEP_MS ms per task"
if [ "$no_lock" = 1 ]; then
    unset WORKER_LOCK_FILE
    echo "   DEMO_NO_LOCK=1: the workers ask for tasks without taking turns. On SQLite the"
    echo "   server can hand the same task to two workers and then break the run (HTTP 500)."
else
    export WORKER_LOCK_FILE=$tmp/task.lock
    echo "   note: the test server runs on SQLite, which has no row locks: the workers take"
    echo "   turns asking for a task (WORKER_LOCK_FILE), and compute and report at the same"
    echo "   time. A PostgreSQL server (production) needs no such lock."
fi

# The workers, in the background; their lines are shown as they come.
for i in $(seq 1 "$num_workers"); do
    : >"$tmp/worker$i.out"
done
tail -q -n +1 -F "$tmp"/worker*.out 2>/dev/null &
tail_pid=$!
for i in $(seq 1 "$num_workers"); do
    "$worker" "$uuid" >"$tmp/worker$i.out" 2>&1 &
    pids+=($!)
done

# The run's progress every second until it is done or no worker is left.
alive() {
    local pid
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}
is_100() { awk -v p="$1" 'BEGIN { exit !(p == 100) }'; }
deadline=$(($(date +%s) + 600))
while alive; do
    sleep 1
    if status=$("$worker" --status "$uuid"); then
        read -r pct waiting computing done_count <<<"$status"
        echo "-- progress: $pct % (waiting $waiting, computing $computing, done $done_count of $tasks)"
        is_100 "$pct" && break
    fi
    if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "demo: the workers did not finish within 600 s" >&2
        break
    fi
done

failed=0
for i in "${!pids[@]}"; do
    code=0
    wait "${pids[$i]}" || code=$?
    if [ $code -ne 0 ]; then
        echo "demo: worker $((i + 1)) exited with status $code" >&2
        failed=1
    fi
done
pids=()
sleep 0.3 # let tail show the last lines
kill "$tail_pid" 2>/dev/null
wait "$tail_pid" 2>/dev/null
tail_pid=

echo "== final status of run $uuid"
read -r pct waiting computing done_count <<<"$("$worker" --status "$uuid")" ||
    die "could not read the run's status"
echo "   percentDone $pct, waiting $waiting, computing $computing, done $done_count of $tasks"

# What the workers say they did.
counts=$(sed -n 's/^worker \([0-9a-f]*\): \([0-9]*\) tasks done$/\1:\2/p' "$tmp"/worker*.out | tr '\n' ' ')
sum=$(sed -n 's/^worker [0-9a-f]*: \([0-9]*\) tasks done$/\1/p' "$tmp"/worker*.out |
    awk '{s += $1} END {print s + 0}')
done_lines=$(sed -n 's/^worker [0-9a-f]*: task \([0-9]*\) done$/\1/p' "$tmp"/worker*.out | sort -n)
distinct=$(echo "$done_lines" | sed '/^$/d' | uniq | wc -l)
duplicates=$(echo "$done_lines" | sed '/^$/d' | uniq -d | tr '\n' ' ')
echo "   tasks done per worker: $counts(sum $sum)"

if [ -n "$duplicates" ]; then
    echo "WARNING: task(s) ${duplicates}were handed to more than one worker and done twice." >&2
    echo "WARNING: the test server runs on SQLite, which has no row locks: concurrent requests" >&2
    echo "WARNING: for a task can get the same one (PROTOCOL.md). PostgreSQL fixes that." >&2
    failed=1
fi
if grep -q 'HTTP 500' "$tmp"/worker*.out; then
    echo "WARNING: the server answered HTTP 500 to a request for a task: on SQLite, a task handed" >&2
    echo "WARNING: to two workers at once leaves the run's tasks in a state the server cannot" >&2
    echo "WARNING: handle (PROTOCOL.md, the null + 1 bug). Run without DEMO_NO_LOCK=1, or use PostgreSQL." >&2
    failed=1
fi
[ "$sum" -eq "$tasks" ] || { echo "demo: the workers did $sum tasks, not $tasks" >&2; failed=1; }
[ "$distinct" -eq "$tasks" ] || { echo "demo: $distinct different tasks were done, not $tasks" >&2; failed=1; }
[ "$done_count" = "$tasks" ] || { echo "demo: the server counts $done_count tasks done, not $tasks" >&2; failed=1; }
is_100 "$pct" || { echo "demo: the run is $pct % done, not 100 %" >&2; failed=1; }

if [ $failed -ne 0 ]; then
    echo "demo: FAILED after $(($(date +%s) - start)) s" >&2
    exit 1
fi
echo "demo: all $tasks tasks done exactly once by $num_workers workers at the same time" \
    "($(($(date +%s) - start)) s)"
