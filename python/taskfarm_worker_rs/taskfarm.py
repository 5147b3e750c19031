"""The API of taskfarm-worker 0.4.0 over libtaskfarm_worker (one import line
changes, nothing else):

  tfRuns(username, password, url_base)     the runs on the server, a list of dicts
  TaskFarm(username, password, uuid=None, numTasks=None, url_base=...)
                                           a run: opened (uuid) or created (numTasks)
  TaskFarmWorker(username, password, uuid, url_base=...)
                                           a worker of a run: .task, .tasks, update, done
                                           (and beyond the client: fail, .attempt)

Every request is the library's (include/taskfarm_worker.h says what each C
function does; the Python client's method is named in each comment there).
Beyond the Python client, in the same classes: a token instead of a password
(`with_token`, TASKFARM_TOKEN), deadlines, the journal, fail and attempt,
requeue, flush and the update interval (see docs/python.md).
"""

import ctypes
import json
import operator
import os
import warnings

from . import _native
from .errors import InvalidArgumentError, NotDoneWarning, raise_for

DEFAULT_URL = "http://localhost:5000/api/"  # the Python client's default url_base


def _arg(text, nullable=True):
    """A str argument as the C string it becomes; None stays NULL (the
    environment) where `nullable`. A NUL character would cut the C string
    short: ValueError (an InvalidArgumentError), as Python's own calls do."""
    if text is None and nullable:
        return None
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    if "\0" in text:
        raise InvalidArgumentError("embedded NUL character in a str argument", _native.STATUS_INVALID_ARGUMENT,
                                   "TF_ERR_INVALID_ARGUMENT", 0)
    return text.encode("utf-8")


def _check(lib, status, what=None):
    if status != _native.STATUS_OK:
        raise_for(lib, status, what)


def tfRuns(username, password, url_base=DEFAULT_URL):  # noqa: N802 (the Python client's name)
    """The runs on the server: a list of ``{"id": .., "uuid": "..", "numTasks": ..}``.

    `username`, `password`, `url_base` None: TASKFARM_USER, TASKFARM_PASSWORD,
    TASKFARM_URL (with TASKFARM_TOKEN set, no password is needed)."""
    lib = _native.load()
    out = _native.OwnedString()
    _check(lib, lib.tf_runs_json(_arg(username), _arg(password), _arg(url_base), ctypes.byref(out)))
    return json.loads(_native.take_string(lib, out))


