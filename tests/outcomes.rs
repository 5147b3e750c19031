//! The outcomes of a task in C, C++ and Fortran, against the real taskfarm
//! server on PostgreSQL + gunicorn: done after steps that sum to a little
//! over 100 (the 1e-6 tolerance of `tf_worker_update`), `TF_NOT_DONE` from a
//! `done` below 100 (given back by `taskfarm reap` as a failed attempt),
//! `tf_worker_fail` (handed back, attempts counted through the journal
//! directory, set aside at `TASKFARM_MAX_ATTEMPTS` while the rest of the run
//! finishes), `tf_worker_attempt`, and `taskfarm failed`.
//!
//! The workers are tests/outcomes/outcome_worker.{c,cpp,f90}, built here
//! against include/ and the release library of `make build`.
//!
//! One interleaving is forced through the recording proxy: a worker
//! SIGKILLed while its `done` below 100 % is in flight (the answer held)
//! leaves its `not_done` record, written before the request; a reaper pass
//! while it lives leaves the task alone, one after its death gives it back
//! as that one attempt, not as a crash
//! ([`a_worker_killed_while_its_done_below_100_is_in_flight_counts_one_not_done`]).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::c_programs::{build, compile, linking, root};
use common::jobs::{new_run, pg_server, run_counts, scratch};
use common::recording_proxy::{any_put_percent, RecordingProxy};
use common::server::TaskfarmServer;
use serde_json::Value;

const NUM_TASKS: i64 = 6;
const FAIL_TASK: i64 = 2;
const NOT_DONE_TASK: i64 = 4;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch("outcomes"))
}

/// The C worker, built once for the whole binary: two tests run it side by
/// side, and a rebuild under a running test left the file half-written
/// (EACCES when run).
fn c_worker() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = dir().join("outcome_worker_c");
        build("tests/outcomes/outcome_worker.c", &bin);
        bin
    })
    .clone()
}

fn cpp_worker() -> PathBuf {
    let bin = dir().join("outcome_worker_cpp");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let source = root().join("tests/outcomes/outcome_worker.cpp");
    compile(
        "tests/outcomes/outcome_worker.cpp",
        linking(
            &cxx,
            &["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Werror"],
            &[&source],
            &bin,
        ),
    );
    bin
}

fn fortran_worker() -> PathBuf {
    let out = dir().join("fortran");
    std::fs::create_dir_all(&out).unwrap();
    let fc = std::env::var("FC").unwrap_or_else(|_| "gfortran".into());
    let module_object = out.join("taskfarm_worker.o");
    let mut module = Command::new(&fc);
    module
        .args(["-std=f2008", "-Wall", "-Werror", "-J"])
        .arg(&out)
        .arg("-c")
        .arg(root().join("fortran/taskfarm_worker.f90"))
        .arg("-o")
        .arg(&module_object);
    compile("fortran/taskfarm_worker.f90", module);
    let bin = out.join("outcome_worker_f90");
    let source = root().join("tests/outcomes/outcome_worker.f90");
    let mut program = linking(
        &fc,
        &["-std=f2008", "-Wall", "-Werror"],
        &[&source, &module_object],
        &bin,
    );
    program.arg("-I").arg(&out);
    compile("tests/outcomes/outcome_worker.f90", program);
    bin
}

