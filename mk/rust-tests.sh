#!/usr/bin/env bash
# mk/rust-tests.sh (`make rust-tests`, and `make test`'s scheduler): the Rust
# tests compiled once, their binaries run side by side, and with TEST_SUITES
# the make suites beside them in the same lanes.
#
#   1. `cargo test --features cli --no-run`: every test binary (the library's
#      and the tool's unit tests, each tests/*.rs, and target/debug/taskfarm)
#      compiled in one cargo run;
#   2. the items run TEST_JOBS at a time (default 3), from the repository's
#      root, each with its output kept and printed whole when it ends, so that
#      the outputs do not mix, after a line with its wall and CPU seconds. An item is a test binary (by its target name),
#      a make target of TEST_SUITES (`make test` passes lint and the suites of
#      TEST_TARGETS: run as `make -o build -o rust-test-build TARGET`, as both
#      are done by then) or `doc-tests` (`cargo test --doc`);
#   3. the longest lane first (the expected seconds below; an item not listed
#      counts 10 s), so that the long ones do not start last.
#
# Every item runs to its end (cargo's --no-fail-fast); the script fails when
# one failed, naming each. Arguments go to every test binary (`mk/rust-tests.sh
# --nocapture`). TEST_ONLY="faults header" runs only those binaries (no doc
# tests, no suites).
#
# A test binary is one process and shares within itself what tests/README.md
# says ("Why some tests are binaries of their own"). Between items, only the
# machine is shared; the items that use something of the machine that one
# process at a time should use run one after another, in one lane (one line of
# exclusive_lanes each; an item absent from this run is left out):
#   - MPI jobs of several ranks (mpi, stop_signals, reap, and install-tests,
#     which runs the MPI examples): 4 ranks already oversubscribe the
#     machine's cores, and the stop and reap tests time signals against them;
#     install-tests first, as `make install` builds the release tool, which
#     fpm-tests and chaos-short wait for too (cargo's lock);
#   - a private Slurm cluster (slurm, reap_slurm, stop_slurm, slurm_harness,
#     run_batch, which also runs mpirun): slurmctld and slurmd on one node;
#   - a private Grid Engine cell (gridengine): sge_qmaster and sge_execd.
# Every other item is a lane of its own. Items that run cargo (rust_api builds
# examples/worker.rs, library_without_cli asks cargo tree and metadata, lint,
# the doc tests, the suites that build the release tool or the wheel) wait
# for cargo's lock when another holds it, and compile nothing twice: step 1
# built the example with the same features, and rust_api fails if its build
# recompiles anything but the example; the Makefile gives every release build
# the same CC (ring's build script reads it), so a suite's `make install`
# finds `make build`'s libraries fresh instead of rebuilding them under the
# running tests.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo=${CARGO:-cargo}
make=${MAKE:-make}
jobs=${TEST_JOBS:-3}
die() { echo "mk/rust-tests.sh: $*" >&2; exit 1; }
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "TEST_JOBS=$jobs is not a number of jobs"

# The lanes that run their items one after another, in this order.
exclusive_lanes=(
    "install-tests mpi stop_signals reap"                 # MPI jobs of several ranks
    "slurm_harness slurm stop_slurm reap_slurm run_batch" # one private Slurm cluster
    "gridengine"                                          # one private Grid Engine cell
)
# Expected seconds of the long items, to start the longest lane first (LPT:
# the order is what counts): the longest from a fresh-clone `make test` on a
# quiet machine, the others 0.6 times their figure in one at load 12-17.
declare -A expected=(
    [chaos-short]=265 [install-tests]=195 [lint]=195 [bench-smoke]=156
    [python-tests]=130 [schedulers]=125 [c-tests]=114 [harness_smoke]=105
    [server-doc-tests]=100 [concurrency]=85 [scale]=80 [stop_slurm]=80
    [fortran-tests]=80 [cli]=75 [outcomes]=70 [reap]=60 [cpp-tests]=60
    [run_batch]=60 [stop_signals]=50 [mpi]=45 [chaos-unit]=40 [held_tasks]=40
    [real_server]=40 [run_command]=35 [reap_shared_dir]=35 [slurm]=35
    [progress]=35 [server_restarts]=35 [gridengine]=30 [reap_scale]=30
    [token]=25 [reap_slurm]=25 [rust_api]=15 [fpm-tests]=15
)

logs=$(mktemp -d "${TMPDIR:-/tmp}/tf-rust-tests.XXXXXX")
trap 'rm -rf "$logs"' EXIT

# children_cpu: sets cpu to the CPU time (user + system, in clock ticks) of
# the processes this shell has waited for so far (/proc's cutime and cstime):
# an item's CPU seconds, printed beside its wall seconds, show where the
# machine's time goes. Daemons that leave their parent (pg_ctl's server) are
# not counted.
ticks=$(getconf CLK_TCK)
children_cpu() {
    local -a stat
    read -r -a stat <"/proc/$BASHPID/stat"
    cpu=$((stat[15] + stat[16]))
}

