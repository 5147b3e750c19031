#!/usr/bin/env bash
# tests/fpm/run.sh (`make fpm-tests`): a Fortran project built with fpm that
# depends on this repository (its fpm.toml), as docs/install.md's "Using it with
# fpm" tells a user to, run against a REAL taskfarm server.
#
#  1. fpm from PyPI, pinned in tests/harness/requirements.txt, from the
#     harness venv (tests/harness/venv.sh); fpm.toml's version is Cargo.toml's;
#  2. `make install PREFIX=<temporary prefix>`: the C library the module binds;
#  3. a new fpm project (its app: a copy of examples/worker.f90) whose
#     fpm.toml has `taskfarm_worker = { path = "<relative path to this
#     repository>" }`; `fpm build` with the manual's environment (PKG_CONFIG_PATH,
#     FPM_LDFLAGS from pkg-config): fpm compiles fortran/taskfarm_worker.f90
#     and links -ltaskfarm_worker; the program loads the library from the
#     prefix, not from target/;
#  4. a real server (tests/harness/server.sh, SQLite, stopped on exit):
#     `fpm run` creates a run of 10 tasks, then `fpm run -- UUID` and the
#     built program work through it at the same time; every task is done
#     exactly once and the server says 100 %;
#  5. fpm wrote nothing into the repository.
#
# Ends with "N passed, M failed". Needs `make build` first (`make fpm-tests`
# does it). A missing gfortran, pkg-config, python3 or PyPI fails the run: it
# never skips.
set -uo pipefail

# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
FC=${FC:-gfortran}
[ "$FC" = f77 ] && FC=gfortran # make's built-in default, not a choice
MAKE=${MAKE:-make}
start=$(date +%s)

need "$FC" "apt-get install -y gfortran (or FC=...)"
need pkg-config "apt-get install -y pkg-config"
need python3 "apt-get install -y python3 python3-venv"
need_release_library

finish() {
    echo "fpm tests: $(($(date +%s) - start)) s"
    summary
}

scratch_dir tf-fpm-test
prefix=$tmp/prefix
project=$tmp/my_simulation
server_dir=$tmp/server
touch "$tmp/started"

# ---------------------------------------------------------------------------
echo "== 1. fpm from PyPI"
venv=$(tests/harness/venv.sh) || die "could not build the harness venv (tests/harness/venv.sh, see above)"
fpm=$venv/bin/fpm
pin=$(sed -n 's/^fpm==//p' tests/harness/requirements.txt)
[ -n "$pin" ] || die "tests/harness/requirements.txt pins no fpm (fpm==VERSION)"
[ -x "$fpm" ] || die "$fpm is missing: the harness venv has no fpm (rm -rf $venv and run again)"
got=$("$fpm" --version 2>&1 | sed -n 's/^ *Version: *\([0-9.]*\).*/\1/p')
if [ "$got" = "$pin" ]; then
    pass "fpm $got from the harness venv (pinned fpm==$pin)"
else
    die "$fpm --version says '$got', the pin is $pin: rm -rf $venv and run again"
fi
version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)
fpm_version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' fpm.toml)
check "fpm.toml's version ($fpm_version) is Cargo.toml's ($version)" test "$fpm_version" = "$version"

# ---------------------------------------------------------------------------
echo "== 2. make install PREFIX=$prefix"
if ! "$MAKE" --no-print-directory -C "$root" install PREFIX="$prefix" FC="$FC" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    fail "make install PREFIX=$prefix"
    finish
    exit 1
fi
pass "make install PREFIX=$prefix"

# ---------------------------------------------------------------------------
echo "== 3. an fpm project depending on this repository by path"
mkdir -p "$project/app"
cp examples/worker.f90 "$project/app/main.f90"
# fpm 0.12 takes a dependency's path relative to the project (it prefixes
# an absolute one with ./).
dep=$(realpath --relative-to="$project" "$root")
cat >"$project/fpm.toml" <<EOF
name = "my_simulation"
version = "0.1.0"

