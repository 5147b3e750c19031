#!/usr/bin/env python3
"""tests/python/example.py: the Python client's example program, written
afresh from its documented behaviour (create a run, or work through one with
progress reports), with one import line changed to taskfarm_worker_rs.
tests/python/run.sh runs it as it is and with that line put back, on the
same server, and compares what both did.

    example.py -n N          create a run of N tasks, print its UUID
    example.py UUID          work through run UUID: each task in 4 steps,
                             progress after each; print each task done and
                             the run's counts at the end

Credentials and server: TASKFARM_USER, TASKFARM_PASSWORD, TASKFARM_URL.
"""

import argparse
import os
import time

from taskfarm_worker_rs import TaskFarm, TaskFarmWorker

STEPS = 4


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, help="create a run of N tasks")
    parser.add_argument("uuid", nargs="?", help="the run to work through")
    args = parser.parse_args()
    user, password = os.environ["TASKFARM_USER"], os.environ["TASKFARM_PASSWORD"]
    url = os.environ.get("TASKFARM_URL", "http://localhost:5000/api/")

    if args.uuid is None:
        tf = TaskFarm(user, password, numTasks=args.n, url_base=url)
        print(tf.uuid)
        return

    worker = TaskFarmWorker(user, password, args.uuid, url_base=url)
    for task in worker.tasks:
        for step in range(1, STEPS + 1):
            time.sleep(0.01)  # the computation of one step of the task
            worker.update(100.0 * step / STEPS)
        worker.done()
        print(f"task {task} done", flush=True)
    print(f"run {worker.uuid}: {worker.numDone} of {worker.numTasks} done, {worker.percentDone} %")


if __name__ == "__main__":
    main()
