"""A task's outcomes beyond done at 100 %, against the real server
(tests/python/run.sh starts it): `fail(message)` hands the task back, its
attempt counted in a journal directory across workers and the task set aside
at TASKFARM_MAX_ATTEMPTS; `attempt`; `done()` below 100 % (the task stays
computing, as with the Python client, and a NotDoneWarning says so); the
errors of a bad message or setting. The Python client reads the server, as
another process sees it.
"""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
import warnings
from unittest import mock

import taskfarm_worker as seed
import taskfarm_worker_rs as ours

URL = os.environ["TASKFARM_URL"]
USER = os.environ["TASKFARM_USER"]
PASSWORD = os.environ["TASKFARM_PASSWORD"]


class Outcomes(unittest.TestCase):
    def run_of(self, n):
        tf = ours.TaskFarm(USER, PASSWORD, numTasks=n, url_base=URL)
        self.addCleanup(tf.close)
        return tf

    def worker(self, uuid, journal=None):
        w = ours.TaskFarmWorker(USER, PASSWORD, uuid, url_base=URL)
        self.addCleanup(w.close)
        if journal is not None:
            w.set_journal(journal)
        return w

    def journal(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        return directory.name

    def seen_by_others(self, uuid, task):
        """(status, percentCompleted) of a task, read through the Python client."""
        info = seed.TaskFarm(USER, PASSWORD, uuid=uuid, url_base=URL).getTaskInfo(task, "")
        return info["status"], info["percentCompleted"]

    def test_fail_without_journal_hands_back_and_counts_nothing(self):
        tf = self.run_of(1)
        w = self.worker(tf.uuid)
        self.assertIsNone(w.attempt)
        w.fail("nothing held: nothing happens")
        task = w.task
        self.assertEqual(w.attempt, 1)
        self.assertIs(type(w.attempt), int)
        w.update(30)
        w.fail("diverged at step 12")
        self.assertIsNone(w.attempt)
        self.assertIsNone(w.held_percent)
        self.assertEqual(self.seen_by_others(tf.uuid, task), ("waiting", 30.0))
        # The only task, taken again: no journal, so no attempt was counted.
        self.assertEqual(w.task, task)
        self.assertEqual(w.attempt, 1)
        w.update(100)
        w.done()
        self.assertEqual(tf.numDone, 1)

    def test_fail_with_journal_counts_across_workers_then_sets_aside(self):
        tf = self.run_of(2)
        journal = self.journal()
        w1, w2 = self.worker(tf.uuid, journal), self.worker(tf.uuid, journal)
        with mock.patch.dict(os.environ, {"TASKFARM_MAX_ATTEMPTS": "2"}):
            task = w1.task
            self.assertEqual(w1.attempt, 1)
            w1.update(20)
            w1.fail("first attempt: out of memory")
            self.assertEqual(self.seen_by_others(tf.uuid, task), ("waiting", 20.0))
            # Another worker of the same journal directory takes it: its second attempt.
            self.assertEqual(w2.task, task)
            self.assertEqual(w2.attempt, 2)
            w2.fail("second attempt: out of memory")
            # Two attempts of TASKFARM_MAX_ATTEMPTS=2: set aside, left computing, taken by nobody.
            self.assertIsNone(w2.attempt)
            self.assertEqual(self.seen_by_others(tf.uuid, task)[0], "computing")
            other = w1.task
            self.assertNotEqual(other, task)
            self.assertEqual(w1.attempt, 1)
            w1.update(100)
            w1.done()
            self.assertIsNone(w1.task)
            self.assertIsNone(w2.task)
            self.assertEqual((tf.numDone, tf.numComputing, tf.numWaiting), (1, 1, 0))

    def test_fail_default_max_attempts_is_three(self):
        tf = self.run_of(1)
        journal = self.journal()
        w = self.worker(tf.uuid, journal)
        with mock.patch.dict(os.environ):
            os.environ.pop("TASKFARM_MAX_ATTEMPTS", None)
            for attempt in (1, 2):
                self.assertEqual(w.task, 0)
                self.assertEqual(w.attempt, attempt)
                w.fail(f"attempt {attempt} failed")
                self.assertEqual(self.seen_by_others(tf.uuid, 0)[0], "waiting")
            self.assertEqual(w.task, 0)
            self.assertEqual(w.attempt, 3)
            w.fail("attempt 3 failed")
            self.assertEqual(self.seen_by_others(tf.uuid, 0)[0], "computing")
            self.assertIsNone(w.task)

    def test_fail_bad_input_loses_nothing(self):
        tf = self.run_of(1)
        journal = self.journal()
        w = self.worker(tf.uuid, journal)
        task = w.task
        w.update(40)
        with self.assertRaises(TypeError):
            w.fail(None)
        with self.assertRaises(TypeError):
            w.fail(b"bytes")
        with self.assertRaises(ours.InvalidArgumentError):
            w.fail("cut\0short")
        with mock.patch.dict(os.environ, {"TASKFARM_MAX_ATTEMPTS": "many"}):
            with self.assertRaises(ours.InvalidArgumentError) as caught:
                w.fail("a bad setting")
        self.assertIsInstance(caught.exception, ValueError)
        self.assertIn("TASKFARM_MAX_ATTEMPTS", str(caught.exception))
        # Each refusal left the task held, its attempt uncounted, the server unchanged.
        self.assertEqual((w.held_percent, w.attempt), (40.0, 1))
        self.assertEqual(self.seen_by_others(tf.uuid, task), ("computing", 40.0))
        w.fail("a message in UTF-8: Überlauf")
        self.assertEqual(self.seen_by_others(tf.uuid, task), ("waiting", 40.0))

    def test_done_below_100_warns_and_leaves_the_task_computing(self):
        tf = self.run_of(2)
        w = self.worker(tf.uuid)
        task = w.task
        w.update(40)
        with self.assertWarns(ours.NotDoneWarning) as caught:
            result = w.done()
        self.assertIsNone(result)  # the Python client's done() returns None too
        self.assertIsInstance(caught.warning, UserWarning)
        self.assertIn(f"task {task} ", str(caught.warning))
        self.assertIn("40", str(caught.warning))
        self.assertEqual(caught.filename, __file__)  # points at the caller's line
        self.assertEqual(self.seen_by_others(tf.uuid, task), ("computing", 40.0))
        self.assertIsNone(w.held_percent)
        self.assertNotEqual(w.task, task)  # released: the next task is another one
        # At 100: no warning, marked done.
        w.update(100)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            self.assertIsNone(w.done())
            self.assertIsNone(w.done())  # nothing held: nothing happens
        self.assertEqual(tf.numDone, 1)

    def test_done_below_100_as_an_error_when_asked(self):
        tf = self.run_of(1)
        w = self.worker(tf.uuid)
        task = w.task
        with warnings.catch_warnings():
            warnings.simplefilter("error", ours.NotDoneWarning)
            with self.assertRaises(ours.NotDoneWarning):
                w.done()  # no update at all: 0 %
        self.assertEqual(self.seen_by_others(tf.uuid, task), ("computing", 0.0))
        self.assertIsNone(w.held_percent)

    def test_done_below_100_after_a_stop_hands_the_task_back(self):
        tf = self.run_of(2)
        code = f"""
            import os, signal, warnings
            import taskfarm_worker_rs as tw
            warnings.simplefilter("error")
            tw.stop_on_signals([signal.SIGUSR1], exit=False)
            w = tw.TaskFarmWorker(None, None, {tf.uuid!r}, url_base=None)  # None: TASKFARM_URL
            t = w.task
            w.update(25)
            os.kill(os.getpid(), signal.SIGUSR1)
            print(t, w.done(), w.stopped, w.task)
            """
        child = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                               check=False, timeout=120)
        self.assertEqual(child.returncode, 0, child.stderr)
        task, result, stopped, next_task = child.stdout.split()
        self.assertEqual((result, stopped, next_task), ("None", "True", "None"))
        self.assertEqual(self.seen_by_others(tf.uuid, int(task)), ("waiting", 25.0))


if __name__ == "__main__":
    unittest.main()
