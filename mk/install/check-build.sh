#!/usr/bin/env bash
# mk/install/check-build.sh RELEASE_DIR: `make install` run as root on a tree
# that root does not own does not run cargo (mk/install.mk says why). It
# installs the existing build instead, and this script fails, saying what to
# run, when that build is missing or older than the sources.
set -euo pipefail
die() {
    echo "make install: $*: run 'make install-build' as the owner of $PWD first" >&2
    exit 1
}
[ $# -eq 1 ] || { echo "usage: $0 RELEASE_DIR" >&2; exit 2; }
release=$1
for built in "$release/libtaskfarm_worker.so" "$release/taskfarm"; do
    if [ ! -f "$built" ] || [ ! -f "$release/libtaskfarm_worker.a" ]; then
        die "$built or libtaskfarm_worker.a is missing"
    fi
    newer=$(find src Cargo.toml Cargo.lock -newer "$built" -print -quit)
    [ -z "$newer" ] || die "$newer is newer than $built"
done
libs_file=$release/native-static-libs.txt
{ [ -s "$libs_file" ] && [ ! "$libs_file" -ot "$release/libtaskfarm_worker.a" ]; } ||
    die "$libs_file is missing or older than libtaskfarm_worker.a"
