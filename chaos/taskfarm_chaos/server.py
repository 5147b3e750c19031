"""The real server of the soak: the harness's PostgreSQL + gunicorn -w 4
(tests/harness/taskfarm_server.py, run as a command so that its restart is the
one users of the harness get), watched by this process so that nothing
outlives it. Faults: gunicorn's master SIGKILLed and the server started again
on the same port with its database; PostgreSQL restarted under the running
server.

A fault ends with the service checked healthy (`recover`: PostgreSQL
answers a query on its socket, the server answers `GET /` on its port),
restarted again if a restart failed (a loaded machine can make `pg_ctl start`
or gunicorn's first answer miss the harness's timeouts): a soak whose
database stayed down after its last fault could not read its final state.
`stop` takes the fault lock and closes the server to faults, so a restart in
flight ends before the teardown and none starts after it.

The audit: a trigger on the server's `tasks` table, installed as the database
superuser, writes every insert and update (status and percentage before and
after, the worker, the database's clock) into `chaos_audit`. The oracle reads
that table: it sees what reached the database whatever any client believes.
"""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

from taskfarm_harness.errors import HarnessError
from taskfarm_harness.postgres_cluster import pg_run, pg_start, pg_stop
from taskfarm_harness.process_groups import group_alive, process_alive, signal_process, wait_gone
from taskfarm_harness.server import http_get_root
from taskfarm_harness.state import read_info

from .config import ROOT

SERVER_CLI = ROOT / "tests" / "harness" / "taskfarm_server.py"
# How long `recover` tries (restart after restart) to get the service healthy.
RECOVER_TIMEOUT = 600.0
# One look at `GET /`: long, since on a loaded machine the answer queues
# behind the workers' requests.
PROBE_TIMEOUT = 30.0

AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS chaos_audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    op text, task_row int, run_id int, task int,
    old_status text, new_status text, old_percent float8, new_percent float8,
    old_worker int, new_worker int);
