//! "A stopped worker hands its task back and nothing is lost", under the
//! interleavings where something is in flight. Each test forces one
//! interleaving against the REAL server through the recording proxy: a
//! chosen answer is held at a gate until the test releases it (the server has
//! acted, the worker has not heard), or chosen requests fail. What the test
//! waits for is an event: a request reaching a gate, a line of the worker
//! process, the process's end; never a sleep.
//!
//! Map:
//! - a `done` in flight when SIGTERM comes is waited for, never followed by
//!   a `waiting` ([`sigterm_while_a_done_is_in_flight_never_turns_it_back_to_waiting`]);
//! - a requeue in flight is not doubled by the watcher ([`sigterm_during_a_requeue_sends_one_waiting`]);
//! - a fail in flight (`tf_worker_fail`) is waited for: a task handed back
//!   gets one `waiting` and one attempt, a task set aside is never handed
//!   back ([`sigterm_during_a_fail_sends_one_waiting_and_counts_one_attempt`],
//!   [`sigterm_while_a_fail_sets_a_task_aside_never_hands_it_back`]);
//! - `done` carries the latest percentage even after a failed update, and a
//!   failed hand-back leaves progress open ([`a_failed_update_100_still_records_the_done_task_at_100`],
//!   [`after_a_failed_hand_back_progress_is_sent_again`]);
//! - a hand-back whose request may have reached the server unconfirmed (no
//!   answer, a 502) lets go of the task and is never sent again, by the
//!   program or the watcher, and the journal names the task no more
//!   ([`a_hand_back_that_may_have_landed_is_never_sent_again`],
//!   [`a_fail_whose_hand_back_may_have_landed_keeps_its_attempt_and_lets_go`],
//!   [`a_watchers_hand_back_that_may_have_landed_leaves_the_journal_naming_no_task`]);
//! - a task being requested when SIGTERM comes is handed back
//!   ([`sigterm_while_a_task_is_requested_hands_it_back`]);
//! - in `TF_STOP_EXIT` a call that finds the watcher handing its task back
//!   never returns ([`a_done_after_the_watcher_took_the_task_never_returns_tf_ok`]);
//! - `fork()`: the child's own stop signals work, the parent's `tf_taskfarm`
//!   is refused ([`stop_signals_in_a_forked_child_hand_back_the_childs_task`],
//!   [`a_forked_child_cannot_use_the_parents_taskfarm`]);
//! - a stop has a budget, hands back in parallel, and a second signal ends it
//!   ([`a_stop_hands_back_in_parallel_and_ends_within_its_budget`],
//!   [`a_second_stop_signal_ends_the_process_at_once`]);
//! - an ignored signal stays ignored ([`a_signal_ignored_at_start_stays_ignored`]).
//!
//! Stop signals are process-wide and `TF_STOP_EXIT` ends the process, so the
//! workers of these tests run in child processes: this test binary run again
//! with [`CHILD_ENV`] naming a scenario ([`child`], ignored in a normal run).
//! The proxy stays in the test process, which holds and releases.

mod common;

use std::ffi::CStr;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::ptr;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::c_abi::{c, last_error, new_worker};
use common::recording_proxy::{
    any_put_percent, any_put_status, put_status, task_request, Record, RecordingProxy,
};
use common::server::TaskfarmServer;
use taskfarm_worker::ffi::status::tf_status::{self, *};
use taskfarm_worker::ffi::status::tf_status_name;
use taskfarm_worker::ffi::stop::{tf_stop_on_signals, tf_stop_requested};
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;
use taskfarm_worker::{Run, Settings, TaskState, Worker};

/// The environment variable that makes this binary a worker process running
/// the scenario it names.
const CHILD_ENV: &str = "TASKFARM_HELD_TASKS_CHILD";
/// The overall deadline of a wait for an event (the machine is shared).
const EVENT: Duration = Duration::from_secs(60);
/// The prefix of the lines a child prints for the test.
const SAY: &str = "held: ";

fn proxy() -> &'static RecordingProxy {
    static PROXY: OnceLock<RecordingProxy> = OnceLock::new();
    PROXY.get_or_init(|| RecordingProxy::start(TaskfarmServer::shared()))
}

/// A new run, made and read straight on the server (not through the proxy).
fn new_run(num_tasks: i64) -> Run {
    Run::create(&TaskfarmServer::shared().settings(), num_tasks).unwrap()
}

fn assert_task(run: &Run, task: i64, state: TaskState, percent: f64) {
    let record = run.task(task).unwrap();
    assert_eq!(
        (record.status, record.percent_completed),
        (state, percent),
        "task {task} on the server"
    );
}

