#!/usr/bin/env bash
# mk/install/install.sh: `make install` (mk/install.mk says what goes where
# and why). Run from the repository root, after the build, with its inputs in
# the environment (make exports them):
#   TFW_PREFIX       absolute install prefix (PREFIX)
#   TFW_DESTDIR      staging directory, may be empty (DESTDIR)
#   TFW_FC           the Fortran compiler (FC): GNU Fortran only
#   TFW_VERSION      the package version X.Y.Z (from Cargo.toml)
#   TFW_RELEASE_DIR  the cargo release directory (target/release)
# The pkg-config and CMake files are filled from the templates beside this
# script (*.in, @NAME@ replaced); Libs.private comes from
# TFW_RELEASE_DIR/native-static-libs.txt (written by `make build`).
set -euo pipefail
die() { echo "make install: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
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
{ [ -f "$lib" ] && [ -f "$release/libtaskfarm_worker.a" ]; } || die "$lib or .a missing: run make build"
[ -x "$release/taskfarm" ] || die "$release/taskfarm missing: run make install-build"
soname=$(LC_ALL=C readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[[ $soname == libtaskfarm_worker.so.* ]] || die "$lib has no SONAME libtaskfarm_worker.so.N (readelf -d)"
abi=${soname#libtaskfarm_worker.so.}

# The system libraries of the static library, as rustc printed them.
libs_file=$release/native-static-libs.txt
{ [ -s "$libs_file" ] && [ ! "$libs_file" -ot "$release/libtaskfarm_worker.a" ]; } ||
    die "$libs_file is missing or older than libtaskfarm_worker.a: run make build"
static_libs=$(cat "$libs_file")
read -ra static_words <<<"$static_libs"
static_cmake=()
for word in "${static_words[@]}"; do
    [[ $word == -l?* ]] || die "$libs_file has '$word', not a -lNAME: cannot write it for CMake"
    static_cmake+=("${word#-l}")
done
static_libs_cmake=$(IFS=';' && echo "${static_cmake[*]}")

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
# shellcheck disable=SC2016 # $ORIGIN is for the loader, not the shell
"$fc" -shared -Wl,-soname,"$flib.so.$abi" -Wl,-rpath,'$ORIGIN' -o "$stage/$flib.so.$version" \
    "$stage/taskfarm_worker.o" -L"$release" -ltaskfarm_worker
echo "make install: compiled the Fortran module with $("$fc" --version | head -n 1)"

# The templates: @NAME@ replaced by its value.
sed_escape() { printf '%s' "$1" | sed 's/[&|\\]/\\&/g'; }
fill() { # TEMPLATE OUTPUT
    sed -e "s|@PREFIX@|$(sed_escape "$prefix")|g" -e "s|@VERSION@|$version|g" \
        -e "s|@MAJOR@|$major|g" -e "s|@MINOR@|$minor|g" -e "s|@SONAME@|$soname|g" -e "s|@ABI@|$abi|g" \
        -e "s|@MODTAG@|$modtag|g" -e "s|@FC_VERSION@|$fc_version|g" -e "s|@FC_MAJOR@|$fc_major|g" \
        -e "s|@STATIC_LIBS@|$(sed_escape "$static_libs")|g" \
        -e "s|@STATIC_LIBS_CMAKE@|$(sed_escape "$static_libs_cmake")|g" \
        -e "s|@SIZEOF_VOID_P@|$(($(getconf LONG_BIT) / 8))|g" "$here/$1.in" >"$stage/$1"
    ! grep -n '@[A-Z_]*@' "$stage/$1" || die "$here/$1.in has a @NAME@ that install.sh does not fill"
}
fill taskfarm_worker.pc
fill taskfarm_worker-fortran.pc
fill taskfarm_workerConfigVersion.cmake
fill taskfarm_workerConfig.cmake

# Install: every file and link goes into the manifest (paths under PREFIX).
dest=$destdir$prefix
share=share/taskfarm_worker
manifest=$share/install_manifest.txt
dirs_list=$share/install_dirs.txt
installed=()
# The directories this install creates (PREFIX itself included when it is
# new), and those a previous install created and listed: `make uninstall`
# removes them when empty, and no other directory.
created=()
if [ -f "$dest/$dirs_list" ]; then
    while IFS= read -r d; do
        [[ $d == "$prefix" || $d == "$prefix"/* ]] && [ -d "$destdir$d" ] && created+=("$d")
    done <"$dest/$dirs_list"
fi
note_new_dirs() { # path-under-prefix
    local d
    d=$(dirname "$prefix/$1")
    while [[ $d == "$prefix" || $d == "$prefix"/* ]] && [ ! -d "$destdir$d" ]; do
        created+=("$d")
        d=$(dirname "$d")
    done
}
put() { # mode source path-under-prefix
    note_new_dirs "$3"
    install -D -m "$1" "$2" "$dest/$3"
    installed+=("$prefix/$3")
}
link() { # target path-under-prefix
    note_new_dirs "$2"
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
# The tool's shell completions and man page, laid out as under PREFIX (mk/install/cli_docs.sh).
"$here/cli_docs.sh" "$release/taskfarm" "$stage/cli_docs"
while IFS= read -r f; do put 644 "$stage/cli_docs/$f" "$f"; done < <(cd "$stage/cli_docs" && find . -type f -printf '%P\n' | sort)
# A man page per C function (man 3 tf_worker_task), made from the header's
# comments as docs/reference/ is (mk/reference.py).
command -v python3 >/dev/null 2>&1 ||
    die "python3 is missing (apt-get install -y python3): it writes the man pages of the C functions"
python3 "$here/../reference.py" --man "$stage/reference"
while IFS= read -r f; do put 644 "$stage/reference/man3/$f" "share/man/man3/$f"; done < <(cd "$stage/reference/man3" && find . -type f -printf '%P\n' | sort)

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
printf '%s\n' "${created[@]}" | sort -u | sed '/^$/d' >"$dest/$dirs_list"
printf '%s\n' "${installed[@]}" "$prefix/$dirs_list" "$prefix/$manifest" >"$dest/$manifest"

# The loader cache, for a system prefix.
if [ -z "$destdir" ] && [ "$(id -u)" = 0 ] && { [ "$prefix" = /usr/local ] || [ "$prefix" = /usr ]; }; then
    ldconfig 2>/dev/null || true
fi
echo "make install: taskfarm_worker $version in $dest ($((${#installed[@]} + 1)) files and links," \
    "listed in $dest/$manifest)"
