//! `taskfarm run UUID [OPTIONS] -- COMMAND [ARG...]`: a worker (or `-j N` of
//! them in one process) that runs COMMAND once per task, with everything a
//! library worker has: the token fetched once, retries, coalesced progress,
//! stop signals, wall time, journal and attempts.
//!
//! - this file: the command: workers registered, runners started on
//!   threads, the stop signals, the exit status;
//! - `runner.rs`: one worker's loop, a task and an attempt at a time;
//! - `child.rs`: the command as a child process in its own process group,
//!   waited for and reaped with its resource usage;
//! - `spawn.rs`: how a command is started (`clone` with `CLONE_VFORK`, not
//!   `fork`: the runner's memory is not copied per task);
//! - `command_line.rs`: `{}` and the `TASKFARM_*` variables of a command;
//! - `progress_file.rs`: `TASKFARM_PROGRESS`, the percentage it writes;
//! - `joblog.rs`: `--joblog`, one JSON line per attempt;
//! - `exit_status.rs`: the exit statuses and the words of a failure.

mod child;
mod command_line;
pub mod exit_status;
pub mod joblog;
mod progress_file;
mod runner;
mod spawn;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use taskfarm_worker::internal::settings::DEFAULT_RETRIES;
use taskfarm_worker::internal::worker::identity::host_name;
use taskfarm_worker::internal::worker::stop_signals::{
    parse_signal_list, stop_on_signals, stop_requested, StopMode, DEFAULT_STOP_SIGNALS,
};
use taskfarm_worker::internal::{Run, Settings, Worker};

use crate::commands::explain;
use crate::failure::{one_line, Failure, EXIT_LOCAL};
use exit_status::{EXIT_FAILED_ATTEMPTS, EXIT_WALL_TIME};
use joblog::JobLog;
use progress_file::ProgressDir;
use runner::{Context, End, Tally};

/// What `taskfarm run` was asked.
#[derive(Debug)]
pub struct Request {
    pub uuid: String,
    pub jobs: usize,
    pub timeout: Option<Duration>,
    pub kill_after: Duration,
    pub output: Option<PathBuf>,
    pub joblog: Option<PathBuf>,
    pub journal: Option<PathBuf>,
    pub command: Vec<OsString>,
}

/// Runs `taskfarm run`. Returns only on a failure before any command ran
/// or when every runner is done; a stop signal ends the process as the
/// signal would have.
pub fn run(settings: &Settings, request: &Request) -> Result<(), Failure> {
    let mut settings = settings.clone();
    if std::env::var_os("TASKFARM_RETRIES").is_none() {
        // The workers' budget, not the short one of the one-shot commands.
        settings.retries = DEFAULT_RETRIES;
    }
    if let Some(dir) = &request.output {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::local(format!("--output {}: {e}", dir.display())))?;
    }
    let joblog = match &request.joblog {
        Some(path) => Some(
            JobLog::open(path)
                .map_err(|e| Failure::local(format!("--joblog {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let progress = ProgressDir::create()
        .map_err(|e| Failure::local(format!("cannot make a directory for progress files: {e}")))?;
    let workers = register(&settings, request)?;
    install_stop_signals()?;

    let cx = Context {
        run: &request.uuid,
        command: &request.command,
        timeout: request.timeout,
        kill_after: request.kill_after,
        output: request.output.as_deref(),
        joblog: joblog.as_ref(),
        progress: &progress,
        host: host_name(),
    };
    let results: Vec<(End, Tally)> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(slot, mut worker)| {
                let cx = &cx;
                scope.spawn(move || runner::work(&mut worker, slot, cx))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    (
                        End::Local("a runner failed (a bug)".into()),
                        Tally::default(),
                    )
                })
            })
            .collect()
    });
    drop(progress);
    conclude(settings, request, results)
}

/// Opens the run once per runner (the token fetched once, then shared) and
/// registers the workers, with the journal of `--journal`.
fn register(settings: &Settings, request: &Request) -> Result<Vec<Worker>, Failure> {
    let first = Run::open(settings, &request.uuid)
        .map_err(|e| explain(e, settings, Some(&request.uuid)))?;
    let mut with_token = settings.clone();
    with_token.token = Some(first.connection().token());
    let mut runs = vec![Arc::new(first)];
    for _ in 1..request.jobs {
        let run = Run::open(&with_token, &request.uuid)
            .map_err(|e| explain(e, settings, Some(&request.uuid)))?;
        runs.push(Arc::new(run));
    }
    let mut workers = Vec::with_capacity(runs.len());
    for run in runs {
        let mut worker = Worker::register(run).map_err(Failure::from)?;
        if let Some(dir) = &request.journal {
            worker
                .set_journal(Some(dir))
                .map_err(|e| Failure::usage(format!("--journal: {}", e.message())))?;
        }
        workers.push(worker);
    }
    Ok(workers)
}

/// The default stop signals and those of `TASKFARM_STOP_SIGNALS`, in the
/// mode where each runner hands its task back itself (after its command
/// has ended).
fn install_stop_signals() -> Result<(), Failure> {
    let mut signals = DEFAULT_STOP_SIGNALS.to_vec();
    if let Some(list) = std::env::var("TASKFARM_STOP_SIGNALS")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        let extra = parse_signal_list(&list)
            .map_err(|e| Failure::usage(format!("TASKFARM_STOP_SIGNALS: {}", e.message())))?;
        signals.extend(extra);
    }
    stop_on_signals(&signals, StopMode::Continue).map_err(Failure::from)?;
    let _ = runner::STOP_SIGNALS.set(signals);
    Ok(())
}

/// The exit status from what the runners did.
fn conclude(
    _settings: Settings,
    request: &Request,
    results: Vec<(End, Tally)>,
) -> Result<(), Failure> {
    let mut total = Tally::default();
    let mut failure: Option<Failure> = None;
    let mut wall_time = false;
    for (end, tally) in results {
        total.done += tally.done;
        total.failed += tally.failed;
        total.set_aside += tally.set_aside;
        match end {
            End::NoTaskLeft | End::Stopped => {}
            End::WallTime => wall_time = true,
            End::Local(message) => {
                failure.get_or_insert(Failure::new(EXIT_LOCAL, message));
            }
            End::Server(error) => {
                failure.get_or_insert(Failure::from(error));
            }
        }
    }
    eprintln!(
        "taskfarm run: {} task(s) done, {} failed attempt(s), {} task(s) set aside (run {})",
        total.done, total.failed, total.set_aside, request.uuid
    );
    let signal = match stop_requested() {
        0 => runner::command_stopped_by(),
        signal => signal,
    };
    if signal != 0 {
        // The process ends as the signal; what went wrong on the way (a
        // hand-back refused) is said first.
        if let Some(failure) = &failure {
            eprintln!("taskfarm: {}", one_line(&failure.message));
        }
        end_as(signal);
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    if wall_time {
        return Err(Failure::new(
            EXIT_WALL_TIME,
            "run: stopped at the wall time (no time for another task)",
        ));
    }
    if total.failed > 0 {
        return Err(Failure::new(
            EXIT_FAILED_ATTEMPTS,
            format!(
                "run: {} attempt(s) failed (taskfarm failed {} --journal DIR lists them)",
                total.failed, request.uuid
            ),
        ));
    }
    Ok(())
}

/// Ends the process as `signal` would have (default disposition, raised).
fn end_as(signal: libc::c_int) -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}
