//! Stop signals: the process-wide record of a stop, and the watcher thread
//! that hands every held task back (`held_task.rs` keeps them).
//!
//! A batch system ends a job with a signal (Slurm: SIGTERM at the time limit,
//! SIGKILL `KillWait` seconds later, 30 s by default). Without help, the task
//! a worker holds stays `computing` on the server for ever. With
//! [`stop_on_signals`]:
//! - the signal handler (installed through signal-hook-registry, which chains
//!   to any handler the program installed before) does only
//!   async-signal-safe work: it records the signal in an atomic and writes a
//!   byte to this process's own pipe, which wakes the watcher thread;
//! - [`StopMode::Exit`]: the watcher hands every held task of the process
//!   back, all at once, each after the request of its worker in flight (a
//!   `done` is never followed by a `waiting`), whatever the program's threads
//!   are doing; then it ends the process as the signal would have (default
//!   disposition restored, signal raised again). All of it within the stop's
//!   budget ([`DEFAULT_STOP_BUDGET`], `TASKFARM_STOP_BUDGET`), short of
//!   Slurm's KillWait; what is still in flight then is left to the journal;
//! - [`StopMode::Continue`]: nothing is sent by the library on its own; the
//!   worker's next call sees [`stop_requested`] and hands its task back;
//! - in both modes, a second stop signal, once the watcher has seen the
//!   first, ends the process at once with that signal's default action (an
//!   impatient Ctrl-C, a launcher that gave up waiting);
//! - a signal that is ignored (`SIG_IGN`) when it would be installed, as
//!   `nohup` and a shell's `&` leave SIGHUP and SIGINT, stays ignored, as
//!   shells and CPython leave it.
//!
//! `fork()`: the handlers are inherited, the watcher thread is not. In a
//! child that has not called [`stop_on_signals`] itself, a stop signal acts
//! as if none were installed in `Exit` mode (its default action), and is
//! only recorded in `Continue` mode; a child that calls it gets its own pipe
//! and watcher thread, for its own workers.
//!
//! Every worker keeps its held task in a `Slot` listed in `held_task.rs`,
//! so that the watcher reaches the tasks of all workers, whichever thread
//! holds them.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use signal_hook::low_level;

use super::held_task;
use crate::client::env;
use crate::client::error::{Error, ErrorKind, Result};

/// What the library does when a stop signal arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Hand every held task back at once, then end the process as the signal would.
    Exit,
    /// Only record the stop; each worker hands its task back at its next call.
    Continue,
}

/// The signals that may be stop signals: those whose default action ends the
/// process and that a program may catch. KILL and STOP cannot be caught; the
/// crash signals (SEGV, BUS, ILL, FPE, ABRT, TRAP, SYS) come from the program's
/// own thread and must not be deferred to a watcher; signals whose default is
/// to be ignored or to suspend the process (CHLD, CONT, TSTP, ...) do not ask
/// a process to end.
const STOP_SIGNALS: &[(&str, c_int)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("TERM", libc::SIGTERM),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("ALRM", libc::SIGALRM),
    ("XCPU", libc::SIGXCPU),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
];

/// The set used when the caller names none: the signals that ask a process to
/// end (Slurm's TERM at the time limit, Ctrl-C, a closed terminal, a CPU limit).
pub const DEFAULT_STOP_SIGNALS: &[c_int] =
    &[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGXCPU];

/// The stop signal caught, 0 while none was. Written by the signal handler.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The mode asked for: 0 none installed, else [`StopMode`] as 1 (exit) or 2 (continue).
static MODE: AtomicU8 = AtomicU8::new(0);

/// The stop's budget when `TASKFARM_STOP_BUDGET` is not set: the hand-back
/// of every held task and the process's end, well within Slurm's default
/// KillWait (30 s) before SIGKILL.
pub const DEFAULT_STOP_BUDGET: Duration = Duration::from_secs(20);

/// The longest budget `TASKFARM_STOP_BUDGET` may give, in seconds.
const MAX_STOP_BUDGET_SECS: f64 = 3600.0;

