//! Failed attempts, counted across the workers of a run through the journal
//! directory (`TASKFARM_JOURNAL`): one small record file per failed attempt.
//!
//! - [`Attempt`]: what one record holds (task, kind, worker, message, ...);
//! - [`record`]: writes one through `shared_dir.rs` (a temporary file made
//!   as `mkstemp` does, `O_CREAT|O_EXCL|O_NOFOLLOW`, renamed into place
//!   whole under a random name, the rename checked); [`remove`] undoes it;
//! - [`read_all`], [`count`]: the records of a run, and a task's attempts;
//! - [`settle`], [`forget`]: what `taskfarm reap` does with them.
//!
//! Three kinds: `failed` (`tf_worker_fail`, `taskfarm run` when a command
//! fails), `crashed` (the reaper found the worker dead holding the task) and
//! `not_done` (`tf_worker_done` below 100 %: the task stays computing until
//! the reaper gives it back). A `not_done` record is *pending*
//! (`notdone-<run>-<random>.json`) until the reaper has given its task back;
//! then it is renamed `attempt-<run>-<random>.json` like the others.
//!
//! Shared file systems, shared directories: a record is read only when it is
//! a regular file owned by this user (or, for the reaper, a user of its
//! `--owner`), read through `shared_dir::read_limited` (never through a
//! symlink, never a FIFO or device), at most [`MAX_RECORD_BYTES`] long, of
//! this format and run.
//! Anything else is left alone and not counted. So the crash records of a
//! reaper running as another user (`--owner`) count for the reaper, not for
//! the workers: each count is a floor, on purpose (docs/workers-die.md).
//!
//! A `not_done` record is written *before* the release's request (removed
//! when the request fails): the reaper never gives back the task of a live
//! worker whose journal still names it, and gives back that of a dead one
//! as the `not_done` attempt, not as a crash.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde_derive::{Deserialize, Serialize};

use super::shared_dir::{self, ReadRefused};
use crate::client::env;
use crate::client::error::{Error, Result};

/// The attempts after which a task is set aside when `TASKFARM_MAX_ATTEMPTS`
/// is not set (the reaper's default too).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The longest message kept, in bytes (cut at a character boundary).
pub const MAX_MESSAGE_BYTES: usize = 2048;
/// A record file larger than this is not a record (it is not read).
pub const MAX_RECORD_BYTES: u64 = 16 * 1024;
/// The format name written in every record.
pub const FORMAT: &str = "taskfarm-attempt";
/// The format version written and read.
pub const VERSION: u32 = 1;

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The worker said so (`tf_worker_fail`, a command that failed).
    Failed,
    /// The worker died holding the task (found by `taskfarm reap`).
    Crashed,
    /// `tf_worker_done` released the task below 100 %.
    NotDone,
}

impl Kind {
    /// `failed`, `crashed` or `not_done`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Failed => "failed",
            Kind::Crashed => "crashed",
            Kind::NotDone => "not_done",
        }
    }
}

/// One failed attempt at a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The run's uuid.
    pub run: String,
    /// The task.
    pub task: i64,
    /// Why it failed.
    pub kind: Kind,
    /// The worker that held it.
    pub worker: String,
    /// That worker's host.
    pub host: String,
    /// That worker's process id.
    pub pid: u32,
    /// Unix time of the record (seconds).
    pub time: f64,
    /// The task's percentage when it failed.
    pub percent: f64,
    /// What happened, at most [`MAX_MESSAGE_BYTES`].
    pub message: String,
    /// This attempt reached the limit: the task was set aside (left
    /// computing) instead of given back.
    pub set_aside: bool,
}

impl Attempt {
    /// A record of run `run` for `task`, now; `message` is cut to
    /// [`MAX_MESSAGE_BYTES`].
    pub fn new(
        run: &str,
        task: i64,
        kind: Kind,
        worker: &str,
        percent: f64,
        message: &str,
    ) -> Attempt {
        Attempt {
            format: FORMAT.into(),
            version: VERSION,
            run: run.into(),
            task,
            kind,
            worker: worker.into(),
            host: super::identity::host_name(),
            pid: std::process::id(),
            time: crate::client::clock::unix_now(),
            percent,
            message: cut_message(message).into(),
            set_aside: false,
        }
    }
}

