//! The command of one attempt as a child process: started by `spawn.rs` in
//! a process group of its own (so that a signal reaches everything it
//! started), killed with SIGKILL if `taskfarm run` dies
//! (`PR_SET_PDEATHSIG`), waited for
//! through a pidfd (no polling delay when it ends), reaped with `wait4` for
//! its resource usage, and its process group killed once it has ended:
//! nothing it started runs on.
//!
//! Its stderr, when not sent to a file, passes through a pipe: copied to
//! ours as it comes, the last bytes kept for the attempt's message.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::spawn::{Program, Spawner};

/// How much of the command's stderr is kept for the message of a failure.
pub const TAIL_BYTES: usize = 4096;

/// Where the command's output goes.
#[derive(Debug)]
pub enum Output {
    /// Passed through: stdout to ours, stderr to ours through a pipe.
    PassThrough,
    /// To these files.
    Files {
        /// Its stdout.
        stdout: File,
        /// Its stderr.
        stderr: File,
    },
}

/// What to start: the program, its arguments, extra environment.
#[derive(Debug)]
pub struct Launch {
    /// The program and its arguments.
    pub argv: Vec<OsString>,
    /// Variables added to the environment.
    pub env: Vec<(String, OsString)>,
    /// Where its output goes.
    pub output: Output,
}

/// A command that is running.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    stderr: Option<File>,
    tail: Vec<u8>,
    ended: bool,
}

/// How a command ended: its wait status and resource usage.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    /// The raw wait status.
    pub status: libc::c_int,
    /// The exit status when it exited.
    pub exit: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Its peak resident set, kB (Linux: `ru_maxrss`).
    pub max_rss_kb: i64,
    /// CPU time in user mode, seconds.
    pub user_s: f64,
    /// CPU time in the kernel, seconds.
    pub system_s: f64,
}

fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

impl Child {
    /// Starts `launch` with `spawner` in a process group of its own, stdin
    /// from /dev/null.
    pub fn start(launch: Launch, spawner: &mut Spawner) -> io::Result<Child> {
        let (stdout, stderr, pipe) = match &launch.output {
            Output::PassThrough => {
                let (read, write) = stderr_pipe()?;
                (None, write, Some(read))
            }
            Output::Files { stdout, stderr } => {
                (Some(stdout.as_raw_fd()), stderr.try_clone()?.into(), None)
            }
        };
        let spawned = spawner.spawn(&Program {
            argv: launch.argv,
            env: launch.env,
            stdout,
            stderr: stderr.as_raw_fd(),
        })?;
        // Our copy of the child's end goes, so that its end of file comes
        // when the command's processes have all closed it.
        drop(stderr);
        Ok(Child {
            pid: spawned.pid,
            pidfd: spawned.pidfd,
            stderr: pipe.map(|read| {
                set_nonblocking(read.as_raw_fd());
                File::from(read)
            }),
            tail: Vec::new(),
            ended: false,
        })
    }

    /// The command's process id (and process group id).
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Sends `signal` to the command's process group.
    pub fn signal_group(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory preconditions; the group is the
        // command's own (it is its leader), and it is not reaped yet.
        unsafe {
            libc::kill(-self.pid, signal);
        }
    }

