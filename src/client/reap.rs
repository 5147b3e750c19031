//! What `taskfarm reap` decides and does: which journaled workers of a run
//! are gone, and for those the held task given back, the kept `done`s
//! delivered, an attempt recorded, and the journal file removed; tasks that
//! killed `max_attempts` workers are set aside instead.
//!
//! A worker is gone when that is proved — on the same machine (same host name
//! and boot id) its process no longer exists or its pid now belongs to a
//! process that started later; the machine rebooted; under Slurm, `squeue`
//! no longer shows its job or step running — or when its heartbeat is older
//! than the `stale` limit. A worker freed by its program with a task still
//! held is gone too (that give-back is not an attempt).
//!
//! The reaper's own state (attempts per task, the tasks set aside) is the
//! file `DIR/reap-<run>.json`, replaced atomically. Run one reaper per run.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::identity;
use super::journal::{
    self, boot_id, process_state, read_record, unix_now, write_atomic, ProcessState, Record,
    SlurmIds,
};
use super::run::Run;
use super::wire::{RunStatus, TaskState, TaskUpdate};

/// `--stale` when not given: ten default heartbeats.
pub const DEFAULT_STALE_SECS: f64 = 300.0;
/// `--max-attempts` when not given.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// A heartbeat later than now by more than this is "from the future".
pub const FUTURE_SLACK_SECS: f64 = 120.0;

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
    /// that no journal explains.
    pub restart_orphans: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            stale_secs: DEFAULT_STALE_SECS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dry_run: false,
            restart_orphans: false,
        }
    }
}

// ---------------------------------------------------------------------------
// Deciding.

/// What Slurm says about a worker's job or step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlurmState {
    /// Running (or about to): no proof either way for one worker in it.
    Running,
    /// Ended, with why.
    Gone(String),
    /// Slurm cannot tell (no squeue, an error): why.
    Unknown(String),
}

/// Where the reaper looks: the machine it runs on and Slurm. A trait so that
/// the decision is testable without processes or Slurm.
pub trait Probe {
    /// This machine's host name.
    fn host(&self) -> String;
    /// This machine's boot id.
    fn boot_id(&self) -> Option<String>;
    /// Process `pid` on this machine.
    fn process(&self, pid: u32) -> ProcessState;
    /// The name of the Slurm cluster that `squeue` here answers for, when
    /// known.
    fn slurm_cluster(&self) -> Option<String>;
    /// The job or step of `ids`, asked of this machine's Slurm.
    fn slurm(&self, ids: &SlurmIds) -> SlurmState;
}

/// The real machine, and Slurm through `squeue` (and `scontrol show config`
/// for the cluster's name) when it is installed. One probe serves one pass:
/// the answer for a job or step is asked once (the ranks of one MPI job
/// share it), the cluster's name once.
#[derive(Debug, Default)]
pub struct SystemProbe {
    slurm_answers: std::cell::RefCell<BTreeMap<(String, Option<String>), SlurmState>>,
    cluster: std::cell::OnceCell<Option<String>>,
}

/// How long one Slurm command may take before Slurm counts as unknown.
const SLURM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs Slurm client `program ARGS`, killed after [`SLURM_TIMEOUT`];
/// `(success, stdout, stderr)`.
fn slurm_command(
    program: &str,
    args: &[&str],
) -> std::result::Result<(bool, String, String), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let out = read(child.stdout.take().map(|p| Box::new(p) as _));
    let err = read(child.stderr.take().map(|p| Box::new(p) as _));
    let end = std::time::Instant::now() + SLURM_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < end => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} {} took more than {SLURM_TIMEOUT:?}",
                    args.join(" ")
                ));
            }
        }
    };
    Ok((
        status.success(),
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    ))
}

impl Probe for SystemProbe {
    fn host(&self) -> String {
        identity::host_name()
    }

    fn boot_id(&self) -> Option<String> {
        boot_id()
    }

    fn process(&self, pid: u32) -> ProcessState {
        process_state(pid)
    }

