//! `TASKFARM_PROGRESS`: the file a command writes its percentage to
//! (`echo 40 > "$TASKFARM_PROGRESS"`). Each runner has one, in a private
//! directory that `taskfarm run` makes (as `mkdtemp` does: mode 0700, a
//! random name) and removes when it ends; it is emptied before each attempt
//! (unless it was read empty after the last one ended: one open less per
//! task for a command that reports nothing).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// At most this much of the file is read.
const MAX_BYTES: u64 = 256;

/// The private directory of the progress files, removed when dropped.
#[derive(Debug)]
pub struct ProgressDir {
    path: PathBuf,
}

impl ProgressDir {
    /// A fresh directory under `$TMPDIR` (else /tmp), mode 0700.
    pub fn create() -> io::Result<ProgressDir> {
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let name = format!("taskfarm-run-{}", uuid::Uuid::new_v4().simple());
            let path = base.join(name);
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(ProgressDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no fresh directory name after 16 tries"))
    }

    /// The progress file of runner `slot` (made, empty, by its first
    /// [`ProgressFile::begin`]).
    pub fn file(&self, slot: usize) -> ProgressFile {
        ProgressFile {
            path: self.path.join(format!("progress-{slot}")),
            last: None,
            read_empty: false,
        }
    }
}

impl Drop for ProgressDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// One runner's progress file and the last percentage read from it.
#[derive(Debug)]
pub struct ProgressFile {
    path: PathBuf,
    last: Option<f64>,
    /// The last read found the file there and empty.
    read_empty: bool,
}

impl ProgressFile {
    /// Before an attempt: the file emptied (made if missing), no percentage
    /// read yet. Not opened when the last read, after the previous command
    /// had ended, found it empty.
    pub fn begin(&mut self) -> io::Result<()> {
        self.last = None;
        if std::mem::take(&mut self.read_empty) {
            return Ok(());
        }
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)?;
        Ok(())
    }

    /// Its path, for `TASKFARM_PROGRESS`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new percentage in the file since the last call, if any: the last
    /// number of its content, in 0..100 (a value above 100 by at most 1e-6
    /// is 100). Anything else (empty, half written, text) is no news.
    pub fn read_new(&mut self) -> Option<f64> {
        self.read_empty = false;
        let mut bytes = Vec::new();
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.path)
            .ok()?;
        file.take(MAX_BYTES).read_to_end(&mut bytes).ok()?;
        self.read_empty = bytes.is_empty();
        let value = parse(&bytes)?;
        if self.last == Some(value) {
            return None;
        }
        self.last = Some(value);
        Some(value)
    }
}

/// The last whitespace-separated number of `bytes`, as a percentage.
fn parse(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let value: f64 = text
        .split_whitespace()
        .last()?
        .trim_end_matches('%')
        .parse()
        .ok()?;
    let value = if value > 100.0 && value - 100.0 <= 1e-6 {
        100.0
    } else {
        value
    };
    (0.0..=100.0).contains(&value).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_number_in_range_is_the_percentage() {
        assert_eq!(parse(b"40\n"), Some(40.0));
        assert_eq!(parse(b"10\n20\n 35.5%\n"), Some(35.5));
        assert_eq!(parse(b"100.0000000001"), Some(100.0));
        for bad in [&b""[..], b"abc", b"150", b"-1", b"nan", b"\xff"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_file_reports_each_new_value_once() {
        let dir = ProgressDir::create().unwrap();
        let mut file = dir.file(0);
        file.begin().unwrap();
        assert_eq!(file.read_new(), None);
        fs::write(file.path(), "40\n").unwrap();
        assert_eq!(file.read_new(), Some(40.0));
        assert_eq!(file.read_new(), None);
        fs::write(file.path(), "60\n").unwrap();
        assert_eq!(file.read_new(), Some(60.0));
        // The next attempt starts from an empty file, and reads 60 again.
        file.begin().unwrap();
        assert_eq!(fs::read(file.path()).unwrap(), b"");
        assert_eq!(file.read_new(), None);
        // Read empty: not opened again; written since, it would be emptied.
        file.begin().unwrap();
        fs::write(file.path(), "60\n").unwrap();
        assert_eq!(file.read_new(), Some(60.0));
        file.begin().unwrap();
        assert_eq!(fs::read(file.path()).unwrap(), b"");
        let path = dir.path.clone();
        drop(file);
        drop(dir);
        assert!(!path.exists());
    }
}
