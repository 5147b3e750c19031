//! `taskfarm reap` under a REAL Slurm (the single-node cluster of
//! tests/common/slurm.rs), against the real server on PostgreSQL + gunicorn:
//! an array element killed with `scancel --signal=KILL` is found gone through
//! Slurm, long before its heartbeat is stale.
//!
//! One array job of two elements, each a worker of tests/reap/worker.c with
//! `TASKFARM_JOURNAL` set that does one task and then holds the next at 50 %:
//!
//! - element 0: the worker is the batch step itself; `scancel --signal=KILL
//!   ARRAY_0` ends the element (squeue: CANCELLED);
//! - element 1: the worker is `srun`'s step 0; `scancel --signal=KILL
//!   ARRAY_1.0` ends that step while the element runs on. Element 1 has the
//!   array's own job id, which `squeue -j` shares with every element, and
//!   its steps are named `ARRAY_1.0`: the journal's ids must name exactly
//!   this element and step.
//!
//! `taskfarm reap --stale 3600` before the kills finds both workers alive
//! (their Slurm job is running); after them, both gone for Slurm's reasons,
//! their tasks given back (waiting, 50 % kept). Then element 1's step 1
//! finishes the run: every task done exactly once.
//!
//! Why the reaper runs in a UTS and PID namespace of its own: on this single
//! node the reaper and the workers share the kernel (boot id) and the PID
//! namespace, so the reaper would decide by the pid (the process has ended)
//! before it asks Slurm. `unshare --uts --pid` with the host name
//! `login-node` is the reaper on a login node, as users run it: the same
//! file system (the journals), the same Slurm, pids it cannot judge — so
//! only Slurm (or the heartbeat, which `--stale 3600` rules out) can tell
//! it that a worker is gone. The tests run as root, which `unshare` needs.
//!
//! Every wait is on an event (a worker's line in its output file, Slurm's
//! own view in squeue) with an overall deadline; nothing waits for a
//! guessed time. The cluster has no accounting (no slurmdbd), so sacct is
//! not asked: squeue's final state, or its not knowing the job any more
//! after MinJobAge, is the proof.

mod common;
// The reaper's parser of `scontrol show config`, which lives in the
// command-line tool (the library runs no `scontrol`); `ask` is not used here.
#[allow(dead_code)]
#[path = "../src/bin/taskfarm/reap/cluster_name.rs"]
mod cluster_name;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::c_programs;
use common::jobs::{pg_server, scratch};
use common::journals::{self, journal_files};
use common::slurm::SlurmCluster;
use serde_json::Value;
use taskfarm_worker::internal::worker::journal::{self, Record};
use taskfarm_worker::internal::{Run, TaskState};

const DEADLINE: Duration = Duration::from_secs(300);
/// The reaper's host name (see the module documentation).
const LOGIN_NODE: &str = "login-node";

/// Element 0: the worker is the batch step. Element 1: the worker is srun's
/// step 0; once that has ended, the script waits for $GO (written by the
/// test after the reaper's pass), then step 1 finishes the run.
const SCRIPT: &str = r#"#!/bin/bash
export REAP_TEST_HOLD_AFTER=1
if [ "$SLURM_ARRAY_TASK_ID" = 0 ]; then
    exec "$WORKER" "$RUN"
fi
srun --ntasks=1 "$WORKER" "$RUN"
echo "step 0 ended: $?"
while [ ! -e "$GO" ]; do sleep 0.1; done
unset REAP_TEST_HOLD_AFTER
exec srun --ntasks=1 "$WORKER" "$RUN"
"#;

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

fn output(dir: &Path, array: &str, element: u32) -> String {
    std::fs::read_to_string(dir.join(format!("out-{array}-{element}.txt"))).unwrap_or_default()
}

/// The task after `prefix` on a line of `text` ("holding 3").
fn task_after(text: &str, prefix: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
}

/// The journals of `run` in `dir`.
fn journals(dir: &Path, run: &str) -> Vec<Record> {
    journal_files(dir, run)
        .iter()
        .map(|n| {
            journal::read_record(&dir.join(n), run).unwrap_or_else(|e| panic!("journal {n}: {e:?}"))
        })
        .collect()
}

/// `JOBID STATE` lines of `squeue -t all -j JOB`: the state of job `job`.
fn squeue_state(cluster: &SlurmCluster, job: &str) -> Option<String> {
    let out = cluster
        .command("squeue")
        .args(["-h", "-t", "all", "-j", job, "-o", "%A %T"])
        .output()
        .expect("run squeue");
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (id, state) = l.split_once(' ')?;
        (id == job).then(|| state.trim().to_owned())
    })
}

