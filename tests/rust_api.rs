//! The Rust API against the real taskfarm server 0.4.0 (the project's
//! harness, one server for this test binary): examples/worker.rs built and
//! run as two worker processes on one run, every task done exactly once; the
//! task guards of `Worker::tasks` (done, hand back with the percentage kept,
//! requeue at 0 %, a guard dropped by `?` or a panic hands its task back, one
//! guard at a time); the errors' kinds and HTTP statuses.

mod common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::jobs::{assert_each_task_once, assert_run_done, worker_tasks};
use common::server::TaskfarmServer;
use taskfarm_worker::{Error, ErrorKind, Run, Settings, TaskState, Worker};

/// A new run of `num_tasks` tasks and a worker registered on it.
fn run_and_worker(num_tasks: i64) -> (Arc<Run>, Worker) {
    let run = Arc::new(Run::create(&TaskfarmServer::shared().settings(), num_tasks).unwrap());
    let worker = Worker::register(Arc::clone(&run)).unwrap();
    (run, worker)
}

/// The server's state and percentage of `task`.
fn on_server(run: &Run, task: i64) -> (TaskState, f64) {
    let record = run.task(task).unwrap();
    (record.status, record.percent_completed)
}

/// examples/worker.rs, built once per test process by the cargo that runs
/// the tests, with the features this binary was built with: same profile,
/// target directory and features, so nothing but the example may be compiled
/// (a build that recompiles the library or a dependency is the cost that
/// issue 28 removed, and in `make rust-tests` it competes with the other test
/// binaries for the cores). `cargo test` builds the examples with the tests,
/// so there the example is fresh too.
fn example() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "--offline",
            "--example",
            "worker",
            "--message-format=json",
        ]);
        if cfg!(feature = "cli") {
            cargo.args(["--features", "cli"]);
        }
        // Under `cargo test` this process has the variables cargo sets for a
        // test (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...). Some build scripts
        // (ring's) ask to rerun when one of them changes, so passed on they
        // would recompile ring and all that depends on it, twice: here and in
        // the next cargo run without them.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_PRIMARY_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
                || name == "CARGO_TARGET_TMPDIR"
                || name == "OUT_DIR"
            {
                cargo.env_remove(name.as_ref());
            }
        }
        let out = cargo
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build --example worker");
        assert!(out.status.success(), "cargo build --example worker failed");
        let messages: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .filter(|m: &serde_json::Value| m["reason"] == "compiler-artifact")
            .collect();
        let recompiled: Vec<&str> = messages
            .iter()
            .filter(|m| m["fresh"] == false && m["target"]["name"] != "worker")
            .filter_map(|m| m["package_id"].as_str())
            .collect();
        assert!(
            recompiled.is_empty(),
            "building the example recompiled what the tests were built with: {recompiled:?}"
        );
        // The artifact message of the example names its executable.
        let executable = messages
            .iter()
            .filter(|m| m["target"]["name"] == "worker")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the example's executable");
        assert!(executable.is_file(), "{}", executable.display());
        executable
    })
}

#[test]
fn the_example_worker_does_every_task_exactly_once() {
    let server = TaskfarmServer::shared();
    let num_tasks = 12;
    let run = Run::create(&server.settings(), num_tasks).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(example())
                .args([run.uuid(), "5"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(server.credentials_env())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start examples/worker.rs")
        })
        .collect();
    let mut done = BTreeMap::new();
    for (i, worker) in workers.into_iter().enumerate() {
        let out = worker.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "worker {i}: {}\n{stdout}{stderr}",
            out.status
        );
        assert!(!stderr.contains(&server.password), "{stderr}");
        let tasks = worker_tasks(&stdout);
        assert!(
            stdout.contains(&format!(": {} tasks done\n", tasks.len())),
            "worker {i}:\n{stdout}"
        );
        done.insert(format!("worker {i}"), tasks);
    }
    assert_each_task_once(num_tasks, &done);
    assert_run_done(server, run.uuid(), num_tasks);
}

#[test]
fn the_example_refuses_to_start_without_credentials() {
    let server = TaskfarmServer::shared();
    let run = Run::create(&server.settings(), 1).unwrap();
    let out = Command::new(example())
        .arg(run.uuid())
        .env_clear()
        .env("TASKFARM_URL", &server.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TASKFARM_USER") && stderr.contains("InvalidArgument"),
        "{stderr}"
    );
    assert_eq!(on_server(&run, 0).1, 0.0);
}

