//! One pass of the reaper over the journals of a run: each worker seen and
//! decided on (`deciding.rs`), for those gone the held task given back, the
//! kept `done`s delivered, an attempt recorded (`state.rs`), and the journal
//! file removed; tasks that killed `max_attempts` workers are set aside
//! instead, and a give-back that may have reached the server unconfirmed (no
//! answer, or a 5xx) is recorded and never made again (the task is left to `--restart-orphans`).
//! Only journals owned by the reaper's user (or `--owner`) are acted on,
//! and no task the server never handed out is read or written (that would
//! create it out of order and break the run).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_derive::Serialize;
use taskfarm_worker::internal::wire::{RunStatus, TaskState, TaskUpdate};
use taskfarm_worker::internal::worker::journal::{self, read_journal, Record};
use taskfarm_worker::internal::worker::shared_dir::{check_directory, own_uid, DirectoryAccess};
use taskfarm_worker::internal::{Error, Result, Run};

use super::attempts;
use super::deciding::{decide, Probe, SystemProbe, Verdict};
use super::lock::RunLock;
use super::state::{clock_name, monotonic_now, OrphanLook, State};

/// `--stale` when not given: ten default heartbeats.
pub const DEFAULT_STALE_SECS: f64 = 300.0;
/// `--max-attempts` when not given.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// How the reaper works.
#[derive(Debug, Clone)]
pub struct Options {
    /// A heartbeat older than this many seconds means the worker is gone.
    pub stale_secs: f64,
    /// A task that killed this many workers is set aside.
    pub max_attempts: u32,
    /// Say what would be done; change nothing.
    pub dry_run: bool,
    /// When no live worker is left, `restart(false)` the tasks computing
    /// that no live worker holds (when two passes saw the same).
    pub restart_orphans: bool,
    /// Users (uids) besides the reaper's own whose journals are acted on.
    pub owners: Vec<u32>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            stale_secs: DEFAULT_STALE_SECS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dry_run: false,
            restart_orphans: false,
            owners: Vec::new(),
        }
    }
}

/// One journaled worker as the reaper saw it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerSeen {
    /// The journal file's name.
    pub file: String,
    /// The worker uuid.
    pub worker: String,
    /// Host and pid.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The task it holds, if any.
    pub task: Option<i64>,
    /// `alive` or `gone`.
    pub verdict: &'static str,
    /// Why.
    pub reason: String,
}

/// A journal file left alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Invalid {
    /// The file's name.
    pub file: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A task the reaper gave back, delivered, or set aside.
#[derive(Debug, Clone, Serialize)]
pub struct TaskAction {
    /// The task number.
    pub task: i64,
    /// The worker it came from.
    pub worker: String,
    /// The attempts counted for the task so far.
    pub attempts: u32,
}

/// What one pass found and did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run.
    pub run: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// The journaled workers.
    pub workers: Vec<WorkerSeen>,
    /// Journal files left alone.
    pub invalid: Vec<Invalid>,
    /// Tasks given back (waiting, percentage kept).
    pub given_back: Vec<TaskAction>,
    /// Kept `done`s delivered.
    pub delivered: Vec<TaskAction>,
    /// Tasks set aside in this pass.
    pub newly_set_aside: Vec<TaskAction>,
    /// Every task set aside (until released).
    pub set_aside: Vec<i64>,
    /// Tasks computing on the server that no live journaled worker holds,
    /// when no live worker is left (else 0: live workers may hold them).
    pub orphans: i64,
    /// `restart(false)` was done for the orphans.
    pub restarted: bool,
    /// The run's counts after the pass.
    pub status: RunStatus,
    /// Every task is done or set aside.
    pub finished: bool,
    /// What happened, one line each, for people.
    pub messages: Vec<String>,
    /// What the user should set up (the directory's permissions).
    pub warnings: Vec<String>,
}

/// The reaper of one run and journal directory.
#[derive(Debug)]
pub struct Reaper<'a> {
    run: &'a Run,
    dir: PathBuf,
    options: Options,
    /// The run's lock (none for a dry run, which writes nothing).
    _lock: Option<RunLock>,
    warnings: Vec<String>,
}

