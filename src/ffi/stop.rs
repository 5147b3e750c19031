//! Stop signals (`tf_stop_on_signals`, `tf_stop_requested`); the mechanism
//! is in `client/worker/stop_signals.rs`. A worker's wall time
//! (`tf_worker_set_deadline`) is in `worker.rs`, with the other `tf_worker_*`
//! functions.

use std::ffi::c_int;

use super::boundary::{status_call, value_call};
use super::status::tf_status;
use crate::client::worker::stop_signals::{self as stop, StopMode};
use crate::client::Error;

/// What the library does when a stop signal arrives (`tf_stop_on_signals`).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tf_stop_mode {
    /// The library hands every task held in the process back at once (state
    /// `waiting`, percentage kept), from a thread of its own, even while the
    /// program computes without calling the library; then the process ends as
    /// the signal would have ended it (the shell and Slurm see "killed by
    /// SIGTERM"). No task is taken after the signal.
    TF_STOP_EXIT = 0,
    /// The library only records the stop and sends nothing by itself: the
    /// next `tf_worker_update` hands the held task back and returns
    /// `TF_STOPPED`, `tf_worker_task` returns `TF_STOPPED`, `tf_worker_done`
    /// still marks a finished task done. The program polls
    /// `tf_stop_requested()` and carries on to a clean end.
    TF_STOP_CONTINUE = 1,
}

/// Makes `signals` (an array of `count` signal numbers) the stop signals of
/// the process, with `mode`, a `tf_stop_mode` (taken as an `int` so that any
/// number is safe to pass). Opt-in: the library installs no handler unless
/// asked, by this call or by `TASKFARM_STOP_SIGNALS`. `signals` NULL or
/// `count` 0: the default set SIGTERM, SIGINT, SIGHUP, SIGXCPU.
///
/// The stop signals are HUP, INT, QUIT, TERM, USR1, USR2, ALRM, XCPU, VTALRM
/// and PROF; any other number (KILL and STOP cannot be caught) gives
/// `TF_ERR_INVALID_ARGUMENT` and nothing is installed. A handler the program
/// installed before for one of these signals keeps being called (first). A
/// later call adds its signals and sets the mode for all of them. The
/// handler itself only records the signal and wakes the library's watcher
/// thread (async-signal-safe work only). Process-wide: a stop reaches every
/// worker of the process, whichever thread holds it. A signal ignored
/// (`SIG_IGN`) when it would be installed stays ignored, as shells leave it
/// (`nohup`, `&`). A second stop signal, once the library has seen the
/// first, ends the process at once with that signal's default action.
///
/// The guarantee, whatever signals, forks and failures do: a task is
/// executed at least once, marked done at most once by its worker, and never
/// set `waiting` after its `done`. In `TF_STOP_EXIT` mode the watcher waits
/// for a request of the program in flight (a `done`, a requeue, a task being
/// requested) rather than race it, hands every worker's task back at once,
/// and ends the process within the stop's budget, `TASKFARM_STOP_BUDGET`
/// seconds (default 20, short of Slurm's KillWait of 30 s).
///
/// No function of this library is async-signal-safe: none may be called
/// from a signal handler (poll `tf_stop_requested` from the program's own
/// code). After `fork()` the child may call, on handles it makes itself,
/// every function; on its parent's handles every call is refused with
/// `TF_ERR_INVALID_ARGUMENT` before anything is sent, and their `_free`
/// releases nothing. The child's first call of this function sets up its
/// own watcher, for its own workers; until then a stop signal in
/// `TF_STOP_EXIT` mode ends the child as if none were installed.
#[no_mangle]
pub extern "C" fn tf_stop_on_signals(
    signals: *const c_int,
    count: usize,
    mode: c_int,
) -> tf_status {
    status_call("tf_stop_on_signals", || {
        let mode = match mode {
            0 => StopMode::Exit,
            1 => StopMode::Continue,
            _ => {
                return Err(Error::invalid_argument(format!(
                    "mode {mode} is not a tf_stop_mode"
                )))
            }
        };
        let signals: &[c_int] = if signals.is_null() || count == 0 {
            &[]
        } else {
            // SAFETY: C passes an array of `count` ints when `signals` is not NULL.
            unsafe { std::slice::from_raw_parts(signals, count) }
        };
        stop::stop_on_signals(signals, mode)?;
        Ok(tf_status::TF_OK)
    })
}

/// The number of the stop signal caught (`SIGTERM` is 15), 0 if none was.
/// An atomic read, no request: cheap enough to poll in a computation.
#[no_mangle]
pub extern "C" fn tf_stop_requested() -> c_int {
    value_call("tf_stop_requested", 0, || Ok(stop::stop_requested()))
}
