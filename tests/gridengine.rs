//! The wall time and `taskfarm reap` under a REAL Grid Engine (Debian's Son
//! of Grid Engine 8.1.9, the single-node cell of tests/common/gridengine.rs),
//! against the real server on PostgreSQL + gunicorn. Where tests/schedulers.rs
//! replays recorded `qstat` answers, here Grid Engine answers: the library's
//! own `qstat -j` and job list in a job submitted with `qsub -l h_rt`, and
//! the reaper's `qstat -j` on jobs that run, are suspended (`qmod -sj`) or
//! were deleted (`qdel`).
//!
//! 1. Wall time (the C worker tests/stop/stop_worker.c, `loop`: the task
//!    loop with the deadline the library finds by itself,
//!    `TASKFARM_TASK_SECONDS` the time a task needs): a job of
//!    `h_rt=600` refuses tasks of 4000 s and takes tasks of 60 s, its one
//!    `TASKFARM_LOG` line naming the job and a time left within the 600 s
//!    less the time since the submission; a job without `h_rt` has no
//!    deadline and takes tasks of 100000 s; each task of an array job
//!    (`qsub -t 1-3`) reads its own time left and names its task.
//! 2. The reaper (the C worker tests/reap/worker.c holding a task at 50 %,
//!    `TASKFARM_JOURNAL` set): the journal records the Grid Engine job (and
//!    task); `taskfarm reap --stale 3600` run from another PID namespace finds a
//!    running job, a suspended one and the running tasks of an array alive
//!    (nothing given back); after `qdel`, the deleted job gone for Grid
//!    Engine's reason (its task given back, 50 % kept), a deleted array task
//!    whose array goes on unknown to Grid Engine (so the fresh heartbeat
//!    keeps it), the others still alive.
//!
//! Why the reaper runs in a PID namespace of its own (`unshare --pid`, as in
//! a container on the node): on this single node it would otherwise judge
//! by the pid (the process has ended) before it asks Grid Engine; in
//! another PID namespace it does not judge pids, so only Grid Engine (or
//! the heartbeat, which `--stale 3600` rules out) can tell it that a worker
//! is gone. Not a UTS namespace with another host name as in
//! tests/reap_slurm.rs: Grid Engine's clients must resolve their host's
//! name (qstat: "sge_gethostbyname failed"). Every wait is on an event (a
//! worker's line, qstat's view) with an overall deadline.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::c_programs;
use common::gridengine::GridEngineCell;
use common::jobs::{pg_server, scratch};
use common::journals::{self, journal_files};
use serde_json::Value;
use taskfarm_worker::internal::scheduler::{JobId, Scheduler};
use taskfarm_worker::internal::worker::journal::{self, Record};
use taskfarm_worker::internal::{Run, TaskState};

const DEADLINE: Duration = Duration::from_secs(300);
/// The `h_rt` of the jobs with a limit, in seconds.
const H_RT: f64 = 600.0;

/// Variables of this process that must not reach a job through `qsub -V`.
const NOT_FOR_JOBS: &[&str] = &[
    "SLURM_JOB_ID",
    "SLURM_JOBID",
    "PBS_JOBID",
    "JOB_ID",
    "SGE_TASK_ID",
    "LSB_JOBID",
    "FLUX_JOB_ID",
    "TASKFARM_TOKEN",
    "TASKFARM_DEADLINE",
    "TASKFARM_TASK_SECONDS",
    "TASKFARM_LOG",
    "TASKFARM_STOP_SIGNALS",
    "TASKFARM_JOURNAL",
    "TASKFARM_JOURNAL_HEARTBEAT",
    "REAP_TEST_HOLD_AFTER",
];

