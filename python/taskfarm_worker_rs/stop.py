"""Stop signals, process-wide (the C tf_stop_on_signals and tf_stop_requested):

  stop_on_signals(signals=None, exit=True)   opt in: these signals stop every worker
  stop_requested()                           the stop signal caught, 0 if none

Without a call (or TASKFARM_STOP_SIGNALS) the library installs no handler.
"""

import ctypes
import signal

from . import _native
from .taskfarm import _check


def stop_on_signals(signals=None, exit=True):
    """Makes `signals` (signal numbers or signal.Signals; None: SIGTERM, SIGINT,
    SIGHUP, SIGXCPU) the stop signals of the process.

    exit=True: on a stop signal the library hands every held task of the
    process back (waiting, percentage kept), from a thread of its own even
    while Python computes, then the process ends as the signal would have
    ended it. exit=False: the library only records the signal; the next
    `update` hands the held task back, `task` returns None, `worker.stopped`
    turns True and `stop_requested()` names the signal: the program carries
    on to a clean end. A Python handler installed before (signal.signal) is
    still called first; its Python code runs when the interpreter next can.
    """
    lib = _native.load()
    numbers = [] if signals is None else [int(s) for s in signals]
    array = (ctypes.c_int * len(numbers))(*numbers)
    mode = _native.STOP_EXIT if exit else _native.STOP_CONTINUE
    _check(lib, lib.tf_stop_on_signals(array if numbers else None, len(numbers), mode))


def stop_requested():
    """The stop signal caught (a signal.Signals, e.g. SIGTERM), or 0 if none was."""
    number = _native.load().tf_stop_requested()
    return signal.Signals(number) if number else 0
