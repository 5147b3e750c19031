#!/usr/bin/env bash
# tests/harness/server.sh: shell entry point to the real taskfarm test server,
# for make targets, C tests and people. A thin wrapper around
# tests/harness/taskfarm_server.py (read it for the details).
#
#   server.sh start DIR [--db sqlite|postgresql] [--user U] [--password P]
#                       [--secret-key K] [--watch-pid PID]
#       builds the harness venv if needed (venv.sh), starts a server whose
#       state (database, server.json, server.log) lives in DIR, and prints
#       server.json on one line: {"url": ..., "user": ..., "password": ..., "pid": ...}
#       --db defaults to $TASKFARM_TEST_DB, else sqlite (Flask dev server);
#       postgresql: a PostgreSQL cluster in DIR + gunicorn -w 4 (production)
#   server.sh stop DIR [--keep-data]    stop it (and its PostgreSQL; exit 0 when gone);
#                                       --keep-data: for a restart later
#   server.sh restart DIR [--secret-key K]
#                                       same port, database and user
#   server.sh env DIR                   export lines for eval:
#       eval "$(tests/harness/server.sh env DIR)"   # TASKFARM_URL/_USER/_PASSWORD
#
# Example:
#   tests/harness/server.sh start build/tf >/dev/null
#   eval "$(tests/harness/server.sh env build/tf)"
#   ./my_c_test; tests/harness/server.sh stop build/tf
#   TASKFARM_TEST_DB=postgresql tests/harness/server.sh start build/tf   # production mode
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
script=$here/taskfarm_server.py

usage() {
    sed -n '6,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2

case "$cmd" in
start | restart)
    venv=$("$here/venv.sh")
    exec "$venv/bin/python" "$script" "$cmd" --state-dir "$dir" "$@"
    ;;
stop | env)
    # Standard library only: do not build a venv just to stop a server.
    venv=${TASKFARM_VENV:-$root/.venv}
    python=python3
    [ -x "$venv/bin/python" ] && python=$venv/bin/python
    exec "$python" "$script" "$cmd" --state-dir "$dir" "$@"
    ;;
*)
    usage
    ;;
esac
