"""The oracle on synthetic histories: a clean history passes, and each kind
of violation is found, with the seed, the task and the lines that show it."""

import unittest

from taskfarm_chaos.oracle import check, format_violation

S = 1_000_000_000  # ns per second


def line(t, worker, event, *args):
    return " ".join([str(int(t * S)), worker, "100", event, *map(str, args)])


def task_lines(worker, task, t, status="TF_OK"):
    """A whole task: start, computed 1 s later, done."""
    return [line(t, worker, "start", task), line(t + 1, worker, "computed", task),
            line(t + 1.1, worker, "done", task, status)]


def audit(task, old, new, pct=100.0, op="U", worker="1"):
    return {"id": 0, "at": "00:00:00", "op": op, "task": str(task), "old_status": old, "new_status": new,
            "old_percent": "", "new_percent": str(pct), "old_worker": worker, "new_worker": worker}


def history(logs, processes, tasks=None, audit_rows=None, faults=(), verdicts=(), n=2):
    if tasks is None:
        tasks = [{"task": str(t), "status": "done", "percent": "100"} for t in range(n)]
    if audit_rows is None:
        audit_rows = [r for t in range(n) for r in (audit(t, None, "computing", 0, op="I"),
                                                      audit(t, "computing", "done"))]
    return {"seed": 42, "num_tasks": n, "stale": 4.0, "logs": logs, "processes": processes,
            "tasks": tasks, "audit": audit_rows, "faults": list(faults), "verdicts": list(verdicts),
            "workers": []}


def proc(name, started=0, ended=100, status=0):
    return {"name": name, "pid": 100, "started": int(started * S), "ended": None if ended is None else int(ended * S),
            "status": status, "skew": 0}