/// `qsub -terse -V -cwd` in `dir`, the job's environment that of a user of
/// the server: its URL and credentials, no token, no other job's variables.
fn qsub(cell: &GridEngineCell, dir: &Path) -> Command {
    let mut cmd = cell.qsub();
    cmd.current_dir(dir).arg("-cwd");
    for variable in NOT_FOR_JOBS {
        cmd.env_remove(variable);
    }
    cmd.envs(pg_server().credentials_env())
        .env("TASKFARM_RETRIES", "3");
    cmd
}

/// Polls `check` (50 ms apart) until it gives `Some`; panics with `what` and
/// `context()` after [`DEADLINE`].
fn wait_until<T>(
    what: &str,
    context: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < end,
            "timed out after {DEADLINE:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The wall time.

/// What one job of `stop_worker loop` printed.
struct LoopJob {
    job: String,
    /// "status TF_... tasks K".
    status: String,
    /// "last_error ...".
    last_error: String,
    /// The `TASKFARM_LOG` lines about the deadline.
    deadline_lines: Vec<String>,
    /// From the submission to the job's end, as qstat saw it.
    took: Duration,
    /// Its stdout and stderr, for failure messages.
    text: String,
}

/// The lines about the deadline in a worker's stderr.
fn deadline_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("taskfarm: deadline") || l.starts_with("taskfarm: no deadline"))
        .map(str::to_owned)
        .collect()
}

/// Runs `stop_worker loop RUN` as a job (`options` before the command) with
/// tasks of `task_seconds`, and waits for its end.
fn loop_job(name: &str, options: &[&str], run: &Run, task_seconds: u32) -> LoopJob {
    let cell = GridEngineCell::shared();
    let dir = scratch("gridengine").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = qsub(cell, &dir);
    cmd.args(["-o", "out", "-e", "err"])
        .args(options)
        .args(["-b", "y"])
        .arg(c_programs::stop_worker())
        .args(["loop", run.uuid()])
        .env("TASKFARM_TASK_SECONDS", task_seconds.to_string())
        .env("TASKFARM_LOG", "debug");
    let began = Instant::now();
    let job = cell.submit(cmd);
    cell.wait_gone(&job, DEADLINE);
    let took = began.elapsed();
    let (stdout, stderr) = (read(&dir.join("out")), read(&dir.join("err")));
    eprintln!("job {name} ({job}): {took:?} from qsub to its end");
    let mut lines = stdout.lines();
    LoopJob {
        status: lines.next().unwrap_or_default().to_owned(),
        last_error: lines.next().unwrap_or_default().to_owned(),
        deadline_lines: deadline_lines(&stderr),
        took,
        text: format!("--- stdout ---\n{stdout}--- stderr ---\n{stderr}"),
        job,
    }
}

/// The seconds from now of a "taskfarm: deadline END (S s from now): ..."
/// line.
fn seconds_left(line: &str) -> f64 {
    line.split_once('(')
        .and_then(|(_, rest)| rest.split_once(" s from now)"))
        .and_then(|(s, _)| s.parse().ok())
        .unwrap_or_else(|| panic!("no time left in {line:?}"))
}

/// The time left a job read is Grid Engine's: at most `h_rt`, and no less
/// than `h_rt` less the time from its submission to its end (and a second
/// of the start time's rounding).
fn assert_time_left(line: &str, took: Duration, what: &str) {
    let left = seconds_left(line);
    assert!(
        left <= H_RT && left >= H_RT - took.as_secs_f64() - 1.5,
        "{what}: {left} s left of h_rt={H_RT} after {took:?}: {line}"
    );
}

fn new_run(tasks: i64) -> Run {
    Run::create(&pg_server().settings(), tasks).unwrap()
}

/// (waiting, computing, done) of `run`.
fn counts(run: &Run) -> (i64, i64, i64) {
    let s = run.status().unwrap();
    (s.num_waiting, s.num_computing, s.num_done)
}

