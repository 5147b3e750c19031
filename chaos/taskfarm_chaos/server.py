"""The real server of the soak: the harness's PostgreSQL + gunicorn -w 4
(tests/harness/taskfarm_server.py, run as a command so that its restart is the
one users of the harness get), watched by this process so that nothing
outlives it. Faults: gunicorn's master SIGKILLed and the server started again
on the same port with its database; PostgreSQL restarted under the running
server.

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

from taskfarm_harness.errors import HarnessError
from taskfarm_harness.postgres_cluster import pg_run, pg_start, pg_stop
from taskfarm_harness.process_groups import process_alive, signal_process, wait_gone
from taskfarm_harness.state import read_info

from .config import ROOT

SERVER_CLI = ROOT / "tests" / "harness" / "taskfarm_server.py"

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
        if read_info(self.state_dir) is not None:
            self._cli("stop")

    def gunicorn_master(self):
        """The gunicorn master: the child of the watchdog that leads the group."""
        kids = _children(int(self.info["pid"]))
        return kids[0] if kids else None

    def kill_and_restart(self):
        """SIGKILL of gunicorn's master, then the server started again on the
        same port with the same database. Returns the master's pid."""
        with self.lock:
            master = self.gunicorn_master()
            if master is not None:
                signal_process(master, signal.SIGKILL)
                wait_gone([master], 10.0)
            self.info = self._cli("restart")
            return master

    def restart_postgres(self):
        """PostgreSQL stopped (fast: sessions cut) and started again on its
        port, under the running server."""
        with self.lock:
            pg = dict(read_info(self.state_dir)["postgresql"])
            pg_stop(pg, remove_external=False)
            pg_start(pg, fixed_port=int(pg["port"]))
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
