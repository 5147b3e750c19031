"""The seed's API member by member, side by side: taskfarm-worker 0.4.0 (the
Python client) and taskfarm_worker_rs each on a run of their own on the same
real server (tests/python/run.sh starts it; TASKFARM_URL, _USER, _PASSWORD).
Each call must give the same value (and type), or an exception of the Python
client's class (RuntimeError, ValueError) with the same "[HTTP n]" when the
server answered; the runs must end in the same state, task by task. One
addition: ours warns (NotDoneWarning) where done() leaves a task below 100 %.

Where ours refuses before sending (InvalidArgumentError: an unknown info key,
a task outside the run), the Python client's request gets an HTTP error: both
are RuntimeErrors, ours says why without a request.
"""

import os
import re
import unittest
import warnings

import requests
import taskfarm_worker as seed
import taskfarm_worker_rs as ours

URL = os.environ["TASKFARM_URL"]
USER = os.environ["TASKFARM_USER"]
PASSWORD = os.environ["TASKFARM_PASSWORD"]
HTTP = re.compile(r"^\[HTTP (\d+)\]")


def outcome(call):
    """("ok", value) or ("error", exception); a dict (a run, a task) without its
    database id and uuid, which differ between the two runs."""
    try:
        value = call()
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("id", "uuid")}
        return ("ok", value)
    except (RuntimeError, ValueError) as e:
        return ("error", e)


