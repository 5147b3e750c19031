//! Concurrency against the production setup: the real taskfarm server under
//! gunicorn (4 sync workers) on PostgreSQL (row locks), started explicitly in
//! that mode whatever `TASKFARM_TEST_DB` says.
//!
//! 1. A run of 1,000 tasks worked through at the same time by 16 worker
//!    PROCESSES (tests/concurrency/worker.c, built here with `cc` against
//!    include/ and the release library of `make build`) and by one more
//!    process, this test, whose threads each run their own `tf_worker` while
//!    all of them, plus a monitor thread, make information calls on ONE
//!    shared `tf_taskfarm`. Afterwards: every task was done exactly once
//!    (each task number in exactly one worker's log, and every task `done`
//!    at 100 % on the server), numDone = N, percentDone = 100, nothing
//!    waiting or computing, no worker error, no 5xx or traceback in the
//!    server's log.
//! 2. Interoperability: the reference Python client (taskfarm-worker 0.4.0,
//!    tests/concurrency/python_worker.py) and the C worker on one run at the
//!    same time, each task done exactly once, both kinds doing some.
//!
//! Sizes (defaults fit well under 2 minutes on 2 cores; raise them for a
//! stress run):
//!   TASKFARM_STRESS_TASKS (1000), TASKFARM_STRESS_PROCESSES (16),
//!   TASKFARM_STRESS_THREADS (4), TASKFARM_STRESS_INTEROP_TASKS (300),
//!   TASKFARM_STRESS_INTEROP_C (4), TASKFARM_STRESS_INTEROP_PYTHON (4),
//!   TASKFARM_STRESS_TIMEOUT (seconds per test for the workers, 300).
//! Worker logs and the built worker stay in target/tmp/concurrency-<pid>/
//! (until a later run of this test binary).

mod common;

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::c_abi::{c, create_run, last_error_with_http, run_status, run_uuid, try_new_worker};
use common::c_programs;
use common::jobs;
use common::server::{venv, Db, TaskfarmServer};
use serde_json::Value;
use taskfarm_worker::ffi::status::tf_status::*;
use taskfarm_worker::ffi::strings::tf_string_free;
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

// ---------------------------------------------------------------------------
// Settings and helpers.

/// A positive whole number from the environment, or `default`.
fn size(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name}={v:?} is not a positive whole number"),
        },
        _ => default,
    }
}

fn timeout() -> Duration {
    Duration::from_secs(size("TASKFARM_STRESS_TIMEOUT", 300) as u64)
}

/// This test process's scratch directory (worker binary, logs), kept for a
/// look after a failure; those of test processes that are gone are removed.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| jobs::scratch("concurrency"))
}

/// tests/concurrency/worker.c, built once per test process against the tree
/// (tests/common/c_programs.rs: run `make build` first).
fn c_worker() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = scratch().join("worker");
        c_programs::build("tests/concurrency/worker.c", &bin);
        bin
    })
}

/// A run handle shared by threads: the API allows calls on one
/// `tf_taskfarm` from several threads at once.
struct SharedRun(*mut tf_taskfarm);
// SAFETY: tf_taskfarm is documented as safe to call from several threads.
unsafe impl Send for SharedRun {}
unsafe impl Sync for SharedRun {}

impl SharedRun {
    fn create(server: &TaskfarmServer, num_tasks: usize) -> SharedRun {
        SharedRun(create_run(server, num_tasks as i64))
    }

    fn uuid(&self) -> String {
        run_uuid(self.0)
    }

    fn status(&self) -> Result<tf_run_status, String> {
        run_status(self.0)
    }

    fn task_json(&self, task: i64) -> Result<Value, String> {
        let mut out: *mut c_char = ptr::null_mut();
        let empty = c("");
        match tf_taskfarm_get_task_info(self.0, task, empty.as_ptr(), &mut out) {
            TF_OK => {
                let text = unsafe { CStr::from_ptr(out) }
                    .to_string_lossy()
                    .into_owned();
                tf_string_free(out);
                serde_json::from_str(&text).map_err(|e| format!("task {task}: {e}: {text}"))
            }
            other => Err(format!(
                "get_task_info({task}): {other:?}: {}",
                last_error_with_http()
            )),
        }
    }
}

impl Drop for SharedRun {
    fn drop(&mut self) {
        tf_taskfarm_free(self.0);
    }
}

