# shellcheck shell=sh
# tests/fakes/replay.sh: what every fake scheduler command shares (sourced).
# replay NAME ARGS...: prints answers/NAME.stdout (with @START@ replaced by
# the local time TASKFARM_FAKE_STARTED_AGO seconds ago, as Grid Engine prints
# it), answers/NAME.stderr on stderr, and exits with answers/NAME.status (0
# when there is none). NAME "hang" (or "hang.PART") never answers (the
# caller's time limit kills it). Each call appends the command line it was
# called with (ARGS, and FLUX_URI when set) to $TASKFARM_FAKE_LOG when set.
replay() {
    name=$1
    shift
    dir=$(dirname "$0")/answers
    if [ -n "${TASKFARM_FAKE_LOG:-}" ]; then
        printf '%s\n' "$(basename "$0") $*${FLUX_URI:+ (FLUX_URI=$FLUX_URI)}" >>"$TASKFARM_FAKE_LOG"
    fi
    case $name in
    hang | hang.*) exec sleep 3600 ;;
    esac
    if [ ! -f "$dir/$name.stdout" ] && [ ! -f "$dir/$name.stderr" ]; then
        echo "fake $(basename "$0"): no recorded answer $name in $dir" >&2
        exit 99
    fi
    if [ -f "$dir/$name.stdout" ]; then
        started=$(date -d "@$(($(date +%s) - ${TASKFARM_FAKE_STARTED_AGO:-600}))" '+%m/%d/%Y %H:%M:%S')
        sed "s|@START@|$started|g" "$dir/$name.stdout"
    fi
    if [ -f "$dir/$name.stderr" ]; then
        cat "$dir/$name.stderr" >&2
    fi
    status=0
    if [ -f "$dir/$name.status" ]; then
        status=$(cat "$dir/$name.status")
    fi
    exit "$status"
}
