"""The exceptions, shaped so that code written for taskfarm-worker 0.4.0 catches
them where it caught that client's:

  TaskFarmError            a RuntimeError, "[HTTP n]: message" when the server
                           answered (the Python client's RuntimeError), with
                           .status, .status_name, .http_status
  InvalidArgumentError     also a ValueError (a percentage out of range is the
                           Python client's ValueError); nothing was sent
  TaskFarmConnectionError  also a ConnectionError (an OSError, as requests'
                           ConnectionError is): the server could not be reached
  NotDoneWarning           a UserWarning, not an exception: done() released a
                           task below 100 %, which stays computing

  raise_for(lib, status, what)   raises the one that fits a failed call

Messages never hold the password or the token (the library's tf_last_error).
"""

from . import _native


class TaskFarmError(RuntimeError):
    """A failed call. `status` is the tf_status number, `status_name` its name
    (`"TF_ERR_NOT_FOUND"`), `http_status` the server's answer (0: none)."""

    def __init__(self, message, status, status_name, http_status):
        super().__init__(message)
        self.status = status
        self.status_name = status_name
        self.http_status = http_status


class InvalidArgumentError(TaskFarmError, ValueError):
    """A bad argument (a percentage outside 0..100, a task outside the run, an
    unknown information key, a malformed token or URL): nothing was sent."""


class TaskFarmConnectionError(TaskFarmError, ConnectionError):
    """The server could not be reached or did not answer in time, after the retries."""


def raise_for(lib, status, what=None):
    """Raises the exception for `status`, a failed call's tf_status, with the
    calling thread's tf_last_error (read at once: it is per thread)."""
    message = (lib.tf_last_error() or b"").decode("utf-8", "replace")
    http_status = lib.tf_last_http_status()
    name = (lib.tf_status_name(status) or b"").decode()
    if what:
        message = f"{what}: {message}"
    if http_status:
        message = f"[HTTP {http_status}]: {message}"
    if status == _native.STATUS_INVALID_ARGUMENT:
        cls = InvalidArgumentError
    elif status == _native.STATUS_CONNECTION:
        cls = TaskFarmConnectionError
    else:
        cls = TaskFarmError
    raise cls(message, status, name, http_status)


class NotDoneWarning(UserWarning):
    """`done()` released the held task below 100 %: not marked done, it stays
    `computing` on the server (as with the Python client, which said nothing).
    A warning, not an error, so that a program switched by one import line runs
    on; ``warnings.simplefilter("error", NotDoneWarning)`` makes it raise (after
    the release). A task that failed is ended with `fail(message)` instead."""