#[test]
fn done_marks_the_task_done_at_100_percent() {
    let (run, mut worker) = run_and_worker(2);
    let mut seen = Vec::new();
    for task in worker.tasks() {
        let mut task = task.unwrap();
        // Not at 100 %: done() marks it done all the same.
        task.update(30.0).unwrap();
        seen.push(task.id());
        task.done().unwrap();
    }
    seen.sort();
    assert_eq!(seen, [0, 1]);
    for task in 0..2 {
        assert_eq!(on_server(&run, task), (TaskState::Done, 100.0));
    }
    assert!(worker.held_task().is_none());
}

#[test]
fn hand_back_keeps_the_percentage_and_the_next_guard_starts_from_it() {
    let (run, mut worker) = run_and_worker(1);
    let mut tasks = worker.tasks();
    let mut task = tasks.next().unwrap().unwrap();
    assert_eq!((task.id(), task.percent()), (0, 0.0));
    task.update(60.0).unwrap();
    assert_eq!(task.percent(), 60.0);
    task.hand_back().unwrap();
    assert_eq!(on_server(&run, 0), (TaskState::Waiting, 60.0));

    let task = tasks.next().unwrap().unwrap();
    assert_eq!((task.id(), task.percent()), (0, 60.0));
    assert_eq!(on_server(&run, 0).0, TaskState::Computing);
    task.done().unwrap();
    assert!(tasks.next().is_none(), "the run's only task is done");
    assert!(tasks.next().is_none(), "the iteration stays ended");
    drop(tasks);
    assert_eq!(on_server(&run, 0), (TaskState::Done, 100.0));
}

#[test]
fn requeue_gives_the_task_back_at_0_percent() {
    let (run, mut worker) = run_and_worker(1);
    let mut tasks = worker.tasks();
    let mut task = tasks.next().unwrap().unwrap();
    task.update(45.0).unwrap();
    task.requeue().unwrap();
    drop(tasks);
    assert_eq!(on_server(&run, 0), (TaskState::Waiting, 0.0));
    assert!(worker.held_task().is_none());
}

/// A computation that panics.
fn compute_a_step(task: i64) -> f64 {
    panic!("task {task}")
}

#[test]
fn a_guard_dropped_by_question_mark_or_panic_hands_its_task_back() {
    let (run, mut worker) = run_and_worker(3);
    // Sent or still pending (the update interval is 1 s), the latest
    // percentage is what the hand-back carries.
    let mut taken = None;
    let mut failing = |worker: &mut Worker| -> taskfarm_worker::Result<()> {
        let mut task = worker.tasks().next().unwrap()?;
        taken = Some(task.id());
        task.update(40.0)?;
        Err(Error::invalid_argument("the computation failed"))?;
        task.done()
    };
    let error = failing(&mut worker).unwrap_err();
    assert_eq!(error.message(), "the computation failed");
    let id = taken.unwrap();
    assert_eq!(on_server(&run, id), (TaskState::Waiting, 40.0));
    assert!(worker.held_task().is_none());

    let panicked = catch_unwind(AssertUnwindSafe(|| {
        for task in worker.tasks() {
            let mut task = task.unwrap();
            task.update(25.0).unwrap();
            let percent = compute_a_step(task.id());
            task.update(percent).unwrap();
            task.done().unwrap();
        }
    }))
    .unwrap_err();
    let message = panicked.downcast_ref::<String>().unwrap();
    let id: i64 = message["task ".len()..].parse().unwrap();
    assert_eq!(on_server(&run, id), (TaskState::Waiting, 25.0));
    assert!(worker.held_task().is_none());

    // A guard dropped at the end of the loop body, neither done nor handed back.
    let mut tasks = worker.tasks();
    let mut task = tasks.next().unwrap().unwrap();
    task.update(75.0).unwrap();
    let id = task.id();
    drop(task);
    drop(tasks);
    assert_eq!(on_server(&run, id), (TaskState::Waiting, 75.0));
    let status = run.status().unwrap();
    assert_eq!((status.num_computing, status.num_done), (0, 0));
}

