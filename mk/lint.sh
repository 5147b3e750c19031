#!/usr/bin/env bash
# mk/lint.sh: the lint of the scripts (`make lint` runs it after rustfmt and
# clippy). Fails on any finding:
#   - ruff on every Python file, with the rules of ruff.toml; ruff is pinned in
#     tests/harness/requirements.txt and runs from the harness venv
#     (tests/harness/venv.sh builds it when needed);
#   - shellcheck (from Debian: apt-get install -y shellcheck) on every shell
#     script: the *.sh files and the executables whose first line names sh or
#     bash (.ci/run), following `source`d files.
# Both run; the status is non-zero when either found something. The build trees (target/, build/) and the venv are left out.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
die() { echo "mk/lint.sh: $*" >&2; exit 1; }

command -v shellcheck >/dev/null 2>&1 || die "shellcheck is missing: apt-get install -y shellcheck"
venv=$(tests/harness/venv.sh) || die "tests/harness/venv.sh could not build the harness venv (it holds ruff)"

status=0
echo "ruff check: $("$venv/bin/ruff" --version)"
"$venv/bin/ruff" check . || status=1

# The shell scripts: *.sh, and executables whose first line names sh or bash (.ci/run).
scripts=()
while IFS= read -r file; do
    if [[ $file == *.sh ]] || { [ -x "$file" ] && head -n 1 "$file" | grep -qE '^#!.*[/ ](ba)?sh( |$)'; }; then
        scripts+=("$file")
    fi
done < <(find . \( -path ./target -o -path ./build -o -path ./.venv -o -path ./.git \) -prune -o \
    -type f -print | sed 's|^\./||' | sort)
echo "shellcheck: ${#scripts[@]} scripts ($(shellcheck --version | sed -n 's/^version: //p'))"
shellcheck --external-sources "${scripts[@]}" || status=1
exit $status
