//! A REAL single-node Slurm cluster for integration tests.
//!
//! Thin Rust side of `tests/harness/slurm.sh` (and `slurm_cluster.py`, which
//! documents the cluster): munged with its own key and socket, slurmctld and
//! slurmd, every file in a private directory, free ports, started and stopped
//! by PID, and nothing left running afterwards.
//!
//! ```ignore
//! mod common;
//! use common::slurm::SlurmCluster;
//!
//! let cluster = SlurmCluster::shared();           // one per test binary
//! let mut sbatch = cluster.sbatch();              // `sbatch --parsable`, SLURM_CONF set
//! sbatch.args(["--array=1-4", "-o", "out-%a"]).arg("job.sh").env("X", "1");
//! let job = cluster.submit(sbatch);               // the job id
//! let ends = cluster.wait_job(&job, Duration::from_secs(300));
//! assert!(ends.iter().all(|e| e.state == "COMPLETED" && e.exit_code == "0:0"));
//! cluster.command("squeue").arg("-h").output();   // any Slurm client
//! ```
//!
//! Jobs run as this test process's user with the environment of the `sbatch`
//! command (Slurm's default `--export=ALL`), so a test configures a job as a
//! user would: through the environment of the submission. The cluster's
//! `SLURM_CONF` is set on the commands made here only, never in this
//! process's environment.
//!
//! Every cluster is started with `--watch-pid <this test process>`: it stops
//! (jobs cancelled, daemons stopped, leftovers killed) when the test process
//! is gone, even after a SIGKILL. [`SlurmCluster::shared`] is stopped at
//! exit; a cluster from [`SlurmCluster::start`] when dropped. The state
//! directory (config, logs, job spool) is under `target/tmp/` and is removed
//! after a clean stop, except while panicking or with `TASKFARM_KEEP_STATE`;
//! the next test process removes those of processes that are gone. Failing
//! to start panics with the harness's output (the daemons' logs): a test
//! never skips because Slurm is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::harness_script::HarnessScript;
use super::server::pid_alive;

/// A running single-node Slurm cluster (see the module documentation).
#[derive(Debug)]
pub struct SlurmCluster {
    /// Every file of the cluster: slurm.conf, munge/, state/, spool/, log/.
    pub state_dir: PathBuf,
    /// `SLURM_CONF` for Slurm's clients.
    pub slurm_conf: PathBuf,
    /// The node's name (this host's short name).
    pub node: String,
    /// The default partition.
    pub partition: String,
    /// CPUs of the node.
    pub cpus: u32,
    /// PID of the harness's supervisor (the daemons' parent).
    pub pid: i32,
}

/// The end of one job, or of one element of an array job, as `scontrol show
/// job` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobEnd {
    /// `JobId` (an array element has its own).
    pub job_id: String,
    /// `ArrayTaskId` for an array element.
    pub array_task_id: Option<String>,
    /// `JobState`: COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    pub state: String,
    /// `ExitCode` as `status:signal` ("0:0" for a clean exit).
    pub exit_code: String,
}

/// Job states after which a job never runs again.
const FINAL_STATES: &[&str] = &[
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
];

/// CPUs of the node of [`SlurmCluster::shared`]: 4 jobs or job steps of one
/// CPU at once (an array of 4, `srun -n 4`) on a 2-core machine.
pub const SHARED_CPUS: u32 = 4;

static SHARED: OnceLock<SlurmCluster> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);
const STATE_DIR_PREFIX: &str = "slurm-cluster-";
/// A unix socket path (munge's, in the state directory) holds 107 bytes.
const MAX_STATE_DIR_LEN: usize = 70;

/// `tests/harness/slurm.sh` of this repository.
const SLURM_SH: HarnessScript = HarnessScript {
    file: "slurm.sh",
    harness: "Slurm harness",
};

/// `target/tmp/` (or the system's temporary directory when that path is too
/// long for munge's socket), with the directories of test processes that are
/// gone removed (once per process).
fn state_base() -> PathBuf {
    let mut base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    if base.as_os_str().len() > MAX_STATE_DIR_LEN - 30 {
        base = std::env::temp_dir();
    }
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
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<i32>().ok());
            if owner.is_some_and(|pid| !pid_alive(pid)) {
                let _ = SLURM_SH.run(&["stop", &entry.path().to_string_lossy()]);
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    base
}