/// Runs `bin` on `run` with the journal `journal`; its stdout lines.
fn work(server: &TaskfarmServer, bin: &Path, run: &str, journal: &Path) -> Vec<String> {
    let out = Command::new(bin)
        .args([run, &FAIL_TASK.to_string(), &NOT_DONE_TASK.to_string()])
        .envs(server.credentials_env())
        .env("TASKFARM_JOURNAL", journal)
        .env("TASKFARM_MAX_ATTEMPTS", "3")
        .env("TASKFARM_UPDATE_INTERVAL", "0")
        .env_remove("TASKFARM_LOG")
        .output()
        .expect("run the worker");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        out.status.success() && !lines.iter().any(|l| l.starts_with("unexpected")),
        "{} exited with {}: {lines:#?}\n{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

/// `taskfarm ARGS` with the server's credentials; its stdout.
fn taskfarm(server: &TaskfarmServer, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_taskfarm"))
        .args(args)
        .envs(server.credentials_env())
        .output()
        .expect("run taskfarm");
    assert!(
        out.status.success(),
        "taskfarm {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn the_outcomes(language: &str, bin: PathBuf) {
    let server = pg_server();
    let run = new_run(server, NUM_TASKS);
    let journal = dir().join(format!("journal-{language}"));
    std::fs::create_dir_all(&journal).unwrap();

    let lines = work(server, &bin, &run, &journal);
    // The failing task: attempts 1, 2, 3, then set aside; the run goes on.
    let attempts: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with(&format!("task {FAIL_TASK} attempt")))
        .collect();
    assert_eq!(
        attempts,
        [1, 2, 3]
            .iter()
            .map(|a| format!("task {FAIL_TASK} attempt {a}"))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>(),
        "{language}: {lines:#?}"
    );
    assert!(
        lines.contains(&format!("not_done {NOT_DONE_TASK}")),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("end TF_NO_MORE_TASKS")
    );
    // Done: every other task, after 7 steps of 100/7. Computing: the task
    // set aside and the one released at 50 %.
    assert_eq!(
        run_counts(server, &run),
        (NUM_TASKS, 0, 2, NUM_TASKS - 2),
        "{language}: (tasks, waiting, computing, done)"
    );

    // taskfarm failed: the failed task set aside after 3 attempts with its
    // last message; the task released below 100 % with one.
    let failed: Value = serde_json::from_str(&taskfarm(
        server,
        &[
            "failed",
            &run,
            "--journal",
            journal.to_str().unwrap(),
            "--json",
        ],
    ))
    .unwrap();
    let tasks = failed["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{failed}");
    assert_eq!(tasks[0]["task"], FAIL_TASK);
    assert_eq!(tasks[0]["attempts"], 3);
    assert_eq!(tasks[0]["set_aside"], true);
    assert_eq!(
        tasks[0]["last_message"],
        format!("task {FAIL_TASK} fails on purpose (attempt 3)")
    );
    assert_eq!(tasks[1]["task"], NOT_DONE_TASK);
    assert_eq!(tasks[1]["attempts"], 1);
    assert_eq!(tasks[1]["set_aside"], false);
    assert_eq!(tasks[1]["last_kind"], "not_done");

    // taskfarm reap gives the task released below 100 % back (waiting, at
    // 50 %), leaves the one set aside computing, and counts the run
    // finished once the rest is done.
    let reaped: Value = serde_json::from_str(&taskfarm(
        server,
        &[
            "reap",
            &run,
            "--journal",
            journal.to_str().unwrap(),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(reaped["given_back"][0]["task"], NOT_DONE_TASK, "{reaped}");
    assert_eq!(
        reaped["set_aside"],
        serde_json::json!([FAIL_TASK]),
        "{reaped}"
    );
    assert_eq!(run_counts(server, &run), (NUM_TASKS, 1, 1, NUM_TASKS - 2));
    // A second pass gives nothing back again.
    let again: Value = serde_json::from_str(&taskfarm(
        server,
        &[
            "reap",
            &run,
            "--journal",
            journal.to_str().unwrap(),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(again["given_back"], serde_json::json!([]), "{again}");

    // Another worker finishes it at its second attempt.
    let lines = work(server, &bin, &run, &journal);
    assert_eq!(
        lines[..2],
        [
            format!("task {NOT_DONE_TASK} attempt 2"),
            format!("done {NOT_DONE_TASK}")
        ],
        "{lines:#?}"
    );
    assert_eq!(run_counts(server, &run), (NUM_TASKS, 0, 1, NUM_TASKS - 1));
    let reaped: Value = serde_json::from_str(&taskfarm(
        server,
        &[
            "reap",
            &run,
            "--journal",
            journal.to_str().unwrap(),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(reaped["finished"], true, "{reaped}");

    // Released: its attempts forgotten, the task waiting again.
    taskfarm(
        server,
        &[
            "reap",
            &run,
            "--journal",
            journal.to_str().unwrap(),
            "--release",
            &FAIL_TASK.to_string(),
        ],
    );
    assert_eq!(run_counts(server, &run), (NUM_TASKS, 1, 0, NUM_TASKS - 1));
    let failed: Value = serde_json::from_str(&taskfarm(
        server,
        &[
            "failed",
            &run,
            "--journal",
            journal.to_str().unwrap(),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(failed["tasks"].as_array().unwrap().len(), 1, "{failed}");
}

#[test]
fn each_outcome_in_c() {
    the_outcomes("c", c_worker());
}

#[test]
fn each_outcome_in_cpp() {
    the_outcomes("cpp", cpp_worker());
}

#[test]
fn each_outcome_in_fortran() {
    the_outcomes("fortran", fortran_worker());
}

/// The attempt records of `run` in `dir` whose names start with `prefix`
/// (`notdone-`: pending, `attempt-`: settled), as JSON.
fn records(dir: &Path, prefix: &str, run: &str) -> Vec<Value> {
    let start = format!("{prefix}{run}-");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        if name.starts_with(&start) && name.ends_with(".json") {
            found.push(
                serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap(),
            );
        }
    }
    found
}

#[test]
fn a_worker_killed_while_its_done_below_100_is_in_flight_counts_one_not_done() {
    let server = pg_server();
    let proxy = RecordingProxy::start(server);
    let run = new_run(server, 1);
    let journal = dir().join("journal-not-done-in-flight");
    std::fs::create_dir_all(&journal).unwrap();
    // The 50 % stays pending (a long interval): the done's own request is
    // the one that carries it; its answer is held.
    let gate = proxy.hold(any_put_percent(&run, 50.0));
    let mut worker = Command::new(c_worker())
        .args([run.as_str(), "99", "0"])
        .envs(server.credentials_env())
        .env("TASKFARM_URL", &proxy.url)
        .env("TASKFARM_JOURNAL", &journal)
        .env("TASKFARM_UPDATE_INTERVAL", "3600")
        .env_remove("TASKFARM_LOG")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    gate.wait_held(1, Duration::from_secs(120));

    // In flight: the record is there already, pending.
    let pending = records(&journal, "notdone-", &run);
    assert_eq!(pending.len(), 1, "{pending:#?}");
    assert_eq!(
        (&pending[0]["kind"], &pending[0]["task"]),
        (&"not_done".into(), &0.into())
    );
    // A reaper pass meanwhile: the worker lives and still names the task,
    // whose release may not have landed: nothing given back, nothing settled.
    let pass = |args: &[&str]| -> Value {
        let mut all = vec![
            "reap",
            run.as_str(),
            "--journal",
            journal.to_str().unwrap(),
            "--json",
        ];
        all.extend_from_slice(args);
        serde_json::from_str(&taskfarm(server, &all)).unwrap()
    };
    let live = pass(&[]);
    assert_eq!(live["given_back"], serde_json::json!([]), "{live}");
    assert_eq!(records(&journal, "notdone-", &run).len(), 1, "{live}");
    assert_eq!(run_counts(server, &run), (1, 0, 1, 0));

    // SIGKILL with the answer held, then the answer goes to nobody.
    worker.kill().unwrap();
    worker.wait().unwrap();
    gate.release();
    let reaped = pass(&[]);
    assert_eq!(reaped["given_back"][0]["task"], 0, "{reaped}");
    assert_eq!(run_counts(server, &run), (1, 1, 0, 0), "{reaped}");
    // One attempt, the not_done (settled), and no crash.
    let settled = records(&journal, "attempt-", &run);
    assert!(records(&journal, "notdone-", &run).is_empty(), "{reaped}");
    assert_eq!(settled.len(), 1, "{settled:#?}\n{reaped}");
    assert_eq!(settled[0]["kind"], "not_done", "{settled:#?}");
}