class OracleTest(unittest.TestCase):
    def kinds(self, h):
        result = check(h)
        return {k: n for k, n in result["counts"].items() if n}, result

    def test_a_clean_history_passes(self):
        logs = {"w0.1": task_lines("w0.1", 0, 1) + task_lines("w0.1", 1, 3)}
        kinds, result = self.kinds(history(logs, [proc("w0.1")]))
        self.assertEqual(kinds, {})
        self.assertEqual(result["done_percent"], 100.0)

    def test_a_task_recomputed_after_its_worker_died_is_allowed(self):
        logs = {"w0.1": [line(1, "w0.1", "start", 0)],  # SIGKILLed at 1.5 s
                "w1.1": task_lines("w1.1", 0, 5) + task_lines("w1.1", 1, 8)}
        kinds, result = self.kinds(history(logs, [proc("w0.1", ended=1.5, status=-9), proc("w1.1")]))
        self.assertEqual(kinds, {})
        self.assertEqual(result["computed_again"], 1)

    def test_a_task_not_done_is_lost(self):
        logs = {"w0.1": task_lines("w0.1", 0, 1)}
        tasks = [{"task": "0", "status": "done", "percent": "100"},
                 {"task": "1", "status": "computing", "percent": "50"}]
        kinds, result = self.kinds(history(logs, [proc("w0.1")], tasks=tasks,
                                           audit_rows=[audit(0, "computing", "done")]))
        self.assertEqual(kinds, {"lost": 1})
        v = result["violations"][0]
        self.assertEqual((v["seed"], v["task"]), (42, 1))
        self.assertIn("computing at 50 %", format_violation(v))

    def test_a_task_never_handed_out_is_lost(self):
        logs = {"w0.1": task_lines("w0.1", 0, 1)}
        tasks = [{"task": "0", "status": "done", "percent": "100"}]
        kinds, _ = self.kinds(history(logs, [proc("w0.1")], tasks=tasks, audit_rows=[]))
        self.assertEqual(kinds, {"lost": 1})

    def test_two_dones_that_returned_ok_are_done_twice(self):
        logs = {"w0.1": task_lines("w0.1", 0, 1) + task_lines("w0.1", 1, 3),
                "w1.1": task_lines("w1.1", 0, 5)}
        kinds, result = self.kinds(history(logs, [proc("w0.1"), proc("w1.1")]))
        self.assertIn("done-twice", kinds)
        v = [v for v in result["violations"] if v["kind"] == "done-twice"][0]
        text = format_violation(v)
        self.assertIn("seed 42, task 0", text)
        self.assertIn("w0.1.log", text)
        self.assertIn("w1.1.log", text)

    def test_a_row_that_becomes_done_twice_is_done_twice(self):
        logs = {"w0.1": task_lines("w0.1", 0, 1) + task_lines("w0.1", 1, 3)}
        rows = [audit(0, None, "computing", 0, op="I"), audit(0, "computing", "done"),
                audit(0, "done", "waiting"), audit(0, "waiting", "done"), audit(1, "computing", "done")]
        kinds, _ = self.kinds(history(logs, [proc("w0.1")], audit_rows=rows))
        self.assertEqual(kinds, {"done-twice": 1, "done-undone": 1})

    def test_two_live_workers_at_once_overlap(self):
        logs = {"w0.1": task_lines("w0.1", 0, 1, status="TF_ERR_HTTP") + task_lines("w0.1", 1, 9),
                "w1.1": task_lines("w1.1", 0, 1.5)}
        kinds, result = self.kinds(history(logs, [proc("w0.1"), proc("w1.1")]))
        self.assertEqual(kinds, {"overlap": 1})
        self.assertIn("at once", result["violations"][0]["message"])

    def test_only_a_heartbeat_only_verdict_on_that_worker_and_task_excuses_an_overlap(self):
        # w0.1 is stopped from 1.5 s to 11 s in the middle of task 0; a reaper
        # on another host gives task 0 back at 7 s, judging w0.1 by its heartbeat.
        logs = {"w0.1": [line(0.5, "w0.1", "begin", "U0"), line(1, "w0.1", "start", 0),
                         line(11.5, "w0.1", "computed", 0), line(11.6, "w0.1", "done", 0, "TF_ERR_HTTP")]
                + task_lines("w0.1", 1, 20),
                "w1.1": [line(0.5, "w1.1", "begin", "U1")] + task_lines("w1.1", 0, 8)}
        stop = {"kind": "stop-long", "at": 1.5, "target": "w0.1", "stopped": int(1.5 * S), "continued": int(11 * S)}
        verdict = {"t": int(7 * S), "host": "other", "task": 0, "worker": "U0", "verdict": "gone",
                   "reason": "its heartbeat stood still for 4.2 s of this reaper's clock, more than 4.0 s"}
        procs = [proc("w0.1"), proc("w1.1")]
        kinds, result = self.kinds(history(logs, procs, faults=[stop], verdicts=[verdict]))
        self.assertEqual(kinds, {})
        self.assertEqual(result["wrongly_reaped"], 1)
        self.assertTrue(result["excused"][0]["stopped_longer_than_stale"])
        # The same stop without such a verdict is no excuse (a reaper on the
        # workers' host sees the pid and keeps the task)...
        kinds, _ = self.kinds(history(logs, procs, faults=[stop]))
        self.assertEqual(kinds, {"overlap": 1})
        # ...nor is a verdict on the pid, one on another task or worker, or one
        # read before the first computation began.
        for other in (dict(verdict, reason="its process 100 is gone"), dict(verdict, task=1),
                      dict(verdict, worker="U1"), dict(verdict, t=int(0.8 * S))):
            kinds, _ = self.kinds(history(logs, procs, faults=[stop], verdicts=[other]))
            self.assertEqual(kinds, {"overlap": 1}, other)
        # A heartbeat-only verdict on a worker that was not stopped longer
        # than --stale is no excuse (its heartbeat should have gone on): a
        # violation that says so. Nor is a stop shorter than --stale, or one
        # that began less than --stale before the verdict was read.
        short = dict(stop, continued=int(5 * S))
        late = dict(stop, stopped=int(3.5 * S))
        for faults in ([], [short], [late]):
            kinds, result = self.kinds(history(logs, procs, faults=faults, verdicts=[verdict]))
            self.assertEqual(kinds, {"overlap": 1}, faults)
            self.assertEqual(result["wrongly_reaped"], 0)
            self.assertIn("was not SIGSTOPped longer than --stale", result["violations"][0]["message"])
        self.assertEqual(result["heartbeat_only_give_backs"], 1)

    def test_a_stopped_worker_reaped_on_its_heartbeat_may_see_its_task_computed_again_later(self):
        # w0.1 is stopped from 1.5 s to 11 s in task 0, which a reaper on
        # another host gives back at 7 s; w1.1 computes it from 12 s on,
        # after w0.1 went on (and failed its done): a recomputation the
        # verdict excuses, not one of a worker that gave nothing back.
        logs = {"w0.1": [line(0.5, "w0.1", "begin", "U0"), line(1, "w0.1", "start", 0),
                         line(11.5, "w0.1", "computed", 0), line(11.6, "w0.1", "done", 0, "TF_ERR_HTTP")]
                + task_lines("w0.1", 1, 20),
                "w1.1": [line(0.5, "w1.1", "begin", "U1")] + task_lines("w1.1", 0, 12)}
        stop = {"kind": "stop-long", "at": 1.5, "target": "w0.1", "stopped": int(1.5 * S), "continued": int(11 * S)}
        verdict = {"t": int(7 * S), "host": "other", "task": 0, "worker": "U0", "verdict": "gone",
                   "reason": "its heartbeat stood still for 4.2 s of this reaper's clock, more than 4.0 s"}
        procs = [proc("w0.1"), proc("w1.1")]
        kinds, result = self.kinds(history(logs, procs, faults=[stop], verdicts=[verdict]))
        self.assertEqual(kinds, {})
        self.assertEqual(result["wrongly_reaped"], 1)
        kinds, _ = self.kinds(history(logs, procs, faults=[stop]))
        self.assertEqual(kinds, {"recomputed": 1})

    def test_a_task_computed_again_while_its_first_worker_lived_is_recomputed(self):
        # w0.1's done failed; it lives on (and does task 1); w1.1 computes task 0 again.
        logs = {"w0.1": task_lines("w0.1", 0, 1, status="TF_ERR_CONNECTION") + task_lines("w0.1", 1, 3),
                "w1.1": task_lines("w1.1", 0, 6)}
        kinds, result = self.kinds(history(logs, [proc("w0.1"), proc("w1.1")]))
        self.assertEqual(kinds, {"recomputed": 1})
        self.assertIn("alive", result["violations"][0]["message"])

    def test_a_task_given_back_may_be_computed_again(self):
        logs = {"w0.1": [line(1, "w0.1", "start", 0), line(1.5, "w0.1", "update-failed", 0, "TF_ERR_HTTP"),
                         line(1.6, "w0.1", "requeue", 0, "TF_OK")],
                "w1.1": task_lines("w1.1", 0, 6) + task_lines("w1.1", 1, 8)}
        kinds, _ = self.kinds(history(logs, [proc("w0.1", ended=50, status=1), proc("w1.1")]))
        self.assertEqual(kinds, {})

    def test_a_task_handed_back_by_a_stop_signal_may_be_computed_again(self):
        # w0.1 gets SIGTERM at 1.5 s; the library hands task 0 back; w1.1 takes
        # it at 2 s, before w0.1's process has ended (2.5 s).
        logs = {"w0.1": [line(1, "w0.1", "start", 0)],
                "w1.1": task_lines("w1.1", 0, 2) + task_lines("w1.1", 1, 8)}
        term = {"kind": "term", "at": 1.5, "target": "w0.1", "signalled": int(1.5 * S)}
        processes = [proc("w0.1", ended=2.5, status=-15), proc("w1.1")]
        kinds, _ = self.kinds(history(logs, processes, faults=[term]))
        self.assertEqual(kinds, {})
        # Without the signal, that is a recomputation while w0.1 lived... and
        # an overlap, since w0.1's computation ends only with its process.
        kinds, _ = self.kinds(history(logs, processes))
        self.assertEqual(kinds, {"overlap": 1})

    def test_a_task_computed_again_after_done_ok_is_recomputed(self):
        logs = {"w0.1": task_lines("w0.1", 0, 1)[:-1] + [line(2.1, "w0.1", "done", 0, "TF_OK")],
                "w1.1": task_lines("w1.1", 0, 6, status="TF_ERR_HTTP") + task_lines("w1.1", 1, 8)}
        kinds, _ = self.kinds(history(logs, [proc("w0.1", ended=3, status=-9), proc("w1.1")]))
        self.assertEqual(kinds, {"recomputed": 1})

    def test_a_task_done_below_100_percent(self):
        logs = {"w0.1": task_lines("w0.1", 0, 1) + task_lines("w0.1", 1, 3)}
        tasks = [{"task": "0", "status": "done", "percent": "100"},
                 {"task": "1", "status": "done", "percent": "75"}]
        kinds, _ = self.kinds(history(logs, [proc("w0.1")], tasks=tasks))
        self.assertEqual(kinds, {"done-below-100": 1})

    def test_torn_lines_are_ignored(self):
        logs = {"w0.1": task_lines("w0.1", 0, 1) + ["12 w0.1"] + task_lines("w0.1", 1, 3) + ["garbage"]}
        kinds, _ = self.kinds(history(logs, [proc("w0.1")]))
        self.assertEqual(kinds, {})


if __name__ == "__main__":
    unittest.main()
