//! Dead workers' tasks come back while the farm runs: the worker journal
//! (`TASKFARM_JOURNAL`), `taskfarm reap`, the crash limit and the kept
//! `done`, against the real taskfarm server on PostgreSQL + gunicorn.
//!
//! The workers are processes of tests/reap/worker.c (built here with `cc`
//! against include/ and the release library of `make build`), killed with
//! SIGKILL at chosen points; `taskfarm reap` is the real command.
//!
//! 1. 8 workers on 300 tasks, 2 of them SIGKILLed in the middle of a task,
//!    `taskfarm reap --watch` beside them: every task done exactly once,
//!    nothing restarted by hand, no journal file left.
//! 2. A task that SIGKILLs its worker each time it runs is set aside after
//!    --max-attempts while the rest of the run finishes; --release gives it back.
//! 3. The server stopped at the moment of a done, for longer than the
//!    retries: the done is kept in the journal; once the server is back the
//!    worker's next request (a "no task left" answer) delivers it, and `taskfarm reap` delivers that of
//!    a worker killed meanwhile.
//! 4. Journal files that are truncated, garbage, of another run or another
//!    user, naming a task never handed out, or unreadable get a clear
//!    message and are left alone, and
//!    their tasks are not given back, while a valid journal of a dead
//!    process in the same directory is acted on.
//! 5. Under Open MPI's mpirun, a rank SIGKILLed mid-task (mpirun then tears
//!    the other ranks down): each rank's journal names its MPI rank, and once
//!    `taskfarm reap` ran, one more worker finishes the run with nothing lost.
//! 6. A give-back that reached the server while its answer was lost (the
//!    recording proxy closes the connection): recorded in the reaper's
//!    state, and the next passes do not take the task from the live worker
//!    that took it meanwhile, even when the dead worker's journal is there.
//!
//! Every wait is on an event (a line of a worker, a file, the server's
//! answer) with a generous overall deadline; there is no bare sleep.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::c_programs;
use common::journals::journal_files;
use common::recording_proxy::{put_status, RecordingProxy};
use common::server::{Db, TaskfarmServer};
use serde_json::Value;
use taskfarm_worker::internal::clock::unix_now;
use taskfarm_worker::internal::worker::journal::{self, Journal, Record};
use taskfarm_worker::internal::{Run, Settings, TaskState, Worker};

const DEADLINE: Duration = Duration::from_secs(240);

/// A fresh scratch directory for one test, under target/tmp/.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("reap-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One PostgreSQL server for the tests that do not stop theirs.
fn shared_pg() -> &'static TaskfarmServer {
    static PG: OnceLock<TaskfarmServer> = OnceLock::new();
    PG.get_or_init(|| TaskfarmServer::start_with(Db::Postgresql))
}

/// The server's settings with short retries: a test of a dead worker must
/// not wait out the default backoff.
fn settings(server: &TaskfarmServer) -> Settings {
    let mut s = server.settings();
    s.retries = 3;
    s.backoff = Duration::from_millis(50);
    s
}

