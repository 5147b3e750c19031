//! Stop signals under a REAL Slurm time limit (the single-node cluster of
//! tests/common/slurm.rs) against the real server on PostgreSQL + gunicorn,
//! with the unchanged `examples/worker.c` and `TASKFARM_STOP_SIGNALS`:
//!
//! 1. an array job with `--time=00:01:00` whose tasks (200 s each) outlast
//!    it: Slurm's SIGTERM at the limit makes every element hand its task
//!    back; after the job, every task is done or waiting, none computing;
//! 2. at the same time, a 2-minute job with `--signal=B:USR1@30` whose script
//!    forwards USR1 to its worker (the recipe of docs/stopping.md): the job ends before
//!    its time limit, nothing computing;
//! 3. the first job resubmitted (short steps) finishes its run: every task
//!    done exactly once over both jobs.
//!
//! Jobs are waited for by polling `scontrol show job` with an overall
//! deadline; nothing waits for a guessed time.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::c_programs;
use common::jobs::{job_dir, pg_server};
use common::slurm::SlurmCluster;
use taskfarm_worker::internal::{Run, Settings};

const DEADLINE: Duration = Duration::from_secs(600);

fn new_run(num_tasks: i64) -> Run {
    let s = pg_server();
    let settings = Settings::resolve(Some(&s.user), Some(&s.password), Some(&s.url)).unwrap();
    Run::create(&settings, num_tasks).unwrap()
}

/// examples/worker.c, unchanged, built against the tree
/// (tests/common/c_programs.rs: run `make build` first).
fn example_worker() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = job_dir("stop-slurm", "bin").join("worker");
        c_programs::build("examples/worker.c", &bin);
        bin
    })
}

/// Writes `script` into `dir` and submits it with `options`, the server's
/// credentials and `WORKER`, `RUN` in the job's environment.
fn submit(cluster: &SlurmCluster, dir: &Path, script: &str, options: &[&str], run: &Run) -> String {
    let path = dir.join("job.sh");
    std::fs::write(&path, script).unwrap();
    let s = pg_server();
    let mut sbatch = cluster.sbatch();
    sbatch
        .current_dir(dir)
        .args(options)
        .args(["-o", "out-%A-%a.txt"])
        .arg(&path)
        .env("TASKFARM_URL", &s.url)
        .env("TASKFARM_USER", &s.user)
        .env("TASKFARM_PASSWORD", &s.password)
        .env("WORKER", example_worker())
        .env("RUN", run.uuid())
        .env_remove("TASKFARM_TOKEN")
        .env_remove("TASKFARM_STOP_SIGNALS")
        .env_remove("TASKFARM_DEADLINE")
        .env_remove("TASKFARM_TASK_SECONDS");
    cluster.submit(sbatch)
}

/// Every output file of `dir`, for messages and for counting done tasks.
fn outputs(dir: &Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            format!(
                "--- {} ---\n{}",
                p.display(),
                std::fs::read_to_string(p).unwrap_or_default()
            )
        })
        .collect()
}

/// How many times each task was reported done ("worker X: task N done").
fn done_lines(text: &str) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["worker", _, "task", n, "done"] = words[..] {
            *counts.entry(n.parse().unwrap()).or_insert(0) += 1;
        }
    }
    counts
}

fn counts(run: &Run) -> (i64, i64, i64) {
    let st = run.status().unwrap();
    (st.num_waiting, st.num_computing, st.num_done)
}

const TIME_LIMIT_SCRIPT: &str = r#"#!/bin/bash
export TASKFARM_STOP_SIGNALS=TERM
srun --ntasks=1 "$WORKER" -s "$STEP_MS" "$RUN"
"#;

/// The recipe of docs/stopping.md: the batch shell gets USR1 and passes it on.
const EARLY_WARNING_SCRIPT: &str = r#"#!/bin/bash
export TASKFARM_STOP_SIGNALS=USR1,TERM
trap 'kill -USR1 $pid' USR1
"$WORKER" -s "$STEP_MS" "$RUN" & pid=$!
wait $pid; wait $pid
"#;

