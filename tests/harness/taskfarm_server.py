#!/usr/bin/env python3
"""Start, stop and restart a REAL taskfarm 0.4.0 server for the tests.

This is the project's harness around the `taskfarm` server from PyPI. Every
Rust integration test (through tests/common/server.rs), `make demo` and the C
tests (through tests/harness/server.sh) use it. Run it with the python of the
harness venv (tests/harness/venv.sh prints its path); `stop` and `env` need
only the standard library.

    taskfarm_server.py start   --state-dir DIR [--user U] [--password P]
                               [--secret-key K] [--watch-pid PID]
                               [--db sqlite | --database-url URL]
    taskfarm_server.py stop    --state-dir DIR
    taskfarm_server.py restart --state-dir DIR [--secret-key K] [--watch-pid PID]
    taskfarm_server.py env     --state-dir DIR

`start` creates DIR, the SQLite database DIR/taskfarm.db with its tables and
the user (idempotent), picks a free port on 127.0.0.1, starts
`flask run --host 127.0.0.1 --port P` as a detached process in a session of
its own (stdout and stderr appended to DIR/server.log), waits until `GET /`
answers 200, then writes DIR/server.json and prints the same JSON on one line:

    {"url": "http://127.0.0.1:P/api/", "user": U, "password": PW, "pid": PID,
     "port": P, "secret_key": K, "database_url": URL, ...}

PID is the leader of the server's process group: `stop` signals the whole
group. With --watch-pid, the server is started through a small watchdog (this
script's `_watchdog` mode) that polls PID every 0.5 s and stops the server when
PID is gone, so a crashed test never leaks a server.

`restart` stops the server and starts it again on the same port, with the same
database and user; the secret key changes only when --secret-key is given.

Why not `adminTF`: under Flask-SQLAlchemy 3 it fails (no application
context), so the tables and the user are created here inside
`app.app_context()`.

Seam for later database modes: `--db` selects the database kind (only
`sqlite` is implemented; `postgresql` fails with a clear message) and
`--database-url` overrides the URL; `server_command()` is where gunicorn will
come in for the PostgreSQL/production setup.
"""

import argparse
import datetime
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
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


def write_info(state_dir, info):
    _, json_path, _ = state_paths(state_dir)
    tmp = json_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
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
# Database.


def database_url_for(args, state_dir):
    """The database URL for `start`; the seam for other database modes."""
    if args.database_url:
        url = args.database_url
    elif args.db == "sqlite":
        url = "sqlite:///" + os.path.join(state_dir, SQLITE_FILE)
    else:
        raise HarnessError(
            f"--db {args.db} is not implemented yet: only sqlite is (the "
            "PostgreSQL + gunicorn mode comes with a later issue, together "
            "with psycopg2 in tests/harness/requirements.txt)")
    if not url.startswith("sqlite:"):
        raise HarnessError(
            f"database URL {url!r}: only sqlite URLs are supported so far "
            "(no other database driver is in tests/harness/requirements.txt)")
    return url


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
        except ImportError as e:
            raise HarnessError(
                f"cannot import taskfarm with {sys.executable} ({e}): run "
                "this script with the python of the harness venv "
                "(tests/harness/venv.sh prints its path)")
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
# Server process.


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def server_command(port):
    """The command that serves taskfarm (gunicorn will come in here)."""
    return [sys.executable, "-m", "flask", "--app", "taskfarm", "run",
            "--host", HOST, "--port", str(port),
            "--no-reload", "--no-debugger"]


def server_env(database_url, secret_key):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
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


def launch(state_dir, log_path, port, database_url, secret_key, watch_pid):
    """Start the server detached; return its Popen (the group leader)."""
    cmd = server_command(port)
    if watch_pid is not None:
        cmd = [sys.executable, os.path.abspath(__file__), "_watchdog",
               "--watch-pid", str(watch_pid), "--"] + cmd
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


