//! The protocol client: everything that talks to the taskfarm server,
//! in plain Rust. The C ABI in [`crate::ffi`] and the command-line tool are
//! built on it.
//!
//! - [`settings`]: where the URL, credentials, timeout and retries come from.
//! - [`transport`]: one keep-alive HTTP agent per handle, the token, one attempt.
//! - [`retry`]: which failures may have reached the server, which are retried,
//!   how long to wait, and the retry loop.
//! - `coalesce`: a request's head and body sent in one write; whether an
//!   attempt sent any of it.
//! - [`proxy`]: which proxy, from the environment as the Python client reads it.
//! - `resolve`: host names looked up once per minute, not once per request.
//! - `scrub`: the password and token removed from every message and log line.
//! - [`wire`]: the JSON messages of the protocol, as typed structs.
//! - [`run`]: a run of tasks (the Python `TaskFarm`), and the list of runs.
//! - [`worker`]: a worker working through a run (the Python `TaskFarmWorker`).
//! - [`stop`]: stop signals, and the registry of held tasks they hand back.
//! - [`tasks`]: `for task in worker.tasks()`, a guard per task that is done or handed back.
//! - [`deadline`]: wall time: no task taken that the time left cannot fit.
//! - [`journal`]: the worker journal (`TASKFARM_JOURNAL`) and its heartbeat thread.
//! - [`reap`]: what `taskfarm reap` decides: which workers are gone, what to give back.
//! - `scheduler`: the batch schedulers beyond Slurm (PBS, Grid Engine, LSF,
//!   Flux): which one the environment names, a job's time left, whether a
//!   job is gone.
//! - [`progress`]: a worker's progress updates, at most one request per interval.

mod coalesce;
pub mod deadline;
mod endpoint;
pub mod error;
mod identity;
pub mod journal;
pub mod progress;
pub mod proxy;
pub mod reap;
mod resolve;
// Not called yet: wired into the deadline and the reaper next.
pub mod retry;
pub mod run;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod scheduler;
mod scrub;
pub mod settings;
pub mod stop;
pub mod tasks;
mod tls;
pub mod transport;
pub mod wire;
pub mod worker;

pub use error::{Error, ErrorKind, Result};
pub use run::{list_runs, new_token, Run, RunInfoKey, TaskInfoKey};
pub use settings::Settings;
pub use tasks::{Task, Tasks};
pub use wire::{RunStatus, RunSummary, TaskState};
pub use worker::Worker;