impl<'a> Reaper<'a> {
    /// A reaper of `run` for the journals in `dir`.
    pub fn new(run: &'a Run, dir: &Path, options: Options) -> Result<Reaper<'a>> {
        if !dir.is_dir() {
            return Err(Error::invalid_argument(format!(
                "journal directory {} is not a directory",
                dir.display()
            )));
        }
        if options.max_attempts == 0 || options.stale_secs.is_nan() || options.stale_secs <= 0.0 {
            return Err(Error::invalid_argument(
                "--max-attempts must be at least 1 and --stale more than 0",
            ));
        }
        let mut warnings = Vec::new();
        match check_directory(dir) {
            Ok(DirectoryAccess::WorldWritable) => {
                return Err(Error::invalid_argument(format!(
                    "journal directory {} is writable by every user without the sticky bit: \
                     anyone could replace the journals and the reaper's files (chmod o-w, \
                     or chmod +t)",
                    dir.display()
                )))
            }
            Ok(DirectoryAccess::GroupWritable) => warnings.push(format!(
                "warning: journal directory {} is writable by its group without the sticky \
                 bit: a member can remove or replace anyone's journal (chmod +t keeps each \
                 file to its owner)",
                dir.display()
            )),
            _ => {}
        }
        let lock = if options.dry_run {
            None
        } else {
            let (lock, took_over) = RunLock::acquire(dir, run.uuid())?;
            warnings.extend(took_over);
            Some(lock)
        };
        Ok(Reaper {
            run,
            dir: dir.to_path_buf(),
            options,
            _lock: lock,
            warnings,
        })
    }

    /// The number of tasks the server has handed out: they are created in
    /// order (docs/PROTOCOL.md), so tasks `0..n` exist and no other may be read
    /// or written (that would create it out of order). At most `numTasks`
    /// (a task moving while the server counts is counted twice).
    fn handed_out(status: &RunStatus) -> i64 {
        (status.num_done + status.num_computing + status.num_waiting).min(status.num_tasks)
    }

    /// Refuses task `task` when the server never handed it out.
    fn check_handed_out(&self, task: i64, status: &RunStatus) -> Result<()> {
        self.run.check_task(task)?;
        if task >= Self::handed_out(status) {
            return Err(Error::invalid_argument(format!(
                "task {task} of run {} was never handed out (tasks 0..{} were): not touched",
                self.run.uuid(),
                Self::handed_out(status)
            )));
        }
        Ok(())
    }

    /// Sets a task aside no more: its attempts are forgotten and, when the
    /// server still shows it computing, it is given back (waiting,
    /// percentage kept). Returns what was done.
    pub fn release(&self, task: i64) -> Result<String> {
        self.check_handed_out(task, &self.run.status()?)?;
        let mut state = State::load(&self.dir, self.run.uuid())?;
        let records = attempts::records(&self.dir, self.run.uuid(), &self.options.owners)?;
        let was = state.set_aside.contains(&task) | attempts::set_aside(&records).contains(&task);
        state.forget(task);
        let computing = self.run.task(task)?.status == TaskState::Computing;
        if self.options.dry_run {
            return Ok(format!(
                "would release task {task}{}",
                if was && computing {
                    " and give it back"
                } else {
                    ""
                }
            ));
        }
        state.save(&self.dir)?;
        attempts_forget(&self.dir, self.run.uuid(), task)?;
        if was && computing {
            self.give_back(task)?;
            Ok(format!("task {task} released and given back"))
        } else if was {
            Ok(format!("task {task} released (it is not computing)"))
        } else {
            Ok(format!(
                "task {task} was not set aside; its attempts are forgotten"
            ))
        }
    }

    fn give_back(&self, task: i64) -> Result<()> {
        self.run.update_task(
            task,
            &TaskUpdate {
                percent_completed: None,
                status: Some(TaskState::Waiting),
            },
        )
    }

    /// One pass over the journals with the real machine and Slurm.
    pub fn pass(&self) -> Result<Report> {
        self.pass_with(&SystemProbe::default())
    }

    /// One pass with `probe`.
    pub fn pass_with(&self, probe: &dyn Probe) -> Result<Report> {
        let run = self.run.uuid();
        let mut state = State::load(&self.dir, run)?;
        let dry = self.options.dry_run;
        let would = if dry { "would " } else { "" };
        let first_status = self.run.status()?;
        let mut report = Report {
            run: run.into(),
            dry_run: dry,
            workers: Vec::new(),
            invalid: Vec::new(),
            given_back: Vec::new(),
            delivered: Vec::new(),
            newly_set_aside: Vec::new(),
            set_aside: Vec::new(),
            orphans: 0,
            restarted: false,
            status: first_status,
            finished: false,
            messages: Vec::new(),
            warnings: self.warnings.clone(),
        };
        let (names, temporaries) = self.listing()?;
        // Every journal read first, so that the probe learns of every Slurm
        // job before it is asked about one (one squeue for the whole pass).
        let read: Vec<_> = names
            .iter()
            .map(|name| (name, self.trusted(&self.dir.join(name), &first_status)))
            .collect();
        probe.expect_slurm(
            read.iter()
                .filter_map(|(_, r)| r.as_ref().ok())
                .filter(|r| !r.freed)
                .filter_map(|r| r.slurm.clone())
                .collect(),
        );
        let clock = clock_name();
        let mut alive = 0usize;
        // The (worker, task) pairs that live workers' journals name.
        let mut live_held = std::collections::BTreeSet::new();
        let mut seen_workers = BTreeSet::new();
        for (name, record) in read {
            let path = self.dir.join(name);
            let record = match record {
                Ok(record) => record,
                Err(reason) => {
                    report.messages.push(format!("left alone: {name} {reason}"));
                    report.invalid.push(Invalid {
                        file: name.clone(),
                        reason,
                    });
                    continue;
                }
            };
            seen_workers.insert(record.worker.clone());
            let still = state.look(
                &record.worker,
                record.heartbeat,
                clock.as_deref(),
                monotonic_now(),
            );
            let verdict = decide(&record, probe, still, self.options.stale_secs);
            let (word, reason, crashed) = match &verdict {
                Verdict::Alive(why) => ("alive", why.clone(), false),
                Verdict::Suspended(why) => {
                    state.look_again(&record.worker, monotonic_now());
                    ("alive", why.clone(), false)
                }
                Verdict::Gone { why, crashed } => ("gone", why.clone(), *crashed),
            };
            report.workers.push(WorkerSeen {
                file: name.clone(),
                worker: record.worker.clone(),
                host: record.host.clone(),
                pid: record.pid,
                task: record.task,
                verdict: word,
                reason: reason.clone(),
            });
            if word == "alive" {
                alive += 1;
                if let Some(task) = record.task {
                    live_held.insert((record.worker.clone(), task));
                }
                continue;
            }
            report.messages.push(format!(
                "worker {} (host {}, pid {}) is gone: {reason}",
                record.worker, record.host, record.pid
            ));
            if let Err(e) = self.settle(&record, crashed, &mut state, &mut report, would) {
                report.messages.push(format!(
                    "could not settle worker {}: {e}; its journal is kept for the next pass",
                    record.worker
                ));
                continue;
            }
            if !dry {
                let _ = fs::remove_file(&path);
                remove_temporaries(&self.dir, name, &temporaries);
                seen_workers.remove(&record.worker);
            }
        }
        attempts::settle_not_done(
            self.run,
            &self.dir,
            &self.options.owners,
            self.options.max_attempts,
            dry,
            &live_held,
            &mut state,
            &mut report,
        )?;
        // Tasks set aside by the reaper, and by workers (`tf_worker_fail`).
        state
            .set_aside
            .extend(attempts::set_aside(&attempts::records(
                &self.dir,
                run,
                &self.options.owners,
            )?));
        state.keep_looks_of(&seen_workers);
        report.status = self.run.status()?;
        let set_aside_computing = state.set_aside.len() as i64;
        let mut look = None;
        if alive == 0 {
            // A dry run changed nothing: the tasks it would give back or set
            // aside are still computing, and explained.
            let would = if dry {
                (report.given_back.len() + report.newly_set_aside.len()) as i64
            } else {
                0
            };
            report.orphans = (report.status.num_computing - set_aside_computing - would).max(0);
        }
        if report.orphans > 0 {
            let this_look = OrphanLook {
                counts: counts(&report.status),
                journals: self.journal_names()?,
            };
            report.messages.push(format!(
                "{} task(s) computing that no live journaled worker holds \
                 (an answer lost in transit, or a worker without a journal)",
                report.orphans
            ));
            if !self.options.restart_orphans {
                report.messages.push(
                    "  --restart-orphans gives them back (restart of the unfinished tasks), \
                     when every worker of the run keeps a journal"
                        .into(),
                );
            } else if !report.invalid.is_empty() {
                report.messages.push(
                    "  not restarted: journal files that could not be read may belong to live \
                     workers"
                        .into(),
                );
            } else if state.orphan_look.as_ref() != Some(&this_look) {
                report.messages.push(
                    "  not restarted yet: restarted when the next pass sees the same (a worker \
                     that is starting may hold one)"
                        .into(),
                );
            } else if dry {
                report
                    .messages
                    .push("  would restart the unfinished tasks".into());
            } else if counts(&self.run.status()?) != this_look.counts
                || self.journal_names()? != this_look.journals
            {
                // Checked again just before: a worker took a task meanwhile.
                report.messages.push(
                    "  not restarted: the run changed during this pass (a worker started)".into(),
                );
            } else {
                self.run.restart(false)?;
                // restart(false) set the set-aside tasks waiting too: set them aside again.
                for &task in &state.set_aside {
                    self.run.set_task_state(task, TaskState::Computing)?;
                }
                report.restarted = true;
                report
                    .messages
                    .push("  restarted the unfinished tasks (restart(false))".into());
                report.status = self.run.status()?;
            }
            if !report.restarted {
                look = Some(this_look);
            }
        }
        state.orphan_look = look;
        if !dry {
            state.save(&self.dir)?;
        }
        report.set_aside = state.set_aside.iter().copied().collect();
        report.finished = report.status.num_done + set_aside_computing >= report.status.num_tasks;
        Ok(report)
    }

    /// The names of the run's journal files, sorted.
    fn journal_names(&self) -> Result<Vec<String>> {
        Ok(self.listing()?.0)
    }

    /// The names of the run's journal files, sorted, and the temporary
    /// files in the directory: listed once, so that a pass reads the
    /// directory once however many workers are gone.
    fn listing(&self) -> Result<(Vec<String>, Vec<String>)> {
        let prefix = journal::file_prefix(self.run.uuid());
        let listed: Vec<String> = fs::read_dir(&self.dir)
            .map_err(|e| {
                Error::invalid_argument(format!("cannot list {}: {e}", self.dir.display()))
            })?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        let (mut names, rest): (Vec<String>, Vec<String>) = listed
            .into_iter()
            .partition(|n| n.starts_with(&prefix) && n.ends_with(".json"));
        names.sort();
        let temporaries = rest
            .into_iter()
            .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
            .collect();
        Ok((names, temporaries))
    }

    /// The journal at `path` when it may be acted on: a valid journal,
    /// owned by the reaper's user or one of `--owner`, naming only tasks
    /// the server handed out. Else why not.
    fn trusted(&self, path: &Path, status: &RunStatus) -> std::result::Result<Record, String> {
        let journaled = read_journal(path, self.run.uuid()).map_err(|e| e.0)?;
        let me = own_uid();
        if journaled.owner != me && !self.options.owners.contains(&journaled.owner) {
            return Err(format!(
                "is owned by uid {}, not by this reaper's user (uid {me}): \
                 --owner {} acts on it",
                journaled.owner, journaled.owner
            ));
        }
        let record = journaled.record;
        let handed_out = Self::handed_out(status);
        if let Some(task) = record
            .task
            .iter()
            .chain(&record.kept_done)
            .find(|&&t| t >= handed_out)
        {
            return Err(format!(
                "names task {task}, which the server never handed out (tasks 0..{handed_out} \
                 were): not a journal of this run's workers"
            ));
        }
        Ok(record)
    }

    /// Delivers the kept `done`s of a gone worker and gives back (or sets
    /// aside) its task. The crash is counted (once per worker) and saved
    /// before the give-back, so that a give-back that fails and is tried
    /// again in the next pass counts nothing twice.
    fn settle(
        &self,
        record: &Record,
        crashed: bool,
        state: &mut State,
        report: &mut Report,
        would: &str,
    ) -> Result<()> {
        let dry = self.options.dry_run;
        for &task in &record.kept_done {
            if !dry {
                self.run.update_task(
                    task,
                    &TaskUpdate {
                        percent_completed: Some(100.0),
                        status: Some(TaskState::Done),
                    },
                )?;
            }
            report
                .messages
                .push(format!("  {would}deliver its kept done of task {task}"));
            report.delivered.push(TaskAction {
                task,
                worker: record.worker.clone(),
                attempts: 0,
            });
        }
        let Some(task) = record.task else {
            return Ok(());
        };
        self.run.check_task(task)?;
        let status = self.run.task(task)?.status;
        if status != TaskState::Computing {
            report.messages.push(format!(
                "  its task {task} is {}: nothing to give back",
                status.as_str()
            ));
            return Ok(());
        }
        if record.releasing {
            report.messages.push(format!(
                "  its task {task} was being given back by the worker itself when it ended: \
                 not given back again (see orphans)"
            ));
            return Ok(());
        }
        if state.set_aside.contains(&task) {
            report
                .messages
                .push(format!("  its task {task} is set aside: left computing"));
            return Ok(());
        }
        if state.is_releasing(task, &record.worker) {
            report.messages.push(format!(
                "  its task {task} was given back by an earlier pass that heard no answer: \
                 not given back again (see orphans)"
            ));
            return Ok(());
        }
        // Failed attempts recorded by workers, and crashes (each once). The
        // reaper's own count of crashes is a floor: a record removed from a
        // shared directory does not give a task its attempts back.
        let records = attempts::records(&self.dir, self.run.uuid(), &self.options.owners)?;
        if attempts::released_below_100(&records, task, &record.worker) {
            report.messages.push(format!(
                "  it was releasing its task {task} below 100 % (its not_done record is \
                 there): given back as that attempt, no crash counted"
            ));
            return Ok(());
        }
        let attempts = if crashed {
            attempts::with_crash(&records, task, &record.worker)
                .max(state.attempts_with(task, &record.worker))
        } else {
            attempts::count_in_records(&records, task)
                .max(state.attempts.get(&task).copied().unwrap_or(0))
        };
        if crashed && !dry {
            attempts::record_crash(
                &self.dir,
                &records,
                self.run.uuid(),
                task,
                &record.worker,
                record.percent.unwrap_or(0.0),
                &format!(
                    "worker {} on host {}, pid {}",
                    record.worker, record.host, record.pid
                ),
            )?;
        }
        let action = TaskAction {
            task,
            worker: record.worker.clone(),
            attempts,
        };
        if crashed && attempts >= self.options.max_attempts {
            if !dry {
                state.count_crash(task, &record.worker);
                state.set_aside.insert(task);
                state.save(&self.dir)?;
            }
            report.messages.push(format!(
                "  {would}set task {task} aside: it was held by {attempts} worker(s) that died \
                 (--max-attempts {}); release it with \
                 `taskfarm reap {} --journal {} --release {task}`",
                self.options.max_attempts,
                self.run.uuid(),
                self.dir.display()
            ));
            report.newly_set_aside.push(action);
            return Ok(());
        }
        if !dry {
            if crashed {
                state.count_crash(task, &record.worker);
                state.save(&self.dir)?;
            }
            if let Err(e) = self.give_back(task) {
                if !e.may_have_reached_server() {
                    return Err(e);
                }
                // It may have landed, and the task be another worker's by
                // the next pass: never given back again on this journal.
                state.mark_releasing(task, &record.worker);
                state.save(&self.dir)?;
                report.messages.push(format!(
                    "  the give-back of its task {task} may have reached the server, \
                     unconfirmed ({e}): not given back again; if it stays computing, \
                     --restart-orphans gives it back"
                ));
                return Ok(());
            }
        }
        report.messages.push(format!(
            "  {would}give back its task {task} (waiting, percentage kept; {attempts} attempt(s))"
        ));
        report.given_back.push(action);
        Ok(())
    }
}

/// Forgets the failed-attempt records of `task` (a release).
fn attempts_forget(dir: &Path, run: &str, task: i64) -> Result<()> {
    taskfarm_worker::internal::worker::attempts::forget(dir, run, task).map(|_| ())
}

/// Tasks done, computing and waiting.
fn counts(status: &RunStatus) -> (i64, i64, i64) {
    (status.num_done, status.num_computing, status.num_waiting)
}

/// Removes the temporary files a writer of journal `name` left behind, of
/// the `temporaries` the pass listed.
fn remove_temporaries(dir: &Path, name: &str, temporaries: &[String]) {
    let prefix = format!(".{name}.");
    for n in temporaries.iter().filter(|n| n.starts_with(&prefix)) {
        let _ = fs::remove_file(dir.join(n));
    }
}
