//! A REAL taskfarm 0.4.0 server for integration tests.
//!
//! Thin Rust side of the project's harness: it runs `tests/harness/server.sh`
//! (which builds the Python venv on first use and runs
//! `tests/harness/taskfarm_server.py`) and parses the `server.json` line it
//! prints.
//!
//! ```ignore
//! mod common;
//! use common::server::TaskfarmServer;
//!
//! let server = TaskfarmServer::start();      // own server, own database
//! let shared = TaskfarmServer::shared();     // one per test binary
//! // server.url == "http://127.0.0.1:PORT/api/", server.user, server.password
//! let pg = TaskfarmServer::start_with(Db::Postgresql); // always PostgreSQL
//! ```
//!
//! Database mode: `start()`, `start_watching()` and `shared()` use
//! [`Db::from_env`]: the environment variable `TASKFARM_TEST_DB` (`sqlite`,
//! the default, or `postgresql`), so the whole suite can run against either.
//! `sqlite` is the Flask development server on an SQLite file; `postgresql`
//! is the production setup: a fresh PostgreSQL cluster in the state directory
//! and `gunicorn -w 4` (see tests/harness/taskfarm_server.py). Tests that need
//! one mode whatever the variable says use [`TaskfarmServer::start_with`].
//!
//! Every server is started with `--watch-pid <this test process>`: a watchdog
//! stops it when the test process is gone, even after a crash or SIGKILL.
//! Each server's state (database, `server.json`, `server.log`) lives
//! in a fresh directory under `target/tmp/`; it is removed when the
//! [`TaskfarmServer`] is dropped, except while panicking (a failed test keeps
//! its `server.log`) or when `TASKFARM_KEEP_STATE` is set. The shared
//! server's directory and those kept by failed tests stay until the next test
//! process starts a server (it removes those of processes that are gone).
//!
//! Failing to start a server panics with the harness's full output: a test
//! never skips because the server is missing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::harness_script::HarnessScript;

/// The database (and so the server) a [`TaskfarmServer`] runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    /// SQLite file, Flask development server (one process, no row locks).
    Sqlite,
    /// PostgreSQL cluster, gunicorn with 4 sync workers (production).
    Postgresql,
}

/// The environment variable that selects the default [`Db`].
pub const DB_ENV: &str = "TASKFARM_TEST_DB";

impl Db {
    /// `TASKFARM_TEST_DB`: unset or empty is [`Db::Sqlite`]; `sqlite` or
    /// `postgresql` (any case). Panics on any other value: a typo must not
    /// quietly test the other mode.
    pub fn from_env() -> Db {
        let raw = std::env::var(DB_ENV).unwrap_or_default();
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "sqlite" => Db::Sqlite,
            "postgresql" => Db::Postgresql,
            _ => panic!("{DB_ENV}={raw:?}: must be `sqlite` or `postgresql` (unset: sqlite)"),
        }
    }

    /// The harness's name of the mode (`--db NAME`, `"db"` in server.json).
    pub fn as_str(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgresql => "postgresql",
        }
    }
}

/// A running taskfarm server (see the module documentation).
#[derive(Debug)]
pub struct TaskfarmServer {
    /// Base URL of the API, `http://127.0.0.1:PORT/api/` (ends with `/`).
    pub url: String,
    /// User name for `GET token`.
    pub user: String,
    /// Password of `user`.
    pub password: String,
    /// Directory of the database, `server.json` and `server.log`.
    pub state_dir: PathBuf,
    /// Process group leader of the server when it was started. A
    /// [`restart`](Self::restart) starts a new process: use
    /// [`current_pid`](Self::current_pid) after one.
    pub pid: i32,
    /// The database mode it runs with.
    pub db: Db,
}

