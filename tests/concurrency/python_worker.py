"""tests/concurrency/python_worker.py: a worker with the reference Python
client (taskfarm-worker 0.4.0, in the harness venv), for the
interoperability test of tests/concurrency.rs.

    python python_worker.py UUID

Credentials and server from TASKFARM_USER, TASKFARM_PASSWORD, TASKFARM_URL.
Takes tasks until none is left; each task: update 50 %, update 100 %, done
(as tests/concurrency/worker.c does). Prints "task N" per task done and
"finished K" at the end on stdout; an exception fails with a traceback.
"""
import os
import sys

from taskfarm_worker import TaskFarmWorker


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python_worker.py UUID")
    w = TaskFarmWorker(os.environ["TASKFARM_USER"],
                       os.environ["TASKFARM_PASSWORD"], sys.argv[1],
                       url_base=os.environ["TASKFARM_URL"])
    done = 0
    for task in w.tasks:
        w.update(50)
        w.update(100)
        w.done()
        print(f"task {task}", flush=True)
        done += 1
    print(f"finished {done}", flush=True)


if __name__ == "__main__":
    main()
