#!/usr/bin/env python3
"""Start, stop and restart a REAL taskfarm 0.4.0 server for the tests.

This is the project's harness around the `taskfarm` server from PyPI. Every
Rust integration test (through tests/common/server.rs), `make demo` and the C
tests (through tests/harness/server.sh) use it. Run it with the python of the
harness venv (tests/harness/venv.sh prints its path); `stop` and `env` need
only the standard library.

    taskfarm_server.py start   --state-dir DIR [--user U] [--password P]
                               [--secret-key K] [--watch-pid PID]
                               [--db sqlite|postgresql | --database-url URL]
    taskfarm_server.py stop    --state-dir DIR [--keep-data]
    taskfarm_server.py restart --state-dir DIR [--secret-key K] [--watch-pid PID]
    taskfarm_server.py env     --state-dir DIR

Two database modes (`--db`; default: $TASKFARM_TEST_DB, else sqlite):

- `sqlite` (the default): the SQLite database DIR/taskfarm.db and the Flask
  development server, `flask run --host 127.0.0.1 --port P`, one process.
  SQLite has no row locks: concurrent task requests can hand out one task
  twice (docs/PROTOCOL.md).
- `postgresql`: production mode. A fresh PostgreSQL cluster (Debian's
  binaries, /usr/lib/postgresql/*/bin, or $TASKFARM_PG_BIN) in DIR/postgresql/
  (data/, run/ for the unix socket, postgresql.log), run as the `postgres` OS
  user when we are root (PostgreSQL refuses root), as ourselves otherwise,
  listening on 127.0.0.1 on a free port; a role and a database `taskfarm`
  with a random password; then `gunicorn -w 4 -b 127.0.0.1:P taskfarm:app`
  (4 sync workers) with DATABASE_URL=postgresql://taskfarm:PW@127.0.0.1:PGPORT/taskfarm
  (driver psycopg2). The cluster runs with fsync=off (a test database: no
  crash safety needed; a clean stop still writes everything, so `restart`
  keeps the data). When the PostgreSQL user cannot reach DIR (e.g. a 0700
  mktemp directory) or DIR is too long for a unix socket path, the cluster
  goes to a fresh /tmp/taskfarm-pg-* directory instead, recorded in
  server.json and removed by `stop`. Missing PostgreSQL binaries fail with the
  apt-get line that installs them.

`start` creates DIR, the database with its tables and the user (idempotent),
picks a free port on 127.0.0.1, starts the server as a detached process in a
session of its own (stdout and stderr appended to DIR/server.log), waits
until `GET /` answers 200, then writes DIR/server.json and prints the same
JSON on one line:

    {"url": "http://127.0.0.1:P/api/", "user": U, "password": PW, "pid": PID,
     "port": P, "secret_key": K, "database_url": URL, "db": "sqlite"|"postgresql",
     "postgresql": {...} (postgresql mode only: port, pid of the postmaster,
     directories, OS user), ...}

PID is the leader of the server's process group (flask, or gunicorn's master
and its workers): `stop` signals the whole group, and then, in postgresql
mode, stops PostgreSQL (`pg_ctl stop -m fast`). With --watch-pid, the server
is started through a small watchdog (this script's `_watchdog` mode) that
polls PID every 0.5 s and stops the server, and PostgreSQL, when PID is gone,
so a crashed test never leaks a server.

`restart` stops the server (and PostgreSQL) and starts it again on the same
port(s), with the same database and user; the secret key changes only when
--secret-key is given. A `stop` before it must be `stop --keep-data`: a plain
`stop` is the final one and removes an external /tmp/taskfarm-pg-* cluster,
after which `restart` would start on an empty database (the run of a test
that stopped and restarted its server was gone, whenever the state
directory's path was too long for the socket or unreachable to `postgres`).

The work is done by the modules of tests/harness/taskfarm_harness/ (process
groups, the state directory, the database, the PostgreSQL cluster, the server
process); this file is their command line.

Why not `adminTF`: under Flask-SQLAlchemy 3 it fails (no application
context), so the tables and the user are created here inside
`app.app_context()`.
"""

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys

from taskfarm_harness.database import DB_ENV, DB_MODES, resolve_db
from taskfarm_harness.errors import HarnessError
from taskfarm_harness.postgres_cluster import pg_stop
from taskfarm_harness.process_groups import STOP_TIMEOUT, process_alive, process_starttime
from taskfarm_harness.server import GUNICORN_WORKERS, start_server, stop_server
from taskfarm_harness.state import SERVER_JSON, read_info

DEFAULT_USER = "tfuser"
WATCH_INTERVAL = 0.5


def cmd_start(args):
    state_dir = os.path.abspath(args.state_dir)
    db, database_url = resolve_db(args)
    info = start_server(
        state_dir,
        user=args.user,
        password=args.password or secrets.token_hex(16),
        secret_key=args.secret_key or secrets.token_hex(32),
        db=db,
        database_url=database_url,
        watch_pid=args.watch_pid,
        port=args.port)
    print(json.dumps(info), flush=True)


