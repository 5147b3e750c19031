//! `taskfarm_worker`: a client of the [taskfarm] server, for workers that
//! work through a run of numbered tasks: take a task, compute it, report
//! progress, mark it done. The same client serves C, C++ and Fortran through
//! a C ABI (`include/taskfarm_worker.h`), the `taskfarm` command-line tool
//! (feature `cli`, off by default), and Rust programs through the API below.
//!
//! A Rust program that only works on runs needs no command-line tool, and
//! the crate builds none of its crates (and no C library) by default:
//!
//! ```toml
//! [dependencies]
//! taskfarm_worker = { git = "URL of this repository" }
//! ```
//!
//! # A worker
//!
//! [`Worker::tasks`] hands out one [`Task`] guard at a time until no task is
//! left. A guard ends done ([`Task::done`]) or handed back
//! ([`Task::hand_back`], [`Task::requeue`]); one that is dropped otherwise
//! (a `?`, a `break`, a panic) is handed back at its latest percentage, so
//! that no task stays `computing` for a worker that moved on.
//!
//! ```no_run
//! use std::sync::Arc;
//! use taskfarm_worker::{ErrorKind, Run, Settings, Worker};
//!
//! fn main() -> taskfarm_worker::Result<()> {
//!     let run_uuid = std::env::args().nth(1).expect("usage: worker RUN_UUID");
//!     // TASKFARM_URL, TASKFARM_USER, TASKFARM_PASSWORD or TASKFARM_TOKEN, ...
//!     let settings = Settings::from_env()?;
//!     let run = Arc::new(Run::open(&settings, &run_uuid)?);
//!     let mut worker = Worker::register(run)?;
//!     for task in worker.tasks() {
//!         let mut task = match task {
//!             Ok(task) => task,
//!             // A stop signal or the deadline: the task is back on the server.
//!             Err(e) if e.kind() == ErrorKind::Stopped => break,
//!             Err(e) => return Err(e),
//!         };
//!         for step in 1..=10 {
//!             // ... compute a tenth of task.id() ...
//!             task.update(f64::from(step) * 10.0)?;
//!         }
//!         task.done()?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! A run is made with [`Run::create`]; [`Run::status`] counts its tasks,
//! [`list_runs`] lists the runs of the server.
//!
//! # Errors
//!
//! Every call answers [`Result`]; an [`Error`] has a [`kind`](Error::kind)
//! to act on, the HTTP status of the answer that caused it, if any
//! ([`Error::http_status`]), and a message for people, which never holds the
//! password or the token. The kinds ([`ErrorKind`]):
//!
//! - `InvalidArgument`: a bad argument or setting, caught before anything was sent;
//! - `Connection`: the server was not reached, or did not answer, after every retry;
//! - `Auth`: the server refused the credentials or the token;
//! - `NotFound`: no such run or task on the server;
//! - `Http`: any other unexpected HTTP status;
//! - `Protocol`: an answer that breaks the protocol;
//! - `Stopped`: not a failure: a stop signal was caught ([`stop_on_signals`])
//!   or the deadline leaves no time for another task; no task is taken after it.
//!
//! # Configuration
//!
//! [`Settings::from_env`] reads the `TASKFARM_*` environment variables
//! (`TASKFARM_URL`, `TASKFARM_USER`, `TASKFARM_PASSWORD`, `TASKFARM_TOKEN`,
//! timeout, retries, backoff, CA file, log, update interval), and
//! [`Worker::register`] reads `TASKFARM_DEADLINE`, `TASKFARM_TASK_SECONDS`
//! and `TASKFARM_JOURNAL`; `TASKFARM_STOP_SIGNALS` is read when the first
//! handle of the C ABI is made. The manual's `docs/configuration.md`
//! lists them all with their defaults, the same for every language.
//!
//! # What is not the API
//!
//! The modules `internal` and `ffi` are public only for the command-line
//! tool, the C ABI and the tests: hidden here, with no semver promise.
//! `internal` is the protocol client of `src/client/`: the connection's
//! settings and the protocol at its root, the folders `http` (transport and
//! retries), `worker` (a worker's life) and `scheduler` (Slurm queries). The
//! reaper of `taskfarm reap` is part of the tool, not of this library.
//!
//! [taskfarm]: https://pypi.org/project/taskfarm/
#![deny(missing_docs)]

mod client;
// The C ABI: its `extern "C"` symbols are exported for C whatever Rust sees;
// Rust programs use the API above instead.
#[doc(hidden)]
pub mod ffi;

pub use client::http::credentials::{Credentials, Secret};
pub use client::wire::{RunStatus, RunSummary, TaskRecord, TaskState, TaskUpdate};
pub use client::worker::stop_signals::{stop_on_signals, stop_requested, StopMode};
pub use client::{
    list_runs, new_token, Error, ErrorKind, Failed, Result, Run, RunInfoKey, Settings, Task,
    TaskInfoKey, Tasks, Worker,
};

/// The protocol client's modules, for the command-line tool `taskfarm` and
/// the tests of this crate: not part of the API, no semver promise. Use the
/// items at the crate root.
#[doc(hidden)]
pub mod internal {
    pub use crate::client::*;
}