/// A worker process and the lines it prints, read by a thread.
struct WorkerProcess {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl WorkerProcess {
    fn start(server: &TaskfarmServer, run: &str, journal: &Path, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(c_programs::reap_worker());
        command
            .arg(run)
            .envs(server.credentials_env())
            .env("TASKFARM_JOURNAL", journal)
            .env("TASKFARM_JOURNAL_HEARTBEAT", "0.2")
            .env("TASKFARM_RETRIES", "3")
            .env("TASKFARM_BACKOFF", "0.05")
            .env_remove("TASKFARM_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start the C worker");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        WorkerProcess {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix`; returns the rest of it.
    fn wait_line(&mut self, prefix: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(e) => panic!(
                    "worker {} printed no {prefix:?} ({e:?}); it printed {:?}",
                    self.child.id(),
                    self.seen
                ),
            }
        }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for the end; returns its exit status and every line it printed.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = wait_child(&mut self.child);
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.lines.iter());
        (status, seen)
    }
}

impl Drop for WorkerProcess {
    /// A failed test leaves no worker behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `taskfarm reap ... --watch` running beside the workers; its stdout read
/// by a thread (a full pipe would stop it), killed if the test fails.
struct Watcher {
    child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Watcher {
    fn start(command: &mut Command) -> Watcher {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start taskfarm reap");
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
            text
        });
        Watcher {
            child,
            stdout: Some(stdout),
        }
    }

    /// Waits for the end (with the deadline): its exit status and JSON lines.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        let status = wait_child(&mut self.child);
        let text = self.stdout.take().unwrap().join().unwrap();
        assert!(
            status.success(),
            "taskfarm reap --watch failed ({status}):\n{text}"
        );
        (status, json_lines(text.as_bytes()))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_child(child: &mut Child) -> std::process::ExitStatus {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("process {} did not end within {DEADLINE:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` until it gives `Some`, or panics with `what` at the deadline.
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn taskfarm(server: &TaskfarmServer) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
    command
        .args([
            "-b",
            &server.url,
            "-u",
            &server.user,
            "-p",
            &server.password,
        ])
        .env("TASKFARM_RETRIES", "3")
        .env("TASKFARM_BACKOFF", "0.05");
    command
}

fn run_ok(command: &mut Command) -> Output {
    let out = command.output().expect("run taskfarm");
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// The JSON lines of `taskfarm reap --json`.
fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

fn read_journal_of(dir: &Path, run: &str, pid: u32) -> Option<Record> {
    journal_files(dir, run).iter().find_map(|name| {
        let record = journal::read_record(&dir.join(name), run).ok()?;
        (record.pid == pid).then_some(record)
    })
}

fn task_state(run: &Run, task: i64) -> TaskState {
    run.task(task).unwrap().status
}

// ---------------------------------------------------------------------------

#[test]
fn killed_workers_tasks_come_back_and_every_task_is_done_once() {
    let server = shared_pg();
    let run = Run::create(&settings(server), 300).unwrap();
    let dir = scratch("eight");
    let reaper = Watcher::start(
        taskfarm(server)
            .args(["reap", run.uuid(), "--journal"])
            .arg(&dir)
            .args(["--watch", "0.2", "--stale", "600", "--json"]),
    );
    let mut workers: Vec<WorkerProcess> = (0..8)
        .map(|i| {
            let hold = match i {
                0 => vec![("REAP_TEST_HOLD_AFTER", "2".to_owned())],
                1 => vec![("REAP_TEST_HOLD_AFTER", "6".to_owned())],
                _ => vec![],
            };
            WorkerProcess::start(server, run.uuid(), &dir, &hold)
        })
        .collect();
    let mut held = Vec::new();
    for w in &mut workers[..2] {
        let task: i64 = w.wait_line("holding ").parse().unwrap();
        // The process makes no call now: its heartbeat still moves on.
        let pid = w.child.id();
        let first = wait_until("the held task in the journal", || {
            read_journal_of(&dir, run.uuid(), pid).filter(|r| r.task == Some(task))
        });
        wait_until("a later heartbeat", || {
            read_journal_of(&dir, run.uuid(), pid).filter(|r| r.heartbeat > first.heartbeat)
        });
        w.kill();
        held.push(task);
    }
    let (_, passes) = reaper.finish();
    assert_eq!(passes.last().unwrap()["finished"], true);
    let given_back: Vec<i64> = passes
        .iter()
        .flat_map(|p| p["given_back"].as_array().unwrap().clone())
        .map(|a| a["task"].as_i64().unwrap())
        .collect();
    let mut expected = held.clone();
    expected.sort();
    let mut got = given_back.clone();
    got.sort();
    assert_eq!(
        got, expected,
        "the reaper gave back exactly the killed workers' tasks"
    );
    assert!(passes.iter().all(|p| p["restarted"] == false));

    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, w) in workers.into_iter().enumerate() {
        let (status, lines) = w.finish();
        if i >= 2 {
            assert!(status.success(), "worker {i} failed: {status}");
        }
        for line in lines {
            if let Some(t) = line.strip_prefix("task ") {
                *count.entry(t.parse().unwrap()).or_default() += 1;
            }
        }
    }
    assert_eq!(count.len(), 300, "every task done");
    assert!(
        count.values().all(|&n| n == 1),
        "a task done twice: {count:?}"
    );
    let status = run.status().unwrap();
    assert_eq!(
        (status.num_done, status.num_computing, status.num_waiting),
        (300, 0, 0)
    );
    for task in held {
        assert_eq!(task_state(&run, task), TaskState::Done);
    }
    assert!(
        journal_files(&dir, run.uuid()).is_empty(),
        "journal files left behind"
    );
}

#[test]
fn a_task_that_kills_its_worker_every_time_is_set_aside() {
    let server = shared_pg();
    let run = Run::create(&settings(server), 40).unwrap();
    let dir = scratch("poison");
    let stop = dir.join("stop");
    let poison = 7;
    let env = [
        ("REAP_TEST_POISON", poison.to_string()),
        ("REAP_TEST_STOP", stop.display().to_string()),
    ];
    let reaper = Watcher::start(
        taskfarm(server)
            .args(["reap", run.uuid(), "--journal"])
            .arg(&dir)
            .args(["--watch", "0.2", "--max-attempts", "2", "--json"]),
    );
    let workers: Vec<WorkerProcess> = (0..5)
        .map(|_| WorkerProcess::start(server, run.uuid(), &dir, &env))
        .collect();
    // The reaper ends once every task is done or set aside.
    let (_, passes) = reaper.finish();
    let last = passes.last().unwrap();
    assert_eq!(last["finished"], true);
    assert_eq!(last["set_aside"], serde_json::json!([poison]));
    let newly: Vec<&Value> = passes
        .iter()
        .flat_map(|p| p["newly_set_aside"].as_array().unwrap())
        .collect();
    assert_eq!(newly.len(), 1);
    assert_eq!(
        (newly[0]["task"].as_i64(), newly[0]["attempts"].as_i64()),
        (Some(poison), Some(2))
    );
    let given_back: Vec<i64> = passes
        .iter()
        .flat_map(|p| p["given_back"].as_array().unwrap())
        .map(|a| a["task"].as_i64().unwrap())
        .collect();
    assert_eq!(
        given_back,
        vec![poison],
        "given back once, after the first death"
    );
    let status = run.status().unwrap();
    assert_eq!((status.num_done, status.num_computing), (39, 1));
    assert_eq!(
        task_state(&run, poison),
        TaskState::Computing,
        "set aside: left computing"
    );

    std::fs::write(&stop, "").unwrap();
    let mut killed = 0;
    for w in workers {
        let (status, lines) = w.finish();
        if lines.iter().any(|l| l.starts_with("poisoned ")) {
            killed += 1;
            assert!(!status.success());
        } else {
            assert!(status.success(), "worker failed: {status} {lines:?}");
        }
    }
    assert_eq!(killed, 2, "two workers died of the task, no more");

    // Released by the user: given back, attempts forgotten.
    let out = run_ok(
        taskfarm(server)
            .args(["reap", run.uuid(), "--journal"])
            .arg(&dir)
            .args(["--release", &poison.to_string()]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("released and given back"), "{text}");
    assert_eq!(task_state(&run, poison), TaskState::Waiting);
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("reap-{}.json", run.uuid()))).unwrap(),
    )
    .unwrap();
    assert_eq!(state["set_aside"], serde_json::json!([]));
    assert_eq!(state["attempts"], serde_json::json!({}));
}

#[test]
fn a_done_the_server_missed_is_kept_and_delivered_later() {
    let server = TaskfarmServer::start_with(Db::Postgresql);
    // Two tasks: A's next request after the restart is answered "no task
    // left", the last request a worker makes at the end of a run; it
    // delivers the kept done too.
    let run = Run::create(&settings(&server), 2).unwrap();
    let dir = scratch("kept");
    let gate_a = dir.join("gate-a");
    let gate_b = dir.join("gate-b");
    let mut a = WorkerProcess::start(
        &server,
        run.uuid(),
        &dir,
        &[
            ("REAP_TEST_GATE", gate_a.display().to_string()),
            // Progress sent at once: no coalesced update left pending to
            // fail in the background while the server is away, whose
            // failure would reach the worker's next call after the restart.
            ("TASKFARM_UPDATE_INTERVAL", "0".to_string()),
        ],
    );
    let mut b = WorkerProcess::start(
        &server,
        run.uuid(),
        &dir,
        &[
            ("REAP_TEST_GATE", gate_b.display().to_string()),
            // Progress sent at once: no coalesced update left pending to
            // fail in the background while the server is away, whose
            // failure would reach the worker's next call after the restart.
            ("TASKFARM_UPDATE_INTERVAL", "0".to_string()),
        ],
    );
    let task_a: i64 = a.wait_line("ready ").parse().unwrap();
    let task_b: i64 = b.wait_line("ready ").parse().unwrap();

    server.stop();
    std::fs::write(&gate_a, "").unwrap();
    std::fs::write(&gate_b, "").unwrap();
    assert!(a
        .wait_line("done-failed ")
        .starts_with(&format!("{task_a} ")));
    assert!(b
        .wait_line("done-failed ")
        .starts_with(&format!("{task_b} ")));
    for (w, task) in [(&a, task_a), (&b, task_b)] {
        let record = read_journal_of(&dir, run.uuid(), w.child.id()).expect("its journal");
        assert_eq!(record.kept_done, vec![task]);
        assert_eq!(record.task, None);
    }
    // Nothing secret in the journals: neither the password nor the token.
    let token = run.connection().token().expose().to_owned();
    for name in journal_files(&dir, run.uuid()) {
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(
            !text.contains(&server.password),
            "{name} holds the password"
        );
        assert!(!text.contains(&token), "{name} holds the token");
    }

    server.restart(None);
    // Kept, not delivered yet: both are still computing on the server.
    assert_eq!(task_state(&run, task_a), TaskState::Computing);
    assert_eq!(task_state(&run, task_b), TaskState::Computing);

    // B dies before any other request: taskfarm reap delivers its done.
    b.kill();
    let out = run_ok(
        taskfarm(&server)
            .args(["reap", run.uuid(), "--journal"])
            .arg(&dir)
            .arg("--json"),
    );
    let pass = &json_lines(&out.stdout)[0];
    let delivered: Vec<i64> = pass["delivered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["task"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered, vec![task_b]);
    assert_eq!(task_state(&run, task_b), TaskState::Done);
    assert_eq!(
        task_state(&run, task_a),
        TaskState::Computing,
        "A is alive: not the reaper's"
    );

    // A goes on: its next successful request delivers its kept done.
    std::fs::write(dir.join("gate-a.2"), "").unwrap();
    let (status, _) = a.finish();
    assert!(status.success());
    assert_eq!(task_state(&run, task_a), TaskState::Done);
    let status = run.status().unwrap();
    assert_eq!(status.num_done, 2);
    assert!(journal_files(&dir, run.uuid()).is_empty());
}

#[test]
fn bad_journal_files_are_reported_and_left_alone() {
    let server = shared_pg();
    let settings = settings(server);
    let run = std::sync::Arc::new(Run::create(&settings, 4).unwrap());
    let dir = scratch("bad");
    let mut w0 = Worker::register(run.clone()).unwrap();
    let mut w1 = Worker::register(run.clone()).unwrap();
    let mut w2 = Worker::register(run.clone()).unwrap();
    assert_eq!(w0.task().unwrap(), Some(0));
    assert_eq!(w1.task().unwrap(), Some(1));
    assert_eq!(w2.task().unwrap(), Some(2));

    // A valid journal to copy: the worker's own, taken over for a dead
    // process (a child that has ended) holding task 1.
    let template = Journal::start(&dir, run.uuid(), "feedface").unwrap();
    let mut record = template.record();
    template.finish();
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    record.heartbeat = unix_now();
    let write = |worker: &str, record: &Record| {
        let record = Record {
            worker: worker.into(),
            ..record.clone()
        };
        let text = serde_json::to_string_pretty(&record).unwrap();
        let name = journal::file_name(run.uuid(), worker);
        std::fs::write(dir.join(&name), &text).unwrap();
        (name, text)
    };
    record.pid = dead_pid;
    record.process_start = Some(0);
    record.task = Some(1);
    let (dead_name, _) = write("dead01", &record);
    // On another machine (another boot id), nothing to ask but the
    // heartbeat, which stands still: stale once the reaper has seen it
    // unchanged for --stale (its value, on another clock, proves nothing).
    let (remote_name, _) = write(
        "remote01",
        &Record {
            host: "node-elsewhere".into(),
            boot_id: Some("another-boot".into()),
            heartbeat: unix_now() - 1000.0,
            heartbeat_interval: 0.1,
            task: Some(2),
            ..record.clone()
        },
    );

    // The bad ones all claim task 0 for a dead process.
    record.task = Some(0);
    let (_, good) = write("bad01", &record);
    std::fs::write(
        dir.join(journal::file_name(run.uuid(), "bad01")),
        &good[..good.len() / 2],
    )
    .unwrap(); // truncated
    std::fs::write(
        dir.join(journal::file_name(run.uuid(), "bad02")),
        b"\x00\xffgarbage",
    )
    .unwrap();
    write(
        "bad03",
        &Record {
            run: "0123abcd".into(),
            ..record.clone()
        },
    ); // another run's
    let (bad04, _) = write("bad04", &record);
    std::os::unix::fs::chown(dir.join(bad04), Some(2001), None).unwrap(); // another user's
    let (_, newer) = write("bad05", &record);
    std::fs::write(
        dir.join(journal::file_name(run.uuid(), "bad05")),
        newer.replace("\"version\": 1", "\"version\": 2"),
    )
    .unwrap(); // a newer format
    std::fs::create_dir(dir.join(journal::file_name(run.uuid(), "bad06"))).unwrap(); // unreadable
    let fifo = dir.join(journal::file_name(run.uuid(), "bad07"));
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0); // would block a reader
    write(
        "bad08",
        &Record {
            kept_done: vec![3],
            ..record.clone()
        },
    ); // a task never handed out
    let before = journal_files(&dir, run.uuid());

    // --dry-run says what it would do and changes nothing.
    let out = run_ok(
        taskfarm(server)
            .args(["reap", run.uuid(), "--journal"])
            .arg(&dir)
            .args(["--stale", "0.5", "--dry-run"]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("would give back its task 1"), "{text}");
    assert!(text.contains("1 live journaled worker(s)"), "{text}");
    // The summary counts every task, those not started too.
    let s = run.status().unwrap();
    let summary = format!(
        "run {}: {} done, {} waiting, {} computing, {} not started of {} tasks; ",
        run.uuid(),
        s.num_done,
        s.num_waiting,
        s.num_computing,
        s.num_not_started(),
        s.num_tasks
    );
    assert!(text.contains(&summary), "{summary} in {text}");
    assert_eq!(journal_files(&dir, run.uuid()), before);
    for task in 0..3 {
        assert_eq!(task_state(&run, task), TaskState::Computing);
    }
    assert!(!dir.join(format!("reap-{}.json", run.uuid())).exists());

    let out = run_ok(
        taskfarm(server)
            .args(["reap", run.uuid(), "--journal"])
            .arg(&dir)
            .args(["--stale", "0.5", "--json"]),
    );
    let pass = &json_lines(&out.stdout)[0];
    let invalid: BTreeMap<String, String> = pass["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let file = i["file"].as_str().unwrap();
            let worker = file.rsplit('-').next().unwrap().trim_end_matches(".json");
            (worker.to_owned(), i["reason"].as_str().unwrap().to_owned())
        })
        .collect();
    let expect = [
        ("bad01", "not JSON"),
        ("bad02", "not JSON"),
        ("bad03", "belongs to run 0123abcd"),
        ("bad04", "owned by uid 2001"),
        ("bad05", "newer than this library"),
        ("bad06", "not a regular file"),
        ("bad07", "not a regular file"),
        ("bad08", "never handed out"),
    ];
    assert_eq!(invalid.len(), expect.len(), "{invalid:?}");
    for (worker, why) in expect {
        assert!(
            invalid[worker].contains(why),
            "{worker}: {}",
            invalid[worker]
        );
    }
    // The dead process's journal was acted on; the remote one is alive at
    // the reaper's first look.
    let given_back: Vec<i64> = pass["given_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["task"].as_i64().unwrap())
        .collect();
    assert_eq!(given_back, vec![1]);
    assert_eq!(task_state(&run, 1), TaskState::Waiting);
    assert_eq!(task_state(&run, 2), TaskState::Computing);

    // Once the reaper has seen the remote heartbeat stand still for
    // --stale, a dry run says it would give it back, then a pass does.
    let text = wait_until("the remote heartbeat to be stale", || {
        let out = run_ok(
            taskfarm(server)
                .args(["reap", run.uuid(), "--journal"])
                .arg(&dir)
                .args(["--stale", "0.5", "--dry-run"]),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("would give back its task 2").then_some(text)
    });
    assert!(text.contains("stood still"), "{text}");
    assert!(
        text.contains("1 task(s) computing that no live journaled worker holds"),
        "{text}"
    );
    let out = run_ok(
        taskfarm(server)
            .args(["reap", run.uuid(), "--journal"])
            .arg(&dir)
            .args(["--stale", "0.5", "--json"]),
    );
    let pass = &json_lines(&out.stdout)[0];
    assert_eq!(pass["given_back"][0]["task"], 2, "{pass}");
    assert_eq!(task_state(&run, 2), TaskState::Waiting);
    // Left alone: the bad files are all there, task 0 is still computing.
    let after = journal_files(&dir, run.uuid());
    let expected_after: Vec<String> = before
        .into_iter()
        .filter(|n| *n != dead_name && *n != remote_name)
        .collect();
    assert_eq!(after, expected_after);
    assert_eq!(task_state(&run, 0), TaskState::Computing);

    // The human output says the same, and --restart-orphans refuses while
    // files that cannot be read may belong to live workers.
    let out = run_ok(
        taskfarm(server)
            .args(["reap", run.uuid(), "--journal"])
            .arg(&dir)
            .arg("--restart-orphans"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("left alone:"), "{text}");
    assert!(text.contains("not restarted"), "{text}");
    assert_eq!(task_state(&run, 0), TaskState::Computing);
    drop((w0, w1, w2));
}

#[test]
fn an_mpi_rank_killed_mid_task_loses_nothing_once_reap_runs() {
    let server = shared_pg();
    let run = Run::create(&settings(server), 60).unwrap();
    let dir = scratch("mpi");
    let mpirun = which("mpirun").unwrap_or_else(|| {
        panic!("mpirun is missing: apt-get install -y openmpi-bin libopenmpi-dev")
    });
    // Open MPI: one rank dies of SIGKILL, mpirun tears the others down
    // (SIGTERM, then SIGKILL): none of them frees its worker.
    let out = Command::new(mpirun)
        .args(["--allow-run-as-root", "--oversubscribe", "-n", "4"])
        .arg(c_programs::reap_worker())
        .arg(run.uuid())
        .envs(server.credentials_env())
        .env("TASKFARM_JOURNAL", &dir)
        .env("TASKFARM_RETRIES", "3")
        .env("TASKFARM_BACKOFF", "0.05")
        .env("REAP_TEST_KILL_RANK", "2")
        .env("REAP_TEST_TASK_MS", "50")
        .stderr(Stdio::inherit())
        .output()
        .expect("run mpirun");
    assert!(
        !out.status.success(),
        "mpirun should report the killed rank"
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let killed: i64 = printed
        .lines()
        .find_map(|l| l.strip_prefix("rank-killed "))
        .unwrap_or_else(|| panic!("rank 2 did not kill itself: {printed}"))
        .parse()
        .unwrap();
    let records: Vec<Record> = journal_files(&dir, run.uuid())
        .iter()
        .map(|n| journal::read_record(&dir.join(n), run.uuid()).unwrap())
        .collect();
    let rank2 = records
        .iter()
        .find(|r| r.mpi_rank == Some(2))
        .unwrap_or_else(|| panic!("no journal of rank 2: {records:?}"));
    assert_eq!(rank2.task, Some(killed));
    let mut ranks: Vec<i64> = records.iter().map(|r| r.mpi_rank.unwrap()).collect();
    ranks.sort();
    ranks.dedup();
    assert_eq!(
        ranks.len(),
        records.len(),
        "one journal per rank: {records:?}"
    );

    // Every rank is gone: reap gives their tasks back, and restarts any task
    // whose hand-out answer was lost in the tear-down.
    let mut given_back = Vec::new();
    wait_until("every journal settled", || {
        let out = run_ok(
            taskfarm(server)
                .args(["reap", run.uuid(), "--journal"])
                .arg(&dir)
                .args(["--restart-orphans", "--json"]),
        );
        let pass = json_lines(&out.stdout).remove(0);
        given_back.extend(
            pass["given_back"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["task"].as_i64().unwrap()),
        );
        (journal_files(&dir, run.uuid()).is_empty() && run.status().unwrap().num_computing == 0)
            .then_some(())
    });
    eprintln!("mpi: journals of ranks {ranks:?} left; tasks given back {given_back:?}");
    assert!(given_back.contains(&killed), "{given_back:?}");
    assert_eq!(run.status().unwrap().num_computing, 0);

    // One more worker finishes the run: nothing was lost.
    let (status, lines) = WorkerProcess::start(server, run.uuid(), &dir, &[]).finish();
    assert!(status.success());
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for line in printed.lines().map(str::to_owned).chain(lines) {
        if let Some(t) = line.strip_prefix("task ") {
            *count.entry(t.parse().unwrap()).or_default() += 1;
        }
    }
    assert!(
        count.values().all(|&n| n == 1),
        "a task done twice: {count:?}"
    );
    let status = run.status().unwrap();
    assert_eq!(
        (status.num_done, status.num_computing, status.num_waiting),
        (60, 0, 0)
    );
}

#[test]
fn orphans_are_restarted_only_when_asked_and_set_aside_tasks_stay_aside() {
    let server = shared_pg();
    let run = std::sync::Arc::new(Run::create(&settings(server), 3).unwrap());
    let dir = scratch("orphans");
    // Task 0: handed out, its worker without a journal (as an answer lost
    // in transit). Task 1: computing and set aside by an earlier reaper.
    let mut w0 = Worker::register(run.clone()).unwrap();
    let mut w1 = Worker::register(run.clone()).unwrap();
    assert_eq!(w0.task().unwrap(), Some(0));
    assert_eq!(w1.task().unwrap(), Some(1));
    let state = serde_json::json!({"format": "taskfarm-reap-state", "version": 1,
        "run": run.uuid(), "attempts": {"1": 3}, "set_aside": [1]});
    std::fs::write(
        dir.join(format!("reap-{}.json", run.uuid())),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();

    let reap = |extra: &[&str]| {
        let out = run_ok(
            taskfarm(server)
                .args(["reap", run.uuid(), "--journal"])
                .arg(&dir)
                .arg("--json")
                .args(extra),
        );
        json_lines(&out.stdout).remove(0)
    };
    let pass = reap(&[]);
    assert_eq!(
        (pass["orphans"].as_i64(), &pass["restarted"]),
        (Some(1), &Value::Bool(false))
    );
    assert_eq!(
        task_state(&run, 0),
        TaskState::Computing,
        "not restarted unasked"
    );
    let pass = reap(&["--restart-orphans", "--dry-run"]);
    assert_eq!(pass["restarted"], false);
    assert_eq!(
        task_state(&run, 0),
        TaskState::Computing,
        "a dry run changes nothing"
    );
    let pass = reap(&["--restart-orphans"]);
    assert_eq!(pass["restarted"], true);
    assert_eq!(task_state(&run, 0), TaskState::Waiting);
    assert_eq!(task_state(&run, 1), TaskState::Computing, "still set aside");
    assert_eq!(pass["set_aside"], serde_json::json!([1]));
    drop((w0, w1));
}

/// How the reaper's first give-back goes wrong after the server stored it.
#[derive(Clone, Copy)]
enum LostAnswer {
    /// The connection closed without the answer.
    Cut,
    /// A front proxy answered 502 in the server's place.
    BadGateway,
}

#[test]
fn a_give_back_whose_answer_was_lost_is_never_made_again() {
    give_back_stored_but_not_confirmed(LostAnswer::Cut);
}

#[test]
fn a_give_back_answered_502_after_the_server_stored_it_is_never_made_again() {
    give_back_stored_but_not_confirmed(LostAnswer::BadGateway);
}

fn give_back_stored_but_not_confirmed(fault: LostAnswer) {
    let server = shared_pg();
    let proxy = RecordingProxy::start(server);
    let run = std::sync::Arc::new(Run::create(&settings(server), 1).unwrap());
    // A directory per variant: the two tests run side by side.
    let dir = scratch(match fault {
        LostAnswer::Cut => "lost-answer",
        LostAnswer::BadGateway => "bad-gateway",
    });
    // Task 0 held by a worker whose process has ended (its journal kept).
    let mut first = Worker::register(run.clone()).unwrap();
    assert_eq!(first.task().unwrap(), Some(0));
    let template = Journal::start(&dir, run.uuid(), "dead01").unwrap();
    let mut record = template.record();
    template.finish();
    let mut child = Command::new("true").spawn().unwrap();
    record.pid = child.id();
    child.wait().unwrap();
    record.process_start = Some(0);
    record.task = Some(0);
    record.heartbeat = unix_now();
    let journal_path = dir.join(journal::file_name(run.uuid(), "dead01"));
    let write_journal = || {
        std::fs::write(&journal_path, serde_json::to_vec(&record).unwrap()).unwrap();
    };
    write_journal();

    // The reaper talks through the proxy, which forwards the give-back
    // and closes the connection without its answer.
    let reap = || {
        let out = run_ok(
            Command::new(env!("CARGO_BIN_EXE_taskfarm"))
                .args(["-b", &proxy.url, "-u", &server.user, "-p", &server.password])
                .args(["reap", run.uuid(), "--journal"])
                .arg(&dir)
                .arg("--json")
                .env("TASKFARM_RETRIES", "3")
                .env("TASKFARM_BACKOFF", "0.05"),
        );
        json_lines(&out.stdout).remove(0)
    };
    let give_back = put_status(run.uuid(), 0, Some("waiting"));
    let give_backs = || {
        proxy
            .records_of(run.uuid())
            .iter()
            .filter(|r| give_back(r))
            .count()
    };
    let cut = match fault {
        LostAnswer::Cut => proxy.cut(give_back.clone()),
        LostAnswer::BadGateway => proxy.bad_gateway(give_back.clone()),
    };
    let first_pass = reap();
    assert_eq!(give_backs(), 1, "{first_pass}");
    assert_eq!(task_state(&run, 0), TaskState::Waiting, "it landed");
    cut.remove();

    // A live worker takes the task; the next pass leaves it alone.
    let mut second = Worker::register(run.clone()).unwrap();
    assert_eq!(second.task().unwrap(), Some(0));
    let next_pass = reap();
    assert_eq!(give_backs(), 1, "given back again: {next_pass}");
    assert_eq!(task_state(&run, 0), TaskState::Computing);
    // Even on the word of the dead worker's journal, still there (its
    // removal failed on a shared file system, say): the state file says so.
    write_journal();
    let third_pass = reap();
    assert_eq!(give_backs(), 1, "given back again: {third_pass}");
    assert_eq!(task_state(&run, 0), TaskState::Computing);

    let said = |pass: &Value, what: &str| {
        pass["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains(what))
    };
    assert!(
        said(&first_pass, "may have reached the server, unconfirmed"),
        "{first_pass}"
    );
    assert!(said(&third_pass, "not given back again"), "{third_pass}");
    let state: Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("reap-{}.json", run.uuid()))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["releasing"],
        serde_json::json!({"0": ["dead01"]}),
        "{state}"
    );
    second.update(100.0).unwrap();
    second.done().unwrap();
    assert_eq!(
        task_state(&run, 0),
        TaskState::Done,
        "the live worker's done"
    );
    drop(first);
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