    fn slurm_cluster(&self) -> Option<String> {
        self.cluster
            .get_or_init(|| match slurm_command("scontrol", &["show", "config"]) {
                Ok((true, stdout, _)) => cluster_name(&stdout),
                _ => None,
            })
            .clone()
    }

    fn slurm(&self, ids: &SlurmIds) -> SlurmState {
        let Some(job) = ids.job_id.clone() else {
            return SlurmState::Unknown("no Slurm job id".into());
        };
        let key = (job, ids.step_id.clone());
        if let Some(answer) = self.slurm_answers.borrow().get(&key) {
            return answer.clone();
        }
        let answer = name_element(ask_slurm(ids), ids);
        self.slurm_answers.borrow_mut().insert(key, answer.clone());
        answer
    }
}

/// `ClusterName` from the output of `scontrol show config`.
pub fn cluster_name(config: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "ClusterName")
            .then(|| value.trim().to_owned())
            .filter(|v| !v.is_empty() && *v != "(null)")
    })
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// The state of the job (and step, when it is a number) of `ids`, from
/// squeue. The job is named by its own id (`SLURM_JOB_ID`): for an array
/// element that is the element's id, but the element that got the array's
/// id shares it with the whole array in `squeue -j`, so only the lines
/// whose job id (`%A`) is the worker's count.
fn ask_slurm(ids: &SlurmIds) -> SlurmState {
    let job = ids.job_id.as_deref().unwrap_or_default();
    if !is_number(job) {
        return SlurmState::Unknown(format!("Slurm job id {job:?} is not a number"));
    }
    let job_state = match slurm_command("squeue", &["-h", "-t", "all", "-j", job, "-o", "%A %T"]) {
        Ok((success, stdout, stderr)) => slurm_job_state(success, &stdout, &stderr, job),
        Err(why) => return SlurmState::Unknown(why),
    };
    if job_state != SlurmState::Running {
        return job_state;
    }
    let Some(step) = ids.step_id.as_deref().filter(|s| is_number(s)) else {
        return SlurmState::Running;
    };
    match slurm_command("squeue", &["-h", "-s", "-j", job, "-o", "%i"]) {
        Ok((true, stdout, _)) => slurm_step_state(&stdout, ids, step),
        Ok((false, _, stderr)) => {
            SlurmState::Unknown(format!("squeue -s -j {job} failed: {}", stderr.trim()))
        }
        Err(why) => SlurmState::Unknown(why),
    }
}

/// `SlurmState::Gone` of an array element names the element too.
fn name_element(state: SlurmState, ids: &SlurmIds) -> SlurmState {
    match (state, &ids.array_job_id, &ids.array_task_id) {
        (SlurmState::Gone(why), Some(array), Some(index)) => {
            SlurmState::Gone(format!("{why} (array element {array}_{index})"))
        }
        (state, _, _) => state,
    }
}

/// The job state from `squeue -h -t all -j JOB -o "%A %T"` (lines `JOBID
/// STATE`; the lines of other jobs, the other elements of an array, are
/// not this job's).
pub fn slurm_job_state(success: bool, stdout: &str, stderr: &str, job: &str) -> SlurmState {
    if !success {
        if stderr.contains("Invalid job id") {
            return SlurmState::Gone(format!("Slurm no longer knows job {job}"));
        }
        return SlurmState::Unknown(format!("squeue -j {job} failed: {}", stderr.trim()));
    }
    let state = stdout.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(job)).then(|| words.next().unwrap_or_default())
    });
    match state {
        None => SlurmState::Gone(format!("squeue no longer lists job {job}")),
        Some(
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "STOPPED"
            | "RESIZING" | "SIGNALING" | "STAGE_OUT" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED"
            | "RESV_DEL_HOLD",
        ) => SlurmState::Running,
        Some("") => SlurmState::Unknown(format!("squeue gave no state for job {job}")),
        Some(other) => SlurmState::Gone(format!("Slurm job {job} is {other}")),
    }
}

