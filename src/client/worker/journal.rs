//! The worker journal: one small JSON file per worker in a directory that the
//! worker and `taskfarm reap` can both see (`TASKFARM_JOURNAL=DIR`), so that
//! the task of a worker that died (SIGKILL, OOM killer, a crashed node, an MPI
//! job torn down) can be given back while the farm runs.
//!
//! The file `DIR/worker-<run>-<worker>.json` holds the worker's identity
//! (run and worker uuid, host, pid, the process start time, the boot id,
//! the PID namespace, Slurm ids, the batch jobs of any scheduler, MPI
//! rank), the held task and its percentage, a heartbeat value with its
//! interval and the `done`s that could not be delivered. Nothing secret.
//!
//! Shared file systems (NFS-like), where other users may write the same
//! directory: the file is replaced atomically through `shared_dir.rs` (a
//! temporary file with an unpredictable name created `O_EXCL|O_NOFOLLOW`,
//! fsync'ed, renamed over the old one, the rename checked), read with
//! `O_NOFOLLOW` and a size limit, never locked, mapped or hard-linked. Each
//! file has one writer: the process that made the worker. A write that
//! fails is said on stderr (once, and again when writing works again):
//! while it fails the heartbeat stands still and a reaper may judge the
//! worker gone; a `done` kept in memory only is never reported as kept.
//!
//! The heartbeat: one background thread per process rewrites the journal of
//! every live journaled worker every [`DEFAULT_HEARTBEAT`] (or
//! `TASKFARM_JOURNAL_HEARTBEAT` seconds; the first beat at a random share
//! of it), also when the program makes no call for hours. It sends nothing to the server. After `fork()` the child
//! has no such thread, and every write checks that the process is still the
//! one that made the worker: a child never refreshes its parent's journal.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_derive::{Deserialize, Serialize};

use super::held_task::{Note, Notes};
use super::identity;
use super::machine::{boot_id, own_start_time, pid_namespace};
use super::shared_dir::{check_directory, read_limited, write_atomic, DirectoryAccess};
use crate::client::clock::unix_now;
use crate::client::env;
use crate::client::error::{Error, Result};
use crate::client::jitter;
use crate::client::scheduler::{self, JobId};

/// The heartbeat interval when `TASKFARM_JOURNAL_HEARTBEAT` is not set.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
/// The format name written in every journal file.
pub const FORMAT: &str = "taskfarm-worker-journal";
/// The format version this library writes and reads.
pub const VERSION: u32 = 1;
/// A journal file larger than this is not a journal (it is not read).
pub const MAX_JOURNAL_BYTES: u64 = 1 << 20;
/// The shortest heartbeat interval (seconds) `TASKFARM_JOURNAL_HEARTBEAT` takes.
pub const MIN_HEARTBEAT_SECS: f64 = 0.05;
/// The longest heartbeat interval (seconds) `TASKFARM_JOURNAL_HEARTBEAT` takes.
pub const MAX_HEARTBEAT_SECS: f64 = 86_400.0;

/// The Slurm ids of the job a worker runs in, from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmIds {
    /// `SLURM_JOB_ID`: the job (for an array element, its own job id).
    pub job_id: Option<String>,
    /// `SLURM_ARRAY_JOB_ID`.
    pub array_job_id: Option<String>,
    /// `SLURM_ARRAY_TASK_ID`.
    pub array_task_id: Option<String>,
    /// `SLURM_STEP_ID`: the step (set inside `srun`).
    pub step_id: Option<String>,
    /// `SLURM_CLUSTER_NAME`.
    pub cluster: Option<String>,
}

impl SlurmIds {
    /// The ids of this process's environment; `None` outside Slurm.
    fn from_env() -> Option<SlurmIds> {
        SlurmIds::from_lookup(env::var)
    }

