//! One runner: a worker that takes a task at a time and runs the command on
//! it until no task is left, a stop signal, the wall time or an error. The
//! command's percentage comes from its progress file; its end decides the
//! task: exit 0 done, killed by a stop signal a stop (the task handed back,
//! no attempt counted), anything else a failed attempt (the library's
//! `Worker::fail`: handed back, or set aside at `TASKFARM_MAX_ATTEMPTS`).

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use taskfarm_worker::internal::clock::unix_now;
use taskfarm_worker::internal::worker::stop_signals::{signal_name, stop_requested};
use taskfarm_worker::internal::{Error, ErrorKind, Failed, Worker};

use super::child::{last_lines, Child, Ended, Launch, Output, TAIL_BYTES};
use super::command_line::{environment, substitute};
use super::exit_status::{describe, failure_message};
use super::joblog::{Entry, JobLog, Outcome};
use super::progress_file::{ProgressDir, ProgressFile};
use super::spawn::Spawner;

/// How often a runner looks at the progress file, the clock and the stop
/// flag while its command runs (the command's end wakes it at once).
const TICK: Duration = Duration::from_millis(100);
/// The lines of the command's stderr that end a failure's message.
const STDERR_LINES: usize = 10;

/// `taskfarm run`'s stop signals, set once when they are installed.
pub static STOP_SIGNALS: OnceLock<Vec<libc::c_int>> = OnceLock::new();
/// The stop signal that ended a command before `taskfarm run` itself got
/// one (0: none).
static COMMAND_STOPPED_BY: AtomicI32 = AtomicI32::new(0);

/// The stop signal that ended a command from outside (a batch system
/// signals every process of a job at its time limit, the command often
/// first), 0 when none did: `taskfarm run` ends as that signal.
pub fn command_stopped_by() -> libc::c_int {
    COMMAND_STOPPED_BY.load(Ordering::SeqCst)
}

/// Whether the command was ended by one of the stop signals, sent by
/// someone else than this runner: a stop, not a failure.
fn stopped_from_outside(signal: Option<libc::c_int>) -> bool {
    signal.is_some_and(|s| STOP_SIGNALS.get().is_some_and(|all| all.contains(&s)))
}

/// What every runner of one `taskfarm run` shares.
#[derive(Debug)]
pub struct Context<'a> {
    /// The run's uuid.
    pub run: &'a str,
    /// The command and its arguments (with `{}`).
    pub command: &'a [OsString],
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// SIGKILL this long after SIGTERM.
    pub kill_after: Duration,
    /// `--output`.
    pub output: Option<&'a Path>,
    /// `--joblog`.
    pub joblog: Option<&'a JobLog>,
    /// The progress files.
    pub progress: &'a ProgressDir,
    /// This host's name, for the job log.
    pub host: String,
}

/// Why a runner ended.
#[derive(Debug)]
pub enum End {
    /// The run had no task left.
    NoTaskLeft,
    /// A stop signal: the task held was handed back.
    Stopped,
    /// The wall time left no time for another task.
    WallTime,
    /// A command could not be started, or an output not written.
    Local(String),
    /// The server failed.
    Server(Error),
}

/// What one runner did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Tasks done.
    pub done: u64,
    /// Failed attempts (timeouts included).
    pub failed: u64,
    /// Tasks set aside after their last attempt.
    pub set_aside: u64,
}

/// Works through the run with `worker` as runner number `slot`.
pub fn work(worker: &mut Worker, slot: usize, cx: &Context<'_>) -> (End, Tally) {
    let mut tally = Tally::default();
    let mut spawner = match Spawner::new() {
        Ok(spawner) => spawner,
        Err(e) => {
            return (
                End::Local(format!("cannot prepare the commands: {e}")),
                tally,
            )
        }
    };
    let mut progress = cx.progress.file(slot);
    loop {
        let task = match worker.task() {
            Ok(Some(task)) => task,
            Ok(None) => return (End::NoTaskLeft, tally),
            Err(e) if e.kind() == ErrorKind::Stopped => {
                return if stop_requested() != 0 {
                    (End::Stopped, tally)
                } else {
                    eprintln!("taskfarm run: {}", e.message());
                    (End::WallTime, tally)
                };
            }
            Err(e) => return (End::Server(e), tally),
        };
        match attempt(worker, task, cx, &mut spawner, &mut progress, &mut tally) {
            Ok(None) => {}
            Ok(Some(end)) => return (end, tally),
            Err(end) => {
                // The task goes back as it was: this runner cannot go on.
                let _ = worker.hand_back();
                return (end, tally);
            }
        }
    }
}