/// The `PUT`s of `task` with status `status` that reached the server.
fn puts_with(uuid: &str, task: i64, status: &str) -> Vec<Record> {
    let matcher = put_status(uuid, task, Some(status));
    proxy()
        .records_of(uuid)
        .into_iter()
        .filter(|r| matcher(r))
        .collect()
}

// ---------------------------------------------------------------------------
// The worker process.

/// A worker process: this binary running scenario `scenario` on run `uuid`
/// through the proxy, its stdout and stderr lines gathered as they come.
struct WorkerProcess {
    child: Child,
    lines: Receiver<(bool, String)>,
    /// stdout lines of the scenario (without the prefix).
    said: Vec<String>,
    stderr: Vec<String>,
}

fn spawn(scenario: &str, uuid: &str, extra: &[(&str, &str)], ignore: Option<i32>) -> WorkerProcess {
    let server = TaskfarmServer::shared();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child", "--ignored", "--nocapture", "-q"])
        .env(CHILD_ENV, scenario)
        .env("TASKFARM_HELD_RUN", uuid)
        .env("TASKFARM_URL", &proxy().url)
        .env("TASKFARM_USER", &server.user)
        .env("TASKFARM_PASSWORD", &server.password)
        .env("TASKFARM_UPDATE_INTERVAL", "0")
        .env_remove("TASKFARM_STOP_SIGNALS")
        .env_remove("TASKFARM_JOURNAL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in extra {
        command.env(name, value);
    }
    // The child starts with the stop signals at their default action, except
    // `ignore`: a test binary started in the background by a non-interactive
    // shell (mk/rust-tests.sh's lanes) has SIGINT and SIGQUIT ignored, and the
    // library rightly leaves an inherited SIG_IGN alone (finding 9), which
    // would make every SIGINT of these tests a no-op.
    // SAFETY: between fork and exec only signal(2), async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            for default in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
                libc::signal(default, libc::SIG_DFL);
            }
            if let Some(signal) = ignore {
                libc::signal(signal, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let (sender, lines) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let to_out = sender.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = to_out.send((true, line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = sender.send((false, line));
        }
    });
    WorkerProcess {
        child,
        lines,
        said: Vec::new(),
        stderr: Vec::new(),
    }
}

impl WorkerProcess {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn drain(&mut self) {
        while let Ok((out, line)) = self.lines.try_recv() {
            if out {
                if let Some(at) = line.find(SAY) {
                    self.said.push(line[at + SAY.len()..].to_owned());
                }
            } else {
                self.stderr.push(line);
            }
        }
    }

    /// Waits until `check` answers `Some` (it is asked again after each
    /// line the process prints, and on each look at the proxy's records);
    /// panics after [`EVENT`] with what was seen.
    fn until<T>(&mut self, what: &str, mut check: impl FnMut(&WorkerProcess) -> Option<T>) -> T {
        let deadline = Instant::now() + EVENT;
        loop {
            self.drain();
            if let Some(found) = check(self) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {EVENT:?}; said {:?}; stderr {:#?}",
                self.said,
                self.stderr
            );
            // Either a line arrives (then look again at once) or, every 10 ms,
            // the proxy's records are looked at again.
            if let Ok((out, line)) = self.lines.recv_timeout(Duration::from_millis(10)) {
                if out {
                    if let Some(at) = line.find(SAY) {
                        self.said.push(line[at + SAY.len()..].to_owned());
                    }
                } else {
                    self.stderr.push(line);
                }
            }
        }
    }

    /// The first scenario line that starts with `prefix`, waited for.
    fn said(&mut self, prefix: &str) -> String {
        self.until(&format!("a line {prefix:?}"), |w| {
            w.said.iter().find(|l| l.starts_with(prefix)).cloned()
        })
    }

    fn said_now(&self, prefix: &str) -> Option<String> {
        self.said.iter().find(|l| l.starts_with(prefix)).cloned()
    }

    fn stderr_now(&self, part: &str) -> Option<String> {
        self.stderr.iter().find(|l| l.contains(part)).cloned()
    }

