//! `taskfarm run` under the batch systems it is made for, against the real
//! server on PostgreSQL + gunicorn:
//!
//! - a REAL Slurm array (the single-node cluster of tests/common/slurm.rs),
//!   one `taskfarm run` per element, without `srun` and as an `srun` step:
//!   every task done once ([`a_slurm_array_with_and_without_srun_finishes_the_run`]);
//! - the same array at its time limit: Slurm's SIGTERM makes `taskfarm run`
//!   stop its commands and hand their tasks back at the percentage they
//!   reported, none left computing and none counted as failed
//!   ([`a_slurm_time_limit_hands_the_tasks_back_at_their_percentage`]);
//! - `mpirun -n 4` (Open MPI), one `taskfarm run` per rank: every task done
//!   once over the ranks' job logs ([`mpirun_with_four_ranks_does_every_task_once`]).
//!
//! Jobs are waited for by polling `scontrol show job` with an overall
//! deadline; nothing waits for a guessed time.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::jobs::{job_dir, pg_server};
use common::slurm::SlurmCluster;
use taskfarm_worker::internal::{Run, Settings};

const DEADLINE: Duration = Duration::from_secs(600);

fn new_run(num_tasks: i64) -> Run {
    let s = pg_server();
    let settings = Settings::resolve(Some(&s.user), Some(&s.password), Some(&s.url)).unwrap();
    Run::create(&settings, num_tasks).unwrap()
}

/// Writes `script` into `dir` and submits it with `options`, the server's
/// credentials, `TASKFARM` (the tool) and `RUN` in the job's environment.
fn submit(cluster: &SlurmCluster, dir: &Path, script: &str, options: &[&str], run: &Run) -> String {
    let path = dir.join("job.sh");
    std::fs::write(&path, script).unwrap();
    let mut sbatch = cluster.sbatch();
    sbatch
        .current_dir(dir)
        .args(options)
        .args(["-o", "out-%A-%a.txt"])
        .arg(&path)
        .envs(pg_server().credentials_env())
        .env("TASKFARM", env!("CARGO_BIN_EXE_taskfarm"))
        .env("RUN", run.uuid())
        .env("TASKFARM_UPDATE_INTERVAL", "0")
        .env_remove("TASKFARM_TOKEN")
        .env_remove("TASKFARM_STOP_SIGNALS")
        .env_remove("TASKFARM_JOURNAL");
    cluster.submit(sbatch)
}

/// Every `.txt` output of `dir`, for messages.
fn outputs(dir: &Path) -> String {
    files_ending(dir, ".txt")
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

fn files_ending(dir: &Path, end: &str) -> Vec<PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(end))
        .collect();
    names.sort();
    names
}