CREATE OR REPLACE FUNCTION chaos_audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO chaos_audit (op, task_row, run_id, task, old_status, new_status,
                                 old_percent, new_percent, old_worker, new_worker)
        VALUES ('U', NEW.id, NEW.run_id, NEW.task, OLD.status::text, NEW.status::text,
                OLD."percentCompleted", NEW."percentCompleted", OLD.worker_id, NEW.worker_id);
    ELSE
        INSERT INTO chaos_audit (op, task_row, run_id, task, new_status, new_percent, new_worker)
        VALUES ('I', NEW.id, NEW.run_id, NEW.task, NEW.status::text,
                NEW."percentCompleted", NEW.worker_id);
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS chaos_audit ON tasks;
CREATE TRIGGER chaos_audit AFTER INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION chaos_audit_row();
"""


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class Server:
    def __init__(self, state_dir):
        self.state_dir = str(state_dir)
        self.info = None
        self.lock = threading.Lock()  # one server fault at a time
        self.closed = False           # set by stop: no fault any more
        self.stopping = threading.Event()
        self.recoveries = []          # what `recover` found and did

    def _cli(self, *args):
        cmd = [sys.executable, str(SERVER_CLI), *args, "--state-dir", self.state_dir]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if r.returncode != 0:
            raise HarnessError(f"{' '.join(args)} failed: {r.stderr.strip()[-2000:]}")
        lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None

    def start(self):
        self.info = self._cli("start", "--db", "postgresql", "--watch-pid", str(os.getpid()))
        self.psql(AUDIT_SQL)
        return self.info

    @property
    def port(self):
        return int(self.info["port"])

    def stop(self):
        """The final stop, once the fault in flight (if any) has ended;
        the faults that come after do nothing."""
        self.stopping.set()  # seen by tests: the stop now waits for the lock
        with self.lock:
            self.closed = True
            if read_info(self.state_dir) is not None:
                self._cli("stop")

    def health(self):
        """None when the service is up (PostgreSQL answers a query on its
        socket, the server's process group lives and answers `GET /` 200),
        else what is wrong."""
        if self.info is None:
            return "never started"
        try:
            self.psql("SELECT 1;")
        except (HarnessError, KeyError, TypeError, OSError) as e:
            return f"PostgreSQL does not answer: {str(e)[-300:]}"
        if not group_alive(int(self.info["pid"])):
            return f"the server's process group {self.info['pid']} is gone"
        answer = http_get_root(self.port, timeout=PROBE_TIMEOUT)
        if answer is None or answer[0] != 200:
            return f"GET / on port {self.port} answered {answer and answer[0]}"
        return None

    def recover(self, why, timeout=RECOVER_TIMEOUT):
        """Waits for the fault in flight to end, then checks the service and
        restarts it (server and PostgreSQL, same ports and database) until
        it is healthy. Returns the restarts it needed ([] when it was up);
        raises HarnessError when it is still down after `timeout`."""
        with self.lock:
            return self._recover(why, timeout)

    def _recover(self, why, timeout):
        if self.closed:
            return []
        deadline = time.monotonic() + timeout
        done = []
        while True:
            wrong = self.health()
            if wrong is None:
                return done
            if time.monotonic() >= deadline:
                raise HarnessError(f"the service is still down after {timeout:.0f} s of restarts "
                                   f"({why}): {wrong}")
            step = {"why": why, "found": wrong}
            try:
                self.info = self._cli("restart")
                step["restarted"] = True
            except HarnessError as e:  # tried again while time is left
                step["restarted"] = False
                step["error"] = str(e)[-500:]
            done.append(step)
            self.recoveries.append(step)

    def gunicorn_master(self):
        """The gunicorn master: the child of the watchdog that leads the group."""
        kids = _children(int(self.info["pid"]))
        return kids[0] if kids else None

    def kill_and_restart(self):
        """SIGKILL of gunicorn's master, then the server started again on the
        same port with the same database. Returns the master's pid."""
        with self.lock:
            if self.closed:
                return None
            master = self.gunicorn_master()
            if master is not None:
                signal_process(master, signal.SIGKILL)
                wait_gone([master], 10.0)
            try:
                self.info = self._cli("restart")
            finally:
                self._recover("after server-kill", RECOVER_TIMEOUT)
            return master

    def restart_postgres(self):
        """PostgreSQL stopped (fast: sessions cut) and started again on its
        port, under the running server."""
        with self.lock:
            if self.closed:
                return None
            pg = dict(read_info(self.state_dir)["postgresql"])
            try:
                pg_stop(pg, remove_external=False)
                pg_start(pg, fixed_port=int(pg["port"]))
            finally:
                self._recover("after postgres-restart", RECOVER_TIMEOUT)
            return pg["pid"]

    def alive(self):
        return self.info is not None and process_alive(int(self.info["pid"]))

    def psql(self, sql):
        pg = read_info(self.state_dir)["postgresql"]
        rc, out = pg_run(pg, "psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg["socket_dir"],
                                      "-p", str(pg["port"]), "-d", pg["database"], "-f", "-"],
                         input_text=sql)
        if rc != 0:
            raise HarnessError(f"psql failed (exit {rc}): {out[-2000:]}")
        return out

    def query(self, select):
        """The rows of a SELECT as dicts (through COPY ... CSV)."""
        out = self.psql(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true);")
        return list(csv.DictReader(io.StringIO(out)))

    def final_state(self, uuid):
        """The run's tasks, the audit of its tasks and its workers, from the
        database itself."""
        run = f"(SELECT id FROM runs WHERE uuid = '{uuid}')"
        tasks = self.query(
            f'SELECT task, status::text AS status, "percentCompleted" AS percent, worker_id '
            f"FROM tasks WHERE run_id = {run} ORDER BY task")
        audit = self.query(
            "SELECT id, to_char(at, 'HH24:MI:SS.US') AS at, op, task, old_status, new_status, "
            "old_percent, new_percent, old_worker, new_worker "
            f"FROM chaos_audit WHERE run_id = {run} ORDER BY id")
        workers = self.query("SELECT id, uuid, hostname, pid FROM workers ORDER BY id")
        return {"tasks": tasks, "audit": audit, "workers": workers}
