//! The settings a command talks to the server with: those of `login`, with
//! the tool's own retry budget and a line on stderr for every retry.
//!
//! Workers keep the library's budget (`TASKFARM_RETRIES`, default 10 retries,
//! about 4.5 minutes): a cluster job outlives a server restart. A person at
//! a prompt wants an answer: the one-shot commands retry
//! [`INTERACTIVE_RETRIES`] times (about 4 s) unless `TASKFARM_RETRIES` says
//! otherwise, and say what they are waiting for. `watch`, which follows a run
//! for hours, opens the run with that short budget (a wrong URL fails fast)
//! and then polls with the workers' budget, saying "connection lost,
//! retrying" while the server is away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use taskfarm_worker::internal::http::retry::{RetryEvent, RetryObserver};
use taskfarm_worker::internal::settings::{DEFAULT_RETRIES, VARIABLES};
use taskfarm_worker::internal::Settings;

use crate::cli::GlobalArgs;
use crate::failure::{one_line, Failure};
use crate::login;

/// Retries of the one-shot commands when `TASKFARM_RETRIES` is not set: no
/// wait before the first, then 0.6, 1.2 and 2.4 s (backoff 0.3 s).
pub const INTERACTIVE_RETRIES: u32 = 4;

/// Set once `watch` follows the run: a retry is then a lost connection.
static WATCHING: AtomicBool = AtomicBool::new(false);

/// While `watch` has lost the connection: since when (the first retry).
static LOST_SINCE: Mutex<Option<Instant>> = Mutex::new(None);

/// The settings for a command: the token or credentials and URL from
/// `login`, the interactive retry budget, and the retry messages on stderr.
pub fn settings(args: &GlobalArgs) -> Result<Settings, Failure> {
    interactive(args, login::settings)
}

/// As [`settings`], always with the user name and password (`taskfarm
/// token` fetches a new token and ignores `TASKFARM_TOKEN`).
pub fn credentials(args: &GlobalArgs) -> Result<Settings, Failure> {
    interactive(args, login::credentials)
}

fn interactive(
    args: &GlobalArgs,
    login: fn(&GlobalArgs) -> Result<Settings, Failure>,
) -> Result<Settings, Failure> {
    check_environment()?;
    let mut settings = login(args)?;
    if !retries_set() {
        settings.retries = INTERACTIVE_RETRIES;
    }
    settings.on_retry = Some(RetryObserver::new(|event| {
        if WATCHING.load(Ordering::SeqCst) {
            let mut lost = LOST_SINCE.lock().unwrap_or_else(|e| e.into_inner());
            lost.get_or_insert_with(Instant::now);
        }
        eprintln!("taskfarm: {}", one_line(&retry_line(event)));
    }));
    Ok(settings)
}

/// The retries `watch` polls with once the run is open: the workers' budget
/// unless `TASKFARM_RETRIES` is set (then it was applied already).
pub fn start_watching(settings: &Settings) -> u32 {
    WATCHING.store(true, Ordering::SeqCst);
    if retries_set() {
        settings.retries
    } else {
        DEFAULT_RETRIES
    }
}

/// After an answer: how long `watch` had lost the connection, when it had
/// (once per outage).
pub fn connection_back() -> Option<Duration> {
    let mut lost = LOST_SINCE.lock().unwrap_or_else(|e| e.into_inner());
    lost.take().map(|since| since.elapsed())
}

fn retries_set() -> bool {
    std::env::var_os("TASKFARM_RETRIES").is_some()
}

/// What a retry line says.
pub fn retry_line(event: &RetryEvent<'_>) -> String {
    let what = if WATCHING.load(Ordering::SeqCst) {
        "connection lost, retrying".to_owned()
    } else {
        format!("cannot reach {}", event.base_url)
    };
    format!(
        "{what} ({}: {}): retry {} of {} in {:.1} s",
        event.request,
        event.reason,
        event.retry,
        event.retries,
        event.wait.as_secs_f64()
    )
}

/// The library's variables must be UTF-8: say so for the one that is not,
/// before anything reads it as missing ("no user name").
fn check_environment() -> Result<(), Failure> {
    for name in VARIABLES {
        if std::env::var_os(name).is_some_and(|v| v.to_str().is_none()) {
            return Err(Failure::usage(format!(
                "the environment variable {name} is not valid UTF-8"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retry_lines_say_what_is_retried_and_when() {
        let event = RetryEvent {
            request: "GET token",
            base_url: "http://127.0.0.1:1/api/",
            reason: "cannot connect (Connection refused)",
            retry: 3,
            retries: 4,
            wait: Duration::from_millis(1200),
        };
        assert_eq!(
            retry_line(&event),
            "cannot reach http://127.0.0.1:1/api/ (GET token: cannot connect \
             (Connection refused)): retry 3 of 4 in 1.2 s"
        );
    }
}