class TaskFarm:
    """A run of tasks on the server: ``TaskFarm(user, password, uuid=U)`` opens
    run U, ``TaskFarm(user, password, numTasks=N)`` creates a run of N tasks.

    `username`, `password` or `url_base` None: from TASKFARM_USER,
    TASKFARM_PASSWORD, TASKFARM_URL. With TASKFARM_TOKEN set the run is opened
    with that token (no password check on the server). A handle holds one
    keep-alive connection: `close()` it, or use ``with TaskFarm(...) as tf:``
    (it is closed when collected too). The run stays on the server either way.
    """

    def __init__(self, username, password, uuid=None, numTasks=None, url_base=DEFAULT_URL):  # noqa: N803
        lib = _native.load()
        handle = _native.TaskFarmPtr()
        if uuid is None:
            if numTasks is None:
                raise InvalidArgumentError("numTasks must be set when creating a new task",
                                           _native.STATUS_INVALID_ARGUMENT, "TF_ERR_INVALID_ARGUMENT", 0)
            status = lib.tf_taskfarm_create(_arg(username), _arg(password), _arg(url_base),
                                            operator.index(numTasks), ctypes.byref(handle))
        else:
            status = lib.tf_taskfarm_open(_arg(username), _arg(password), _arg(url_base), _arg(uuid),
                                          ctypes.byref(handle))
        _check(lib, status)
        self._adopt(lib, handle, owned=True)

    @classmethod
    def with_token(cls, token=None, uuid=None, url_base=None):
        """Opens run `uuid` with a token instead of a password: the server checks
        no password. `token` None: TASKFARM_TOKEN (without it: InvalidArgumentError,
        never a fallback to a password). `url_base` None: TASKFARM_URL, then
        http://localhost:5000/api/. Get a token once from any handle (`.token`)
        or with `taskfarm token`."""
        lib = _native.load()
        handle = _native.TaskFarmPtr()
        _check(lib, lib.tf_taskfarm_open_with_token(_arg(token), _arg(url_base), _arg(uuid), ctypes.byref(handle)))
        self = cls.__new__(cls)
        self._adopt(lib, handle, owned=True)
        return self

    def _adopt(self, lib, handle, owned):
        self._lib = lib
        self._tf = handle
        self._owns_tf = owned

    def _run(self):
        if not getattr(self, "_tf", None):
            raise ValueError("this TaskFarm is closed")
        return self._tf

    # --- the Python client's members -------------------------------------------------

    def url(self, url):
        """The full URL of endpoint `url`: url_base followed by `url`."""
        out = _native.OwnedString()
        _check(self._lib, self._lib.tf_taskfarm_url(self._run(), _arg(url), ctypes.byref(out)))
        return _native.take_string(self._lib, out)

    @property
    def session(self):
        """Not here: the Python client's requests.Session. The connection is the
        library's own (one keep-alive connection, retries, a timeout per attempt);
        an AttributeError says so, and ``hasattr(tf, "session")`` is False."""
        raise AttributeError(
            "taskfarm_worker_rs has no requests session: requests go through libtaskfarm_worker "
            "(set_timeout, set_retries, TASKFARM_* settings); for a request of your own use "
            "url(...) and token_auth with any HTTP client"
        )

    @property
    def token_auth(self):
        """The authentication of the run's requests as ``(token, "")``: requests
        takes it as ``auth=`` just as the Python client's HTTPBasicAuth(token, '').
        A secret: show it to nobody."""
        return (self.token, "")

    @property
    def uuid(self):
        """The run's UUID (no request)."""
        return self._lib.tf_taskfarm_uuid(self._run()).decode()

    @property
    def numTasks(self):  # noqa: N802
        """The number of tasks of the run (no request)."""
        return self._lib.tf_taskfarm_num_tasks(self._run())

    def info(self, info):
        """Run information: for "percentDone", "numWaiting", "numDone" or
        "numComputing" the value, for "" the whole run as a dict (one request)."""
        out = _native.OwnedString()
        _check(self._lib, self._lib.tf_taskfarm_info(self._run(), _arg(info), ctypes.byref(out)))
        return json.loads(_native.take_string(self._lib, out))

    @property
    def percentDone(self):  # noqa: N802
        """The percentage of the run completed (one request)."""
        return self.info("percentDone")

    @property
    def numDone(self):  # noqa: N802
        """The number of tasks done (one request)."""
        return self.info("numDone")

    @property
    def numWaiting(self):  # noqa: N802
        """The number of tasks waiting to be handed out again (one request)."""
        return self.info("numWaiting")

    @property
    def numComputing(self):  # noqa: N802
        """The number of tasks being computed (one request)."""
        return self.info("numComputing")

    def getTaskInfo(self, task, info):  # noqa: N802
        """Task information: for "status" or "percentCompleted" the value, for
        "" the whole task as a dict. `task` in 0..numTasks-1."""
        out = _native.OwnedString()
        _check(self._lib, self._lib.tf_taskfarm_get_task_info(self._run(), operator.index(task), _arg(info),
                                                              ctypes.byref(out)))
        return json.loads(_native.take_string(self._lib, out))

    def setTaskInfo(self, task, info, value):  # noqa: N802
        """Sets task information: "percentCompleted" to a number in 0..100, or
        "status" to "waiting", "computing" or "done"."""
        _check(self._lib, self._lib.tf_taskfarm_set_task_info(self._run(), operator.index(task), _arg(info),
                                                              json.dumps(value).encode()))

    def restart(self, everything=False):
        """Every task not done goes back to waiting (keeping its percentage);
        with `everything` True every task, at 0 %. Only when no worker computes."""
        _check(self._lib, self._lib.tf_taskfarm_restart(self._run(), bool(everything)))

    def delete(self):
        """Deletes the run and its tasks on the server."""
        _check(self._lib, self._lib.tf_taskfarm_delete(self._run()))

    # --- beyond the Python client --------------------------------------------------------

    @property
    def token(self):
        """The token in use, a secret: give it to other workers of the same
        server (`with_token`, TASKFARM_TOKEN) to spare them a password check."""
        return self._lib.tf_taskfarm_token(self._run()).decode()

    def set_timeout(self, seconds):
        """The timeout of one attempt of every later request, in seconds
        (0.001..1e6; default TASKFARM_TIMEOUT, else 60)."""
        _check(self._lib, self._lib.tf_taskfarm_set_timeout(self._run(), float(seconds)))

    def set_retries(self, retries):
        """How often a failed request is retried (0..1000; default TASKFARM_RETRIES, else 10)."""
        _check(self._lib, self._lib.tf_taskfarm_set_retries(self._run(), operator.index(retries)))

    def close(self):
        """Frees the handle (the run stays on the server). Later calls raise ValueError."""
        handle, self._tf = getattr(self, "_tf", None), None
        if handle and self._owns_tf:
            self._lib.tf_taskfarm_free(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 (at interpreter exit the module may be half gone)
            pass


class TaskFarmWorker(TaskFarm):
    """A worker of run `uuid`: ``for task in worker.tasks: ...; worker.update(p);
    worker.done()``. Every TaskFarm member works on the worker's run.

    `update_interval` (keyword only, seconds): progress coalescing, at most one
    progress request per interval. None (the default): every update is sent at
    once, as the Python client does, unless TASKFARM_UPDATE_INTERVAL is set
    (docs/python.md says why). `close()` (or ``with``) sends a waiting update and
    frees the worker; a held task is neither marked done nor given back.
    """

    def __init__(self, username, password, uuid, url_base=DEFAULT_URL, *, update_interval=None):
        lib = _native.load()
        worker = _native.WorkerPtr()
        _check(lib, lib.tf_worker_new(_arg(username), _arg(password), _arg(url_base), _arg(uuid),
                                      ctypes.byref(worker)))
        self._start(lib, worker, update_interval)

    @classmethod
    def with_token(cls, token=None, uuid=None, url_base=None, *, update_interval=None):
        """A worker of run `uuid` made with a token instead of a password
        (`token` None: TASKFARM_TOKEN); see TaskFarm.with_token."""
        lib = _native.load()
        worker = _native.WorkerPtr()
        _check(lib, lib.tf_worker_new_with_token(_arg(token), _arg(url_base), _arg(uuid), ctypes.byref(worker)))
        self = cls.__new__(cls)
        self._start(lib, worker, update_interval)
        return self

    def _start(self, lib, worker, update_interval):
        self._worker = worker
        self._adopt(lib, lib.tf_worker_taskfarm(worker), owned=False)
        self._stopped = False
        if update_interval is None and "TASKFARM_UPDATE_INTERVAL" not in os.environ:
            update_interval = 0.0
        if update_interval is not None:
            self.set_update_interval(update_interval)

    def _w(self):
        if not getattr(self, "_worker", None):
            raise ValueError("this TaskFarmWorker is closed")
        return self._worker

    # --- the Python client's members -------------------------------------------------

    @property
    def worker_uuid(self):
        """The worker's UUID, 32 hex digits (no request)."""
        return self._lib.tf_worker_uuid(self._w()).decode()

    @property
    def task(self):
        """The task this worker holds, else a new one from the server; None when
        the run has no task left (or the worker stopped: see `stopped`)."""
        task = ctypes.c_int64()
        status = self._lib.tf_worker_task(self._w(), ctypes.byref(task))
        if status == _native.STATUS_OK:
            return task.value
        if status == _native.STATUS_NO_MORE_TASKS:
            return None
        if status == _native.STATUS_STOPPED:
            self._stopped = True
            return None
        raise_for(self._lib, status)

    @property
    def tasks(self):
        """Iterates over the remaining tasks: each is the held task until `done()` or `fail()`."""
        while self.task is not None:
            yield self.task

    def update(self, percentage):
        """Reports progress on the held task, a percentage in 0..100 (ValueError
        otherwise). With no task held, does nothing (as the Python client)."""
        if isinstance(percentage, (str, bytes)):
            raise TypeError(f"percentage must be a number, not {type(percentage).__name__}")
        if self.held_percent is None:
            return
        status = self._lib.tf_worker_update(self._w(), float(percentage))
        if status == _native.STATUS_INVALID_ARGUMENT:
            raise InvalidArgumentError(f"percentage {percentage} out of range", status, "TF_ERR_INVALID_ARGUMENT", 0)
        if status == _native.STATUS_STOPPED:
            self._stopped = True  # the task was handed back at this percentage
            return
        _check(self._lib, status)

    def done(self):
        """Releases the held task: marked done on the server only when the last
        update was 100. Either way the next `task` asks for a new one; returns
        None, as the Python client. Below 100 the task stays computing on the
        server, as with the Python client, and a NotDoneWarning says which task
        at what percentage (a failed task is ended with `fail`). After a stop
        signal an unfinished task goes back to the server instead (`stopped`)."""
        status = self._lib.tf_worker_done(self._w())
        if status == _native.STATUS_OK:
            return
        if status == _native.STATUS_NOT_DONE:
            message = (self._lib.tf_last_error() or b"").decode("utf-8", "replace")
            warnings.warn(NotDoneWarning(message), stacklevel=2)
            return
        if status == _native.STATUS_STOPPED:
            self._stopped = True  # handed back at its percentage, as by update
            return
        raise_for(self._lib, status)

    # --- beyond the Python client --------------------------------------------------------

    @property
    def stopped(self):
        """True once `task` or `update` met a stop signal or the deadline: the
        held task went back to the server (waiting, percentage kept)."""
        return self._stopped

    @property
    def held_percent(self):
        """The held task's percentage as last known (no request); None when no
        task is held. A checkpointing code resumes a handed-back task from it."""
        out = ctypes.c_double()
        status = self._lib.tf_worker_held_percent(self._w(), ctypes.byref(out))
        if status == _native.STATUS_NO_MORE_TASKS:
            return None
        _check(self._lib, status)
        return out.value

    def fail(self, message):
        """The held task failed here; `message` (a str, kept up to 2 KiB) says
        why. It goes back to the server (waiting, its percentage kept) and the
        next `task` takes another. With a journal (`set_journal`,
        TASKFARM_JOURNAL) the attempt is counted across the run's workers, and a
        task whose attempts reach TASKFARM_MAX_ATTEMPTS (default 3) is set aside
        (left computing, listed by `taskfarm failed`); without one nothing is
        counted. When the server does not take it back: TaskFarmError, the task
        still held. With no task held, does nothing. See tf_worker_fail."""
        _check(self._lib, self._lib.tf_worker_fail(self._w(), _arg(message, nullable=False)))

    @property
    def attempt(self):
        """The held task's attempt number (no request): 1 + its failed or crashed
        attempts in the journal directory, by any worker (1 without a journal);
        None when no task is held."""
        out = ctypes.c_int64()
        status = self._lib.tf_worker_attempt(self._w(), ctypes.byref(out))
        if status == _native.STATUS_NO_MORE_TASKS:
            return None
        _check(self._lib, status)
        return out.value

    def requeue(self):
        """Gives the held task back (waiting, 0 %) for another worker."""
        _check(self._lib, self._lib.tf_worker_requeue(self._w()))

    def set_update_interval(self, seconds):
        """At most one progress request per `seconds` (0..86400; 0: every update at once)."""
        _check(self._lib, self._lib.tf_worker_set_update_interval(self._w(), float(seconds)))

    def flush(self):
        """Sends a progress update that waits for its interval now."""
        _check(self._lib, self._lib.tf_worker_flush(self._w()))

    def set_deadline(self, unix_time, task_seconds=0.0):
        """No task is taken that cannot finish before `unix_time` (seconds since
        1970); `task_seconds` 0: estimated from this worker's tasks. Under
        Slurm the job's end is found without this call; TASKFARM_DEADLINE too."""
        _check(self._lib, self._lib.tf_worker_set_deadline(self._w(), float(unix_time), float(task_seconds)))

    def set_journal(self, directory):
        """Keeps the worker's journal in `directory` (None: no journal), for
        `taskfarm reap` to give back the task of a worker that died."""
        path = None if directory is None else os.fsencode(directory)
        _check(self._lib, self._lib.tf_worker_set_journal(self._w(), path))

    def close(self):
        """Sends a waiting update and frees the worker (and its run handle)."""
        worker, self._worker = getattr(self, "_worker", None), None
        self._tf = None
        if worker:
            self._lib.tf_worker_free(worker)