    fn exited(&self) -> bool {
        // SAFETY: a non-blocking look at our own child, which is not reaped.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        let pid = self.pid() as libc::id_t;
        unsafe { libc::waitid(libc::P_PID, pid, &mut info, flags) == 0 && info.si_pid() != 0 }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Waits for the process's end (at most `limit`): its status and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        self.until("the worker process ends", |w| w.exited().then_some(()));
        let status = self.child.wait().unwrap();
        let took = start.elapsed();
        assert!(took <= limit, "ended {took:?} after, more than {limit:?}");
        // The rest of its output.
        let deadline = Instant::now() + EVENT;
        while let Ok((out, line)) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if out {
                if let Some(at) = line.find(SAY) {
                    self.said.push(line[at + SAY.len()..].to_owned());
                }
            } else {
                self.stderr.push(line);
            }
        }
        (status, took)
    }

    fn assert_died_of(&self, status: ExitStatus, signal: i32) {
        assert_eq!(
            status.signal(),
            Some(signal),
            "the worker must die of signal {signal}, not {status:?}; said {:?}; stderr {:#?}",
            self.said,
            self.stderr
        );
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn number(line: &str, word: usize) -> i64 {
    line.split_whitespace()
        .nth(word)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number at word {word} of {line:?}"))
}

// ---------------------------------------------------------------------------
// Finding 1: a `done` in flight is never turned back into `waiting`.

#[test]
fn sigterm_while_a_done_is_in_flight_never_turns_it_back_to_waiting() {
    let run = new_run(2);
    // The server stores the done; its answer is held.
    let gate = proxy().hold(any_put_status(run.uuid(), "done"));
    let mut worker = spawn("done", run.uuid(), &[], None);
    let task = number(&worker.said("finishing "), 1);
    gate.wait_held(1, EVENT);
    worker.signal(libc::SIGTERM);
    // Either the watcher says it waits for the done's answer (right), or a
    // `waiting` reaches the server (wrong).
    let uuid = run.uuid().to_owned();
    let waits = worker.until("the watcher acts on SIGTERM", |w| {
        if !puts_with(&uuid, task, "waiting").is_empty() {
            return Some(false);
        }
        w.stderr_now("its done is in flight").map(|_| true)
    });
    assert!(
        waits,
        "the stop watcher sent `waiting` while the done of task {task} was in flight: {:#?}",
        proxy().records_of(run.uuid())
    );
    gate.release();
    let (status, _) = worker.wait_exit(EVENT);
    worker.assert_died_of(status, libc::SIGTERM);
    assert!(puts_with(run.uuid(), task, "waiting").is_empty());
    assert_task(&run, task, TaskState::Done, 100.0);
}

// Finding 2: a requeue in flight is the only `waiting`.

#[test]
fn sigterm_during_a_requeue_sends_one_waiting() {
    let run = new_run(2);
    let gate = proxy().hold(any_put_status(run.uuid(), "waiting"));
    let mut worker = spawn("requeue", run.uuid(), &[], None);
    let task = number(&worker.said("requeueing "), 1);
    gate.wait_held(1, EVENT);
    worker.signal(libc::SIGTERM);
    let uuid = run.uuid().to_owned();
    let waits = worker.until("the watcher acts on SIGTERM", |w| {
        if puts_with(&uuid, task, "waiting").len() > 1 {
            return Some(false);
        }
        w.stderr_now("its hand-back is in flight").map(|_| true)
    });
    assert!(
        waits,
        "the stop watcher sent a second `waiting` during the requeue of task {task}: {:#?}",
        puts_with(run.uuid(), task, "waiting")
    );
    gate.release();
    let (status, _) = worker.wait_exit(EVENT);
    worker.assert_died_of(status, libc::SIGTERM);
    let waiting = puts_with(run.uuid(), task, "waiting");
    assert_eq!(waiting.len(), 1, "{waiting:#?}");
    assert_eq!(waiting[0].json()["percentCompleted"], 0.0);
    assert_task(&run, task, TaskState::Waiting, 0.0);
}

// A fail in flight: the watcher waits for its outcome, hands back nothing.

/// A fresh journal directory for a worker of this test binary.
fn journal_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("taskfarm-held-tasks-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The attempt records of `run` in `dir` (as `taskfarm failed` reads them).
fn attempt_records(dir: &std::path::Path, run: &str) -> Vec<serde_json::Value> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        if name.starts_with(&format!("attempt-{run}-")) && name.ends_with(".json") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            found.push(serde_json::from_str(&text).unwrap());
        }
    }
    found
}

/// The fail of the task held by scenario `fail` is held at `gate` (the
/// server has acted, the worker has not heard); SIGTERM comes. The watcher
/// must say it waits for the fail, and never send a `waiting` of its own.
fn fail_meets_sigterm(
    run: &Run,
    gate: &common::recording_proxy::Gate,
    journal: &std::path::Path,
    max_attempts: &str,
) -> (WorkerProcess, i64) {
    let journal_text = journal.to_str().unwrap();
    let mut worker = spawn(
        "fail",
        run.uuid(),
        &[
            ("TASKFARM_JOURNAL", journal_text),
            ("TASKFARM_MAX_ATTEMPTS", max_attempts),
            // The 40 % stays pending: the fail's own request is the first
            // to carry it.
            ("TASKFARM_UPDATE_INTERVAL", "3600"),
        ],
        None,
    );
    let task = number(&worker.said("failing "), 1);
    gate.wait_held(1, EVENT);
    worker.signal(libc::SIGTERM);
    let uuid = run.uuid().to_owned();
    let waits = worker.until("the watcher acts on SIGTERM", |w| {
        if puts_with(&uuid, task, "waiting").len() > usize::from(max_attempts != "1") {
            return Some(false);
        }
        w.stderr_now("its fail is in flight").map(|_| true)
    });
    assert!(
        waits,
        "the stop watcher sent a `waiting` of its own during the fail of task {task}: {:#?}",
        puts_with(run.uuid(), task, "waiting")
    );
    gate.release();
    let (status, _) = worker.wait_exit(EVENT);
    worker.assert_died_of(status, libc::SIGTERM);
    (worker, task)
}

