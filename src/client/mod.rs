//! The protocol client: everything that talks to the taskfarm server,
//! in plain Rust. The C ABI in [`crate::ffi`] and the command-line tool are
//! built on it.
//!
//! At the root, the connection's settings and the protocol:
//! - [`settings`]: where the URL, credentials, timeout, retries and update
//!   interval come from, and their checks.
//! - `env`: every `TASKFARM_*` variable the library reads, read in one place.
//! - [`error`]: the error kinds the C layer maps to statuses.
//! - [`wire`]: the JSON messages of the protocol, as typed structs.
//! - [`run`]: a run of tasks (the Python `TaskFarm`), and the list of runs.
//! - [`clock`]: Unix time now.
//! - [`jitter`]: random waits (retry jitter, the journal's first heartbeat).
//!
//! In folders, the machinery:
//! - [`http`]: the HTTP transport, its retries, proxy, TLS and the scrubbing
//!   of secrets (its `mod.rs` maps it).
//! - [`worker`]: a worker's life: its tasks, progress, stop signals,
//!   deadline and journal.
//! - [`scheduler`]: what the library and `taskfarm reap` ask the batch
//!   system: Slurm, PBS, Grid Engine, LSF, Flux.
//!
//! No file imports another that imports it back, directly or through
//! others: `cargo test --test import_graph` checks the `use` lines of
//! `src/client` and `src/ffi` and names any circle.

pub mod clock;
mod env;
pub mod error;
pub mod http;
pub mod jitter;
pub mod run;
pub mod scheduler;
pub mod settings;
pub mod wire;
pub mod worker;

pub use error::{Error, ErrorKind, Result};
pub use run::{list_runs, new_token, Run, RunInfoKey, TaskInfoKey};
pub use settings::Settings;
pub use wire::{RunStatus, RunSummary, TaskState};
pub use worker::tasks::{Task, Tasks};
pub use worker::worker::{Failed, Worker};
