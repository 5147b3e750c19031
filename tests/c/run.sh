#!/usr/bin/env bash
# tests/c/run.sh: the C test programs against a REAL taskfarm server.
#
#  1. every function of include/taskfarm_worker.h is called by
#     tests/c/bad_arguments.c;
#  2. builds tests/c/worker_run.c and tests/c/bad_arguments.c with the system
#     `cc` (-std=c11 -Wall -Wextra -Wpedantic -Werror) against include/ and
#     target/release (rpath), and checks they load that library;
#  3. starts a real server (tests/harness/server.sh, SQLite, in a temporary
#     directory, stopped by PID on exit, and by its watchdog if this script
#     dies), runs each program once plainly and once under valgrind
#     (memcheck: any error or definitely lost block fails).
#
# Ends with "N passed, M failed": the checks of every run of the programs,
# plus one per build, per valgrind verdict and the header coverage check.
# Needs `make build` first (`make c-tests` does it). A missing cc or valgrind
# fails the run: it never skips.
set -uo pipefail

# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CC=${CC:-cc}
lib_dir=$root/target/release
header=include/taskfarm_worker.h
programs=(worker_run bad_arguments)
start=$(date +%s)

need "$CC" "apt-get install -y gcc (or CC=...)"
need valgrind "apt-get install -y valgrind"
need_release_library

scratch_dir tf-c
server_dir=$tmp/server

# 1. Every declared function (at column 0 in the header) is exercised with bad arguments.
declared=$(header_functions)
missing=$(for f in $declared; do grep -qE "\\b$f\\(" tests/c/bad_arguments.c || echo "$f"; done)
if [ -z "$missing" ]; then
    pass "all $(echo "$declared" | wc -w) functions of $header are called by tests/c/bad_arguments.c"
else
    fail "functions of $header never called by tests/c/bad_arguments.c:" "${missing//$'\n'/ }"
fi

# 2. Build.
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -g -O1)
link=(-L"$lib_dir" "-Wl,-rpath,$lib_dir" -ltaskfarm_worker -lm)
for p in "${programs[@]}"; do
    if "$CC" "${cflags[@]}" -Iinclude "tests/c/$p.c" "${link[@]}" -o "$tmp/$p"; then
        if loaded=$(loads_library "$tmp/$p" "$lib_dir/libtaskfarm_worker.so"); then
            pass "built $p with $CC ${cflags[*]}, loading $lib_dir/libtaskfarm_worker.so.0"
        else
            fail "$(head -n 1 <<<"$loaded")"
        fi
    else
        fail "$p does not build"
    fi
done
[ "$failed" -eq 0 ] || { summary; exit 1; }

# 3. A real server, stopped by PID on exit (and by its watchdog if this script dies).
start_server "$server_dir"

# Adds the "N passed, M failed" of a program's output to the totals; a run
# without that line (a crash) counts as one failure.
count() {
    local out=$1 what=$2 status=$3 line n m
    line=$(tail -n 1 "$out")
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        n=${BASH_REMATCH[1]} m=${BASH_REMATCH[2]}
        passed=$((passed + n))
        failed=$((failed + m))
        if [ "$m" -ne 0 ] || [ "$status" -ne 0 ]; then
            grep -E '^FAIL' "$out" | head -n 40
            [ "$m" -ne 0 ] || fail "$what exited with $status"
        fi
        echo "     $what: $line (exit $status)"
    else
        tail -n 20 "$out"
        fail "$what ended without its summary line (exit $status)"
    fi
}

for p in "${programs[@]}"; do
    echo "== $p"
    status=0
    "$tmp/$p" >"$tmp/$p.out" 2>&1 || status=$?
    count "$tmp/$p.out" "$p" $status

    echo "== $p under valgrind"
    log=$tmp/$p.valgrind.log
    status=0
    valgrind_run "$log" "$tmp/$p" >"$tmp/$p.vg.out" 2>&1 || status=$?
    count "$tmp/$p.vg.out" "$p (valgrind)" $status
    if valgrind_verdict "$log" $status; then
        pass "valgrind $p: $verdict"
    else
        fail "valgrind $p: $verdict"
        cat "$log"
    fi
    grep -E 'in use at exit|definitely lost|indirectly lost|possibly lost|still reachable' "$log" |
        sed 's/^==[0-9]*== */     /'
done

echo "c tests: $(($(date +%s) - start)) s"
summary
