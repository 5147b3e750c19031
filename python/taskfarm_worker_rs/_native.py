"""The C library under the package: where it is found, and the ctypes
declaration of every function the package calls (include/taskfarm_worker.h
is the reference for each).

  load()           the library, loaded and declared once per process
  STATUS_*         the tf_status numbers the package acts on
  take_string()    copies a char* the library allocated, then frees it

The library is, in this order: the file named by TASKFARM_WORKER_LIB, the copy
inside the package (the wheel carries libtaskfarm_worker.so.0 beside this
file), the loader's search for libtaskfarm_worker.so.0 (`make install`).
"""

import ctypes
import os
import threading

SONAME = "libtaskfarm_worker.so.0"
ABI_MAJOR = 0  # the SONAME's number: the ABI these declarations follow

# tf_status: the numbers are part of the ABI and never change.
STATUS_OK = 0
STATUS_NO_MORE_TASKS = 1
STATUS_INVALID_ARGUMENT = 2
STATUS_CONNECTION = 3
STATUS_STOPPED = 9
STATUS_NOT_DONE = 10

# tf_stop_mode.
STOP_EXIT = 0
STOP_CONTINUE = 1


class RunStatus(ctypes.Structure):
    """struct tf_run_status, fields in the header's order."""

    _fields_ = [
        ("num_tasks", ctypes.c_int64),
        ("num_waiting", ctypes.c_int64),
        ("num_computing", ctypes.c_int64),
        ("num_done", ctypes.c_int64),
        ("percent_done", ctypes.c_double),
    ]


class _TaskFarm(ctypes.Structure):
    """struct tf_taskfarm: opaque; a type of its own so ctypes refuses a worker in its place."""


class _Worker(ctypes.Structure):
    """struct tf_worker: opaque."""


class _RunList(ctypes.Structure):
    """struct tf_run_list: opaque (declared for completeness of the handles)."""


TaskFarmPtr = ctypes.POINTER(_TaskFarm)
WorkerPtr = ctypes.POINTER(_Worker)
OwnedString = ctypes.POINTER(ctypes.c_char)  # a char* to free: never c_char_p, which loses the pointer

_lock = threading.Lock()
_loaded = {}  # "lib": the library once loaded


def _candidates():
    env = os.environ.get("TASKFARM_WORKER_LIB")
    if env:
        return [env]
    packaged = os.path.join(os.path.dirname(os.path.abspath(__file__)), SONAME)
    return [packaged] if os.path.exists(packaged) else [SONAME]


def _declare(lib):
    c_char_p, c_int, c_int64, c_double = ctypes.c_char_p, ctypes.c_int, ctypes.c_int64, ctypes.c_double
    status = c_int  # enum tf_status is an int
    table = {
        "tf_version": (c_char_p,),
        "tf_status_name": (c_char_p, c_int),
        "tf_last_error": (c_char_p,),
        "tf_last_http_status": (c_int,),
        "tf_string_free": (None, OwnedString),
        "tf_runs_json": (status, c_char_p, c_char_p, c_char_p, ctypes.POINTER(OwnedString)),
        "tf_stop_on_signals": (status, ctypes.POINTER(c_int), ctypes.c_size_t, c_int),
        "tf_stop_requested": (c_int,),
        # Runs.
        "tf_taskfarm_create": (status, c_char_p, c_char_p, c_char_p, c_int64, ctypes.POINTER(TaskFarmPtr)),
        "tf_taskfarm_open": (status, c_char_p, c_char_p, c_char_p, c_char_p, ctypes.POINTER(TaskFarmPtr)),
        "tf_taskfarm_open_with_token": (status, c_char_p, c_char_p, c_char_p, ctypes.POINTER(TaskFarmPtr)),
        "tf_taskfarm_free": (None, TaskFarmPtr),
        "tf_taskfarm_uuid": (c_char_p, TaskFarmPtr),
        "tf_taskfarm_num_tasks": (c_int64, TaskFarmPtr),
        "tf_taskfarm_status": (status, TaskFarmPtr, ctypes.POINTER(RunStatus)),
        "tf_taskfarm_info": (status, TaskFarmPtr, c_char_p, ctypes.POINTER(OwnedString)),
        "tf_taskfarm_get_task_info": (status, TaskFarmPtr, c_int64, c_char_p, ctypes.POINTER(OwnedString)),
        "tf_taskfarm_set_task_info": (status, TaskFarmPtr, c_int64, c_char_p, c_char_p),
        "tf_taskfarm_restart": (status, TaskFarmPtr, ctypes.c_bool),
        "tf_taskfarm_delete": (status, TaskFarmPtr),
        "tf_taskfarm_url": (status, TaskFarmPtr, c_char_p, ctypes.POINTER(OwnedString)),
        "tf_taskfarm_token": (c_char_p, TaskFarmPtr),
        "tf_taskfarm_set_timeout": (status, TaskFarmPtr, c_double),
        "tf_taskfarm_set_retries": (status, TaskFarmPtr, ctypes.c_uint32),
        # Workers.
        "tf_worker_new": (status, c_char_p, c_char_p, c_char_p, c_char_p, ctypes.POINTER(WorkerPtr)),
        "tf_worker_new_with_token": (status, c_char_p, c_char_p, c_char_p, ctypes.POINTER(WorkerPtr)),
        "tf_worker_free": (None, WorkerPtr),
        "tf_worker_uuid": (c_char_p, WorkerPtr),
        "tf_worker_taskfarm": (TaskFarmPtr, WorkerPtr),  # borrowed: never freed
        "tf_worker_task": (status, WorkerPtr, ctypes.POINTER(c_int64)),
        "tf_worker_update": (status, WorkerPtr, c_double),
        "tf_worker_done": (status, WorkerPtr),
        "tf_worker_fail": (status, WorkerPtr, c_char_p),
        "tf_worker_attempt": (status, WorkerPtr, ctypes.POINTER(c_int64)),
        "tf_worker_requeue": (status, WorkerPtr),
        "tf_worker_flush": (status, WorkerPtr),
        "tf_worker_set_update_interval": (status, WorkerPtr, c_double),
        "tf_worker_set_deadline": (status, WorkerPtr, c_double, c_double),
        "tf_worker_held_percent": (status, WorkerPtr, ctypes.POINTER(c_double)),
        "tf_worker_set_journal": (status, WorkerPtr, c_char_p),
    }
    for name, (restype, *argtypes) in table.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def load():
    """The library, loaded and declared on first use. ImportError when it
    cannot be loaded or is of another ABI than these declarations."""
    with _lock:
        if "lib" not in _loaded:
            path = _candidates()[0]
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                raise ImportError(
                    f"taskfarm_worker_rs: cannot load {path}: {e} (install the wheel, which carries the library; "
                    "or set TASKFARM_WORKER_LIB to the path of libtaskfarm_worker.so.0)"
                ) from e
            try:
                _declare(lib)
            except AttributeError as e:
                raise ImportError(f"taskfarm_worker_rs: {path} lacks a function this package needs: {e}") from e
            version = lib.tf_version().decode()
            if version.split(".")[0] != str(ABI_MAJOR):
                raise ImportError(f"taskfarm_worker_rs: {path} is version {version}; this package needs {ABI_MAJOR}.x")
            _loaded["lib"] = lib
        return _loaded["lib"]


def take_string(lib, pointer):
    """The text of a char* the library allocated; frees it (tf_string_free)."""
    try:
        return ctypes.string_at(pointer).decode("utf-8")
    finally:
        lib.tf_string_free(pointer)
