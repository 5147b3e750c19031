# shellcheck shell=sh
# tests/fakes/replay.sh: what every fake scheduler command shares (sourced).
# replay NAME: prints answers/NAME.stdout (with @START@ replaced by the local
# time TASKFARM_FAKE_STARTED_AGO seconds ago, as Grid Engine prints it),
# answers/NAME.stderr on stderr, and exits with answers/NAME.status (0 when
# there is none). NAME "hang" (or "hang.PART") never answers (the caller's time limit kills
# it). Each call appends its command line to $TASKFARM_FAKE_LOG when set.
replay() {
    dir=$(dirname "$0")/answers
    if [ -n "${TASKFARM_FAKE_LOG:-}" ]; then
        printf '%s\n' "$(basename "$0") $*" >>"$TASKFARM_FAKE_LOG"
    fi
    case $1 in
    hang | hang.*) exec sleep 3600 ;;
    esac
    if [ ! -f "$dir/$1.stdout" ] && [ ! -f "$dir/$1.stderr" ]; then
        echo "fake $(basename "$0"): no recorded answer $1 in $dir" >&2
        exit 99
    fi
    if [ -f "$dir/$1.stdout" ]; then
        started=$(date -d "@$(( $(date +%s) - ${TASKFARM_FAKE_STARTED_AGO:-600} ))" '+%m/%d/%Y %H:%M:%S')
        sed "s|@START@|$started|g" "$dir/$1.stdout"
    fi
    if [ -f "$dir/$1.stderr" ]; then
        cat "$dir/$1.stderr" >&2
    fi
    status=0
    if [ -f "$dir/$1.status" ]; then
        status=$(cat "$dir/$1.status")
    fi
    exit "$status"
}
