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

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
CC=${CC:-cc}
lib_dir=$root/target/release
header=include/taskfarm_worker.h
programs=(worker_run bad_arguments)
start=$(date +%s)

die() { echo "tests/c/run.sh: $*" >&2; exit 1; }

command -v "$CC" >/dev/null 2>&1 || die "the C compiler '$CC' is missing: apt-get install -y gcc"
command -v valgrind >/dev/null 2>&1 || die "valgrind is missing: apt-get install -y valgrind"
[ -e "$lib_dir/libtaskfarm_worker.so.0" ] || die "$lib_dir/libtaskfarm_worker.so.0 is missing: run make build"

passed=0
failed=0
pass() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tf-c.XXXXXX")
server_dir=$tmp/server
cleanup() {
    status=$?
    if [ -f "$server_dir/server.json" ]; then
        tests/harness/server.sh stop "$server_dir" >/dev/null 2>&1 ||
            echo "tests/c/run.sh: could not stop the server of $server_dir" >&2
    fi
    rm -rf "$tmp"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Every declared function (at column 0 in the header) is exercised with bad arguments.
declared=$(grep -E '^[a-z].*\btf_[a-z_]+\(' "$header" | grep -oE '\btf_[a-z_]+\(' | tr -d '(' | sort -u)
missing=$(for f in $declared; do grep -qE "\\b$f\\(" tests/c/bad_arguments.c || echo "$f"; done)
if [ -z "$missing" ]; then
    pass "all $(echo "$declared" | wc -w) functions of $header are called by tests/c/bad_arguments.c"
else
    fail "functions of $header never called by tests/c/bad_arguments.c:" $missing
fi

# 2. Build.
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -g -O1)
link=(-L"$lib_dir" -Wl,-rpath,"$lib_dir" -ltaskfarm_worker -lm)
for p in "${programs[@]}"; do
    if "$CC" "${cflags[@]}" -Iinclude "tests/c/$p.c" "${link[@]}" -o "$tmp/$p"; then
        resolved=$(ldd "$tmp/$p" | awk '$1 == "libtaskfarm_worker.so.0" {print $3}')
        if [ "$(readlink -f "$resolved")" = "$(readlink -f "$lib_dir/libtaskfarm_worker.so")" ]; then
            pass "built $p with $CC ${cflags[*]}, loading $lib_dir/libtaskfarm_worker.so.0"
        else
            fail "$p loads '$resolved', not $lib_dir/libtaskfarm_worker.so.0"
        fi
    else
        fail "$p does not build"
    fi
done
if [ $failed -ne 0 ]; then
    echo "$passed passed, $failed failed"
    exit 1
fi

# 3. A real server, stopped by PID on exit (and by its watchdog if this script dies).
tests/harness/server.sh start "$server_dir" --watch-pid $$ >/dev/null ||
    die "could not start the taskfarm server (see $server_dir/server.log)"
eval "$(tests/harness/server.sh env "$server_dir")"

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
    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --track-origins=yes --log-file="$log" "$tmp/$p" >"$tmp/$p.vg.out" 2>&1 || status=$?
    count "$tmp/$p.vg.out" "$p (valgrind)" $status
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
    lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 bytes in \2 blocks/p' "$log" | tail -n 1)
    [ -n "$lost" ] || lost="0 bytes in 0 blocks"
    verdict="valgrind $p: ${errors:-?} errors, definitely lost: $lost (exit $status)"
    if [ "$status" -ne 99 ] && [ "${errors:-x}" = 0 ] && [[ $lost == "0 bytes in 0 blocks" ]]; then
        pass "$verdict"
    else
        fail "$verdict"
        cat "$log"
    fi
    grep -E 'in use at exit|definitely lost|indirectly lost|possibly lost|still reachable' "$log" |
        sed 's/^==[0-9]*== */     /'
done

echo "c tests: $(($(date +%s) - start)) s"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
