//! `--joblog FILE`: one JSON object per line and attempt, appended as the
//! attempt ends (`O_APPEND`, one `write` per line, so that several
//! `taskfarm run` may share a file on one machine). `taskfarm report` reads
//! it back ([`Entry`] is both sides' format).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use serde_derive::{Deserialize, Serialize};

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Exit status 0: the task is done.
    Done,
    /// A non-zero exit status or a signal: a failed attempt.
    Failed,
    /// Killed after `--timeout`: a failed attempt.
    Timeout,
    /// Ended by a stop signal: the task was handed back.
    Stopped,
}

/// One line of the job log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The run's uuid.
    #[serde(default)]
    pub run: String,
    /// The task.
    pub task: i64,
    /// Its attempt number.
    pub attempt: u32,
    /// The host `taskfarm run` ran on.
    pub host: String,
    /// The command's process id.
    pub pid: u32,
    /// Unix time the command started, seconds.
    pub start: f64,
    /// Unix time it ended, seconds.
    pub end: f64,
    /// Its exit status, when it exited.
    pub exit: Option<i32>,
    /// The signal that killed it (`SIGKILL`), when one did.
    pub signal: Option<String>,
    /// How the attempt ended.
    pub outcome: Outcome,
    /// Its peak resident set size, kB.
    pub max_rss_kb: i64,
    /// CPU time in user mode, seconds.
    pub user_s: f64,
    /// CPU time in the kernel, seconds.
    pub system_s: f64,
    /// For a failure, the message recorded with the attempt.
    #[serde(default)]
    pub message: Option<String>,
}

/// An open job log, shared by the runners of one `taskfarm run`.
#[derive(Debug)]
pub struct JobLog {
    file: Mutex<File>,
}

impl JobLog {
    /// Opens `path` for appending (made with mode 0644 when missing; never
    /// through a symlink).
    pub fn open(path: &Path) -> io::Result<JobLog> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        Ok(JobLog {
            file: Mutex::new(file),
        })
    }

    /// Appends `entry` as one line.
    pub fn append(&self, entry: &Entry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(&line)
    }
}