#[test]
fn sigterm_during_a_fail_sends_one_waiting_and_counts_one_attempt() {
    let run = new_run(2);
    let journal = journal_dir("fail-back");
    let gate = proxy().hold(any_put_status(run.uuid(), "waiting"));
    let (_worker, task) = fail_meets_sigterm(&run, &gate, &journal, "3");
    let waiting = puts_with(run.uuid(), task, "waiting");
    assert_eq!(waiting.len(), 1, "{waiting:#?}");
    assert_eq!(waiting[0].json()["percentCompleted"], 40.0);
    assert_task(&run, task, TaskState::Waiting, 40.0);
    let records = attempt_records(&journal, run.uuid());
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        (
            &records[0]["kind"],
            &records[0]["set_aside"],
            &records[0]["task"]
        ),
        (&"failed".into(), &false.into(), &task.into())
    );
    let _ = std::fs::remove_dir_all(&journal);
}

#[test]
fn sigterm_while_a_fail_sets_a_task_aside_never_hands_it_back() {
    let run = new_run(2);
    let journal = journal_dir("fail-aside");
    // The set-aside's request: the pending 40 %, no state.
    let gate = proxy().hold(any_put_percent(run.uuid(), 40.0));
    let (_worker, task) = fail_meets_sigterm(&run, &gate, &journal, "1");
    assert!(
        puts_with(run.uuid(), task, "waiting").is_empty(),
        "a task set aside was handed back: {:#?}",
        proxy().records_of(run.uuid())
    );
    assert_task(&run, task, TaskState::Computing, 40.0);
    let records = attempt_records(&journal, run.uuid());
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["set_aside"], true);
    let _ = std::fs::remove_dir_all(&journal);
}

// Finding 3: `done` after a failed update(100); progress after a failed hand-back.

/// A worker of the C ABI on `uuid` through the proxy, every update sent at
/// once, no retries (a refused request fails at once).
fn c_worker(uuid: &str) -> *mut tf_worker {
    let w = new_worker(TaskfarmServer::shared(), &proxy().url, uuid);
    assert_eq!(tf_worker_set_update_interval(w, 0.0), TF_OK);
    assert_eq!(tf_taskfarm_set_retries(tf_worker_taskfarm(w), 0), TF_OK);
    w
}

fn ok(status: tf_status) {
    assert_eq!(status, TF_OK, "{}", last_error());
}

/// Run `uuid` opened for the Rust API through the proxy.
fn through_proxy(uuid: &str) -> Arc<Run> {
    let server = TaskfarmServer::shared();
    let settings = Settings::resolve(
        Some(&server.user),
        Some(&server.password),
        Some(&proxy().url),
    )
    .unwrap();
    Arc::new(Run::open(&settings, uuid).unwrap())
}

#[test]
fn a_failed_update_100_still_records_the_done_task_at_100() {
    let run = new_run(2);
    let w = c_worker(run.uuid());
    let mut task = -1;
    ok(tf_worker_task(w, &mut task));
    ok(tf_worker_update(w, 30.0));
    let refused = proxy().fail(any_put_percent(run.uuid(), 100.0));
    assert_ne!(tf_worker_update(w, 100.0), TF_OK, "the proxy refused it");
    refused.remove();
    ok(tf_worker_done(w));
    assert_task(&run, task, TaskState::Done, 100.0);
    // The reaper's restart of unfinished tasks leaves it done.
    run.restart(false).unwrap();
    assert_task(&run, task, TaskState::Done, 100.0);
    tf_worker_free(w);
}

#[test]
fn after_a_failed_hand_back_progress_is_sent_again() {
    let run = new_run(2);
    let remote = through_proxy(run.uuid());
    remote.connection().set_retries(0);
    let mut worker = Worker::register(Arc::clone(&remote)).unwrap();
    worker.set_update_interval(Duration::ZERO).unwrap();
    let task = worker.task().unwrap().unwrap();
    worker.update(10.0).unwrap();
    // Refused by a front proxy (429) without reaching the server: certainly
    // not handed back, so the task is still held.
    let refused = proxy().answer(put_status(run.uuid(), task, Some("waiting")), 429);
    assert!(worker.hand_back().is_err(), "the proxy refused it");
    refused.remove();
    assert_eq!(worker.held_task(), Some(task));
    worker.update(55.0).unwrap();
    assert_task(&run, task, TaskState::Computing, 55.0);
    worker.update(100.0).unwrap();
    worker.done().unwrap();
    assert_task(&run, task, TaskState::Done, 100.0);
}

