//! The batch systems the library and the command-line tool ask: how long
//! a job has left, whether a job or step still runs.
//!
//! - `command.rs`: the one way a scheduler's command is run, with a time
//!   limit ([`command::run_with_time_limit`]).
//! - `slurm.rs`: every `squeue` query (a job's time left for the deadline;
//!   a job's and a step's state for `taskfarm reap`) and its parser.
//!
//! Which files import which: `cargo test --test import_graph` fails on any
//! circle in `src/client` and `src/ffi`.

pub mod command;
pub mod slurm;
