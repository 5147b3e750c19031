//! The Slurm cluster harness itself (tests/harness/slurm_cluster.py through
//! tests/common/slurm.rs): a cluster runs jobs, and nothing of it is left
//! running after `stop` -- nor after the process it watches is gone, with a
//! job still running.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::slurm::{cluster_processes, SlurmCluster};

const DEADLINE: Duration = Duration::from_secs(120);

/// Submits a job whose step sleeps and waits (polling) until it runs, with a
/// job process on the node.
fn start_sleeping_job(cluster: &SlurmCluster) -> String {
    let mut sbatch = cluster.sbatch();
    sbatch
        .current_dir(&cluster.state_dir)
        .args(["--output=/dev/null", "--wrap", "srun sleep 300"]);
    let job = cluster.submit(sbatch);
    let start = Instant::now();
    loop {
        let records = cluster.job_records(&job);
        let running = records.iter().any(|r| r.state == "RUNNING");
        let sleeping = cluster.processes().iter().any(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.ends_with(b"sleep\x00300\x00"))
        });
        if running && sleeping {
            return job;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "job {job} not running within {DEADLINE:?}: {records:?}\n{}",
            cluster.squeue()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stop_cancels_the_jobs_and_leaves_nothing_running() {
    let cluster = SlurmCluster::start();
    assert!(cluster.is_running());
    let info = cluster
        .command("sinfo")
        .args(["-h", "-o", "%T %c"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&info.stdout).trim(),
        format!("idle {}", cluster.cpus),
        "sinfo after start"
    );
    start_sleeping_job(&cluster);
    assert!(!cluster.processes().is_empty());
    cluster.stop();
    assert!(!cluster.is_running(), "the supervisor outlived stop");
    assert_eq!(cluster.processes(), Vec::<i32>::new(), "left after stop");
}

#[test]
fn a_cluster_stops_by_itself_when_the_watched_process_is_gone() {
    let mut watched = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let cluster = SlurmCluster::start_watching(watched.id() as i32, None);
    start_sleeping_job(&cluster);
    watched.kill().unwrap();
    watched.wait().unwrap();
    let start = Instant::now();
    loop {
        let left = cluster_processes(&cluster.state_dir);
        if left.is_empty() && !cluster.is_running() {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "still running {DEADLINE:?} after the watched process died: {left:?}\n{}",
            cluster.log_tail("harness.log", 20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        cluster
            .log_tail("harness.log", 40)
            .contains("the watched process"),
        "the harness log says why it stopped:\n{}",
        cluster.log_tail("harness.log", 40)
    );
}
