//! Coalesced progress updates against the real server, through a recording
//! proxy that counts what reaches the server: a task shorter than the
//! interval costs two requests, an update reaches the server within the
//! interval without any further call, done/requeue/flush/free send what is
//! pending, reads through the library see it, several threads with their own
//! workers, `fork()`, the server failing during a background send, and a
//! free while a send is in flight.
//!
//! Timing: every wait polls for an event with a generous overall deadline;
//! the intervals that must not end during a step are an hour long, and
//! shortened with `tf_worker_set_update_interval` when the step wants them to end.

mod common;

use std::ptr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::c_abi::{
    c, create_run, last_error, new_worker, open_run, run_uuid, take_string, worker_uuid,
};
use common::recording_proxy::{Mode, Record, RecordingProxy};
use common::server::TaskfarmServer;
use serde_json::{json, Value};
use taskfarm_worker::ffi::status::tf_status::{self, *};
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

/// An interval that does not end during a test.
const HOUR: f64 = 3600.0;
/// The overall deadline of a wait for an event.
const DEADLINE: Duration = Duration::from_secs(60);

fn proxy() -> &'static RecordingProxy {
    static PROXY: std::sync::OnceLock<RecordingProxy> = std::sync::OnceLock::new();
    PROXY.get_or_init(|| RecordingProxy::start(TaskfarmServer::shared()))
}

/// A new run of `num_tasks`, opened straight on the server (its reads do
/// not go through the proxy, and do not send the workers' pending progress:
/// another base URL is another server for the library).
fn create_direct(num_tasks: i64) -> (*mut tf_taskfarm, String) {
    let tf = create_run(TaskfarmServer::shared(), num_tasks);
    (tf, run_uuid(tf))
}

fn open_via_proxy(uuid: &str) -> *mut tf_taskfarm {
    open_run(TaskfarmServer::shared(), &proxy().url, uuid)
}

/// A worker on `uuid` through the proxy, with the update interval `interval`.
fn worker_via_proxy(uuid: &str, interval: f64) -> *mut tf_worker {
    worker_via(proxy(), uuid, interval)
}

fn worker_via(proxy: &RecordingProxy, uuid: &str, interval: f64) -> *mut tf_worker {
    let w = new_worker(TaskfarmServer::shared(), &proxy.url, uuid);
    assert_eq!(tf_worker_set_update_interval(w, interval), TF_OK);
    w
}

fn take(w: *mut tf_worker) -> i64 {
    let mut task = -1;
    assert_eq!(tf_worker_task(w, &mut task), TF_OK, "{}", last_error());
    task
}

fn ok(status: tf_status) {
    assert_eq!(status, TF_OK, "{}", last_error());
}

/// The server's record of `task` (a straight read: sends nothing pending).
fn task_on_server(direct: *const tf_taskfarm, task: i64) -> Value {
    let key = c("");
    let mut text = ptr::null_mut();
    ok(tf_taskfarm_get_task_info(
        direct,
        task,
        key.as_ptr(),
        &mut text,
    ));
    serde_json::from_str(&take_string(text)).unwrap()
}

/// `(method, tail of the path after the run's uuid, body)` of the records of
/// run `uuid` from `from` on.
fn requests(records: &[Record], uuid: &str) -> Vec<(String, String, Value)> {
    records
        .iter()
        .filter_map(|r| {
            let (_, tail) = r.path.split_once(uuid)?;
            Some((r.method.clone(), tail.to_owned(), r.json()))
        })
        .collect()
}

fn puts_of(records: &[Record], uuid: &str) -> Vec<Value> {
    requests(records, uuid)
        .into_iter()
        .filter(|(m, _, _)| m == "PUT")
        .map(|(_, _, body)| body)
        .collect()
}

/// The requests of run `uuid` that reached `proxy` after the first `skip` of them.
fn new_requests_via(
    proxy: &RecordingProxy,
    uuid: &str,
    skip: usize,
) -> Vec<(String, String, Value)> {
    requests(&proxy.records_of(uuid), uuid)[skip..].to_vec()
}