    /// The ids from the environment variables `env` gives; `None` outside
    /// Slurm. An array element's `SLURM_JOB_ID` is its own job id, which
    /// names exactly that element to squeue; inside `srun`, `SLURM_STEP_ID`
    /// is the step.
    fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Option<SlurmIds> {
        let get = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty() && v.len() <= 64)
        };
        let ids = SlurmIds {
            job_id: get("SLURM_JOB_ID").or_else(|| get("SLURM_JOBID")),
            array_job_id: get("SLURM_ARRAY_JOB_ID"),
            array_task_id: get("SLURM_ARRAY_TASK_ID"),
            step_id: get("SLURM_STEP_ID").or_else(|| get("SLURM_STEPID")),
            cluster: get("SLURM_CLUSTER_NAME"),
        };
        ids.job_id.is_some().then_some(ids)
    }
}

/// The content of one journal file (format version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`].
    pub version: u32,
    /// The run's uuid.
    pub run: String,
    /// The worker's uuid.
    pub worker: String,
    /// The host name of the worker's machine.
    pub host: String,
    /// The Linux boot id of that machine (`/proc/sys/kernel/random/boot_id`),
    /// when known: a different one means the machine rebooted.
    pub boot_id: Option<String>,
    /// The inode of the worker's PID namespace (`/proc/self/ns/pid`), when
    /// known: its pid means something only to a process of the same
    /// namespace on the same boot.
    #[serde(default)]
    pub pid_namespace: Option<u64>,
    /// The worker's process id.
    pub pid: u32,
    /// The process's start time in clock ticks after boot (field 22 of
    /// `/proc/PID/stat`), to tell a reused pid apart; `None` when unknown.
    pub process_start: Option<u64>,
    /// Slurm ids, when the worker runs under Slurm.
    pub slurm: Option<SlurmIds>,
    /// The batch jobs the worker runs in, as their schedulers name them
    /// (Slurm, PBS, Grid Engine, LSF, Flux: [`scheduler::jobs_in_env`]),
    /// for the reaper to ask. Empty outside a batch job; absent from the
    /// journals of older versions, which read as empty.
    #[serde(default)]
    pub jobs: Vec<JobId>,
    /// The MPI rank, when known (`OMPI_COMM_WORLD_RANK`, `PMI_RANK`, `PMIX_RANK`).
    pub mpi_rank: Option<i64>,
    /// The task held, if any.
    pub task: Option<i64>,
    /// The held task's last known percentage.
    pub percent: Option<f64>,
    /// True while the held task is being given back by the worker itself
    /// (`requeue`, a stop): the reaper must not give it back again.
    pub releasing: bool,
    /// Task numbers whose `done` could not be delivered (kept `done`s).
    pub kept_done: Vec<i64>,
    /// True when the worker was freed while it still held a task or kept
    /// `done`s: nobody works on them any more.
    pub freed: bool,
    /// Unix time of the last write by the worker's process (seconds), on
    /// the worker's clock: the reaper only asks whether it changed between
    /// two of its own looks, never compares it with another clock.
    pub heartbeat: f64,
    /// The heartbeat interval the worker uses (seconds): a heartbeat is
    /// stale only when it stood still for several of them.
    pub heartbeat_interval: f64,
}

/// The journal file name of worker `worker` of run `run`.
pub fn file_name(run: &str, worker: &str) -> String {
    format!("worker-{run}-{worker}.json")
}

/// The prefix of every journal file name of run `run`.
pub fn file_prefix(run: &str) -> String {
    format!("worker-{run}-")
}

/// The MPI rank from the launcher's environment, when there is one.
fn mpi_rank() -> Option<i64> {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]
        .iter()
        .find_map(|name| env::var(name)?.trim().parse().ok())
}

/// Why a journal file cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// A journal file as read, with the uid that owns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Journaled {
    /// Its content.
    pub record: Record,
    /// The uid that owns the file (the reaper acts only on its own user's
    /// journals unless told otherwise).
    pub owner: u32,
}

/// Reads and checks the journal file `path` of run `run` (see
/// [`read_journal`]).
pub fn read_record(path: &Path, run: &str) -> std::result::Result<Record, Invalid> {
    read_journal(path, run).map(|j| j.record)
}

