//! One reaper per run: the lock file `DIR/reap-<run>.lock`, created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` (atomic on NFS v3 and later, unlike `flock`
//! or `fcntl` locks, which NFS may not carry), holding who holds it: host,
//! pid, boot id, PID namespace, process start time, uid. It is removed when
//! the reaper ends.
//!
//! A lock left by a reaper that died is taken over only when that death is
//! proved, on the same terms as a worker's (`deciding.rs`): the same boot
//! id and PID namespace as this reaper, and its pid gone or now another
//! process's. A lock from another machine, another boot or a container is
//! never taken over: its holder may be alive, and no clock can tell (the
//! message says which file to remove once no reaper runs there). Takeover
//! renames the stale file to an unpredictable name first and checks that
//! the file moved is the one judged (same inode), so that two reapers
//! taking over at once never remove each other's fresh lock.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_derive::{Deserialize, Serialize};
use taskfarm_worker::internal::clock::unix_now;
use taskfarm_worker::internal::worker::identity::host_name;
use taskfarm_worker::internal::worker::machine::{
    boot_id, own_start_time, pid_namespace, process_state, ProcessState,
};
use taskfarm_worker::internal::worker::shared_dir::{
    c_path, own_uid, random_suffix, read_limited, ReadRefused,
};
use taskfarm_worker::internal::{Error, Result};

const LOCK_FORMAT: &str = "taskfarm-reap-lock";
/// A lock file larger than this is not a reaper's.
const MAX_LOCK_BYTES: u64 = 64 << 10;

/// Who holds a run's lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Always `taskfarm-reap-lock`.
    pub format: String,
    /// The holder's host name (for people: it proves nothing).
    pub host: String,
    /// Its pid.
    pub pid: u32,
    /// Its machine's boot id.
    pub boot_id: Option<String>,
    /// Its PID namespace.
    pub pid_namespace: Option<u64>,
    /// Its start time in clock ticks after boot.
    pub process_start: Option<u64>,
    /// Its uid.
    pub uid: u32,
    /// Unix time it took the lock (for people).
    pub since: f64,
}

impl Holder {
    fn me() -> Holder {
        Holder {
            format: LOCK_FORMAT.into(),
            host: host_name(),
            pid: std::process::id(),
            boot_id: boot_id(),
            pid_namespace: pid_namespace(),
            process_start: own_start_time(),
            uid: own_uid(),
            since: unix_now(),
        }
    }

    /// Why the holder is proved gone, if it is.
    fn proved_gone(&self) -> Option<String> {
        let same_kernel = self.boot_id.is_some() && self.boot_id == boot_id();
        let same_namespace = self.pid_namespace.is_some() && self.pid_namespace == pid_namespace();
        if !(same_kernel && same_namespace) {
            return None;
        }
        match process_state(self.pid) {
            ProcessState::Gone => Some(format!("process {} has ended", self.pid)),
            ProcessState::Running { start: Some(now) }
                if self.process_start.is_some_and(|then| then != now) =>
            {
                Some(format!("pid {} now belongs to a later process", self.pid))
            }
            _ => None,
        }
    }
}

/// The run's lock, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    identity: (u64, u64),
}

/// The lock file of run `run` in `dir`.
pub fn lock_path(dir: &Path, run: &str) -> PathBuf {
    dir.join(format!("reap-{run}.lock"))
}

impl RunLock {
    /// Takes the lock of run `run` in `dir`, taking over a lock whose
    /// holder is proved gone; any other held lock is an error that names
    /// its holder. Returns the lock and, after a takeover, what was taken
    /// over (for the report).
    pub fn acquire(dir: &Path, run: &str) -> Result<(RunLock, Option<String>)> {
        let path = lock_path(dir, run);
        let mut took_over = None;
        for _ in 0..3 {
            match create(&path) {
                Ok(identity) => return Ok((RunLock { path, identity }, took_over)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Error::invalid_argument(format!(
                        "cannot create the reaper's lock {}: {e}",
                        path.display()
                    )))
                }
            }
            let read = match read_limited(&path, MAX_LOCK_BYTES) {
                Ok(read) => read,
                Err(ReadRefused::Missing) => continue, // released meanwhile
                Err(e) => {
                    return Err(Error::invalid_argument(format!(
                        "{} {e}, not a reaper's lock: remove it",
                        path.display()
                    )))
                }
            };
            let holder: Holder = match serde_json::from_slice(&read.bytes) {
                Ok(h) => h,
                Err(_) if read.bytes.is_empty() => {
                    return Err(Error::invalid_argument(format!(
                        "another reaper of run {run} is taking the lock {} right now",
                        path.display()
                    )))
                }
                Err(e) => {
                    return Err(Error::invalid_argument(format!(
                        "{} is not a reaper's lock ({e}): remove it",
                        path.display()
                    )))
                }
            };
            let Some(why) = holder.proved_gone() else {
                return Err(Error::invalid_argument(format!(
                    "another reaper of run {run} holds {} (host {}, pid {}, uid {}, since Unix \
                     time {:.0}): run one reaper per run. If no reaper runs there any more \
                     (it was killed on another machine or in a container, where its death \
                     cannot be proved from here), remove that file",
                    path.display(),
                    holder.host,
                    holder.pid,
                    holder.uid,
                    holder.since
                )));
            };
            take_over(&path, read.identity)?;
            took_over = Some(format!(
                "took over the lock of a reaper that is gone (host {}, pid {}: {why})",
                holder.host, holder.pid
            ));
        }
        Err(Error::invalid_argument(format!(
            "the reaper's lock {} keeps changing: another reaper is starting",
            path.display()
        )))
    }
}

