# shellcheck shell=bash
# tests/lib.sh: what the shell test scripts share (tests/c/run.sh,
# tests/cpp/run.sh, tests/fortran/run.sh, tests/install/run.sh,
# tests/fpm/run.sh). Sourced, right after `set`, by
#
#   # shellcheck source=tests/lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#
# It moves to the repository root ($root) and installs the exit trap. Then:
#   die MESSAGE               the run fails at once (message on stderr)
#   need COMMAND HOW          dies unless COMMAND is installed, saying HOW to install it
#   need_release_library      dies unless `make build` made target/release/libtaskfarm_worker.so.0
#   scratch_dir NAME          a new temporary directory (removed on exit) into $tmp
#   start_server DIR          a real taskfarm server (tests/harness/server.sh, SQLite)
#                             with its state in DIR, stopped by PID on exit (and by
#                             its watchdog if the script dies); TASKFARM_URL/_USER/
#                             _PASSWORD exported for the programs
#   bg_pids+=(PID)            a background process, killed on exit
#   pass / fail / check       counting: "ok ..." and "FAIL ..." lines; summary prints
#                             "N passed, M failed" and is true when none failed
#   loads_library PROGRAM SO  PROGRAM loads libtaskfarm_worker.so.0 from SO's file
#   valgrind_run LOG PROGRAM...   memcheck, exit status 99 on an error or a leak
#   valgrind_verdict LOG STATUS   valgrind's verdict on that run ($verdict)
#   header_functions          the functions include/taskfarm_worker.h declares
# A missing prerequisite fails the run: a test never skips itself.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
# The name of the script in messages, e.g. tests/c/run.sh.
tf_script=${0#"$root"/}

die() {
    echo "$tf_script: $*" >&2
    exit 1
}

# need COMMAND HOW: COMMAND must be on the PATH; HOW says how to install it.
need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"
}

need_release_library() {
    [ -e "$root/target/release/libtaskfarm_worker.so.0" ] ||
        die "$root/target/release/libtaskfarm_worker.so.0 is missing: run make build"
}

# ---------------------------------------------------------------------------
# Counting.
passed=0
failed=0
pass() {
    echo "ok   $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL $*"
    failed=$((failed + 1))
}
# check DESCRIPTION COMMAND...: passes when the command succeeds; shows its output if not.
check() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then
        pass "$what"
    else
        fail "$what"
        echo "$out" | tail -n 30 | sed 's/^/     /'
    fi
}
# summary: the closing line; true when no check failed.
summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# ---------------------------------------------------------------------------
# Scratch directories, servers and background processes, all cleaned up on exit.
tf_scratch=()
tf_servers=()
bg_pids=()
tf_cleanup() {
    local status=$? pid dir
    for pid in "${bg_pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for dir in "${tf_servers[@]}"; do
        if [ -f "$dir/server.json" ]; then
            "$root/tests/harness/server.sh" stop "$dir" >/dev/null 2>&1 ||
                echo "$tf_script: could not stop the server of $dir" >&2
        fi
    done
    for dir in "${tf_scratch[@]}"; do
        rm -rf "$dir"
    done
    exit "$status"
}
trap tf_cleanup EXIT
trap 'exit 130' INT TERM HUP

# scratch_dir NAME: sets tmp to a new temporary directory, removed on exit.
scratch_dir() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || die "mktemp failed"
    tf_scratch+=("$tmp")
}

# start_server DIR: a real server, its state in DIR; the environment of its
# clients exported (TASKFARM_URL, TASKFARM_USER, TASKFARM_PASSWORD).
start_server() {
    local dir=$1
    tf_servers+=("$dir")
    "$root/tests/harness/server.sh" start "$dir" --watch-pid $$ >/dev/null ||
        die "could not start the taskfarm server (see $dir/server.log)"
    eval "$("$root/tests/harness/server.sh" env "$dir")"
}

# ---------------------------------------------------------------------------
# Programs.

# loads_library PROGRAM SO: PROGRAM loads libtaskfarm_worker.so.0 and it is
# the file SO (after links); says what it loads if not.
loads_library() {
    local lib
    lib=$(ldd "$1" | awk '$1 == "libtaskfarm_worker.so.0" { print $3 }')
    if [ -z "$lib" ] || [ "$(readlink -f "$lib")" != "$(readlink -f "$2")" ]; then
        echo "$1 loads '${lib:-nothing}', not $2"
        ldd "$1"
        return 1
    fi
}

# header_functions: every function include/taskfarm_worker.h declares (at
# column 0), one a line.
header_functions() {
    grep -E '^[a-z].*\btf_[a-z_]+\(' include/taskfarm_worker.h | grep -oE '\btf_[a-z_]+\(' | tr -d '(' | sort -u
}

# valgrind_run LOG PROGRAM [ARG...]: runs the program under memcheck, the
# report in LOG. Exit status 99: valgrind found an error or a definitely lost
# block; otherwise the program's.
valgrind_run() {
    local log=$1
    shift
    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --track-origins=yes --log-file="$log" "$@"
}

# valgrind_verdict LOG STATUS: sets verdict to "N errors, definitely lost: B
# bytes in K blocks (exit STATUS)"; true when the run of valgrind_run with
# that report and exit status is clean: not 99, an ERROR SUMMARY of 0 errors
# and nothing definitely lost.
valgrind_verdict() {
    local log=$1 status=$2 errors lost
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
    lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 bytes in \2 blocks/p' "$log" | tail -n 1)
    [ -n "$lost" ] || lost="0 bytes in 0 blocks"
    # shellcheck disable=SC2034 # for the caller
    verdict="${errors:-?} errors, definitely lost: $lost (exit $status)"
    [ "$status" -ne 99 ] && [ "${errors:-x}" = 0 ] && [ "$lost" = "0 bytes in 0 blocks" ]
}