/// Runs the command on `task`; `Ok(Some(end))` when the runner must stop.
fn attempt(
    worker: &mut Worker,
    task: i64,
    cx: &Context<'_>,
    spawner: &mut Spawner,
    progress: &mut ProgressFile,
    tally: &mut Tally,
) -> Result<Option<End>, End> {
    let number = worker.attempt().ok().flatten().unwrap_or(1);
    progress
        .begin()
        .map_err(|e| End::Local(format!("cannot make the progress file: {e}")))?;
    let (output, stderr_file) = output_files(cx.output, task, number)?;
    let launch = Launch {
        argv: substitute(cx.command, task),
        env: environment(cx.run, task, number, progress.path()),
        output,
    };
    let start = unix_now();
    let started = Instant::now();
    let mut child = Child::start(launch, spawner).map_err(|e| {
        End::Local(format!(
            "cannot start {}: {e}",
            cx.command[0].to_string_lossy()
        ))
    })?;
    let mut ending: Option<(Outcome, Instant)> = None;
    let mut killed = false;
    let ended: Ended = loop {
        match child.wait(TICK) {
            Ok(Some(ended)) => break ended,
            Ok(None) => {}
            Err(e) => return Err(End::Local(format!("cannot wait for the command: {e}"))),
        }
        if let Some(percent) = progress.read_new() {
            report(worker, percent);
        }
        match ending {
            None if stop_requested() != 0 => {
                child.signal_group(libc::SIGTERM);
                ending = Some((Outcome::Stopped, Instant::now() + cx.kill_after));
            }
            None if cx.timeout.is_some_and(|t| started.elapsed() >= t) => {
                child.signal_group(libc::SIGTERM);
                ending = Some((Outcome::Timeout, Instant::now() + cx.kill_after));
            }
            Some((_, kill_at)) if !killed && Instant::now() >= kill_at => {
                child.signal_group(libc::SIGKILL);
                killed = true;
            }
            _ => {}
        }
    };
    let end = unix_now();
    if let Some(percent) = progress.read_new() {
        if ending.is_none() {
            report(worker, percent);
        }
    }
    let tail = match &stderr_file {
        Some(path) => last_lines(&file_tail(path), STDERR_LINES),
        None => last_lines(child.stderr_tail(), STDERR_LINES),
    };
    let outcome = match ending {
        Some((outcome, _)) => outcome,
        None if ended.exit == Some(0) => Outcome::Done,
        // Killed by a stop signal that did not come from this runner (Slurm
        // at a time limit signals every process of the job): a stop.
        None if stopped_from_outside(ended.signal) => {
            let _ = COMMAND_STOPPED_BY.compare_exchange(
                0,
                ended.signal.unwrap_or(libc::SIGTERM),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            Outcome::Stopped
        }
        None => Outcome::Failed,
    };
    let mut message = None;
    let mut stop = None;
    match outcome {
        Outcome::Done => {
            worker.complete().map_err(End::Server)?;
            tally.done += 1;
        }
        Outcome::Stopped => {
            // Handed back at the last percentage it reported (the library
            // did already if a progress report met the stop).
            worker.hand_back().map_err(End::Server)?;
            let signal = match stop_requested() {
                0 => command_stopped_by(),
                signal => signal,
            };
            eprintln!(
                "taskfarm run: {}: task {task} handed back",
                signal_name(signal)
            );
            stop = Some(End::Stopped);
        }
        Outcome::Failed | Outcome::Timeout => {
            let what = if outcome == Outcome::Timeout {
                format!(
                    "timed out after {} s ({}, {})",
                    cx.timeout.unwrap_or_default().as_secs_f64(),
                    if killed {
                        "SIGTERM, then SIGKILL"
                    } else {
                        "SIGTERM"
                    },
                    describe(&ended)
                )
            } else {
                describe(&ended)
            };
            let text = failure_message(&what, &tail);
            match worker.fail(&text).map_err(End::Server)? {
                Failed::SetAside { attempt } => {
                    tally.set_aside += 1;
                    eprintln!(
                        "taskfarm run: task {task} failed ({what}) at attempt {attempt}: set \
                         aside (TASKFARM_MAX_ATTEMPTS)"
                    );
                }
                _ => eprintln!("taskfarm run: task {task} failed ({what}), attempt {number}"),
            }
            tally.failed += 1;
            message = Some(text);
        }
    }
    if let Some(log) = cx.joblog {
        let entry = Entry {
            run: cx.run.to_owned(),
            task,
            attempt: number,
            host: cx.host.clone(),
            pid: child.pid(),
            start,
            end,
            exit: ended.exit,
            signal: ended.signal.map(signal_name),
            outcome,
            max_rss_kb: ended.max_rss_kb,
            user_s: ended.user_s,
            system_s: ended.system_s,
            message,
        };
        log.append(&entry)
            .map_err(|e| End::Local(format!("cannot write the job log: {e}")))?;
    }
    Ok(stop)
}

/// Sends a percentage the command reported; a failure is said on stderr
/// (the library keeps the value and sends it with the next request).
fn report(worker: &mut Worker, percent: f64) {
    match worker.update(percent) {
        Ok(()) => {}
        // A stop met the report: the task went back at this percentage.
        Err(e) if e.kind() == ErrorKind::Stopped => {}
        Err(e) => eprintln!("taskfarm run: progress {percent} %: {}", e.message()),
    }
}

/// With `--output DIR`: the attempt's stdout and stderr files
/// (`task-T-attempt-A.stdout`, `.stderr`), and the stderr file's path.
fn output_files(
    dir: Option<&Path>,
    task: i64,
    attempt: u32,
) -> Result<(Output, Option<PathBuf>), End> {
    let Some(dir) = dir else {
        return Ok((Output::PassThrough, None));
    };
    let open = |suffix: &str| {
        let path = dir.join(format!("task-{task}-attempt-{attempt}.{suffix}"));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map(|file| (file, path.clone()))
            .map_err(|e| End::Local(format!("cannot write {}: {e}", path.display())))
    };
    let (stdout, _) = open("stdout")?;
    let (stderr, path): (File, PathBuf) = open("stderr")?;
    Ok((Output::Files { stdout, stderr }, Some(path)))
}

/// The last bytes of the file `path`.
fn file_tail(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES as u64)));
        let _ = file.take(TAIL_BYTES as u64).read_to_end(&mut bytes);
    }
    bytes
}
