//! The Slurm examples under a REAL single-node Slurm cluster
//! (tests/common/slurm.rs, one cluster for this test binary, a node of 4
//! CPUs), against the real server on PostgreSQL + gunicorn. Jobs are
//! configured only through the environment of `sbatch`, as a user's are.
//!
//! - `sbatch --array=1-4 examples/slurm_array.sh UUID`: 4 elements, each one
//!   worker (examples/worker.c) with the password from the environment:
//!   every task done exactly once, one password check per element.
//! - `sbatch -n 4 examples/slurm_job.sh UUID`: the job script fetches the
//!   token once (`taskfarm token`) and srun starts 4 workers with it: every
//!   task done once, ONE `GET token` for the whole job.
//! - `sbatch -n 4 --wrap 'srun --mpi=pmix mpi_worker UUID'` (Open MPI under
//!   srun): rank 0's password check is the job's only one.
//! - the same job script starting the MPI example (SLURM_MPI_TYPE=pmix): the
//!   script's token reaches rank 0, which then sends no password at all.
//!
//! Jobs are waited for by polling `scontrol show job` with an overall
//! deadline. The tests take turns (one lock): the access log is counted per
//! job, and the node's 4 CPUs hold one job of 4 at a time anyway.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::jobs::{
    assert_each_task_once, assert_run_done, examples, job_dir, mpi_report, new_run, pg_server,
    root, token_requests, worker_tasks,
};
use common::server::TaskfarmServer;
use common::slurm::{JobEnd, SlurmCluster};

const DEADLINE: Duration = Duration::from_secs(600);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `sbatch --parsable` in `dir` with the environment a user of the server
/// would have: the server's URL and the credentials, the `taskfarm` tool on
/// the PATH, no token.
fn sbatch(cluster: &SlurmCluster, server: &TaskfarmServer, dir: &Path) -> Command {
    let tool_dir = Path::new(env!("CARGO_BIN_EXE_taskfarm")).parent().unwrap();
    let path = format!(
        "{}:{}",
        tool_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = cluster.sbatch();
    cmd.current_dir(dir)
        .env("PATH", path)
        .envs(server.credentials_env())
        .env_remove("TASKFARM_TOKEN")
        .env("WORKER_STEP_MS", "0");
    cmd
}

/// Waits for the job and asserts that it (every element) completed with
/// exit code 0; the job's output files of `dir` go into the failure message.
fn assert_completed(cluster: &SlurmCluster, job: &str, elements: usize, dir: &Path) {
    let ends = cluster.wait_job(job, DEADLINE);
    let ok = |e: &JobEnd| e.state == "COMPLETED" && e.exit_code == "0:0";
    if ends.len() != elements || !ends.iter().all(ok) {
        panic!(
            "job {job}: {ends:?} (want {elements} COMPLETED 0:0)\n{}\n--- slurmd.log ---\n{}",
            outputs(dir),
            cluster.log_tail("log/slurmd.log", 20)
        );
    }
}

/// Every file of `dir`, for failure messages.
fn outputs(dir: &Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            format!(
                "--- {} ---\n{}",
                f.display(),
                std::fs::read_to_string(f).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// file name -> the tasks examples/worker.c reported done in it, for the
/// files of `dir` whose name starts with `prefix`.
fn worker_outputs(dir: &Path, prefix: &str) -> BTreeMap<String, Vec<i64>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                worker_tasks(&text),
            )
        })
        .collect()
}

/// The password checks since `before` (a [`token_requests`] count).
fn checks_since(server: &TaskfarmServer, before: usize) -> usize {
    token_requests(server) - before
}

#[test]
fn array_job_of_4_elements_does_every_task_once() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (cluster, server) = (SlurmCluster::shared(), pg_server());
    let dir = job_dir("slurm", "array");
    let tasks = 60;
    let uuid = new_run(server, tasks);
    let checks_before = token_requests(server);
    let mut cmd = sbatch(cluster, server, &dir);
    cmd.args(["--array=1-4", "--output=element-%a.out"])
        .arg(root().join("examples/slurm_array.sh"))
        .arg(&uuid)
        .env("WORKER", examples().join("worker"));
    let job = cluster.submit(cmd);
    assert_completed(cluster, &job, 4, &dir);
    // Before the checks below: they open the run with the password.
    let checks = checks_since(server, checks_before);

    let done = worker_outputs(&dir, "element-");
    assert_eq!(done.len(), 4, "one output per element:\n{}", outputs(&dir));
    assert_each_task_once(tasks, &done);
    assert_run_done(server, &uuid, tasks);
    // Without a shared token, each element checks the password once.
    assert_eq!(checks, 4, "GET token requests");
}

