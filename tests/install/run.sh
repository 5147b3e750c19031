#!/usr/bin/env bash
# tests/install/run.sh (`make install-tests`): `make install` as a user gets
# it, and every example built against the installed tree and run against a
# REAL taskfarm server.
#
#  1. `make install PREFIX=<temporary prefix>`: the files, links, SONAMEs,
#     manifest, pkg-config files, the Fortran module directory,
#     PREFIX/bin/taskfarm, which runs from there, and its completions and man
#     page, each checked by the shell or man reading it (cli_docs.sh);
#  2. builds every example from a copy of examples/ (away from the
#     repository's include/ and target/) two ways:
#     a. pkg-config and plain $CC / $CXX / $FC (PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig),
#        plus a C and a Fortran worker linked statically against the .a
#        files with the .pc's Libs.private;
#     b. CMake: cmake -S examples -B ... -DCMAKE_PREFIX_PATH=$PREFIX
#     c. the MPI examples (mpi_worker.c, mpi_worker.f90) with the MPI compiler
#        wrappers: pkg-config with mpicc/mpif90 of Open MPI and of MPICH, and
#        CMake (-DTASKFARM_EXAMPLES_MPI=ON) with Open MPI's wrappers
#     and checks that each program loads the installed library; also the
#     CMake package's version check and its refusal of another Fortran
#     compiler (faked in a scratch project);
#  3. starts a real server (tests/harness/server.sh, SQLite, stopped by PID on
#     exit) and runs, one after another (SQLite: one worker asking at a time),
#     for both builds: the C worker creating a run and working through it,
#     the C++ and the Fortran workers on runs of their own, watch_run creating
#     a run and watching a C worker finish it; the static workers; the ctypes
#     script (LD_LIBRARY_PATH, and --lib); each MPI build on 2 ranks
#     (mpirun.openmpi, mpiexec.mpich); examples/slurm_array.sh run outside
#     Slurm. Each run must end at 100 % with every task done exactly once;
#  4. DESTDIR staging, a reinstall replacing an older install's files,
#     uninstall's refusal of a manifest entry outside the prefix;
#  5. `make uninstall` leaves no file in the prefix (bin/taskfarm included),
#     and no directory that `make install` created (here the prefix itself);
#     a second one has nothing to do.
#
# Ends with "N passed, M failed". Needs `make build` first (`make
# install-tests` does it). A missing cc, g++, gfortran, cmake, pkg-config,
# python3, bash-completion, zsh, fish or man fails the run: it never skips.
set -uo pipefail

# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CC=${CC:-cc}
CXX=${CXX:-g++}
FC=${FC:-gfortran}
[ "$FC" = f77 ] && FC=gfortran # make's built-in default, not a choice
PYTHON=${PYTHON:-python3}
MAKE=${MAKE:-make}
start=$(date +%s)

need "$CC" "apt-get install -y gcc (or CC=...)"
need "$CXX" "apt-get install -y g++ (or CXX=...)"
need "$FC" "apt-get install -y gfortran (or FC=...)"
need cmake "apt-get install -y cmake"
need pkg-config "apt-get install -y pkg-config"
need readelf "apt-get install -y binutils"
need zsh "apt-get install -y zsh" # zsh, fish, man, groff: for tests/install/cli_docs.sh
need fish "apt-get install -y fish"
need man "apt-get install -y man-db"
need groff "apt-get install -y groff-base"
[ -f /usr/share/bash-completion/bash_completion ] || die "bash-completion is missing: apt-get install -y bash-completion"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    [ -x "$root/.venv/bin/python" ] || die "python3 is missing: apt-get install -y python3"
    PYTHON=$root/.venv/bin/python
fi
need_release_library

version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)
fc_major=$("$FC" -dumpversion | cut -d. -f1)
modtag=gfortran-$fc_major

# runs FILE COMMAND...: runs the command, its output into FILE (shown on failure).
runs() {
    local file=$1 status=0
    shift
    "$@" >"$file" 2>&1 || status=$?
    [ $status -eq 0 ] || { echo "exit $status:"; tail -n 20 "$file"; }
    return $status
}
# fails_saying PATTERN COMMAND...: the command fails and says PATTERN.
fails_saying() {
    local pattern=$1 out
    shift
    if out=$("$@" 2>&1); then
        echo "succeeded: $out"
        return 1
    fi
    grep -q -- "$pattern" <<<"$out" || { echo "$out"; return 1; }
}

