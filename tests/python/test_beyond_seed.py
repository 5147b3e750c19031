"""What taskfarm_worker_rs adds to the seed's API, against the real server
(tests/python/run.sh starts it): the token, the update interval (every update
at once unless asked), deadlines, the journal, requeue, held_percent, stop
signals (in child processes: they are process-wide), closed handles and the
exception classes. The Python client reads the server where another process's
view matters.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import taskfarm_worker as seed
import taskfarm_worker_rs as ours

URL = os.environ["TASKFARM_URL"]
USER = os.environ["TASKFARM_USER"]
PASSWORD = os.environ["TASKFARM_PASSWORD"]


def run_child(code, env=None, **kwargs):
    """Runs `code` in a new Python with this package, returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, check=False, timeout=120, **kwargs)


class BeyondSeed(unittest.TestCase):
    def run_of(self, n):
        tf = ours.TaskFarm(USER, PASSWORD, numTasks=n, url_base=URL)
        self.addCleanup(tf.close)
        return tf

    def seen_by_others(self, uuid, task):
        """A task as another process sees it: through the Python client."""
        return seed.TaskFarm(USER, PASSWORD, uuid=uuid, url_base=URL).getTaskInfo(task, "")

    def test_update_interval_default_sends_every_update(self):
        tf = self.run_of(2)
        with ours.TaskFarmWorker(USER, PASSWORD, tf.uuid, url_base=URL) as w:
            task = w.task
            w.update(30)
            self.assertEqual(self.seen_by_others(tf.uuid, task)["percentCompleted"], 30.0)
            w.update(60)
            self.assertEqual(self.seen_by_others(tf.uuid, task)["percentCompleted"], 60.0)
        # Asked for: coalesced; other processes see the update after the interval or a flush.
        with ours.TaskFarmWorker(USER, PASSWORD, tf.uuid, url_base=URL, update_interval=3600) as w:
            task = w.task
            w.update(40)
            self.assertEqual(self.seen_by_others(tf.uuid, task)["percentCompleted"], 0.0)
            self.assertEqual(w.held_percent, 40.0)
            w.flush()
            self.assertEqual(self.seen_by_others(tf.uuid, task)["percentCompleted"], 40.0)
            w.update(100)
            w.done()  # the waiting 100 goes with the done
            self.assertEqual(self.seen_by_others(tf.uuid, task)["status"], "done")
        with self.assertRaises(ValueError):
            ours.TaskFarmWorker(USER, PASSWORD, tf.uuid, url_base=URL, update_interval=-1)

    def test_token(self):
        tf = self.run_of(3)
        token = tf.token
        self.assertTrue(token)
        self.assertEqual(tf.token_auth, (token, ""))
        # A worker with the token alone: no user, no password in its environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFARM_")}
        env["TASKFARM_WORKER_LIB"] = os.environ.get("TASKFARM_WORKER_LIB", "")
        code = f"""
            import taskfarm_worker_rs as tw
            w = tw.TaskFarmWorker.with_token({token!r}, {tf.uuid!r}, {URL!r})
            t = w.task; w.update(100); w.done(); print(t)
            w2 = tw.TaskFarmWorker(None, None, {tf.uuid!r}, url_base={URL!r})   # TASKFARM_TOKEN
            t = w2.task; w2.update(100); w2.done(); print(t)
            """
        child = run_child(code, env=dict(env, TASKFARM_TOKEN=token))
        self.assertEqual(child.returncode, 0, child.stderr)
        self.assertEqual(sorted(int(x) for x in child.stdout.split()), [0, 1])
        self.assertNotIn(token, child.stderr)
        self.assertEqual(tf.numDone, 2)
        # No token anywhere: refused before a request, never a password check instead.
        child = run_child("import taskfarm_worker_rs as tw\ntw.TaskFarm.with_token(None, '0' * 32, 'http://127.0.0.1:9/api/')",
                          env=env)
        self.assertIn("InvalidArgumentError", child.stderr)
        self.assertEqual(ours.TaskFarm.with_token(token, tf.uuid, URL).numTasks, 3)

    def test_requeue_held_percent_deadline_journal(self):
        tf = self.run_of(2)
        with ours.TaskFarmWorker(USER, PASSWORD, tf.uuid, url_base=URL) as w:
            self.assertIsNone(w.held_percent)
            task = w.task
            w.update(25)
            self.assertEqual(w.held_percent, 25.0)
            w.requeue()
            self.assertIsNone(w.held_percent)
            self.assertEqual(self.seen_by_others(tf.uuid, task)["status"], "waiting")
            # A deadline that leaves no time for a task of 1000 s: no task taken.
            w.set_deadline(time.time() + 60, 1000)
            self.assertIsNone(w.task)
            self.assertTrue(w.stopped)
            with self.assertRaises(ValueError):
                w.set_deadline(time.time() - 10)
        with tempfile.TemporaryDirectory() as journal, ours.TaskFarmWorker(USER, PASSWORD, tf.uuid, url_base=URL) as w:
            w.set_journal(journal)
            w.task  # noqa: B018
            names = os.listdir(journal)
            self.assertEqual(len(names), 1)
            self.assertIn(w.worker_uuid, names[0])
            with self.assertRaises(ValueError):
                w.set_journal(os.path.join(journal, "missing"))
            w.requeue()

    def test_stop_signals(self):
        tf = self.run_of(3)
        env = dict(os.environ)
        # exit=False: the program carries on; the task goes back at its percentage.
        code = f"""
            import os, signal
            import taskfarm_worker_rs as tw
            tw.stop_on_signals([signal.SIGUSR1], exit=False)
            w = tw.TaskFarmWorker(None, None, {tf.uuid!r}, url_base=None)  # None: TASKFARM_URL
            t = w.task
            w.update(20)
            os.kill(os.getpid(), signal.SIGUSR1)
            w.update(35)
            print(t, w.stopped, w.task, tw.stop_requested() == signal.SIGUSR1)
            """
        child = run_child(code, env=env)
        self.assertEqual(child.returncode, 0, child.stderr)
        task, stopped, next_task, requested = child.stdout.split()
        self.assertEqual((stopped, next_task, requested), ("True", "None", "True"))
        info = self.seen_by_others(tf.uuid, int(task))
        self.assertEqual((info["status"], info["percentCompleted"]), ("waiting", 35.0))
        # exit=True: the process ends by the signal, the task handed back first.
        code = f"""
            import sys
            import taskfarm_worker_rs as tw
            tw.stop_on_signals()
            w = tw.TaskFarmWorker(None, None, {tf.uuid!r}, url_base=None)  # None: TASKFARM_URL
            t = w.task
            w.update(45)
            print(t, flush=True)
            sys.stdin.read()   # computing until the signal comes
            """
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        task = int(child.stdout.readline())
        child.send_signal(signal.SIGTERM)
        self.assertEqual(child.wait(timeout=60), -signal.SIGTERM)
        child.stdin.close()
        child.stdout.close()
        info = self.seen_by_others(tf.uuid, task)
        self.assertEqual((info["status"], info["percentCompleted"]), ("waiting", 45.0))

    def test_errors_and_closed_handles(self):
        with socket.socket() as s:  # a port with nothing listening
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        old = os.environ.get("TASKFARM_RETRIES")
        os.environ["TASKFARM_RETRIES"] = "0"
        try:
            with self.assertRaises(ours.TaskFarmConnectionError) as caught:
                ours.TaskFarm(USER, PASSWORD, uuid="0" * 32, url_base=f"http://127.0.0.1:{port}/api/")
        finally:
            if old is None:
                del os.environ["TASKFARM_RETRIES"]
            else:
                os.environ["TASKFARM_RETRIES"] = old
        self.assertIsInstance(caught.exception, ConnectionError)
        self.assertIsInstance(caught.exception, RuntimeError)
        self.assertNotIn(PASSWORD, str(caught.exception))
        with self.assertRaises(ours.TaskFarmError) as caught:
            ours.TaskFarm(USER, "Not-The-Password-71", uuid="0" * 32, url_base=URL)
        self.assertEqual(caught.exception.http_status, 401)
        self.assertEqual(caught.exception.status_name, "TF_ERR_AUTH")
        self.assertTrue(str(caught.exception).startswith("[HTTP 401]: "), str(caught.exception))
        self.assertNotIn("Not-The-Password-71", str(caught.exception))
        tf = self.run_of(1)
        tf.close()
        with self.assertRaisesRegex(ValueError, "closed"):
            tf.numTasks  # noqa: B018
        tf.close()  # twice: nothing
        self.assertEqual(ours.__version__.count("."), 2)


if __name__ == "__main__":
    unittest.main()