/// Creates the lock file holding [`Holder::me`]; its device and inode.
fn create(path: &Path) -> io::Result<(u64, u64)> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let written = serde_json::to_vec_pretty(&Holder::me())
        .map_err(io::Error::other)
        .and_then(|bytes| {
            file.write_all(&bytes)?;
            file.sync_all()
        });
    let meta = file.metadata()?;
    if let Err(e) = written {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok((meta.dev(), meta.ino()))
}

/// Moves the stale lock `path` (judged as the file `identity`) out of the
/// way. When the file moved is not the one judged (another reaper took the
/// lock in between), it is put back and the takeover fails.
fn take_over(path: &Path, identity: (u64, u64)) -> Result<()> {
    let aside = path.with_file_name(format!(
        ".{}.stale.{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        random_suffix()
    ));
    let fail = |e: io::Error| {
        Error::invalid_argument(format!(
            "cannot take over the stale lock {}: {e}",
            path.display()
        ))
    };
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(e)),
    }
    let moved = fs::symlink_metadata(&aside).map_err(fail)?;
    if (moved.dev(), moved.ino()) == identity {
        let _ = fs::remove_file(&aside);
        return Ok(());
    }
    // Someone's fresh lock: back where it was (link fails if yet another
    // lock is there now; then that one holds, and this one is dropped).
    if let (Ok(from), Ok(to)) = (c_path(&aside), c_path(path)) {
        // SAFETY: two valid NUL-terminated paths.
        unsafe { libc::link(from.as_ptr(), to.as_ptr()) };
    }
    let _ = fs::remove_file(&aside);
    Err(Error::invalid_argument(format!(
        "another reaper took the lock {} meanwhile",
        path.display()
    )))
}

impl Drop for RunLock {
    /// Removes the lock file while it is still this reaper's.
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "taskfarm-reap-lock-unit-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn one_reaper_holds_the_lock_until_it_ends() {
        let dir = scratch("one");
        let (lock, took) = RunLock::acquire(&dir, "r1").unwrap();
        assert_eq!(took, None);
        let err = RunLock::acquire(&dir, "r1").unwrap_err();
        assert!(err.message().contains("another reaper"), "{err}");
        assert!(
            err.message()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        // Another run has its own lock.
        let (other, _) = RunLock::acquire(&dir, "r2").unwrap();
        drop(lock);
        assert!(!lock_path(&dir, "r1").exists());
        let (_again, _) = RunLock::acquire(&dir, "r1").unwrap();
        drop(other);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_lock_of_a_reaper_proved_dead_is_taken_over_and_no_other() {
        let dir = scratch("stale");
        let path = lock_path(&dir, "r1");
        let write =
            |holder: &Holder| fs::write(&path, serde_json::to_vec(holder).unwrap()).unwrap();
        let dead = Holder {
            pid: dead_pid(),
            ..Holder::me()
        };
        // The pid may have been reused at once: then the start time differs.
        write(&dead);
        let (lock, took) = RunLock::acquire(&dir, "r1").unwrap();
        assert!(took.unwrap().contains("is gone"));
        drop(lock);
        // Another machine (or a reboot, or a clone): never taken over.
        for holder in [
            Holder {
                boot_id: Some("another-boot".into()),
                pid: dead_pid(),
                ..Holder::me()
            },
            Holder {
                pid_namespace: Some(1),
                pid: dead_pid(),
                ..Holder::me()
            },
        ] {
            write(&holder);
            let err = RunLock::acquire(&dir, "r1").unwrap_err();
            assert!(err.message().contains("remove that file"), "{err}");
            assert!(path.exists());
        }
        // A symlink or a FIFO is not a lock: refused, not followed.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let err = RunLock::acquire(&dir, "r1").unwrap_err();
        assert!(err.message().contains("not a regular file"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_takeover_that_finds_a_fresh_lock_puts_it_back() {
        let dir = scratch("race");
        let path = lock_path(&dir, "r1");
        fs::write(&path, "stale").unwrap();
        let judged = fs::metadata(&path).unwrap();
        // Another reaper took the lock over and made its own meanwhile
        // (made before the stale one goes, so that it gets another inode).
        fs::write(dir.join("fresh"), "fresh").unwrap();
        fs::rename(dir.join("fresh"), &path).unwrap();
        let err = take_over(&path, (judged.dev(), judged.ino())).unwrap_err();
        assert!(err.message().contains("meanwhile"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "fresh");
        let _ = fs::remove_dir_all(&dir);
    }
}
