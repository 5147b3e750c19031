"""Runs a scenario of worker and run operations with the reference Python
client (taskfarm-worker 0.4.0) and prints what each returned, as JSON.

tests/python_parity.rs runs the same scenario through the C ABI on another run
of the same server and compares both transcripts and the runs' final states.

stdin: {"url", "user", "password", "uuid", "ops": [[op, args...], ...]}
stdout: a JSON list with one entry per op: {"ok": value} or {"error": class}
"""
import json
import sys

from taskfarm_worker import TaskFarmWorker


def main():
    spec = json.load(sys.stdin)
    w = TaskFarmWorker(spec["user"], spec["password"], spec["uuid"],
                       url_base=spec["url"])
    out = []
    for op, *args in spec["ops"]:
        try:
            if op == "task":
                value = w.task
            elif op == "update":
                value = w.update(args[0])
            elif op == "done":
                value = w.done()
            elif op == "restart":
                value = w.restart(everything=args[0])
            elif op == "info":
                value = w.info(args[0])
            elif op == "getTaskInfo":
                value = w.getTaskInfo(args[0], args[1])
            elif op == "setTaskInfo":
                value = w.setTaskInfo(args[0], args[1], args[2])
            elif op == "numTasks":
                value = w.numTasks
            else:
                raise SystemExit("unknown op " + op)
            out.append({"ok": value})
        except (ValueError, RuntimeError) as e:
            out.append({"error": type(e).__name__})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