fn new_requests(uuid: &str, skip: usize) -> Vec<(String, String, Value)> {
    new_requests_via(proxy(), uuid, skip)
}

#[test]
fn a_task_shorter_than_the_interval_costs_two_requests() {
    let (direct, uuid) = create_direct(5);
    let w = worker_via_proxy(&uuid, HOUR);
    let before = proxy().records_of(&uuid).len();
    let put = |task: i64, body: Value| ("PUT".to_owned(), format!("/tasks/{task}"), body);
    let post = || ("POST".to_owned(), "/task".to_owned(), Value::Null);

    // update(100) then done(): the task request and ONE PUT.
    let t = take(w);
    for p in [10.0, 50.0, 100.0] {
        ok(tf_worker_update(w, p));
    }
    ok(tf_worker_done(w));
    let mut expected = vec![
        (post().0, post().1, json!({"worker_uuid": worker_uuid(w)})),
        put(t, json!({"percentCompleted": 100.0, "status": "done"})),
    ];
    assert_eq!(new_requests(&uuid, before), expected);
    let on_server = task_on_server(direct, t);
    assert_eq!(
        (&on_server["percentCompleted"], &on_server["status"]),
        (&json!(100.0), &json!("done"))
    );

    // done() below 100 %: only the progress (the Python client's done()
    // marks nothing then).
    let t = take(w);
    ok(tf_worker_update(w, 40.0));
    ok(tf_worker_done(w));
    expected.push((post().0, post().1, json!({"worker_uuid": worker_uuid(w)})));
    expected.push(put(t, json!({"percentCompleted": 40.0})));

    // requeue(): the pending update is dropped, the task goes back at 0 %.
    let t = take(w);
    ok(tf_worker_update(w, 30.0));
    ok(tf_worker_requeue(w));
    expected.push((post().0, post().1, json!({"worker_uuid": worker_uuid(w)})));
    expected.push(put(
        t,
        json!({"percentCompleted": 0.0, "status": "waiting"}),
    ));
    assert_eq!(new_requests(&uuid, before), expected);
    assert_eq!(task_on_server(direct, t)["status"], "waiting");

    // flush(): sends now; with nothing pending, nothing.
    let t = take(w);
    ok(tf_worker_update(w, 70.0));
    ok(tf_worker_flush(w));
    ok(tf_worker_flush(w));
    expected.push((post().0, post().1, json!({"worker_uuid": worker_uuid(w)})));
    expected.push(put(t, json!({"percentCompleted": 70.0})));
    assert_eq!(new_requests(&uuid, before), expected);
    assert_eq!(task_on_server(direct, t)["percentCompleted"], 70.0);

    // free(): sends what is pending.
    ok(tf_worker_update(w, 80.0));
    tf_worker_free(w);
    expected.push(put(t, json!({"percentCompleted": 80.0})));
    assert_eq!(new_requests(&uuid, before), expected);
    assert_eq!(task_on_server(direct, t)["percentCompleted"], 80.0);
    tf_taskfarm_free(direct);
}