    /// Waits at most `tick` for the command to end, copying its stderr as
    /// it comes. `Some` once it has ended (then reaped, its group killed
    /// and its stderr read to the end).
    pub fn wait(&mut self, tick: Duration) -> io::Result<Option<Ended>> {
        let until = Instant::now() + tick;
        loop {
            // poll(2) first: a command just started has not ended, and one
            // that has makes its pidfd readable at once.
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                self.poll(left)?;
            }
            if let Some(ended) = self.try_reap()? {
                return Ok(Some(ended));
            }
            if left.is_zero() {
                return Ok(None);
            }
        }
    }

    /// Blocks in poll(2) on the pidfd and the stderr pipe for at most `left`
    /// (without a pidfd: at most 10 ms at a time), copying stderr.
    fn poll(&mut self, left: Duration) -> io::Result<()> {
        let mut fds = Vec::with_capacity(2);
        if let Some(pidfd) = &self.pidfd {
            fds.push(libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(stderr) = &self.stderr {
            fds.push(libc::pollfd {
                fd: stderr.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let mut wait = left;
        if self.pidfd.is_none() {
            wait = wait.min(Duration::from_millis(10));
        }
        let ms = wait.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: fds is a valid array of pollfd of that length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        self.copy_stderr();
        Ok(())
    }

    /// Reads what the stderr pipe holds now: copied to our stderr, the end
    /// kept. Closes it at end of file.
    fn copy_stderr(&mut self) {
        let Some(pipe) = self.stderr.as_mut() else {
            return;
        };
        let mut buffer = [0u8; 8192];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => {
                    self.stderr = None;
                    return;
                }
                Ok(n) => {
                    let _ = io::stderr().lock().write_all(&buffer[..n]);
                    self.tail.extend_from_slice(&buffer[..n]);
                    if self.tail.len() > 2 * TAIL_BYTES {
                        let cut = self.tail.len() - TAIL_BYTES;
                        self.tail.drain(..cut);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    /// Reaps the command if it has ended.
    fn try_reap(&mut self) -> io::Result<Option<Ended>> {
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero rusage is a valid value to be overwritten.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers; the pid is our own child, not reaped yet.
        let got = unsafe { libc::wait4(self.pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == 0 {
            return Ok(None);
        }
        if got < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(e);
        }
        self.ended = true;
        // Whatever it left behind in its group goes too.
        self.signal_group(libc::SIGKILL);
        self.drain_stderr();
        let exited = libc::WIFEXITED(status);
        let signaled = libc::WIFSIGNALED(status);
        Ok(Some(Ended {
            status,
            exit: exited.then(|| libc::WEXITSTATUS(status)),
            signal: signaled.then(|| libc::WTERMSIG(status)),
            max_rss_kb: usage.ru_maxrss,
            user_s: seconds(usage.ru_utime),
            system_s: seconds(usage.ru_stime),
        }))
    }

    /// After the end: the rest of the stderr pipe, for at most a second
    /// (a process of another group may still hold it open).
    fn drain_stderr(&mut self) {
        let until = Instant::now() + Duration::from_secs(1);
        while self.stderr.is_some() && Instant::now() < until {
            let Some(pipe) = &self.stderr else { break };
            let mut fd = libc::pollfd {
                fd: pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut fd, 1, 100) };
            self.copy_stderr();
        }
        self.stderr = None;
    }

    /// The last bytes the command wrote to its stderr pipe.
    pub fn stderr_tail(&self) -> &[u8] {
        &self.tail
    }
}

impl Drop for Child {
    /// A command still running when its runner lets go of it (an error, a
    /// panic) is killed with its group and reaped.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        self.signal_group(libc::SIGKILL);
        let mut status = 0;
        // SAFETY: our own child, not reaped yet.
        unsafe {
            libc::waitpid(self.pid, &mut status, 0);
        }
    }
}

/// Makes the read end of a fresh pipe non-blocking (its only status flag:
/// F_SETFL sets them all, no F_GETFL needed).
fn set_nonblocking(fd: libc::c_int) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
    }
}

/// A pipe for the command's stderr (both ends close-on-exec): (read, write).
fn stderr_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The last `lines` lines of `bytes` (lossy UTF-8), without trailing blanks.
pub fn last_lines(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(script: &str) -> Launch {
        Launch {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![("TF_TEST_VALUE".into(), "seven".into())],
            output: Output::PassThrough,
        }
    }

    fn wait_end(child: &mut Child) -> Ended {
        loop {
            if let Some(ended) = child.wait(Duration::from_secs(60)).unwrap() {
                return ended;
            }
        }
    }

    #[test]
    fn exit_status_environment_and_stderr_tail() {
        let mut child = Child::start(
            launch("echo one >&2; echo \"$TF_TEST_VALUE\" >&2; exit 3"),
            &mut Spawner::new().unwrap(),
        )
        .unwrap();
        let ended = wait_end(&mut child);
        assert_eq!((ended.exit, ended.signal), (Some(3), None));
        assert_eq!(last_lines(child.stderr_tail(), 1), "seven");
        assert_eq!(last_lines(child.stderr_tail(), 5), "one\nseven");
    }

    #[test]
    fn a_signal_to_the_group_reaches_the_grandchildren() {
        let mut child = Child::start(
            launch("sleep 600 & sleep 600; wait"),
            &mut Spawner::new().unwrap(),
        )
        .unwrap();
        assert!(child.wait(Duration::from_millis(50)).unwrap().is_none());
        child.signal_group(libc::SIGTERM);
        let ended = wait_end(&mut child);
        assert_eq!(ended.signal, Some(libc::SIGTERM));
    }

    #[test]
    fn what_the_command_left_in_its_group_is_killed_when_it_ends() {
        let dir = std::env::temp_dir().join(format!("taskfarm-child-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let script = format!(
            "sleep 600 >/dev/null 2>&1 & echo $! > {}; exit 0",
            pidfile.display()
        );
        let mut child = Child::start(launch(&script), &mut Spawner::new().unwrap()).unwrap();
        let ended = wait_end(&mut child);
        assert_eq!(ended.exit, Some(0));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The orphan is reparented to init (or a subreaper) and killed: it
        // becomes a zombie or disappears, never stays running.
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            if stat.is_empty() || state == Some(Some('Z')) {
                break;
            }
            assert!(
                Instant::now() < until,
                "the orphan {pid} still runs: {stat}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