/// Reads and checks the journal file `path` of run `run`: a regular file
/// no larger than [`MAX_JOURNAL_BYTES`], opened without following a symlink
/// (never a FIFO or device, which could block), JSON of this format and
/// version, of this run, whose name matches the worker uuid inside, with
/// numbers in range. The heartbeat's value is not compared with this
/// machine's clock (the worker's may differ). Any other file gives
/// [`Invalid`] with a reason.
pub fn read_journal(path: &Path, run: &str) -> std::result::Result<Journaled, Invalid> {
    let bad = |why: String| Invalid(why);
    let read = read_limited(path, MAX_JOURNAL_BYTES).map_err(|e| match e {
        super::shared_dir::ReadRefused::TooLarge(n) => bad(format!(
            "is {n} bytes long, more than a journal ({MAX_JOURNAL_BYTES} at most)"
        )),
        other => bad(other.to_string()),
    })?;
    let text = String::from_utf8(read.bytes)
        .map_err(|_| bad("is not JSON (garbage: not UTF-8 text)".into()))?;
    if text.trim().is_empty() {
        return Err(bad("is empty (truncated?)".into()));
    }
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("is not JSON (truncated or garbage: {e})")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(bad(format!("is not a {FORMAT} file")));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) if v > u64::from(VERSION) => {
            return Err(bad(format!(
                "has format version {v}, newer than this library's {VERSION}: \
                 reap with the newer taskfarm"
            )))
        }
        other => return Err(bad(format!("has no valid format version ({other:?})"))),
    }
    let record: Record =
        serde_json::from_value(value).map_err(|e| bad(format!("is not a valid journal: {e}")))?;
    if record.run != run {
        return Err(bad(format!("belongs to run {}, not {run}", record.run)));
    }
    let expected = file_name(run, &record.worker);
    if path.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
        return Err(bad(format!(
            "names worker {} inside, which does not match its file name",
            record.worker
        )));
    }
    if record.pid == 0
        || !record.heartbeat.is_finite()
        || !(MIN_HEARTBEAT_SECS..=MAX_HEARTBEAT_SECS).contains(&record.heartbeat_interval)
        || record.task.is_some_and(|t| t < 0)
        || record.kept_done.iter().any(|&t| t < 0)
        || record.percent.is_some_and(|p| !(0.0..=100.0).contains(&p))
    {
        return Err(bad("holds numbers out of range".into()));
    }
    Ok(Journaled {
        record,
        owner: read.owner,
    })
}

// ---------------------------------------------------------------------------
// A worker's journal.

/// The journal of one worker: its record and file. Cloned into the process's
/// heartbeat registry as a weak reference.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    name: String,
    /// The process that made the worker: no other process writes its file.
    owner_pid: u32,
    state: Mutex<Record>,
    /// What the last write left on disk; locked inside `state` only.
    written: Mutex<Written>,
}

/// What the file on disk holds, as far as this process knows.
#[derive(Debug, Default)]
struct Written {
    /// The last write failed, with why (said once on stderr).
    failing: Option<String>,
    /// The kept `done`s of the last record that was written.
    kept_done: Vec<i64>,
    /// The task the last record written names as held (not being
    /// released): the one a reaper would give back after this process.
    names_held: Option<i64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Record> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn written(&self) -> MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the record with a fresh heartbeat, from the owning process
    /// only (the caller holds `state`). The first failure of a streak is
    /// said on stderr whatever `TASKFARM_LOG` says, and so is the recovery:
    /// while writes fail the heartbeat stands still and a reaper elsewhere
    /// may judge this live worker gone.
    fn write(&self, record: &mut Record) -> io::Result<()> {
        if std::process::id() != self.owner_pid {
            return Ok(());
        }
        record.heartbeat = unix_now();
        let result = serde_json::to_vec_pretty(record)
            .map_err(io::Error::other)
            .and_then(|bytes| write_atomic(&self.dir, &self.name, &bytes));
        let path = self.dir.join(&self.name);
        let mut written = self.written();
        match &result {
            Ok(()) => {
                written.kept_done = record.kept_done.clone();
                written.names_held = record.task.filter(|_| !record.releasing);
                if written.failing.take().is_some() {
                    eprintln!("taskfarm: the journal {} is written again", path.display());
                }
            }
            Err(e) => {
                if written.failing.is_none() {
                    eprintln!(
                        "taskfarm: cannot write the journal {}: {e} (its heartbeat stands \
                         still until it can: a reaper may judge this worker gone)",
                        path.display()
                    );
                }
                written.failing = Some(e.to_string());
            }
        }
        result
    }

