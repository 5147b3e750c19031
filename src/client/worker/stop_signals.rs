//! Stop signals: the process-wide record of a stop, and the watcher thread
//! that hands every held task back (`held_task.rs` keeps them).
//!
//! A batch system ends a job with a signal (Slurm: SIGTERM at the time limit,
//! SIGKILL `KillWait` seconds later). Without help, the task a worker holds
//! stays `computing` on the server for ever. With [`stop_on_signals`]:
//! - the signal handler (installed through signal-hook, which chains to any
//!   handler the program installed before) does only async-signal-safe work:
//!   it records the signal in an atomic and writes a byte to signal-hook's
//!   self-pipe;
//! - [`StopMode::Exit`]: a watcher thread woken by that pipe hands every held
//!   task of the process back (`waiting`, percentage kept), whatever the
//!   program's threads are doing, then ends the process as the signal would
//!   have (default disposition restored, signal raised again);
//! - [`StopMode::Continue`]: nothing is sent by the library on its own; the
//!   worker's next call sees [`stop_requested`] and hands its task back.
//!
//! Every worker keeps its held task in a `Slot` listed in `held_task.rs`,
//! so that the watcher reaches the tasks of all workers, whichever thread
//! holds them.

use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use signal_hook::iterator::{Handle, Signals};
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

/// The signals installed so far and the watcher's handle to add more.
struct Installed {
    signals: Vec<c_int>,
    watcher: Handle,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

/// The process that installed the stop signals (and runs the watcher).
static INSTALLED_BY: AtomicI32 = AtomicI32::new(0);

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

/// Makes `signals` (empty: [`DEFAULT_STOP_SIGNALS`]) stop signals of the
/// process, with `mode`. Every signal is checked before anything is installed.
/// A later call adds its signals and sets the mode for all of them.
pub fn stop_on_signals(signals: &[c_int], mode: StopMode) -> Result<()> {
    let signals = if signals.is_empty() {
        DEFAULT_STOP_SIGNALS
    } else {
        signals
    };
    check_signals(signals)?;
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if installed.is_none() {
        let watcher = Signals::new(Vec::<c_int>::new())
            .map_err(|e| Error::invalid_argument(format!("cannot set up the stop watcher: {e}")))?;
        let handle = watcher.handle();
        std::thread::Builder::new()
            .name("taskfarm-stop".into())
            .spawn(move || watch(watcher))
            .map_err(|e| Error::invalid_argument(format!("cannot start the stop watcher: {e}")))?;
        // SAFETY: getpid cannot fail.
        INSTALLED_BY.store(unsafe { libc::getpid() }, Ordering::SeqCst);
        *installed = Some(Installed {
            signals: Vec::new(),
            watcher: handle,
        });
    }
    let installed = installed.as_mut().expect("set above");
    MODE.store(
        match mode {
            StopMode::Exit => 1,
            StopMode::Continue => 2,
        },
        Ordering::SeqCst,
    );
    for &signal in signals {
        if installed.signals.contains(&signal) {
            continue;
        }
        // SAFETY: the action does only async-signal-safe work: atomics,
        // getpid, and signal-hook's emulate_default_handler (sigaction, raise).
        unsafe {
            low_level::register(signal, move || {
                let _ = STOP_SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
                // A child made by fork() has no watcher thread (and its
                // workers are the parent's): there the signal acts as if no
                // stop signal were installed.
                if self::mode() == Some(StopMode::Exit)
                    && libc::getpid() != INSTALLED_BY.load(Ordering::SeqCst)
                {
                    let _ = low_level::emulate_default_handler(signal);
                }
            })
        }
        .map_err(|e| {
            Error::invalid_argument(format!("cannot catch {}: {e}", signal_name(signal)))
        })?;
        installed.watcher.add_signal(signal).map_err(|e| {
            Error::invalid_argument(format!("cannot watch {}: {e}", signal_name(signal)))
        })?;
        installed.signals.push(signal);
    }
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

/// The watcher thread: waits on signal-hook's pipe, acts on each stop signal.
fn watch(mut signals: Signals) {
    for signal in signals.forever() {
        let _ = STOP_SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        if mode() == Some(StopMode::Exit) {
            held_task::hand_back_all(&signal_name(signal));
            end_process(signal);
        }
    }
}

/// How long a worker's call after a stop waits for the watcher to end the
/// process in [`StopMode::Exit`] before it hands back its task itself.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// In [`StopMode::Exit`] after a stop: waits for the watcher to end the
/// process (it hands every task back first), at most `EXIT_WAIT`; returns at
/// once in the other modes.
pub fn await_exit() {
    if mode() != Some(StopMode::Exit) {
        return;
    }
    let until = Instant::now() + EXIT_WAIT;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
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
        assert_eq!(mode(), None);
    }
}
