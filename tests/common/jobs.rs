//! Support for the tests that run the examples as MPI ranks and Slurm jobs
//! (tests/mpi.rs, tests/slurm.rs): the example programs built from the tree,
//! a PostgreSQL server shared by a test binary, runs, the password checks
//! in the server's access log, and the checks that every task was
//! done exactly once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use taskfarm_worker::ffi::taskfarm::*;

use super::c_abi::{create_run, open_run, run_status, run_uuid};
use super::server::{pid_alive, Db, TaskfarmServer};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty directory `name` in this process's [`scratch`] directory
/// `area`: one job's script, job logs and output.
pub fn job_dir(area: &str, name: &str) -> PathBuf {
    let dir = scratch(area).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// This test process's scratch directory under `target/tmp/` (`NAME-<pid>`);
/// those of test processes that are gone are removed first.
pub fn scratch(name: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let prefix = format!("{name}-");
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let file_name = entry.file_name();
        let owner = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|p| p.parse::<i32>().ok());
        if owner.is_some_and(|pid| !pid_alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(format!("{prefix}{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// The examples built once per test process by tests/mpi/build.sh (against
/// include/ and target/release): `worker` (examples/worker.c) and
/// `{openmpi,mpich}/{mpi_worker,mpi_worker_f}`. Panics with the compilers'
/// output when the build fails (or the release library is stale: run
/// `make build`).
pub fn examples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("examples");
        let out = Command::new("bash")
            .arg(root().join("tests/mpi/build.sh"))
            .arg(&dir)
            .output()
            .expect("run tests/mpi/build.sh");
        assert!(
            out.status.success(),
            "tests/mpi/build.sh failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// A PostgreSQL + gunicorn server shared by the tests of this binary,
/// stopped at exit (its watchdog covers a crash).
pub fn pg_server() -> &'static TaskfarmServer {
    static SERVER: OnceLock<TaskfarmServer> = OnceLock::new();
    extern "C" fn stop_at_exit() {
        let _ = std::panic::catch_unwind(|| {
            if let Some(server) = SERVER.get() {
                server.stop();
            }
        });
    }
    SERVER.get_or_init(|| {
        let server = TaskfarmServer::start_with(Db::Postgresql);
        // SAFETY: registers a plain `extern "C" fn()` that never unwinds.
        unsafe {
            libc::atexit(stop_at_exit);
        }
        server
    })
}

/// Creates a run of `num_tasks` tasks on `server`; returns its UUID.
pub fn new_run(server: &TaskfarmServer, num_tasks: i64) -> String {
    let tf = create_run(server, num_tasks);
    let uuid = run_uuid(tf);
    tf_taskfarm_free(tf);
    uuid
}

/// The server's count of the run: (numTasks, numWaiting, numComputing, numDone).
pub fn run_counts(server: &TaskfarmServer, uuid: &str) -> (i64, i64, i64, i64) {
    let tf = open_run(server, &server.url, uuid);
    let status = run_status(tf);
    tf_taskfarm_free(tf);
    let s = status.unwrap_or_else(|e| panic!("{e}"));
    (s.num_tasks, s.num_waiting, s.num_computing, s.num_done)
}

/// Asserts that the server counts every task of the run done (numDone ==
/// numTasks == `num_tasks`, nothing waiting or computing).
pub fn assert_run_done(server: &TaskfarmServer, uuid: &str, num_tasks: i64) {
    assert_eq!(
        run_counts(server, uuid),
        (num_tasks, 0, 0, num_tasks),
        "run {uuid}: (numTasks, numWaiting, numComputing, numDone)"
    );
}

/// Asserts that `done` (worker name -> tasks it reported done) names every
/// task 0..n-1 exactly once.
pub fn assert_each_task_once(n: i64, done: &BTreeMap<String, Vec<i64>>) {
    let mut times: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (who, tasks) in done {
        for &t in tasks {
            times.entry(t).or_default().push(who);
        }
    }
    let twice: Vec<_> = times.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(twice.is_empty(), "tasks done more than once: {twice:?}");
    let missing: Vec<i64> = (0..n).filter(|t| !times.contains_key(t)).collect();
    assert!(missing.is_empty(), "tasks never done: {missing:?}");
    let extra: Vec<i64> = times.keys().copied().filter(|&t| t < 0 || t >= n).collect();
    assert!(extra.is_empty(), "tasks outside 0..{n}: {extra:?}");
}

/// The per-rank report of the MPI example's rank 0: lines
/// `rank R: K tasks: T1 T2 ...`, checked against K and against the final
/// `N ranks: T tasks done` line (which must say `ranks` ranks).
pub fn mpi_report(stdout: &str, ranks: usize) -> BTreeMap<String, Vec<i64>> {
    let mut done = BTreeMap::new();
    let mut total = None;
    for line in stdout.lines() {
        let line = line.trim();
        if let Some((head, tasks)) = line
            .strip_prefix("rank ")
            .and_then(|rest| rest.split_once(" tasks:"))
        {
            let (rank, count) = head
                .split_once(": ")
                .unwrap_or_else(|| panic!("bad report line {line:?}"));
            let tasks: Vec<i64> = tasks
                .split_whitespace()
                .map(|t| t.parse().unwrap_or_else(|_| panic!("bad task in {line:?}")))
                .collect();
            assert_eq!(count.parse::<usize>().ok(), Some(tasks.len()), "{line:?}");
            assert!(
                done.insert(format!("rank {rank}"), tasks).is_none(),
                "rank {rank} reported twice:\n{stdout}"
            );
        } else if let Some(rest) = line.strip_suffix(" tasks done") {
            total = Some(rest.to_owned());
        }
    }
    assert_eq!(done.len(), ranks, "ranks in the report:\n{stdout}");
    let sum: usize = done.values().map(Vec::len).sum();
    assert_eq!(
        total,
        Some(format!("{ranks} ranks: {sum}")),
        "the report's total:\n{stdout}"
    );
    done
}

/// The `task K done` lines of examples/worker.c's output.
pub fn worker_tasks(stdout: &str) -> Vec<i64> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.split_once(": task ")?.1;
            rest.strip_suffix(" done")?.parse().ok()
        })
        .collect()
}

/// The password checks (`GET /api/token`) the server has answered so far
/// (its access log, read by [`super::access_log`]).
pub fn token_requests(server: &TaskfarmServer) -> usize {
    super::access_log::count_requests(server, "GET", "/api/token")
}

/// The end of a program run by [`run_with_deadline`].
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` (stdout and stderr to files in `dir`, named after `name`),
/// waiting for it by polling with an overall `deadline`; kills it (and its
/// process group) and panics with its output after the deadline.
pub fn run_with_deadline(mut cmd: Command, dir: &Path, name: &str, deadline: Duration) -> Finished {
    use std::os::unix::process::CommandExt;
    let out_path = dir.join(format!("{name}.out"));
    let err_path = dir.join(format!("{name}.err"));
    let out = std::fs::File::create(&out_path).unwrap();
    let err = std::fs::File::create(&err_path).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > deadline {
            // SAFETY: signals the process group this function created.
            unsafe {
                libc::killpg(child.id() as i32, libc::SIGKILL);
            }
            let _ = child.wait();
            panic!(
                "{name} did not end within {deadline:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Finished {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}
