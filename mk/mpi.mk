# mk/mpi.mk: the MPI examples (examples/mpi_worker.c, examples/mpi_worker.f90).
#
#   make mpi-examples   builds both with Open MPI's and MPICH's compiler
#                       wrappers against the tree: build/mpi/openmpi/ and
#                       build/mpi/mpich/, each with mpi_worker and mpi_worker_f;
#                       also build/mpi/worker (examples/worker.c), to try
#                       the Slurm scripts with
#
# The tests that run them (tests/mpi.rs: mpirun and mpiexec.mpich;
# tests/slurm.rs: srun inside sbatch) build their own copies with the same
# script, tests/mpi/build.sh.

.PHONY: mpi-examples

## mpi-examples: the MPI examples in C and Fortran for Open MPI and MPICH (build/mpi/)
mpi-examples: build
	tests/mpi/build.sh build/mpi