/// The step state from `squeue -h -s -j JOB -o %i`: lines `JOB.STEP`, or
/// `ARRAYJOB_TASK.STEP` for the steps of an array element.
pub fn slurm_step_state(stdout: &str, ids: &SlurmIds, step: &str) -> SlurmState {
    let job = ids.job_id.as_deref().unwrap_or_default();
    let mut names = vec![format!("{job}.{step}")];
    if let (Some(array), Some(index)) = (&ids.array_job_id, &ids.array_task_id) {
        names.push(format!("{array}_{index}.{step}"));
    }
    if stdout
        .split_whitespace()
        .any(|s| names.iter().any(|n| n == s))
    {
        SlurmState::Running
    } else {
        SlurmState::Gone(format!("Slurm step {job}.{step} is no longer running"))
    }
}

/// Whether a worker is alive, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Alive, or not proved gone.
    Alive(String),
    /// Gone. `crashed`: it died (its task counts an attempt), rather than
    /// being freed by its program.
    Gone {
        /// Why it is known to be gone.
        why: String,
        /// True when it died; false when its program freed it.
        crashed: bool,
    },
}

/// What this machine's Slurm says about the job of `ids`. A job of another
/// cluster (its `SLURM_CLUSTER_NAME` is not the name of the cluster squeue
/// here answers for, or that name is unknown) is not asked about: the same
/// job id there is another job.
fn slurm_here(ids: &SlurmIds, probe: &dyn Probe) -> SlurmState {
    if let Some(theirs) = &ids.cluster {
        match probe.slurm_cluster() {
            Some(ours) if ours == *theirs => {}
            Some(ours) => {
                return SlurmState::Unknown(format!(
                    "the worker ran on cluster {theirs}, squeue here answers for cluster {ours}"
                ))
            }
            None => {
                return SlurmState::Unknown(format!(
                    "the worker ran on cluster {theirs}, and the cluster of squeue here is unknown"
                ))
            }
        }
    }
    probe.slurm(ids)
}

/// Decides whether the worker of journal `record` is gone, at Unix time `now`.
pub fn decide(record: &Record, probe: &dyn Probe, now: f64, stale_secs: f64) -> Verdict {
    let gone = |why: String| Verdict::Gone { why, crashed: true };
    if record.freed {
        return Verdict::Gone {
            why: "its program freed it".into(),
            crashed: false,
        };
    }
    let same_host = record.host == probe.host();
    if same_host {
        let here = probe.boot_id();
        if let (Some(then), Some(here)) = (&record.boot_id, &here) {
            if then != here {
                return gone(format!("host {} rebooted since", record.host));
            }
        }
        match probe.process(record.pid) {
            ProcessState::Gone => return gone(format!("process {} has ended", record.pid)),
            ProcessState::Running(start) => match record.process_start {
                Some(then) if then != start => {
                    return gone(format!(
                        "process {} has ended (its pid now belongs to a later process)",
                        record.pid
                    ))
                }
                _ => return Verdict::Alive(format!("process {} is running", record.pid)),
            },
            ProcessState::Unknown => {}
        }
    }
    let mut note = String::new();
    if let Some(ids) = record.slurm.as_ref().filter(|s| s.job_id.is_some()) {
        match slurm_here(ids, probe) {
            SlurmState::Gone(why) => return gone(why),
            SlurmState::Running => note = "; its Slurm job is running".into(),
            SlurmState::Unknown(why) => note = format!("; Slurm: {why}"),
        }
    }
    let age = now - record.heartbeat;
    if age > stale_secs {
        gone(format!(
            "its heartbeat is {age:.0} s old, more than --stale {stale_secs} s{note}"
        ))
    } else {
        Verdict::Alive(format!("heartbeat {age:.0} s ago{note}"))
    }
}

// ---------------------------------------------------------------------------
// The reaper's state.

