//! `taskfarm reap UUID --journal DIR`: gives back the tasks of workers that
//! are gone, delivers their kept `done`s, sets aside the tasks that killed
//! `--max-attempts` workers, and says what it did. The library holds only
//! the journal's format, which workers write; the reaper is here.
//!
//! - this file: the command: the request, the passes, what is printed;
//! - `pass.rs`: one pass over a run's journals, and what it reports;
//! - `deciding.rs`: whether a worker is gone, and why;
//! - `state.rs`: the reaper's own state file (attempts, tasks set aside,
//!   its looks at heartbeats);
//! - `lock.rs`: one reaper per run (`DIR/reap-<run>.lock`);
//! - `attempts.rs`: the failed-attempt records of the journal directory
//!   (crashes recorded, tasks released below 100 % given back);
//! - `cluster_name.rs`: the Slurm cluster `squeue` here answers for.
//!
//! A worker is gone when that is proved — on the same machine (boot id)
//! and in the same PID namespace its process no longer exists or its pid
//! now belongs to a process that started later; under Slurm, `squeue` no
//! longer shows its job or step — or when its heartbeat stood still
//! between the reaper's own looks for longer than the `stale` limit and
//! three of the worker's recorded intervals. A suspended Slurm job is
//! alive. A worker freed by its program with a task still held is gone too
//! (that give-back is not an attempt). Only journals owned by the reaper's
//! user (or `--owner`) are acted on.

mod attempts;
mod cluster_name;
mod deciding;
mod lock;
mod pass;
mod state;

use std::path::Path;
use std::time::Duration;

use taskfarm_worker::internal::worker::worker::server_away;
use taskfarm_worker::internal::Settings;

use crate::commands::{explain, open};
use crate::failure::Failure;
use crate::output;

pub use pass::{Options, DEFAULT_MAX_ATTEMPTS, DEFAULT_STALE_SECS};
use pass::{Reaper, Report};

/// The tasks the reaper set aside for run `run` (its state in `dir`).
pub fn set_aside_tasks(
    dir: &Path,
    run: &str,
) -> taskfarm_worker::internal::Result<std::collections::BTreeSet<i64>> {
    Ok(state::State::load(dir, run)?.set_aside)
}

/// What `taskfarm reap` was asked.
#[derive(Debug)]
pub struct Request<'a> {
    pub uuid: &'a str,
    pub journal: &'a Path,
    pub options: Options,
    pub watch: Option<Duration>,
    pub release: Option<i64>,
    pub json: bool,
}

/// Runs `taskfarm reap`.
pub fn reap(settings: &Settings, request: &Request<'_>) -> Result<(), Failure> {
    let run = open(settings, request.uuid)?;
    let reaper = Reaper::new(&run, request.journal, request.options.clone())?;
    if let Some(task) = request.release {
        let message = reaper
            .release(task)
            .map_err(|e| explain(e, settings, Some(request.uuid)))?;
        return if request.json {
            output::json(&serde_json::json!({"run": request.uuid, "released": task,
                "dry_run": request.options.dry_run, "message": message}))
        } else {
            output::line(&message)
        };
    }
    loop {
        match reaper.pass() {
            Ok(report) => {
                show(&report, request.json)?;
                if report.finished || request.watch.is_none() {
                    return Ok(());
                }
            }
            // While watching, a server that is away for a while (a restart,
            // maintenance) is waited for; anything else ends the command.
            Err(error) if request.watch.is_some() && server_away(&error) => {
                eprintln!(
                    "taskfarm reap: {} (trying again)",
                    crate::failure::one_line(error.message())
                );
            }
            Err(error) => return Err(explain(error, settings, Some(request.uuid))),
        }
        if let Some(interval) = request.watch {
            std::thread::sleep(interval);
        }
    }
}

fn show(report: &Report, json: bool) -> Result<(), Failure> {
    if json {
        return output::json(report);
    }
    let mut text = String::new();
    for message in report.warnings.iter().chain(&report.messages) {
        text.push_str(message);
        text.push('\n');
    }
    let s = &report.status;
    let alive = report
        .workers
        .iter()
        .filter(|w| w.verdict == "alive")
        .count();
    text.push_str(&format!(
        "run {}: {} done, {} waiting, {} computing, {} not started of {} tasks; \
         {alive} live journaled worker(s)",
        report.run,
        s.num_done,
        s.num_waiting,
        s.num_computing,
        s.num_not_started(),
        s.num_tasks
    ));
    if !report.set_aside.is_empty() {
        let tasks: Vec<String> = report.set_aside.iter().map(i64::to_string).collect();
        text.push_str(&format!("; set aside: {}", tasks.join(" ")));
    }
    if report.dry_run {
        text.push_str(" (dry run: nothing changed)");
    }
    text.push('\n');
    output::print(&text)
}