#[test]
fn an_update_reaches_the_server_within_the_interval_without_further_calls() {
    let (direct, uuid) = create_direct(2);
    let w = worker_via_proxy(&uuid, 0.5);
    let t = take(w);
    ok(tf_worker_update(w, 10.0));
    // No call on the worker now: the server gets the update by itself.
    let records = proxy().wait_until("the update of 10 %", DEADLINE, |r| {
        puts_of(r, &uuid).contains(&json!({"percentCompleted": 10.0}))
    });
    let mine: Vec<&Record> = records.iter().filter(|r| r.path.contains(&uuid)).collect();
    let asked = mine.iter().find(|r| r.method == "POST").unwrap().at;
    let sent = mine.iter().find(|r| r.method == "PUT").unwrap().at;
    assert!(
        sent.duration_since(asked) >= Duration::from_millis(490),
        "sent {:?} after the task was taken, before the interval ended",
        sent.duration_since(asked)
    );
    assert_eq!(task_on_server(direct, t)["percentCompleted"], 10.0);

    // A tight loop: a few requests, the last value reaches the server.
    let before = puts_of(&proxy().records(), &uuid).len();
    let start = Instant::now();
    for i in 0..=2000 {
        ok(tf_worker_update(w, f64::from(i) / 20.0));
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let looped = start.elapsed();
    let records = proxy().wait_until("the update of 100 %", DEADLINE, |r| {
        puts_of(r, &uuid).last() == Some(&json!({"percentCompleted": 100.0}))
    });
    let sent = puts_of(&records, &uuid).len() - before;
    // One per interval during the loop, one at its start, one after its end.
    let most = (looped.as_secs_f64() / 0.5).floor() as usize + 2;
    assert!(
        (1..=most).contains(&sent),
        "{sent} progress requests for 2001 updates in {looped:?} (at most {most})"
    );
    eprintln!("tight loop: {sent} progress requests for 2001 updates in {looped:?}");
    ok(tf_worker_done(w));
    // The done carries the finished task's 100 % again, whatever became
    // of the updates before it (one may have failed).
    assert_eq!(
        puts_of(&proxy().records(), &uuid).last(),
        Some(&json!({"percentCompleted": 100.0, "status": "done"}))
    );
    assert_eq!(task_on_server(direct, t)["status"], "done");
    tf_worker_free(w);
    tf_taskfarm_free(direct);
}

#[test]
fn reads_through_the_library_see_pending_updates_and_writes_come_after_them() {
    let (direct, uuid) = create_direct(4);
    let a = worker_via_proxy(&uuid, HOUR);
    let b = worker_via_proxy(&uuid, HOUR);
    let other = open_via_proxy(&uuid);
    let ta = take(a);
    let _tb = take(b);

    // Through the other worker's run and through another handle of the run.
    ok(tf_worker_update(a, 25.0));
    let key = c("percentCompleted");
    let mut text = ptr::null_mut();
    ok(tf_taskfarm_get_task_info(
        tf_worker_taskfarm(b),
        ta,
        key.as_ptr(),
        &mut text,
    ));
    assert_eq!(take_string(text), "25.0");
    ok(tf_worker_update(a, 80.0));
    let mut percent = 0.0;
    ok(tf_taskfarm_percent_done(other, &mut percent));
    assert_eq!(percent, 20.0);

    // A write on the task comes after the pending update, not before it.
    ok(tf_worker_update(a, 60.0));
    ok(tf_taskfarm_set_task_percent_completed(other, ta, 15.0));
    let puts = puts_of(&proxy().records_of(&uuid), &uuid);
    assert_eq!(
        puts[puts.len() - 2..],
        [
            json!({"percentCompleted": 60.0}),
            json!({"percentCompleted": 15.0})
        ]
    );
    assert_eq!(task_on_server(direct, ta)["percentCompleted"], 15.0);

    // The counts do not depend on progress: read at once, nothing sent.
    ok(tf_worker_update(a, 90.0));
    let before = puts_of(&proxy().records_of(&uuid), &uuid).len();
    let mut computing = 0;
    ok(tf_taskfarm_num_computing(other, &mut computing));
    assert_eq!(computing, 2);
    assert_eq!(puts_of(&proxy().records_of(&uuid), &uuid).len(), before);
    tf_worker_free(a);
    assert_eq!(task_on_server(direct, ta)["percentCompleted"], 90.0);
    tf_worker_free(b);
    tf_taskfarm_free(other);
    tf_taskfarm_free(direct);
}

#[test]
fn threads_with_their_own_workers_finish_a_run_while_another_reads_it() {
    const TASKS: i64 = 24;
    const THREADS: usize = 3;
    let (direct, uuid) = create_direct(TASKS);
    let (finished, all_finished) = mpsc::channel();
    for _ in 0..THREADS {
        let (uuid, finished) = (uuid.clone(), finished.clone());
        std::thread::spawn(move || {
            let w = worker_via_proxy(&uuid, 0.05);
            let mut task = -1;
            let mut status;
            loop {
                status = tf_worker_task(w, &mut task);
                if status != TF_OK {
                    break;
                }
                for p in (1..=20).map(|i| f64::from(i) * 5.0) {
                    status = tf_worker_update(w, p);
                    if status != TF_OK {
                        break;
                    }
                }
                status = tf_worker_done(w);
                if status != TF_OK {
                    break;
                }
            }
            let error = (status != TF_NO_MORE_TASKS).then(last_error);
            tf_worker_free(w);
            finished.send(error).unwrap();
        });
    }
    // A reader in the same process sends the workers' pending progress.
    let reader_uuid = uuid.clone();
    let (read, reader_done) = mpsc::channel();
    std::thread::spawn(move || {
        let tf = open_via_proxy(&reader_uuid);
        let mut reads = 0;
        let mut s = tf_run_status {
            num_tasks: 0,
            num_waiting: 0,
            num_computing: 0,
            num_done: 0,
            percent_done: 0.0,
        };
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            assert_eq!(tf_taskfarm_status(tf, &mut s), TF_OK, "{}", last_error());
            reads += 1;
            if s.num_done == TASKS {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tf_taskfarm_free(tf);
        read.send((reads, s.percent_done)).unwrap();
    });
    let start = Instant::now();
    for _ in 0..THREADS {
        let left = DEADLINE.saturating_sub(start.elapsed());
        let outcome = all_finished
            .recv_timeout(left)
            .expect("the worker threads did not finish: a deadlock?");
        assert_eq!(outcome, None, "a worker thread failed");
    }
    let (reads, percent) = reader_done
        .recv_timeout(DEADLINE)
        .expect("the reader did not finish: a deadlock?");
    assert!(reads >= 1);
    assert_eq!(percent, 100.0);
    let mut s = tf_run_status {
        num_tasks: 0,
        num_waiting: 0,
        num_computing: 0,
        num_done: 0,
        percent_done: 0.0,
    };
    ok(tf_taskfarm_status(direct, &mut s));
    assert_eq!((s.num_done, s.percent_done), (TASKS, 100.0));
    // Far fewer progress requests than updates (20 per task).
    let puts = puts_of(&proxy().records_of(&uuid), &uuid).len() as i64;
    assert!(puts < TASKS * 20, "{puts} PUTs for {TASKS} tasks");
    tf_taskfarm_free(direct);
}

#[test]
fn a_forked_child_does_not_act_on_the_parents_worker() {
    let (direct, uuid) = create_direct(2);
    let w = worker_via_proxy(&uuid, HOUR);
    let t = take(w);
    ok(tf_worker_update(w, 30.0));
    let before = proxy().records_of(&uuid).len();
    // SAFETY: the child calls only the library's functions under test and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut code = 0;
        if tf_worker_update(w, 50.0) != TF_ERR_INVALID_ARGUMENT {
            code |= 1;
        }
        if !last_error().contains("fork") {
            code |= 2;
        }
        if tf_worker_done(w) != TF_ERR_INVALID_ARGUMENT {
            code |= 4;
        }
        let mut task = -1;
        if tf_worker_task(w, &mut task) != TF_ERR_INVALID_ARGUMENT {
            code |= 8;
        }
        tf_worker_free(w);
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "the child died: {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "the child's checks (bits)");
    assert_eq!(
        proxy().records_of(&uuid).len(),
        before,
        "the child sent requests"
    );
    // The parent's worker and its pending update are intact.
    ok(tf_worker_flush(w));
    assert_eq!(task_on_server(direct, t)["percentCompleted"], 30.0);
    ok(tf_worker_update(w, 100.0));
    ok(tf_worker_done(w));
    assert_eq!(task_on_server(direct, t)["status"], "done");
    tf_worker_free(w);
    tf_taskfarm_free(direct);
}

/// These two change what their proxy does: a proxy of their own, one test
/// after the other.
#[test]
fn the_server_failing_and_a_free_during_a_flush() {
    let own = RecordingProxy::start(TaskfarmServer::shared());
    a_failed_background_send_reaches_the_next_call_and_loses_nothing(&own);
    a_free_while_a_send_is_in_flight_waits_for_it_then_sends_the_rest(&own);
}

fn a_failed_background_send_reaches_the_next_call_and_loses_nothing(proxy: &RecordingProxy) {
    let (direct, uuid) = create_direct(2);
    let w = worker_via(proxy, &uuid, HOUR);
    ok(tf_taskfarm_set_retries(tf_worker_taskfarm(w), 1));
    let t = take(w);
    ok(tf_worker_update(w, 60.0));
    proxy.set_mode(Mode::Refuse);
    let refused = proxy.refused();
    // The interval ends now: the background send fails (1 attempt + 1 retry).
    ok(tf_worker_set_update_interval(w, 0.2));
    let start = Instant::now();
    while proxy.refused() < refused + 2 {
        assert!(start.elapsed() < DEADLINE, "no background send");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Nothing more is tried by itself (ten intervals).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(proxy.refused(), refused + 2, "the flusher kept retrying");
    proxy.set_mode(Mode::Forward);

    // The next call gets the error, and does nothing else.
    let before = proxy.records_of(&uuid).len();
    assert_eq!(tf_worker_update(w, 70.0), TF_ERR_CONNECTION);
    let message = last_error();
    assert!(
        message.contains("background") && message.contains("60"),
        "{message}"
    );
    assert_eq!(proxy.records_of(&uuid).len(), before);
    // Nothing lost: the pending value goes out with the next flush.
    ok(tf_worker_flush(w));
    assert_eq!(
        new_requests_via(proxy, &uuid, before),
        [(
            "PUT".to_owned(),
            format!("/tasks/{t}"),
            json!({"percentCompleted": 60.0})
        )]
    );
    assert_eq!(task_on_server(direct, t)["percentCompleted"], 60.0);
    ok(tf_worker_update(w, 100.0));
    ok(tf_worker_done(w));
    assert_eq!(task_on_server(direct, t)["status"], "done");
    tf_worker_free(w);
    tf_taskfarm_free(direct);
}

fn a_free_while_a_send_is_in_flight_waits_for_it_then_sends_the_rest(proxy: &RecordingProxy) {
    let (direct, uuid) = create_direct(2);
    let w = worker_via(proxy, &uuid, HOUR);
    let t = take(w);
    ok(tf_worker_update(w, 30.0));
    proxy.set_mode(Mode::HoldPuts(Duration::from_millis(1500)));
    ok(tf_worker_set_update_interval(w, 0.01));
    proxy.wait_until("the background send of 30 %", DEADLINE, |r| {
        puts_of(r, &uuid).contains(&json!({"percentCompleted": 30.0}))
    });
    // Its answer is held: the send is in flight. An update waits for it.
    ok(tf_worker_update(w, 80.0));
    tf_worker_free(w);
    proxy.set_mode(Mode::Forward);
    assert_eq!(
        puts_of(&proxy.records_of(&uuid), &uuid),
        [
            json!({"percentCompleted": 30.0}),
            json!({"percentCompleted": 80.0})
        ]
    );
    assert_eq!(task_on_server(direct, t)["percentCompleted"], 80.0);
    tf_taskfarm_free(direct);
}

#[test]
fn bad_intervals_are_refused() {
    let (direct, uuid) = create_direct(1);
    let w = worker_via_proxy(&uuid, 1.0);
    for bad in [
        f64::NAN,
        -0.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        86_401.0,
    ] {
        assert_eq!(
            tf_worker_set_update_interval(w, bad),
            TF_ERR_INVALID_ARGUMENT,
            "{bad}"
        );
        assert!(last_error().contains("interval"), "{}", last_error());
    }
    assert_eq!(
        tf_worker_set_update_interval(ptr::null_mut(), 1.0),
        TF_ERR_INVALID_ARGUMENT
    );
    assert_eq!(tf_worker_flush(ptr::null_mut()), TF_ERR_INVALID_ARGUMENT);
    ok(tf_worker_set_update_interval(w, 0.0));
    ok(tf_worker_set_update_interval(w, 86_400.0));
    tf_worker_free(w);
    tf_taskfarm_free(direct);
}