/// `DIR/reap-<run>.json`: attempts per task and the tasks set aside.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Always `taskfarm-reap-state`.
    pub format: String,
    /// 1.
    pub version: u32,
    /// The run.
    pub run: String,
    /// Workers each task killed.
    pub attempts: BTreeMap<i64, u32>,
    /// Tasks not given back any more.
    pub set_aside: BTreeSet<i64>,
}

const STATE_FORMAT: &str = "taskfarm-reap-state";

/// The reaper state file of run `run` in `dir`.
pub fn state_path(dir: &Path, run: &str) -> PathBuf {
    dir.join(state_name(run))
}

fn state_name(run: &str) -> String {
    format!("reap-{run}.json")
}

impl State {
    /// Reads the state of `run` in `dir`; a missing file is a fresh state,
    /// a broken one an error (the reaper does nothing on its word).
    pub fn load(dir: &Path, run: &str) -> Result<State> {
        let path = state_path(dir, run);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    format: STATE_FORMAT.into(),
                    version: 1,
                    run: run.into(),
                    ..State::default()
                })
            }
            Err(e) => {
                return Err(Error::invalid_argument(format!(
                    "cannot read the reaper state {}: {e}",
                    path.display()
                )))
            }
        };
        let state: State = serde_json::from_str(&text).map_err(|e| {
            Error::invalid_argument(format!(
                "the reaper state {} is broken ({e}): fix or remove it",
                path.display()
            ))
        })?;
        if state.format != STATE_FORMAT || state.version != 1 || state.run != run {
            return Err(Error::invalid_argument(format!(
                "{} is not the reaper state (version 1) of run {run}",
                path.display()
            )));
        }
        Ok(state)
    }

    /// Writes the state atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::protocol(e.to_string()))?;
        write_atomic(dir, &state_name(&self.run), &bytes).map_err(|e| {
            Error::invalid_argument(format!(
                "cannot write the reaper state {}: {e}",
                state_path(dir, &self.run).display()
            ))
        })
    }
}

// ---------------------------------------------------------------------------
// One pass.

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
    /// Tasks computing on the server that no journal explains, when no live
    /// worker is left (else 0: live workers may hold them).
    pub orphans: i64,
    /// `restart(false)` was done for the orphans.
    pub restarted: bool,
    /// The run's counts after the pass.
    pub status: RunStatus,
    /// Every task is done or set aside.
    pub finished: bool,
    /// What happened, one line each, for people.
    pub messages: Vec<String>,
}

/// The reaper of one run and journal directory.
#[derive(Debug)]
pub struct Reaper<'a> {
    run: &'a Run,
    dir: PathBuf,
    options: Options,
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
        Ok(Reaper {
            run,
            dir: dir.to_path_buf(),
            options,
        })
    }

    /// Sets a task aside no more: its attempts are forgotten and, when the
    /// server still shows it computing, it is given back (waiting,
    /// percentage kept). Returns what was done.
    pub fn release(&self, task: i64) -> Result<String> {
        self.run.check_task(task)?;
        let mut state = State::load(&self.dir, self.run.uuid())?;
        let was = state.set_aside.remove(&task);
        state.attempts.remove(&task);
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
            status: self.run.status()?,
            finished: false,
            messages: Vec::new(),
        };
        let prefix = journal::file_prefix(run);
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map_err(|e| {
                Error::invalid_argument(format!("cannot list {}: {e}", self.dir.display()))
            })?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&prefix) && n.ends_with(".json"))
            .collect();
        names.sort();
        let mut alive = 0usize;
        for name in names {
            let path = self.dir.join(&name);
            let now = unix_now();
            let record = match read_record(&path, run, now, FUTURE_SLACK_SECS) {
                Ok(record) => record,
                Err(invalid) => {
                    report
                        .messages
                        .push(format!("left alone: {name} {}", invalid.0));
                    report.invalid.push(Invalid {
                        file: name,
                        reason: invalid.0,
                    });
                    continue;
                }
            };
            let verdict = decide(&record, probe, now, self.options.stale_secs);
            let (word, reason, crashed) = match &verdict {
                Verdict::Alive(why) => ("alive", why.clone(), false),
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
                remove_temporaries(&self.dir, &name);
            }
        }
        report.status = self.run.status()?;
        let set_aside_computing = state.set_aside.len() as i64;
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
            report.messages.push(format!(
                "{} task(s) computing that no journal explains, with no live journaled worker \
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
            } else if dry {
                report
                    .messages
                    .push("  would restart the unfinished tasks".into());
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
        }
        report.set_aside = state.set_aside.iter().copied().collect();
        report.finished = report.status.num_done + set_aside_computing >= report.status.num_tasks;
        Ok(report)
    }

    /// Delivers the kept `done`s of a gone worker and gives back (or sets
    /// aside) its task.
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
        let attempts = state.attempts.get(&task).copied().unwrap_or(0) + u32::from(crashed);
        let action = TaskAction {
            task,
            worker: record.worker.clone(),
            attempts,
        };
        if crashed && attempts >= self.options.max_attempts {
            if !dry {
                state.attempts.insert(task, attempts);
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
                state.attempts.insert(task, attempts);
                state.save(&self.dir)?;
            }
            self.give_back(task)?;
        }
        report.messages.push(format!(
            "  {would}give back its task {task} (waiting, percentage kept; {attempts} attempt(s))"
        ));
        report.given_back.push(action);
        Ok(())
    }
}

