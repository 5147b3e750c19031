#!/usr/bin/env bash
# mk/install/uninstall.sh: `make uninstall`. Removes exactly the files and
# links listed in the manifest that `make install` wrote, after checking that
# every entry lies under the prefix (else it removes nothing), then the
# package's own directories (named taskfarm_worker) and the directories that
# `make install` created (install_dirs.txt: PREFIX itself when it was new)
# when they are empty; never a directory that was there before. Nothing
# installed (no manifest): it says so and succeeds, so a second `make
# uninstall` is no error. Inputs in the environment (make exports them):
#   TFW_PREFIX   the PREFIX of make install
#   TFW_DESTDIR  its DESTDIR, may be empty
set -euo pipefail
die() { echo "make uninstall: $*" >&2; exit 1; }
prefix=${TFW_PREFIX%/}
destdir=${TFW_DESTDIR%/}
[[ $prefix == /* ]] || die "PREFIX must be an absolute path, not '$TFW_PREFIX'"
dest=$destdir$prefix
manifest=$dest/share/taskfarm_worker/install_manifest.txt
if [ ! -f "$manifest" ]; then
    echo "make uninstall: nothing was installed in PREFIX=$prefix${destdir:+ DESTDIR=$destdir} ($manifest is missing; give the PREFIX of make install): nothing to do"
    exit 0
fi
# Check the whole list first: remove nothing unless every entry is ours.
while IFS= read -r path; do
    [[ $path == "$prefix"/* && $path != */../* && $path != */./* ]] ||
        die "$manifest lists '$path', which is not under $prefix: nothing removed"
done <"$manifest"
# The directories make install created, read before the list itself goes.
created=()
dirs_list=$dest/share/taskfarm_worker/install_dirs.txt
if [ -f "$dirs_list" ]; then
    while IFS= read -r d; do
        [[ $d == "$prefix" || ($d == "$prefix"/* && $d != */../* && $d != */./*) ]] ||
            die "$dirs_list lists '$d', which is not under $prefix: nothing removed"
        created+=("$d")
    done <"$dirs_list"
fi
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
# Then those make install created, deepest first, when empty.
while IFS= read -r dir; do
    if [ -d "$destdir$dir" ]; then rmdir --ignore-fail-on-non-empty "$destdir$dir"; fi
done < <(printf '%s\n' "${created[@]}" | sed '/^$/d' | sort -ru)
if [ -z "$destdir" ] && [ "$(id -u)" = 0 ] && { [ "$prefix" = /usr/local ] || [ "$prefix" = /usr ]; }; then
    ldconfig 2>/dev/null || true
fi
echo "make uninstall: removed $removed files and links from $dest"
