"""A private PostgreSQL cluster for `--db postgresql`.

The cluster is described by a dict, stored in server.json under "postgresql":
  bin         directory of initdb, pg_ctl, postgres, psql
  os_user     the OS user that runs it (postgres when we are root)
  dir         its directory: DIR/postgresql, or /tmp/taskfarm-pg-* (external)
  data        dir/data (PGDATA); socket_dir: dir/run; log: dir/postgresql.log
  external    True when dir is outside DIR (removed by a final stop)
  port, pid   TCP port on 127.0.0.1 and the postmaster's PID
  database, role
"""

import glob
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile

from .errors import HarnessError
from .loopback import HOST, free_port
from .process_groups import process_alive, signal_process, wait_gone
from .state import open_private

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
    except KeyError as e:
        raise HarnessError(
            f"--db postgresql as root: PostgreSQL must run as the OS user "
            f"`{PG_OS_USER}`, which does not exist. `{PG_INSTALL_HINT}` "
            "creates it.") from e
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
                                timeout=timeout, check=False, **kwargs).returncode
        except subprocess.TimeoutExpired:
            rc = None
        except OSError as e:
            raise HarnessError(f"cannot run {shlex.join(cmd)}: {e}") from e
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
                              stderr=subprocess.DEVNULL, check=False,
                              **kwargs).returncode == 0
    except OSError:
        return False


def read_harness_file(root):
    try:
        with open(os.path.join(root, PG_HARNESS_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _cluster_complete(root):
    return (read_harness_file(root) is not None
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
    directory (/tmp/taskfarm-pg-*) is removed afterwards. Without
    data/postmaster.pid (the directory was removed under it), the postmaster
    recorded at its start is stopped by signal (SIGINT: fast shutdown,
    SIGQUIT: immediate, then SIGKILL)."""
    pid = pg_postmaster_pid(pg)
    if pid is None and _is_postmaster_of(pg.get("pid"), pg):
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            signal_process(pg["pid"], sig)
            if wait_gone([pg["pid"]], 5.0):
                break
    if pid is not None and process_alive(pid):
        for mode in ("fast", "immediate"):
            pg_run(pg, "pg_ctl", ["-D", pg["data"], "-m", mode, "-w",
                                  "-t", str(PG_STOP_TIMEOUT), "stop"],
                   timeout=PG_STOP_TIMEOUT + 15)
            if wait_gone([pid], 5.0):
                break
        else:
            signal_process(pid, signal.SIGKILL)
            if not wait_gone([pid], 5.0):
                raise HarnessError(
                    f"PostgreSQL (postmaster {pid}, {pg['data']}) is still "
                    "alive after pg_ctl stop -m fast, -m immediate and SIGKILL")
    if remove_external and pg.get("external"):
        shutil.rmtree(pg["dir"], ignore_errors=True)


def _is_postmaster_of(pid, pg):
    """True when pid is a live `postgres` process started with pg's data
    directory (not another process that reuses the pid)."""
    if not pid or not process_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return bool(args) and os.path.basename(args[0]) == b"postgres" \
        and os.fsencode(pg["data"]) in args


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
        saved = read_harness_file(root)
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
        role_password = read_harness_file(pg["dir"])["role_password"]
    except BaseException:
        pg_stop(pg, remove_external=fresh)
        raise
    return pg, pg_database_url(pg, role_password)
