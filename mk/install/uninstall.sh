#!/usr/bin/env bash
# mk/install/uninstall.sh: `make uninstall`. Removes exactly the files and
# links listed in the manifest that `make install` wrote, after checking that
# every entry lies under the prefix (else it removes nothing), then the
# package's own directories (named taskfarm_worker) when empty; never lib/,
# include/, ... themselves. Inputs in the environment (make exports them):
#   TFW_PREFIX   the PREFIX of make install
#   TFW_DESTDIR  its DESTDIR, may be empty
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
