#!/usr/bin/env bash
# mk/rust-tests.sh (`make rust-tests`): the Rust tests, compiled once, their
# binaries run side by side.
#
#   1. `cargo test --features cli --no-run`: every test binary (the library's
#      and the tool's unit tests, each tests/*.rs) compiled in one cargo run;
#   2. the binaries run TEST_JOBS at a time (default 3), from the repository's
#      root as cargo runs them, each with its output kept and printed whole
#      when it ends, so that the outputs do not mix;
#   3. the doc tests (`cargo test --doc`), after the binaries.
#
# Every binary runs to its end (cargo's --no-fail-fast); the script fails when
# one failed, naming each. Arguments go to every test binary (`mk/rust-tests.sh
# --nocapture`). TEST_ONLY="faults header" runs only those binaries (and no
# doc tests).
#
# A test binary is one process and shares within itself what tests/README.md
# says ("Why some tests are binaries of their own"). Between binaries, only
# the machine is shared; the binaries that use something of the machine that
# one process at a time should use run one after another, in one lane:
#   - a private Slurm cluster (slurm, reap_slurm, stop_slurm, slurm_harness,
#     run_batch, which also runs mpirun):
#     slurmctld and slurmd on one node;
#   - MPI jobs of several ranks (mpi, stop_signals, reap): 4 ranks already
#     oversubscribe the machine's cores, and the stop and reap tests time
#     signals against them;
#   - a private Grid Engine cell (gridengine): sge_qmaster and sge_execd.
# The longest lane starts first. Two binaries run cargo (rust_api builds
# examples/worker.rs, library_without_cli asks cargo tree and metadata): they
# run beside the others, as cargo takes its own locks, and compile nothing:
# step 1 built the example with the same features, and rust_api fails if its
# build recompiles anything but the example (a build without `--features cli`
# recompiled syn, serde, ureq, cbindgen and the library while three lanes ran).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo=${CARGO:-cargo}
jobs=${TEST_JOBS:-3}
die() { echo "mk/rust-tests.sh: $*" >&2; exit 1; }
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "TEST_JOBS=$jobs is not a number of jobs"

# The lanes that run one binary after another (by test target name).
slurm_lane=(slurm_harness slurm stop_slurm reap_slurm run_batch)
mpi_lane=(mpi stop_signals reap)
gridengine_lane=(gridengine)

logs=$(mktemp -d "${TMPDIR:-/tmp}/tf-rust-tests.XXXXXX")
trap 'rm -rf "$logs"' EXIT

# 1. Compile once; the list of binaries is "name<TAB>path", from cargo's JSON.
start=$(date +%s)
"$cargo" test --features cli --no-run --message-format=json-render-diagnostics >"$logs/build.json" ||
    die "cargo test --no-run failed (see above)"
python3 - "$logs/build.json" >"$logs/binaries" <<'EOF'
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
EOF
if [ -n "${TEST_ONLY:-}" ]; then
    awk -F'\t' -v only=" $TEST_ONLY " 'index(only, " " $1 " ")' "$logs/binaries" >"$logs/only"
    mv "$logs/only" "$logs/binaries"
fi
[ -s "$logs/binaries" ] || die "cargo test --no-run listed no test binary${TEST_ONLY:+ of TEST_ONLY=$TEST_ONLY}"
echo "mk/rust-tests.sh: compiled $(wc -l <"$logs/binaries") test binaries in $(( $(date +%s) - start )) s; running them $jobs at a time"

declare -A path=()
while IFS=$'\t' read -r name exe; do path[$name]=$exe; done <"$logs/binaries"

# The lanes: the two shared ones, then every other binary alone.
lanes=()
lane_of() { local IFS=' '; echo "$*"; }
for lane in slurm_lane mpi_lane gridengine_lane; do
    declare -n members=$lane
    present=()
    for name in "${members[@]}"; do
        [ -n "${path[$name]:-}" ] && present+=("$name")
    done
    [ ${#present[@]} -gt 0 ] && lanes+=("$(lane_of "${present[@]}")")
    unset -n members
done
while IFS=$'\t' read -r name _; do
    case " ${slurm_lane[*]} ${mpi_lane[*]} ${gridengine_lane[*]} " in *" $name "*) continue ;; esac
    lanes+=("$name")
done <"$logs/binaries"

# run_lane "NAME NAME...": each binary in turn; its output into $logs/NAME.out,
# its exit status into $logs/NAME.rc, then printed whole.
run_lane() {
    local name began rc
    for name in $1; do
        began=$(date +%s)
        rc=0
        "${path[$name]}" "${@:2}" >"$logs/$name.out" 2>&1 </dev/null || rc=$?
        echo "$rc" >"$logs/$name.rc"
        {
            echo "---- $name (${path[$name]#"$root"/}): exit status $rc, $(( $(date +%s) - began )) s"
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

# 3. The doc tests (compiled and run by rustdoc).
doc_rc=0
[ -n "${TEST_ONLY:-}" ] || "$cargo" test --features cli --doc || doc_rc=$?

failed=()
while IFS=$'\t' read -r name _; do
    [ "$(cat "$logs/$name.rc" 2>/dev/null || echo missing)" = 0 ] || failed+=("$name")
done <"$logs/binaries"
[ "$doc_rc" = 0 ] || failed+=("doc tests")
if [ ${#failed[@]} -gt 0 ]; then
    die "failed: ${failed[*]}"
fi
echo "mk/rust-tests.sh: every test binary and the doc tests passed in $(( $(date +%s) - start )) s"
