//! How a command is started: `clone(CLONE_VM | CLONE_VFORK)`, as glibc's
//! `posix_spawn` does, instead of the `fork` of `std::process::Command`.
//!
//! - [`Spawner`]: what every attempt of one runner shares (the environment
//!   read once, `/dev/null`, the child's stack, the signals to reset);
//! - [`Spawner::spawn`]: one command started, its pid and pidfd (made by
//!   the `clone` itself, `CLONE_PIDFD`) returned once it has executed (or
//!   its `execvp` error);
//! - `child_main`: what runs in the child before `execvp`.
//!
//! Why: `fork` copies the runner's page tables and makes every page it
//! writes afterwards fault once (copy on write); with `taskfarm run -- true`
//! that was a third of the runner's own CPU per task (bench/, section g).
//! A child that shares the runner's memory until it executes costs neither,
//! but may then only call functions that touch nothing of the parent (raw
//! system calls: `dup2`, `setpgid`, `sigaction`, `prctl`, `execvpe`); all it
//! needs is prepared before the `clone` (the argument and environment
//! vectors as C strings), and the runner's thread is suspended until the
//! child has executed or exited.
//!
//! The child's state is that of `std::process::Command` with
//! `process_group(0)` and the `pre_exec` it had: its own process group,
//! `PR_SET_PDEATHSIG` = SIGKILL (the runner's thread ending kills it), every
//! caught signal and SIGPIPE back to their default, an empty signal mask,
//! stdin from `/dev/null`, the program looked up in `PATH` as `execvp`
//! does. Signals are blocked in the runner's thread around the `clone`, so
//! that no handler of the runner runs in the child on the shared memory.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;

/// The child's stack: at least this, plus a pointer per argument (glibc's
/// `execvp` copies the argument vector on the stack to run a script
/// without `#!` through `/bin/sh`).
const STACK_BYTES: usize = 256 * 1024;
/// The highest signal number (glibc's `_NSIG - 1`).
const LAST_SIGNAL: libc::c_int = 64;

/// What one command is started with.
#[derive(Debug)]
pub struct Program {
    /// The program and its arguments.
    pub argv: Vec<OsString>,
    /// Variables added to (or replacing in) the runner's environment.
    pub env: Vec<(String, OsString)>,
    /// The child's stdout: `None` inherits ours.
    pub stdout: Option<RawFd>,
    /// The child's stderr.
    pub stderr: RawFd,
}

/// A command started: its pid, and a pidfd for it where the kernel makes
/// one (Linux 5.2 and later).
#[derive(Debug)]
pub struct Spawned {
    /// The command's process id.
    pub pid: libc::pid_t,
    /// A descriptor that becomes readable when it ends.
    pub pidfd: Option<OwnedFd>,
}

/// What every command of one runner shares.
#[derive(Debug)]
pub struct Spawner {
    /// `NAME=VALUE` of the runner's environment, read once (`taskfarm run`
    /// changes its own environment nowhere).
    base_env: Vec<(OsString, CString)>,
    /// The names the last command added, and the indices in `base_env` of
    /// the entries that they leave as they are (the same names every
    /// attempt: computed once).
    kept: (Vec<String>, Vec<usize>),
    dev_null: OwnedFd,
    stack: Stack,
    /// Signals with a handler in this process: reset in the child.
    caught: Vec<libc::c_int>,
    /// This process's id (the child checks that its parent is still it).
    parent: libc::pid_t,
    /// Whether `clone` takes `CLONE_PIDFD` here (false after an EINVAL).
    clone_pidfd: bool,
}

/// What the child reads (prepared by the parent) and writes (its error).
#[repr(C)]
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    parent: libc::pid_t,
    caught: *const libc::c_int,
    caught_len: usize,
    /// The errno of the step that failed, 0 when none did (the child was
    /// reaped by `spawn` then).
    error: libc::c_int,
}