extern "C" fn stop_shared_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(cluster) = SHARED.get() {
            let _ = SLURM_SH.run(&["stop", &cluster.state_dir.to_string_lossy()]);
        }
    });
}

impl SlurmCluster {
    /// Starts a fresh cluster watched by this test process and waits until
    /// its node is idle; the node has the machine's CPUs. Panics with the
    /// harness's output on failure.
    pub fn start() -> SlurmCluster {
        Self::start_with_cpus(None)
    }

    /// Like [`start`](Self::start), with a node of `cpus` CPUs (`None`: the
    /// machine's). More CPUs than the machine has let more job steps run at
    /// once (the node is configured, not probed).
    pub fn start_with_cpus(cpus: Option<u32>) -> SlurmCluster {
        Self::start_watching(std::process::id() as i32, cpus)
    }

    /// Like [`start_with_cpus`](Self::start_with_cpus), but the cluster stops
    /// by itself when process `watch_pid` (instead of this test process) is
    /// gone.
    pub fn start_watching(watch_pid: i32, cpus: Option<u32>) -> SlurmCluster {
        let state_dir = state_base().join(format!(
            "{STATE_DIR_PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let dir = state_dir.to_string_lossy().into_owned();
        let watch = watch_pid.to_string();
        let mut args = vec!["start", dir.as_str(), "--watch-pid", watch.as_str()];
        let cpus = cpus.map(|n| n.to_string());
        if let Some(n) = &cpus {
            args.extend(["--cpus", n.as_str()]);
        }
        let out = SLURM_SH.run(&args);
        if !out.status.success() {
            panic!("{}", SLURM_SH.describe_failure(&args.join(" "), &out));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or_else(|| panic!("Slurm harness printed no JSON line:\n{text}"));
        let info: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("Slurm harness printed bad JSON ({e}):\n{text}"));
        let field = |key: &str| -> String {
            info[key]
                .as_str()
                .unwrap_or_else(|| panic!("Slurm harness JSON has no string {key:?}: {info}"))
                .to_owned()
        };
        SlurmCluster {
            slurm_conf: PathBuf::from(field("slurm_conf")),
            node: field("node"),
            partition: field("partition"),
            cpus: info["cpus"].as_u64().unwrap_or(1) as u32,
            pid: info["pid"].as_i64().unwrap_or(0) as i32,
            state_dir,
        }
    }

    /// One cluster shared by all tests of this test binary, started on first
    /// use and stopped when the process exits (`atexit`; the watchdog covers
    /// crashes). Its node has [`SHARED_CPUS`] CPUs, whatever the machine has.
    /// Tests using it must not stop it; they may run at once.
    pub fn shared() -> &'static SlurmCluster {
        SHARED.get_or_init(|| {
            let cluster = SlurmCluster::start_with_cpus(Some(SHARED_CPUS));
            // SAFETY: registers a plain `extern "C" fn()` that never unwinds.
            unsafe {
                libc::atexit(stop_shared_at_exit);
            }
            cluster
        })
    }

    /// A command running Slurm client `program` (sbatch, srun, squeue,
    /// scontrol, sinfo, scancel, ...) against this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.slurm_conf);
        cmd
    }

    /// `sbatch --parsable` against this cluster: add options, the script and
    /// its arguments, and the job's environment, then [`submit`](Self::submit).
    pub fn sbatch(&self) -> Command {
        let mut cmd = self.command("sbatch");
        cmd.arg("--parsable");
        cmd
    }

