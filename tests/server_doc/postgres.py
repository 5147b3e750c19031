"""tests/server_doc/postgres.py start|stop DIR: a private PostgreSQL cluster
for tests/server_doc/run.sh, made by the harness's postgres_cluster module
(initdb as the `postgres` user when root, 127.0.0.1 on a free port, a unix
socket in its own directory, peer authentication on it).

  start DIR   creates and starts the cluster in DIR/postgresql (or a
              /tmp/taskfarm-pg-* directory when DIR is too deep for a socket)
              and prints shell lines for eval: PG_BIN, PG_OS_USER, PGHOST
              (the socket directory), PGPORT, PG_PID
  stop DIR    stops it (pg_ctl stop, then SIGKILL of the postmaster's PID)
              and removes an external directory
Standard library only.
"""

import json
import os
import shlex
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "harness"))

from taskfarm_harness.errors import HarnessError  # noqa: E402
from taskfarm_harness.postgres_cluster import find_pg_bin, pg_init_cluster, pg_layout, pg_os_user, pg_start, pg_stop  # noqa: E402

STATE = "postgres.json"


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: tests/server_doc/postgres.py start|stop DIR")
    command, state_dir = sys.argv[1], os.path.abspath(sys.argv[2])
    state = os.path.join(state_dir, STATE)
    try:
        if command == "start":
            os.makedirs(state_dir, exist_ok=True)
            pg = pg_layout(state_dir, pg_os_user(), find_pg_bin())
            with open(state, "w", encoding="utf-8") as f:
                json.dump(pg, f)  # before the start: a failed start is stopped too
            pg_init_cluster(pg)
            pg_start(pg)
            with open(state, "w", encoding="utf-8") as f:
                json.dump(pg, f)
            for name, value in (("PG_BIN", pg["bin"]), ("PG_OS_USER", pg["os_user"]),
                                ("PGHOST", pg["socket_dir"]), ("PGPORT", pg["port"]),
                                ("PG_PID", pg["pid"])):
                print(f"{name}={shlex.quote(str(value))}")
        else:
            with open(state, encoding="utf-8") as f:
                pg_stop(json.load(f))
    except (HarnessError, OSError) as e:
        sys.exit(f"tests/server_doc/postgres.py {command}: {e}")


if __name__ == "__main__":
    main()
