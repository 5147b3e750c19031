#!/usr/bin/env bash
# mk/install/native-static-libs.sh RELEASE_DIR COMMAND...: `make build` runs
# its cargo command through this script, which writes
# RELEASE_DIR/native-static-libs.txt, the system libraries that a program
# linking libtaskfarm_worker.a needs after it (the Libs.private of the .pc
# files, INTERFACE_LINK_LIBRARIES of taskfarm_worker::static), as rustc
# computes them; `make install` reads the file (it may run as root without
# cargo or rustc on its PATH).
#
# COMMAND (`cargo rustc --release --lib --crate-type cdylib,staticlib --
# --print native-static-libs ...`) makes rustc print the list as a note when
# it links the static library; cargo shows the note again when nothing was
# rebuilt (it replays a unit's messages), so the list comes with every `make
# build`. The command's stderr is shown as it comes and kept; the script
# fails when the command fails or printed no list.
set -euo pipefail

die() { echo "native-static-libs.sh: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 RELEASE_DIR COMMAND..."
release=$1
shift
out=$release/native-static-libs.txt

log=$(mktemp "${TMPDIR:-/tmp}/tf-build-log.XXXXXX")
trap 'rm -f "$log"' EXIT
"$@" 2> >(tee "$log" >&2)
# The process substitution's tee may still be writing: wait for its end.
wait
libs=$(sed -n 's/^note: native-static-libs: *//p' "$log" | tail -n 1)
[ -n "$libs" ] || die "'$*' printed no 'note: native-static-libs:' line"
mkdir -p "$release"
# Written whole, then renamed: `make install` of two suites may run it at once.
tmp_out=$(mktemp "$out.XXXXXX")
printf '%s\n' "$libs" >"$tmp_out"
mv "$tmp_out" "$out"
