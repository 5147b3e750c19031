#!/usr/bin/env python3
"""examples/ctypes_worker.py: a taskfarm worker in Python through ctypes.

Loads libtaskfarm_worker (the C library, not the Python taskfarm-worker
package) and drives a worker through a run, as examples/worker.c does. It
shows how any language with a C FFI uses the library (see FFI.md): every C
function used is declared with its argtypes and restype first.

    ctypes_worker.py [--lib PATH] -n N      create a run of N tasks, print its
                                            UUID, then work through it
    ctypes_worker.py [--lib PATH] UUID      work through the run UUID

The library: --lib PATH, else $TASKFARM_WORKER_LIB, else the loader's search
for libtaskfarm_worker.so.0 (LD_LIBRARY_PATH, /etc/ld.so.conf: run ldconfig
after `make install` into /usr/local).
The server and the credentials: TASKFARM_URL, TASKFARM_USER, TASKFARM_PASSWORD.
Standard library only; Python 3.8 or newer.
"""

import argparse
import ctypes
import os
import sys
import time

SONAME = "libtaskfarm_worker.so.0"
ABI_MAJOR = 0  # the SONAME's number: the ABI these declarations follow

# tf_status (the numbers are part of the ABI)
TF_OK = 0
TF_NO_MORE_TASKS = 1


class RunStatus(ctypes.Structure):
    """struct tf_run_status: the fields in the header's order and types."""

    _fields_ = [
        ("num_tasks", ctypes.c_int64),
        ("num_waiting", ctypes.c_int64),
        ("num_computing", ctypes.c_int64),
        ("num_done", ctypes.c_int64),
        ("percent_done", ctypes.c_double),
    ]


# Opaque handles: only pointers to them cross the boundary. A distinct type
# per handle (not plain c_void_p) lets ctypes refuse a worker where a run is due.
class _TaskFarm(ctypes.Structure):
    pass


class _Worker(ctypes.Structure):
    pass


TaskFarmPtr = ctypes.POINTER(_TaskFarm)
WorkerPtr = ctypes.POINTER(_Worker)