/// Worker processes, killed (by PID) if the test ends before they do.
struct Workers {
    children: Vec<(String, Child, PathBuf, PathBuf)>,
}

impl Workers {
    fn new() -> Workers {
        Workers {
            children: Vec::new(),
        }
    }

    /// Starts `cmd` with the server's credentials in the environment, its
    /// stdout and stderr in files named after `name`.
    fn spawn(&mut self, name: String, mut cmd: Command, server: &TaskfarmServer) {
        let out = scratch().join(format!("{name}.out"));
        let err = scratch().join(format!("{name}.err"));
        let child = cmd
            .envs(server.credentials_env())
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.children.push((name, child, out, err));
    }

    /// Waits for all of them (panics after `within`); returns each one's
    /// name, success, stdout and stderr.
    fn wait(mut self, within: Duration) -> Vec<(String, bool, String, String)> {
        let deadline = Instant::now() + within;
        let mut results = Vec::new();
        for (name, child, out, err) in self.children.iter_mut() {
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name} still running after {within:?}\n{}",
                    std::fs::read_to_string(&*err).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            results.push((
                name.clone(),
                status.success(),
                std::fs::read_to_string(&*out).unwrap_or_default(),
                std::fs::read_to_string(&*err).unwrap_or_default(),
            ));
        }
        self.children.clear();
        results
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, child, _, _) in self.children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The task numbers of a worker's log ("task N" lines), checked against its
/// closing "finished K" line.
fn tasks_in_log(name: &str, stdout: &str) -> Vec<i64> {
    let tasks: Vec<i64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("task "))
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: bad line {n:?}"))
        })
        .collect();
    let finished = stdout
        .lines()
        .find_map(|l| l.strip_prefix("finished "))
        .unwrap_or_else(|| panic!("{name}: no 'finished' line:\n{stdout}"));
    assert_eq!(
        finished.trim().parse::<usize>().ok(),
        Some(tasks.len()),
        "{name}: its count disagrees with its log"
    );
    tasks
}

/// Checks that every task in 0..n appears exactly once in `done_by`
/// (worker name → tasks).
fn assert_each_task_once(n: usize, done_by: &BTreeMap<String, Vec<i64>>) {
    let mut by_task: Vec<Vec<&str>> = vec![Vec::new(); n];
    for (name, tasks) in done_by {
        for &t in tasks {
            assert!(
                (0..n as i64).contains(&t),
                "{name} did task {t}, outside 0..{n}"
            );
            by_task[t as usize].push(name);
        }
    }
    let twice: Vec<String> = by_task
        .iter()
        .enumerate()
        .filter(|(_, w)| w.len() > 1)
        .map(|(t, w)| format!("{t} by {w:?}"))
        .collect();
    let never: Vec<usize> = (0..n).filter(|&t| by_task[t].is_empty()).collect();
    assert!(twice.is_empty(), "tasks done more than once: {twice:?}");
    assert!(never.is_empty(), "tasks nobody did: {never:?}");
}

/// The server's view at the end: every task done at 100 % (read one by one,
/// by 4 threads on the shared handle), and the run's counts.
fn assert_server_says_all_done(run: &Arc<SharedRun>, n: usize) {
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let run = Arc::clone(run);
            std::thread::spawn(move || {
                let mut bad = Vec::new();
                for t in (k..n).step_by(4) {
                    match run.task_json(t as i64) {
                        Ok(v)
                            if v["status"] == "done"
                                && v["percentCompleted"].as_f64() == Some(100.0)
                                && v["task"].as_i64() == Some(t as i64) => {}
                        Ok(v) => bad.push(format!("task {t}: {v}")),
                        Err(e) => bad.push(e),
                    }
                }
                bad
            })
        })
        .collect();
    let bad: Vec<String> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(bad.is_empty(), "tasks not done on the server: {bad:?}");

    let s = run.status().unwrap();
    assert_eq!(s.num_tasks, n as i64);
    assert_eq!(s.num_done, n as i64, "numDone");
    assert_eq!(
        (s.num_waiting, s.num_computing),
        (0, 0),
        "waiting, computing"
    );
    assert!(
        (s.percent_done - 100.0).abs() < 1e-9,
        "percentDone {}",
        s.percent_done
    );
}

// ---------------------------------------------------------------------------
// In-process workers: threads, each with its own tf_worker, all making
// information calls on one shared tf_taskfarm.

struct ThreadLog {
    tasks: Vec<i64>,
    info_calls: usize,
}