impl Spawner {
    /// Reads the environment and the signal dispositions now (after the
    /// stop signals are installed), opens `/dev/null`, maps the stack.
    pub fn new() -> io::Result<Spawner> {
        let base_env = std::env::vars_os()
            .map(|(name, value)| {
                let mut bytes = name.as_bytes().to_vec();
                bytes.push(b'=');
                bytes.extend_from_slice(value.as_bytes());
                Ok((name, c_string(bytes)?))
            })
            .collect::<io::Result<Vec<_>>>()?;
        // SAFETY: a path literal and flags; the result is checked.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let dev_null = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Spawner {
            base_env,
            kept: (Vec::new(), Vec::new()),
            dev_null,
            stack: Stack::map(STACK_BYTES)?,
            caught: caught_signals(),
            // SAFETY: getpid has no preconditions.
            parent: unsafe { libc::getpid() },
            clone_pidfd: true,
        })
    }

    /// Starts `program`; its pid and pidfd once it has executed. An error
    /// of `execvp` (no such program, not executable) or of the steps before
    /// it comes back as that errno, the child reaped.
    pub fn spawn(&mut self, program: &Program) -> io::Result<Spawned> {
        let (name, _) = program
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command"))?;
        let argv = program
            .argv
            .iter()
            .map(|a| c_string(a.as_bytes().to_vec()))
            .collect::<io::Result<Vec<CString>>>()?;
        let extra = extra_environment(&program.env)?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(ptr::null());
        let env_ptrs = self.environment(&program.env, &extra);
        let program_name = c_string(name.as_bytes().to_vec())?;
        let needed = STACK_BYTES + argv_ptrs.len() * std::mem::size_of::<usize>() * 2;
        if self.stack.len < needed {
            self.stack = Stack::map(needed)?;
        }
        let mut args = ChildArgs {
            program: program_name.as_ptr(),
            argv: argv_ptrs.as_ptr(),
            envp: env_ptrs.as_ptr(),
            stdin: self.dev_null.as_raw_fd(),
            stdout: program.stdout.unwrap_or(-1),
            stderr: program.stderr,
            parent: self.parent,
            caught: self.caught.as_ptr(),
            caught_len: self.caught.len(),
            error: 0,
        };
        let mut pidfd: libc::c_int = -1;
        let pid = {
            let _blocked = BlockedSignals::all()?;
            // SAFETY: the child runs child_main on its own stack (mapped,
            // its top 16-byte aligned), sharing our memory: it reads `args`
            // and the vectors it points to, which live until clone returns,
            // and writes only `args.error`. CLONE_VFORK suspends this thread
            // until the child has executed or exited, so nothing of this
            // thread runs meanwhile; every signal is blocked here and
            // inherited blocked by the child, so no handler of ours runs in
            // it. With CLONE_PIDFD the kernel writes the pidfd (close-on-
            // exec) to `pidfd` before the child runs.
            let top = self.stack.top();
            let child_args: *mut libc::c_void = (&mut args as *mut ChildArgs).cast();
            let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
            let mut pid = -1;
            if self.clone_pidfd {
                // SAFETY: as said above; `pidfd` outlives the call.
                pid = unsafe {
                    libc::clone(
                        child_main,
                        top,
                        flags | libc::CLONE_PIDFD,
                        child_args,
                        &mut pidfd as *mut libc::c_int,
                    )
                };
                if pid < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                    // A kernel older than 5.2: a pidfd_open after each clone.
                    self.clone_pidfd = false;
                }
            }
            if !self.clone_pidfd {
                // SAFETY: as said above.
                pid = unsafe { libc::clone(child_main, top, flags, child_args) };
            }
            pid
        };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        let pidfd = if pidfd >= 0 {
            // SAFETY: a fresh descriptor the kernel made for us.
            Some(unsafe { OwnedFd::from_raw_fd(pidfd) })
        } else {
            pidfd_open(pid)
        };
        // SAFETY: args outlives the child's use of it (it has executed or
        // exited); volatile because another task wrote it.
        let error = unsafe { ptr::read_volatile(&args.error) };
        if error != 0 {
            let mut status = 0;
            // SAFETY: our own child, which has exited.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            return Err(io::Error::from_raw_os_error(error));
        }
        Ok(Spawned { pid, pidfd })
    }

    /// The runner's environment without the variables `extra` names, then
    /// `extra` (as `NAME=VALUE`), as the null-terminated vector `execvpe`
    /// takes; it points into `self` and `extra`.
    fn environment(
        &mut self,
        extra_names: &[(String, OsString)],
        extra: &[CString],
    ) -> Vec<*const libc::c_char> {
        let (names, kept) = &mut self.kept;
        if !names.iter().eq(extra_names.iter().map(|(n, _)| n)) {
            *names = extra_names.iter().map(|(n, _)| n.clone()).collect();
            *kept = (0..self.base_env.len())
                .filter(|&i| {
                    let name = self.base_env[i].0.as_bytes();
                    !names.iter().any(|n| n.as_bytes() == name)
                })
                .collect();
        }
        let mut env = Vec::with_capacity(kept.len() + extra.len() + 1);
        env.extend(kept.iter().map(|&i| self.base_env[i].1.as_ptr()));
        env.extend(extra.iter().map(|e| e.as_ptr()));
        env.push(ptr::null());
        env
    }
}

