//! A REAL single-node Grid Engine cell for integration tests.
//!
//! Thin Rust side of `tests/harness/gridengine.sh` (and
//! `gridengine_cluster.py`, which documents the cell): Debian's Son of Grid
//! Engine 8.1.9, a private `SGE_ROOT` and cell in a state directory,
//! sge_qmaster and sge_execd on free ports, one queue `test.q`, started and
//! stopped by PID, and nothing left running afterwards.
//!
//! ```ignore
//! mod common;
//! use common::gridengine::GridEngineCell;
//!
//! let cell = GridEngineCell::shared();            // one per test binary
//! let mut qsub = cell.qsub();                     // `qsub -terse -V`, the cell's environment
//! qsub.args(["-cwd", "-l", "h_rt=600", "-b", "y", "hostname"]);
//! let job = cell.submit(qsub);                    // the job id
//! cell.wait_gone(&job, Duration::from_secs(300)); // qstat -j: no such job
//! cell.command("qstat").arg("-f").output();       // any Grid Engine client
//! ```
//!
//! Jobs run as this test process's user (root: the cell allows uid 0) with
//! the environment of the `qsub` command (`-V`), so a test configures a job
//! as a user would: through the environment of the submission. The cell's
//! variables (`SGE_ROOT`, `SGE_CELL`, `SGE_QMASTER_PORT`, `SGE_EXECD_PORT`)
//! are set on the commands made here only, never in this process's
//! environment.
//!
//! Every cell is started with `--watch-pid <this test process>`: it stops
//! (jobs killed, daemons stopped, leftovers killed) when the test process is
//! gone, even after a SIGKILL. [`GridEngineCell::shared`] is stopped at exit.
//! The state directory is under `target/tmp/` and is removed after a clean
//! stop, except with `TASKFARM_KEEP_STATE`; the next test process removes
//! those of processes that are gone. Failing to start panics with the
//! harness's output (the daemons' logs): a test never skips because Grid
//! Engine is missing.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::harness_script::HarnessScript;
use super::server::pid_alive;

/// A running single-node Grid Engine cell (see the module documentation).
#[derive(Debug)]
pub struct GridEngineCell {
    /// Every file of the cell: root/ (SGE_ROOT), spool/, harness.log.
    pub state_dir: PathBuf,
    /// The node's name as Grid Engine knows it (this host's short name).
    pub node: String,
    /// The one queue.
    pub queue: String,
    /// The variables Grid Engine's clients need.
    pub env: Vec<(String, String)>,
    /// PID of the harness's supervisor (the daemons' parent).
    pub pid: i32,
    /// How long the harness took to start the cell.
    pub started_in: Duration,
}

/// Slots of the queue of [`GridEngineCell::shared`]: the jobs of a test
/// mostly wait (a worker holding its task), so more than the machine's
/// cores.
pub const SHARED_SLOTS: u32 = 8;

static SHARED: OnceLock<GridEngineCell> = OnceLock::new();
const STATE_DIR_PREFIX: &str = "gridengine-cell-";

/// `tests/harness/gridengine.sh` of this repository.
const GRIDENGINE_SH: HarnessScript = HarnessScript {
    file: "gridengine.sh",
    harness: "Grid Engine harness",
};

/// `target/tmp/`, with the cells of test processes that are gone stopped
/// and removed (once per process).
fn state_base() -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TASKFARM_KEEP_STATE").is_some() {
            return;
        }
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let owner = name
                .to_str()
                .and_then(|n| n.strip_prefix(STATE_DIR_PREFIX))
                .and_then(|p| p.parse::<i32>().ok());
            if owner.is_some_and(|pid| !pid_alive(pid)) {
                let _ = GRIDENGINE_SH.run(&["stop", &entry.path().to_string_lossy()]);
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    base
}

extern "C" fn stop_shared_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(cell) = SHARED.get() {
            let began = Instant::now();
            GRIDENGINE_SH.stop_and_remove(&cell.state_dir);
            eprintln!("Grid Engine cell stopped in {:?}", began.elapsed());
        }
    });
}

