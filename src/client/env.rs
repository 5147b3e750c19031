//! The environment, read in one place: the name of every `TASKFARM_*`
//! variable the library reads, and the functions that read them (and the
//! launcher's variables: Slurm ids, MPI rank, `SSL_CERT_FILE`). README's
//! "Configuration by environment" lists them with their defaults.
//!
//! Who reads what: `settings.rs` the connection's ten ([`SETTINGS`]), when a
//! handle is made; `worker/worker.rs` [`DEADLINE`] and [`TASK_SECONDS`] and
//! `worker/journal.rs` [`JOURNAL`] and [`JOURNAL_HEARTBEAT`], when a worker
//! is made; `worker/attempts.rs` [`MAX_ATTEMPTS`], when a task fails;
//! `worker/stop_signals.rs` [`STOP_SIGNALS`] and [`STOP_BUDGET`], when the
//! first handle of the process is made; `worker/start_spread.rs`
//! [`START_SPREAD`], when the first run is opened; `http/retry.rs`
//! [`RETRY_JITTER`], before each retry's wait.

use std::ffi::OsString;

use super::error::{Error, Result};

/// The server's base URL.
pub const URL: &str = "TASKFARM_URL";
/// The user name.
pub const USER: &str = "TASKFARM_USER";
/// The user's password.
pub const PASSWORD: &str = "TASKFARM_PASSWORD";
/// A token to start with instead of the password.
pub const TOKEN: &str = "TASKFARM_TOKEN";
/// The timeout of one attempt, in seconds.
pub const TIMEOUT: &str = "TASKFARM_TIMEOUT";
/// The retries after the first attempt.
pub const RETRIES: &str = "TASKFARM_RETRIES";
/// The backoff factor, in seconds.
pub const BACKOFF: &str = "TASKFARM_BACKOFF";
/// A PEM bundle of extra certificate authorities.
pub const CA_FILE: &str = "TASKFARM_CA_FILE";
/// `debug`: one line per request on stderr; `quiet` (or `off`): not even the
/// line that says a series of retries started.
pub const LOG: &str = "TASKFARM_LOG";
/// At most one progress request per worker per this many seconds.
pub const UPDATE_INTERVAL: &str = "TASKFARM_UPDATE_INTERVAL";
/// A worker's deadline, Unix time in seconds.
pub const DEADLINE: &str = "TASKFARM_DEADLINE";
/// The seconds a task takes, before a worker completed one.
pub const TASK_SECONDS: &str = "TASKFARM_TASK_SECONDS";
/// The directory of the worker journals.
pub const JOURNAL: &str = "TASKFARM_JOURNAL";
/// The heartbeat interval of the journals, in seconds.
pub const JOURNAL_HEARTBEAT: &str = "TASKFARM_JOURNAL_HEARTBEAT";
/// The signals that become stop signals when the first handle is made.
pub const STOP_SIGNALS: &str = "TASKFARM_STOP_SIGNALS";
/// The failed attempts after which a task is set aside.
pub const MAX_ATTEMPTS: &str = "TASKFARM_MAX_ATTEMPTS";
/// The stop's budget, in seconds: every held task handed back and the
/// process ended within it.
pub const STOP_BUDGET: &str = "TASKFARM_STOP_BUDGET";
/// The window in seconds over which the workers of a job spread their
/// first requests (`worker/start_spread.rs`).
pub const START_SPREAD: &str = "TASKFARM_START_SPREAD";
/// `none`: retry waits without jitter (`http/retry.rs`).
pub const RETRY_JITTER: &str = "TASKFARM_RETRY_JITTER";

/// The variables of a connection's settings, read by `Settings::resolve`.
pub const SETTINGS: [&str; 10] = [
    URL,
    USER,
    PASSWORD,
    TOKEN,
    TIMEOUT,
    RETRIES,
    BACKOFF,
    CA_FILE,
    LOG,
    UPDATE_INTERVAL,
];

/// The variable `name`; `None` when it is not set or not valid UTF-8.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The variable `name` as the OS gives it (a path need not be UTF-8).
pub fn var_os(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Whether `TASKFARM_LOG` asks for debug lines on stderr.
pub fn log_debug() -> bool {
    var(LOG).is_some_and(|v| log_is_debug(&v))
}

/// Whether a value of `TASKFARM_LOG` asks for debug lines: `debug`.
pub fn log_is_debug(value: &str) -> bool {
    value.eq_ignore_ascii_case("debug")
}

/// Whether a value of `TASKFARM_LOG` asks for silence: `quiet` or `off` (no
/// line when a series of retries starts).
pub fn log_is_quiet(value: &str) -> bool {
    value.eq_ignore_ascii_case("quiet") || value.eq_ignore_ascii_case("off")
}

/// Refuses a variable of `names` that is set but not valid UTF-8, naming it.
pub fn check_unicode(names: &[&str]) -> Result<()> {
    for name in names {
        if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
            return Err(Error::invalid_argument(format!(
                "the environment variable {name} is not valid UTF-8"
            )));
        }
    }
    Ok(())
}