/// `extra`'s variables as `NAME=VALUE` C strings.
fn extra_environment(extra: &[(String, OsString)]) -> io::Result<Vec<CString>> {
    extra
        .iter()
        .map(|(name, value)| {
            let mut bytes = name.as_bytes().to_vec();
            bytes.push(b'=');
            bytes.extend_from_slice(value.as_bytes());
            c_string(bytes)
        })
        .collect()
}

/// A pidfd for `pid` (Linux 5.3 and later); `None` where there is none.
fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// `bytes` as a C string; a NUL byte in it is an invalid input.
fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

/// The signals that have a handler in this process now.
fn caught_signals() -> Vec<libc::c_int> {
    (1..=LAST_SIGNAL)
        .filter(|&signal| {
            // SAFETY: an all-zero sigaction is valid to be overwritten.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: a query (null new action); glibc's own signals answer
            // EINVAL and are left alone.
            let ok = unsafe { libc::sigaction(signal, ptr::null(), &mut old) } == 0;
            ok && old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN
        })
        .collect()
}

/// The child, until `execvpe`: raw system calls only (it shares the
/// parent's memory). Any failure leaves its errno in `error` and exits 127.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's ChildArgs, alive and untouched by the
    // parent until this child has executed or exited; every pointer in it
    // was prepared by the parent and is valid for as long.
    unsafe {
        let args = &mut *arg.cast::<ChildArgs>();
        let fail = |args: &mut ChildArgs| -> ! {
            args.error = *libc::__errno_location();
            if args.error == 0 {
                args.error = libc::EINVAL;
            }
            libc::_exit(127)
        };
        for (from, to) in [(args.stdin, 0), (args.stdout, 1), (args.stderr, 2)] {
            if from < 0 {
                continue;
            }
            let done = if from == to {
                // dup2 onto itself would keep FD_CLOEXEC.
                libc::fcntl(to, libc::F_SETFD, 0)
            } else {
                libc::dup2(from, to)
            };
            if done < 0 {
                fail(args);
            }
        }
        if libc::setpgid(0, 0) != 0 {
            fail(args);
        }
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for i in 0..args.caught_len {
            libc::sigaction(*args.caught.add(i), &default, ptr::null_mut());
        }
        // Rust ignores SIGPIPE in its own processes; a command gets the
        // default, as std::process::Command gives it.
        libc::sigaction(libc::SIGPIPE, &default, ptr::null_mut());
        // SIGKILL when the thread that started it ends (taskfarm run
        // killed): a command never outlives its runner.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            fail(args);
        }
        if libc::getppid() != args.parent {
            // The parent died before prctl took effect.
            libc::_exit(137);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        libc::execvpe(args.program, args.argv, args.envp);
        fail(args)
    }
}