#[test]
fn a_job_reads_its_time_left_from_grid_engine() {
    let limit = format!("h_rt={H_RT}");

    // Tasks that the time left cannot fit: none taken.
    let run = new_run(2);
    let refused = loop_job("refused", &["-l", &limit], &run, 4000);
    let what = format!("h_rt=600, tasks of 4000 s\n{}", refused.text);
    assert_eq!(refused.status, "status TF_STOPPED tasks 0", "{what}");
    assert!(
        refused
            .last_error
            .contains("cannot fit a task of 4000.0 s (TASKFARM_TASK_SECONDS)"),
        "{what}"
    );
    assert_eq!(refused.deadline_lines.len(), 1, "{what}");
    let line = &refused.deadline_lines[0];
    assert!(
        line.contains(&format!("Grid Engine job {} ends at", refused.job)),
        "{what}"
    );
    assert_time_left(line, refused.took, &what);
    // The server counts no task that was never handed out.
    assert_eq!(counts(&run), (0, 0, 0), "{what}: nothing taken");

    // Tasks that fit: all done.
    let run = new_run(2);
    let taken = loop_job("taken", &["-l", &limit], &run, 60);
    let what = format!("h_rt=600, tasks of 60 s\n{}", taken.text);
    assert_eq!(taken.status, "status TF_NO_MORE_TASKS tasks 2", "{what}");
    assert_eq!(taken.deadline_lines.len(), 1, "{what}");
    assert!(
        taken.deadline_lines[0].contains(&format!("Grid Engine job {} ends at", taken.job)),
        "{what}"
    );
    assert_time_left(&taken.deadline_lines[0], taken.took, &what);
    assert_eq!(counts(&run), (0, 0, 2), "{what}");

    // No h_rt: no deadline, whatever a task needs.
    let run = new_run(2);
    let unlimited = loop_job("unlimited", &[], &run, 100_000);
    let what = format!("no h_rt, tasks of 100000 s\n{}", unlimited.text);
    assert_eq!(
        unlimited.status, "status TF_NO_MORE_TASKS tasks 2",
        "{what}"
    );
    assert_eq!(
        unlimited.deadline_lines,
        [format!(
            "taskfarm: no deadline: Grid Engine job {} has no time limit",
            unlimited.job
        )],
        "{what}"
    );
    assert_eq!(counts(&run), (0, 0, 2), "{what}");
}

#[test]
fn each_task_of_an_array_job_reads_its_own_time_left() {
    let cell = GridEngineCell::shared();
    let run = new_run(6);
    let dir = scratch("gridengine").join("array");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = qsub(cell, &dir);
    cmd.args(["-t", "1-3", "-l", &format!("h_rt={H_RT}")])
        .args(["-o", "out.$TASK_ID", "-e", "err.$TASK_ID", "-b", "y"])
        .arg(c_programs::stop_worker())
        .args(["loop", run.uuid()])
        .env("TASKFARM_TASK_SECONDS", "60")
        .env("TASKFARM_LOG", "debug");
    let began = Instant::now();
    let job = cell.submit(cmd);
    cell.wait_gone(&job, DEADLINE);
    let took = began.elapsed();
    eprintln!("array job {job}: {took:?} from qsub to its end");
    let mut tasks_done = 0;
    for task in 1..=3 {
        let (stdout, stderr) = (
            read(&dir.join(format!("out.{task}"))),
            read(&dir.join(format!("err.{task}"))),
        );
        let what = format!("task {task}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}");
        let status = stdout.lines().next().unwrap_or_default();
        let done: i64 = status
            .strip_prefix("status TF_NO_MORE_TASKS tasks ")
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| panic!("{what}"));
        tasks_done += done;
        let lines = deadline_lines(&stderr);
        assert_eq!(lines.len(), 1, "{what}");
        assert!(
            lines[0].contains(&format!("Grid Engine job {job}[{task}] ends at")),
            "{what}"
        );
        assert_time_left(&lines[0], took, &what);
    }
    assert_eq!(tasks_done, 6);
    assert_eq!(counts(&run), (0, 0, 6));
}

