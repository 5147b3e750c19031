#!/usr/bin/env bash
# tests/harness/venv.sh: make sure the Python virtual environment of the test
# harness exists and matches tests/harness/requirements.txt, then print its
# path (and nothing else) on stdout.
#
#   venv=$(tests/harness/venv.sh) && "$venv/bin/python" ...
#
# - Location: $TASKFARM_VENV, default <repo root>/.venv (git-ignored).
# - Python: $TASKFARM_PYTHON, default python3 (3.9 or newer; tested with 3.11).
# - Cached: the venv holds a stamp file with the sha256 of requirements.txt,
#   written only after a complete, checked install. When the stamp matches,
#   nothing is done (well under a second). When it is missing or differs, the
#   venv is rebuilt from scratch, so it holds exactly the pinned packages.
# - Safe when several processes call it at once: the rebuild happens under
#   flock(1) on a lock file inside the venv directory; the others wait for it
#   and then find the stamp up to date.
# - Fails loudly (non-zero exit, a message on stderr saying how to fix it) when
#   python3, its venv module, pip or the network to PyPI is missing.
# All progress messages and pip output go to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${TASKFARM_VENV:-$root/.venv}
python=${TASKFARM_PYTHON:-python3}
req=$here/requirements.txt
stamp_name=.taskfarm-requirements.sha256
lock_name=.taskfarm-venv.lock

die() {
    printf 'venv.sh: error: %s\n' "$*" >&2
    exit 1
}
say() {
    printf 'venv.sh: %s\n' "$*" >&2
}

[ -f "$req" ] || die "missing $req"
want=$(sha256sum "$req" | cut -d' ' -f1)

up_to_date() {
    [ -x "$venv/bin/python" ] && [ -f "$venv/$stamp_name" ] &&
        [ "$(cat "$venv/$stamp_name")" = "$want" ]
}

# Fast path: nothing to do, no lock taken.
if up_to_date; then
    printf '%s\n' "$venv"
    exit 0
fi

command -v flock >/dev/null 2>&1 ||
    die "flock not found: install util-linux (e.g. apt-get install util-linux)"
command -v "$python" >/dev/null 2>&1 ||
    die "$python not found: install Python 3 with venv and pip (e.g. apt-get install python3 python3-venv python3-pip), or set TASKFARM_PYTHON to a Python 3 interpreter"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
    die "$python is $("$python" -V 2>&1): Python 3.9 or newer is needed (tested with 3.11); set TASKFARM_PYTHON to a newer interpreter"
"$python" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
    die "$python has no working 'venv'/'ensurepip' module: install it (e.g. apt-get install python3-venv)"

# The lock file lives inside the venv directory (which is git-ignored) and is
# never deleted, so every caller locks the same inode.
mkdir -p "$venv" || die "cannot create $venv: check permissions or set TASKFARM_VENV"
exec 9>>"$venv/$lock_name"
if ! flock -w 900 9; then
    die "timed out after 900 s waiting for another venv.sh holding $venv/$lock_name"
fi

# Another process may have finished the job while we waited.
if up_to_date; then
    printf '%s\n' "$venv"
    exit 0
fi

started=$(date +%s)
say "building the harness venv in $venv (requirements sha256 $want)"

# Start from an empty directory, keeping only the lock file.
find "$venv" -mindepth 1 -maxdepth 1 ! -name "$lock_name" -exec rm -rf {} +

if ! "$python" -m venv "$venv" >&2; then
    die "'$python -m venv $venv' failed: install the venv module with pip (e.g. apt-get install python3-venv), then run $0 again"
fi
vpy=$venv/bin/python
"$vpy" -m pip --version >/dev/null 2>&1 ||
    die "the new venv has no pip: install python3-venv/ensurepip (e.g. apt-get install python3-venv python3-pip) and run $0 again"

pip_args=(--disable-pip-version-check --no-input --quiet)
pip_pin=$(grep -E '^pip==' "$req" || true)
if [ -n "$pip_pin" ]; then
    "$vpy" -m pip install "${pip_args[@]}" "$pip_pin" >&2 ||
        die "could not install $pip_pin into $venv: is PyPI reachable (proxy settings, PIP_INDEX_URL)? Then run $0 again"
fi
# --no-deps: every package must be pinned in requirements.txt; a missing pin
# then shows up in `pip check` below instead of being resolved silently.
"$vpy" -m pip install "${pip_args[@]}" --no-deps -r "$req" >&2 ||
    die "pip install -r $req failed (see above): is PyPI reachable (proxy settings, PIP_INDEX_URL)? Is a pinned version missing for this Python ($("$vpy" -V 2>&1))? Fix and run $0 again"
out=$("$vpy" -m pip check 2>&1) ||
    die "the pinned packages in $req are incomplete or inconsistent: pin the missing package or fix the versions. pip check says:
$out"
out=$("$vpy" -c 'import taskfarm, taskfarm_worker, flask, gunicorn, psycopg2' 2>&1) ||
    die "the venv in $venv cannot import taskfarm, gunicorn or psycopg2:
$out"

# Written last: its presence means the venv is complete.
printf '%s\n' "$want" >"$venv/$stamp_name.tmp"
mv "$venv/$stamp_name.tmp" "$venv/$stamp_name"
say "venv ready in $(($(date +%s) - started)) s"
printf '%s\n' "$venv"