/// Every signal blocked in this thread until dropped (the old mask back).
struct BlockedSignals {
    old: libc::sigset_t,
}

impl BlockedSignals {
    fn all() -> io::Result<BlockedSignals> {
        // SAFETY: sigset_t values filled by sigfillset / pthread_sigmask.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            let mut old: libc::sigset_t = std::mem::zeroed();
            let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(BlockedSignals { old })
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by all().
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, ptr::null_mut());
        }
    }
}

/// The child's stack: an anonymous mapping with a guard page at its bottom.
#[derive(Debug)]
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is owned by one Spawner, used by one thread at a time.
unsafe impl Send for Stack {}

impl Stack {
    fn map(bytes: usize) -> io::Result<Stack> {
        let page = 4096;
        let len = bytes.div_ceil(page) * page + page;
        // SAFETY: a fresh anonymous mapping; the result is checked.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base, len };
        // SAFETY: the lowest page of our own mapping.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The top of the stack (it grows down), 16-byte aligned.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which is page aligned.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no child runs on it any more.
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: fresh descriptors.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn wait(pid: libc::pid_t) -> libc::c_int {
        let mut status = 0;
        // SAFETY: our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    #[test]
    fn the_child_has_its_group_the_environment_and_default_signals() {
        let mut spawner = Spawner::new().unwrap();
        let (read, write) = pipe();
        // The masks read by the shell's own process after `exec`: read from
        // a child of the shell they would be the shell's while it forks
        // (dash blocks every signal around fork()), a race.
        let script = "echo \"$TF_SPAWN_VALUE $(ps -o pgid= -p $$ | tr -d ' ') $$\"; \
                      exec grep -E '^(SigIgn|SigBlk)' /proc/self/status";
        let program = Program {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![("TF_SPAWN_VALUE".into(), "seven".into())],
            stdout: Some(write.as_raw_fd()),
            stderr: write.as_raw_fd(),
        };
        // What this process ignores: what it inherited (a test run in the
        // background of a script ignores SIGINT and SIGQUIT, one under
        // nohup SIGHUP), which a command inherits too, as from a shell, and
        // SIGPIPE, which Rust ignores in its own processes only.
        let ours = status_mask(
            &std::fs::read_to_string("/proc/self/status").unwrap(),
            "SigIgn",
        );
        let pid = spawner.spawn(&program).unwrap().pid;
        drop(write);
        let status = wait(pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        let out = std::io::read_to_string(std::fs::File::from(read)).unwrap();
        assert_eq!(
            out.lines().next(),
            Some(format!("seven {pid} {pid}").as_str())
        );
        // Nothing blocked; ignored: what this process inherited, SIGPIPE not.
        let sigpipe = 1u64 << (libc::SIGPIPE - 1);
        assert_eq!(status_mask(&out, "SigBlk"), 0, "{out}");
        assert_eq!(status_mask(&out, "SigIgn"), ours & !sigpipe, "{out}");
    }

    /// The mask of `field` in a `/proc/PID/status` text.
    fn status_mask(status: &str, field: &str) -> u64 {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(":\t"))
            .unwrap_or_else(|| panic!("no {field} in {status}"));
        u64::from_str_radix(line.trim(), 16).expect("a hex mask")
    }

    #[test]
    fn a_program_that_does_not_exist_is_its_errno_and_reaped() {
        let mut spawner = Spawner::new().unwrap();
        let program = Program {
            argv: vec!["taskfarm-no-such-program-here".into()],
            env: Vec::new(),
            stdout: None,
            stderr: 2,
        };
        let e = spawner.spawn(&program).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    }
}