class SideBySide(unittest.TestCase):
    def same(self, what, seed_call, ours_call):
        """Both calls, one outcome: the same value and type, or exceptions of the
        same class (and the same HTTP status when the server answered)."""
        theirs, mine = outcome(seed_call), outcome(ours_call)
        self.assertEqual(theirs[0], mine[0], f"{what}: Python client {theirs}, ours {mine}")
        if theirs[0] == "ok":
            self.assertEqual(theirs[1], mine[1], what)
            self.assertIs(type(theirs[1]), type(mine[1]), f"{what}: types of {theirs[1]!r} and {mine[1]!r}")
            return mine[1]
        self.assertIsInstance(mine[1], type(theirs[1]), f"{what}: {theirs[1]!r} against {mine[1]!r}")
        status = HTTP.match(str(theirs[1]))
        if status and not isinstance(mine[1], ours.InvalidArgumentError):
            self.assertEqual(status.group(0), HTTP.match(str(mine[1])).group(0), f"{what}: {mine[1]}")
        return mine[1]

    def pair(self, num_tasks):
        """A run of num_tasks for each client, and its TaskFarm from each."""
        a = seed.TaskFarm(USER, PASSWORD, numTasks=num_tasks, url_base=URL)
        b = ours.TaskFarm(USER, PASSWORD, numTasks=num_tasks, url_base=URL)
        self.addCleanup(b.close)
        return a, b

    def same_state(self, a, b):
        """The two runs hold the same tasks in the same states."""
        info_a, info_b = a.info(""), b.info("")
        for key in ("id", "uuid"):
            info_a.pop(key)
            info_b.pop(key)
        self.assertEqual(info_a, info_b)
        for t in range(a.numTasks):
            ta, tb = a.getTaskInfo(t, ""), b.getTaskInfo(t, "")
            ta.pop("id")
            tb.pop("id")
            self.assertEqual(ta, tb, f"task {t}")

    def test_tfRuns(self):  # noqa: N802
        self.pair(2)
        self.same("tfRuns", lambda: seed.tfRuns(USER, PASSWORD, url_base=URL),
                  lambda: ours.tfRuns(USER, PASSWORD, url_base=URL))
        self.same("tfRuns, bad password", lambda: seed.tfRuns(USER, "wrong", URL),
                  lambda: ours.tfRuns(USER, "wrong", URL))

    def test_taskfarm_members(self):
        a, b = self.pair(5)
        self.assertRegex(b.uuid, r"^[0-9a-f]{32}$")
        for name in ("numTasks", "percentDone", "numDone", "numWaiting", "numComputing"):
            self.same(name, lambda n=name: getattr(a, n), lambda n=name: getattr(b, n))
        for key in ("percentDone", "numDone", "numWaiting", "numComputing", "bogus"):
            self.same(f"info({key!r})", lambda k=key: a.info(k), lambda k=key: b.info(k))
        self.same("url", lambda: a.url("runs"), lambda: b.url("runs"))
        # token_auth: what requests takes as auth=, for a request of the user's own.
        for tf in (a, b):
            answer = requests.get(tf.url("runs/" + tf.uuid), auth=tf.token_auth, timeout=30)
            self.assertEqual(answer.status_code, 200)
            self.assertEqual(answer.json()["uuid"], tf.uuid)
        # session: the Python client's requests.Session; ours has the library's connection.
        self.assertIsInstance(a.session, requests.Session)
        self.assertFalse(hasattr(b, "session"))
        with self.assertRaisesRegex(AttributeError, "no requests session"):
            b.session  # noqa: B018
        # Opening a run, from each client, both runs.
        for uuid in (a.uuid, b.uuid):
            self.same("TaskFarm(uuid)", lambda u=uuid: seed.TaskFarm(USER, PASSWORD, uuid=u, url_base=URL).numTasks,
                      lambda u=uuid: ours.TaskFarm(USER, PASSWORD, uuid=u, url_base=URL).numTasks)
        self.same("no such run", lambda: seed.TaskFarm(USER, PASSWORD, uuid="0" * 32, url_base=URL),
                  lambda: ours.TaskFarm(USER, PASSWORD, uuid="0" * 32, url_base=URL))
        self.same("bad password", lambda: seed.TaskFarm(USER, "wrong", uuid=a.uuid, url_base=URL),
                  lambda: ours.TaskFarm(USER, "wrong", uuid=a.uuid, url_base=URL))
        self.same("neither uuid nor numTasks", lambda: seed.TaskFarm(USER, PASSWORD, url_base=URL),
                  lambda: ours.TaskFarm(USER, PASSWORD, url_base=URL))

    def test_task_info_restart_delete(self):
        a, b = self.pair(4)
        for task in (-1, 4):
            self.same(f"getTaskInfo({task})", lambda t=task: a.getTaskInfo(t, "status"),
                      lambda t=task: b.getTaskInfo(t, "status"))
            self.same(f"setTaskInfo({task})", lambda t=task: a.setTaskInfo(t, "status", "done"),
                      lambda t=task: b.setTaskInfo(t, "status", "done"))
        steps = [
            ("setTaskInfo", 0, "percentCompleted", 40), ("setTaskInfo", 0, "status", "computing"),
            ("setTaskInfo", 1, "percentCompleted", 100), ("setTaskInfo", 1, "status", "done"),
            ("setTaskInfo", 2, "status", "computing"), ("setTaskInfo", 2, "percentCompleted", 100.0),
            ("getTaskInfo", 0, "percentCompleted"), ("getTaskInfo", 1, "status"), ("getTaskInfo", 3, ""),
        ]
        for name, *args in steps:
            self.same(f"{name}{tuple(args)}", lambda n=name, x=args: getattr(a, n)(*x),
                      lambda n=name, x=args: getattr(b, n)(*x))
        self.same("info('')", lambda: a.info(""), lambda: b.info(""))
        self.same("restart()", a.restart, b.restart)
        self.same_state(a, b)
        self.same("restart(everything=True)", lambda: a.restart(everything=True), lambda: b.restart(everything=True))
        self.same_state(a, b)
        self.same("delete()", a.delete, b.delete)
        self.same("info after delete", lambda: a.info(""), lambda: b.info(""))

    def test_worker_scenario(self):
        """The worker's members through a scenario: held task, update range,
        done below and at 100 %, restart, iteration to the end."""
        a, b = self.pair(4)
        wa = seed.TaskFarmWorker(USER, PASSWORD, a.uuid, url_base=URL)
        wb = ours.TaskFarmWorker(USER, PASSWORD, b.uuid, url_base=URL)
        self.addCleanup(wb.close)
        self.assertRegex(wb.worker_uuid, r"^[0-9a-f]{32}$")
        self.assertNotEqual(wb.worker_uuid, ours.TaskFarmWorker(USER, PASSWORD, b.uuid, url_base=URL).worker_uuid)
        ops = [
            ("update", 150), ("update", -1), ("update", 50), ("done",),  # nothing held: nothing happens
            ("numTasks",), ("task",), ("task",), ("update", 50), ("getTaskInfo", 0, "percentCompleted"),
            ("done",), ("getTaskInfo", 0, "status"),
            ("task",), ("update", 150), ("update", -0.5), ("update", 100), ("done",), ("getTaskInfo", 1, "status"),
            ("task",), ("update", 30), ("info", "numComputing"), ("percentDone",), ("restart", False),
            ("getTaskInfo", 0, ""), ("done",),
            ("task",), ("update", 100), ("done",), ("numDone",),
        ]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ours.NotDoneWarning)
            for name, *args in ops:
                def call(w, n=name, x=args):
                    member = getattr(w, n)
                    return member(*x) if callable(member) else member
                self.same(f"{name}{tuple(args)}", lambda c=call: c(wa), lambda c=call: c(wb))
        # The two done() below 100 % (tasks 0 and 2): the same effect, and ours warns where the client was silent.
        not_done = [str(record.message) for record in caught if issubclass(record.category, ours.NotDoneWarning)]
        self.assertEqual(len(not_done), 2, not_done)
        self.assertIn("task 0 was released at 50 %", not_done[0])
        # The rest through the iterator, each task to 100 % and done.
        seen = {}
        for client, w in (("seed", wa), ("ours", wb)):
            seen[client] = []
            for task in w.tasks:
                seen[client].append(task)
                w.update(100)
                w.done()
            self.assertIsNone(w.task)
        self.assertEqual(seen["seed"], seen["ours"])
        self.same_state(a, b)
        self.same("numDone at the end", lambda: wa.numDone, lambda: wb.numDone)


if __name__ == "__main__":
    unittest.main()
