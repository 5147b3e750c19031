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
#       the tool's completions and man page (mk/cli_docs.sh)
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
# The install and uninstall scripts are plain bash in the define blocks below;
# make hands them over unexpanded ($(value ...)) in the environment.

PREFIX ?= /usr/local
DESTDIR ?=
ifeq ($(origin FC),default)
FC := gfortran
endif

# The version, from the [package] table of Cargo.toml.
TFW_VERSION := $(shell awk -F'"' '/^\[/ { p = ($$0 == "[package]") } p && /^version *=/ { print $$2; exit }' Cargo.toml)

# The system libraries the static library needs (Libs.private), as printed by
#   cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs
# (rustc 1.95, Linux, glibc).
TFW_STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

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
	$(CARGO) build --release --bin taskfarm

## install: the command-line tool taskfarm, the libraries, headers, Fortran
## module, pkg-config files and CMake package under $(DESTDIR)$(PREFIX)
## (PREFIX=/usr/local)
install: $(TFW_INSTALL_BUILD)
	@bash -c "$$TFW_INSTALL_SH"

## uninstall: removes what `make install` put under $(DESTDIR)$(PREFIX)
uninstall:
	@bash -c "$$TFW_UNINSTALL_SH"

install-check-build:
	@for lib in $(RELEASE_DIR)/libtaskfarm_worker.so $(RELEASE_DIR)/taskfarm; do \
	if [ ! -f "$$lib" ] || [ ! -f $(RELEASE_DIR)/libtaskfarm_worker.a ]; then \
		echo "make install: $$lib or libtaskfarm_worker.a is missing: run 'make install-build' as the owner of $(CURDIR) first" >&2; exit 1; \
	fi; \
	newer=$$(find src build.rs Cargo.toml Cargo.lock cbindgen.toml -newer "$$lib" -print -quit); \
	if [ -n "$$newer" ]; then \
		echo "make install: $$newer is newer than $$lib: run 'make install-build' as the owner of $(CURDIR) first" >&2; exit 1; \
	fi; \
	done

## install-tests: installs into a temporary prefix, builds the examples with
## pkg-config and with CMake, runs them against a real server, uninstalls
install-tests: build
	CC="$(CC)" CXX="$(CXX)" FC="$(FC)" tests/install/run.sh

TEST_TARGETS += install-tests

# The scripts' inputs.
install uninstall: export TFW_PREFIX = $(PREFIX)
install uninstall: export TFW_DESTDIR = $(DESTDIR)
install uninstall: export TFW_FC = $(FC)
install: export TFW_VERSION := $(TFW_VERSION)
install: export TFW_RELEASE_DIR = $(RELEASE_DIR)
install: export TFW_STATIC_LIBS := $(TFW_STATIC_LIBS)
install: export TFW_INSTALL_SH = $(value TFW_INSTALL_SCRIPT)
uninstall: export TFW_UNINSTALL_SH = $(value TFW_UNINSTALL_SCRIPT)

define TFW_INSTALL_SCRIPT
set -euo pipefail
die() { echo "make install: $*" >&2; exit 1; }