// ---------------------------------------------------------------------------
// The reaper.

/// One pass of `taskfarm reap UUID --journal DIR --stale 3600 --json`, run
/// in a PID namespace of its own (see the module documentation), with the
/// cell's variables: its JSON report.
fn reap_in_another_pid_namespace(cell: &GridEngineCell, run: &Run, dir: &Path) -> Value {
    let began = Instant::now();
    let out = cell
        .command("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_taskfarm"))
        .args(["reap", run.uuid(), "--journal"])
        .arg(dir)
        .args(["--stale", "3600", "--json"])
        .envs(pg_server().credentials_env())
        .env("TASKFARM_RETRIES", "3")
        .env_remove("TASKFARM_TOKEN")
        .env_remove("JOB_ID")
        .env_remove("SGE_TASK_ID")
        .output()
        .expect("run unshare");
    eprintln!("taskfarm reap: {:?}", began.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "unshare --pid ... taskfarm reap failed ({}):\n{}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one pass, one JSON line:\n{stdout}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"))
}

/// A held worker: its job, its array task, its output file.
struct Holder {
    name: &'static str,
    job: String,
    task: Option<&'static str>,
    out: PathBuf,
}

impl Holder {
    /// The Grid Engine job as the journal records it.
    fn job_id(&self) -> JobId {
        JobId {
            scheduler: Scheduler::GridEngine,
            job: self.job.clone(),
            task: self.task.map(Into::into),
            instance: None,
        }
    }

    /// "Grid Engine job 7" or "Grid Engine job 7[2]".
    fn describe(&self) -> String {
        self.job_id().describe()
    }
}

