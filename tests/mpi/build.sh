#!/usr/bin/env bash
# tests/mpi/build.sh OUT: builds examples/mpi_worker.c and examples/mpi_worker.f90
# against the tree (include/, fortran/, target/release) with the compiler
# wrappers of each MPI: OUT/openmpi/ (mpicc.openmpi, mpif90.openmpi) and
# OUT/mpich/ (mpicc.mpich, mpif90.mpich), each with mpi_worker (C) and
# mpi_worker_f (Fortran; the taskfarm_worker module compiled by the same
# wrapper); and OUT/worker, examples/worker.c built with cc (the Slurm tests'
# plain worker). `make mpi-examples` runs it with OUT=build/mpi; tests/mpi.rs and
# tests/slurm.rs with a directory of their own. Needs `make build` first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:?usage: tests/mpi/build.sh OUT}
lib_dir=$root/target/release
lib=$lib_dir/libtaskfarm_worker.so

[ -f "$lib" ] || { echo "$lib is missing: run make build first" >&2; exit 1; }
newer=$(cd "$root" && find src Cargo.toml -newer "$lib" -print -quit)
[ -z "$newer" ] || { echo "$newer is newer than $lib: run make build first" >&2; exit 1; }
for w in mpicc.openmpi mpif90.openmpi mpicc.mpich mpif90.mpich; do
    command -v "$w" >/dev/null || {
        echo "$w is missing: apt-get install -y openmpi-bin libopenmpi-dev mpich libmpich-dev" >&2
        exit 1
    }
done

mkdir -p "$out"
"${CC:-cc}" -std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -I"$root/include" "$root/examples/worker.c" \
    -L"$lib_dir" -Wl,-rpath,"$lib_dir" -ltaskfarm_worker -o "$out/worker"
for mpi in openmpi mpich; do
    dir=$out/$mpi
    mkdir -p "$dir"
    "mpicc.$mpi" -std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -I"$root/include" \
        "$root/examples/mpi_worker.c" -L"$lib_dir" -Wl,-rpath,"$lib_dir" -ltaskfarm_worker \
        -o "$dir/mpi_worker"
    "mpif90.$mpi" -std=f2008 -Wall -Werror -O1 -J "$dir" -c "$root/fortran/taskfarm_worker.f90" \
        -o "$dir/taskfarm_worker.o"
    "mpif90.$mpi" -Wall -Werror -O1 -I"$dir" "$root/examples/mpi_worker.f90" "$dir/taskfarm_worker.o" \
        -L"$lib_dir" -Wl,-rpath,"$lib_dir" -ltaskfarm_worker -o "$dir/mpi_worker_f"
    echo "built $dir/mpi_worker and $dir/mpi_worker_f with $("mpicc.$mpi" --version | head -n 1 | cut -c1-40)"
done