def load(path=None):
    """Loads the library and declares the functions this script uses."""
    lib = ctypes.CDLL(path or os.environ.get("TASKFARM_WORKER_LIB") or SONAME)

    def declare(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    c_char_p, c_int, c_int64, c_double = ctypes.c_char_p, ctypes.c_int, ctypes.c_int64, ctypes.c_double
    status = c_int  # enum tf_status is an int
    # Library-owned strings (static or owned by a handle): c_char_p copies
    # them into Python bytes, nothing to free.
    declare("tf_version", c_char_p)
    declare("tf_status_name", c_char_p, c_int)
    declare("tf_last_error", c_char_p)
    declare("tf_last_http_status", c_int)
    # Strings the caller must free with tf_string_free: keep the pointer
    # (POINTER(c_char), never c_char_p, which would lose it and leak).
    declare("tf_string_free", None, ctypes.POINTER(ctypes.c_char))
    # Runs.
    declare("tf_taskfarm_create", status, c_char_p, c_char_p, c_char_p, c_int64,
            ctypes.POINTER(TaskFarmPtr))
    declare("tf_taskfarm_free", None, TaskFarmPtr)
    declare("tf_taskfarm_uuid", c_char_p, TaskFarmPtr)
    declare("tf_taskfarm_status", status, TaskFarmPtr, ctypes.POINTER(RunStatus))
    declare("tf_taskfarm_info", status, TaskFarmPtr, c_char_p,
            ctypes.POINTER(ctypes.POINTER(ctypes.c_char)))
    # Workers.
    declare("tf_worker_new", status, c_char_p, c_char_p, c_char_p, c_char_p,
            ctypes.POINTER(WorkerPtr))
    declare("tf_worker_free", None, WorkerPtr)
    declare("tf_worker_uuid", c_char_p, WorkerPtr)
    declare("tf_worker_taskfarm", TaskFarmPtr, WorkerPtr)  # borrowed: never freed
    declare("tf_worker_task", status, WorkerPtr, ctypes.POINTER(c_int64))
    declare("tf_worker_update", status, WorkerPtr, c_double)
    declare("tf_worker_done", status, WorkerPtr)
    declare("tf_worker_requeue", status, WorkerPtr)
    return lib


class TaskFarmError(RuntimeError):
    """A failed call: the status, its name and tf_last_error()."""

    def __init__(self, lib, what, status):
        self.status = status
        self.http_status = lib.tf_last_http_status()
        message = (lib.tf_last_error() or b"").decode("utf-8", "replace")
        name = lib.tf_status_name(status).decode()
        super().__init__(f"{what} failed ({name}): {message}")


def check(lib, what, status):
    if status != TF_OK:
        raise TaskFarmError(lib, what, status)


def take_string(lib, pointer):
    """Copies a string the library allocated, then frees it with tf_string_free."""
    try:
        return ctypes.string_at(pointer).decode()
    finally:
        lib.tf_string_free(pointer)


def create_run(lib, num_tasks):
    run = TaskFarmPtr()
    # None for user, password and URL: TASKFARM_* from the environment.
    check(lib, "creating a run", lib.tf_taskfarm_create(None, None, None, num_tasks, ctypes.byref(run)))
    try:
        return lib.tf_taskfarm_uuid(run).decode()
    finally:
        lib.tf_taskfarm_free(run)  # the run stays on the server


def work(lib, uuid, steps=4, step_seconds=0.02):
    """Takes tasks from the run until none is left; returns how many it did."""
    worker = WorkerPtr()
    check(lib, "registering the worker",
          lib.tf_worker_new(None, None, None, uuid.encode(), ctypes.byref(worker)))
    try:
        print(f"worker {lib.tf_worker_uuid(worker).decode()} on run {uuid}", flush=True)
        done = 0
        task = ctypes.c_int64()
        while True:
            status = lib.tf_worker_task(worker, ctypes.byref(task))
            if status == TF_NO_MORE_TASKS:
                break
            check(lib, "asking for a task", status)
            try:
                for step in range(1, steps + 1):
                    time.sleep(step_seconds)  # the real computation of task.value
                    check(lib, "reporting progress", lib.tf_worker_update(worker, 100.0 * step / steps))
                check(lib, "finishing the task", lib.tf_worker_done(worker))
            except BaseException:
                # Give the task back so that another worker can do it.
                lib.tf_worker_requeue(worker)
                raise
            done += 1
            print(f"task {task.value} done", flush=True)

        # The run, through the worker's borrowed handle: one typed request and
        # one JSON string to free.
        run = lib.tf_worker_taskfarm(worker)
        st = RunStatus()
        check(lib, "reading the run's status", lib.tf_taskfarm_status(run, ctypes.byref(st)))
        json = ctypes.POINTER(ctypes.c_char)()
        check(lib, "reading the run's info", lib.tf_taskfarm_info(run, None, ctypes.byref(json)))
        info = take_string(lib, json)
        print(f"{done} tasks done by this worker; run: {st.num_done} of {st.num_tasks} done "
              f"({st.percent_done:g} %); info {info}", flush=True)
        return done
    finally:
        lib.tf_worker_free(worker)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", help="path of libtaskfarm_worker.so (default: the loader's search)")
    parser.add_argument("-n", type=int, metavar="N", help="create a run of N tasks first")
    parser.add_argument("uuid", nargs="?", help="the run to work through")
    args = parser.parse_args()
    if (args.n is None) == (args.uuid is None):
        parser.error("give either -n N or a run UUID")
    if args.n is not None and not 1 <= args.n <= 2**31 - 1:
        parser.error("N must be in 1..2147483647")

    try:
        lib = load(args.lib)
    except OSError as e:
        sys.exit(f"ctypes_worker: cannot load the library: {e}\n"
                 "(give --lib PATH, set TASKFARM_WORKER_LIB or LD_LIBRARY_PATH)")
    version = lib.tf_version().decode()
    if int(version.split(".")[0]) != ABI_MAJOR:
        sys.exit(f"ctypes_worker: library version {version}; these declarations are for {ABI_MAJOR}.x")

    try:
        uuid = args.uuid
        if uuid is None:
            uuid = create_run(lib, args.n)
            print(uuid, flush=True)
        work(lib, uuid)
    except TaskFarmError as e:
        sys.exit(f"ctypes_worker: {e}")


if __name__ == "__main__":
    main()
