# mk/install.mk: `make install`, `make uninstall` and their test. Included by
# the Makefile.
#
#   make install   [PREFIX=/usr/local] [DESTDIR=] [FC=gfortran]
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]
#   make install-tests   tests/install/run.sh: installs into a temporary
#                        prefix, builds every example with pkg-config and with
#                        CMake and runs them against a real server
#
# What `make install` puts under PREFIX (the layout of cargo-c):
#   bin/taskfarm     the command-line tool (statically linked to the library)
#   lib/libtaskfarm_worker.so.X.Y.Z, .so.0 (the SONAME) -> .so.X.Y.Z, .so -> .so.0
#   lib/libtaskfarm_worker.a
#   lib/libtaskfarm_worker_fortran.so.X.Y.Z (+ the same links) and .a: the object
#       code of the Fortran module, compiled by FC
#   include/taskfarm_worker.h, include/taskfarm_worker.hpp
#   include/taskfarm_worker/taskfarm_worker.f90    the Fortran module's source
#   include/taskfarm_worker/gfortran-MAJOR/taskfarm_worker.mod
#   lib/pkgconfig/taskfarm_worker.pc               C and C++
#   lib/pkgconfig/taskfarm_worker-fortran.pc       Fortran (variable fmoddir)
#   lib/cmake/taskfarm_worker/taskfarm_workerConfig.cmake, ...ConfigVersion.cmake
#       imported targets taskfarm_worker::taskfarm_worker (C, C++),
#       taskfarm_worker::static and taskfarm_worker::fortran
#   share/bash-completion/completions/taskfarm, share/zsh/site-functions/_taskfarm,
#   share/fish/vendor_completions.d/taskfarm.fish, share/man/man1/taskfarm.1
#       the tool's completions and man page (mk/install/cli_docs.sh)
#   share/man/man3/tf_*.3   a man page per C function, from the header's
#       comments (mk/reference.py, as docs/reference/; needs python3)
#   share/taskfarm_worker/install_manifest.txt     every file and link above
#
# Fortran .mod files only work with the compiler (and major version) that
# wrote them: the module directory is named after the compiler, recorded in
# the Fortran .pc file, and the CMake package refuses any other Fortran
# compiler. One Fortran compiler per prefix: installing again with another FC
# replaces the module and the Fortran library. Only GNU Fortran is supported.
#
# A new install replaces an older one: files of the previous manifest that the
# new install does not write (an older version's library) are removed.
# `make uninstall` removes exactly the files of the manifest, then the
# package's own directories when empty (never lib/, include/, ...).
#
# `make install` builds first (`make build` and the release `taskfarm`
# binary). Run as root on a tree that root
# does not own (`sudo make install` after `make build`), it does not run
# cargo: cargo may not be on root's PATH and would leave root-owned files in
# target/. It then installs the existing build and fails when that build is
# missing or older than the sources.
#
# The scripts and templates are in mk/install/: install.sh, uninstall.sh,
# check-build.sh, and the *.in templates of the pkg-config and CMake files.
# The static library's system libraries (Libs.private) are the ones rustc
# prints for it (--print native-static-libs): `make build` writes them to
# $(RELEASE_DIR)/native-static-libs.txt (mk/install/native-static-libs.sh,
# from rustc's note).

PREFIX ?= /usr/local
DESTDIR ?=
ifeq ($(origin FC),default)
FC := gfortran
endif

# The version: TFW_VERSION, from the Makefile.

# Root on a tree owned by somebody else: no cargo (see above).
ifeq ($(shell id -u),0)
ifneq ($(shell stat -c %u $(CURDIR)),0)
TFW_INSTALL_BUILD := install-check-build
endif
endif
TFW_INSTALL_BUILD ?= install-build

.PHONY: install uninstall install-build install-check-build install-tests

# The libraries and the command-line tool.
install-build: build
	$(RELEASE_CARGO) build --release --features cli --bin taskfarm

## install: the command-line tool taskfarm, the libraries, headers, Fortran
## module, pkg-config files and CMake package under $(DESTDIR)$(PREFIX)
## (PREFIX=/usr/local)
install: $(TFW_INSTALL_BUILD)
	@mk/install/install.sh

## uninstall: removes what `make install` put under $(DESTDIR)$(PREFIX)
uninstall:
	@mk/install/uninstall.sh

install-check-build:
	@mk/install/check-build.sh $(RELEASE_DIR)

## install-tests: installs into a temporary prefix, builds the examples with
## pkg-config and with CMake, runs them against a real server, uninstalls
install-tests: build
	CC="$(CC)" CXX="$(CXX)" FC="$(FC)" tests/install/run.sh

TEST_TARGETS += install-tests

# The scripts' inputs.
install uninstall: export TFW_PREFIX = $(PREFIX)
install uninstall: export TFW_DESTDIR = $(DESTDIR)
install: export TFW_FC = $(FC)
install: export TFW_VERSION := $(TFW_VERSION)
install: export TFW_RELEASE_DIR = $(RELEASE_DIR)
