#!/usr/bin/env bash
# tests/fortran/run.sh: the Fortran module against a real taskfarm server.
#
# Builds fortran/taskfarm_worker.f90, tests/fortran/wrapper_test.f90 and
# examples/worker.f90 with $FC (default gfortran) against target/release
# (run `make build` first; `make fortran-tests` does both), starts a real
# taskfarm server with tests/harness/server.sh, runs the test plainly and
# under valgrind, then runs the example worker through a run.
# A missing gfortran or valgrind is a failure, never a skip.
set -euo pipefail

# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
start_time=$(date +%s)

FC=${FC:-gfortran}
out=build/fortran
lib_dir=$root/target/release
header=include/taskfarm_worker.h
module_src=fortran/taskfarm_worker.f90
# Fortran 2008, every warning an error; run-time checks on in the tests.
fflags=(-std=f2008 -Wall -Wextra -Werror -pedantic -g -O1 -fcheck=all)

need "$FC" "apt-get install -y gfortran (or FC=...)"
need valgrind "apt-get install -y valgrind"
need_release_library

# Every function of the C header has its bind(c) interface in the module.
missing=()
while read -r fn; do
    grep -q "bind(c, name='$fn')" "$module_src" || missing+=("$fn")
done < <(grep -oE '\btf_[a-z_]+\(' "$header" | tr -d '(' | sort -u)
[ ${#missing[@]} -eq 0 ] ||
    die "$module_src has no bind(c) interface for: ${missing[*]}"
echo "fortran: every C function of $header has a bind(c) interface"

# Build: the module (.mod and .o in $out), the test and the example.
mkdir -p "$out"
link=(-L"$lib_dir" -ltaskfarm_worker "-Wl,-rpath,$lib_dir")
"$FC" "${fflags[@]}" -J "$out" -c "$module_src" -o "$out/taskfarm_worker.o"
"$FC" "${fflags[@]}" -I "$out" tests/fortran/wrapper_test.f90 "$out/taskfarm_worker.o" \
    "${link[@]}" -o "$out/wrapper_test"
"$FC" "${fflags[@]}" -I "$out" examples/worker.f90 "$out/taskfarm_worker.o" \
    "${link[@]}" -o "$out/worker"
echo "fortran: built $out/wrapper_test and $out/worker with $("$FC" --version | head -n 1)"

# A real server of our own, stopped by PID whatever happens.
scratch_dir tf-fortran
start_server "$tmp/server"

# The last line of a test run must be "N passed, 0 failed".
check_summary() {
    local log=$1 label=$2 last
    last=$(tail -n 1 "$log")
    [[ $last =~ ^[0-9]+\ passed,\ 0\ failed$ ]] || die "$label: last line is '$last'"
    echo "fortran: $label: $last"
}

echo "--- wrapper_test"
"$out/wrapper_test" | tee "$out/wrapper_test.log"
check_summary "$out/wrapper_test.log" "wrapper_test"

echo "--- wrapper_test under valgrind"
status=0
valgrind_run "$out/valgrind.log" "$out/wrapper_test" >"$out/wrapper_test.valgrind.out" || status=$?
if ! valgrind_verdict "$out/valgrind.log" $status || [ $status -ne 0 ]; then
    cat "$out/wrapper_test.valgrind.out" "$out/valgrind.log"
    die "wrapper_test under valgrind: $verdict (99: valgrind found errors or leaks)"
fi
check_summary "$out/wrapper_test.valgrind.out" "wrapper_test under valgrind"
grep -E 'ERROR SUMMARY|definitely lost' "$out/valgrind.log" | sed 's/^==[0-9]*== /fortran: valgrind: /'

echo "--- examples/worker.f90"
uuid=$("$out/worker")
[[ $uuid =~ ^[0-9a-f]{32}$ ]] || die "examples/worker without arguments printed '$uuid', not a UUID"
echo "fortran: worker created run $uuid"
"$out/worker" "$uuid" | tee "$out/worker.log"
done_lines=$(grep -c '^task [0-9]* done$' "$out/worker.log" || true)
[ "$done_lines" -eq 10 ] || die "examples/worker did $done_lines tasks, expected 10"
grep -q '^no task left (10 done by this worker)$' "$out/worker.log" ||
    die "examples/worker did not end with 'no task left (10 done by this worker)'"
"$out/worker" "$uuid" >"$out/worker_again.log" ||
    die "examples/worker on a finished run failed: $(cat "$out/worker_again.log")"
grep -q '^no task left (0 done by this worker)$' "$out/worker_again.log" ||
    die "examples/worker on a finished run: $(cat "$out/worker_again.log")"
echo "fortran: examples/worker worked through the run"

echo "fortran-tests: all passed in $(($(date +%s) - start_time)) s"
