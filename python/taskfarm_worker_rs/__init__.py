"""taskfarm_worker_rs: the API of the Python taskfarm client (taskfarm-worker
0.4.0) over libtaskfarm_worker, the Rust client with a C ABI. Switch with one
line::

    from taskfarm_worker_rs import TaskFarm, TaskFarmWorker, tfRuns

Map of the package:
  taskfarm   tfRuns, TaskFarm, TaskFarmWorker (the Python client's API, and more)
  errors     TaskFarmError (a RuntimeError), InvalidArgumentError (also a
             ValueError), TaskFarmConnectionError (also a ConnectionError),
             NotDoneWarning (done() below 100 %)
  stop       stop_on_signals, stop_requested
  _native    loading the library and declaring its functions (ctypes)

docs/python.md in the repository says what changes and what is added.
"""

from . import _native
from .errors import InvalidArgumentError, NotDoneWarning, TaskFarmConnectionError, TaskFarmError
from .stop import stop_on_signals, stop_requested
from .taskfarm import DEFAULT_URL, TaskFarm, TaskFarmWorker, tfRuns

__all__ = [
    "tfRuns", "TaskFarm", "TaskFarmWorker",
    "TaskFarmError", "InvalidArgumentError", "TaskFarmConnectionError", "NotDoneWarning",
    "stop_on_signals", "stop_requested", "DEFAULT_URL", "__version__",
]

# The library's version, which is the crate's (Cargo.toml) and the wheel's.
__version__ = _native.load().tf_version().decode()