prefix=${TFW_PREFIX%/}
destdir=${TFW_DESTDIR%/}
version=$TFW_VERSION
release=$TFW_RELEASE_DIR
fc=$TFW_FC
[[ $prefix == /* ]] || die "PREFIX must be an absolute path, not '$TFW_PREFIX'"
[[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] ||
    die "could not read the version from Cargo.toml (got '$version')"
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}

lib=$release/libtaskfarm_worker.so
[ -f "$lib" ] && [ -f "$release/libtaskfarm_worker.a" ] || die "$lib or .a missing: run make build"
[ -x "$release/taskfarm" ] || die "$release/taskfarm missing: run make install-build"
soname=$(LC_ALL=C readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[[ $soname == libtaskfarm_worker.so.* ]] || die "$lib has no SONAME libtaskfarm_worker.so.N (readelf -d)"
abi=${soname#libtaskfarm_worker.so.}

# The Fortran compiler: its name and major version name the module directory.
command -v "$fc" >/dev/null 2>&1 ||
    die "the Fortran compiler '$fc' is missing (apt-get install -y gfortran, or FC=...): the Fortran module is part of the install"
"$fc" --version 2>/dev/null | head -n 1 | grep -q '^GNU Fortran' ||
    die "FC=$fc is not GNU Fortran: only gfortran is supported (its .mod files are compiler specific)"
fc_version=$("$fc" -dumpfullversion 2>/dev/null || "$fc" -dumpversion)
fc_major=${fc_version%%.*}
modtag=gfortran-$fc_major

stage=$(mktemp -d "${TMPDIR:-/tmp}/tf-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# The Fortran module: .mod, and its object code as a static and a shared
# library (the latter finds libtaskfarm_worker.so.N beside itself).
flib=libtaskfarm_worker_fortran
mkdir -p "$stage/mod"
"$fc" -std=f2008 -O2 -fPIC -J "$stage/mod" -c fortran/taskfarm_worker.f90 -o "$stage/taskfarm_worker.o"
ar rcs "$stage/$flib.a" "$stage/taskfarm_worker.o"
"$fc" -shared -Wl,-soname,"$flib.so.$abi" -Wl,-rpath,'$ORIGIN' -o "$stage/$flib.so.$version" \
    "$stage/taskfarm_worker.o" -L"$release" -ltaskfarm_worker
echo "make install: compiled the Fortran module with $("$fc" --version | head -n 1)"

prefix_sed=$(printf '%s' "$prefix" | sed 's/[&|\\]/\\&/g')
fill() { # template on stdin -> stdout, @NAME@ replaced
    sed -e "s|@PREFIX@|$prefix_sed|g" -e "s|@VERSION@|$version|g" -e "s|@MAJOR@|$major|g" \
        -e "s|@MINOR@|$minor|g" -e "s|@SONAME@|$soname|g" -e "s|@ABI@|$abi|g" \
        -e "s|@MODTAG@|$modtag|g" -e "s|@FC_VERSION@|$fc_version|g" -e "s|@FC_MAJOR@|$fc_major|g" \
        -e "s|@STATIC_LIBS@|$TFW_STATIC_LIBS|g" \
        -e "s|@STATIC_LIBS_CMAKE@|$(echo $TFW_STATIC_LIBS | sed 's/-l//g; s/ /;/g')|g" \
        -e "s|@SIZEOF_VOID_P@|$(($(getconf LONG_BIT) / 8))|g"
}

fill >"$stage/taskfarm_worker.pc" <<'EOF'
prefix=@PREFIX@
exec_prefix=${prefix}
libdir=${exec_prefix}/lib
includedir=${prefix}/include

Name: taskfarm_worker
Description: Worker client of the taskfarm server for C and C++ (taskfarm_worker.h, taskfarm_worker.hpp)
Version: @VERSION@
Cflags: -I${includedir}
Libs: -L${libdir} -ltaskfarm_worker
Libs.private: @STATIC_LIBS@
EOF

fill >"$stage/taskfarm_worker-fortran.pc" <<'EOF'
prefix=@PREFIX@
exec_prefix=${prefix}
libdir=${exec_prefix}/lib
includedir=${prefix}/include
# taskfarm_worker.mod, written by GNU Fortran @FC_VERSION@: use gfortran @FC_MAJOR@
fmoddir=${includedir}/taskfarm_worker/@MODTAG@
fcompiler=GNU
fcompiler_version=@FC_VERSION@
fsource=${includedir}/taskfarm_worker/taskfarm_worker.f90

Name: taskfarm_worker-fortran
Description: Fortran module taskfarm_worker (compiled by GNU Fortran @FC_VERSION@) over libtaskfarm_worker
Version: @VERSION@
Cflags: -I${fmoddir}
Libs: -L${libdir} -ltaskfarm_worker_fortran -ltaskfarm_worker
Libs.private: @STATIC_LIBS@
EOF

fill >"$stage/taskfarm_workerConfigVersion.cmake" <<'EOF'
# taskfarm_workerConfigVersion.cmake (taskfarm_worker @VERSION@, written by make install).
# Compatible with a request for the same major version and, while the major
# version is 0, the same minor version, not newer than @VERSION@.
set(PACKAGE_VERSION "@VERSION@")
set(PACKAGE_VERSION_COMPATIBLE FALSE)
if(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION
       AND PACKAGE_FIND_VERSION_MAJOR EQUAL @MAJOR@
       AND (NOT @MAJOR@ EQUAL 0 OR PACKAGE_FIND_VERSION_COUNT LESS 2
            OR PACKAGE_FIND_VERSION_MINOR EQUAL @MINOR@))
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
# The library is built for @SIZEOF_VOID_P@-byte pointers.
if(CMAKE_SIZEOF_VOID_P AND NOT CMAKE_SIZEOF_VOID_P EQUAL @SIZEOF_VOID_P@)
  math(EXPR _tfw_bits "@SIZEOF_VOID_P@ * 8")
  set(PACKAGE_VERSION "${PACKAGE_VERSION} (${_tfw_bits} bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
endif()
EOF

fill >"$stage/taskfarm_workerConfig.cmake" <<'EOF'
# taskfarm_workerConfig.cmake (taskfarm_worker @VERSION@, written by make install).
#
#   find_package(taskfarm_worker 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE taskfarm_worker::taskfarm_worker)   # C, C++
#   target_link_libraries(fapp PRIVATE taskfarm_worker::fortran)          # Fortran
#
# Imported targets:
#   taskfarm_worker::taskfarm_worker  libtaskfarm_worker.so and include/
#                                     (taskfarm_worker.h, taskfarm_worker.hpp)
#   taskfarm_worker::static           libtaskfarm_worker.a and the system libraries it needs
#   taskfarm_worker::fortran          the Fortran module taskfarm_worker (.mod written by
#                                     GNU Fortran @FC_VERSION@) and its library; only when
#                                     the project enables Fortran, and only with gfortran @FC_MAJOR@
# Components: C and CXX (always found) and Fortran. Without COMPONENTS, a
# project that enables Fortran gets the Fortran target too, and with it the
# compiler check; COMPONENTS C asks for the C/C++ targets alone.
# Variables: taskfarm_worker_VERSION, taskfarm_worker_INCLUDE_DIR,
# taskfarm_worker_Fortran_MODULE_DIR, taskfarm_worker_Fortran_COMPILER_ID/_VERSION.

get_filename_component(_tfw_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(taskfarm_worker_INCLUDE_DIR "${_tfw_prefix}/include")
set(taskfarm_worker_Fortran_MODULE_DIR "${_tfw_prefix}/include/taskfarm_worker/@MODTAG@")
set(taskfarm_worker_Fortran_COMPILER_ID "GNU")
set(taskfarm_worker_Fortran_COMPILER_VERSION "@FC_VERSION@")

foreach(_tfw_component IN LISTS taskfarm_worker_FIND_COMPONENTS)
  if(NOT _tfw_component MATCHES "^(C|CXX|Fortran)$")
    set(taskfarm_worker_FOUND FALSE)
    set(taskfarm_worker_NOT_FOUND_MESSAGE
        "taskfarm_worker has no component '${_tfw_component}' (it has C, CXX and Fortran)")
    return()
  endif()
endforeach()

if(NOT EXISTS "${_tfw_prefix}/lib/libtaskfarm_worker.so.@VERSION@")
  set(taskfarm_worker_FOUND FALSE)
  set(taskfarm_worker_NOT_FOUND_MESSAGE
      "${_tfw_prefix}/lib/libtaskfarm_worker.so.@VERSION@ is missing: reinstall taskfarm_worker")
  return()
endif()

if(NOT TARGET taskfarm_worker::taskfarm_worker)
  add_library(taskfarm_worker::taskfarm_worker SHARED IMPORTED)
  set_target_properties(taskfarm_worker::taskfarm_worker PROPERTIES
    IMPORTED_LOCATION "${_tfw_prefix}/lib/libtaskfarm_worker.so.@VERSION@"
    IMPORTED_SONAME "@SONAME@"
    INTERFACE_INCLUDE_DIRECTORIES "${_tfw_prefix}/include")
endif()
if(NOT TARGET taskfarm_worker::static)
  add_library(taskfarm_worker::static STATIC IMPORTED)
  set_target_properties(taskfarm_worker::static PROPERTIES
    IMPORTED_LOCATION "${_tfw_prefix}/lib/libtaskfarm_worker.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_tfw_prefix}/include"
    INTERFACE_LINK_LIBRARIES "@STATIC_LIBS_CMAKE@")
endif()
set(taskfarm_worker_C_FOUND TRUE)
set(taskfarm_worker_CXX_FOUND TRUE)
set(taskfarm_worker_Fortran_FOUND FALSE)

# Fortran: the .mod file works only with the compiler that wrote it.
get_property(_tfw_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
list(FIND _tfw_languages Fortran _tfw_fortran_enabled)
list(FIND taskfarm_worker_FIND_COMPONENTS Fortran _tfw_fortran_asked)
if(_tfw_fortran_asked GREATER -1 AND _tfw_fortran_enabled EQUAL -1)
  message(FATAL_ERROR
    "taskfarm_worker: the Fortran component needs the Fortran language: "
    "add Fortran to project(... LANGUAGES ...) or call enable_language(Fortran) "
    "before find_package(taskfarm_worker ... COMPONENTS Fortran).")
endif()
if(_tfw_fortran_enabled GREATER -1
   AND (_tfw_fortran_asked GREATER -1 OR NOT taskfarm_worker_FIND_COMPONENTS))
  string(REGEX MATCH "^[0-9]+" _tfw_fc_major "${CMAKE_Fortran_COMPILER_VERSION}")
  if(NOT CMAKE_Fortran_COMPILER_ID STREQUAL "GNU" OR NOT _tfw_fc_major STREQUAL "@FC_MAJOR@")
    message(FATAL_ERROR
      "taskfarm_worker: wrong Fortran compiler.\n"
      "The Fortran module taskfarm_worker.mod in ${taskfarm_worker_Fortran_MODULE_DIR} "
      "was compiled by GNU Fortran @FC_VERSION@ (gfortran @FC_MAJOR@), but this project "
      "compiles Fortran with ${CMAKE_Fortran_COMPILER_ID} ${CMAKE_Fortran_COMPILER_VERSION} "
      "(${CMAKE_Fortran_COMPILER}). A .mod file can only be read by the compiler, and "
      "major version, that wrote it. Either\n"
      "  - configure with -DCMAKE_Fortran_COMPILER=<gfortran @FC_MAJOR@>, or\n"
      "  - install taskfarm_worker for your compiler: make install FC=<your compiler> PREFIX=..., or\n"
      "  - if this project does not use the Fortran module: find_package(taskfarm_worker COMPONENTS C)")
  endif()
  if(NOT TARGET taskfarm_worker::fortran)
    add_library(taskfarm_worker::fortran SHARED IMPORTED)
    set_target_properties(taskfarm_worker::fortran PROPERTIES
      IMPORTED_LOCATION "${_tfw_prefix}/lib/libtaskfarm_worker_fortran.so.@VERSION@"
      IMPORTED_SONAME "libtaskfarm_worker_fortran.so.@ABI@"
      INTERFACE_INCLUDE_DIRECTORIES "${taskfarm_worker_Fortran_MODULE_DIR}"
      INTERFACE_LINK_LIBRARIES "taskfarm_worker::taskfarm_worker")
  endif()
  set(taskfarm_worker_Fortran_FOUND TRUE)
endif()

foreach(_tfw_component IN LISTS taskfarm_worker_FIND_COMPONENTS)
  if(taskfarm_worker_FIND_REQUIRED_${_tfw_component} AND NOT taskfarm_worker_${_tfw_component}_FOUND)
    set(taskfarm_worker_FOUND FALSE)
    set(taskfarm_worker_NOT_FOUND_MESSAGE "component ${_tfw_component} not found")
  endif()
endforeach()
unset(_tfw_component)
unset(_tfw_languages)
unset(_tfw_fortran_enabled)
unset(_tfw_fortran_asked)
unset(_tfw_fc_major)
unset(_tfw_prefix)
EOF

# Install: every file and link goes into the manifest (paths under PREFIX).
dest=$destdir$prefix
share=share/taskfarm_worker
manifest=$share/install_manifest.txt
installed=()
put() { # mode source path-under-prefix
    install -D -m "$1" "$2" "$dest/$3"
    installed+=("$prefix/$3")
}
link() { # target path-under-prefix
    mkdir -p "$(dirname "$dest/$2")"
    ln -sfn "$1" "$dest/$2"
    installed+=("$prefix/$2")
}

put 755 "$release/taskfarm" bin/taskfarm
put 755 "$lib" "lib/libtaskfarm_worker.so.$version"
[ "$soname" = "libtaskfarm_worker.so.$version" ] || link "libtaskfarm_worker.so.$version" "lib/$soname"
link "$soname" lib/libtaskfarm_worker.so
put 644 "$release/libtaskfarm_worker.a" lib/libtaskfarm_worker.a
put 755 "$stage/$flib.so.$version" "lib/$flib.so.$version"
[ "$abi" = "$version" ] || link "$flib.so.$version" "lib/$flib.so.$abi"
link "$flib.so.$abi" "lib/$flib.so"
put 644 "$stage/$flib.a" "lib/$flib.a"
put 644 include/taskfarm_worker.h include/taskfarm_worker.h
put 644 include/taskfarm_worker.hpp include/taskfarm_worker.hpp
put 644 fortran/taskfarm_worker.f90 include/taskfarm_worker/taskfarm_worker.f90
put 644 "$stage/mod/taskfarm_worker.mod" "include/taskfarm_worker/$modtag/taskfarm_worker.mod"
put 644 "$stage/taskfarm_worker.pc" lib/pkgconfig/taskfarm_worker.pc
put 644 "$stage/taskfarm_worker-fortran.pc" lib/pkgconfig/taskfarm_worker-fortran.pc
put 644 "$stage/taskfarm_workerConfig.cmake" lib/cmake/taskfarm_worker/taskfarm_workerConfig.cmake
put 644 "$stage/taskfarm_workerConfigVersion.cmake" lib/cmake/taskfarm_worker/taskfarm_workerConfigVersion.cmake
# The tool's shell completions and man page, laid out as under PREFIX (mk/cli_docs.sh).
mk/cli_docs.sh "$release/taskfarm" "$stage/cli_docs"
while IFS= read -r f; do put 644 "$stage/cli_docs/$f" "$f"; done < <(cd "$stage/cli_docs" && find . -type f -printf '%P\n' | sort)

# Files of a previous install that this one did not write (another version,
# another Fortran compiler's module directory) go.
if [ -f "$dest/$manifest" ]; then
    while IFS= read -r old; do
        [[ $old == "$prefix"/* && $old != */../* ]] || continue
        keep=0
        for new in "${installed[@]}"; do [ "$new" = "$old" ] && keep=1 && break; done
        if [ $keep = 0 ] && { [ -e "$destdir$old" ] || [ -L "$destdir$old" ]; }; then
            rm -f "$destdir$old"
            rmdir --ignore-fail-on-non-empty "$(dirname "$destdir$old")" 2>/dev/null || true
            echo "make install: removed $old (previous install)"
        fi
    done <"$dest/$manifest"
fi
mkdir -p "$dest/$share"
printf '%s\n' "${installed[@]}" "$prefix/$manifest" >"$dest/$manifest"

# The loader cache, for a system prefix.
if [ -z "$destdir" ] && [ "$(id -u)" = 0 ] && { [ "$prefix" = /usr/local ] || [ "$prefix" = /usr ]; }; then
    ldconfig 2>/dev/null || true
fi
echo "make install: taskfarm_worker $version in $dest ($((${#installed[@]} + 1)) files and links," \
    "listed in $dest/$manifest)"
endef

define TFW_UNINSTALL_SCRIPT
set -euo pipefail
die() { echo "make uninstall: $*" >&2; exit 1; }
prefix=${TFW_PREFIX%/}
destdir=${TFW_DESTDIR%/}
[[ $prefix == /* ]] || die "PREFIX must be an absolute path, not '$TFW_PREFIX'"
dest=$destdir$prefix
manifest=$dest/share/taskfarm_worker/install_manifest.txt
[ -f "$manifest" ] ||
    die "$manifest is missing: nothing was installed in PREFIX=$prefix${destdir:+ DESTDIR=$destdir} (give the PREFIX of make install)"
# Check the whole list first: remove nothing unless every entry is ours.
while IFS= read -r path; do
    [[ $path == "$prefix"/* && $path != */../* && $path != */./* ]] ||
        die "$manifest lists '$path', which is not under $prefix: nothing removed"
done <"$manifest"
removed=0
dirs=()
while IFS= read -r path; do
    if [ -e "$destdir$path" ] || [ -L "$destdir$path" ]; then
        rm -f "$destdir$path"
        removed=$((removed + 1))
    fi
    dirs+=("$(dirname "${path#"$prefix"/}")")
done <"$manifest"
# The package's own directories (named taskfarm_worker...), deepest first, when empty.
while IFS= read -r dir; do
    if [ -d "$dest/$dir" ]; then rmdir --ignore-fail-on-non-empty "$dest/$dir"; fi
done < <(printf '%s\n' "${dirs[@]}" | grep -E '(^|/)taskfarm_worker(/|$)' | sort -ru)
if [ -z "$destdir" ] && [ "$(id -u)" = 0 ] && { [ "$prefix" = /usr/local ] || [ "$prefix" = /usr ]; }; then
    ldconfig 2>/dev/null || true
fi
echo "make uninstall: removed $removed files and links from $dest"
endef