/// `message` cut to at most [`MAX_MESSAGE_BYTES`] at a character boundary.
pub fn cut_message(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// `TASKFARM_MAX_ATTEMPTS` (1 to 1,000,000), else [`DEFAULT_MAX_ATTEMPTS`];
/// any other value is an error that names it.
pub fn max_attempts() -> Result<u32> {
    match env::var(env::MAX_ATTEMPTS) {
        None => Ok(DEFAULT_MAX_ATTEMPTS),
        Some(text) if text.trim().is_empty() => Ok(DEFAULT_MAX_ATTEMPTS),
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| {
                Error::invalid_argument(format!(
                    "{}={text:?} is not a number of attempts in 1..1000000",
                    env::MAX_ATTEMPTS
                ))
            }),
    }
}

const SETTLED_PREFIX: &str = "attempt-";
const PENDING_PREFIX: &str = "notdone-";

fn prefix(pending: bool) -> &'static str {
    if pending {
        PENDING_PREFIX
    } else {
        SETTLED_PREFIX
    }
}

/// Writes `attempt` into `dir` under a fresh random name: a `not_done`
/// record as pending, any other settled. Returns the file's name. Written
/// as every file of a shared directory (`shared_dir.rs`): a temporary file
/// made as `mkstemp` does (`O_CREAT|O_EXCL|O_NOFOLLOW`, unpredictable
/// name), fsync'ed, renamed into place, and the rename checked.
pub fn record(dir: &Path, attempt: &Attempt) -> io::Result<String> {
    let pending = attempt.kind == Kind::NotDone;
    let name = format!(
        "{}{}-{}.json",
        prefix(pending),
        attempt.run,
        uuid::Uuid::new_v4().simple()
    );
    let bytes = serde_json::to_vec_pretty(attempt).map_err(io::Error::other)?;
    shared_dir::write_atomic(dir, &name, &bytes)?;
    Ok(name)
}

/// Removes the record `file` that this process just wrote (its task's
/// request failed: the attempt did not happen).
pub fn remove(dir: &Path, file: &str) -> io::Result<()> {
    fs::remove_file(dir.join(file))
}

/// A record file as read: its name, whether it is pending, and its content.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The file's name in the directory.
    pub file: String,
    /// A `not_done` that the reaper has not given back yet.
    pub pending: bool,
    /// The record.
    pub attempt: Attempt,
}

/// A file of the records' name pattern that was not read: its name, and why.
pub type LeftAlone = (String, String);

/// Reads the record `path`: a regular file owned by this user or one of
/// `owners`, read by `shared_dir::read_limited` (never through a symlink,
/// never blocking on a FIFO), at most [`MAX_RECORD_BYTES`], of this format,
/// version and run. Else why not.
pub fn read_one(path: &Path, run: &str, owners: &[u32]) -> std::result::Result<Attempt, String> {
    let read = match shared_dir::read_limited(path, MAX_RECORD_BYTES) {
        Ok(read) => read,
        Err(ReadRefused::TooLarge(_)) => {
            return Err(format!("is longer than {MAX_RECORD_BYTES} bytes"))
        }
        Err(ReadRefused::NotRegular) => return Err("is not a regular file".into()),
        Err(e) => return Err(e.to_string()),
    };
    let me = shared_dir::own_uid();
    if read.owner != me && !owners.contains(&read.owner) {
        return Err(format!(
            "belongs to user {}, not to this one ({me})",
            read.owner
        ));
    }
    let attempt: Attempt = serde_json::from_slice(&read.bytes)
        .map_err(|e| format!("is not an attempt record: {e}"))?;
    if attempt.format != FORMAT || attempt.version != VERSION {
        return Err(format!("is not a {FORMAT} file of version {VERSION}"));
    }
    if attempt.run != run {
        return Err(format!("belongs to run {}, not {run}", attempt.run));
    }
    if attempt.task < 0 || !attempt.time.is_finite() || !attempt.percent.is_finite() {
        return Err("holds numbers out of range".into());
    }
    Ok(attempt)
}

/// Every record of run `run` in `dir` that this user wrote, oldest first,
/// and the files of its name pattern left alone with the reason. A
/// directory that cannot be listed is an error.
pub fn read_all(dir: &Path, run: &str) -> Result<(Vec<Found>, Vec<LeftAlone>)> {
    read_all_of(dir, run, &[])
}

