#!/usr/bin/env bash
# tests/cpp/run.sh: the C++ wrapper (include/taskfarm_worker.hpp) against a
# real taskfarm server.
#
#  1. every function of include/taskfarm_worker.h has a counterpart in the
#     .hpp and a line in the test's list of C functions;
#  2. builds tests/cpp/wrapper_test.cpp and examples/worker.cpp with
#     -std=c++17 -Wall -Wextra -Wpedantic -Werror against include/ and
#     target/release (rpath), and the header alone with stricter warnings;
#  3. starts a real server (tests/harness/server.sh, in a temporary directory,
#     stopped by PID on exit), runs the test once plainly and once under
#     valgrind (any error or definitely lost block fails), then the example.
#
# Needs `make build` first (`make cpp-tests` does it). A missing g++ or
# valgrind fails the run: it never skips.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
CXX=${CXX:-g++}
lib_dir=$root/target/release
header=include/taskfarm_worker.h
wrapper=include/taskfarm_worker.hpp
test_src=tests/cpp/wrapper_test.cpp
start=$(date +%s)

fail() { echo "tests/cpp/run.sh: $*" >&2; exit 1; }

command -v "$CXX" >/dev/null 2>&1 || fail "$CXX is missing: apt-get install -y g++"
command -v valgrind >/dev/null 2>&1 || fail "valgrind is missing: apt-get install -y valgrind"
[ -e "$lib_dir/libtaskfarm_worker.so.0" ] || fail "$lib_dir/libtaskfarm_worker.so.0 is missing: run make build"

# 1. The header's functions (declared at column 0) against the wrapper and the test's list.
declared=$(grep -E '^[a-z].*\btf_[a-z_]+\(' "$header" | grep -oE '\btf_[a-z_]+\(' | tr -d '(' | sort -u)
missing_hpp=$(for f in $declared; do grep -qE "\\b$f\\(" "$wrapper" || echo "$f"; done)
missing_test=$(for f in $declared; do grep -qF "{\"$f\"," "$test_src" || echo "$f"; done)
[ -z "$missing_hpp" ] || fail "C functions without a C++ counterpart in $wrapper:"$'\n'"$missing_hpp"
[ -z "$missing_test" ] || fail "C functions missing from the list in $test_src:"$'\n'"$missing_test"
echo "cpp: all $(echo "$declared" | wc -l) C functions have a C++ counterpart and are listed in the test"

# 2. Build.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tf-cpp.XXXXXX")
server_dir=$tmp/server
cleanup() {
    status=$?
    if [ -f "$server_dir/server.json" ]; then
        tests/harness/server.sh stop "$server_dir" >/dev/null 2>&1 ||
            echo "tests/cpp/run.sh: could not stop the server of $server_dir" >&2
    fi
    rm -rf "$tmp"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cxxflags=(-std=c++17 -Wall -Wextra -Wpedantic -Werror -g)
link=(-L"$lib_dir" -Wl,-rpath,"$lib_dir" -ltaskfarm_worker)
"$CXX" "${cxxflags[@]}" -Iinclude "$test_src" "${link[@]}" -o "$tmp/wrapper_test"
"$CXX" "${cxxflags[@]}" -Iinclude examples/worker.cpp "${link[@]}" -o "$tmp/worker"
echo '#include <taskfarm_worker.hpp>' >"$tmp/strict.cpp"
"$CXX" "${cxxflags[@]}" -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast -Wnon-virtual-dtor \
    -Wcast-qual -Wundef -Weffc++ -fsyntax-only -Iinclude "$tmp/strict.cpp"
resolved=$(ldd "$tmp/wrapper_test" | awk '$1 == "libtaskfarm_worker.so.0" {print $3}')
[ "$(readlink -f "$resolved")" = "$(readlink -f "$lib_dir/libtaskfarm_worker.so")" ] ||
    fail "wrapper_test loads '$resolved', not $lib_dir/libtaskfarm_worker.so"
echo "cpp: built wrapper_test and examples/worker.cpp with ${cxxflags[*]}; header clean under stricter warnings"

# 3. A real server, stopped by PID on exit (and by its watchdog if this script dies).
tests/harness/server.sh start "$server_dir" --watch-pid $$ >/dev/null
eval "$(tests/harness/server.sh env "$server_dir")"

echo "== wrapper_test"
"$tmp/wrapper_test"

echo "== wrapper_test under valgrind"
vg_log=$tmp/valgrind.log
vg_status=0
valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --log-file="$vg_log" "$tmp/wrapper_test" >"$tmp/valgrind.out" || vg_status=$?
tail -n 1 "$tmp/valgrind.out"
summary=$(grep -E 'ERROR SUMMARY|definitely lost|All heap blocks' "$vg_log" | sed 's/^==[0-9]*== *//' || true)
echo "$summary"
if [ $vg_status -ne 0 ] || ! grep -q 'ERROR SUMMARY: 0 errors' "$vg_log" ||
    grep -qE 'definitely lost: [1-9]' "$vg_log"; then
    cat "$tmp/valgrind.out" "$vg_log" >&2
    fail "wrapper_test under valgrind failed (exit $vg_status)"
fi

echo "== examples/worker.cpp"
run_uuid=$("$tmp/worker" -n 3)
"$tmp/worker" "$run_uuid" >"$tmp/example.out"
grep -q "100" "$tmp/example.out" || { cat "$tmp/example.out" >&2; fail "the example did not finish its run"; }
tail -n 1 "$tmp/example.out"

echo "cpp tests: all passed in $(($(date +%s) - start)) s"