/// The steps squeue lists for job `job` (`ARRAY_TASK.STEP` for an element).
fn squeue_steps(cluster: &SlurmCluster, job: &str) -> Vec<String> {
    let out = cluster
        .command("squeue")
        .args(["-h", "-s", "-j", job, "-o", "%i"])
        .output()
        .expect("run squeue -s");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn scancel_kill(cluster: &SlurmCluster, what: &str) {
    let out = cluster
        .command("scancel")
        .args(["--signal=KILL", what])
        .output()
        .expect("run scancel");
    assert!(
        out.status.success(),
        "scancel --signal=KILL {what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One pass of `taskfarm reap UUID --journal DIR --stale 3600 --json`, run
/// in a UTS namespace of its own whose host name is [`LOGIN_NODE`], with the
/// cluster's `SLURM_CONF`: its JSON report.
fn reap_from_login_node(cluster: &SlurmCluster, run: &Run, dir: &Path) -> Value {
    let server = pg_server();
    let out = cluster
        .command("unshare")
        .args([
            "--uts",
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
            r#"hostname "$0" && exec "$@""#,
            LOGIN_NODE,
        ])
        .arg(env!("CARGO_BIN_EXE_taskfarm"))
        .args(["reap", run.uuid(), "--journal"])
        .arg(dir)
        .args(["--stale", "3600", "--json"])
        .envs(server.credentials_env())
        .env("TASKFARM_RETRIES", "3")
        .env_remove("TASKFARM_TOKEN")
        .env_remove("SLURM_CLUSTER_NAME")
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "unshare --uts --pid ... taskfarm reap failed ({}):\n{}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one pass, one JSON line:\n{stdout}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"))
}

/// No file in `dir` holds the password or the token of `run`'s user.
fn assert_no_secret(dir: &Path, run: &Run) {
    let token = run.connection().token().expose().to_owned();
    let password = &pg_server().password;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let name = entry.file_name();
        assert!(
            !text.contains(password.as_str()),
            "{name:?} holds the password"
        );
        assert!(!text.contains(&token), "{name:?} holds the token");
    }
}