/// How a hand-back's request reaches the server without the worker hearing
/// that it did.
#[derive(Debug, Clone, Copy)]
enum Unconfirmed {
    /// Forwarded, its answer never passed on (the connection closed).
    Cut,
    /// Forwarded, answered 502 by the proxy in the server's place.
    BadGateway,
}

fn unconfirmed(run: &Run, task: i64, how: Unconfirmed) -> common::recording_proxy::Rule {
    let matcher = put_status(run.uuid(), task, Some("waiting"));
    match how {
        Unconfirmed::Cut => proxy().cut(matcher),
        Unconfirmed::BadGateway => proxy().bad_gateway(matcher),
    }
}

/// The journal records of `run` in `dir` as the reaper reads them.
fn journal_records(dir: &std::path::Path, run: &str) -> Vec<serde_json::Value> {
    common::journals::journal_files(dir, run)
        .iter()
        .map(|name| serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap())
        .collect()
}

#[test]
fn a_hand_back_that_may_have_landed_is_never_sent_again() {
    for how in [Unconfirmed::Cut, Unconfirmed::BadGateway] {
        let run = new_run(2);
        let journal = journal_dir(&format!("unconfirmed-{how:?}"));
        let remote = through_proxy(run.uuid());
        let mut first = Worker::register(Arc::clone(&remote)).unwrap();
        first.set_journal(Some(&journal)).unwrap();
        first.set_update_interval(Duration::ZERO).unwrap();
        let task = first.task().unwrap().unwrap();
        first.update(30.0).unwrap();
        let rule = unconfirmed(&run, task, how);
        let error = first.hand_back().unwrap_err();
        rule.remove();
        assert!(error.message().contains("held no more"), "{how:?}: {error}");
        // The server took it; the worker knows it may have, and lets go.
        assert_task(&run, task, TaskState::Waiting, 30.0);
        assert_eq!(first.held_task(), None, "{how:?}");
        let named: Vec<_> = journal_records(&journal, run.uuid())
            .into_iter()
            .filter(|r| r["task"] == task)
            .collect();
        assert!(
            named.is_empty(),
            "{how:?}: the journal still names task {task}: {named:#?}"
        );
        // Another worker takes it; the first one's hand-back again sends nothing.
        let mut second = Worker::register(Arc::clone(&remote)).unwrap();
        assert_eq!(second.task().unwrap(), Some(task), "{how:?}");
        first.hand_back().unwrap();
        assert_eq!(puts_with(run.uuid(), task, "waiting").len(), 1, "{how:?}");
        assert_task(&run, task, TaskState::Computing, 30.0);
        second.update(100.0).unwrap();
        second.done().unwrap();
        assert_task(&run, task, TaskState::Done, 100.0);
        drop((first, second));
        let _ = std::fs::remove_dir_all(&journal);
    }
}

#[test]
fn a_fail_whose_hand_back_may_have_landed_keeps_its_attempt_and_lets_go() {
    let run = new_run(2);
    let journal = journal_dir("fail-unconfirmed");
    let remote = through_proxy(run.uuid());
    let mut worker = Worker::register(Arc::clone(&remote)).unwrap();
    worker.set_journal(Some(&journal)).unwrap();
    worker.set_update_interval(Duration::ZERO).unwrap();
    let task = worker.task().unwrap().unwrap();
    worker.update(20.0).unwrap();
    let rule = unconfirmed(&run, task, Unconfirmed::Cut);
    let error = worker.fail("the solver diverged").unwrap_err();
    rule.remove();
    assert!(error.message().contains("held no more"), "{error}");
    assert_task(&run, task, TaskState::Waiting, 20.0);
    assert_eq!(worker.held_task(), None);
    // The attempt happened: its record stays, counted once.
    let records = attempt_records(&journal, run.uuid());
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["task"], task);
    // Nothing held: a second fail sends nothing.
    assert_eq!(
        worker.fail("again").unwrap(),
        taskfarm_worker::Failed::NothingHeld
    );
    assert_eq!(puts_with(run.uuid(), task, "waiting").len(), 1);
    drop(worker);
    let _ = std::fs::remove_dir_all(&journal);
}

