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
    taskfarm_server.py stop    --state-dir DIR
    taskfarm_server.py restart --state-dir DIR [--secret-key K] [--watch-pid PID]
    taskfarm_server.py env     --state-dir DIR

Two database modes (`--db`; default: $TASKFARM_TEST_DB, else sqlite):

- `sqlite` (the default): the SQLite database DIR/taskfarm.db and the Flask
  development server, `flask run --host 127.0.0.1 --port P`, one process.
  SQLite has no row locks: concurrent task requests can hand out one task
  twice (PROTOCOL.md).
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
--secret-key is given.

Why not `adminTF`: under Flask-SQLAlchemy 3 it fails (no application
context), so the tables and the user are created here inside
`app.app_context()`.
"""

import argparse
import datetime
import glob
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings

DEFAULT_USER = "tfuser"
HOST = "127.0.0.1"
SERVER_JSON = "server.json"
SERVER_LOG = "server.log"
SQLITE_FILE = "taskfarm.db"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
WATCH_INTERVAL = 0.5
DB_MODES = ("sqlite", "postgresql")
# The environment variable that selects the default database mode.
DB_ENV = "TASKFARM_TEST_DB"

# PostgreSQL mode.
PG_BIN_ENV = "TASKFARM_PG_BIN"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")
PG_INSTALL_HINT = "apt-get install -y postgresql"
PG_OS_USER = "postgres"          # when we are root
PG_SUBDIR = "postgresql"         # DIR/postgresql/{data,run,postgresql.log}
PG_HARNESS_FILE = "harness.json"  # DIR/postgresql/harness.json: role password
PG_DATABASE = "taskfarm"
PG_ROLE = "taskfarm"
PG_START_TIMEOUT = 60
PG_STOP_TIMEOUT = 30
# sun_path holds 108 bytes with the NUL; PostgreSQL's socket is
# <socket dir>/.s.PGSQL.<port>.
SOCKET_PATH_MAX = 100
GUNICORN_WORKERS = 4


class HarnessError(Exception):
    """A failure to report on stderr with a non-zero exit."""


# --------------------------------------------------------------------------
# Processes (Linux /proc aware: PID 1 of a container may never reap zombies,
# and a zombie still answers kill(pid, 0)).


def _proc_stat(pid):
    """(state, pgrp, starttime) of a process from /proc, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses.
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[2]), int(fields[19])


def _have_proc():
    return os.path.isdir("/proc/self")


def process_alive(pid, starttime=None):
    """True while process pid exists and is not a zombie.

    With starttime (from /proc), a different process that reuses the pid
    counts as gone."""
    if pid <= 0:
        return False
    if _have_proc():
        st = _proc_stat(pid)
        if st is None or st[0] in ("Z", "X", "x"):
            return False
        return starttime is None or st[2] == starttime
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_starttime(pid):
    st = _proc_stat(pid) if _have_proc() else None
    return None if st is None else st[2]


def group_alive(pgid):
    """True while any live (non-zombie) process is in process group pgid."""
    if pgid <= 0:
        return False
    if _have_proc():
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            st = _proc_stat(int(name))
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X", "x"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def wait_group_gone(pgid, timeout):
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def kill_group(pgid, timeout=STOP_TIMEOUT):
    """SIGTERM the group, wait up to timeout, then SIGKILL. True when gone."""
    if not group_alive(pgid):
        return True
    signal_group(pgid, signal.SIGTERM)
    if wait_group_gone(pgid, timeout):
        return True
    signal_group(pgid, signal.SIGKILL)
    return wait_group_gone(pgid, 5.0)


# --------------------------------------------------------------------------
# State directory.


def state_paths(state_dir):
    d = os.path.abspath(state_dir)
    return (d, os.path.join(d, SERVER_JSON), os.path.join(d, SERVER_LOG))