#[test]
fn the_reaper_asks_grid_engine_whether_a_job_is_gone() {
    let cell = GridEngineCell::shared();
    let run = new_run(8);
    let dir = scratch("gridengine").join(format!("reap-{}", run.uuid()));
    let journal_dir = dir.join("journal");
    std::fs::create_dir_all(&journal_dir).unwrap();

    // Each job one worker that takes a task, reports 50 % and holds it.
    let submit = |name: &str, options: &[&str]| {
        let mut cmd = qsub(cell, &dir);
        cmd.args(["-l", &format!("h_rt={H_RT}")])
            .args(options)
            .args(["-e", &format!("{name}.err"), "-b", "y"])
            .arg(c_programs::reap_worker())
            .arg(run.uuid())
            .env("TASKFARM_JOURNAL", &journal_dir)
            .env("TASKFARM_UPDATE_INTERVAL", "0")
            .env("REAP_TEST_HOLD_AFTER", "0");
        cell.submit(cmd)
    };
    let running = submit("running", &["-o", "running.out"]);
    let suspended = submit("suspended", &["-o", "suspended.out"]);
    let deleted = submit("deleted", &["-o", "deleted.out"]);
    let array = submit("array", &["-t", "1-2", "-o", "array.out.$TASK_ID"]);
    let holders = [
        ("running", &running, None, "running.out"),
        ("suspended", &suspended, None, "suspended.out"),
        ("deleted", &deleted, None, "deleted.out"),
        ("array task 1", &array, Some("1"), "array.out.1"),
        ("array task 2", &array, Some("2"), "array.out.2"),
    ]
    .map(|(name, job, task, out)| Holder {
        name,
        job: job.clone(),
        task,
        out: dir.join(out),
    });
    let context = || {
        let outputs: String = holders
            .iter()
            .map(|h| format!("--- {} ---\n{}", h.name, read(&h.out)))
            .collect();
        format!("{}\n{outputs}\n{}", cell.qstat(), cell.logs())
    };

    // Every worker holds a task, and the journal names its job (and task).
    let tasks: Vec<i64> = holders
        .iter()
        .map(|h| {
            wait_until(&format!("{} holding a task", h.name), context, || {
                read(&h.out)
                    .lines()
                    .find_map(|l| l.strip_prefix("holding ")?.trim().parse().ok())
            })
        })
        .collect();
    let records: Vec<Record> = journal_files(&journal_dir, run.uuid())
        .iter()
        .map(|n| journal::read_record(&journal_dir.join(n), run.uuid()).unwrap())
        .collect();
    for (holder, task) in holders.iter().zip(&tasks) {
        let record = records
            .iter()
            .find(|r| r.task == Some(*task))
            .unwrap_or_else(|| panic!("no journal holds task {task}: {records:?}"));
        assert_eq!(record.jobs, [holder.job_id()], "{}", holder.name);
        let server_side = run.task(*task).unwrap();
        assert_eq!(
            (server_side.status, server_side.percent_completed),
            (TaskState::Computing, 50.0),
            "{}",
            holder.name
        );
    }

    // Suspended, as Grid Engine shows it.
    cell.run("qmod", &["-sj", &suspended]);
    wait_until("qstat to show the job suspended", context, || {
        (cell.job_state(&suspended, None).as_deref() == Some("s")).then_some(())
    });

    // Alive, every one: Grid Engine has them; nothing is given back.
    let pass = reap_in_another_pid_namespace(cell, &run, &journal_dir);
    for (holder, task) in holders.iter().zip(&tasks) {
        let (word, reason) = journals::verdict(&pass, *task);
        assert_eq!(word, "alive", "{}: {reason}\n{pass}", holder.name);
        assert!(
            reason.contains(&format!("its {} is running", holder.describe())),
            "{}: {reason}",
            holder.name
        );
    }
    assert_eq!(journals::given_back(&pass), Vec::<i64>::new(), "{pass}");
    assert_eq!(counts(&run).1, 5, "computing");

    // Deleted: the job, and task 1 of the array (task 2 runs on).
    cell.run("qdel", &[&deleted]);
    cell.run("qdel", &[&array, "-t", "1"]);
    cell.wait_gone(&deleted, DEADLINE);
    wait_until("qstat to drop task 1 of the array", context, || {
        (cell.job_state(&array, Some("1")).is_none()
            && cell.job_state(&array, Some("2")).as_deref() == Some("r"))
        .then_some(())
    });

    // Gone, through Grid Engine: the heartbeats are fresh, --stale is an hour.
    let pass = reap_in_another_pid_namespace(cell, &run, &journal_dir);
    let (word, reason) = journals::verdict(&pass, tasks[2]);
    assert_eq!(word, "gone", "{reason}\n{pass}");
    assert_eq!(reason, format!("Grid Engine no longer knows job {deleted}"));
    assert_eq!(journals::given_back(&pass), [tasks[2]], "{pass}");
    let record = run.task(tasks[2]).unwrap();
    assert_eq!(
        (record.status, record.percent_completed),
        (TaskState::Waiting, 50.0),
        "given back, percentage kept"
    );
    // The deleted array task: Grid Engine cannot tell it from a task queued
    // again, so the heartbeat decides, and it is fresh.
    let (word, reason) = journals::verdict(&pass, tasks[3]);
    assert_eq!(word, "alive", "{reason}\n{pass}");
    assert!(
        reason.contains(&format!(
            "Grid Engine: task 1 of Grid Engine job {array} is not running"
        )),
        "{reason}"
    );
    for i in [0, 1, 4] {
        let (word, reason) = journals::verdict(&pass, tasks[i]);
        assert_eq!(word, "alive", "{}: {reason}\n{pass}", holders[i].name);
        assert!(
            reason.contains(&format!("its {} is running", holders[i].describe())),
            "{}: {reason}",
            holders[i].name
        );
    }
    assert_eq!(counts(&run).1, 4, "computing");

    for job in [&running, &suspended, &array] {
        cell.run("qdel", &[job]);
    }
    for job in [&running, &suspended, &array] {
        cell.wait_gone(job, DEADLINE);
    }
}

// ---------------------------------------------------------------------------
// The C workers.
