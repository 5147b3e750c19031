"""The soak's server faults on the real server (PostgreSQL + gunicorn), with
a fake `pg_ctl` in front of the real one (TASKFARM_PG_BIN) that fails, or
holds until the test releases it, the next `pg_ctl start`: a fault whose
restart fails still ends with the service up (the final read of seed 27's
soak found PostgreSQL down after a PostgreSQL restart and a gunicorn kill at
the end of its faults), and the teardown never races a restart in flight
(which would leave a PostgreSQL running behind the soak). Root only, like
the soak (PostgreSQL runs as the `postgres` user)."""

import os
import pwd
import shutil
import tempfile
import threading
import time
import unittest
from pathlib import Path

from taskfarm_chaos.config import ROOT
from taskfarm_chaos.server import Server
from taskfarm_harness.errors import HarnessError  # importable once taskfarm_chaos is
from taskfarm_harness.postgres_cluster import PG_BIN_ENV, find_pg_bin, pg_running
from taskfarm_harness.state import read_info

FAKE_PG_CTL = """#!/bin/sh
# pg_ctl for the test: its next `start` fails while {gate}/fail exists (the
# file is removed), or waits while {gate}/hold exists (after creating
# {gate}/held); else, and then, the real one.
for a in "$@"; do
    if [ "$a" = start ]; then
        if [ -e {gate}/fail ]; then
            rm -f {gate}/fail
            echo "pg_ctl: start refused by the test" >&2
            exit 1
        fi
        if [ -e {gate}/hold ]; then
            : > {gate}/held
            while [ -e {gate}/hold ]; do sleep 0.05; done
        fi
    fi
done
exec {real}/pg_ctl "$@"
"""


def wait_for(condition, what, timeout=600):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout} s")
        time.sleep(0.02)


@unittest.skipUnless(os.geteuid() == 0, "root only (PostgreSQL runs as postgres)")
class ServerFaultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        real = find_pg_bin()
        cls.scratch = Path(tempfile.mkdtemp(prefix="server-faults-", dir=ROOT / "build"))
        cls.gate = Path(tempfile.mkdtemp(prefix="taskfarm-pg-gate-", dir="/tmp"))
        postgres = pwd.getpwnam("postgres")
        os.chown(cls.gate, postgres.pw_uid, postgres.pw_gid)
        cls.bin = cls.scratch / "pg-bin"
        cls.bin.mkdir()
        for program in ("initdb", "postgres", "psql"):
            (cls.bin / program).symlink_to(Path(real) / program)
        fake = cls.bin / "pg_ctl"
        fake.write_text(FAKE_PG_CTL.format(gate=cls.gate, real=real))
        fake.chmod(0o755)
        os.chmod(cls.scratch, 0o755)
        cls.saved_bin = os.environ.get(PG_BIN_ENV)
        os.environ[PG_BIN_ENV] = str(cls.bin)
        cls.server = Server(cls.scratch / "server")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            if cls.saved_bin is None:
                os.environ.pop(PG_BIN_ENV, None)
            else:
                os.environ[PG_BIN_ENV] = cls.saved_bin
            shutil.rmtree(cls.gate, ignore_errors=True)
            shutil.rmtree(cls.scratch, ignore_errors=True)

    def postgres(self):
        return read_info(self.server.state_dir)["postgresql"]

    def test_1_a_postgres_restart_that_fails_ends_with_the_service_up(self):
        (self.gate / "fail").touch()
        with self.assertRaises(HarnessError):  # the fault's own restart failed...
            self.server.restart_postgres()
        self.assertFalse((self.gate / "fail").exists())
        # ...and yet the service is up: the final read works.
        self.assertIsNone(self.server.health())
        self.assertEqual(self.server.final_state("no-such-run")["tasks"], [])
        self.assertEqual(self.server.recoveries[-1]["why"], "after postgres-restart")

    def test_2_a_server_kill_whose_restart_fails_ends_with_the_service_up(self):
        (self.gate / "fail").touch()
        with self.assertRaises(HarnessError):
            self.server.kill_and_restart()
        self.assertIsNone(self.server.health())
        self.assertEqual(self.server.final_state("no-such-run")["tasks"], [])
        self.assertEqual(self.server.recoveries[-1]["why"], "after server-kill")

    def test_3_the_teardown_waits_for_a_restart_in_flight(self):
        (self.gate / "hold").touch()
        fault = threading.Thread(target=self.server.restart_postgres)
        fault.start()
        wait_for((self.gate / "held").exists, "held in pg_ctl start")
        teardown = threading.Thread(target=self.server.stop)
        teardown.start()
        # The teardown either waits for the fault (the stop is under way) or,
        # as before the fix, has stopped everything already; then the
        # restart goes on.
        wait_for(lambda: self.server.stopping.is_set() or not teardown.is_alive(), "stopping")
        (self.gate / "hold").unlink()
        fault.join()
        teardown.join()
        # Nothing runs after the teardown: no PostgreSQL started behind it.
        self.assertFalse(pg_running(self.postgres()), "PostgreSQL runs after the teardown")
        # And a fault after the teardown does nothing.
        self.assertIsNone(self.server.restart_postgres())
        self.assertFalse(pg_running(self.postgres()))


if __name__ == "__main__":
    unittest.main()
