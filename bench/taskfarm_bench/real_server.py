"""The real taskfarm 0.4.0 server of the test harness (scenarios c, d, e):
started through tests/harness/server.sh (which makes sure of the venv), stopped
and measured with the harness's own modules (process groups, state dir, the
PostgreSQL cluster's files)."""

import base64
import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from taskfarm_harness.postgres_cluster import read_harness_file
from taskfarm_harness.process_groups import group_cpu_seconds, pgid_of
from taskfarm_harness.state import state_paths

from .paths import HARNESS
from .processes import CLEANUP


def start_server(state, db, sampler=None):
    """(server.json info, None), or (None, the harness's error). The server's
    processes are registered with the load sampler as ours."""
    cmd = [str(HARNESS), "start", str(state), "--db", db, "--watch-pid", str(os.getpid())]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0:
        return None, r.stderr.strip()[-1500:]
    CLEANUP.servers.append(state)
    info = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    if sampler is not None:
        pg = info.get("postgresql") or {}
        pids = [info.get("pid"), pg.get("pid") if isinstance(pg.get("pid"), int) else None]
        sampler.add_ours(pids=pids, pgids=[pgid_of(p) for p in pids if p])
    return info, None


class RealServer:
    def __init__(self, info, state):
        self.info = info
        self.log_path = Path(state_paths(state)[2])
        self.log_read = 0  # bytes of the log already read by same_process_share
        self.url = info["url"]
        self.user = info["user"]
        self.password = info["password"]
        self.token = None
        pgids = {pgid_of(info["pid"]) or info["pid"]}
        pg = info.get("postgresql") or {}
        for key in ("pid", "postmaster_pid"):
            if isinstance(pg.get(key), int):
                g = pgid_of(pg[key])
                if g:
                    pgids.add(g)
        self.pgids = pgids

    def call(self, method, endpoint, body=None, auth=None):
        req = urllib.request.Request(self.url + endpoint, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        if body is not None:
            req.add_header("Content-Type", "application/json")
        user, pw = auth or (self.token, "")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())
        with urllib.request.urlopen(req, timeout=120) as r:
            data = r.read()
            return r.status, (json.loads(data) if data else None)

    def login(self):
        _, answer = self.call("GET", "token", auth=(self.user, self.password))
        self.token = answer["token"]

    def create_run(self, num_tasks):
        status, answer = self.call("POST", "run", {"numTasks": num_tasks})
        assert status == 201, status
        return answer["uuid"]

    def run_info(self, run_uuid):
        return self.call("GET", f"runs/{run_uuid}")[1]

    def cpu_seconds(self):
        """CPU of the server's processes so far (flask or gunicorn and its
        workers, and PostgreSQL)."""
        return group_cpu_seconds(self.pgids)

    def log_size(self):
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset):
        """What the server's log gained after `offset`."""
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read()

    def token_requests_since(self, offset):
        """The `GET /api/token` lines gunicorn's access log gained after `offset`."""
        new = self.log_since(offset).decode(errors="replace")
        return sum('"GET /api/token ' in line for line in new.splitlines())

    def loop_requests_since(self, run_uuid, offset):
        """The run's task-loop requests that gunicorn logged after `offset` (POST
        runs/U/task, GET and PUT runs/U/tasks/ID). gunicorn writes a line just
        after its answer: read until two reads 0.3 s apart agree."""
        needle = f" /api/runs/{run_uuid}/task".encode()
        last = None
        for _ in range(40):
            n = sum(1 for line in self.log_since(offset).split(b"\n") if needle in line)
            if n == last:
                return n
            last = n
            time.sleep(0.3)
        return last

    def same_process_share(self, run_uuid):
        """Of a run's requests in gunicorn's access log (which ends each line
        with the pid of the worker process that answered), the share answered
        by the same process as the request logged before it; None without
        such lines (the SQLite server is one process and logs no pid)."""
        # Runs follow one another: only what the log gained since the last
        # call can hold this run's lines (the whole log grows with every run).
        try:
            new = self.log_since(self.log_read)
        except OSError:
            return None
        self.log_read += new.rfind(b"\n") + 1  # a half-written last line is read next time
        pids = [m.group(1) for line in new.decode(errors="replace").splitlines()
                if run_uuid in line and (m := re.search(r'" \d{3} \S+ \d+ms <(\d+)>$', line))]
        if len(pids) < 2:
            return None
        return sum(a == b for a, b in zip(pids, pids[1:])) / (len(pids) - 1)

    def pg_connect(self):
        """A psycopg2 connection to the harness's cluster (the venv has psycopg2:
        the server uses it)."""
        import psycopg2
        pg = self.info["postgresql"]
        password = read_harness_file(pg["dir"])["role_password"]
        conn = psycopg2.connect(host="127.0.0.1", port=pg["port"], user=pg["role"],
                                password=password, dbname=pg["database"])
        conn.autocommit = True
        return conn