#[test]
fn a_watchers_hand_back_that_may_have_landed_leaves_the_journal_naming_no_task() {
    let run = new_run(2);
    let journal = journal_dir("watcher-unconfirmed");
    let journal_text = journal.to_str().unwrap();
    let mut worker = spawn(
        "one_worker_stop",
        run.uuid(),
        &[("TASKFARM_JOURNAL", journal_text)],
        None,
    );
    let task = number(&worker.said("computing "), 1);
    let rule = unconfirmed(&run, task, Unconfirmed::Cut);
    worker.signal(libc::SIGTERM);
    let (status, _) = worker.wait_exit(EVENT);
    rule.remove();
    worker.assert_died_of(status, libc::SIGTERM);
    assert_eq!(puts_with(run.uuid(), task, "waiting").len(), 1);
    assert_task(&run, task, TaskState::Waiting, 50.0);
    // A reaper reading this journal must not give the task back again (by
    // then it may be another worker's).
    let records = journal_records(&journal, run.uuid());
    assert!(
        records.iter().all(|r| r["task"] != task),
        "the journal still names task {task}: {records:#?}"
    );
    let _ = std::fs::remove_dir_all(&journal);
}

// Finding 4: a task being requested when SIGTERM comes is handed back.

#[test]
fn sigterm_while_a_task_is_requested_hands_it_back() {
    let run = new_run(2);
    let gate = proxy().hold(task_request(run.uuid()));
    let mut worker = spawn("request", run.uuid(), &[], None);
    worker.said("requesting");
    gate.wait_held(1, EVENT);
    worker.signal(libc::SIGTERM);
    let waits = worker.until("the watcher acts on SIGTERM", |w| {
        if w.exited() {
            return Some(false);
        }
        w.stderr_now("a task is being requested").map(|_| true)
    });
    gate.release();
    assert!(
        waits,
        "the process ended while its task request was in flight: the server handed out a task \
         nobody holds; stderr {:#?}",
        worker.stderr
    );
    let (status, _) = worker.wait_exit(EVENT);
    worker.assert_died_of(status, libc::SIGTERM);
    let st = run.status().unwrap();
    assert_eq!(
        (st.num_waiting, st.num_computing),
        (1, 0),
        "the task handed out is back"
    );
}

// Finding 5: TF_STOP_EXIT: a call that finds the watcher handing back never returns.

#[test]
fn a_done_after_the_watcher_took_the_task_never_returns_tf_ok() {
    let run = new_run(2);
    let gate = proxy().hold(any_put_status(run.uuid(), "waiting"));
    let mut worker = spawn("done_after_stop", run.uuid(), &[], None);
    let task = number(&worker.said("computing "), 1);
    worker.signal(libc::SIGTERM);
    gate.wait_held(1, EVENT);
    let blocked = worker.until("the program's done", |w| {
        if w.said_now("done ").is_some() {
            return Some(false);
        }
        w.stderr_now("waits for the process to end").map(|_| true)
    });
    assert!(
        blocked,
        "tf_worker_done returned while the watcher was handing task {task} back: {:?}",
        worker.said
    );
    gate.release();
    let (status, _) = worker.wait_exit(EVENT);
    worker.assert_died_of(status, libc::SIGTERM);
    assert_eq!(worker.said_now("done "), None);
    assert_task(&run, task, TaskState::Waiting, 40.0);
}

// Finding 6: stop signals in a fork()ed child.

#[test]
fn stop_signals_in_a_forked_child_hand_back_the_childs_task() {
    let run = new_run(2);
    let mut worker = spawn("fork_stop", run.uuid(), &[], None);
    let set_up = worker.said("grandchild stop_on_signals ");
    assert_eq!(set_up, "grandchild stop_on_signals TF_OK");
    let line = worker.said("grandchild computing ");
    let (pid, task) = (number(&line, 2) as i32, number(&line, 3));
    // SAFETY: kill(2) on the grandchild this test's child made.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let ended = worker.said("grandchild ended ");
    assert_eq!(ended, "grandchild ended by signal 15");
    assert_task(&run, task, TaskState::Waiting, 25.0);
    let (status, _) = worker.wait_exit(EVENT);
    assert_eq!(status.code(), Some(0), "{:?}", worker.stderr);
}

// Finding 7: a tf_taskfarm after fork().

#[test]
fn a_forked_child_cannot_use_the_parents_taskfarm() {
    let run = new_run(2);
    let mut worker = spawn("fork_taskfarm", run.uuid(), &[], None);
    worker.said("forking");
    let before = proxy().records_of(run.uuid()).len();
    let own = worker.said("child own ");
    let borrowed = worker.said("child borrowed ");
    let (status, _) = worker.wait_exit(EVENT);
    assert_eq!(status.code(), Some(0), "{:?}", worker.stderr);
    for line in [&own, &borrowed] {
        assert!(
            line.contains("TF_ERR_INVALID_ARGUMENT") && line.contains("fork()"),
            "a parent's handle in a child: {line}"
        );
    }
    assert_eq!(
        proxy().records_of(run.uuid()).len(),
        before,
        "the child sent requests over its parent's connections"
    );
}