fn thread_worker(
    server: &TaskfarmServer,
    uuid: &str,
    run: &SharedRun,
) -> Result<ThreadLog, String> {
    let w = try_new_worker(server, &server.url, uuid)?;
    let result = (|| {
        let n = tf_taskfarm_num_tasks(run.0);
        let mut log = ThreadLog {
            tasks: Vec::new(),
            info_calls: 0,
        };
        let mut last_done = 0;
        loop {
            let mut task = -1;
            match tf_worker_task(w, &mut task) {
                TF_OK => {}
                TF_NO_MORE_TASKS => return Ok(log),
                other => {
                    return Err(format!(
                        "tf_worker_task: {other:?}: {}",
                        last_error_with_http()
                    ))
                }
            }
            for p in [50.0, 100.0] {
                let s = tf_worker_update(w, p);
                if s != TF_OK {
                    return Err(format!(
                        "update({p}) of task {task}: {s:?}: {}",
                        last_error_with_http()
                    ));
                }
            }
            let s = tf_worker_done(w);
            if s != TF_OK {
                return Err(format!(
                    "done of task {task}: {s:?}: {}",
                    last_error_with_http()
                ));
            }
            log.tasks.push(task);

            // Information on the shared handle, in turns.
            log.info_calls += 1;
            match log.tasks.len() % 4 {
                0 => {
                    let st = run.status()?;
                    if st.num_done < last_done || st.num_done > n {
                        return Err(format!("numDone went {last_done} -> {}", st.num_done));
                    }
                    last_done = st.num_done;
                }
                1 => {
                    let mut done = -1;
                    let s = tf_taskfarm_num_done(run.0, &mut done);
                    if s != TF_OK || done < last_done.max(1) || done > n {
                        return Err(format!(
                            "num_done: {s:?} {done} (before {last_done}): {}",
                            last_error_with_http()
                        ));
                    }
                    last_done = done;
                }
                2 => {
                    let mut p = -1.0;
                    let s = tf_taskfarm_percent_done(run.0, &mut p);
                    if s != TF_OK || !(0.0..=100.0).contains(&p) {
                        return Err(format!(
                            "percent_done: {s:?} {p}: {}",
                            last_error_with_http()
                        ));
                    }
                }
                _ => {
                    // The task this thread just finished, read back through the shared handle.
                    let v = run.task_json(task)?;
                    if v["status"] != "done" || v["percentCompleted"].as_f64() != Some(100.0) {
                        return Err(format!("task {task} just done reads {v}"));
                    }
                }
            }
        }
    })();
    tf_worker_free(w);
    result
}