/// What this process installed: the signals caught, those left ignored, and
/// whose they are (a fork()ed child sees its parent's until it installs its own).
struct Installed {
    pid: i32,
    signals: Vec<c_int>,
    left_ignored: Vec<c_int>,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

/// The process whose watcher thread reads [`WAKE_FD`]'s pipe.
static WATCHER_PID: AtomicI32 = AtomicI32::new(0);

/// The write end of the watcher's pipe (-1: none). The handler writes one
/// byte to it at the first stop signal.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// The watcher has seen the first stop signal: a second one ends the process.
static SEEN: AtomicBool = AtomicBool::new(false);

/// The stop's budget in milliseconds.
static BUDGET_MS: AtomicU64 = AtomicU64::new(20_000);

fn getpid() -> i32 {
    // SAFETY: getpid cannot fail and is async-signal-safe.
    unsafe { libc::getpid() }
}

/// The number of the stop signal caught, 0 if none.
pub fn stop_requested() -> c_int {
    STOP_SIGNAL.load(Ordering::SeqCst)
}

/// The mode installed, if any.
pub fn mode() -> Option<StopMode> {
    match MODE.load(Ordering::SeqCst) {
        1 => Some(StopMode::Exit),
        2 => Some(StopMode::Continue),
        _ => None,
    }
}

/// The error a worker answers with once a stop was requested, `None` before.
pub fn stopped() -> Option<Error> {
    (stop_requested() != 0).then(stopped_error)
}

/// The error a worker answers with once a stop was requested.
pub fn stopped_error() -> Error {
    let signal = stop_requested();
    Error::new(
        ErrorKind::Stopped,
        format!(
            "stopped: {} was caught, no task is taken after it",
            signal_name(signal)
        ),
    )
}

/// `SIGTERM` for 15; the number itself for a signal without a name here.
pub fn signal_name(signal: c_int) -> String {
    low_level::signal_name(signal).map_or_else(|| format!("signal {signal}"), str::to_owned)
}

/// Checks that every signal may be a stop signal.
pub fn check_signals(signals: &[c_int]) -> Result<()> {
    for &signal in signals {
        if STOP_SIGNALS.iter().any(|&(_, s)| s == signal) {
            continue;
        }
        return Err(Error::invalid_argument(match signal {
            libc::SIGKILL | libc::SIGSTOP => format!(
                "{} cannot be caught, so it cannot be a stop signal",
                signal_name(signal)
            ),
            _ => format!(
                "{} is not a stop signal; the stop signals are {}",
                signal_name(signal),
                stop_signal_names()
            ),
        }));
    }
    Ok(())
}

fn stop_signal_names() -> String {
    STOP_SIGNALS
        .iter()
        .map(|&(name, _)| name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `TERM,USR1,...` (names without `SIG`; `SIGTERM` and lower case are
/// accepted too) into signal numbers, each checked by [`check_signals`].
pub fn parse_signal_list(text: &str) -> Result<Vec<c_int>> {
    let mut signals = Vec::new();
    for item in text.split(',') {
        let name = item.trim().to_ascii_uppercase();
        let bare = name.strip_prefix("SIG").unwrap_or(&name);
        if bare.is_empty() {
            return Err(Error::invalid_argument(format!(
                "{text:?} has an empty signal name; give names such as TERM,USR1"
            )));
        }
        let signal = match STOP_SIGNALS.iter().find(|&&(n, _)| n == bare) {
            Some(&(_, signal)) => signal,
            None => match bare {
                "KILL" => libc::SIGKILL,
                "STOP" => libc::SIGSTOP,
                _ => {
                    return Err(Error::invalid_argument(format!(
                        "{:?} is not a stop signal; the stop signals are {}",
                        item.trim(),
                        stop_signal_names()
                    )))
                }
            },
        };
        check_signals(&[signal])?;
        if !signals.contains(&signal) {
            signals.push(signal);
        }
    }
    Ok(signals)
}

/// The stop's budget: `TASKFARM_STOP_BUDGET` seconds (more than 0, at most
/// an hour), else [`DEFAULT_STOP_BUDGET`].
pub fn stop_budget_from_env() -> Result<Duration> {
    match env::var(env::STOP_BUDGET) {
        None => Ok(DEFAULT_STOP_BUDGET),
        Some(value) => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_STOP_BUDGET_SECS)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                Error::invalid_argument(format!(
                    "{}={value:?} is not a number of seconds in (0, {MAX_STOP_BUDGET_SECS}]",
                    env::STOP_BUDGET
                ))
            }),
    }
}

/// Makes `signals` (empty: [`DEFAULT_STOP_SIGNALS`]) stop signals of the
/// process, with `mode`. Every signal is checked before anything is installed.
/// A later call adds its signals and sets the mode for all of them. A signal
/// ignored now (`SIG_IGN`) is left ignored. In a fork()ed child, the first
/// call sets up the child's own watcher.
pub fn stop_on_signals(signals: &[c_int], mode: StopMode) -> Result<()> {
    let signals = if signals.is_empty() {
        DEFAULT_STOP_SIGNALS
    } else {
        signals
    };
    check_signals(signals)?;
    let budget = stop_budget_from_env()?;
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    let pid = getpid();
    if installed.as_ref().is_none_or(|i| i.pid != pid) {
        start_watcher()?;
        // A child keeps the handlers its parent installed (inherited).
        let (signals, left_ignored) = installed
            .take()
            .map(|i| (i.signals, i.left_ignored))
            .unwrap_or_default();
        *installed = Some(Installed {
            pid,
            signals,
            left_ignored,
        });
    }
    BUDGET_MS.store(budget.as_millis() as u64, Ordering::SeqCst);
    let installed = installed.as_mut().expect("set above");
    MODE.store(
        match mode {
            StopMode::Exit => 1,
            StopMode::Continue => 2,
        },
        Ordering::SeqCst,
    );
    for &signal in signals {
        if installed.signals.contains(&signal) || installed.left_ignored.contains(&signal) {
            continue;
        }
        if is_ignored(signal) {
            installed.left_ignored.push(signal);
            continue;
        }
        // SAFETY: the action does only async-signal-safe work: atomics,
        // getpid, write(2), and signal-hook's emulate_default_handler
        // (sigaction, raise).
        unsafe { low_level::register(signal, move || on_signal(signal)) }.map_err(|e| {
            Error::invalid_argument(format!("cannot catch {}: {e}", signal_name(signal)))
        })?;
        installed.signals.push(signal);
    }
    Ok(())
}

/// Whether `signal`'s disposition is `SIG_IGN` now.
fn is_ignored(signal: c_int) -> bool {
    // SAFETY: reads the disposition into a zeroed struct; changes nothing.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// The handler's work (async-signal-safe only): the first stop signal is
/// recorded and wakes this process's watcher; a second one, once the watcher
/// has seen the first, ends the process with its default action. In a
/// fork()ed child without a watcher of its own, `Exit` mode acts as if no
/// stop signal were installed.
fn on_signal(signal: c_int) {
    let first = STOP_SIGNAL
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    if getpid() != WATCHER_PID.load(Ordering::SeqCst) {
        if mode() == Some(StopMode::Exit) {
            let _ = low_level::emulate_default_handler(signal);
        }
        return;
    }
    if !first {
        if SEEN.load(Ordering::SeqCst) {
            let _ = low_level::emulate_default_handler(signal);
        }
        return;
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) of one byte from a static buffer.
        let _ = unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Makes this process's pipe and watcher thread.
fn start_watcher() -> Result<()> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 fills the two descriptors; close-on-exec.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::invalid_argument(format!(
            "cannot set up the stop watcher: {}",
            std::io::Error::last_os_error()
        )));
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    let spawned = std::thread::Builder::new()
        .name("taskfarm-stop".into())
        .spawn(move || watch(read_end));
    if let Err(e) = spawned {
        // SAFETY: closes the two descriptors made above, used by nobody.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
        return Err(Error::invalid_argument(format!(
            "cannot start the stop watcher: {e}"
        )));
    }
    SEEN.store(false, Ordering::SeqCst);
    WAKE_FD.store(write_end, Ordering::SeqCst);
    WATCHER_PID.store(getpid(), Ordering::SeqCst);
    Ok(())
}

/// `TASKFARM_STOP_SIGNALS`, read once, when the first handle of the process is
/// made: those signals become stop signals with [`StopMode::Exit`]. Every later
/// call returns the same outcome (a bad value fails every handle).
pub fn from_environment() -> Result<()> {
    static DONE: OnceLock<Result<()>> = OnceLock::new();
    DONE.get_or_init(|| match env::var(env::STOP_SIGNALS) {
        Some(value) if !value.trim().is_empty() => parse_signal_list(&value)
            .and_then(|signals| stop_on_signals(&signals, StopMode::Exit))
            .map_err(|e| e.context(&format!("TASKFARM_STOP_SIGNALS={value:?}"))),
        _ => Ok(()),
    })
    .clone()
}

/// The watcher thread: waits on its pipe for the first stop signal, then
/// (in `Exit` mode) hands every held task back within the budget and ends
/// the process.
fn watch(read_end: c_int) {
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: reads into a buffer we own from the pipe made for us.
        let read = unsafe { libc::read(read_end, byte.as_mut_ptr().cast(), 1) };
        if read == 1 {
            break;
        }
        if read == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
    SEEN.store(true, Ordering::SeqCst);
    let signal = stop_requested();
    if mode() == Some(StopMode::Exit) {
        let budget = Duration::from_millis(BUDGET_MS.load(Ordering::SeqCst));
        held_task::hand_back_all(&signal_name(signal), Instant::now() + budget);
        end_process(signal);
    }
}

/// In [`StopMode::Exit`] after a stop: the watcher hands every task back and
/// ends the process within the budget; a call of the program that would act
/// on a task now waits for that instead. Returns at once in the other modes.
pub fn await_exit() {
    if mode() != Some(StopMode::Exit) || stop_requested() == 0 {
        return;
    }
    eprintln!(
        "taskfarm: {}: the stop watcher is handing every task back: this call waits for the process to end",
        signal_name(stop_requested())
    );
    loop {
        std::thread::park();
    }
}

/// Ends the process as `signal` would have: default disposition, raised again.
fn end_process(signal: c_int) -> ! {
    let _ = low_level::emulate_default_handler(signal);
    // Only reached if the signal did not end the process (it is blocked or
    // ignored in a way we cannot undo): end with the status a shell shows.
    low_level::exit(128 + signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_lists_parse_names_with_or_without_sig() {
        assert_eq!(
            parse_signal_list("TERM,usr1, SIGHUP,TERM").unwrap(),
            vec![libc::SIGTERM, libc::SIGUSR1, libc::SIGHUP]
        );
    }

    #[test]
    fn uncatchable_unknown_and_unsuitable_signals_are_refused() {
        for (list, expected) in [
            ("TERM,KILL", "SIGKILL cannot be caught"),
            ("STOP", "SIGSTOP cannot be caught"),
            ("TERM,BOGUS", "\"BOGUS\" is not a stop signal"),
            ("CHLD", "\"CHLD\" is not a stop signal"),
            ("TERM,", "empty signal name"),
            ("", "empty signal name"),
        ] {
            let error = parse_signal_list(list).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidArgument);
            assert!(
                error.message().contains(expected),
                "{list}: {}",
                error.message()
            );
        }
        let error = check_signals(&[libc::SIGTERM, libc::SIGSEGV]).unwrap_err();
        assert!(
            error.message().contains("SIGSEGV is not a stop signal"),
            "{}",
            error.message()
        );
        assert!(check_signals(&[libc::SIGKILL])
            .unwrap_err()
            .message()
            .contains("cannot be caught"));
        assert!(check_signals(&[0, 1000]).is_err());
        assert!(check_signals(DEFAULT_STOP_SIGNALS).is_ok());
    }

    #[test]
    fn a_refused_list_installs_nothing() {
        // The unit tests of this crate never install a handler, so nothing
        // may be installed after a refused call.
        assert!(stop_on_signals(&[libc::SIGUSR2, libc::SIGKILL], StopMode::Continue).is_err());
        assert!(INSTALLED.lock().unwrap().is_none());
        assert_eq!(WAKE_FD.load(Ordering::SeqCst), -1);
        assert_eq!(mode(), None);
    }
}