#[test]
fn one_guard_at_a_time() {
    let (run, mut worker) = run_and_worker(2);
    let mut tasks = worker.tasks();
    let first = tasks.next().unwrap().unwrap();
    let error = tasks.next().unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert_eq!(error.http_status(), None);
    assert!(
        error
            .message()
            .contains(&format!("the guard of task {} is still alive", first.id())),
        "{error}"
    );
    assert!(tasks.next().is_none(), "the iteration ends after an error");
    let id = first.id();
    drop(first);
    drop(tasks);
    assert_eq!(on_server(&run, id).0, TaskState::Waiting);
    assert_eq!(run.status().unwrap().num_computing, 0);
}

#[test]
fn a_refused_update_leaves_the_task_held() {
    let (run, mut worker) = run_and_worker(1);
    let mut tasks = worker.tasks();
    let mut task = tasks.next().unwrap().unwrap();
    task.update(20.0).unwrap();
    for bad in [-1.0, 100.5, f64::NAN] {
        let error = task.update(bad).unwrap_err();
        assert_eq!(
            (error.kind(), error.http_status()),
            (ErrorKind::InvalidArgument, None),
            "{error}"
        );
    }
    assert_eq!(task.percent(), 20.0);
    task.done().unwrap();
    drop(tasks);
    assert_eq!(on_server(&run, 0), (TaskState::Done, 100.0));
}

#[test]
fn a_deadline_that_cannot_fit_a_task_ends_the_iteration_with_stopped() {
    let (run, mut worker) = run_and_worker(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // A minute left, tasks of an hour.
    worker.set_deadline(now + 60.0, 3600.0).unwrap();
    let mut tasks = worker.tasks();
    let error = tasks.next().unwrap().unwrap_err();
    assert_eq!(
        (error.kind(), error.http_status()),
        (ErrorKind::Stopped, None)
    );
    assert!(tasks.next().is_none());
    drop(tasks);
    // No task was taken.
    assert_eq!(run.status().unwrap().num_computing, 0);
}

#[test]
fn errors_have_kinds_and_http_statuses_and_no_secrets() {
    let server = TaskfarmServer::shared();

    let wrong = "wrong-password-7f3a";
    let error = Run::create(
        &Settings::resolve(Some(&server.user), Some(wrong), Some(&server.url)).unwrap(),
        1,
    )
    .unwrap_err();
    assert_eq!(
        (error.kind(), error.http_status()),
        (ErrorKind::Auth, Some(401)),
        "{error}"
    );
    assert!(!error.to_string().contains(wrong), "{error}");
    assert!(!format!("{error:?}").contains(wrong), "{error:?}");

    let error = Run::open(&server.settings(), "0123456789abcdef0123456789abcdef").unwrap_err();
    assert_eq!(
        (error.kind(), error.http_status()),
        (ErrorKind::NotFound, Some(404)),
        "{error}"
    );
    assert!(
        error.to_string().contains("no run 0123456789abcdef"),
        "{error}"
    );

    let error = Run::open(&server.settings(), "../runs").unwrap_err();
    assert_eq!(
        (error.kind(), error.http_status()),
        (ErrorKind::InvalidArgument, None),
        "{error}"
    );

    // Nothing listens on a port just freed: refused at once, no retries.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = Settings::resolve(
        Some(&server.user),
        Some(&server.password),
        Some(&format!("http://127.0.0.1:{port}/api/")),
    )
    .unwrap()
    .with_retries(0)
    .unwrap()
    .with_timeout(Duration::from_secs(5))
    .unwrap();
    let error = Run::create(&unreachable, 1).unwrap_err();
    assert_eq!(
        (error.kind(), error.http_status()),
        (ErrorKind::Connection, None),
        "{error}"
    );
    assert!(!error.to_string().contains(&server.password), "{error}");
}

#[test]
fn settings_setters_check_their_values() {
    let s = TaskfarmServer::shared().settings();
    let s = s
        .with_timeout(Duration::from_millis(1500))
        .unwrap()
        .with_retries(3)
        .unwrap()
        .with_update_interval(Duration::ZERO)
        .unwrap();
    assert_eq!(
        (s.timeout, s.retries, s.update_interval),
        (Duration::from_millis(1500), 3, Duration::ZERO)
    );
    for error in [
        s.clone().with_timeout(Duration::ZERO).unwrap_err(),
        s.clone().with_retries(1001).unwrap_err(),
        s.clone()
            .with_update_interval(Duration::from_secs(86_401))
            .unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
    }
}