#[test]
fn an_array_element_killed_by_scancel_is_found_gone_through_slurm() {
    let cluster = SlurmCluster::shared();
    let server = pg_server();
    let settings = server.settings();
    let num_tasks = 6;
    let run = Run::create(&settings, num_tasks).unwrap();
    let dir = scratch("reap-slurm").join(run.uuid());
    let journal_dir = dir.join("journal");
    std::fs::create_dir_all(&journal_dir).unwrap();
    let go = dir.join("go");
    std::fs::write(dir.join("job.sh"), SCRIPT).unwrap();

    let mut sbatch = cluster.sbatch();
    sbatch
        .current_dir(&dir)
        .args(["--array=0-1", "-o", "out-%A-%a.txt", "job.sh"])
        .envs(server.credentials_env())
        .env("TASKFARM_JOURNAL", &journal_dir)
        // Progress sent at once: the server has the 50 % when "holding" is
        // printed, and the give-back must keep it.
        .env("TASKFARM_UPDATE_INTERVAL", "0")
        .env("TASKFARM_RETRIES", "3")
        .env("WORKER", c_programs::reap_worker())
        .env("RUN", run.uuid())
        .env("GO", &go)
        .env_remove("TASKFARM_TOKEN")
        .env_remove("TASKFARM_JOURNAL_HEARTBEAT")
        .env_remove("TASKFARM_STOP_SIGNALS")
        .env_remove("REAP_TEST_HOLD_AFTER");
    let array = cluster.submit(sbatch);
    let context = || {
        format!(
            "--- squeue ---\n{}--- element 0 ---\n{}--- element 1 ---\n{}",
            cluster.squeue(),
            output(&dir, &array, 0),
            output(&dir, &array, 1)
        )
    };

    // Both workers hold a task (and the server has its 50 %).
    let held: Vec<i64> = wait_until("both elements holding a task", context, || {
        let a = task_after(&output(&dir, &array, 0), "holding ")?;
        let b = task_after(&output(&dir, &array, 1), "holding ")?;
        Some(vec![a, b])
    });
    let (task0, task1) = (held[0], held[1]);
    for task in [task0, task1] {
        let record = run.task(task).unwrap();
        assert_eq!(
            (record.status, record.percent_completed),
            (TaskState::Computing, 50.0),
            "task {task}"
        );
    }

    // The journals name exactly each element (its own job id) and the step.
    let elements: BTreeMap<String, String> = cluster
        .job_records(&array)
        .into_iter()
        .map(|r| (r.array_task_id.unwrap_or_default(), r.job_id))
        .collect();
    let (job0, job1) = (elements["0"].clone(), elements["1"].clone());
    assert_eq!(
        job1, array,
        "element 1 has the array's own id: {elements:?}"
    );
    let config = cluster
        .command("scontrol")
        .args(["show", "config"])
        .output()
        .unwrap();
    let cluster_name = cluster_name::cluster_name(&String::from_utf8_lossy(&config.stdout))
        .expect("ClusterName in scontrol show config");
    let records = journals(&journal_dir, run.uuid());
    assert_eq!(records.len(), 2, "{records:?}");
    for (task, job, index, step) in [(task0, &job0, "0", None), (task1, &job1, "1", Some("0"))] {
        let record = records
            .iter()
            .find(|r| r.task == Some(task))
            .unwrap_or_else(|| panic!("no journal holds task {task}: {records:?}"));
        let ids = record.slurm.as_ref().expect("Slurm ids in the journal");
        assert_eq!(
            (
                ids.job_id.as_deref(),
                ids.array_job_id.as_deref(),
                ids.array_task_id.as_deref(),
                ids.step_id.as_deref(),
                ids.cluster.as_deref(),
            ),
            (
                Some(job.as_str()),
                Some(array.as_str()),
                Some(index),
                step,
                Some(cluster_name.as_str())
            ),
            "{record:?}"
        );
        assert_ne!(record.host, LOGIN_NODE);
    }

    assert_no_secret(&journal_dir, &run);

    // Alive: Slurm says so; nothing is given back.
    let pass = reap_from_login_node(cluster, &run, &journal_dir);
    for task in [task0, task1] {
        let (word, reason) = journals::verdict(&pass, task);
        assert_eq!(word, "alive", "task {task}: {reason}\n{pass}");
        assert!(
            reason.contains("its Slurm job is running"),
            "task {task}: {reason}"
        );
    }
    assert_eq!(journals::given_back(&pass), Vec::<i64>::new(), "{pass}");
    assert_eq!(run.status().unwrap().num_computing, 2);

    // Kill the element, and the step of the other one.
    scancel_kill(cluster, &format!("{array}_0"));
    scancel_kill(cluster, &format!("{array}_1.0"));
    let step = format!("{array}_1.0");
    wait_until("Slurm to show element 0 ended", context, || {
        squeue_state(cluster, &job0).filter(|s| s == "CANCELLED")
    });
    wait_until("Slurm to show step 0 of element 1 ended", context, || {
        (output(&dir, &array, 1).contains("step 0 ended")
            && !squeue_steps(cluster, &job1).contains(&step))
        .then_some(())
    });
    assert_eq!(squeue_state(cluster, &job1).as_deref(), Some("RUNNING"));

    // Gone, through Slurm: the heartbeats are fresh and --stale is an hour.
    let pass = reap_from_login_node(cluster, &run, &journal_dir);
    let (word, reason) = journals::verdict(&pass, task0);
    assert_eq!(word, "gone", "{reason}\n{pass}");
    assert_eq!(
        reason,
        format!("Slurm job {job0} is CANCELLED (array element {array}_0)")
    );
    let (word, reason) = journals::verdict(&pass, task1);
    assert_eq!(word, "gone", "{reason}\n{pass}");
    assert_eq!(
        reason,
        format!("Slurm step {job1}.0 is no longer running (array element {array}_1)")
    );
    let mut expected = vec![task0, task1];
    expected.sort();
    assert_eq!(journals::given_back(&pass), expected, "{pass}");
    for task in [task0, task1] {
        let record = run.task(task).unwrap();
        assert_eq!(
            (record.status, record.percent_completed),
            (TaskState::Waiting, 50.0),
            "task {task} given back, percentage kept"
        );
    }
    assert!(journals(&journal_dir, run.uuid()).is_empty());
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(journal_dir.join(format!("reap-{}.json", run.uuid()))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["attempts"],
        serde_json::json!({task0.to_string(): 1, task1.to_string(): 1})
    );

    // Element 1's step 1 finishes the run.
    std::fs::write(&go, "").unwrap();
    let ends = cluster.wait_job(&array, DEADLINE);
    let text = format!("{}{}", output(&dir, &array, 0), output(&dir, &array, 1));
    assert_eq!(
        ends.iter()
            .map(|e| (e.state.as_str(), e.exit_code.as_str()))
            .collect::<Vec<_>>()[1],
        ("COMPLETED", "0:0"),
        "{ends:?}\n{text}"
    );
    assert_eq!(ends[0].state, "CANCELLED", "{ends:?}");
    let status = run.status().unwrap();
    assert_eq!(
        (status.num_done, status.num_computing, status.num_waiting),
        (num_tasks, 0, 0),
        "{text}"
    );
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("task ") {
            *count.entry(t.trim().parse().unwrap()).or_default() += 1;
        }
    }
    assert_eq!(
        count,
        (0..num_tasks).map(|t| (t, 1)).collect::<BTreeMap<_, _>>(),
        "every task done exactly once\n{text}"
    );
    assert!(
        journals(&journal_dir, run.uuid()).is_empty(),
        "the last worker was freed cleanly: no journal left"
    );
    let pass = reap_from_login_node(cluster, &run, &journal_dir);
    assert_eq!(pass["finished"], true, "{pass}");
}