/// Polls the shared handle until `stop`; returns (calls, highest numComputing
/// seen) or the first inconsistency.
fn monitor(run: &SharedRun, stop: &AtomicBool) -> Result<(usize, i64), String> {
    let (mut calls, mut max_computing, mut last_done) = (0, 0, 0);
    while !stop.load(Ordering::Relaxed) {
        let s = run.status()?;
        calls += 1;
        if s.num_done < last_done {
            return Err(format!("numDone went down: {last_done} -> {}", s.num_done));
        }
        if s.num_done + s.num_computing + s.num_waiting > s.num_tasks {
            return Err(format!("counts exceed numTasks: {s:?}"));
        }
        last_done = s.num_done;
        max_computing = max_computing.max(s.num_computing);
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((calls, max_computing))
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn c_worker_processes_and_threads_sharing_a_taskfarm_do_every_task_once() {
    let n = size("TASKFARM_STRESS_TASKS", 1000);
    let processes = size("TASKFARM_STRESS_PROCESSES", 16);
    let threads = size("TASKFARM_STRESS_THREADS", 4);
    let worker = c_worker();
    let server = TaskfarmServer::start_with(Db::Postgresql);
    let run = Arc::new(SharedRun::create(&server, n));
    let uuid = run.uuid();

    let started = Instant::now();
    let mut workers = Workers::new();
    for i in 0..processes {
        let mut cmd = Command::new(worker);
        cmd.arg(&uuid);
        workers.spawn(format!("run1-c-{i:02}"), cmd, &server);
    }
    let stop = AtomicBool::new(false);
    let (results, thread_logs, monitored, elapsed) = std::thread::scope(|scope| {
        let monitor_thread = scope.spawn(|| monitor(&run, &stop));
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| thread_worker(&server, &uuid, &run)))
            .collect();
        let results = workers.wait(timeout());
        let logs: Vec<Result<ThreadLog, String>> = handles
            .into_iter()
            .map(|h| h.join().expect("worker thread panicked"))
            .collect();
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let monitored = monitor_thread.join().expect("monitor thread panicked");
        (results, logs, monitored, elapsed)
    });
    let (monitor_calls, max_computing) = monitored.unwrap_or_else(|e| panic!("monitor: {e}"));

    let mut done_by = BTreeMap::new();
    for (name, ok, stdout, stderr) in &results {
        assert!(ok, "{name} failed:\n{stderr}\n{}", server.log_tail(20));
        assert!(
            c_programs::unexpected_stderr(stderr).is_empty(),
            "{name} wrote to stderr:\n{stderr}"
        );
        done_by.insert(name.clone(), tasks_in_log(name, stdout));
    }
    let mut info_calls = monitor_calls;
    for (i, log) in thread_logs.into_iter().enumerate() {
        let log = log.unwrap_or_else(|e| panic!("thread {i}: {e}\n{}", server.log_tail(20)));
        info_calls += log.info_calls;
        done_by.insert(format!("run1-thread-{i}"), log.tasks);
    }
    assert_each_task_once(n, &done_by);
    assert_server_says_all_done(&run, n);
    server.assert_no_server_errors();

    let counts: Vec<usize> = done_by.values().map(Vec::len).collect();
    if n >= 10 * (processes + threads) {
        let idle: Vec<&String> = done_by
            .iter()
            .filter(|(_, t)| t.is_empty())
            .map(|(k, _)| k)
            .collect();
        assert!(idle.is_empty(), "workers that got no task: {idle:?}");
    }
    assert!(
        max_computing >= 2,
        "the monitor never saw two tasks computing at once: not concurrent?"
    );
    eprintln!(
        "concurrency: {n} tasks by {processes} C processes + {threads} threads in {:.1} s \
         ({:.0} tasks/s); tasks per worker {}..{}; {info_calls} information calls on the \
         shared handle; up to {max_computing} computing at once",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap(),
    );
}

#[test]
fn python_and_c_workers_share_a_run_and_do_every_task_once() {
    let n = size("TASKFARM_STRESS_INTEROP_TASKS", 300);
    let c_procs = size("TASKFARM_STRESS_INTEROP_C", 4);
    let py_procs = size("TASKFARM_STRESS_INTEROP_PYTHON", 4);
    let worker = c_worker();
    let server = TaskfarmServer::start_with(Db::Postgresql);
    let run = Arc::new(SharedRun::create(&server, n));
    let uuid = run.uuid();

    let started = Instant::now();
    let mut workers = Workers::new();
    // Python first: it takes longer to start.
    for i in 0..py_procs {
        let mut cmd = Command::new(venv().join("bin/python"));
        cmd.arg(jobs::root().join("tests/concurrency/python_worker.py"))
            .arg(&uuid);
        workers.spawn(format!("run2-py-{i:02}"), cmd, &server);
    }
    for i in 0..c_procs {
        let mut cmd = Command::new(worker);
        cmd.arg(&uuid);
        workers.spawn(format!("run2-c-{i:02}"), cmd, &server);
    }
    let results = workers.wait(timeout());
    let elapsed = started.elapsed();

    let mut done_by = BTreeMap::new();
    for (name, ok, stdout, stderr) in &results {
        assert!(ok, "{name} failed:\n{stderr}\n{}", server.log_tail(20));
        if name.contains("-c-") {
            assert!(
                c_programs::unexpected_stderr(stderr).is_empty(),
                "{name} wrote to stderr:\n{stderr}"
            );
        }
        done_by.insert(name.clone(), tasks_in_log(name, stdout));
    }
    assert_each_task_once(n, &done_by);
    assert_server_says_all_done(&run, n);
    server.assert_no_server_errors();

    let by_python: usize = done_by
        .iter()
        .filter(|(k, _)| k.contains("-py-"))
        .map(|(_, t)| t.len())
        .sum();
    let by_c = n - by_python;
    assert!(
        by_python > 0 && by_c > 0,
        "not interleaved: Python did {by_python} tasks, C did {by_c}"
    );
    eprintln!(
        "interoperability: {n} tasks by {py_procs} Python + {c_procs} C workers in {:.1} s: \
         Python did {by_python}, C did {by_c}",
        elapsed.as_secs_f64()
    );
}