    fn write_logged(&self, record: &mut Record) {
        let _ = self.write(record);
    }
}

impl Journal {
    /// Starts the journal of worker `worker` of run `run` in `dir` and
    /// writes its first record; the directory must exist and be writable.
    pub fn start(dir: &Path, run: &str, worker: &str) -> Result<Journal> {
        let meta = fs::metadata(dir).map_err(|e| {
            Error::invalid_argument(format!("journal directory {}: {e}", dir.display()))
        })?;
        if !meta.is_dir() {
            return Err(Error::invalid_argument(format!(
                "journal directory {} is not a directory",
                dir.display()
            )));
        }
        if check_directory(dir).ok() == Some(DirectoryAccess::WorldWritable) {
            return Err(Error::invalid_argument(format!(
                "journal directory {} is writable by every user without the sticky bit: \
                 anyone could replace the journal (chmod o-w or chmod +t)",
                dir.display()
            )));
        }
        let interval = heartbeat_interval();
        let record = Record {
            format: FORMAT.into(),
            version: VERSION,
            run: run.into(),
            worker: worker.into(),
            host: identity::host_name(),
            boot_id: boot_id(),
            pid_namespace: pid_namespace(),
            pid: std::process::id(),
            process_start: own_start_time(),
            slurm: SlurmIds::from_env(),
            jobs: scheduler::jobs_in_env(env::var),
            mpi_rank: mpi_rank(),
            task: None,
            percent: None,
            releasing: false,
            kept_done: Vec::new(),
            freed: false,
            heartbeat: 0.0,
            heartbeat_interval: interval.as_secs_f64(),
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            name: file_name(run, worker),
            owner_pid: std::process::id(),
            state: Mutex::new(record),
            written: Mutex::new(Written::default()),
        });
        {
            let mut record = shared.lock();
            shared.write(&mut record).map_err(|e| {
                Error::invalid_argument(format!(
                    "cannot write the journal {}: {e}",
                    shared.dir.join(&shared.name).display()
                ))
            })?;
        }
        heartbeat::register(&shared, interval);
        Ok(Journal { shared })
    }

    /// The journal from `TASKFARM_JOURNAL`, when it is set and not empty.
    pub fn from_env(run: &str, worker: &str) -> Result<Option<Journal>> {
        match env::var_os(env::JOURNAL) {
            Some(dir) if !dir.is_empty() => Journal::start(Path::new(&dir), run, worker)
                .map(Some)
                .map_err(|e| e.context(&format!("{}={}", env::JOURNAL, Path::new(&dir).display()))),
            _ => Ok(None),
        }
    }

    /// The journal file.
    pub fn path(&self) -> PathBuf {
        self.shared.dir.join(&self.shared.name)
    }

    /// True in the process that made the worker. A fork()ed child never
    /// touches the journal, not even its lock (which the parent's heartbeat
    /// thread may have held at the moment of the fork).
    fn owned(&self) -> bool {
        std::process::id() == self.shared.owner_pid
    }

    fn change(&self, f: impl FnOnce(&mut Record)) {
        if !self.owned() {
            return;
        }
        let mut record = self.shared.lock();
        f(&mut record);
        self.shared.write_logged(&mut record);
    }

    /// The worker took `task` at `percent`.
    pub fn held(&self, task: i64, percent: f64) {
        self.change(|r| {
            r.task = Some(task);
            r.percent = Some(percent);
            r.releasing = false;
        });
    }

    /// The held task's percentage changed: kept in memory, written with the
    /// next heartbeat or change (the reaper keeps the server's percentage).
    pub fn percent(&self, percent: f64) {
        if self.owned() {
            self.shared.lock().percent = Some(percent);
        }
    }

    /// The worker is about to give its task back itself (written first, so
    /// that the reaper never gives it back a second time). `false` when the
    /// write failed and the journal, as last written, names the task as
    /// held: the release must not happen (the record stays as written).
    pub fn releasing(&self) -> bool {
        if !self.owned() {
            return true;
        }
        let mut record = self.shared.lock();
        record.releasing = true;
        if self.shared.write(&mut record).is_ok() {
            return true;
        }
        let named = record.task.is_some() && self.shared.written().names_held == record.task;
        if named {
            record.releasing = false;
        }
        !named
    }

    /// The give-back did not happen: the task is still held.
    pub fn not_released(&self) {
        self.change(|r| r.releasing = false);
    }

    /// The worker no longer holds a task.
    pub fn released(&self) {
        self.change(|r| {
            r.task = None;
            r.percent = None;
            r.releasing = false;
        });
    }

    /// Marking `task` done failed: keep the `done` and forget the task.
    pub fn keep_done(&self, task: i64) {
        self.change(|r| {
            if !r.kept_done.contains(&task) {
                r.kept_done.push(task);
            }
            if r.task == Some(task) {
                r.task = None;
                r.percent = None;
                r.releasing = false;
            }
        });
    }

    /// Whether the journal file on disk holds the kept `done` of `task`:
    /// false when the write that should have kept it failed (then the
    /// `done` is not kept, whatever the record in memory says).
    pub fn done_is_kept(&self, task: i64) -> bool {
        self.owned() && self.shared.written().kept_done.contains(&task)
    }

    /// The `done` of `task` could not be kept (its write failed): the task
    /// is held again at `percent`, and the `done` forgotten.
    pub fn done_not_kept(&self, task: i64, percent: f64) {
        self.change(|r| {
            r.kept_done.retain(|&t| t != task);
            r.task = Some(task);
            r.percent = Some(percent);
            r.releasing = false;
        });
    }

    /// The kept `done`s, oldest first.
    pub fn kept_done(&self) -> Vec<i64> {
        if !self.owned() {
            return Vec::new();
        }
        self.shared.lock().kept_done.clone()
    }

    /// The kept `done` of `task` was delivered.
    pub fn delivered(&self, task: i64) {
        self.change(|r| r.kept_done.retain(|&t| t != task));
    }

    /// The worker is freed: the file is removed, unless a task or kept
    /// `done`s are left, which the file keeps (marked freed) for the reaper.
    pub fn finish(self) {
        if !self.owned() {
            return;
        }
        let mut record = self.shared.lock();
        if record.task.is_none() && record.kept_done.is_empty() {
            let _ = fs::remove_file(self.shared.dir.join(&self.shared.name));
            // Stop the heartbeat from writing it again: mark it gone.
            record.freed = true;
            record.heartbeat = -1.0;
        } else {
            record.freed = true;
            self.shared.write_logged(&mut record);
        }
    }

    /// A second handle on this journal for the stop watcher (`held_task.rs`),
    /// which hands tasks back on its own thread.
    pub fn releaser(&self) -> Releaser {
        Releaser(Journal {
            shared: Arc::clone(&self.shared),
        })
    }

    /// A copy of the record as it is now (for tests and messages).
    pub fn record(&self) -> Record {
        self.shared.lock().clone()
    }
}

