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

# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CXX=${CXX:-g++}
lib_dir=$root/target/release
wrapper=include/taskfarm_worker.hpp
test_src=tests/cpp/wrapper_test.cpp
start=$(date +%s)

need "$CXX" "apt-get install -y g++ (or CXX=...)"
need valgrind "apt-get install -y valgrind"
need_release_library

# 1. The header's functions (declared at column 0) against the wrapper and the test's list.
declared=$(header_functions)
missing_hpp=$(for f in $declared; do grep -qE "\\b$f\\(" "$wrapper" || echo "$f"; done)
missing_test=$(for f in $declared; do grep -qF "{\"$f\"," "$test_src" || echo "$f"; done)
[ -z "$missing_hpp" ] || die "C functions without a C++ counterpart in $wrapper:"$'\n'"$missing_hpp"
[ -z "$missing_test" ] || die "C functions missing from the list in $test_src:"$'\n'"$missing_test"
echo "cpp: all $(echo "$declared" | wc -l) C functions have a C++ counterpart and are listed in the test"

# 2. Build.
scratch_dir tf-cpp
server_dir=$tmp/server

cxxflags=(-std=c++17 -Wall -Wextra -Wpedantic -Werror -g)
link=(-L"$lib_dir" "-Wl,-rpath,$lib_dir" -ltaskfarm_worker)
"$CXX" "${cxxflags[@]}" -Iinclude "$test_src" "${link[@]}" -o "$tmp/wrapper_test"
"$CXX" "${cxxflags[@]}" -Iinclude examples/worker.cpp "${link[@]}" -o "$tmp/worker"
echo '#include <taskfarm_worker.hpp>' >"$tmp/strict.cpp"
"$CXX" "${cxxflags[@]}" -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast -Wnon-virtual-dtor \
    -Wcast-qual -Wundef -Weffc++ -fsyntax-only -Iinclude "$tmp/strict.cpp"
loaded=$(loads_library "$tmp/wrapper_test" "$lib_dir/libtaskfarm_worker.so") || die "$loaded"
echo "cpp: built wrapper_test and examples/worker.cpp with ${cxxflags[*]}; header clean under stricter warnings"

# 3. A real server, stopped by PID on exit (and by its watchdog if this script dies).
start_server "$server_dir"

echo "== wrapper_test"
"$tmp/wrapper_test"

echo "== wrapper_test under valgrind"
vg_log=$tmp/valgrind.log
vg_status=0
valgrind_run "$vg_log" "$tmp/wrapper_test" >"$tmp/valgrind.out" || vg_status=$?
tail -n 1 "$tmp/valgrind.out"
grep -E 'ERROR SUMMARY|definitely lost|All heap blocks' "$vg_log" | sed 's/^==[0-9]*== *//' || true
if ! valgrind_verdict "$vg_log" $vg_status || [ $vg_status -ne 0 ]; then
    cat "$tmp/valgrind.out" "$vg_log" >&2
    die "wrapper_test under valgrind failed: $verdict"
fi

echo "== examples/worker.cpp"
run_uuid=$("$tmp/worker" -n 3)
"$tmp/worker" "$run_uuid" >"$tmp/example.out"
grep -q "100" "$tmp/example.out" || { cat "$tmp/example.out" >&2; die "the example did not finish its run"; }
tail -n 1 "$tmp/example.out"

echo "cpp tests: all passed in $(($(date +%s) - start)) s"