def cmd_stop(args):
    note = stop_server(args.state_dir, final=not args.keep_data)
    if note:
        print(f"taskfarm_server.py: {note}", file=sys.stderr)


def cmd_restart(args):
    info = read_info(args.state_dir)
    if info is None or not info.get("user"):
        raise HarnessError(
            f"no {SERVER_JSON} in {os.path.abspath(args.state_dir)}: "
            "start a server first")
    stop_server(args.state_dir, final=False)
    watch_pid = args.watch_pid if args.watch_pid is not None \
        else info.get("watch_pid")
    if watch_pid is not None and not process_alive(watch_pid):
        raise HarnessError(
            f"the watched process {watch_pid} is gone: give --watch-pid")
    db = info.get("db", "sqlite")
    pg = info.get("postgresql")
    new = start_server(
        args.state_dir,
        user=info["user"],
        password=info["password"],
        secret_key=args.secret_key or info["secret_key"],
        db=db,
        database_url=info["database_url"] if db == "sqlite" else None,
        watch_pid=watch_pid,
        port=int(info["port"]) if info.get("port") else None,
        pg_port=int(pg["port"]) if pg and pg.get("port") else None)
    print(json.dumps(new), flush=True)


def cmd_env(args):
    info = read_info(args.state_dir)
    if info is None or not info.get("url"):
        raise HarnessError(
            f"no running server in {os.path.abspath(args.state_dir)}: "
            "start a server first")
    for name, key in (("TASKFARM_URL", "url"), ("TASKFARM_USER", "user"),
                      ("TASKFARM_PASSWORD", "password")):
        print(f"export {name}={shlex.quote(str(info[key]))}")


def cmd_watchdog(args):
    """Run the server command; stop it when process args.watch_pid is gone,
    and then the PostgreSQL of --state-dir (from its server.json).

    Runs as the leader of the server's process group, so `stop` (SIGTERM to
    the group) ends both. Exits with the server's status when it exits."""
    cmd = args.command
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise HarnessError("_watchdog: no command")
    watched = args.watch_pid
    starttime = process_starttime(watched)
    if not process_alive(watched, starttime):
        raise HarnessError(f"_watchdog: process {watched} is already gone")
    # The cluster is known now, not read when the watched process is gone:
    # by then the state directory may be removed (the next test binary
    # removes those of dead test processes), which left PostgreSQL running.
    info = read_info(args.state_dir) if args.state_dir else None
    pg = (info or {}).get("postgresql")
    child = subprocess.Popen(cmd)
    while True:
        try:
            rc = child.wait(timeout=WATCH_INTERVAL)
            sys.exit(rc)
        except subprocess.TimeoutExpired:
            pass
        if not process_alive(watched, starttime):
            print(f"taskfarm_server.py: watched process {watched} is gone: "
                  "stopping the server", file=sys.stderr, flush=True)
            child.terminate()
            try:
                child.wait(timeout=STOP_TIMEOUT + 5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if pg:
                pg_stop(pg)
                print("taskfarm_server.py: PostgreSQL stopped",
                      file=sys.stderr, flush=True)
            sys.exit(0)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Start, stop and restart a real taskfarm server for tests.")
    sub = parser.add_subparsers(dest="command", required=True)

    def state(p):
        p.add_argument("--state-dir", required=True,
                       help="directory for the database, server.json and "
                            "server.log")

    p = sub.add_parser("start", help="start a server")
    state(p)
    p.add_argument("--user", default=DEFAULT_USER)
    p.add_argument("--password", help="default: a random hex string")
    p.add_argument("--secret-key", help="token key; default: random")
    p.add_argument("--watch-pid", type=int,
                   help="stop the server when this process is gone")
    p.add_argument("--db", choices=DB_MODES,
                   help=f"database: sqlite (Flask development server) or "
                        f"postgresql (a local cluster and gunicorn -w "
                        f"{GUNICORN_WORKERS}); default: ${DB_ENV}, else sqlite")
    p.add_argument("--database-url",
                   help="SQLite database URL (default: a file in the state "
                        "dir)")
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("stop", help="stop the server (and its PostgreSQL)")
    state(p)
    p.add_argument("--keep-data", action="store_true",
                   help="keep an external PostgreSQL cluster (/tmp/taskfarm-pg-*) "
                        "for a later restart")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("restart",
                       help="stop and start again: same port, database, user")
    state(p)
    p.add_argument("--secret-key", help="default: keep the old one")
    p.add_argument("--watch-pid", type=int,
                   help="default: the one given to start")
    p.set_defaults(func=cmd_restart)

    p = sub.add_parser("env", help="print export lines for TASKFARM_URL, "
                                   "TASKFARM_USER, TASKFARM_PASSWORD")
    state(p)
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("_watchdog", help=argparse.SUPPRESS)
    p.add_argument("--watch-pid", type=int, required=True)
    p.add_argument("--state-dir")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_watchdog)

    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        args.func(args)
    except HarnessError as e:
        print(f"taskfarm_server.py {args.command}: error: {e}",
              file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