/// [`read_all`], trusting the records of the users `owners` too (the
/// reaper's `--owner`).
pub fn read_all_of(dir: &Path, run: &str, owners: &[u32]) -> Result<(Vec<Found>, Vec<LeftAlone>)> {
    let entries = fs::read_dir(dir).map_err(|e| {
        Error::invalid_argument(format!(
            "cannot list the journal directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let pending = if name.starts_with(&format!("{SETTLED_PREFIX}{run}-")) {
            false
        } else if name.starts_with(&format!("{PENDING_PREFIX}{run}-")) {
            true
        } else {
            continue;
        };
        if !name.ends_with(".json") {
            continue;
        }
        match read_one(&dir.join(&name), run, owners) {
            Ok(attempt) => found.push(Found {
                file: name,
                pending,
                attempt,
            }),
            Err(why) => invalid.push((name, why)),
        }
    }
    found.sort_by(|a, b| {
        a.attempt
            .time
            .total_cmp(&b.attempt.time)
            .then(a.file.cmp(&b.file))
    });
    Ok((found, invalid))
}

/// The failed attempts of `task` among `found`: each record once, a crash of
/// one worker once however many reaper passes recorded it.
pub fn count_in(found: &[Found], task: i64) -> u32 {
    let mut crashed = std::collections::BTreeSet::new();
    let mut n = 0u32;
    for f in found.iter().filter(|f| f.attempt.task == task) {
        if f.attempt.kind == Kind::Crashed && !crashed.insert(f.attempt.worker.clone()) {
            continue;
        }
        n = n.saturating_add(1);
    }
    n
}

/// The failed attempts of `task` of run `run` recorded in `dir`.
pub fn count(dir: &Path, run: &str, task: i64) -> Result<u32> {
    Ok(count_in(&read_all(dir, run)?.0, task))
}

/// What the records say about each task that has any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskAttempts {
    /// The task.
    pub task: i64,
    /// Its failed attempts.
    pub attempts: u32,
    /// The kind of the last one.
    pub last_kind: &'static str,
    /// The message of the last one.
    pub last_message: String,
    /// Unix time of the last one.
    pub last_time: f64,
    /// A record set it aside.
    pub set_aside: bool,
}

/// Per task, what `found` says (task order).
pub fn summarise(found: &[Found]) -> Vec<TaskAttempts> {
    let mut tasks: BTreeMap<i64, TaskAttempts> = BTreeMap::new();
    for f in found {
        let a = &f.attempt;
        let entry = tasks.entry(a.task).or_insert_with(|| TaskAttempts {
            task: a.task,
            attempts: 0,
            last_kind: a.kind.as_str(),
            last_message: String::new(),
            last_time: a.time,
            set_aside: false,
        });
        entry.set_aside |= a.set_aside;
        if a.time >= entry.last_time || entry.last_message.is_empty() {
            entry.last_time = a.time;
            entry.last_kind = a.kind.as_str();
            entry.last_message = a.message.clone();
        }
    }
    for t in tasks.values_mut() {
        t.attempts = count_in(found, t.task);
    }
    tasks.into_values().collect()
}

/// The pending record `file` is settled: renamed `attempt-...` (its task was
/// given back, or set aside, or is no longer computing).
pub fn settle(dir: &Path, file: &str) -> io::Result<()> {
    let Some(rest) = file.strip_prefix(PENDING_PREFIX) else {
        return Ok(());
    };
    fs::rename(dir.join(file), dir.join(format!("{SETTLED_PREFIX}{rest}")))
}

/// The settled record `file` back to pending (its task could not be given back).
pub fn unsettle(dir: &Path, file: &str) -> io::Result<()> {
    let rest = file.strip_prefix(PENDING_PREFIX).unwrap_or(file);
    fs::rename(
        dir.join(format!("{SETTLED_PREFIX}{rest}")),
        dir.join(format!("{PENDING_PREFIX}{rest}")),
    )
}

/// Forgets the attempts of `task`: removes its records (this user's only:
/// only those are ever read). Returns how many.
pub fn forget(dir: &Path, run: &str, task: i64) -> Result<usize> {
    let (found, _) = read_all(dir, run)?;
    let mut removed = 0;
    for f in found.iter().filter(|f| f.attempt.task == task) {
        if fs::remove_file(dir.join(&f.file)).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "taskfarm-attempts-unit-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn records_are_counted_per_task_and_a_crash_once_per_worker() {
        let dir = scratch("count");
        let run = "ab12";
        for (task, kind, worker) in [
            (1, Kind::Failed, "w1"),
            (1, Kind::Failed, "w2"),
            (1, Kind::Crashed, "w3"),
            (1, Kind::Crashed, "w3"),
            (2, Kind::NotDone, "w1"),
        ] {
            record(&dir, &Attempt::new(run, task, kind, worker, 40.0, "boom")).unwrap();
        }
        record(
            &dir,
            &Attempt::new("other", 1, Kind::Failed, "w1", 0.0, "x"),
        )
        .unwrap();
        assert_eq!(count(&dir, run, 1).unwrap(), 3);
        assert_eq!(count(&dir, run, 2).unwrap(), 1);
        assert_eq!(count(&dir, run, 3).unwrap(), 0);
        let (found, invalid) = read_all(&dir, run).unwrap();
        assert!(invalid.is_empty(), "{invalid:?}");
        let pending: Vec<_> = found.iter().filter(|f| f.pending).collect();
        assert_eq!(pending.len(), 1);
        settle(&dir, &pending[0].file).unwrap();
        let (found, _) = read_all(&dir, run).unwrap();
        assert!(found.iter().all(|f| !f.pending));
        assert_eq!(count_in(&found, 2), 1);
        // No temporary file is left.
        assert!(fs::read_dir(&dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
        assert_eq!(forget(&dir, run, 1).unwrap(), 4);
        assert_eq!(count(&dir, run, 1).unwrap(), 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = cut_message(&long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES && cut.len() >= MAX_MESSAGE_BYTES - 1);
        assert_eq!(cut_message("short"), "short");
    }

    #[test]
    fn symlinks_fifos_big_and_foreign_files_are_not_read() {
        let dir = scratch("hostile");
        let run = "cd34";
        let good = record(&dir, &Attempt::new(run, 0, Kind::Failed, "w", 0.0, "m")).unwrap();
        std::os::unix::fs::symlink(
            dir.join(&good),
            dir.join(format!("attempt-{run}-link.json")),
        )
        .unwrap();
        let fifo = std::ffi::CString::new(
            dir.join(format!("attempt-{run}-fifo.json"))
                .to_str()
                .unwrap(),
        )
        .unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        fs::write(
            dir.join(format!("attempt-{run}-big.json")),
            vec![b' '; MAX_RECORD_BYTES as usize + 1],
        )
        .unwrap();
        fs::write(dir.join(format!("attempt-{run}-junk.json")), "{junk").unwrap();
        // A record another user wrote (possible to make only as root: then
        // it is made and must be refused).
        let foreign = record(&dir, &Attempt::new(run, 0, Kind::Failed, "w", 0.0, "m")).unwrap();
        // SAFETY: geteuid has no preconditions.
        let as_root = unsafe { libc::geteuid() } == 0;
        if as_root {
            std::os::unix::fs::chown(dir.join(&foreign), Some(65534), None).unwrap();
        } else {
            fs::remove_file(dir.join(&foreign)).unwrap();
        }
        let (found, invalid) = read_all(&dir, run).unwrap();
        assert_eq!(found.len(), 1);
        if as_root {
            assert!(invalid
                .iter()
                .any(|(f, why)| *f == foreign && why.contains("belongs to user 65534")));
        }
        if as_root {
            // The reaper's --owner trusts that user's records.
            let (found, _) = read_all_of(&dir, run, &[65534]).unwrap();
            assert_eq!(found.len(), 2);
        }
        let invalid: Vec<_> = invalid.into_iter().filter(|(f, _)| *f != foreign).collect();
        let reasons: Vec<String> = invalid.iter().map(|(_, why)| why.clone()).collect();
        assert_eq!(invalid.len(), 4, "{reasons:?}");
        // The symlink and the FIFO.
        assert_eq!(
            reasons
                .iter()
                .filter(|r| r.contains("not a regular file"))
                .count(),
            2,
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("longer than")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("not an attempt record")),
            "{reasons:?}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
