#!/usr/bin/env bash
# Checks that the tools the tests (or, with `demo`, only the demo) need are
# installed, and says how to install what is missing. A missing tool fails
# the run: tests never skip themselves.
#
#   tests/prerequisites.sh        everything `make test` needs
#   tests/prerequisites.sh demo   what `make demo` needs: Rust, a C, C++ and
#                                 Fortran compiler, Python 3 with venv (the
#                                 local server) and flock (tests/harness/venv.sh)
set -u
mode=${1:-test}
case $mode in
test | demo) ;;
*) echo "usage: tests/prerequisites.sh [demo]" >&2; exit 2 ;;
esac
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 ($2)"); }
# What the demo needs (and the tests too).
need cargo "https://rustup.rs"
need cc "apt-get install -y gcc"
need g++ "apt-get install -y g++"
need gfortran "apt-get install -y gfortran"
need python3 "apt-get install -y python3 python3-venv"
need flock "apt-get install -y util-linux"
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=("python3 venv/ensurepip (apt-get install -y python3-venv)")
fi
# What only the tests need.
if [ "$mode" = test ]; then
  need valgrind "apt-get install -y valgrind"
  need unshare "apt-get install -y util-linux"   # tests/reap_slurm.rs: the reaper on another host name
  need hostname "apt-get install -y hostname"
  need faketime "apt-get install -y faketime"   # the chaos soak (make chaos-short): a worker whose clock is off
  need nginx "apt-get install -y nginx"
  need parallel "apt-get install -y parallel"   # the benchmark's section g (make bench-smoke)
  need openssl "apt-get install -y openssl"
  need cmake "apt-get install -y cmake"
  need pkg-config "apt-get install -y pkg-config"
  need shellcheck "apt-get install -y shellcheck"
  # The completions and man page installed by make install (tests/install/cli_docs.sh).
  need zsh "apt-get install -y zsh"
  need fish "apt-get install -y fish"
  need man "apt-get install -y man-db"
  need groff "apt-get install -y groff-base"
  [ -f /usr/share/bash-completion/bash_completion ] || missing+=("bash-completion (apt-get install -y bash-completion)")
  # Slurm and MPI (tests/slurm.rs, tests/mpi.rs): daemons live in /usr/sbin.
  need_sbin() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing+=("$1 ($2)"); }
  need_sbin slurmctld "apt-get install -y slurmctld"
  need_sbin slurmd "apt-get install -y slurmd"
  need_sbin munged "apt-get install -y munge"
  need sbatch "apt-get install -y slurm-client"
  # Grid Engine (tests/gridengine.rs, tests/harness/gridengine.sh): Debian's
  # binaries behind their wrapper scripts, in /usr/lib/gridengine.
  [ -x /usr/lib/gridengine/sge_qmaster ] || missing+=("sge_qmaster (apt-get install -y gridengine-master)")
  [ -x /usr/lib/gridengine/sge_execd ] || missing+=("sge_execd (apt-get install -y gridengine-exec)")
  need qsub "apt-get install -y gridengine-client"
  need qconf "apt-get install -y gridengine-client"
  need mpirun.openmpi "apt-get install -y openmpi-bin"
  need mpicc.openmpi "apt-get install -y libopenmpi-dev"
  need mpif90.openmpi "apt-get install -y libopenmpi-dev"
  need mpiexec.mpich "apt-get install -y mpich"
  need mpicc.mpich "apt-get install -y libmpich-dev"
  need mpif90.mpich "apt-get install -y libmpich-dev"
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=("PostgreSQL server (apt-get install -y postgresql)")
  # The chaos soak (make chaos-short) mounts its journal's tmpfs in a mount
  # namespace of its own and runs a reaper under another host name.
  [ "$(id -u)" = 0 ] || missing+=("root, for the chaos soak's tmpfs and namespaces (make chaos-short): run make test as root, e.g. sudo make test")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "prerequisites of make $mode missing — install them, then run again:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  echo "(.ci/run installs all of them on Debian: sudo bash .ci/run)" >&2
  exit 1
fi