/// The job-log lines of every `*.jsonl` of `dir`.
fn joblog_lines(dir: &Path) -> Vec<serde_json::Value> {
    files_ending(dir, ".jsonl")
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

/// How many job-log lines each task has, and that each says the command
/// exited with 0.
fn successes_per_task(lines: &[serde_json::Value]) -> BTreeMap<i64, usize> {
    let mut per_task = BTreeMap::new();
    for line in lines {
        assert_eq!(
            (&line["exit"], &line["outcome"]),
            (&0.into(), &"done".into()),
            "{line}"
        );
        *per_task.entry(line["task"].as_i64().unwrap()).or_insert(0) += 1;
    }
    per_task
}

fn counts(run: &Run) -> (i64, i64, i64) {
    let st = run.status().unwrap();
    (st.num_waiting, st.num_computing, st.num_done)
}

/// One `taskfarm run` per array element, its job log named after it.
const ARRAY_SCRIPT: &str = r#"#!/bin/bash
$SRUN "$TASKFARM" run "$RUN" --joblog "log-$SLURM_ARRAY_TASK_ID.jsonl" -- \
    sh -c 'echo "task $TASKFARM_TASK on $SLURM_JOB_ID"'
"#;

#[test]
fn a_slurm_array_with_and_without_srun_finishes_the_run() {
    let cluster = SlurmCluster::shared();
    for (name, srun) in [("plain", ""), ("srun", "srun --ntasks=1")] {
        let run = new_run(8);
        let dir = job_dir("run-batch", name);
        let job = submit(
            cluster,
            &dir,
            &ARRAY_SCRIPT.replace("$SRUN", srun),
            &["--time=00:05:00", "--array=0-1"],
            &run,
        );
        let ends = cluster.wait_job(&job, DEADLINE);
        let text = outputs(&dir);
        assert_eq!(ends.len(), 2, "{name}: {ends:?}\n{text}");
        assert!(
            ends.iter()
                .all(|e| e.state == "COMPLETED" && e.exit_code == "0:0"),
            "{name}: every element ends with taskfarm run's 0\n{ends:?}\n{text}"
        );
        assert_eq!(counts(&run), (0, 0, 8), "{name}: the run is done\n{text}");
        let per_task = successes_per_task(&joblog_lines(&dir));
        assert_eq!(
            per_task,
            (0..8).map(|t| (t, 1)).collect::<BTreeMap<_, _>>(),
            "{name}: every task run once over both elements\n{text}"
        );
    }
}

/// The command reports 40 % and then outlasts the job's time limit.
const TIME_LIMIT_SCRIPT: &str = r#"#!/bin/bash
exec "$TASKFARM" run "$RUN" --journal journal --joblog "log-$SLURM_ARRAY_TASK_ID.jsonl" -- \
    sh -c 'echo 40 > "$TASKFARM_PROGRESS"; exec sleep 600'
"#;

#[test]
fn a_slurm_time_limit_hands_the_tasks_back_at_their_percentage() {
    let cluster = SlurmCluster::shared();
    let run = new_run(4);
    let dir = job_dir("run-batch", "time-limit");
    std::fs::create_dir_all(dir.join("journal")).unwrap();
    let job = submit(
        cluster,
        &dir,
        TIME_LIMIT_SCRIPT,
        &["--time=00:01:00", "--array=0-1"],
        &run,
    );
    let ends = cluster.wait_job(&job, DEADLINE);
    let text = outputs(&dir);
    eprintln!("time limit: {ends:?}");
    assert_eq!(ends.len(), 2, "{ends:?}\n{text}");
    assert!(
        ends.iter().all(|e| e.state == "TIMEOUT"),
        "both elements ran into the limit: {ends:?}\n{text}"
    );
    assert_eq!(
        counts(&run),
        (2, 0, 0),
        "two tasks handed back, none computing\n{text}"
    );
    for task in [0, 1] {
        let record = run.task(task).unwrap();
        assert_eq!(
            record.percent_completed, 40.0,
            "task {task} handed back at the percentage its command reported\n{text}"
        );
    }
    // A stop is no failure: no attempt recorded for the commands it ended.
    let records = files_ending(&dir.join("journal"), ".json")
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("attempt-")
        })
        .count();
    assert_eq!(records, 0, "a stopped command counted as failed\n{text}");
}

#[test]
fn mpirun_with_four_ranks_does_every_task_once() {
    let run = new_run(12);
    let dir = job_dir("run-batch", "mpirun");
    let out = Command::new("mpirun.openmpi")
        // Root needs --allow-run-as-root; more ranks than cores need
        // --oversubscribe.
        .args(["--allow-run-as-root", "--oversubscribe", "-n", "4"])
        .args(["sh", "-c"])
        .arg(
            r#"exec "$TASKFARM" run "$RUN" --joblog "log-$OMPI_COMM_WORLD_RANK.jsonl" -- \
                sh -c 'echo "task $TASKFARM_TASK"'"#,
        )
        .current_dir(&dir)
        .envs(pg_server().credentials_env())
        .env("TASKFARM", env!("CARGO_BIN_EXE_taskfarm"))
        .env("RUN", run.uuid())
        .env("TASKFARM_UPDATE_INTERVAL", "0")
        .env_remove("TASKFARM_TOKEN")
        .env_remove("TASKFARM_JOURNAL")
        .output()
        .expect("run mpirun.openmpi");
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mpirun: {}\n{said}", out.status);
    assert_eq!(counts(&run), (0, 0, 12), "the run is done\n{said}");
    let lines = joblog_lines(&dir);
    let per_task = successes_per_task(&lines);
    assert_eq!(
        per_task,
        (0..12).map(|t| (t, 1)).collect::<BTreeMap<_, _>>(),
        "every task run once over the four ranks\n{said}"
    );
}
