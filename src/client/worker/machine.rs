//! What this machine can prove about a process: its boot id, its PID
//! namespace, and whether a pid is alive (`kill(pid, 0)`) and since when
//! (`/proc/PID/stat`). The journal records these for its worker; the reaper
//! compares them with its own, and judges a pid only where the two are the
//! same kernel and the same PID namespace.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

/// This machine's boot id (`/proc/sys/kernel/random/boot_id`), when Linux
/// tells it: random at every boot, so the same id means the same running
/// kernel (cloned VMs and nodes that share a host name have different ones).
pub fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The inode of this process's PID namespace (`/proc/self/ns/pid`), when
/// Linux tells it. Two processes with the same boot id and this number see
/// the same pids; a container (`unshare --pid`, Apptainer `--pid`) has its own.
pub fn pid_namespace() -> Option<u64> {
    fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// What this machine says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// No such process (`kill(pid, 0)` says so), or a zombie: it has ended.
    Gone,
    /// It exists; `start` is its start time in clock ticks after boot when
    /// `/proc` shows it (`hidepid=2` hides other users' processes).
    Running {
        /// Field 22 of `/proc/PID/stat`.
        start: Option<u64>,
    },
    /// This machine cannot tell.
    Unknown,
}

/// The state of process `pid` in this process's PID namespace.
pub fn process_state(pid: u32) -> ProcessState {
    if pid == 0 || pid > i32::MAX as u32 {
        return ProcessState::Unknown;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the pid exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if rc != 0 {
        return match io::Error::last_os_error().raw_os_error() {
            Some(libc::ESRCH) => ProcessState::Gone,
            // Another user's process: it exists.
            Some(libc::EPERM) => running_since(pid),
            _ => ProcessState::Unknown,
        };
    }
    running_since(pid)
}

/// A process that `kill` says exists: a zombie has ended; else its start
/// time when `/proc` shows it.
fn running_since(pid: u32) -> ProcessState {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => match parse_stat(&stat) {
            Some(("Z" | "X" | "x", _)) => ProcessState::Gone,
            Some((_, start)) => ProcessState::Running { start: Some(start) },
            None => ProcessState::Running { start: None },
        },
        Err(_) => ProcessState::Running { start: None },
    }
}

/// The state letter and start time (field 22) of a `/proc/PID/stat` line.
/// The command name, field 2, may hold spaces and parentheses: the fields
/// after it start after the last `)`.
pub fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); field 22 is index 22 - 3.
    let state = *fields.first()?;
    let start = fields.get(22 - 3)?.parse().ok()?;
    Some((state, start))
}

/// The start time of this process, in clock ticks after boot.
pub fn own_start_time() -> Option<u64> {
    match process_state(std::process::id()) {
        ProcessState::Running { start } => start,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "123 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 19 20";
        assert_eq!(parse_stat(line), Some(("S", 424242)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_is_running_and_a_reaped_child_is_gone() {
        let me = std::process::id();
        assert!(matches!(
            process_state(me),
            ProcessState::Running { start: Some(_) }
        ));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // The pid could be reused at once by another process: then it
        // started later than the child did, which the reaper also checks.
        if let ProcessState::Running { .. } = process_state(pid) {
            return;
        }
        assert_eq!(process_state(pid), ProcessState::Gone);
    }

    #[test]
    fn the_pid_namespace_and_boot_id_are_known_here() {
        assert!(pid_namespace().is_some());
        assert!(boot_id().is_some());
    }
}