/// The journal as the held task's state machine (`held_task.rs`) tells it
/// of each transition, under its lock, from whichever thread acts (the
/// worker's, the stop watcher's). It never finishes (removes) the journal:
/// that stays with the worker.
#[derive(Debug)]
pub struct Releaser(Journal);

impl Notes for Releaser {
    fn note(&self, note: Note) -> bool {
        let journal = &self.0;
        match note {
            Note::Held(held) => journal.held(held.task, held.percent),
            Note::Percent(percent) => journal.percent(percent),
            // Kept before it is sent: the reaper delivers it if the process
            // dies with the done in flight.
            Note::DoneIntent(task) => journal.keep_done(task),
            Note::Delivered(task) => journal.change(|r| {
                r.kept_done.retain(|&t| t != task);
                r.task = None;
                r.percent = None;
                r.releasing = false;
            }),
            Note::DoneNotSent(held) => journal.change(|r| {
                r.kept_done.retain(|&t| t != held.task);
                r.task = Some(held.task);
                r.percent = Some(held.percent);
                r.releasing = false;
            }),
            Note::Releasing => return journal.releasing(),
            Note::Released => journal.released(),
            Note::NotReleased => journal.not_released(),
        }
        true
    }
}

/// The heartbeat interval from `TASKFARM_JOURNAL_HEARTBEAT` (seconds, 0.05
/// to 86400), else [`DEFAULT_HEARTBEAT`].
pub fn heartbeat_interval() -> Duration {
    env::var(env::JOURNAL_HEARTBEAT)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && (MIN_HEARTBEAT_SECS..=MAX_HEARTBEAT_SECS).contains(s))
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_HEARTBEAT)
}