def read_info(state_dir):
    _, json_path, _ = state_paths(state_dir)
    try:
        with open(json_path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise HarnessError(f"cannot read {json_path}: {e}")


def open_private(path):
    """Opens path for writing, created or truncated, readable by its owner
    only (0600): server.json and harness.json hold passwords and the
    server's secret key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
    return os.fdopen(fd, "w", encoding="utf-8")


def write_info(state_dir, info):
    _, json_path, _ = state_paths(state_dir)
    tmp = json_path + ".tmp"
    with open_private(tmp) as f:
        f.write(json.dumps(info) + "\n")
    os.replace(tmp, json_path)


def log_tail(log_path, lines=40):
    try:
        with open(log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# Database mode.


def default_db():
    """The database mode when --db is not given: $TASKFARM_TEST_DB, else sqlite."""
    raw = os.environ.get(DB_ENV, "")
    value = raw.strip().lower()
    if not value:
        return "sqlite"
    if value not in DB_MODES:
        raise HarnessError(
            f"{DB_ENV}={raw!r}: must be one of {', '.join(DB_MODES)} "
            "(unset or empty: sqlite)")
    return value


def resolve_db(args):
    """(db mode, database URL or None) for `start`."""
    if args.database_url:
        url = args.database_url
        if args.db == "postgresql" or not url.startswith("sqlite:"):
            raise HarnessError(
                f"--database-url {url!r}: only sqlite URLs can be given; "
                "--db postgresql creates and runs its own PostgreSQL cluster "
                "in the state directory")
        return "sqlite", url
    db = args.db or default_db()
    if db == "sqlite":
        return db, "sqlite:///" + os.path.join(
            os.path.abspath(args.state_dir), SQLITE_FILE)
    return db, None


def init_database(database_url, user, password):
    """Create the tables and the user (or update its password); idempotent.

    Done in this process: taskfarm reads DATABASE_URL when it is imported."""
    os.environ["DATABASE_URL"] = database_url
    with warnings.catch_warnings():
        # authlib.jose and crypt deprecation warnings from taskfarm's imports.
        # authlib.deprecate installs an "always" filter when imported: import
        # it first so that the "ignore" filter below comes before it.
        try:
            import authlib.deprecate  # noqa: F401
        except ImportError:
            pass
        warnings.simplefilter("ignore")
        try:
            from taskfarm import app, db
            from taskfarm.models import User
            if database_url.startswith("postgresql"):
                import psycopg2  # noqa: F401
                import gunicorn  # noqa: F401
        except ImportError as e:
            raise HarnessError(
                f"cannot import taskfarm (or psycopg2/gunicorn) with "
                f"{sys.executable} ({e}): run this script with the python of "
                "the harness venv (tests/harness/venv.sh prints its path and "
                "rebuilds it when tests/harness/requirements.txt changed)")
        if app.config["SQLALCHEMY_DATABASE_URI"] != database_url:
            raise HarnessError(
                "taskfarm was imported with another DATABASE_URL "
                f"({app.config['SQLALCHEMY_DATABASE_URI']!r})")
        with app.app_context():
            db.create_all()
            u = User.query.filter_by(username=user).first()
            if u is None:
                u = User(username=user)
                u.hash_password(password)
                db.session.add(u)
                db.session.commit()
            elif not u.verify_password(password):
                u.hash_password(password)
                db.session.commit()
            db.session.remove()
            db.engine.dispose()


# --------------------------------------------------------------------------
# PostgreSQL (--db postgresql). The cluster is described by a dict, stored in
# server.json under "postgresql":
#   bin         directory of initdb, pg_ctl, postgres, psql
#   os_user     the OS user that runs it (postgres when we are root)
#   dir         its directory: DIR/postgresql, or /tmp/taskfarm-pg-* (external)
#   data        dir/data (PGDATA); socket_dir: dir/run; log: dir/postgresql.log
#   external    True when dir is outside DIR (removed by a final stop)
#   port, pid   TCP port on 127.0.0.1 and the postmaster's PID
#   database, role


def find_pg_bin():
    """The directory of PostgreSQL's server programs; fails loudly."""
    override = os.environ.get(PG_BIN_ENV, "").strip()
    if override:
        candidates = [override]
    else:
        def version(path):
            v = os.path.basename(os.path.dirname(path))
            return [int(x) if x.isdigit() else -1 for x in v.split(".")]
        candidates = sorted(glob.glob(PG_BIN_GLOB), key=version, reverse=True)
    for d in candidates:
        if all(os.access(os.path.join(d, p), os.X_OK) for p in PG_PROGRAMS):
            return d
    where = f"{PG_BIN_ENV}={override}" if override else PG_BIN_GLOB
    raise HarnessError(
        f"--db postgresql: PostgreSQL's server programs ({', '.join(PG_PROGRAMS)}) "
        f"were not found in {where}. Install them (Debian/Ubuntu, as root):\n"
        f"    {PG_INSTALL_HINT}\n"
        f"or set {PG_BIN_ENV} to the directory that holds them.")


def pg_os_user():
    """The OS user that runs PostgreSQL: `postgres` when we are root
    (PostgreSQL refuses to run as root), else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        raise HarnessError(
            f"--db postgresql as root: PostgreSQL must run as the OS user "
            f"`{PG_OS_USER}`, which does not exist. `{PG_INSTALL_HINT}` "
            "creates it.")
    return PG_OS_USER


def _as_user(os_user):
    """subprocess keyword arguments that run a child as os_user (root only)."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam(os_user)
    if pw.pw_uid == 0:
        return {}
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _chown_to(os_user, path):
    if os.geteuid() == 0:
        pw = pwd.getpwnam(os_user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _pg_env(os_user):
    # No PG* variables (PGDATA, PGPORT, PGHOST, ...) from the caller.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"LC_ALL": "C", "LANG": "C", "TZ": "UTC"})
    env.setdefault("PATH", "/usr/bin:/bin")
    if os.geteuid() == 0:
        pw = pwd.getpwnam(os_user)
        env.update({"HOME": pw.pw_dir, "USER": os_user, "LOGNAME": os_user})
    return env


def pg_run(pg, program, args, input_text=None, timeout=PG_START_TIMEOUT):
    """Runs a PostgreSQL program as the cluster's OS user.

    Returns (exit status, or None on timeout; its output). The output goes to
    a file, not a pipe: `pg_ctl start` leaves a daemon behind."""
    cmd = [os.path.join(pg["bin"], program)] + list(args)
    kwargs = _as_user(pg["os_user"])
    if input_text is None:
        kwargs["stdin"] = subprocess.DEVNULL
    else:
        kwargs["input"] = input_text.encode()
    with tempfile.TemporaryFile() as out:
        try:
            rc = subprocess.run(cmd, cwd="/", env=_pg_env(pg["os_user"]),
                                stdout=out, stderr=subprocess.STDOUT,
                                timeout=timeout, **kwargs).returncode
        except subprocess.TimeoutExpired:
            rc = None
        except OSError as e:
            raise HarnessError(f"cannot run {shlex.join(cmd)}: {e}")
        out.seek(0)
        text = out.read().decode("utf-8", "replace").strip()
    return rc, text


def _reachable_by(os_user, path):
    """True when os_user can enter directory path (every parent searchable)."""
    kwargs = _as_user(os_user)
    if not kwargs:
        return True
    test = "/usr/bin/test" if os.access("/usr/bin/test", os.X_OK) else "test"
    try:
        return subprocess.run([test, "-x", path], cwd="/",
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              **kwargs).returncode == 0
    except OSError:
        return False


def _read_harness_file(root):
    try:
        with open(os.path.join(root, PG_HARNESS_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _cluster_complete(root):
    return (_read_harness_file(root) is not None
            and os.path.isfile(os.path.join(root, "data", "PG_VERSION")))


def pg_postmaster_pid(pg):
    """The PID in data/postmaster.pid, None without one."""
    try:
        with open(os.path.join(pg["data"], "postmaster.pid"),
                  encoding="ascii", errors="replace") as f:
            first = f.readline().strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def pg_running(pg):
    pid = pg_postmaster_pid(pg)
    return pid is not None and process_alive(pid)


def pg_layout(state_dir, os_user, bindir):
    """A new cluster description (not created yet) for state_dir."""
    root = os.path.join(state_dir, PG_SUBDIR)
    sock = os.path.join(root, "run")
    external = False
    if (len(sock) + len("/.s.PGSQL.65535") > SOCKET_PATH_MAX
            or not _reachable_by(os_user, state_dir)):
        # A 0700 directory of another user (mktemp -d) or a path too long
        # for a unix socket: the cluster goes to /tmp instead.
        root = tempfile.mkdtemp(prefix="taskfarm-pg-", dir="/tmp")
        external = True
    return {
        "bin": bindir,
        "os_user": os_user,
        "dir": root,
        "data": os.path.join(root, "data"),
        "socket_dir": os.path.join(root, "run"),
        "log": os.path.join(root, "postgresql.log"),
        "external": external,
        "port": None,
        "pid": None,
        "database": PG_DATABASE,
        "role": PG_ROLE,
    }


def pg_init_cluster(pg):
    """initdb into pg["data"] (as the OS user), set up for the harness."""
    root = pg["dir"]
    if os.path.exists(root) and not pg["external"]:
        shutil.rmtree(root)  # a cluster whose creation did not finish
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o700)
    _chown_to(pg["os_user"], root)
    os.makedirs(pg["socket_dir"], exist_ok=True)
    os.chmod(pg["socket_dir"], 0o700)
    _chown_to(pg["os_user"], pg["socket_dir"])
    rc, out = pg_run(pg, "initdb", [
        "-D", pg["data"], "-E", "UTF8", "--no-locale",
        "--auth-local=peer", "--auth-host=scram-sha-256",
        "--no-sync", "--no-instructions"], timeout=120)
    if rc != 0:
        raise HarnessError(
            f"initdb -D {pg['data']} (as {pg['os_user']}) failed "
            f"(exit {rc}):\n{out}")
    conf = os.path.join(pg["data"], "postgresql.conf")
    with open(conf, "a", encoding="utf-8") as f:
        f.write("\n# tests/harness/taskfarm_server.py: port, sockets, "
                "test settings\ninclude_if_exists = 'taskfarm_harness.conf'\n")


def pg_write_conf(pg):
    def quote(v):
        return "'" + str(v).replace("'", "''") + "'"
    text = (
        "# Written by tests/harness/taskfarm_server.py at every start.\n"
        f"listen_addresses = {quote(HOST)}\n"
        f"port = {int(pg['port'])}\n"
        f"unix_socket_directories = {quote(pg['socket_dir'])}\n"
        "unix_socket_permissions = 0700\n"
        "shared_buffers = 16MB\n"
        "max_connections = 100\n"
        "# A throwaway test database: no crash safety needed. A clean stop\n"
        "# still writes everything, so restarts keep the data.\n"
        "fsync = off\n"
        "synchronous_commit = off\n"
        "full_page_writes = off\n"
        "log_line_prefix = '%m [%p] '\n")
    path = os.path.join(pg["data"], "taskfarm_harness.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    _chown_to(pg["os_user"], path)


def _file_from(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def pg_start(pg, fixed_port=None):
    """Starts the cluster (pg_ctl start -w) on fixed_port or a free port."""
    os.makedirs(pg["socket_dir"], exist_ok=True)
    os.chmod(pg["socket_dir"], 0o700)
    _chown_to(pg["os_user"], pg["socket_dir"])
    attempts = 1 if fixed_port else 3
    for attempt in range(attempts):
        pg["port"] = fixed_port or free_port()
        pg_write_conf(pg)
        try:
            offset = os.path.getsize(pg["log"])
        except OSError:
            offset = 0
        rc, out = pg_run(pg, "pg_ctl", [
            "-D", pg["data"], "-l", pg["log"], "-w",
            "-t", str(PG_START_TIMEOUT), "start"],
            timeout=PG_START_TIMEOUT + 15)
        pid = pg_postmaster_pid(pg)
        if rc == 0 and pid is not None:
            pg["pid"] = pid
            return
        log = _file_from(pg["log"], offset)
        # Whatever got started must not stay behind.
        pg_stop(pg, remove_external=False)
        if ("could not bind" in log or "already in use" in log) \
                and attempt + 1 < attempts:
            continue
        raise HarnessError(
            f"starting PostgreSQL ({pg['bin']}/pg_ctl start, as "
            f"{pg['os_user']}) on {HOST}:{pg['port']} failed (exit {rc}):\n"
            f"{out}\n--- {pg['log']} ---\n"
            + "\n".join(log.splitlines()[-30:]))


def pg_create_database(pg, role_password):
    """The role and database of the taskfarm app (as the superuser, over the
    unix socket, peer authentication)."""
    sql = (f"CREATE ROLE {pg['role']} LOGIN PASSWORD '{role_password}';\n"
           f"CREATE DATABASE {pg['database']} OWNER {pg['role']};\n")
    rc, out = pg_run(pg, "psql", [
        "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg["socket_dir"],
        "-p", str(pg["port"]), "-d", "postgres", "-f", "-"], input_text=sql)
    if rc != 0:
        raise HarnessError(
            f"creating the role and database {pg['database']} with psql "
            f"failed (exit {rc}):\n{out}")


def pg_database_url(pg, role_password):
    # "+psycopg2": SQLAlchemy 2.1 maps a plain postgresql:// to psycopg 3.
    return (f"postgresql+psycopg2://{pg['role']}:{role_password}@{HOST}:"
            f"{pg['port']}/{pg['database']}")


def pg_stop(pg, remove_external=True):
    """Stops the cluster: pg_ctl stop -m fast, then -m immediate, then
    SIGKILL of the postmaster. With remove_external, an external cluster
    directory (/tmp/taskfarm-pg-*) is removed afterwards."""
    pid = pg_postmaster_pid(pg)
    if pid is not None and process_alive(pid):
        for mode in ("fast", "immediate"):
            pg_run(pg, "pg_ctl", ["-D", pg["data"], "-m", mode, "-w",
                                  "-t", str(PG_STOP_TIMEOUT), "stop"],
                   timeout=PG_STOP_TIMEOUT + 15)
            deadline = time.monotonic() + 5.0
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not process_alive(pid):
                break
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 5.0
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if process_alive(pid):
                raise HarnessError(
                    f"PostgreSQL (postmaster {pid}, {pg['data']}) is still "
                    "alive after pg_ctl stop -m fast, -m immediate and SIGKILL")
    if remove_external and pg.get("external"):
        shutil.rmtree(pg["dir"], ignore_errors=True)


def pg_prepare(state_dir, old, fixed_port):
    """Starts the cluster of state_dir, creating it first when there is no
    complete one (reused: the one in old server.json info, or
    DIR/postgresql). Returns (cluster description, database URL)."""
    pg = None
    old_pg = (old or {}).get("postgresql")
    if old_pg and _cluster_complete(old_pg["dir"]):
        pg = dict(old_pg)
        pg["pid"] = None
        if not all(os.access(os.path.join(pg["bin"], p), os.X_OK)
                   for p in PG_PROGRAMS):
            pg["bin"] = find_pg_bin()
    elif _cluster_complete(os.path.join(state_dir, PG_SUBDIR)):
        root = os.path.join(state_dir, PG_SUBDIR)
        saved = _read_harness_file(root)
        pg = pg_layout(state_dir, saved["os_user"], saved["bin"])
        if pg["external"]:  # no longer reachable: start afresh
            shutil.rmtree(pg["dir"], ignore_errors=True)
            pg = None
    fresh = pg is None
    if fresh:
        bindir = find_pg_bin()
        pg = pg_layout(state_dir, pg_os_user(), bindir)
        fixed_port = None
    try:
        if fresh:
            pg_init_cluster(pg)
        pg_start(pg, fixed_port)
        if fresh:
            role_password = secrets.token_hex(16)
            pg_create_database(pg, role_password)
            saved = {"role_password": role_password, "bin": pg["bin"],
                     "os_user": pg["os_user"]}
            path = os.path.join(pg["dir"], PG_HARNESS_FILE)
            with open_private(path) as f:
                json.dump(saved, f)
        role_password = _read_harness_file(pg["dir"])["role_password"]
    except BaseException:
        pg_stop(pg, remove_external=fresh)
        raise
    return pg, pg_database_url(pg, role_password)


# --------------------------------------------------------------------------
# Server process.


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def server_command(db, port):
    """The command that serves taskfarm: the Flask development server (one
    request at a time) for SQLite, gunicorn with 4 sync workers (production)
    for PostgreSQL."""
    if db == "postgresql":
        return [sys.executable, "-m", "gunicorn",
                "--workers", str(GUNICORN_WORKERS),
                "--bind", f"{HOST}:{port}",
                "--access-logfile", "-",
                # No %(u)s: the user name field would be the token.
                "--access-logformat",
                '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms %(p)s',
                "--graceful-timeout", "5",
                # gunicorn 27's control socket defaults to one path for all
                # instances (~/.gunicorn/gunicorn.ctl): servers side by side
                # would fight over it.
                "--no-control-socket",
                "taskfarm:app"]
    # One request at a time: SQLite has no row locks, and the server hands
    # the same task to two workers that ask at the same moment (then fails
    # with 500 on that run, PROTOCOL.md). Serving one request at a time makes
    # concurrent workers safe on the SQLite test server.
    return [sys.executable, "-m", "flask", "--app", "taskfarm", "run",
            "--host", HOST, "--port", str(port),
            "--no-reload", "--no-debugger", "--without-threads"]


def server_env(database_url, secret_key):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLASK_") and k != "GUNICORN_CMD_ARGS"}
    env.update({
        "FLASK_APP": "taskfarm",
        "FLASK_DEBUG": "0",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret_key,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def http_get_root(port, timeout=1.0):
    """(status, body) of GET http://127.0.0.1:port/, None if no answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{HOST}:{port}/", timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (OSError, ValueError):
        return None


def launch(state_dir, log_path, db, port, database_url, secret_key,
           watch_pid):
    """Start the server detached; return its Popen (the group leader)."""
    cmd = server_command(db, port)
    if watch_pid is not None:
        cmd = [sys.executable, os.path.abspath(__file__), "_watchdog",
               "--watch-pid", str(watch_pid), "--state-dir", state_dir,
               "--"] + cmd
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    with open(log_path, "ab") as log:
        log.write(f"=== {stamp} taskfarm_server.py: {shlex.join(cmd)}\n"
                  .encode())
        log.flush()
        return subprocess.Popen(
            cmd, cwd=state_dir, env=server_env(database_url, secret_key),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            close_fds=True, start_new_session=True)


def wait_ready(proc, port, log_path):
    """Wait for GET / to answer 200. Returns None or a failure message."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        rc = proc.poll()
        if rc is not None:
            return f"the server exited with status {rc} before it was ready"
        answer = http_get_root(port)
        if answer is not None:
            status, body = answer
            if status == 200 and "Taskfarm Server" in body:
                # Make sure it is ours, not another process on the port.
                time.sleep(0.05)
                if proc.poll() is None:
                    return None
            elif status != 200:
                return f"GET / answered {status}, not 200"
        if time.monotonic() >= deadline:
            return f"GET / did not answer 200 within {READY_TIMEOUT:.0f} s"
        time.sleep(0.1)


def _port_taken(log_text):
    # Flask/werkzeug: "Address already in use"; gunicorn: "Connection in use".
    return "Address already in use" in log_text or \
        "Connection in use" in log_text


def start_server(state_dir, user, password, secret_key, db, database_url,
                 watch_pid, port=None, pg_port=None):
    state_dir, _, log_path = state_paths(state_dir)
    os.makedirs(state_dir, exist_ok=True)
    old = read_info(state_dir)
    if old is not None and group_alive(int(old.get("pid") or 0)):
        raise HarnessError(
            f"a server from {state_dir} is still running (pid {old['pid']}, "
            f"{old.get('url')}): stop or restart it")
    if old is not None and old.get("postgresql") \
            and pg_running(old["postgresql"]):
        raise HarnessError(
            f"the PostgreSQL of {state_dir} is still running (postmaster "
            f"{pg_postmaster_pid(old['postgresql'])}): stop or restart it")
    if watch_pid is not None and not process_alive(watch_pid):
        raise HarnessError(f"--watch-pid {watch_pid}: no such process")

    info = {
        "url": None,
        "user": user,
        "password": password,
        "pid": 0,
        "port": port,
        "secret_key": secret_key,
        "database_url": database_url,
        "db": db,
        "watch_pid": watch_pid,
        "state_dir": state_dir,
        "log": log_path,
    }
    pg = None
    try:
        if db == "postgresql":
            pg, info["database_url"] = pg_prepare(state_dir, old, pg_port)
            info["postgresql"] = pg
            # So that `stop` finds PostgreSQL even if this start dies now.
            write_info(state_dir, info)

        init_database(info["database_url"], user, password)

        fixed_port = port is not None
        attempts = 1 if fixed_port else 3
        failure = None
        for _ in range(attempts):
            p = port if fixed_port else free_port()
            proc = launch(state_dir, log_path, db, p, info["database_url"],
                          secret_key, watch_pid)
            failure = wait_ready(proc, p, log_path)
            if failure is None:
                break
            kill_group(proc.pid)
            proc.poll()
            # A free port taken by someone else in between: try another one.
            if not _port_taken(log_tail(log_path, 10)):
                break
        if failure is not None:
            raise HarnessError(
                f"starting taskfarm on {HOST}:{p} failed: {failure}\n"
                f"--- last lines of {log_path} ---\n{log_tail(log_path)}")
    except BaseException:
        if pg is not None:
            try:
                pg_stop(pg, remove_external=False)
            except HarnessError as e:
                print(f"taskfarm_server.py: {e}", file=sys.stderr)
        raise

    info.update({"url": f"http://{HOST}:{p}/api/", "pid": proc.pid,
                 "port": p})
    write_info(state_dir, info)
    return info


def stop_server(state_dir, final=True):
    """Stop the server of state_dir (and its PostgreSQL). Returns a note for
    stderr, or None. final=False (restart) keeps an external cluster
    directory."""
    info = read_info(state_dir)
    if info is None:
        return f"no {SERVER_JSON} in {os.path.abspath(state_dir)}: nothing to stop"
    pid = int(info.get("pid") or 0)
    if pid > 0 and group_alive(pid) and not kill_group(pid):
        raise HarnessError(
            f"process group {pid} is still alive after SIGTERM and SIGKILL")
    if info.get("postgresql"):
        pg_stop(info["postgresql"], remove_external=final)
    return None


# --------------------------------------------------------------------------
# Subcommands.


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
    note = stop_server(args.state_dir)
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
            info = read_info(args.state_dir) if args.state_dir else None
            if info and info.get("postgresql"):
                pg_stop(info["postgresql"])
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