scratch_dir tf-install-test
prefix=$tmp/prefix
server_dir=$tmp/server

# ---------------------------------------------------------------------------
echo "== 1. make install PREFIX=$prefix"
if ! "$MAKE" --no-print-directory -C "$root" install PREFIX="$prefix" FC="$FC" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    fail "make install PREFIX=$prefix"
    summary
    exit 1
fi
pass "make install PREFIX=$prefix ($(tail -n 1 "$tmp/install.log" | sed 's/^make install: //'))"

expected=(
    bin/taskfarm
    "lib/libtaskfarm_worker.so.$version" lib/libtaskfarm_worker.so.0 lib/libtaskfarm_worker.so
    lib/libtaskfarm_worker.a
    "lib/libtaskfarm_worker_fortran.so.$version" lib/libtaskfarm_worker_fortran.so.0
    lib/libtaskfarm_worker_fortran.so lib/libtaskfarm_worker_fortran.a
    include/taskfarm_worker.h include/taskfarm_worker.hpp
    include/taskfarm_worker/taskfarm_worker.f90 "include/taskfarm_worker/$modtag/taskfarm_worker.mod"
    lib/pkgconfig/taskfarm_worker.pc lib/pkgconfig/taskfarm_worker-fortran.pc
    lib/cmake/taskfarm_worker/taskfarm_workerConfig.cmake
    lib/cmake/taskfarm_worker/taskfarm_workerConfigVersion.cmake
    share/bash-completion/completions/taskfarm share/zsh/site-functions/_taskfarm
    share/fish/vendor_completions.d/taskfarm.fish share/man/man1/taskfarm.1
    share/man/man3/tf_worker_task.3 share/man/man3/tf_taskfarm_create.3
    share/taskfarm_worker/install_manifest.txt
)
missing=()
for f in "${expected[@]}"; do [ -e "$prefix/$f" ] || missing+=("$f"); done
if [ ${#missing[@]} -eq 0 ]; then
    pass "all ${#expected[@]} expected files are installed"
else
    fail "missing from the prefix: ${missing[*]}"
fi

links_ok() {
    local base=$1
    [ "$(readlink "$prefix/lib/$base.so")" = "$base.so.0" ] &&
        [ "$(readlink "$prefix/lib/$base.so.0")" = "$base.so.$version" ] &&
        [ -f "$prefix/lib/$base.so.$version" ] && [ ! -L "$prefix/lib/$base.so.$version" ] &&
        readelf -d "$prefix/lib/$base.so.$version" | grep -q "Library soname: \[$base.so.0\]"
}
both_links_ok() { links_ok libtaskfarm_worker && links_ok libtaskfarm_worker_fortran; }
check "links lib*.so -> .so.0 -> .so.$version and SONAME .so.0, for both libraries" both_links_ok

manifest_matches() {
    diff <(sort "$prefix/share/taskfarm_worker/install_manifest.txt") \
        <(find "$prefix" ! -type d | sort)
}
check "the manifest lists exactly the files and links in the prefix" manifest_matches

check "bin/taskfarm: the command-line tool runs from the prefix (--version says $version, library $version)" \
    bash -c "[ \"\$(env -i '$prefix/bin/taskfarm' --version)\" = 'taskfarm $version (library taskfarm_worker $version)' ]"
check "the completions (bash, zsh, fish) and the man page work (tests/install/cli_docs.sh)" \
    tests/install/cli_docs.sh "$prefix"

# The man pages of the C functions: one per function of the header, each
# rendering without a warning; `man 3 tf_worker_task` finds and renders its
# page with only PREFIX/bin added to PATH.
man3_pages_ok() {
    local want got page warnings
    want=$(grep -oE '^[a-z0-9_ ]*[ *]tf_[a-z0-9_]+\(' include/taskfarm_worker.h | grep -oE 'tf_[a-z0-9_]+\($' | tr -d '(' | sort)
    got=$(find "$prefix/share/man/man3" -type f -name '*.3' -printf '%f\n' | sed 's/\.3$//' | sort)
    [ "$want" = "$got" ] || { diff <(echo "$want") <(echo "$got"); return 1; }
    for page in "$prefix"/share/man/man3/*.3; do
        warnings=$(groff -man -ww -z "$page" 2>&1)
        [ -z "$warnings" ] || { echo "$page: $warnings"; return 1; }
    done
}
check "share/man/man3: a page per C function of the header, each rendering without a warning (groff -ww)" \
    man3_pages_ok
man3_renders() {
    local text found
    found=$(env -u MANPATH PATH="$prefix/bin:/usr/bin:/bin" man -w 3 tf_worker_task 2>&1)
    [ "$found" = "$prefix/share/man/man3/tf_worker_task.3" ] || { echo "man -w 3 tf_worker_task finds '$found'"; return 1; }
    text=$(env -u MANPATH PATH="$prefix/bin:/usr/bin:/bin" MANWIDTH=80 man 3 tf_worker_task 2>&1) || { echo "$text"; return 1; }
    if ! grep -q '^NAME' <<<"$text" ||
        ! grep -q 'enum tf_status tf_worker_task(struct tf_worker \*worker, int64_t \*out_task);' <<<"$text" ||
        ! grep -q 'stat = w%task(task)' <<<"$text"; then
        echo "$text" | head -30
        return 1
    fi
}
check "man 3 tf_worker_task (PREFIX/bin on PATH) renders the page: synopsis, Fortran name" man3_renders

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
check "pkg-config: taskfarm_worker version $version" \
    test "$(pkg-config --modversion taskfarm_worker)" = "$version"
check "pkg-config: taskfarm_worker-fortran fmoddir holds taskfarm_worker.mod ($modtag, from $FC -dumpversion)" \
    test -f "$(pkg-config --variable=fmoddir taskfarm_worker-fortran)/taskfarm_worker.mod" -a \
    "$(pkg-config --variable=fmoddir taskfarm_worker-fortran)" = "$prefix/include/taskfarm_worker/$modtag"
check "pkg-config: Libs.private of taskfarm_worker in --static --libs" \
    bash -c "pkg-config --static --libs taskfarm_worker | grep -q -- '-lpthread'"

# ---------------------------------------------------------------------------
echo "== 2a. examples built with pkg-config and $CC / $CXX / $FC"
src=$tmp/examples
mkdir -p "$src" "$tmp/pc" "$tmp/static"
cp examples/worker.c examples/worker.cpp examples/worker.f90 examples/watch_run.c \
    examples/ctypes_worker.py examples/slurm_array.sh examples/CMakeLists.txt \
    examples/mpi_worker.c examples/mpi_worker.f90 "$src/"
rpath=-Wl,-rpath,$prefix/lib
# pkg-config's output, split into words.
read -ra pc_c <<<"$(pkg-config --cflags --libs taskfarm_worker)"
read -ra pc_f <<<"$(pkg-config --cflags --libs taskfarm_worker-fortran)"
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O2)
cxxflags=(-std=c++17 -Wall -Wextra -Wpedantic -Werror -O2)
fflags=(-std=f2008 -Wall -Wextra -Werror -pedantic -O2)
check "pc: $CC worker.c \$(pkg-config --cflags --libs taskfarm_worker)" \
    "$CC" "${cflags[@]}" "$src/worker.c" "${pc_c[@]}" "$rpath" -o "$tmp/pc/worker"
check "pc: $CC watch_run.c \$(pkg-config --cflags --libs taskfarm_worker)" \
    "$CC" "${cflags[@]}" "$src/watch_run.c" "${pc_c[@]}" "$rpath" -o "$tmp/pc/watch_run"
check "pc: $CXX worker.cpp \$(pkg-config --cflags --libs taskfarm_worker)" \
    "$CXX" "${cxxflags[@]}" "$src/worker.cpp" "${pc_c[@]}" "$rpath" -o "$tmp/pc/worker-cpp"
check "pc: $FC worker.f90 \$(pkg-config --cflags --libs taskfarm_worker-fortran)" \
    "$FC" "${fflags[@]}" "$src/worker.f90" "${pc_f[@]}" "$rpath" -o "$tmp/pc/worker-f"
# Static: the .a in place of -ltaskfarm_worker, then Libs.private.
read -ra static_libs <<<"$(pkg-config --cflags --static --libs taskfarm_worker |
    sed 's/-ltaskfarm_worker\b/-l:libtaskfarm_worker.a/')"
check "static: $CC worker.c with \$(pkg-config --static --libs taskfarm_worker), -l:libtaskfarm_worker.a" \
    "$CC" "${cflags[@]}" "$src/worker.c" "${static_libs[@]}" -o "$tmp/static/worker"
read -ra fstatic_libs <<<"$(pkg-config --cflags --static --libs taskfarm_worker-fortran |
    sed 's/-ltaskfarm_worker_fortran\b/-l:libtaskfarm_worker_fortran.a/; s/-ltaskfarm_worker\b/-l:libtaskfarm_worker.a/')"
check "static: $FC worker.f90 with the fortran .pc's --static --libs, both .a" \
    "$FC" "${fflags[@]}" "$src/worker.f90" "${fstatic_libs[@]}" -o "$tmp/static/worker-f"

# loads_installed PROGRAM: the program loads libtaskfarm_worker.so.0 from the prefix.
loads_installed() { loads_library "$1" "$prefix/lib/libtaskfarm_worker.so.$version"; }
no_shared_taskfarm() {
    ! ldd "$1" | grep -q taskfarm_worker || { ldd "$1"; return 1; }
}
for p in worker watch_run worker-cpp worker-f; do
    [ -x "$tmp/pc/$p" ] && check "pc: $p loads $prefix/lib/libtaskfarm_worker.so.0" loads_installed "$tmp/pc/$p"
done
for p in worker worker-f; do
    [ -x "$tmp/static/$p" ] && check "static: $p needs no libtaskfarm_worker*.so" no_shared_taskfarm "$tmp/static/$p"
done

# ---------------------------------------------------------------------------
echo "== 2b. examples built with CMake (find_package(taskfarm_worker))"
cmake_build=$tmp/cmake-build
if cmake -S "$src" -B "$cmake_build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_Fortran_COMPILER="$FC" \
    >"$tmp/cmake-configure.log" 2>&1; then
    pass "cmake -S examples -B build -DCMAKE_PREFIX_PATH=$prefix ($(grep -o 'taskfarm_worker [0-9.]* from.*' "$tmp/cmake-configure.log"))"
else
    fail "cmake -S examples -DCMAKE_PREFIX_PATH=$prefix"
    tail -n 30 "$tmp/cmake-configure.log"
fi
check "cmake --build: worker, watch_run, worker-cpp, worker-f" \
    cmake --build "$cmake_build" --parallel 2
mkdir -p "$tmp/cm"
for p in worker watch_run worker-cpp worker-f; do
    if [ -x "$cmake_build/$p" ]; then
        cp "$cmake_build/$p" "$tmp/cm/$p"
        check "cmake: $p loads $prefix/lib/libtaskfarm_worker.so.0" loads_installed "$tmp/cm/$p"
    fi
done

# ---------------------------------------------------------------------------
echo "== 2c. the MPI examples with the MPI compiler wrappers (pkg-config, CMake)"
mkdir -p "$tmp/mpi"
mpi_fflags=(-Wall -Werror -O2)
for mpi in openmpi mpich; do
    check "pc: mpicc.$mpi mpi_worker.c \$(pkg-config --cflags --libs taskfarm_worker)" \
        "mpicc.$mpi" "${cflags[@]}" "$src/mpi_worker.c" "${pc_c[@]}" "$rpath" \
        -o "$tmp/mpi/pc-$mpi-mpi_worker"
    check "pc: mpif90.$mpi mpi_worker.f90 \$(pkg-config --cflags --libs taskfarm_worker-fortran)" \
        "mpif90.$mpi" "${mpi_fflags[@]}" "$src/mpi_worker.f90" "${pc_f[@]}" \
        "$rpath" -o "$tmp/mpi/pc-$mpi-mpi_worker_f"
done
mpi_build=$tmp/cmake-mpi-build
if cmake -S "$src" -B "$mpi_build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    -DTASKFARM_EXAMPLES_MPI=ON -DCMAKE_C_COMPILER=mpicc.openmpi -DCMAKE_CXX_COMPILER=mpicxx.openmpi \
    -DCMAKE_Fortran_COMPILER=mpif90.openmpi >"$tmp/cmake-mpi-configure.log" 2>&1 &&
    cmake --build "$mpi_build" --parallel 2 --target mpi_worker mpi_worker_f >"$tmp/cmake-mpi-build.log" 2>&1; then
    cp "$mpi_build/mpi_worker" "$tmp/mpi/cm-openmpi-mpi_worker"
    cp "$mpi_build/mpi_worker_f" "$tmp/mpi/cm-openmpi-mpi_worker_f"
    pass "cmake -DTASKFARM_EXAMPLES_MPI=ON with mpicc.openmpi / mpif90.openmpi: mpi_worker, mpi_worker_f"
else
    fail "cmake -DTASKFARM_EXAMPLES_MPI=ON with the Open MPI wrappers"
    tail -n 30 "$tmp/cmake-mpi-configure.log" "$tmp/cmake-mpi-build.log" 2>/dev/null
fi
for p in "$tmp"/mpi/*; do
    check "$(basename "$p") loads $prefix/lib/libtaskfarm_worker.so.0" loads_installed "$p"
done

# The package's checks, in a scratch project: versions, components, and the
# refusal of another Fortran compiler (its ID or version faked after project()).
probe=$tmp/cmake-probe
mkdir -p "$probe"
cat >"$probe/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(probe LANGUAGES C Fortran)
if(FAKE_FC_ID)
  set(CMAKE_Fortran_COMPILER_ID "${FAKE_FC_ID}")
endif()
if(FAKE_FC_VERSION)
  set(CMAKE_Fortran_COMPILER_VERSION "${FAKE_FC_VERSION}")
endif()
find_package(taskfarm_worker ${WANT_VERSION} REQUIRED ${WANT_COMPONENTS})
foreach(t taskfarm_worker::taskfarm_worker taskfarm_worker::static taskfarm_worker::fortran)
  if(TARGET ${t})
    message(STATUS "probe: target ${t}")
  endif()
endforeach()
EOF
# probe EXPECT(ok|fail) PATTERN DESCRIPTION -D...: configures the probe.
probe() {
    local expect=$1 pattern=$2 what=$3 out status=0
    shift 3
    rm -rf "$probe/build"
    out=$(cmake -S "$probe" -B "$probe/build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_COMPILER="$CC" -DCMAKE_Fortran_COMPILER="$FC" "$@" 2>&1) || status=$?
    if { [ "$expect" = ok ] && [ $status -eq 0 ]; } || { [ "$expect" = fail ] && [ $status -ne 0 ]; } &&
        grep -q -- "$pattern" <<<"$out"; then
        pass "cmake package: $what"
    else
        fail "cmake package: $what (exit $status; expected $expect and '$pattern')"
        echo "$out" | tail -n 25 | sed 's/^/     /'
    fi
}
probe ok "probe: target taskfarm_worker::fortran" \
    "find_package(taskfarm_worker 0.1) with gfortran $fc_major: all three targets" -DWANT_VERSION=0.1
probe ok "probe: target taskfarm_worker::static" \
    "find_package(taskfarm_worker $version EXACT)" -DWANT_VERSION="$version;EXACT"
probe fail 'requested version "1.0"' \
    "find_package(taskfarm_worker 1.0) is refused" -DWANT_VERSION=1.0
probe fail "wrong Fortran compiler" \
    "refuses gfortran $((fc_major + 1)) (faked): FATAL_ERROR naming the compilers" \
    -DFAKE_FC_VERSION="$((fc_major + 1)).1.0" -DWANT_COMPONENTS="COMPONENTS;Fortran"
probe fail "IntelLLVM 2024.1.0" \
    "refuses IntelLLVM (faked) without COMPONENTS" -DFAKE_FC_ID=IntelLLVM -DFAKE_FC_VERSION=2024.1.0
probe ok "probe: target taskfarm_worker::taskfarm_worker" \
    "COMPONENTS C with IntelLLVM (faked): the C targets, no Fortran check" \
    -DFAKE_FC_ID=IntelLLVM -DFAKE_FC_VERSION=2024.1.0 -DWANT_COMPONENTS="COMPONENTS;C"
probe fail "no component 'Python'" \
    "an unknown component is refused" -DWANT_COMPONENTS="COMPONENTS;Python"

# ---------------------------------------------------------------------------
echo "== 3. the examples against a real taskfarm server"
start_server "$server_dir"
export WORKER_STEP_MS=10
status_tool=$tmp/pc/worker
[ -x "$status_tool" ] || status_tool=$tmp/cm/worker

# done_once WHAT N UUID OUTPUT...: the outputs' "task K done" lines name
# every task 0..N-1 exactly once, and the server says 100 %, N done.
done_once() {
    local what=$1 n=$2 uuid=$3 got want st
    shift 3
    got=$(cat "$@" | grep -oE '\btask [0-9]+ done' | awk '{ print $2 }' | sort -n | tr '\n' ' ')
    want=$(seq 0 $((n - 1)) | tr '\n' ' ')
    st=$("$status_tool" --status "$uuid" 2>&1)
    if [ "$got" = "$want" ] && [ "$st" = "100 0 0 $n" ]; then
        pass "$what: run ${uuid:0:8}.. at 100 %, each of its $n tasks done once"
    else
        fail "$what: tasks done '$got' (want '$want'); status '$st' (want '100 0 0 $n')"
        tail -n 15 "$@" | sed 's/^/     /'
    fi
}
# new_run N: a new run of N tasks (by the C worker built with pkg-config).
new_run() { "$status_tool" -n "$1"; }

for flavour in pc cm; do
    bin=$tmp/$flavour
    label=$([ $flavour = pc ] && echo pkg-config || echo cmake)

    if uuid=$(timeout 60 "$bin/worker" -n 12) && [ -n "$uuid" ]; then
        pass "$label: C worker -n 12 created run ${uuid:0:8}.."
        check "$label: C worker works through its run" \
            runs "$tmp/$flavour-c.out" timeout 120 "$bin/worker" "$uuid"
        done_once "$label: C worker" 12 "$uuid" "$tmp/$flavour-c.out"
    else
        fail "$label: C worker -n 12 could not create a run"
    fi

    if uuid=$(timeout 60 "$bin/worker-cpp" -n 8) && [ -n "$uuid" ]; then
        timeout 120 "$bin/worker-cpp" "$uuid" >"$tmp/$flavour-cpp.out" 2>&1 ||
            fail "$label: C++ worker exited with $?"
        done_once "$label: C++ worker (created its run)" 8 "$uuid" "$tmp/$flavour-cpp.out"
    else
        fail "$label: C++ worker -n 8 could not create a run"
    fi

    if uuid=$(timeout 60 "$bin/worker-f") && [ -n "$uuid" ]; then
        timeout 120 "$bin/worker-f" "$uuid" >"$tmp/$flavour-f.out" 2>&1 ||
            fail "$label: Fortran worker exited with $?"
        done_once "$label: Fortran worker (created its run of 10)" 10 "$uuid" "$tmp/$flavour-f.out"
    else
        fail "$label: the Fortran worker could not create a run"
    fi

    # watch_run creates a run and watches a C worker work through it.
    watch_out=$tmp/$flavour-watch.out
    timeout 180 "$bin/watch_run" -n 6 -i 0.5 -t 150 >"$watch_out" 2>&1 &
    watch_pid=$!
    bg_pids+=("$watch_pid")
    uuid=
    for _ in $(seq 600); do
        uuid=$(head -n 1 "$watch_out" | grep -E '^[0-9a-f-]{32,36}$') && break
        sleep 0.1
    done
    if [ -n "$uuid" ]; then
        # Two looks at the run before the worker starts: waited for, not guessed.
        for _ in $(seq 600); do
            [ "$(grep -c '%  done' "$watch_out")" -ge 2 ] && break
            sleep 0.1
        done
        timeout 120 "$bin/worker" "$uuid" >"$tmp/$flavour-watched.out" 2>&1 ||
            fail "$label: the C worker of the watched run exited with $?"
        code=0
        wait "$watch_pid" || code=$?
        looks=$(grep -c '%  done' "$watch_out")
        if [ $code -eq 0 ] && tail -n 1 "$watch_out" | grep -q '100.0 %  done 6' && [ "$looks" -ge 2 ]; then
            pass "$label: watch_run -n 6 created the run, printed $looks looks, ended at 100 % (exit 0)"
        else
            fail "$label: watch_run exited with $code after $looks looks"
            tail -n 10 "$watch_out" | sed 's/^/     /'
        fi
        done_once "$label: C worker on watch_run's run" 6 "$uuid" "$tmp/$flavour-watched.out"
    else
        fail "$label: watch_run -n 6 printed no UUID"
        cat "$watch_out"
        kill "$watch_pid" 2>/dev/null
        wait "$watch_pid" 2>/dev/null
    fi
done

for p in worker worker-f; do
    if [ -x "$tmp/static/$p" ] && uuid=$(new_run 5); then
        timeout 120 "$tmp/static/$p" "$uuid" >"$tmp/static-$p.out" 2>&1 ||
            fail "static $p exited with $?"
        done_once "static $p" 5 "$uuid" "$tmp/static-$p.out"
    fi
done

# ctypes: by the loader's search (LD_LIBRARY_PATH), then by path.
check "ctypes_worker.py without the library on the loader's path fails to load it" \
    fails_saying 'cannot load the library' \
    env -u LD_LIBRARY_PATH -u TASKFARM_WORKER_LIB "$PYTHON" "$src/ctypes_worker.py" -n 1
if LD_LIBRARY_PATH=$prefix/lib timeout 120 "$PYTHON" "$src/ctypes_worker.py" -n 7 >"$tmp/ctypes.out" 2>&1; then
    uuid=$(head -n 1 "$tmp/ctypes.out")
    pass "ctypes_worker.py -n 7 ($PYTHON $("$PYTHON" -c 'import platform; print(platform.python_version())'), LD_LIBRARY_PATH=$prefix/lib)"
    done_once "ctypes_worker.py (created its run)" 7 "$uuid" "$tmp/ctypes.out"
    check "ctypes_worker.py freed and printed the run's info JSON" grep -q '"numDone": *7\|"numDone":7' "$tmp/ctypes.out"
else
    fail "ctypes_worker.py -n 7 exited with an error"
    tail -n 15 "$tmp/ctypes.out"
fi
if uuid=$(new_run 4); then
    check "ctypes_worker.py --lib $prefix/lib/libtaskfarm_worker.so.0 UUID" \
        runs "$tmp/ctypes-lib.out" timeout 120 env -u LD_LIBRARY_PATH "$PYTHON" "$src/ctypes_worker.py" \
        --lib "$prefix/lib/libtaskfarm_worker.so.0" "$uuid"
    done_once "ctypes_worker.py --lib" 4 "$uuid" "$tmp/ctypes-lib.out"
fi

# The MPI workers, 2 ranks each (the SQLite server answers one request at a
# time: safe for workers asking at once). Rank 0 prints "rank R: N tasks: ...".
mpi_done_once() {
    local what=$1 n=$2 uuid=$3 out=$4 got want st
    got=$(sed -n 's/^rank [0-9]*: [0-9]* tasks://p' "$out" | tr ' ' '\n' | grep . | sort -n | tr '\n' ' ')
    want=$(seq 0 $((n - 1)) | tr '\n' ' ')
    st=$("$status_tool" --status "$uuid" 2>&1)
    if [ "$got" = "$want" ] && [ "$st" = "100 0 0 $n" ] && grep -q "^2 ranks: $n tasks done" "$out"; then
        pass "$what: run ${uuid:0:8}.. at 100 %, each of its $n tasks done once by 2 ranks"
    else
        fail "$what: tasks done '$got' (want '$want'); status '$st' (want '100 0 0 $n')"
        tail -n 15 "$out" | sed 's/^/     /'
    fi
}
root_flag=()
[ "$(id -u)" = 0 ] && root_flag=(--allow-run-as-root)
for p in "$tmp"/mpi/*; do
    name=$(basename "$p")
    case $name in
    *-openmpi-*) launcher=(mpirun.openmpi "${root_flag[@]}" --oversubscribe -n 2) ;;
    *) launcher=(mpiexec.mpich -n 2) ;;
    esac
    if uuid=$(new_run 6); then
        timeout 120 "${launcher[@]}" "$p" "$uuid" >"$tmp/$name.out" 2>&1 ||
            fail "$name under ${launcher[0]} exited with $?"
        mpi_done_once "$name (${launcher[0]} -n 2)" 6 "$uuid" "$tmp/$name.out"
    fi
done

# The Slurm script outside Slurm: one array element, here.
if uuid=$(new_run 5); then
    check "slurm_array.sh UUID outside Slurm (WORKER=the pkg-config C worker)" \
        runs "$tmp/slurm.out" env WORKER="$tmp/pc/worker" SLURM_ARRAY_TASK_ID=8 \
        timeout 120 bash "$src/slurm_array.sh" "$uuid"
    done_once "slurm_array.sh" 5 "$uuid" "$tmp/slurm.out"
fi
check "slurm_array.sh without a UUID says how to call it" \
    fails_saying 'usage: sbatch slurm_array.sh RUN_UUID' bash "$src/slurm_array.sh"

tests/harness/server.sh stop "$server_dir" >/dev/null 2>&1 || fail "could not stop the server"

# ---------------------------------------------------------------------------
echo "== 4. DESTDIR, reinstall, uninstall's safety"
stage=$tmp/stage
dest_prefix=/opt/taskfarm_worker-test
if "$MAKE" --no-print-directory -C "$root" install DESTDIR="$stage" PREFIX="$dest_prefix" FC="$FC" \
    >"$tmp/destdir.log" 2>&1; then
    pass "make install DESTDIR=$stage PREFIX=$dest_prefix"
else
    fail "make install DESTDIR=$stage PREFIX=$dest_prefix"
    tail -n 20 "$tmp/destdir.log"
fi
check "DESTDIR: the files are under DESTDIR, nothing in $dest_prefix itself" \
    bash -c "[ -f '$stage$dest_prefix/lib/libtaskfarm_worker.so.$version' ] && [ ! -e '$dest_prefix' ]"
check "DESTDIR: the .pc files, manifest and CMake package name PREFIX, not DESTDIR" \
    bash -c "grep -qx 'prefix=$dest_prefix' '$stage$dest_prefix/lib/pkgconfig/taskfarm_worker.pc' &&
             grep -qx 'prefix=$dest_prefix' '$stage$dest_prefix/lib/pkgconfig/taskfarm_worker-fortran.pc' &&
             ! grep -rq '$stage' '$stage$dest_prefix' &&
             grep -qx '$dest_prefix/lib/libtaskfarm_worker.a' '$stage$dest_prefix/share/taskfarm_worker/install_manifest.txt'"
# Uninstall refuses a manifest with an entry outside the prefix, removing nothing.
dmanifest=$stage$dest_prefix/share/taskfarm_worker/install_manifest.txt
cp "$dmanifest" "$tmp/manifest.bak"
mkdir -p "$stage/etc" && echo keep >"$stage/etc/keep"
echo /etc/keep >>"$dmanifest"
check "uninstall refuses a manifest entry outside PREFIX and removes nothing" \
    bash -c "! '$MAKE' --no-print-directory -C '$root' uninstall DESTDIR='$stage' PREFIX='$dest_prefix' >/dev/null 2>&1 &&
             [ -f '$stage/etc/keep' ] && [ -f '$stage$dest_prefix/lib/libtaskfarm_worker.a' ]"
cp "$tmp/manifest.bak" "$dmanifest"
rm -rf "${stage:?}/etc"
check "make uninstall DESTDIR=$stage PREFIX=$dest_prefix leaves no file" \
    bash -c "'$MAKE' --no-print-directory -C '$root' uninstall DESTDIR='$stage' PREFIX='$dest_prefix' >/dev/null &&
             [ -z \"\$(find '$stage' ! -type d)\" ]"

# A reinstall removes the files of the previous install it does not write again.
old=lib/libtaskfarm_worker.so.0.0.1
touch "$prefix/$old"
echo "$prefix/$old" >>"$prefix/share/taskfarm_worker/install_manifest.txt"
check "a reinstall removes an older install's files (a fake $old) and keeps the rest" \
    bash -c "'$MAKE' --no-print-directory -C '$root' install PREFIX='$prefix' FC='$FC' >/dev/null &&
             [ ! -e '$prefix/$old' ] && [ -f '$prefix/lib/libtaskfarm_worker.so.$version' ] &&
             ! grep -q '$old' '$prefix/share/taskfarm_worker/install_manifest.txt'"

# ---------------------------------------------------------------------------
echo "== 5. make uninstall PREFIX=$prefix"
check "make uninstall PREFIX=$prefix" \
    "$MAKE" --no-print-directory -C "$root" uninstall PREFIX="$prefix"
# make install created the prefix (it did not exist): every directory goes too.
left=$(find "$prefix" 2>/dev/null || true)
if [ -z "$left" ]; then
    pass "nothing is left of the prefix, which make install created: no file, link or empty directory"
else
    fail "left after make uninstall: $left"
fi
check "bin/taskfarm is gone" test ! -e "$prefix/bin/taskfarm"
check "the package's own directories are gone (include/taskfarm_worker, lib/cmake/taskfarm_worker, share/taskfarm_worker)" \
    bash -c "[ ! -e '$prefix/include/taskfarm_worker' ] && [ ! -e '$prefix/lib/cmake/taskfarm_worker' ] && [ ! -e '$prefix/share/taskfarm_worker' ]"
check "a second make uninstall succeeds, saying nothing is installed there" \
    bash -c "'$MAKE' --no-print-directory -C '$root' uninstall PREFIX='$prefix' | grep -q 'nothing was installed'"

echo "install tests: $(($(date +%s) - start)) s"
summary