impl GridEngineCell {
    /// One cell shared by all tests of this test binary, started on first
    /// use and stopped when the process exits (`atexit`; the watchdog covers
    /// crashes). Its queue has [`SHARED_SLOTS`] slots. Tests using it must
    /// not stop it; they may run at once.
    pub fn shared() -> &'static GridEngineCell {
        SHARED.get_or_init(|| {
            let cell = GridEngineCell::start(SHARED_SLOTS);
            eprintln!("Grid Engine cell started in {:?}", cell.started_in);
            // SAFETY: registers a plain `extern "C" fn()` that never unwinds.
            unsafe {
                libc::atexit(stop_shared_at_exit);
            }
            cell
        })
    }

    /// Starts a fresh cell watched by this test process, with a queue of
    /// `slots` slots, and waits until the queue is ready. Panics with the
    /// harness's output on failure.
    fn start(slots: u32) -> GridEngineCell {
        let state_dir = state_base().join(format!("{STATE_DIR_PREFIX}{}", std::process::id()));
        let dir = state_dir.to_string_lossy().into_owned();
        let watch = std::process::id().to_string();
        let slots = slots.to_string();
        let args = ["start", &dir, "--watch-pid", &watch, "--slots", &slots];
        let began = Instant::now();
        let out = GRIDENGINE_SH.run(&args);
        let started_in = began.elapsed();
        if !out.status.success() {
            panic!("{}", GRIDENGINE_SH.describe_failure(&args.join(" "), &out));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or_else(|| panic!("Grid Engine harness printed no JSON line:\n{text}"));
        let info: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("Grid Engine harness printed bad JSON ({e}):\n{text}"));
        let field = |key: &str| -> String {
            info[key]
                .as_str()
                .unwrap_or_else(|| panic!("Grid Engine harness JSON has no string {key:?}: {info}"))
                .to_owned()
        };
        let env = info["env"]
            .as_object()
            .unwrap_or_else(|| panic!("Grid Engine harness JSON has no env: {info}"))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        GridEngineCell {
            node: field("node"),
            queue: field("queue"),
            env,
            pid: info["pid"].as_i64().unwrap_or(0) as i32,
            state_dir,
            started_in,
        }
    }

    /// A command running Grid Engine client `program` (qsub, qstat, qdel,
    /// qmod, qconf, ...) against this cell.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_remove("SGE_ND")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// `qsub -terse -V` against this cell: add options, the script or
    /// command (`-b y`) and its arguments, and the job's environment, then
    /// [`submit`](Self::submit).
    pub fn qsub(&self) -> Command {
        let mut cmd = self.command("qsub");
        cmd.args(["-terse", "-V"]);
        cmd
    }

    /// Runs a [`qsub`](Self::qsub) command and returns the job id (of the
    /// whole array for `-t`). Panics when qsub refuses.
    pub fn submit(&self, mut qsub: Command) -> String {
        let out = qsub
            .output()
            .unwrap_or_else(|e| panic!("cannot run qsub ({e})"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        // `-terse`: "7", or "7.1-3:1" for an array job.
        let id = stdout.trim().split('.').next().unwrap_or("").to_owned();
        assert!(
            out.status.success() && !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
            "qsub failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        id
    }

    /// Runs client `program` with `args` and returns its stdout and stderr
    /// together; panics when it cannot be run or fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} ({e})"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{program} {args:?} failed ({}): {text}",
            out.status
        );
        text
    }

    /// The state letters qstat's job list gives job `job` (of its task
    /// `task` in an array): `r`, `s`, `qw`...; `None` when it is not listed.
    pub fn job_state(&self, job: &str, task: Option<&str>) -> Option<String> {
        let out = self
            .command("qstat")
            .output()
            .unwrap_or_else(|e| panic!("cannot run qstat ({e})"));
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let listed = fields.len() >= 5
                && fields[0] == job
                && task.is_none_or(|t| fields.len() >= 10 && fields[fields.len() - 1] == t);
            listed.then(|| fields[4].to_owned())
        })
    }

    /// True once `qstat -j job` says Grid Engine does not have the job.
    pub fn is_gone(&self, job: &str) -> bool {
        let out = self
            .command("qstat")
            .args(["-j", job])
            .output()
            .unwrap_or_else(|e| panic!("cannot run qstat ({e})"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        text.contains("Following jobs do not exist")
    }

    /// Waits (polling `qstat -j`, 0.1 s apart) until Grid Engine no longer
    /// has job `job` (every task of it ended). Panics after `deadline` with
    /// the queue and the end of the logs.
    pub fn wait_gone(&self, job: &str, deadline: Duration) {
        let start = Instant::now();
        while !self.is_gone(job) {
            if start.elapsed() > deadline {
                panic!(
                    "Grid Engine job {job} has not ended within {deadline:?}\n--- qstat ---\n{}\n{}",
                    self.qstat(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `qstat -f` of the whole cell (for failure messages).
    pub fn qstat(&self) -> String {
        self.command("qstat")
            .arg("-f")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The end of the qmaster's and the harness's logs (for failure
    /// messages).
    pub fn logs(&self) -> String {
        let tail = |file: &str| {
            let text = std::fs::read_to_string(self.state_dir.join(file)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(20)..].join("\n")
        };
        format!(
            "--- qmaster messages ---\n{}\n--- harness.log ---\n{}",
            tail("spool/qmaster/messages"),
            tail("harness.log")
        )
    }
}
