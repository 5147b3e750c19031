"""chaos/python_worker.py: the chaos soak's worker with the reference Python
client, taskfarm-worker 0.4.0 (no journal, no stop signals, no reaper), for
the side-by-side figures of RELIABILITY.md. Same tasks and the same oracle log
as chaos/chaos_worker.c (read it for the line format):

    python python_worker.py UUID     (CHAOS_LOG, CHAOS_WORKER, CHAOS_TASK_MS,
                                      CHAOS_STOP; TASKFARM_URL, _USER, _PASSWORD)

Any exception ends the process with status 1 (as a user's script would); the
supervisor starts a replacement.
"""

import os
import sys
import time

from taskfarm_worker import TaskFarmWorker


class OracleLog:
    """Lines appended with O_APPEND and fsync'ed, as the C worker writes them."""

    def __init__(self, path, name):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.name = name

    def note(self, text):
        line = f"{time.monotonic_ns()} {self.name} {os.getpid()} {text}\n".encode()
        os.write(self.fd, line)
        os.fsync(self.fd)


def task_time_ms(task, mean_ms):
    """As chaos_worker.c: fixed per task, between half and 1.5 times the mean."""
    h = (task * 2654435761) % (1 << 64)
    return mean_ms // 2 + (h % 1000) * mean_ms // 1000


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python_worker.py UUID")
    log = OracleLog(os.environ["CHAOS_LOG"], os.environ.get("CHAOS_WORKER", "w?"))
    mean_ms = int(os.environ.get("CHAOS_TASK_MS") or 200)
    stop = os.environ.get("CHAOS_STOP")
    step = "TaskFarmWorker"
    try:
        w = TaskFarmWorker(os.environ["TASKFARM_USER"], os.environ["TASKFARM_PASSWORD"],
                           sys.argv[1], url_base=os.environ["TASKFARM_URL"])
        log.note(f"begin {w.worker_uuid}")
        finished = 0
        while True:
            step = "task"
            log.note("request")
            task = w.task
            if task is None:
                step = "numDone"
                if w.numDone == w.numTasks or (stop and os.path.exists(stop)):
                    break
                time.sleep(0.1)
                continue
            log.note(f"start {task}")
            step = "update"
            for k in range(1, 5):
                time.sleep(task_time_ms(task, mean_ms) / 4000)
                w.update(25.0 * k)
            log.note(f"computed {task}")
            step = "done"
            w.done()
            log.note(f"done {task} TF_OK")
            finished += 1
    except Exception as e:  # a user's script dies of any exception
        log.note(f"fail {step} {type(e).__name__}")
        print(f"python_worker: {step}: {e}", file=sys.stderr)
        sys.exit(1)
    log.note(f"end {finished}")


if __name__ == "__main__":
    main()
