#!/usr/bin/env bash
# tests/install/cli_docs.sh PREFIX: the shell completions and the man page
# that `make install` put under PREFIX (mk/install/cli_docs.sh) are there and work,
# each with the tool that reads it:
#   bash  `bash -n`, then the completion itself: `taskfarm wa<TAB>` gives watch,
#         `taskfarm completions <TAB>` the three shells (and the options),
#         `taskfarm reset --<TAB>` --all; bash-completion's loader finds it
#         with PREFIX/share in XDG_DATA_DIRS;
#   zsh   `zsh -n`, its #compdef line, and compinit binds it to taskfarm
#         with PREFIX/share/zsh/site-functions in fpath;
#   fish  `fish --no-execute`, then, with PREFIX/share in XDG_DATA_DIRS and
#         nothing sourced by hand, `complete -C 'taskfarm wa'` gives watch;
#   man   `man -l` renders it without a warning (groff -ww), its .TH line
#         names taskfarm 1 and the installed version, every command of
#         `taskfarm --help` has its subsection; and `man -w taskfarm` finds it
#         with only PREFIX/bin added to PATH.
# Run by tests/install/run.sh after `make install PREFIX=...`. Prints what
# failed and exits 1; the shells and man are prerequisites (never skipped).
set -uo pipefail
die() { echo "tests/install/cli_docs.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: tests/install/cli_docs.sh PREFIX"
prefix=$1
for tool in bash zsh fish man groff; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool is missing: apt-get install -y bash bash-completion zsh fish man-db groff-base"
done
loader=/usr/share/bash-completion/bash_completion
[ -f "$loader" ] || die "$loader is missing: apt-get install -y bash-completion"
# The shells read no configuration of the user running the test.
home=$(mktemp -d "${TMPDIR:-/tmp}/tf-cli-docs.XXXXXX")
trap 'rm -rf "$home"' EXIT
xdg="$prefix/share:/usr/local/share:/usr/share"
bash_file=$prefix/share/bash-completion/completions/taskfarm
zsh_file=$prefix/share/zsh/site-functions/_taskfarm
fish_file=$prefix/share/fish/vendor_completions.d/taskfarm.fish
man_file=$prefix/share/man/man1/taskfarm.1
failed=0
bad() { echo "$*"; failed=1; }
for f in "$bash_file" "$zsh_file" "$fish_file" "$man_file"; do
    [ -s "$f" ] || die "$f is missing or empty"
done
version=$("$prefix/bin/taskfarm" --version | awk '{ print $2 }')
# The commands, as `taskfarm --help` lists them (two-space indented names).
commands=$("$prefix/bin/taskfarm" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | grep -vx help)
[ "$(wc -w <<<"$commands")" -ge 9 ] || die "could not read the commands from taskfarm --help: '$commands'"

# bash: syntax, then completions computed by the function it defines.
bash -n "$bash_file" || bad "bash -n $bash_file failed"
# complete WORDS...: what the bash completion offers for the last word.
complete_bash() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
             COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _taskfarm taskfarm "${@: -1}" "${@: -2:1}"
             printf "%s\n" "${COMPREPLY[@]}"' _ "$bash_file" "$@"
}
[ "$(complete_bash taskfarm wa)" = watch ] || bad "bash: 'taskfarm wa<TAB>' gives '$(complete_bash taskfarm wa)', not watch"
shells=$(complete_bash taskfarm completions '' | grep -vx -- '-.*' | sort | tr '\n' ' ')
[ "$shells" = "bash fish zsh " ] || bad "bash: 'taskfarm completions <TAB>' offers the shells '$shells'"
complete_bash taskfarm reset --a | grep -qx -- --all || bad "bash: 'taskfarm reset --a<TAB>' does not give --all"
got=$(HOME=$home XDG_DATA_DIRS=$xdg bash --norc -c 'source "$1" && __load_completion taskfarm && complete -p taskfarm' _ "$loader" 2>&1)
[[ $got == *"-F _taskfarm taskfarm" ]] || bad "bash-completion with XDG_DATA_DIRS=$xdg does not load it: '$got'"

# zsh: syntax and the line that makes compinit load it for taskfarm.
zsh -n "$zsh_file" || bad "zsh -n $zsh_file failed"
[ "$(head -n 1 "$zsh_file")" = "#compdef taskfarm" ] || bad "$zsh_file does not start with '#compdef taskfarm'"
got=$(HOME=$home zsh -f -c 'fpath=("$1" $fpath); autoload -U compinit && compinit -u -D && print -r -- ${_comps[taskfarm]}' \
    _ "$prefix/share/zsh/site-functions" 2>&1)
[ "$got" = _taskfarm ] || bad "zsh: compinit with $prefix/share/zsh/site-functions in fpath binds taskfarm to '$got'"

# fish: syntax, then its own completion engine.
fish --no-execute "$fish_file" || bad "fish --no-execute $fish_file failed"
got=$(HOME=$home XDG_DATA_DIRS=$xdg PATH="$prefix/bin:$PATH" fish -c "complete -C 'taskfarm wa'" 2>&1 | cut -f1)
[ "$got" = watch ] || bad "fish with XDG_DATA_DIRS=$xdg: 'taskfarm wa<TAB>' gives '$got', not watch"

# man: header, every command, renders cleanly, found through PATH.
th=$(grep -m1 '^\.TH ' "$man_file")
[ "$th" = ".TH TASKFARM 1 \"\" \"taskfarm $version\" \"User Commands\"" ] || bad "$man_file: unexpected title line '$th'"
for c in $commands; do
    grep -qx ".SS \"taskfarm $c\"" "$man_file" || bad "$man_file has no subsection for 'taskfarm $c'"
done
warnings=$(groff -man -ww -z "$man_file" 2>&1)
[ -z "$warnings" ] || bad "groff -man -ww warns about $man_file: $warnings"
text=$(MANWIDTH=80 man -l "$man_file" 2>&1) || bad "man -l $man_file failed: $text"
grep -q "taskfarm watch \[-n|--interval\] <UUID>" <<<"$text" || bad "man -l $man_file: no synopsis of taskfarm watch"
found=$(env -u MANPATH PATH="$prefix/bin:/usr/bin:/bin" man -w taskfarm 2>&1)
[ "$found" = "$man_file" ] || bad "man -w taskfarm with $prefix/bin on PATH finds '$found', not $man_file"

[ $failed -eq 0 ] && echo "completions (bash, zsh, fish) and man page taskfarm.1 ($(wc -w <<<"$commands") commands) work"
exit $failed