def start_server(state_dir, user, password, secret_key, database_url,
                 watch_pid, port=None):
    state_dir, _, log_path = state_paths(state_dir)
    os.makedirs(state_dir, exist_ok=True)
    old = read_info(state_dir)
    if old is not None and group_alive(int(old.get("pid", 0))):
        raise HarnessError(
            f"a server from {state_dir} is still running (pid {old['pid']}, "
            f"{old.get('url')}): stop or restart it")
    if watch_pid is not None and not process_alive(watch_pid):
        raise HarnessError(f"--watch-pid {watch_pid}: no such process")

    init_database(database_url, user, password)

    fixed_port = port is not None
    attempts = 1 if fixed_port else 3
    failure = None
    for _ in range(attempts):
        p = port if fixed_port else free_port()
        proc = launch(state_dir, log_path, p, database_url, secret_key,
                      watch_pid)
        failure = wait_ready(proc, p, log_path)
        if failure is None:
            break
        kill_group(proc.pid)
        proc.poll()
        # A free port taken by someone else in between: try another one.
        if "Address already in use" not in log_tail(log_path, 5):
            break
    if failure is not None:
        raise HarnessError(
            f"starting taskfarm on {HOST}:{p} failed: {failure}\n"
            f"--- last lines of {log_path} ---\n{log_tail(log_path)}")

    info = {
        "url": f"http://{HOST}:{p}/api/",
        "user": user,
        "password": password,
        "pid": proc.pid,
        "port": p,
        "secret_key": secret_key,
        "database_url": database_url,
        "watch_pid": watch_pid,
        "state_dir": state_dir,
        "log": log_path,
    }
    write_info(state_dir, info)
    return info


def stop_server(state_dir):
    """Stop the server of state_dir. Returns a note for stderr, or None."""
    info = read_info(state_dir)
    if info is None:
        return f"no {SERVER_JSON} in {os.path.abspath(state_dir)}: nothing to stop"
    pid = int(info["pid"])
    if not group_alive(pid):
        return None
    if not kill_group(pid):
        raise HarnessError(
            f"process group {pid} is still alive after SIGTERM and SIGKILL")
    return None


# --------------------------------------------------------------------------
# Subcommands.


def cmd_start(args):
    state_dir = os.path.abspath(args.state_dir)
    info = start_server(
        state_dir,
        user=args.user,
        password=args.password or secrets.token_hex(16),
        secret_key=args.secret_key or secrets.token_hex(32),
        database_url=database_url_for(args, state_dir),
        watch_pid=args.watch_pid,
        port=args.port)
    print(json.dumps(info), flush=True)


def cmd_stop(args):
    note = stop_server(args.state_dir)
    if note:
        print(f"taskfarm_server.py: {note}", file=sys.stderr)


def cmd_restart(args):
    info = read_info(args.state_dir)
    if info is None:
        raise HarnessError(
            f"no {SERVER_JSON} in {os.path.abspath(args.state_dir)}: "
            "start a server first")
    stop_server(args.state_dir)
    watch_pid = args.watch_pid if args.watch_pid is not None \
        else info.get("watch_pid")
    if watch_pid is not None and not process_alive(watch_pid):
        raise HarnessError(
            f"the watched process {watch_pid} is gone: give --watch-pid")
    new = start_server(
        args.state_dir,
        user=info["user"],
        password=info["password"],
        secret_key=args.secret_key or info["secret_key"],
        database_url=info["database_url"],
        watch_pid=watch_pid,
        port=int(info["port"]))
    print(json.dumps(new), flush=True)


def cmd_env(args):
    info = read_info(args.state_dir)
    if info is None:
        raise HarnessError(
            f"no {SERVER_JSON} in {os.path.abspath(args.state_dir)}: "
            "start a server first")
    for name, key in (("TASKFARM_URL", "url"), ("TASKFARM_USER", "user"),
                      ("TASKFARM_PASSWORD", "password")):
        print(f"export {name}={shlex.quote(str(info[key]))}")


def cmd_watchdog(args):
    """Run the server command; stop it when process args.watch_pid is gone.

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
                child.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
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
    p.add_argument("--db", choices=DB_MODES, default="sqlite",
                   help="database kind (only sqlite is implemented)")
    p.add_argument("--database-url",
                   help="database URL (default: sqlite file in the state dir)")
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("stop", help="stop the server")
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