/// Removes the temporary files a writer of journal `name` left behind.
fn remove_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Some(n) = entry.file_name().to_str() {
            if n.starts_with(&prefix) && n.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        host: &'static str,
        boot: Option<&'static str>,
        process: ProcessState,
        slurm: SlurmState,
        cluster: Option<&'static str>,
    }

    impl Probe for Fake {
        fn host(&self) -> String {
            self.host.into()
        }
        fn boot_id(&self) -> Option<String> {
            self.boot.map(Into::into)
        }
        fn process(&self, _pid: u32) -> ProcessState {
            self.process
        }
        fn slurm_cluster(&self) -> Option<String> {
            self.cluster.map(Into::into)
        }
        fn slurm(&self, _ids: &SlurmIds) -> SlurmState {
            self.slurm.clone()
        }
    }

    fn record() -> Record {
        Record {
            format: journal::FORMAT.into(),
            version: journal::VERSION,
            run: "r1".into(),
            worker: "w1".into(),
            host: "node1".into(),
            boot_id: Some("boot-a".into()),
            pid: 42,
            process_start: Some(1000),
            slurm: None,
            mpi_rank: None,
            task: Some(5),
            percent: Some(10.0),
            releasing: false,
            kept_done: vec![],
            freed: false,
            heartbeat: 1000.0,
            heartbeat_interval: 30.0,
        }
    }

    fn here(process: ProcessState) -> Fake {
        Fake {
            host: "node1",
            boot: Some("boot-a"),
            process,
            slurm: SlurmState::Unknown("none".into()),
            cluster: None,
        }
    }

    fn is_gone(v: &Verdict) -> bool {
        matches!(v, Verdict::Gone { crashed: true, .. })
    }

    #[test]
    fn on_the_same_host_the_process_decides_not_the_heartbeat() {
        let r = record();
        // Fresh heartbeat, but the process is gone: gone.
        assert!(is_gone(&decide(
            &r,
            &here(ProcessState::Gone),
            1001.0,
            300.0
        )));
        // The pid belongs to a process that started later: gone.
        assert!(is_gone(&decide(
            &r,
            &here(ProcessState::Running(2000)),
            1001.0,
            300.0
        )));
        // The same process, heartbeat very old (stopped, or a slow disk): alive.
        let v = decide(&r, &here(ProcessState::Running(1000)), 1.0e6, 300.0);
        assert!(matches!(v, Verdict::Alive(_)), "{v:?}");
        // /proc cannot tell: the heartbeat decides.
        assert!(matches!(
            decide(&r, &here(ProcessState::Unknown), 1100.0, 300.0),
            Verdict::Alive(_)
        ));
        assert!(is_gone(&decide(
            &r,
            &here(ProcessState::Unknown),
            1400.0,
            300.0
        )));
        // The machine rebooted: gone, even with a live process of that pid.
        let rebooted = Fake {
            boot: Some("boot-b"),
            ..here(ProcessState::Running(1000))
        };
        assert!(is_gone(&decide(&r, &rebooted, 1001.0, 300.0)));
    }

    #[test]
    fn on_another_host_slurm_or_the_heartbeat_decides() {
        let mut r = record();
        let elsewhere = |slurm| Fake {
            host: "login1",
            boot: Some("boot-z"),
            process: ProcessState::Gone, // must not be consulted
            slurm,
            cluster: None,
        };
        let unknown = elsewhere(SlurmState::Unknown("no squeue".into()));
        assert!(matches!(
            decide(&r, &unknown, 1100.0, 300.0),
            Verdict::Alive(_)
        ));
        assert!(is_gone(&decide(&r, &unknown, 1301.0, 300.0)));
        r.slurm = Some(SlurmIds {
            job_id: Some("77".into()),
            ..SlurmIds::default()
        });
        let ended = elsewhere(SlurmState::Gone("Slurm job 77 is CANCELLED".into()));
        match decide(&r, &ended, 1001.0, 300.0) {
            Verdict::Gone { why, crashed: true } => assert!(why.contains("CANCELLED"), "{why}"),
            v => panic!("{v:?}"),
        }
        let running = elsewhere(SlurmState::Running);
        assert!(matches!(
            decide(&r, &running, 1100.0, 300.0),
            Verdict::Alive(_)
        ));
        assert!(is_gone(&decide(&r, &running, 1400.0, 300.0)));
    }

    #[test]
    fn a_freed_worker_is_gone_without_an_attempt() {
        let r = Record {
            freed: true,
            ..record()
        };
        assert!(matches!(
            decide(&r, &here(ProcessState::Running(1000)), 1001.0, 300.0),
            Verdict::Gone { crashed: false, .. }
        ));
    }

    #[test]
    fn squeue_answers_are_read() {
        let job7 = SlurmIds {
            job_id: Some("7".into()),
            ..SlurmIds::default()
        };
        assert_eq!(
            slurm_job_state(true, "7 RUNNING\n", "", "7"),
            SlurmState::Running
        );
        assert_eq!(
            slurm_job_state(true, "7 COMPLETING\n", "", "7"),
            SlurmState::Running
        );
        assert!(matches!(
            slurm_job_state(true, "7 CANCELLED\n", "", "7"),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            slurm_job_state(true, "", "", "7"),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            slurm_job_state(
                false,
                "",
                "slurm_load_jobs error: Invalid job id specified",
                "7"
            ),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            slurm_job_state(false, "", "Unable to contact slurm controller", "7"),
            SlurmState::Unknown(_)
        ));
        assert_eq!(
            slurm_step_state("7.0\n7.1\n", &job7, "1"),
            SlurmState::Running
        );
        assert!(matches!(
            slurm_step_state("7.0\n", &job7, "1"),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            slurm_step_state("17.1\n", &job7, "1"),
            SlurmState::Gone(_)
        ));
    }

    #[test]
    fn an_array_element_is_told_apart_from_the_rest_of_its_array() {
        // squeue -t all -j 1 of array 1 whose element 1 has job id 1 and
        // element 0 job id 2: the master id lists every element.
        let array = "2 CANCELLED\n1 RUNNING\n";
        assert_eq!(slurm_job_state(true, array, "", "1"), SlurmState::Running);
        assert_eq!(
            slurm_job_state(true, array, "", "2"),
            SlurmState::Gone("Slurm job 2 is CANCELLED".into())
        );
        assert_eq!(
            slurm_job_state(true, "1 CANCELLED\n2 RUNNING\n", "", "1"),
            SlurmState::Gone("Slurm job 1 is CANCELLED".into())
        );
        // Another element only: this one is no longer listed.
        assert!(matches!(
            slurm_job_state(true, "2 RUNNING\n", "", "1"),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            slurm_job_state(true, "1\n", "", "1"),
            SlurmState::Unknown(_)
        ));
        // squeue -s names an element's steps ARRAYJOB_TASK.STEP.
        let element = SlurmIds {
            job_id: Some("1".into()),
            array_job_id: Some("1".into()),
            array_task_id: Some("1".into()),
            step_id: Some("0".into()),
            cluster: None,
        };
        let steps = "1_1.0\n1_1.batch\n1_0.0\n1_0.batch\n";
        assert_eq!(slurm_step_state(steps, &element, "0"), SlurmState::Running);
        assert!(matches!(
            slurm_step_state("1_1.batch\n1_0.0\n", &element, "0"),
            SlurmState::Gone(_)
        ));
        let gone = name_element(SlurmState::Gone("Slurm job 1 is FAILED".into()), &element);
        assert_eq!(
            gone,
            SlurmState::Gone("Slurm job 1 is FAILED (array element 1_1)".into())
        );
        assert_eq!(
            name_element(SlurmState::Running, &element),
            SlurmState::Running
        );
    }

    #[test]
    fn a_journal_of_another_cluster_is_not_judged_by_the_local_squeue() {
        let mut r = record();
        r.slurm = Some(SlurmIds {
            job_id: Some("77".into()),
            cluster: Some("big".into()),
            ..SlurmIds::default()
        });
        let on = |cluster| Fake {
            host: "login1",
            boot: None,
            process: ProcessState::Gone,
            // Job 77 of this cluster is another job, which has ended.
            slurm: SlurmState::Gone("Slurm job 77 is COMPLETED".into()),
            cluster,
        };
        for cluster in [Some("small"), None] {
            let probe = on(cluster);
            match decide(&r, &probe, 1100.0, 300.0) {
                Verdict::Alive(why) => assert!(why.contains("cluster big"), "{why}"),
                v => panic!("{cluster:?}: {v:?}"),
            }
            // The heartbeat still decides.
            match decide(&r, &probe, 1400.0, 300.0) {
                Verdict::Gone { why, crashed: true } => {
                    assert!(why.contains("heartbeat"), "{why}")
                }
                v => panic!("{cluster:?}: {v:?}"),
            }
        }
        // The same cluster: Slurm is asked.
        match decide(&r, &on(Some("big")), 1100.0, 300.0) {
            Verdict::Gone { why, crashed: true } => assert!(why.contains("COMPLETED"), "{why}"),
            v => panic!("{v:?}"),
        }
        // A journal without a cluster name (an older Slurm): asked as well.
        r.slurm.as_mut().unwrap().cluster = None;
        assert!(is_gone(&decide(&r, &on(None), 1100.0, 300.0)));
    }

    #[test]
    fn the_cluster_name_is_read_from_scontrol_show_config() {
        let config = "Configuration data as of 2026-12-02T15:00:00\n\
                      AccountingStorageType   = accounting_storage/none\n\
                      ClusterName             = tf56f450\n\
                      CompleteWait            = 0 sec\n";
        assert_eq!(cluster_name(config), Some("tf56f450".into()));
        assert_eq!(cluster_name("ClusterName = (null)\n"), None);
        assert_eq!(cluster_name("garbage"), None);
    }

    #[test]
    fn the_state_file_round_trips_and_a_broken_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("taskfarm-reap-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut state = State::load(&dir, "r1").unwrap();
        assert!(state.attempts.is_empty());
        state.attempts.insert(5, 2);
        state.set_aside.insert(5);
        state.save(&dir).unwrap();
        assert_eq!(State::load(&dir, "r1").unwrap(), state);
        fs::write(state_path(&dir, "r1"), "{garbage").unwrap();
        let err = State::load(&dir, "r1").unwrap_err();
        assert!(err.message().contains("broken"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
