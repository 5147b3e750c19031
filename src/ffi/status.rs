//! The status codes of every fallible function, the task states, and their names.

use std::ffi::{c_char, c_int};

use crate::client::{ErrorKind, TaskState};

/// The result of every fallible function. `TF_OK` is 0; the numbers are part
/// of the ABI and are never reused.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tf_status {
    /// Success.
    TF_OK = 0,
    /// `tf_worker_task`: the run has no task left to hand out. Not an error.
    TF_NO_MORE_TASKS = 1,
    /// A NULL pointer, invalid UTF-8, NaN, a percentage outside 0..100, a task
    /// outside 0..numTasks-1, an unknown info key, a bad URL or setting.
    /// Nothing was sent to the server.
    TF_ERR_INVALID_ARGUMENT = 2,
    /// The server could not be reached or did not answer in time, after retries
    /// (also: 502/503/504 to the last retry, a TLS certificate that does not verify).
    TF_ERR_CONNECTION = 3,
    /// The server refused the credentials (HTTP 401).
    TF_ERR_AUTH = 4,
    /// The run, task or info key does not exist on the server (HTTP 404).
    TF_ERR_NOT_FOUND = 5,
    /// Any other unexpected HTTP status; `tf_last_http_status` tells which.
    TF_ERR_HTTP = 6,
    /// An answer that breaks the protocol: bad JSON, a missing field, a body
    /// over the size limit, malformed HTTP.
    TF_ERR_PROTOCOL = 7,
    /// A bug in the library (a caught panic). Please report it.
    TF_ERR_INTERNAL = 8,
    /// The worker stopped taking tasks: a stop signal was caught
    /// (`tf_stop_on_signals`) or its deadline leaves no time for another task
    /// (`tf_worker_set_deadline`). Not an error: the task loop
    /// `while (tf_worker_task(w, &t) == TF_OK)` ends on it; `tf_last_error`
    /// says why.
    TF_STOPPED = 9,
    /// `tf_worker_done` released a held task whose percentage was below 100:
    /// it was not marked done and stays `computing` on the server (as with
    /// the Python client); with a journal the release is recorded and
    /// `taskfarm reap` gives the task back as a failed attempt. Not an error
    /// for the task loop: the worker holds no task and takes the next one.
    TF_NOT_DONE = 10,
}

/// The state of a task on the server.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tf_task_state {
    /// Waiting to be handed out.
    TF_TASK_WAITING = 0,
    /// Handed out to a worker and being computed.
    TF_TASK_COMPUTING = 1,
    /// Finished.
    TF_TASK_DONE = 2,
}

impl From<ErrorKind> for tf_status {
    fn from(kind: ErrorKind) -> tf_status {
        match kind {
            ErrorKind::InvalidArgument => tf_status::TF_ERR_INVALID_ARGUMENT,
            ErrorKind::Connection => tf_status::TF_ERR_CONNECTION,
            ErrorKind::Auth => tf_status::TF_ERR_AUTH,
            ErrorKind::NotFound => tf_status::TF_ERR_NOT_FOUND,
            ErrorKind::Http => tf_status::TF_ERR_HTTP,
            ErrorKind::Protocol => tf_status::TF_ERR_PROTOCOL,
            ErrorKind::Stopped => tf_status::TF_STOPPED,
        }
    }
}

impl From<TaskState> for tf_task_state {
    fn from(state: TaskState) -> tf_task_state {
        match state {
            TaskState::Waiting => tf_task_state::TF_TASK_WAITING,
            TaskState::Computing => tf_task_state::TF_TASK_COMPUTING,
            TaskState::Done => tf_task_state::TF_TASK_DONE,
        }
    }
}

/// The task state numbered `value` in `tf_task_state`, if there is one.
pub(crate) fn task_state_from_c(value: c_int) -> Option<TaskState> {
    match value {
        0 => Some(TaskState::Waiting),
        1 => Some(TaskState::Computing),
        2 => Some(TaskState::Done),
        _ => None,
    }
}

/// The name of a status code (`"TF_OK"`, `"TF_ERR_AUTH"`, ...), a static string;
/// `"TF_UNKNOWN_STATUS"` for a number that is not a `tf_status`.
///
/// Takes an `int` so that any number is safe to pass.
#[no_mangle]
pub extern "C" fn tf_status_name(status: c_int) -> *const c_char {
    let name: &'static [u8] = match status {
        0 => b"TF_OK\0",
        1 => b"TF_NO_MORE_TASKS\0",
        2 => b"TF_ERR_INVALID_ARGUMENT\0",
        3 => b"TF_ERR_CONNECTION\0",
        4 => b"TF_ERR_AUTH\0",
        5 => b"TF_ERR_NOT_FOUND\0",
        6 => b"TF_ERR_HTTP\0",
        7 => b"TF_ERR_PROTOCOL\0",
        8 => b"TF_ERR_INTERNAL\0",
        9 => b"TF_STOPPED\0",
        10 => b"TF_NOT_DONE\0",
        _ => b"TF_UNKNOWN_STATUS\0",
    };
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn every_status_has_its_own_name() {
        for (status, name) in [
            (tf_status::TF_OK, "TF_OK"),
            (tf_status::TF_NO_MORE_TASKS, "TF_NO_MORE_TASKS"),
            (
                tf_status::TF_ERR_INVALID_ARGUMENT,
                "TF_ERR_INVALID_ARGUMENT",
            ),
            (tf_status::TF_ERR_CONNECTION, "TF_ERR_CONNECTION"),
            (tf_status::TF_ERR_AUTH, "TF_ERR_AUTH"),
            (tf_status::TF_ERR_NOT_FOUND, "TF_ERR_NOT_FOUND"),
            (tf_status::TF_ERR_HTTP, "TF_ERR_HTTP"),
            (tf_status::TF_ERR_PROTOCOL, "TF_ERR_PROTOCOL"),
            (tf_status::TF_ERR_INTERNAL, "TF_ERR_INTERNAL"),
            (tf_status::TF_STOPPED, "TF_STOPPED"),
            (tf_status::TF_NOT_DONE, "TF_NOT_DONE"),
        ] {
            let got = unsafe { CStr::from_ptr(tf_status_name(status as c_int)) };
            assert_eq!(got.to_str().unwrap(), name);
        }
        for unknown in [-1, 11, c_int::MAX, c_int::MIN] {
            let got = unsafe { CStr::from_ptr(tf_status_name(unknown)) };
            assert_eq!(got.to_str().unwrap(), "TF_UNKNOWN_STATUS");
        }
    }
}