# 1. Compile once; the list of binaries is "name<TAB>path", from cargo's JSON.
start=$(date +%s)
children_cpu
compile_cpu=$cpu
"$cargo" test --features cli --no-run --message-format=json-render-diagnostics >"$logs/build.json" ||
    die "cargo test --no-run failed (see above)"
python3 - "$logs/build.json" >"$logs/binaries" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    t = m["target"]
    kind = t["kind"][0]
    name = t["name"] if kind == "test" else f"{kind}:{t['name']}"
    print(f"{name}\t{m['executable']}")
PY
if [ -n "${TEST_ONLY:-}" ]; then
    awk -F'\t' -v only=" $TEST_ONLY " 'index(only, " " $1 " ")' "$logs/binaries" >"$logs/only"
    mv "$logs/only" "$logs/binaries"
fi
[ -s "$logs/binaries" ] || die "cargo test --no-run listed no test binary${TEST_ONLY:+ of TEST_ONLY=$TEST_ONLY}"
children_cpu
echo "mk/rust-tests.sh: compiled $(wc -l <"$logs/binaries") test binaries in $(( $(date +%s) - start )) s (CPU $(( (cpu - compile_cpu) / ticks )) s)"

# The items: "kind<TAB>name", kind bin (path[name]), make or doc.
declare -A path=() kind=()
items=()
while IFS=$'\t' read -r name exe; do
    path[$name]=$exe kind[$name]=bin items+=("$name")
done <"$logs/binaries"
if [ -z "${TEST_ONLY:-}" ]; then
    kind[doc-tests]=doc items+=(doc-tests)
    for name in ${TEST_SUITES:-}; do
        [ -z "${kind[$name]:-}" ] || die "TEST_SUITES: $name is also a test binary's name"
        kind[$name]=make items+=("$name")
    done
fi

# The lanes: the exclusive ones (their present items), then every other item
# alone; each as "SECONDS<TAB>NAME NAME...", sorted longest first.
declare -A laned=()
for lane in "${exclusive_lanes[@]}"; do
    present=() seconds=0
    for name in $lane; do
        [ -n "${kind[$name]:-}" ] || continue
        present+=("$name") laned[$name]=1
        seconds=$((seconds + ${expected[$name]:-10}))
    done
    [ ${#present[@]} -eq 0 ] || printf '%s\t%s\n' "$seconds" "${present[*]}"
done >"$logs/lanes"
for name in "${items[@]}"; do
    [ -n "${laned[$name]:-}" ] || printf '%s\t%s\n' "${expected[$name]:-10}" "$name"
done >>"$logs/lanes"
lanes=()
while IFS=$'\t' read -r _ lane; do lanes+=("$lane"); done < <(sort -t $'\t' -k1,1nr -s "$logs/lanes")
echo "mk/rust-tests.sh: running ${#items[@]} items in ${#lanes[@]} lanes, $jobs at a time"

# run_item NAME ARGS...: one item, its output into $logs/NAME.out.
run_item() {
    local name=$1
    shift
    case ${kind[$name]} in
        bin) "${path[$name]}" "$@" ;;
        doc) "$cargo" test --features cli --doc ;;
        make) "$make" --no-print-directory -o build -o rust-test-build "$name" ;;
    esac >"$logs/$name.out" 2>&1 </dev/null
}

# run_lane "NAME NAME..." ARGS...: each item in turn; its exit status into
# $logs/NAME.rc, then its output printed whole with its wall and CPU seconds.
run_lane() {
    local name began rc where cpu cpu_before
    for name in $1; do
        began=$(date +%s)
        children_cpu
        cpu_before=$cpu
        rc=0
        run_item "$name" "${@:2}" || rc=$?
        children_cpu
        echo "$rc" >"$logs/$name.rc"
        case ${kind[$name]} in
            bin) where=${path[$name]#"$root"/} ;;
            doc) where="cargo test --doc" ;;
            make) where="make $name" ;;
        esac
        {
            echo "---- $name ($where): exit status $rc, $(( $(date +%s) - began )) s (CPU $(( (cpu - cpu_before) / ticks )) s), at $(( $(date +%s) - start )) s"
            cat "$logs/$name.out"
        } | flock "$logs/print.lock" cat
    done
}

running=0
for lane in "${lanes[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_lane "$lane" "$@" &
    running=$((running + 1))
done
wait || true

failed=()
for name in "${items[@]}"; do
    [ "$(cat "$logs/$name.rc" 2>/dev/null || echo missing)" = 0 ] || failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ]; then
    die "failed: ${failed[*]}"
fi
children_cpu
echo "mk/rust-tests.sh: all ${#items[@]} items passed in $(( $(date +%s) - start )) s (CPU $(( (cpu - compile_cpu) / ticks )) s)"
