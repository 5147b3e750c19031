#!/usr/bin/env bash
# tests/python/run.sh (`make python-tests`): the Python package
# taskfarm_worker_rs (python/) against the real taskfarm server:
#   1. test_parity.py: the seed's API member by member, side by side with the
#      Python client taskfarm-worker 0.4.0 on the same server;
#      test_beyond_seed.py: the token, update interval, deadline, journal,
#      stop signals, exceptions;
#      test_outcomes.py: fail (handed back, attempts counted in a journal,
#      set aside at TASKFARM_MAX_ATTEMPTS), attempt, done below 100 %;
#   2. example.py and manageTF.py (the Python client's programs written
#      afresh, one import line changed) against the same programs with that
#      line put back, and against the real manageTF: same output, same runs;
#   3. Python workers (example.py) and C workers (examples/worker.c) on one
#      run: each task done exactly once;
#   4. the wheel (make wheel) installed by pip into a fresh venv with only
#      python3 on PATH and CC unset (no compiler, no Rust), then a worker
#      through a run from outside the repository, loading the wheel's library.
# Steps 1-3 load target/release/libtaskfarm_worker.so.0 (make build).
set -euo pipefail
# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

need cc "apt-get install -y gcc"
need_release_library
venv=$(tests/harness/venv.sh) || die "the harness venv could not be built"
python=$venv/bin/python
version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)
wheel=$(ls dist/taskfarm_worker_rs-"$version"-py3-none-*manylinux_2_17_x86_64.whl 2>/dev/null) ||
    die "dist/ holds no wheel of version $version: run make wheel"

scratch_dir python-tests
start_server "$tmp/server"
export PYTHONPATH=$root/python TASKFARM_WORKER_LIB=$root/target/release/libtaskfarm_worker.so.0
here=tests/python

# 1. The API, side by side, and what it adds.
for module in test_parity test_beyond_seed test_outcomes; do
    check "$module (unittest)" env -C "$here" "$python" -m unittest -v "$module"
done

# 2. The programs, with the import line put back: the Python client's.
for program in example manageTF; do
    sed 's/^from taskfarm_worker_rs import /from taskfarm_worker import /' "$here/$program.py" >"$tmp/${program}_seed.py"
    changed=$(diff "$here/$program.py" "$tmp/${program}_seed.py" | grep -c '^[<>]' || true)
    [ "$changed" = 2 ] || die "$program.py: expected exactly one import line to change, diff shows $changed lines"
done
ours_run=$("$python" "$here/example.py" -n 6)
seed_run=$("$python" "$tmp/example_seed.py" -n 6)
"$python" "$here/example.py" "$ours_run" >"$tmp/example_ours.out"
"$python" "$tmp/example_seed.py" "$seed_run" >"$tmp/example_seed.out"
check "example.py: the same tasks done and the same final line as with the Python client" \
    diff <(sed "s/$ours_run/RUN/" "$tmp/example_ours.out") <(sed "s/$seed_run/RUN/" "$tmp/example_seed.out")
check "example.py: all 6 tasks done" grep -qx "run $ours_run: 6 of 6 done, 100.0 %" "$tmp/example_ours.out"

manage() { # manage ours|seed|real ARGS...: one of the three manageTF, with the server's options
    local which=$1
    shift
    case $which in
        ours) "$python" "$here/manageTF.py" -b "$TASKFARM_URL" -u "$TASKFARM_USER" -p "$TASKFARM_PASSWORD" "$@" ;;
        seed) "$python" "$tmp/manageTF_seed.py" -b "$TASKFARM_URL" -u "$TASKFARM_USER" -p "$TASKFARM_PASSWORD" "$@" ;;
        real) "$venv/bin/manageTF" -b "$TASKFARM_URL" -u "$TASKFARM_USER" -p "$TASKFARM_PASSWORD" "$@" ;;
    esac
}
same_output() { # same_output ARGS...: ours, the import-changed copy and the real manageTF print the same
    local a b c
    a=$(manage ours "$@") && b=$(manage seed "$@") && c=$(manage real "$@") || return 1
    if [ "$a" = "$b" ] && [ "$a" = "$c" ]; then return 0; fi
    { printf 'ours:\n%s\nseed copy:\n%s\nreal:\n%s\n' "$a" "$b" "$c"; return 1; }
}
check "manageTF.py -l: as the real manageTF" same_output -l
check "manageTF.py UUID -i: as the real manageTF" same_output "$ours_run" -i
# Effects: -R by ours on one run, by the real manageTF on the other; -i then shows the same counts.
counts() { manage real "$1" -i | cut -d' ' -f3-; }
check "manageTF.py -R: every task back to waiting, as the real manageTF's -R" \
    bash -c "$(declare -f manage counts); python=$python here=$here tmp=$tmp venv=$venv; manage ours $ours_run -R && manage real $seed_run -R && [ \"\$(counts $ours_run)\" = \"\$(counts $seed_run)\" ] && [ \"\$(counts $ours_run)\" = '6 (6,0,0) 0.0' ]"
