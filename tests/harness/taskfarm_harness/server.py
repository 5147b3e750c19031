"""The taskfarm server process: the command for each database mode, a
detached start (through the watchdog with --watch-pid), the wait until it
answers, and the stop of its process group and PostgreSQL."""

import datetime
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .database import init_database
from .errors import HarnessError
from .loopback import HOST, free_port
from .postgres_cluster import pg_postmaster_pid, pg_prepare, pg_running, pg_stop
from .process_groups import group_alive, kill_group, process_alive
from .state import SERVER_JSON, log_tail, read_info, state_paths, write_info

READY_TIMEOUT = 60.0
GUNICORN_WORKERS = 4
# The command line whose `_watchdog` subcommand watches a process.
CLI = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "taskfarm_server.py")


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
    # with 500 on that run, docs/PROTOCOL.md). Serving one request at a time makes
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
        cmd = [sys.executable, CLI, "_watchdog",
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
        # A probe waits as long as the deadline allows: with hundreds of
        # workers retrying, a server that is up answers GET / only after the
        # requests queued before it (a probe given up on would queue again
        # at the back).
        answer = http_get_root(port, timeout=max(1.0, deadline - time.monotonic()))
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

