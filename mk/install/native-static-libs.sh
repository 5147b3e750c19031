#!/usr/bin/env bash
# mk/install/native-static-libs.sh RELEASE_DIR: writes
# RELEASE_DIR/native-static-libs.txt, the system libraries that a program
# linking libtaskfarm_worker.a needs after it (the Libs.private of the .pc
# files, INTERFACE_LINK_LIBRARIES of taskfarm_worker::static), as rustc
# computes them. `make build` runs it after cargo; `make install` reads the
# file (it may run as root without cargo or rustc on its PATH).
#
# rustc prints the list for a static library it links when asked with
# `--print native-static-libs`. Asking cargo for it (`cargo rustc --release
# --lib -- --print native-static-libs`) would change the library's build
# flags and so rebuild it, and again on the next `cargo build`. Instead,
# rustc links a one-line static library over the rlib that cargo has just
# built (RELEASE_DIR/libtaskfarm_worker.rlib and its dependencies in
# RELEASE_DIR/deps): the same crates, so the same native libraries, in well
# under a second.
#
# RUSTC (default rustc) must be the compiler cargo used: another version
# refuses the rlib, and this script fails saying so.
set -euo pipefail

die() { echo "native-static-libs.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 RELEASE_DIR"
release=$1
rustc=${RUSTC:-rustc}
rlib=$release/libtaskfarm_worker.rlib
out=$release/native-static-libs.txt

[ -f "$rlib" ] || die "$rlib is missing: run make build"
command -v "$rustc" >/dev/null 2>&1 || die "'$rustc' is missing: install Rust (https://rustup.rs) or set RUSTC"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tf-native-libs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo 'pub use taskfarm_worker::*;' >"$tmp/probe.rs"
if ! "$rustc" --edition 2021 --crate-type staticlib --crate-name tfw_native_libs_probe \
    -L "dependency=$release/deps" --extern "taskfarm_worker=$rlib" \
    --print native-static-libs -o "$tmp/probe.a" "$tmp/probe.rs" >"$tmp/rustc.log" 2>&1; then
    cat "$tmp/rustc.log" >&2
    die "$rustc could not link a static library over $rlib (is it the rustc that cargo used? $("$rustc" -V))"
fi
libs=$(sed -n 's/^note: native-static-libs: *//p' "$tmp/rustc.log")
[ -n "$libs" ] || { cat "$tmp/rustc.log" >&2; die "$rustc printed no 'note: native-static-libs:' line"; }
printf '%s\n' "$libs" >"$out.tmp"
mv "$out.tmp" "$out"
