# mk/fpm.mk: the Fortran module as an fpm package (fpm.toml at the root).
#
#   make fpm-tests   tests/fpm/run.sh: installs into a temporary prefix, builds
#                    a new fpm project that depends on this repository by path
#                    (fpm from PyPI, pinned in tests/harness/requirements.txt)
#                    and runs it against a real taskfarm server

.PHONY: fpm-tests
TEST_TARGETS += fpm-tests

## fpm-tests: an fpm project using the module, built against an installed tree and run on a real server
fpm-tests: build
	FC="$(FC)" tests/fpm/run.sh