// Finding 8: the stop budget, parallel hand-backs, a second signal.

#[test]
fn a_stop_hands_back_in_parallel_and_ends_within_its_budget() {
    let run = new_run(3);
    // The server takes the hand-backs and never answers.
    let gate = proxy().hold(any_put_status(run.uuid(), "waiting"));
    let mut worker = spawn(
        "two_workers",
        run.uuid(),
        &[("TASKFARM_STOP_BUDGET", "10")],
        None,
    );
    let line = worker.said("computing ");
    let tasks = [number(&line, 1), number(&line, 2)];
    worker.signal(libc::SIGTERM);
    // Both hand-backs held at once: sent in parallel (one after the other,
    // the second could never start while the first is held).
    let held = gate.wait_held(2, EVENT);
    // The budget (10 s, long enough on a loaded machine for both to be
    // sent) ends the process with both unanswered, not the retries.
    let (status, took) = worker.wait_exit(Duration::from_secs(40));
    eprintln!("the stop took {took:?} after both hand-backs, with a budget of 10 s");
    worker.assert_died_of(status, libc::SIGTERM);
    let mut handed: Vec<i64> = held
        .iter()
        .map(|r| r.path.rsplit('/').next().unwrap().parse().unwrap())
        .collect();
    handed.sort_unstable();
    handed.dedup();
    assert_eq!(handed, tasks.to_vec(), "both hand-backs were sent at once");
    gate.release();
}

#[test]
fn a_second_stop_signal_ends_the_process_at_once() {
    let run = new_run(2);
    let gate = proxy().hold(any_put_status(run.uuid(), "waiting"));
    let mut worker = spawn(
        "one_worker",
        run.uuid(),
        &[("TASKFARM_STOP_BUDGET", "600")],
        None,
    );
    worker.said("computing ");
    worker.signal(libc::SIGTERM);
    gate.wait_held(1, EVENT);
    worker.signal(libc::SIGINT);
    let (status, _) = worker.wait_exit(EVENT);
    worker.assert_died_of(status, libc::SIGINT);
    gate.release();
}

// Finding 9: a signal ignored when the process started stays ignored.

#[test]
fn a_signal_ignored_at_start_stays_ignored() {
    let run = new_run(2);
    let mut worker = spawn("ignored_hup", run.uuid(), &[], Some(libc::SIGHUP));
    let line = worker.said("SIGHUP ");
    assert_eq!(line, "SIGHUP ignored", "the default set took over SIG_IGN");
    let task = number(&worker.said("computing "), 1);
    worker.signal(libc::SIGHUP);
    worker.signal(libc::SIGTERM);
    let (status, _) = worker.wait_exit(EVENT);
    worker.assert_died_of(status, libc::SIGTERM);
    assert_task(&run, task, TaskState::Waiting, 20.0);
}

// ---------------------------------------------------------------------------
// The scenarios, run in a child process.

/// Writes one scenario line to stdout with write(2): safe in a fork()ed child.
fn say(line: &str) {
    let text = format!("{SAY}{line}\n");
    // SAFETY: writes a buffer we own to fd 1.
    unsafe { libc::write(1, text.as_ptr().cast(), text.len()) };
}

fn name(status: tf_status) -> String {
    // SAFETY: tf_status_name returns a static string.
    unsafe { CStr::from_ptr(tf_status_name(status as i32)) }
        .to_string_lossy()
        .into_owned()
}

/// A worker of the run from the environment (NULL credentials and URL: the
/// environment's, the proxy).
fn env_worker() -> *mut tf_worker {
    let uuid = c(&std::env::var("TASKFARM_HELD_RUN").unwrap());
    let mut w = ptr::null_mut();
    let status = tf_worker_new(ptr::null(), ptr::null(), ptr::null(), uuid.as_ptr(), &mut w);
    assert_eq!(status, TF_OK, "{}", last_error());
    w
}

fn take_at(w: *mut tf_worker, percent: f64) -> i64 {
    let mut task = -1;
    ok(tf_worker_task(w, &mut task));
    ok(tf_worker_update(w, percent));
    task
}

fn stop_on(signals: &[i32]) {
    let status = if signals.is_empty() {
        tf_stop_on_signals(ptr::null(), 0, 0)
    } else {
        tf_stop_on_signals(signals.as_ptr(), signals.len(), 0)
    };
    ok(status);
}

/// Waits for the process's end, which the library brings.
fn park() -> ! {
    loop {
        std::thread::park();
    }
}

