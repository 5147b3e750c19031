//! `taskfarm reap` at the scale of a big job array: one pass over 1,000
//! journals of one array asks Slurm twice (the states of all the elements in
//! one `squeue -t all -j ...`, the steps of those running in one `squeue -s
//! -j ...`), not once per element, and takes a few seconds.
//!
//! The journals are synthetic (written here from a real journal's record):
//! 1,000 workers of array 10000 on another host (so that no pid is looked
//! at), each in `srun`'s step 0 of its element, heartbeats fresh (so that
//! only Slurm can tell that a worker is gone); workers 0..99 hold tasks 0..99
//! of a real run on the real server, the others none. `squeue` is a fake on
//! `PATH` that writes each of its command lines to a file and answers: the
//! elements with an even job id are running, those with an odd one are no
//! longer listed; of the running ones, those whose id is a multiple of 4
//! still have their step 0. So 750 workers are gone, 250 alive, and of the
//! 100 tasks the 75 held by gone workers come back.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::journals::journal_files;
use common::server::TaskfarmServer;
use serde_json::Value;
use taskfarm_worker::internal::clock::unix_now;
use taskfarm_worker::internal::worker::journal::{self, Journal, Record, SlurmIds};
use taskfarm_worker::internal::{Run, TaskState};

const WORKERS: u64 = 1000;
const HOLDERS: u64 = 100;
const FIRST_JOB: u64 = 10_000;

/// Answers as the module documentation says, and logs its command lines.
const FAKE_SQUEUE: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$SQUEUE_CALLS"
jobs=""; steps=0
while [ $# -gt 0 ]; do
  case "$1" in -j) jobs="$2"; shift ;; -s) steps=1 ;; esac
  shift
done
IFS=,
for j in $jobs; do
  if [ $((j % 2)) -eq 0 ]; then
    if [ $steps -eq 0 ]; then echo "$j RUNNING"
    elif [ $((j % 4)) -eq 0 ]; then echo "$j.0"; fi
  fi
done
"#;

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("reap-scale-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn one_pass_over_a_thousand_journals_asks_squeue_twice_and_takes_seconds() {
    let server = TaskfarmServer::start();
    let mut settings = server.settings();
    settings.retries = 3;
    let run = Run::create(&settings, HOLDERS as i64).unwrap();
    for task in 0..HOLDERS as i64 {
        run.set_task_state(task, TaskState::Computing).unwrap();
    }

    let dir = scratch("journals");
    let template = Journal::start(&dir, run.uuid(), "feedface").unwrap();
    let base = template.record();
    template.finish();
    let now = unix_now();
    for i in 0..WORKERS {
        let worker = format!("{i:032x}");
        let record = Record {
            worker: worker.clone(),
            host: "node-elsewhere".into(),
            boot_id: None,
            pid: 4242,
            process_start: None,
            slurm: Some(SlurmIds {
                job_id: Some((FIRST_JOB + i).to_string()),
                array_job_id: Some(FIRST_JOB.to_string()),
                array_task_id: Some(i.to_string()),
                step_id: Some("0".into()),
                cluster: None,
            }),
            task: (i < HOLDERS).then_some(i as i64),
            percent: (i < HOLDERS).then_some(50.0),
            heartbeat: now,
            ..base.clone()
        };
        let text = serde_json::to_vec(&record).unwrap();
        std::fs::write(dir.join(journal::file_name(run.uuid(), &worker)), text).unwrap();
    }

    let bin = scratch("bin");
    let squeue = bin.join("squeue");
    std::fs::write(&squeue, FAKE_SQUEUE).unwrap();
    std::fs::set_permissions(&squeue, std::fs::Permissions::from_mode(0o755)).unwrap();
    let calls = bin.join("calls");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_taskfarm"))
        .args([
            "-b",
            &server.url,
            "-u",
            &server.user,
            "-p",
            &server.password,
        ])
        .args(["reap", run.uuid(), "--journal"])
        .arg(&dir)
        .args(["--stale", "3600", "--json"])
        .env("PATH", path)
        .env("SQUEUE_CALLS", &calls)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "taskfarm reap failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Slurm was asked twice: every element at once, then the steps of the
    // running ones at once.
    let lines = std::fs::read_to_string(&calls).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "squeue calls: {lines:?}");
    let listed = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let at = words.iter().position(|w| *w == "-j").unwrap();
        words[at + 1].split(',').count()
    };
    assert!(lines[0].contains("-t all"), "{}", lines[0]);
    assert_eq!(listed(lines[0]), WORKERS as usize);
    assert!(lines[1].contains("-s"), "{}", lines[1]);
    assert_eq!(listed(lines[1]), WORKERS as usize / 2);

    // What it found and did.
    let workers = report["workers"].as_array().unwrap();
    assert_eq!(workers.len(), WORKERS as usize);
    let gone: Vec<u64> = workers
        .iter()
        .filter(|w| w["verdict"] == "gone")
        .map(|w| u64::from_str_radix(w["worker"].as_str().unwrap(), 16).unwrap())
        .collect();
    let expected: Vec<u64> = (0..WORKERS)
        .filter(|i| !(FIRST_JOB + i).is_multiple_of(4))
        .collect();
    assert_eq!(gone, expected);
    let mut given_back: Vec<i64> = report["given_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["task"].as_i64().unwrap())
        .collect();
    given_back.sort();
    let expected: Vec<i64> = (0..HOLDERS as i64)
        .filter(|t| (FIRST_JOB as i64 + t) % 4 != 0)
        .collect();
    assert_eq!(given_back, expected);
    let status = run.status().unwrap();
    assert_eq!(
        (status.num_waiting, status.num_computing),
        (75, 25),
        "{status:?}"
    );
    assert_eq!(
        journal_files(&dir, run.uuid()).len(),
        WORKERS as usize - expected_gone_count(),
        "the journals of the gone workers are removed"
    );
    assert!(
        took < Duration::from_secs(30),
        "one pass over {WORKERS} journals took {took:?}"
    );
    eprintln!(
        "reap scale: one pass over {WORKERS} journals (750 gone, 75 tasks given back) in \
         {:.2} s with {} squeue calls",
        took.as_secs_f64(),
        lines.len()
    );
}

fn expected_gone_count() -> usize {
    (0..WORKERS)
        .filter(|i| !(FIRST_JOB + i).is_multiple_of(4))
        .count()
}