check "manageTF.py -r on a run with a computing task, as the real manageTF's -r" \
    bash -c "$(declare -f manage counts); python=$python here=$here tmp=$tmp venv=$venv
        for r in $ours_run $seed_run; do \"$python\" -c 'import sys, taskfarm_worker as t; w = t.TaskFarmWorker(sys.argv[1], sys.argv[2], sys.argv[3], url_base=sys.argv[4]); w.task; w.update(40)' \"\$TASKFARM_USER\" \"\$TASKFARM_PASSWORD\" \$r \"\$TASKFARM_URL\"; done
        manage ours $ours_run -r && manage real $seed_run -r && [ \"\$(counts $ours_run)\" = \"\$(counts $seed_run)\" ]"
check "manageTF.py -d: the run is gone, as with the real manageTF's -d" \
    bash -c "$(declare -f manage); python=$python here=$here tmp=$tmp venv=$venv; manage ours $ours_run -d && manage real $seed_run -d && ! manage real $ours_run -i 2>/dev/null && ! manage ours $seed_run -i 2>/dev/null"
check "manageTF.py -l after the deletes: as the real manageTF" same_output -l

# 3. Python and C workers on one run.
cc -std=c11 -O2 -Wall -Werror examples/worker.c -Iinclude -Ltarget/release \
    -Wl,-rpath,"$root/target/release" -ltaskfarm_worker -o "$tmp/worker" || die "examples/worker.c does not build"
mixed=$("$python" "$here/example.py" -n 40)
pids=()
for i in 1 2; do
    "$python" "$here/example.py" "$mixed" >"$tmp/mixed-python-$i.out" 2>&1 & pids+=($!)
    WORKER_STEP_MS=5 "$tmp/worker" "$mixed" >"$tmp/mixed-c-$i.out" 2>&1 & pids+=($!)
done
bg_pids+=("${pids[@]}")
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
bg_pids=() # all waited for: nothing left to kill on exit
check "Python and C workers on one run: every worker ended well" test "$status" = 0
sed -n 's/^\(worker [0-9a-f]*: \)\{0,1\}task \([0-9]*\) done$/\2/p' "$tmp"/mixed-*.out | sort -n >"$tmp/mixed.tasks"
check "Python and C workers on one run: each of the 40 tasks done exactly once" diff <(seq 0 39) "$tmp/mixed.tasks"
check "Python and C workers on one run: both kinds did tasks" \
    bash -c "grep -q 'done\$' $tmp/mixed-python-1.out $tmp/mixed-python-2.out && grep -q 'task [0-9]* done' $tmp/mixed-c-1.out $tmp/mixed-c-2.out"
check "Python and C workers on one run: the server counts 40 done" \
    bash -c "[ \"\$(\"$venv/bin/manageTF\" -b \"\$TASKFARM_URL\" -u \"\$TASKFARM_USER\" -p \"\$TASKFARM_PASSWORD\" $mixed -i | cut -d' ' -f3-)\" = '40 (0,0,40) 100.0' ]"

# 4. The wheel, into a fresh venv, with no compiler and no Rust on PATH.
wheel_run=$("$python" "$here/example.py" -n 3)
unset PYTHONPATH TASKFARM_WORKER_LIB LD_LIBRARY_PATH CC CXX
base_python=$(python3 -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
mkdir "$tmp/bin" "$tmp/outside"
ln -s "$base_python" "$tmp/bin/python3"
for tool in cc gcc clang cargo rustc ld; do
    if PATH=$tmp/bin command -v "$tool" >/dev/null 2>&1; then die "$tool is on the restricted PATH"; fi
done
# Only python3 on PATH, nothing else of the environment (no CC, no TASKFARM_WORKER_LIB).
bare() { env -i HOME="$tmp" PATH="$tmp/bin" "$@"; }
wvenv=$tmp/wheel-venv
check "wheel: a fresh venv (PATH: python3 only)" \
    bare python3 -m venv "$wvenv"
check "wheel: pip installs it into a fresh venv (PATH: python3 only, CC unset)" \
    bare "$wvenv/bin/pip" install --no-index --disable-pip-version-check --quiet "$root/$wheel"
check "wheel: the installed version is the crate's ($version)" \
    bare "$wvenv/bin/python" -c "import taskfarm_worker_rs as t, sys; sys.exit(t.__version__ != '$version')"
cp "$here/example.py" "$tmp/outside/example.py"
(cd "$tmp/outside" && bare TASKFARM_URL="$TASKFARM_URL" TASKFARM_USER="$TASKFARM_USER" TASKFARM_PASSWORD="$TASKFARM_PASSWORD" \
    "$wvenv/bin/python" example.py "$wheel_run" >"$tmp/wheel.out" 2>&1) || true
check "wheel: a worker from the installed package works through a run" \
    grep -qx "run $wheel_run: 3 of 3 done, 100.0 %" "$tmp/wheel.out"
check "wheel: the package loads the library the wheel carries" \
    bare "$wvenv/bin/python" -c "import sys, taskfarm_worker_rs
maps = [line for line in open('/proc/self/maps') if 'libtaskfarm_worker' in line]
sys.exit(0 if maps and all(' $wvenv/lib/' in line for line in maps) else 1)"

summary