/// The process's heartbeat thread and its registry of journals.
mod heartbeat {
    use super::*;

    struct Registry {
        /// The process whose thread serves the registry (a fork()ed child
        /// has no such thread and starts its own).
        thread_pid: u32,
        interval: Duration,
        journals: Vec<Weak<Shared>>,
    }

    static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

    fn lock() -> MutexGuard<'static, Option<Registry>> {
        REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a journal; starts the thread when this process has none.
    pub(super) fn register(journal: &Arc<Shared>, interval: Duration) {
        let mut registry = lock();
        let pid = std::process::id();
        match registry.as_mut() {
            Some(r) if r.thread_pid == pid => {
                r.journals.retain(|w| w.strong_count() > 0);
                r.journals.push(Arc::downgrade(journal));
                r.interval = r.interval.min(interval);
            }
            _ => {
                let started = std::thread::Builder::new()
                    .name("taskfarm-journal".into())
                    .spawn(beat)
                    .is_ok();
                *registry = Some(Registry {
                    // A thread that could not start is retried by the next journal.
                    thread_pid: if started { pid } else { 0 },
                    interval,
                    journals: vec![Arc::downgrade(journal)],
                });
            }
        }
    }

    fn beat() {
        let pid = std::process::id();
        let mut first = true;
        loop {
            let (interval, journals) = {
                let registry = lock();
                match registry.as_ref() {
                    Some(r) if r.thread_pid == pid => (r.interval, r.journals.clone()),
                    _ => return,
                }
            };
            // The first beat at a random share of the interval: processes
            // started together do not write their journals together.
            let wait = if std::mem::take(&mut first) {
                jitter::with_thread_rng(|rng| jitter::share_of(interval, rng))
            } else {
                interval
            };
            std::thread::sleep(wait);
            for journal in journals.iter().filter_map(Weak::upgrade) {
                let mut record = journal.lock();
                if !(record.freed && record.heartbeat < 0.0) {
                    journal.write_logged(&mut record);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "taskfarm-journal-unit-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_journal_is_written_read_back_and_removed_when_freed() {
        let dir = scratch("roundtrip");
        let journal = Journal::start(&dir, "abc123", "feed01").unwrap();
        let path = journal.path();
        assert_eq!(path, dir.join("worker-abc123-feed01.json"));
        journal.held(7, 12.5);
        let now = unix_now();
        let record = read_record(&path, "abc123").unwrap();
        assert_eq!(record.task, Some(7));
        assert_eq!(record.pid, std::process::id());
        assert!(record.process_start.is_some());
        assert!((record.heartbeat - now).abs() < 60.0);
        journal.keep_done(7);
        let record = read_record(&path, "abc123").unwrap();
        assert_eq!((record.task, record.kept_done.clone()), (None, vec![7]));
        journal.delivered(7);
        assert!(journal.kept_done().is_empty());
        // No temporary files are left beside it.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        journal.finish();
        assert!(!path.exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_worker_freed_with_a_task_leaves_its_journal_marked_freed() {
        let dir = scratch("freed");
        let journal = Journal::start(&dir, "abc123", "feed02").unwrap();
        let path = journal.path();
        journal.held(3, 50.0);
        journal.finish();
        let record = read_record(&path, "abc123").unwrap();
        assert!(record.freed);
        assert_eq!(record.task, Some(3));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_forked_child_never_writes_its_parents_journal() {
        let dir = scratch("fork");
        let journal = Journal::start(&dir, "abc123", "feed04").unwrap();
        journal.held(1, 10.0);
        // SAFETY: the child only calls journal methods that return at once
        // (another process: no lock, no allocation), then _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            journal.held(2, 20.0);
            journal.keep_done(1);
            journal.finish();
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just made.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        let record = read_record(&journal.path(), "abc123").unwrap();
        assert_eq!(
            (record.task, record.kept_done.len(), record.pid),
            (Some(1), 0, std::process::id())
        );
        journal.finish();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn slurm_ids_name_the_array_element_and_the_step() {
        // The environment of srun's step 0 in element 3 of array 40 (job 43).
        let env: std::collections::HashMap<&str, &str> = [
            ("SLURM_JOB_ID", "43"),
            ("SLURM_JOBID", "43"),
            ("SLURM_ARRAY_JOB_ID", "40"),
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_STEP_ID", "0"),
            ("SLURM_CLUSTER_NAME", "big"),
        ]
        .into();
        let ids = SlurmIds::from_lookup(|n| env.get(n).map(|v| v.to_string())).unwrap();
        assert_eq!(
            ids,
            SlurmIds {
                job_id: Some("43".into()),
                array_job_id: Some("40".into()),
                array_task_id: Some("3".into()),
                step_id: Some("0".into()),
                cluster: Some("big".into()),
            }
        );
        // The batch step: no step id. Older names are read too.
        let ids = SlurmIds::from_lookup(|n| (n == "SLURM_JOBID").then(|| " 9 ".into())).unwrap();
        assert_eq!((ids.job_id.as_deref(), ids.step_id), (Some("9"), None));
        assert_eq!(SlurmIds::from_lookup(|_| None), None);
    }

    #[test]
    fn a_symlink_or_directory_at_the_old_predictable_temporary_name_changes_nothing() {
        // Before: `.{name}.{pid}.tmp` was opened with File::create, which
        // followed a symlink planted there (the victim's file overwritten)
        // and failed on a directory (the heartbeat frozen, silently).
        let dir = scratch("planted");
        let victim = dir.join("results.dat");
        fs::write(&victim, "precious").unwrap();
        let pid = std::process::id();
        let linked = file_name("abc123", "feed05");
        std::os::unix::fs::symlink(&victim, dir.join(format!(".{linked}.{pid}.tmp"))).unwrap();
        let blocked = file_name("abc123", "feed06");
        fs::create_dir(dir.join(format!(".{blocked}.{pid}.tmp"))).unwrap();
        let a = Journal::start(&dir, "abc123", "feed05").unwrap();
        let b = Journal::start(&dir, "abc123", "feed06").unwrap();
        a.held(4, 10.0);
        b.held(5, 20.0);
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(read_record(&a.path(), "abc123").unwrap().task, Some(4));
        assert_eq!(read_record(&b.path(), "abc123").unwrap().task, Some(5));
        a.finish();
        b.finish();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_journal_records_its_pid_namespace_boot_and_interval() {
        let dir = scratch("proofs");
        let journal = Journal::start(&dir, "abc123", "feed07").unwrap();
        let record = read_record(&journal.path(), "abc123").unwrap();
        assert_eq!(
            record.pid_namespace,
            crate::client::worker::machine::pid_namespace()
        );
        assert!(record.pid_namespace.is_some());
        assert_eq!(record.boot_id, boot_id());
        assert_eq!(
            record.heartbeat_interval,
            heartbeat_interval().as_secs_f64()
        );
        journal.finish();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_done_whose_write_failed_is_not_kept() {
        let dir = scratch("unwritable");
        let journal = Journal::start(&dir, "abc123", "feed08").unwrap();
        journal.held(9, 100.0);
        // The directory goes away (as a full disk or a lost mount): every
        // write fails from now on.
        fs::remove_dir_all(&dir).unwrap();
        journal.keep_done(9);
        assert!(!journal.done_is_kept(9), "nothing was written");
        journal.done_not_kept(9, 100.0);
        assert_eq!(journal.record().task, Some(9));
        // Written again once the directory is back.
        fs::create_dir_all(&dir).unwrap();
        journal.keep_done(9);
        assert!(journal.done_is_kept(9));
        journal.delivered(9);
        journal.finish();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_release_is_refused_only_while_the_journal_written_names_the_task() {
        let dir = scratch("release-unwritable");
        let journal = Journal::start(&dir, "abc123", "feed0a").unwrap();
        journal.held(4, 40.0);
        // Every write fails from now on; the journal as written names task 4.
        fs::remove_dir_all(&dir).unwrap();
        assert!(
            !journal.releasing(),
            "the reaper would give task 4 back again"
        );
        assert!(!journal.record().releasing, "the record stays as written");
        // Written again: the release may go.
        fs::create_dir_all(&dir).unwrap();
        assert!(journal.releasing());
        journal.released();
        // A task whose `held` was never written is named by no journal a
        // reaper could read: its release may go even when nothing can be
        // written.
        fs::remove_dir_all(&dir).unwrap();
        journal.held(5, 10.0);
        assert!(journal.releasing());
        fs::create_dir_all(&dir).unwrap();
        journal.finish();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_every_user_can_write_without_the_sticky_bit_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("worldwritable");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = Journal::start(&dir, "abc123", "feed09").unwrap_err();
        assert!(err.message().contains("sticky"), "{err}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        Journal::start(&dir, "abc123", "feed09").unwrap().finish();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let err = Journal::start(Path::new("/nonexistent/journal"), "a1", "b2").unwrap_err();
        assert!(err.message().contains("/nonexistent/journal"), "{err}");
    }

    #[test]
    fn bad_files_are_invalid_with_a_reason() {
        let dir = scratch("bad");
        let journal = Journal::start(&dir, "abc123", "feed03").unwrap();
        let good = fs::read_to_string(journal.path()).unwrap();
        let check = |name: &str, content: Option<&str>, why: &str| {
            let path = dir.join(name);
            match content {
                Some(c) => fs::write(&path, c).unwrap(),
                None => fs::create_dir_all(&path).unwrap(),
            }
            let err = read_record(&path, "abc123").unwrap_err();
            assert!(err.0.contains(why), "{name}: {err:?}");
        };
        check(
            "worker-abc123-t1.json",
            Some(&good[..good.len() / 2]),
            "not JSON",
        );
        check("worker-abc123-t2.json", Some("\u{1}garbage"), "not JSON");
        check("worker-abc123-t3.json", Some(""), "empty");
        check(
            "worker-abc123-t4.json",
            Some(&good.replace("\"abc123\"", "\"other9\"")),
            "belongs to run other9",
        );
        check(
            "worker-abc123-t5.json",
            Some(&good.replace("\"version\": 1", "\"version\": 7")),
            "newer",
        );
        let out_of_range = serde_json::to_string(&Record {
            heartbeat_interval: 0.0,
            worker: "feed99".into(),
            ..journal.record()
        })
        .unwrap();
        check(
            "worker-abc123-feed99.json",
            Some(&out_of_range),
            "out of range",
        );
        check("worker-abc123-t6.json", None, "not a regular file");
        check(
            "worker-abc123-t7.json",
            Some(&good),
            "does not match its file name",
        );
        journal.finish();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_batch_jobs_are_recorded_and_older_journals_still_read() {
        let dir = scratch("jobs");
        let journal = Journal::start(&dir, "abc123", "feed04").unwrap();
        let mut record = journal.record();
        record.jobs = scheduler::jobs_in_env(|name| match name {
            "PBS_JOBID" => Some("1234[5].pbs01".into()),
            "FLUX_JOB_ID" => Some("f2Jm5fqM7".into()),
            "FLUX_URI" => Some("local:///run/flux/local".into()),
            _ => None,
        });
        let text = serde_json::to_string_pretty(&record).unwrap();
        assert!(text.contains(r#""scheduler": "pbs""#), "{text}");
        assert!(text.contains(r#""job": "1234[5].pbs01""#), "{text}");
        let path = dir.join("worker-abc123-feed04.json");
        fs::write(&path, &text).unwrap();
        let read = read_record(&path, "abc123").unwrap();
        assert_eq!(read.jobs, record.jobs);
        // A journal of a version before "jobs" (format version 1 too).
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        old.as_object_mut().unwrap().remove("jobs");
        fs::write(&path, old.to_string()).unwrap();
        let read = read_record(&path, "abc123").unwrap();
        assert!(read.jobs.is_empty());
        journal.finish();
        let _ = fs::remove_dir_all(&dir);
    }
}