static SHARED: OnceLock<TaskfarmServer> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The harness's Python venv (`TASKFARM_VENV`, else `.venv` of the tree),
/// with the taskfarm server and the reference Python client; `server.sh`
/// builds it when it starts the first server.
pub fn venv() -> PathBuf {
    std::env::var_os("TASKFARM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
}

/// `tests/harness/server.sh` of this repository.
const SERVER_SH: HarnessScript = HarnessScript {
    file: "server.sh",
    harness: "taskfarm harness",
};

const STATE_DIR_PREFIX: &str = "taskfarm-server-";

/// Removes the state directories left by test processes that are gone (the
/// shared server's, and those kept by failed tests). Once per process.
fn remove_stale_state_dirs(base: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TASKFARM_KEEP_STATE").is_some() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(base) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(STATE_DIR_PREFIX)) else {
                continue;
            };
            let owner = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
            if owner.is_some_and(|pid| !pid_alive(pid)) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// A fresh, unique state directory under `target/tmp/` (cargo's temporary
/// directory for integration tests; `std::env::temp_dir()` otherwise), named
/// `taskfarm-server-<test pid>-<n>-<nanos>`.
fn new_state_dir() -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    remove_stale_state_dirs(&base);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.join(format!(
        "{STATE_DIR_PREFIX}{}-{}-{nanos:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// True while process `pid` exists and is not a zombie. (PID 1 of a
/// container may never reap the orphaned server, and a zombie still answers
/// `kill(pid, 0)`.)
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "pid (comm) S ...": the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X" | "x") | None)
        }
        Err(_) if Path::new("/proc/self").exists() => false,
        // SAFETY: kill with signal 0 only checks for the process.
        Err(_) => unsafe { libc::kill(pid, 0) == 0 },
    }
}

/// Parses the one-line JSON that `server.sh start|restart` prints.
fn parse_info(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("taskfarm harness printed no JSON line:\n{text}"));
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("taskfarm harness printed bad JSON ({e}):\n{text}"))
}

fn str_field(info: &serde_json::Value, key: &str) -> String {
    info[key]
        .as_str()
        .unwrap_or_else(|| panic!("taskfarm harness JSON has no string {key:?}: {info}"))
        .to_owned()
}

fn pid_field(info: &serde_json::Value) -> i32 {
    info["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or_else(|| panic!("taskfarm harness JSON has no pid: {info}"))
}

/// `atexit` handler that stops the shared server. Never unwinds.
extern "C" fn stop_shared_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(server) = SHARED.get() {
            let _ = SERVER_SH.run(&["stop", &server.state_dir.to_string_lossy()]);
        }
    });
}

impl TaskfarmServer {
    /// Starts a fresh server (own state directory and database), watched by
    /// this test process, in the mode of `TASKFARM_TEST_DB` ([`Db::from_env`]).
    /// Panics with the harness's output on failure.
    pub fn start() -> TaskfarmServer {
        Self::start_with(Db::from_env())
    }

    /// Like [`start`](Self::start), but always with database `db`.
    pub fn start_with(db: Db) -> TaskfarmServer {
        Self::start_watching_with(db, std::process::id() as i32)
    }

    /// Like [`start`](Self::start), but the server stops by itself when
    /// process `watch_pid` (instead of this test process) is gone.
    pub fn start_watching(watch_pid: i32) -> TaskfarmServer {
        Self::start_watching_with(Db::from_env(), watch_pid)
    }

    /// [`start_watching`](Self::start_watching) with database `db`.
    pub fn start_watching_with(db: Db, watch_pid: i32) -> TaskfarmServer {
        let state_dir = new_state_dir();
        let dir = state_dir.to_string_lossy().into_owned();
        let watch = watch_pid.to_string();
        let args = [
            "start",
            dir.as_str(),
            "--db",
            db.as_str(),
            "--watch-pid",
            watch.as_str(),
        ];
        let out = SERVER_SH.run(&args);
        if !out.status.success() {
            panic!("{}", SERVER_SH.describe_failure(&args.join(" "), &out));
        }
        let info = parse_info(&out.stdout);
        assert_eq!(
            info["db"].as_str(),
            Some(db.as_str()),
            "the harness started another database mode: {info}"
        );
        TaskfarmServer {
            url: str_field(&info, "url"),
            user: str_field(&info, "user"),
            password: str_field(&info, "password"),
            state_dir,
            pid: pid_field(&info),
            db,
        }
    }

