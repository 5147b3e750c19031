# mk/fortran.mk: the Fortran module `taskfarm_worker` (fortran/taskfarm_worker.f90).
#
#   make fortran-tests   builds the module, tests/fortran/wrapper_test.f90 and
#                        examples/worker.f90 into build/fortran/ and runs them
#                        against a real taskfarm server, also under valgrind
#
# FC: the Fortran compiler (gfortran by default). Make's built-in default for
# FC is f77, so `FC ?= gfortran` would never apply: replace only that default.
ifeq ($(origin FC),default)
FC := gfortran
endif
# (and when make runs without built-in variables, make -R)
FC ?= gfortran

.PHONY: fortran-tests
TEST_TARGETS += fortran-tests

## fortran-tests: the Fortran module against the real server, plain and under valgrind
fortran-tests: build
	FC="$(FC)" tests/fortran/run.sh