    /// Runs an [`sbatch`](Self::sbatch) command and returns the job id.
    /// Panics when sbatch refuses.
    pub fn submit(&self, mut sbatch: Command) -> String {
        let out = sbatch
            .output()
            .unwrap_or_else(|e| panic!("cannot run sbatch ({e})"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let id = stdout.trim().split(';').next().unwrap_or("").to_owned();
        assert!(
            out.status.success() && !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
            "sbatch failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        id
    }

    /// The records of job `job_id` (all elements of an array job), from
    /// `scontrol show job -o`. Empty when Slurm does not know the job.
    pub fn job_records(&self, job_id: &str) -> Vec<JobEnd> {
        let out = self
            .command("scontrol")
            .args(["show", "job", "-o", job_id])
            .output()
            .unwrap_or_else(|e| panic!("cannot run scontrol ({e})"));
        if !out.status.success() {
            return Vec::new();
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("JobState="))
            .map(|line| {
                let get = |key: &str| {
                    line.split_whitespace()
                        .find_map(|kv| kv.strip_prefix(key))
                        .map(str::to_owned)
                };
                JobEnd {
                    job_id: get("JobId=").unwrap_or_default(),
                    array_task_id: get("ArrayTaskId="),
                    state: get("JobState=").unwrap_or_default(),
                    exit_code: get("ExitCode=").unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Waits (polling `scontrol show job`, 0.2 s apart) until job `job_id`
    /// and every element of it has ended, and returns how each ended, array
    /// elements in index order. Panics after `deadline` with the job's
    /// records and the end of slurmctld's log.
    pub fn wait_job(&self, job_id: &str, deadline: Duration) -> Vec<JobEnd> {
        let start = Instant::now();
        loop {
            let mut records = self.job_records(job_id);
            if !records.is_empty()
                && records
                    .iter()
                    .all(|r| FINAL_STATES.contains(&r.state.as_str()))
            {
                records.sort_by_key(|r| {
                    r.array_task_id
                        .as_deref()
                        .and_then(|a| a.parse::<u64>().ok())
                });
                return records;
            }
            if start.elapsed() > deadline {
                panic!(
                    "Slurm job {job_id} has not ended within {deadline:?}: {records:?}\n\
                     --- squeue ---\n{}\n--- slurmctld.log ---\n{}",
                    self.squeue(),
                    self.log_tail("log/slurmctld.log", 30)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `squeue` of the whole cluster (for failure messages).
    pub fn squeue(&self) -> String {
        self.command("squeue")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of a file of the state directory, e.g.
    /// `log/slurmctld.log`, `log/slurmd.log`, `harness.log`.
    pub fn log_tail(&self, file: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.state_dir.join(file)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The live processes of this cluster (see [`cluster_processes`]).
    pub fn processes(&self) -> Vec<i32> {
        cluster_processes(&self.state_dir)
    }

    /// True while the harness's supervisor (and so the cluster) runs.
    pub fn is_running(&self) -> bool {
        pid_alive(self.pid)
    }

    /// Cancels every job and stops the daemons; nothing of the cluster is
    /// left running afterwards. Panics when that fails.
    pub fn stop(&self) {
        let dir = self.state_dir.to_string_lossy();
        let out = SLURM_SH.run(&["stop", &dir]);
        if !out.status.success() {
            panic!(
                "{}",
                SLURM_SH.describe_failure(&format!("stop {dir}"), &out)
            );
        }
    }
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        SLURM_SH.stop_and_remove(&self.state_dir);
    }
}

/// The live (non-zombie) processes of the cluster of `state_dir`, found as
/// the harness finds them: the daemons (`TASKFARM_SLURM_HARNESS=<dir>` in
/// their environment), slurmstepd (the daemons' working directory) and job
/// processes (`SLURM_CONF=<dir>/slurm.conf` and a `SLURM_JOB_ID`). Never
/// this process.
pub fn cluster_processes(state_dir: &Path) -> Vec<i32> {
    let dir = state_dir.to_string_lossy().into_owned();
    let mark = format!("TASKFARM_SLURM_HARNESS={dir}");
    let conf = format!("SLURM_CONF={dir}/slurm.conf");
    let me = std::process::id() as i32;
    // /proc/PID/cwd is the real path: compare it with the real path of dir.
    let real_dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me || !pid_alive(pid) {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
        let has = |v: &str| vars.contains(&v.as_bytes());
        let job = vars.iter().any(|e| e.starts_with(b"SLURM_JOB_ID="));
        let cwd = std::fs::read_link(entry.path().join("cwd")).ok();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let slurm_title = cmdline.starts_with(b"slurm")
            || cmdline
                .split(|&b| b == 0)
                .next()
                .is_some_and(|p| p.ends_with(b"slurmd") || p.ends_with(b"slurmctld"));
        if has(&mark)
            || (has(&conf) && job)
            || (cwd.as_deref() == Some(real_dir.as_path()) && slurm_title)
        {
            found.push(pid);
        }
    }
    found
}
