#!/usr/bin/env bash
# examples/demo.sh (`make demo`): a C, a C++ and a Fortran worker working
# through one run at the same time on a local REAL taskfarm server.
#
#  1. builds examples/worker.c, worker.cpp and worker.f90 (with the Fortran
#     module) against target/release (`make build` first);
#  2. starts a local taskfarm 0.4.0 server on SQLite (tests/harness/server.sh,
#     in a temporary directory, stopped by PID on exit);
#  3. creates a run of DEMO_TASKS tasks (default 20) with `worker -n`;
#  4. runs the three workers at the same time, their lines labelled with their
#     language and interleaved, and prints the run's progress every second;
#  5. checks that every task was done exactly once: the tasks the workers say
#     they did add up to the run, no task was done by two workers, and the
#     server says numDone = N and percentDone = 100. Exits non-zero if not.
#
# SQLite has no row locks: the test server therefore serves one request at a
# time (the harness runs it with --without-threads), which keeps concurrent
# workers safe. PostgreSQL with gunicorn (production) has row locks.
#
# Environment: DEMO_TASKS, WORKER_STEP_MS (the C worker's step, default 100
# ms, 4 steps per task), CC, CXX, FC.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
CC=${CC:-cc}
CXX=${CXX:-g++}
FC=${FC:-gfortran}
lib_dir=$root/target/release
tasks=${DEMO_TASKS:-20}
export WORKER_STEP_MS=${WORKER_STEP_MS:-100}
languages=(C C++ Fortran)
start=$(date +%s)

die() { echo "demo: $*" >&2; exit 1; }

command -v "$CC" >/dev/null 2>&1 || die "the C compiler '$CC' is missing: apt-get install -y gcc"
command -v "$CXX" >/dev/null 2>&1 || die "the C++ compiler '$CXX' is missing: apt-get install -y g++"
command -v "$FC" >/dev/null 2>&1 || die "the Fortran compiler '$FC' is missing: apt-get install -y gfortran"
[ -e "$lib_dir/libtaskfarm_worker.so.0" ] || die "$lib_dir/libtaskfarm_worker.so.0 is missing: run make build"
[[ $tasks =~ ^[1-9][0-9]*$ ]] || die "DEMO_TASKS=$tasks is not a number of tasks"

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

echo "== building examples/worker.c, worker.cpp and worker.f90"
link=(-L"$lib_dir" "-Wl,-rpath,$lib_dir" -ltaskfarm_worker)
"$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -Iinclude examples/worker.c "${link[@]}" \
    -o "$tmp/worker-C" || die "examples/worker.c does not build"
"$CXX" -std=c++17 -Wall -Wextra -Wpedantic -Werror -O2 -Iinclude examples/worker.cpp "${link[@]}" \
    -o "$tmp/worker-C++" || die "examples/worker.cpp does not build"
if ! { "$FC" -std=f2008 -O2 -J "$tmp" -c fortran/taskfarm_worker.f90 -o "$tmp/taskfarm_worker.o" &&
    "$FC" -std=f2008 -O2 -I "$tmp" examples/worker.f90 "$tmp/taskfarm_worker.o" "${link[@]}" \
        -o "$tmp/worker-Fortran"; }; then
    die "examples/worker.f90 does not build"
fi
worker=$tmp/worker-C

echo "== starting a local taskfarm server (SQLite)"
tests/harness/server.sh start "$server_dir" --watch-pid $$ >/dev/null ||
    die "could not start the taskfarm server"
eval "$(tests/harness/server.sh env "$server_dir")"
echo "   $TASKFARM_URL (user $TASKFARM_USER)"

uuid=$("$worker" -n "$tasks") || die "could not create a run"
echo "== run $uuid: $tasks tasks; a C, a C++ and a Fortran worker at the same time"

# The workers, in the background; their lines are shown as they come, each
# labelled with its language.
for lang in "${languages[@]}"; do
    : >"$tmp/worker-$lang.out"
done
tail -q -n +1 -F "$tmp"/worker-*.out 2>/dev/null &
tail_pid=$!
for lang in "${languages[@]}"; do
    # Line-buffered output, so that the lines come as the work goes.
    GFORTRAN_UNBUFFERED_PRECONNECTED=y stdbuf -oL -eL "$tmp/worker-$lang" "$uuid" \
        > >(sed -u "s/^/[$lang] /" >"$tmp/worker-$lang.out") 2>&1 &
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

# What the workers say they did: every worker prints "task N done" per task.
done_lines=""
counts=""
for lang in "${languages[@]}"; do
    mine=$(grep -oE 'task [0-9]+ done' "$tmp/worker-$lang.out" | awk '{print $2}' | sort -n)
    n=$(echo "$mine" | sed '/^$/d' | wc -l)
    counts+="$lang:$n "
    echo "   $lang did: $(echo "$mine" | xargs)"
    done_lines+="$mine"$'\n'
done
done_lines=$(echo "$done_lines" | sed '/^$/d' | sort -n)
sum=$(echo "$done_lines" | sed '/^$/d' | wc -l)
distinct=$(echo "$done_lines" | uniq | wc -l)
duplicates=$(echo "$done_lines" | uniq -d | tr '\n' ' ')
echo "   tasks done per language: $counts(sum $sum)"

if [ -n "$duplicates" ]; then
    echo "demo: task(s) ${duplicates}were done by more than one worker" >&2
    failed=1
fi
if grep -q 'HTTP 500' "$tmp"/worker-*.out; then
    echo "demo: the server answered HTTP 500 (see the lines above)" >&2
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
echo "demo: all $tasks tasks done exactly once by C, C++ and Fortran workers at the same time" \
    "($(($(date +%s) - start)) s)"