#[test]
fn a_time_limit_hands_every_task_back_and_a_resubmission_finishes_the_run() {
    let cluster = SlurmCluster::shared();
    let limited = new_run(4);
    let warned = new_run(2);
    let dir1 = job_dir("stop-slurm", "time-limit");
    let dir2 = job_dir("stop-slurm", "early-warning");
    // 4 steps of 50 s: a task takes 200 s. Slurm checks time limits only
    // every so often (the job may run 90 s and more of its minute here), so
    // a task must outlast that by far; the first step ends (25 %) before the
    // minute is up.
    let mut limit_opts = vec!["--time=00:01:00", "--array=0-1"];
    let job1 = submit(
        cluster,
        &dir1,
        &TIME_LIMIT_SCRIPT.replace("$STEP_MS", "50000"),
        &limit_opts,
        &limited,
    );
    let job2 = submit(
        cluster,
        &dir2,
        &EARLY_WARNING_SCRIPT.replace("$STEP_MS", "50000"),
        // Slurm may signal up to a minute early: a 2-minute job gets USR1
        // 30 to 90 s after it starts, its worker holding a task.
        &["--time=00:02:00", "--signal=B:USR1@30"],
        &warned,
    );

    let ends1 = cluster.wait_job(&job1, DEADLINE);
    let text1 = outputs(&dir1);
    eprintln!("time limit: {ends1:?}");
    assert_eq!(ends1.len(), 2, "{ends1:?}\n{text1}");
    assert!(
        ends1.iter().all(|e| e.state == "TIMEOUT"),
        "both elements ran into the limit: {ends1:?}\n{text1}"
    );
    let (waiting, computing, done) = counts(&limited);
    assert_eq!(computing, 0, "none computing after the time limit\n{text1}");
    assert_eq!((waiting, done), (2, 0), "two tasks handed back\n{text1}");
    // The server is the witness: srun may drop a step's last output line
    // while it tears the step down.
    for task in [0, 1] {
        let record = limited.task(task).unwrap();
        assert!(
            record.percent_completed >= 25.0,
            "task {task} handed back at its last percentage: {record:?}\n{text1}"
        );
    }

    let ends2 = cluster.wait_job(&job2, DEADLINE);
    let text2 = outputs(&dir2);
    eprintln!("early warning: {ends2:?}");
    assert_eq!(ends2.len(), 1, "{ends2:?}");
    assert_ne!(
        ends2[0].state, "TIMEOUT",
        "USR1 ended the job before its limit\n{text2}"
    );
    // The script's status is the worker's: killed by USR1, 128 + 10.
    assert_eq!(ends2[0].exit_code, "138:0", "{ends2:?}\n{text2}");
    assert_eq!(counts(&warned).1, 0, "none computing after USR1\n{text2}");

    // Resubmitted with short steps: the run finishes, each task done once.
    limit_opts[0] = "--time=00:05:00";
    let job3 = submit(
        cluster,
        &dir1,
        &TIME_LIMIT_SCRIPT.replace("$STEP_MS", "100"),
        &limit_opts,
        &limited,
    );
    let ends3 = cluster.wait_job(&job3, DEADLINE);
    let text3 = outputs(&dir1);
    assert!(
        ends3
            .iter()
            .all(|e| e.state == "COMPLETED" && e.exit_code == "0:0"),
        "{ends3:?}\n{text3}"
    );
    assert_eq!(counts(&limited), (0, 0, 4), "the run is done\n{text3}");
    let done = done_lines(&text3);
    assert_eq!(
        done,
        (0..4).map(|t| (t, 1)).collect::<BTreeMap<_, _>>(),
        "every task done exactly once over both jobs\n{text3}"
    );
}
