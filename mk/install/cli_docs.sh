#!/usr/bin/env bash
# mk/install/cli_docs.sh TASKFARM DIR: the shell completions and the man page of the
# command-line tool TASKFARM (`taskfarm completions SHELL`, `taskfarm
# manpage`), written into DIR laid out as under PREFIX, where each tool looks:
#   share/bash-completion/completions/taskfarm   bash-completion (loaded on demand)
#   share/zsh/site-functions/_taskfarm           zsh ($fpath)
#   share/fish/vendor_completions.d/taskfarm.fish
#   share/man/man1/taskfarm.1                    man (MANPATH from PATH: PREFIX/bin)
# `make install` (mk/install.mk) installs every file of DIR under PREFIX and
# lists it in its manifest, so that `make uninstall` removes it.
set -euo pipefail
die() { echo "mk/install/cli_docs.sh: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: mk/install/cli_docs.sh TASKFARM DIR"
taskfarm=$1
dir=$2
[ -x "$taskfarm" ] || die "$taskfarm is missing: run make install-build"

# write FILE COMMAND...: the command's output into DIR/FILE; fails if empty.
write() {
    local file=$dir/$1
    shift
    mkdir -p "$(dirname "$file")"
    "$@" >"$file" || die "'$*' failed"
    [ -s "$file" ] || die "'$*' wrote nothing"
}
write share/bash-completion/completions/taskfarm "$taskfarm" completions bash
write share/zsh/site-functions/_taskfarm "$taskfarm" completions zsh
write share/fish/vendor_completions.d/taskfarm.fish "$taskfarm" completions fish
write share/man/man1/taskfarm.1 "$taskfarm" manpage
