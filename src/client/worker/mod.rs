//! A worker's life: registered on a run, it takes a task at a time,
//! reports progress, marks it done or hands it back, also when a stop
//! signal or the deadline ends its work.
//!
//! - [`worker`](self::worker): the worker (the Python `TaskFarmWorker`):
//!   the calls of the C ABI, one by one.
//! - [`tasks`]: `for task in worker.tasks()`, a guard per task that ends
//!   done or handed back.
//! - `progress.rs`: a worker's pending progress and its flusher thread,
//!   *where an update waits*; it sends through a small trait that the run
//!   implements.
//! - `held_task.rs`: each worker's held task as one state machine behind
//!   one lock, which the worker, the stop watcher and the journal go through.
//! - [`stop_signals`]: stop signals, and the watcher thread that hands every
//!   held task back.
//! - `deadline.rs`: wall time: no task taken that the time left cannot fit.
//! - [`journal`]: the worker journal's format, and the worker's writer with
//!   its heartbeat thread (`taskfarm reap` reads it).
//! - [`identity`]: a worker's UUID, host name and pid.
//! - [`machine`]: what this machine proves about a process (boot id, PID
//!   namespace, `kill(pid, 0)`), which the journal records and the reaper
//!   checks.
//! - [`shared_dir`]: files in a directory other users can write
//!   (`mkstemp`-style creation, atomic replacement, reads with a limit).
//!
//! `cargo test --test import_graph` fails on any circle in the `use` lines.

pub(crate) mod deadline;
pub(crate) mod held_task;
pub mod identity;
pub mod journal;
pub mod machine;
pub(crate) mod progress;
pub mod shared_dir;
pub mod stop_signals;
pub mod tasks;
// The folder is a worker's life; this file is the worker itself.
#[allow(clippy::module_inception)]
pub mod worker;