#[test]
#[ignore = "a worker process of the other tests of this file, which run it"]
fn child() {
    let scenario = std::env::var(CHILD_ENV).expect("run by the other tests only");
    match scenario.as_str() {
        "done" => {
            stop_on(&[libc::SIGTERM]);
            let w = env_worker();
            let task = take_at(w, 100.0);
            say(&format!("finishing {task}"));
            say(&format!("done {}", name(tf_worker_done(w))));
            park();
        }
        "requeue" => {
            stop_on(&[libc::SIGTERM]);
            let w = env_worker();
            let task = take_at(w, 40.0);
            say(&format!("requeueing {task}"));
            say(&format!("requeue {}", name(tf_worker_requeue(w))));
            park();
        }
        "fail" => {
            stop_on(&[libc::SIGTERM]);
            let w = env_worker();
            let task = take_at(w, 40.0);
            say(&format!("failing {task}"));
            let message = c("the solver diverged");
            say(&format!(
                "fail {}",
                name(tf_worker_fail(w, message.as_ptr()))
            ));
            park();
        }
        "request" => {
            stop_on(&[libc::SIGTERM]);
            let w = env_worker();
            say("requesting");
            let mut task = -1;
            let status = tf_worker_task(w, &mut task);
            say(&format!("task {} {task}", name(status)));
            park();
        }
        "done_after_stop" => {
            stop_on(&[libc::SIGTERM]);
            let w = env_worker();
            let task = take_at(w, 40.0);
            say(&format!("computing {task}"));
            while tf_stop_requested() == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            say("calling done");
            let status = tf_worker_done(w);
            say(&format!("done {}", name(status)));
            std::process::exit(0);
        }
        "fork_stop" => {
            stop_on(&[libc::SIGTERM]);
            // SAFETY: the child calls the library and write(2), then _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                let status = tf_stop_on_signals([libc::SIGTERM].as_ptr(), 1, 0);
                say(&format!("grandchild stop_on_signals {}", name(status)));
                let w = env_worker();
                let task = take_at(w, 25.0);
                say(&format!(
                    "grandchild computing {} {task}",
                    std::process::id()
                ));
                std::thread::sleep(Duration::from_secs(60));
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waits for the child just made.
            while unsafe { libc::waitpid(pid, &mut status, 0) } == -1 {}
            if libc::WIFSIGNALED(status) {
                say(&format!(
                    "grandchild ended by signal {}",
                    libc::WTERMSIG(status)
                ));
            } else {
                say(&format!(
                    "grandchild ended with {}",
                    libc::WEXITSTATUS(status)
                ));
            }
        }
        "fork_taskfarm" => {
            let server_url = c(&std::env::var("TASKFARM_URL").unwrap());
            let uuid = c(&std::env::var("TASKFARM_HELD_RUN").unwrap());
            let mut tf = ptr::null_mut();
            ok(tf_taskfarm_open(
                ptr::null(),
                ptr::null(),
                server_url.as_ptr(),
                uuid.as_ptr(),
                &mut tf,
            ));
            let w = env_worker();
            let mut percent = 0.0;
            ok(tf_taskfarm_percent_done(tf, &mut percent));
            ok(tf_taskfarm_percent_done(
                tf_worker_taskfarm(w),
                &mut percent,
            ));
            say("forking");
            // SAFETY: the child calls the library and write(2), then _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                let status = tf_taskfarm_percent_done(tf, &mut percent);
                say(&format!("child own {} {}", name(status), last_error()));
                let status = tf_taskfarm_percent_done(tf_worker_taskfarm(w), &mut percent);
                say(&format!("child borrowed {} {}", name(status), last_error()));
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waits for the child just made.
            while unsafe { libc::waitpid(pid, &mut status, 0) } == -1 {}
        }
        "two_workers" => {
            stop_on(&[libc::SIGTERM]);
            let (a, b) = (env_worker(), env_worker());
            let (ta, tb) = (take_at(a, 30.0), take_at(b, 60.0));
            say(&format!("computing {ta} {tb}"));
            park();
        }
        "one_worker_stop" => {
            stop_on(&[libc::SIGTERM]);
            let w = env_worker();
            let task = take_at(w, 50.0);
            say(&format!("computing {task}"));
            park();
        }
        "one_worker" => {
            stop_on(&[]);
            let w = env_worker();
            let task = take_at(w, 50.0);
            say(&format!("computing {task}"));
            park();
        }
        "ignored_hup" => {
            stop_on(&[]);
            // SAFETY: reads the disposition only.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            unsafe { libc::sigaction(libc::SIGHUP, ptr::null(), &mut action) };
            say(if action.sa_sigaction == libc::SIG_IGN {
                "SIGHUP ignored"
            } else {
                "SIGHUP caught"
            });
            let w = env_worker();
            let task = take_at(w, 20.0);
            say(&format!("computing {task}"));
            park();
        }
        other => panic!("no scenario {other:?}"),
    }
}