[dependencies]
taskfarm_worker = { path = "$dep" }
EOF
# The manual's environment: the library found through its pkg-config file.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
libdir=$(pkg-config --variable=libdir taskfarm_worker)
ldflags="$(pkg-config --libs-only-L taskfarm_worker) -Wl,-rpath,$libdir"
cd "$project" || die "cannot enter $project"
if FPM_FC=$FC FPM_LDFLAGS=$ldflags "$fpm" build >"$tmp/build.log" 2>&1; then
    pass "fpm build with FPM_LDFLAGS='$ldflags'"
else
    fail "fpm build with FPM_LDFLAGS='$ldflags'"
    tail -n 30 "$tmp/build.log" | sed 's/^/     /'
    finish
    exit 1
fi
program=$(find build -type f -name my_simulation -perm -u+x | head -n 1)
[ -n "$program" ] || die "fpm build made no program my_simulation under $project/build"
check "the program loads $prefix/lib/libtaskfarm_worker.so.0" \
    loads_library "$program" "$prefix/lib/libtaskfarm_worker.so.$version"
check "fpm compiled the module from the repository's fortran/taskfarm_worker.f90" \
    grep -q "taskfarm_worker.f90" "$tmp/build.log"

# ---------------------------------------------------------------------------
echo "== 4. fpm run against a real taskfarm server"
start_server "$server_dir"
export WORKER_STEP_MS=10
run_fpm() { FPM_FC=$FC FPM_LDFLAGS=$ldflags timeout 120 "$fpm" run "$@"; }
# As in docs/install.md: `fpm run` (fpm 0.12 may build again first, saying so on
# stdout), then the program's UUID line.
uuid=$(run_fpm 2>"$tmp/create.err" | tee "$tmp/create.out" | tail -n 1)
if [[ $uuid =~ ^[0-9a-f-]{32,36}$ ]]; then
    pass "fpm run: created run ${uuid:0:8}.. of 10 tasks"
    run_fpm -- "$uuid" >"$tmp/worker-a.out" 2>&1 &
    pid_a=$!
    bg_pids+=("$pid_a")
    timeout 120 "$program" "$uuid" >"$tmp/worker-b.out" 2>&1
    code_b=$?
    wait "$pid_a"
    code_a=$?
    bg_pids=()
    check "fpm run -- UUID and the program beside it both end with 0 (got $code_a, $code_b)" \
        test "$code_a$code_b" = 00
    got=$(cat "$tmp/worker-a.out" "$tmp/worker-b.out" | grep -oE '\btask [0-9]+ done' |
        awk '{ print $2 }' | sort -n | tr '\n' ' ')
    want=$(seq 0 9 | tr '\n' ' ')
    info=$("$prefix/bin/taskfarm" --json info "$uuid" 2>&1)
    counts=$(python3 -c 'import json, sys; r = json.loads(sys.argv[1])
print(r["percentDone"], r["numWaiting"], r["numComputing"], r["numDone"])' "$info" 2>&1)
    if [ "$got" = "$want" ] && [ "$counts" = "100.0 0 0 10" ]; then
        pass "each of the 10 tasks done exactly once by the two workers, the server says 100 % ($counts)"
    else
        fail "tasks done '$got' (want '$want'); server: '$counts' (want '100.0 0 0 10')"
        tail -n 15 "$tmp/worker-a.out" "$tmp/worker-b.out" | sed 's/^/     /'
    fi
else
    fail "fpm run ended with '$uuid', not a run UUID"
    tail -n 15 "$tmp/create.out" "$tmp/create.err" | sed 's/^/     /'
fi
cd "$root" || die "cannot enter $root"

# ---------------------------------------------------------------------------
echo "== 5. the repository is left as it was"
# fpm's artefacts (its build directory's, module files) made since the start.
fpm_files() {
    find "$root" \( -path "$root/target" -o -path "$root/.venv" -o -path "$root/.git" \) -prune -o \
        \( -name 'gfortran_*' -o -name '*.mod' -o -name 'cache.toml' -o -name 'dependencies' \) \
        -newer "$tmp/started" -print
}
check "fpm wrote nothing into the repository (no build directory or .mod there)" test -z "$(fpm_files)"

finish