#[test]
fn job_script_fetches_one_token_for_4_srun_workers() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (cluster, server) = (SlurmCluster::shared(), pg_server());
    let dir = job_dir("slurm", "srun");
    let tasks = 60;
    let uuid = new_run(server, tasks);
    let checks_before = token_requests(server);
    let mut cmd = sbatch(cluster, server, &dir);
    cmd.args(["--ntasks=4", "--output=job.out"])
        .arg(root().join("examples/slurm_job.sh"))
        .arg(&uuid)
        .env("WORKER", examples().join("worker"))
        // srun's --output: one file per task of the step.
        .env("SLURM_STDOUTMODE", dir.join("task-%t.out"));
    let job = cluster.submit(cmd);
    assert_completed(cluster, &job, 1, &dir);
    // Before the checks below: they open the run with the password.
    let checks = checks_since(server, checks_before);

    let done = worker_outputs(&dir, "task-");
    assert_eq!(
        done.len(),
        4,
        "one output per srun task:\n{}",
        outputs(&dir)
    );
    assert_each_task_once(tasks, &done);
    assert_run_done(server, &uuid, tasks);
    assert_eq!(checks, 1, "the job script's `taskfarm token` only");
    let job_out = std::fs::read_to_string(dir.join("job.out")).unwrap();
    assert!(
        !job_out.contains(&server.password),
        "the password in the job's output"
    );
}

/// `srun --mpi=list` names pmix, which Open MPI's ranks need under srun.
fn assert_pmix(cluster: &SlurmCluster) {
    let out = cluster
        .command("srun")
        .arg("--mpi=list")
        .output()
        .expect("run srun --mpi=list");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines().any(|l| l.trim() == "pmix"),
        "srun --mpi=list has no pmix (apt-get install -y slurmd, which brings \
         Slurm's PMIx plugin):\n{text}"
    );
}

#[test]
fn srun_mpi_pmix_runs_4_ranks_with_rank_0s_one_password_check() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (cluster, server) = (SlurmCluster::shared(), pg_server());
    assert_pmix(cluster);
    let dir = job_dir("slurm", "srun-mpi");
    let tasks = 200;
    let uuid = new_run(server, tasks);
    let checks_before = token_requests(server);
    let binary = examples().join("openmpi/mpi_worker");
    let mut cmd = sbatch(cluster, server, &dir);
    cmd.args(["--ntasks=4", "--output=job.out", "--wrap"])
        .arg(format!("srun --mpi=pmix {} {uuid}", binary.display()));
    let job = cluster.submit(cmd);
    assert_completed(cluster, &job, 1, &dir);
    // Before the checks below: they open the run with the password.
    let checks = checks_since(server, checks_before);

    let out = std::fs::read_to_string(dir.join("job.out")).unwrap();
    let done = mpi_report(&out, 4);
    assert_each_task_once(tasks, &done);
    assert_run_done(server, &uuid, tasks);
    assert_eq!(checks, 1, "rank 0's only");
}

#[test]
fn job_script_token_reaches_mpi_ranks_under_srun() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (cluster, server) = (SlurmCluster::shared(), pg_server());
    assert_pmix(cluster);
    let dir = job_dir("slurm", "job-mpi");
    let tasks = 200;
    let uuid = new_run(server, tasks);
    let checks_before = token_requests(server);
    let mut cmd = sbatch(cluster, server, &dir);
    cmd.args(["--ntasks=4", "--output=job.out"])
        .arg(root().join("examples/slurm_job.sh"))
        .arg(&uuid)
        .env("WORKER", examples().join("openmpi/mpi_worker_f"))
        .env("SLURM_MPI_TYPE", "pmix");
    let job = cluster.submit(cmd);
    assert_completed(cluster, &job, 1, &dir);
    // Before the checks below: they open the run with the password.
    let checks = checks_since(server, checks_before);

    let out = std::fs::read_to_string(dir.join("job.out")).unwrap();
    let done = mpi_report(&out, 4);
    assert_each_task_once(tasks, &done);
    assert_run_done(server, &uuid, tasks);
    assert_eq!(
        checks, 1,
        "the job script's `taskfarm token` only (rank 0 starts with it)"
    );
}