    /// One server shared by all tests of this test binary, started on first
    /// use and stopped when the process exits (`atexit`; the watchdog covers
    /// crashes). Tests using it must not stop or restart it.
    pub fn shared() -> &'static TaskfarmServer {
        SHARED.get_or_init(|| {
            let server = TaskfarmServer::start();
            // SAFETY: registers a plain `extern "C" fn()` that never unwinds.
            unsafe {
                libc::atexit(stop_shared_at_exit);
            }
            server
        })
    }

    /// Stops the server (SIGTERM to its process group, SIGKILL after 5 s),
    /// keeping its database for a [`restart`](Self::restart) (`stop
    /// --keep-data`: a PostgreSQL cluster outside the state directory stays;
    /// dropping the server removes it). Does nothing when it is already
    /// stopped. Panics when it cannot.
    pub fn stop(&self) {
        let dir = self.state_dir.to_string_lossy();
        let out = SERVER_SH.run(&["stop", &dir, "--keep-data"]);
        if !out.status.success() {
            panic!(
                "{}",
                SERVER_SH.describe_failure(&format!("stop {dir} --keep-data"), &out)
            );
        }
    }

    /// Stops the server and starts it again on the same port, with the same
    /// database and user; `secret_key` replaces the token key (tokens from
    /// before then get `500`), `None` keeps the old key. The server gets a
    /// new PID: see [`current_pid`](Self::current_pid).
    pub fn restart(&self, secret_key: Option<&str>) {
        let dir = self.state_dir.to_string_lossy().into_owned();
        let mut args = vec!["restart", dir.as_str()];
        if let Some(key) = secret_key {
            args.extend(["--secret-key", key]);
        }
        let out = SERVER_SH.run(&args);
        if !out.status.success() {
            panic!("{}", SERVER_SH.describe_failure(&args.join(" "), &out));
        }
        let info = parse_info(&out.stdout);
        assert_eq!(
            str_field(&info, "url"),
            self.url,
            "restart moved the server"
        );
    }

    /// Settings for this server's user, authenticated by password, with the
    /// library's default timeout and retries.
    pub fn settings(&self) -> taskfarm_worker::Settings {
        taskfarm_worker::Settings::resolve(Some(&self.user), Some(&self.password), Some(&self.url))
            .unwrap()
    }

    /// `TASKFARM_URL`, `TASKFARM_USER` and `TASKFARM_PASSWORD` of this
    /// server, for `Command::envs` of a worker process.
    pub fn credentials_env(&self) -> [(&'static str, &str); 3] {
        [
            ("TASKFARM_URL", &self.url),
            ("TASKFARM_USER", &self.user),
            ("TASKFARM_PASSWORD", &self.password),
        ]
    }

    /// The current `server.json` of the server (changes with every restart).
    pub fn info(&self) -> serde_json::Value {
        let path = self.state_dir.join("server.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
    }

    /// The PID of the running server process group leader, as recorded in
    /// `server.json` (changes with every restart).
    pub fn current_pid(&self) -> i32 {
        pid_field(&self.info())
    }

    /// The PID of the PostgreSQL postmaster ([`Db::Postgresql`] only), as
    /// recorded in `server.json` (changes with every restart).
    pub fn postgres_pid(&self) -> Option<i32> {
        self.info()["postgresql"]["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
    }

    /// True while the server process is running.
    pub fn is_running(&self) -> bool {
        pid_alive(self.current_pid())
    }

    /// Asserts that the server reported no error: no traceback, no
    /// `[ERROR]` or `[CRITICAL]` line and no 5xx answer in its log.
    pub fn assert_no_server_errors(&self) {
        let log = std::fs::read_to_string(self.state_dir.join("server.log")).unwrap_or_default();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("Traceback")
                    || l.contains("[ERROR]")
                    || l.contains("[CRITICAL]")
                    || l.split("\" ")
                        .nth(1)
                        .is_some_and(|rest| rest.starts_with('5'))
            })
            .take(20)
            .collect();
        assert!(bad.is_empty(), "server errors:\n{}", bad.join("\n"));
    }

    /// The last `lines` lines of the server's log (for failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.state_dir.join("server.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for TaskfarmServer {
    fn drop(&mut self) {
        SERVER_SH.stop_and_remove(&self.state_dir);
    }
}
