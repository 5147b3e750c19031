//! The C ABI against the real taskfarm server 0.4.0 (the project's harness:
//! SQLite, loopback, one server for this test binary). Every function of
//! the C API is called as C would call it, and the worker semantics are checked
//! to be those of the Python client: the held task comes back until `done`,
//! `update` outside 0..100 is refused, `done` marks done only at 100 %,
//! `restart` in both modes, `delete`, task and run information, the run list.

mod common;

use std::ffi::CString;
use std::ptr;

use common::c_abi::{
    borrowed, c, create_run, last_error, new_worker, open_run, run_status, run_uuid, take_string,
    worker_uuid,
};
use common::server::TaskfarmServer;
use serde_json::Value;
use taskfarm_worker::ffi::last_error::tf_last_http_status;
use taskfarm_worker::ffi::run_list::*;
use taskfarm_worker::ffi::status::{tf_status, tf_task_state};
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

use tf_status::*;

/// The server's credentials as C strings.
struct Credentials {
    user: CString,
    password: CString,
    url: CString,
}

fn credentials() -> Credentials {
    let server = TaskfarmServer::shared();
    Credentials {
        user: c(&server.user),
        password: c(&server.password),
        url: c(&server.url),
    }
}

/// A new run of `num_tasks` on the shared server.
fn create(num_tasks: i64) -> *mut tf_taskfarm {
    create_run(TaskfarmServer::shared(), num_tasks)
}

/// A new worker on the run of `tf`, on the shared server.
fn worker_on(tf: *const tf_taskfarm) -> *mut tf_worker {
    let server = TaskfarmServer::shared();
    new_worker(server, &server.url, &run_uuid(tf))
}

fn info(tf: *const tf_taskfarm, key: &str) -> Value {
    let key = c(key);
    let mut json = ptr::null_mut();
    assert_eq!(
        tf_taskfarm_info(tf, key.as_ptr(), &mut json),
        TF_OK,
        "{}",
        last_error()
    );
    serde_json::from_str(&take_string(json)).unwrap()
}

fn task_info(tf: *const tf_taskfarm, task: i64, key: &str) -> Value {
    let key = c(key);
    let mut json = ptr::null_mut();
    let status = tf_taskfarm_get_task_info(tf, task, key.as_ptr(), &mut json);
    assert_eq!(status, TF_OK, "{}", last_error());
    serde_json::from_str(&take_string(json)).unwrap()
}

fn status_of(tf: *const tf_taskfarm) -> tf_run_status {
    run_status(tf).unwrap_or_else(|e| panic!("{e}"))
}

fn state_of(tf: *const tf_taskfarm, task: i64) -> tf_task_state {
    let mut state = tf_task_state::TF_TASK_DONE;
    assert_eq!(
        tf_taskfarm_task_state(tf, task, &mut state),
        TF_OK,
        "{}",
        last_error()
    );
    state
}

fn percent_of(tf: *const tf_taskfarm, task: i64) -> f64 {
    let mut p = -1.0;
    assert_eq!(
        tf_taskfarm_task_percent_completed(tf, task, &mut p),
        TF_OK,
        "{}",
        last_error()
    );
    p
}

fn next_task(w: *mut tf_worker) -> Option<i64> {
    let mut task = -1;
    match tf_worker_task(w, &mut task) {
        TF_OK => Some(task),
        TF_NO_MORE_TASKS => {
            assert_eq!(task, -1, "out-pointer written on TF_NO_MORE_TASKS");
            None
        }
        other => panic!("tf_worker_task: {other:?}: {}", last_error()),
    }
}

#[test]
fn a_new_run_knows_its_uuid_and_size_and_can_be_opened_again() {
    let tf = create(5);
    let uuid = run_uuid(tf);
    assert_eq!(uuid.len(), 32, "{uuid}");
    assert_eq!(tf_taskfarm_num_tasks(tf), 5);

    let server = TaskfarmServer::shared();
    let again = open_run(server, &server.url, &uuid);
    assert_eq!(run_uuid(again), uuid);
    assert_eq!(tf_taskfarm_num_tasks(again), 5);
    let s = status_of(again);
    assert_eq!(
        (s.num_tasks, s.num_waiting, s.num_computing, s.num_done),
        (5, 0, 0, 0)
    );
    assert_eq!(s.percent_done, 0.0);
    tf_taskfarm_free(again);
    tf_taskfarm_free(tf);
}

#[test]
fn a_url_without_trailing_slash_works() {
    let cr = credentials();
    let server = TaskfarmServer::shared();
    let url = c(server.url.trim_end_matches('/'));
    let mut tf = ptr::null_mut();
    let status = tf_taskfarm_create(
        cr.user.as_ptr(),
        cr.password.as_ptr(),
        url.as_ptr(),
        2,
        &mut tf,
    );
    assert_eq!(status, TF_OK, "{}", last_error());
    let endpoint = c("runs");
    let mut full = ptr::null_mut();
    assert_eq!(tf_taskfarm_url(tf, endpoint.as_ptr(), &mut full), TF_OK);
    assert_eq!(take_string(full), format!("{}runs", server.url));
    tf_taskfarm_free(tf);
}

#[test]
fn unknown_runs_wrong_passwords_and_dead_servers_give_their_statuses() {
    let cr = credentials();
    let mut tf: *mut tf_taskfarm = ptr::null_mut();
    let unknown = c("0123456789abcdef0123456789abcdef");
    let status = tf_taskfarm_open(
        cr.user.as_ptr(),
        cr.password.as_ptr(),
        cr.url.as_ptr(),
        unknown.as_ptr(),
        &mut tf,
    );
    assert_eq!(status, TF_ERR_NOT_FOUND);
    assert_eq!(tf_last_http_status(), 404);
    assert!(
        last_error().contains("GET runs/0123456789abcdef0123456789abcdef"),
        "{}",
        last_error()
    );
    assert!(tf.is_null(), "out-pointer written on failure");

    let wrong = c("not-the-password");
    let status = tf_taskfarm_create(
        cr.user.as_ptr(),
        wrong.as_ptr(),
        cr.url.as_ptr(),
        3,
        &mut tf,
    );
    assert_eq!(status, TF_ERR_AUTH);
    assert_eq!(tf_last_http_status(), 401);
    assert!(
        !last_error().contains("not-the-password"),
        "{}",
        last_error()
    );
    assert!(tf.is_null());

    let mut worker: *mut tf_worker = ptr::null_mut();
    let status = tf_worker_new(
        cr.user.as_ptr(),
        cr.password.as_ptr(),
        cr.url.as_ptr(),
        unknown.as_ptr(),
        &mut worker,
    );
    assert_eq!(status, TF_ERR_NOT_FOUND, "{}", last_error());
    assert!(worker.is_null());
}

#[test]
fn a_worker_holds_its_task_until_done_as_the_python_client() {
    let tf = create(3);
    let w = worker_on(tf);
    let worker_uuid = worker_uuid(w);
    assert_eq!(worker_uuid.len(), 32);
    assert!(worker_uuid.chars().all(|c| c.is_ascii_hexdigit()));

    // With no task held, update does nothing (Python parity) and done too.
    assert_eq!(tf_worker_update(w, 10.0), TF_OK);
    assert_eq!(tf_worker_done(w), TF_OK);
    assert_eq!(status_of(tf).num_computing, 0, "nothing was handed out yet");

    let first = next_task(w).unwrap();
    assert_eq!(first, 0, "tasks are handed out in order");
    assert_eq!(
        next_task(w),
        Some(first),
        "the held task comes back until done"
    );
    assert_eq!(state_of(tf, first), tf_task_state::TF_TASK_COMPUTING);

    // Out of range and NaN are refused; nothing is sent, the task stays.
    for bad in [-0.5, 100.5, f64::NAN, f64::INFINITY] {
        assert_eq!(tf_worker_update(w, bad), TF_ERR_INVALID_ARGUMENT, "{bad}");
        assert!(
            last_error().starts_with("tf_worker_update: "),
            "{}",
            last_error()
        );
    }
    assert_eq!(percent_of(tf, first), 0.0);

    // done at 50 % releases the task without marking it done.
    assert_eq!(tf_worker_update(w, 50.0), TF_OK, "{}", last_error());
    assert_eq!(percent_of(tf, first), 50.0);
    assert_eq!(tf_worker_done(w), TF_NOT_DONE);
    assert_eq!(state_of(tf, first), tf_task_state::TF_TASK_COMPUTING);

    // The next task; done at 100 % marks it done.
    let second = next_task(w).unwrap();
    assert_eq!(second, 1);
    assert_eq!(tf_worker_update(w, 100.0), TF_OK);
    assert_eq!(tf_worker_done(w), TF_OK);
    assert_eq!(state_of(tf, second), tf_task_state::TF_TASK_DONE);
    assert_eq!(percent_of(tf, second), 100.0);

    // requeue gives a task back: waiting at 0 %, and it is handed out again.
    let third = next_task(w).unwrap();
    assert_eq!(third, 2);
    assert_eq!(tf_worker_update(w, 30.0), TF_OK);
    assert_eq!(tf_worker_requeue(w), TF_OK, "{}", last_error());
    assert_eq!(state_of(tf, third), tf_task_state::TF_TASK_WAITING);
    assert_eq!(percent_of(tf, third), 0.0);
    assert_eq!(next_task(w), Some(third));
    assert_eq!(tf_worker_update(w, 100.0), TF_OK);
    assert_eq!(tf_worker_done(w), TF_OK);

    assert_eq!(next_task(w), None);
    assert_eq!(
        next_task(w),
        None,
        "asking again after TF_NO_MORE_TASKS is fine"
    );
    let s = status_of(tf);
    assert_eq!((s.num_waiting, s.num_computing, s.num_done), (0, 1, 2));
    tf_worker_free(w);
    tf_taskfarm_free(tf);
}

#[test]
fn a_whole_run_is_done_exactly_once_by_two_workers() {
    let tf = create(8);
    let w1 = worker_on(tf);
    let w2 = worker_on(tf);
    let mut seen = Vec::new();
    // Alternate the workers (one thread: SQLite has no row locks).
    loop {
        let mut progressed = false;
        for w in [w1, w2] {
            if let Some(task) = next_task(w) {
                for p in [25.0, 50.0, 75.0, 100.0] {
                    assert_eq!(tf_worker_update(w, p), TF_OK, "{}", last_error());
                }
                assert_eq!(tf_worker_done(w), TF_OK, "{}", last_error());
                seen.push(task);
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, (0..8).collect::<Vec<_>>());
    let s = status_of(tf);
    assert_eq!(
        (s.num_tasks, s.num_waiting, s.num_computing, s.num_done),
        (8, 0, 0, 8)
    );
    assert_eq!(s.percent_done, 100.0);
    let mut p = 0.0;
    assert_eq!(tf_taskfarm_percent_done(tf, &mut p), TF_OK);
    assert_eq!(p, 100.0);
    let mut n = -1;
    assert_eq!(tf_taskfarm_num_done(tf, &mut n), TF_OK);
    assert_eq!(n, 8);
    assert_eq!(tf_taskfarm_num_waiting(tf, &mut n), TF_OK);
    assert_eq!(n, 0);
    assert_eq!(tf_taskfarm_num_computing(tf, &mut n), TF_OK);
    assert_eq!(n, 0);
    tf_worker_free(w1);
    tf_worker_free(w2);
    tf_taskfarm_free(tf);
}

#[test]
fn run_information_is_the_bare_value_or_the_whole_object() {
    let tf = create(4);
    let w = worker_on(tf);
    next_task(w).unwrap();
    assert_eq!(tf_worker_update(w, 100.0), TF_OK);
    assert_eq!(tf_worker_done(w), TF_OK);
    next_task(w).unwrap();

    assert_eq!(info(tf, "numDone"), Value::from(1));
    assert_eq!(info(tf, "numComputing"), Value::from(1));
    assert_eq!(info(tf, "numWaiting"), Value::from(0));
    assert_eq!(info(tf, "percentDone").as_f64(), Some(25.0));
    let whole = info(tf, "");
    assert_eq!(whole["uuid"], Value::from(run_uuid(tf)));
    assert_eq!(whole["numTasks"], Value::from(4));
    assert_eq!(whole["numDone"], Value::from(1));
    let mut json = ptr::null_mut();
    assert_eq!(tf_taskfarm_info(tf, ptr::null(), &mut json), TF_OK);
    let null_key: Value = serde_json::from_str(&take_string(json)).unwrap();
    assert_eq!(null_key, whole);

    for bad in ["numTasks", "bogus", "percentdone"] {
        let key = c(bad);
        let mut json = ptr::null_mut();
        assert_eq!(
            tf_taskfarm_info(tf, key.as_ptr(), &mut json),
            TF_ERR_INVALID_ARGUMENT
        );
        assert!(json.is_null());
        assert!(last_error().contains(bad), "{}", last_error());
    }
    tf_worker_free(w);
    tf_taskfarm_free(tf);
}

#[test]
fn task_information_can_be_read_and_written() {
    let tf = create(3);
    let w = worker_on(tf);
    let task = next_task(w).unwrap();

    assert_eq!(task_info(tf, task, "status"), Value::from("computing"));
    assert_eq!(task_info(tf, task, "percentCompleted").as_f64(), Some(0.0));
    let whole = task_info(tf, task, "");
    assert_eq!(whole["task"], Value::from(task));
    assert_eq!(whole["status"], Value::from("computing"));

    let key = c("percentCompleted");
    let value = c("42.5");
    assert_eq!(
        tf_taskfarm_set_task_info(tf, task, key.as_ptr(), value.as_ptr()),
        TF_OK
    );
    assert_eq!(percent_of(tf, task), 42.5);
    let key = c("status");
    let value = c("\"done\"");
    assert_eq!(
        tf_taskfarm_set_task_info(tf, task, key.as_ptr(), value.as_ptr()),
        TF_OK
    );
    assert_eq!(state_of(tf, task), tf_task_state::TF_TASK_DONE);

    assert_eq!(
        tf_taskfarm_set_task_percent_completed(tf, task, 10.0),
        TF_OK
    );
    assert_eq!(percent_of(tf, task), 10.0);
    assert_eq!(
        tf_taskfarm_set_task_state(tf, task, tf_task_state::TF_TASK_WAITING as i32),
        TF_OK
    );
    assert_eq!(state_of(tf, task), tf_task_state::TF_TASK_WAITING);

    // Refused before anything is sent.
    let cases: [(&str, &str); 6] = [
        ("percentCompleted", "101"),
        ("percentCompleted", "\"ten\""),
        ("status", "\"finished\""),
        ("status", "done"),
        ("task", "1"),
        ("percentCompleted", "{"),
    ];
    for (k, v) in cases {
        let (k, v) = (c(k), c(v));
        assert_eq!(
            tf_taskfarm_set_task_info(tf, task, k.as_ptr(), v.as_ptr()),
            TF_ERR_INVALID_ARGUMENT,
            "{k:?}={v:?}"
        );
    }
    for bad_task in [-1, 3, i64::MAX, i64::MIN] {
        let mut json = ptr::null_mut();
        let key = c("status");
        assert_eq!(
            tf_taskfarm_get_task_info(tf, bad_task, key.as_ptr(), &mut json),
            TF_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("outside 0..2"), "{}", last_error());
        assert_eq!(
            tf_taskfarm_set_task_percent_completed(tf, bad_task, 1.0),
            TF_ERR_INVALID_ARGUMENT
        );
    }
    assert_eq!(
        tf_taskfarm_set_task_state(tf, task, 42),
        TF_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        tf_taskfarm_set_task_percent_completed(tf, task, f64::NAN),
        TF_ERR_INVALID_ARGUMENT
    );
    tf_worker_free(w);
    tf_taskfarm_free(tf);
}

/// Drives a run to: task 0 done, task 1 at 40 % computing, task 2 waiting at 0 %.
fn run_with_mixed_tasks() -> (*mut tf_taskfarm, *mut tf_worker) {
    let tf = create(3);
    let w = worker_on(tf);
    assert_eq!(next_task(w), Some(0));
    assert_eq!(tf_worker_update(w, 100.0), TF_OK);
    assert_eq!(tf_worker_done(w), TF_OK);
    assert_eq!(next_task(w), Some(1));
    assert_eq!(tf_worker_update(w, 40.0), TF_OK);
    (tf, w)
}

#[test]
fn restart_puts_unfinished_tasks_back_and_keeps_their_percentage() {
    let (tf, w) = run_with_mixed_tasks();
    assert_eq!(tf_taskfarm_restart(tf, false), TF_OK, "{}", last_error());
    assert_eq!(state_of(tf, 0), tf_task_state::TF_TASK_DONE);
    assert_eq!(percent_of(tf, 0), 100.0);
    assert_eq!(state_of(tf, 1), tf_task_state::TF_TASK_WAITING);
    assert_eq!(percent_of(tf, 1), 40.0);
    tf_worker_free(w);

    // A new worker gets the restarted task with its percentage: done at once
    // does not mark it done (the last known percentage is 40).
    let w = worker_on(tf);
    assert_eq!(next_task(w), Some(1));
    assert_eq!(tf_worker_done(w), TF_NOT_DONE);
    assert_eq!(state_of(tf, 1), tf_task_state::TF_TASK_COMPUTING);
    tf_worker_free(w);
    tf_taskfarm_free(tf);
}

#[test]
fn restart_of_everything_resets_every_task_to_zero() {
    let (tf, w) = run_with_mixed_tasks();
    assert_eq!(tf_taskfarm_restart(tf, true), TF_OK, "{}", last_error());
    for task in 0..2 {
        assert_eq!(state_of(tf, task), tf_task_state::TF_TASK_WAITING);
        assert_eq!(percent_of(tf, task), 0.0);
    }
    let s = status_of(tf);
    assert_eq!((s.num_waiting, s.num_computing, s.num_done), (2, 0, 0));
    assert_eq!(s.percent_done, 0.0);
    tf_worker_free(w);
    tf_taskfarm_free(tf);
}

#[test]
fn a_deleted_run_is_gone_but_its_handle_stays_valid() {
    let tf = create(2);
    let uuid = run_uuid(tf);
    assert_eq!(tf_taskfarm_delete(tf), TF_OK, "{}", last_error());
    assert_eq!(run_uuid(tf), uuid, "the handle stays valid");
    let mut n = -1;
    assert_eq!(tf_taskfarm_num_done(tf, &mut n), TF_ERR_NOT_FOUND);
    assert_eq!(n, -1);
    assert_eq!(tf_last_http_status(), 404);
    assert_eq!(tf_taskfarm_delete(tf), TF_ERR_NOT_FOUND);

    let cr = credentials();
    let c_uuid = c(&uuid);
    let mut again = ptr::null_mut();
    let status = tf_taskfarm_open(
        cr.user.as_ptr(),
        cr.password.as_ptr(),
        cr.url.as_ptr(),
        c_uuid.as_ptr(),
        &mut again,
    );
    assert_eq!(status, TF_ERR_NOT_FOUND);
    tf_taskfarm_free(tf);
}

#[test]
fn the_run_list_holds_new_runs() {
    let tf = create(6);
    let uuid = run_uuid(tf);
    let cr = credentials();

    let mut list = ptr::null_mut();
    assert_eq!(
        tf_runs(
            cr.user.as_ptr(),
            cr.password.as_ptr(),
            cr.url.as_ptr(),
            &mut list
        ),
        TF_OK,
        "{}",
        last_error()
    );
    let len = tf_run_list_len(list);
    assert!(len >= 1);
    let found = (0..len)
        .find(|&i| borrowed(tf_run_list_uuid(list, i)) == uuid)
        .expect("the new run is listed");
    assert_eq!(tf_run_list_num_tasks(list, found), 6);
    assert!(tf_run_list_id(list, found) >= 1);
    assert!(tf_run_list_uuid(list, len).is_null());
    assert_eq!(tf_run_list_id(list, len), -1);
    assert_eq!(tf_run_list_num_tasks(list, usize::MAX), -1);
    tf_run_list_free(list);

    let mut json = ptr::null_mut();
    assert_eq!(
        tf_runs_json(
            cr.user.as_ptr(),
            cr.password.as_ptr(),
            cr.url.as_ptr(),
            &mut json
        ),
        TF_OK
    );
    let runs: Value = serde_json::from_str(&take_string(json)).unwrap();
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uuid"] == uuid.as_str())
        .expect("listed in JSON too");
    assert_eq!(run["numTasks"], Value::from(6));
    tf_taskfarm_free(tf);
}

#[test]
fn url_token_timeout_and_retries_of_a_handle() {
    let tf = create(1);
    let server = TaskfarmServer::shared();
    let endpoint = c("runs/x");
    let mut url = ptr::null_mut();
    assert_eq!(tf_taskfarm_url(tf, endpoint.as_ptr(), &mut url), TF_OK);
    assert_eq!(take_string(url), format!("{}runs/x", server.url));

    let token = borrowed(tf_taskfarm_token(tf));
    assert!(token.len() > 20, "a JWT");
    assert!(!token.contains(&server.password));

    assert_eq!(tf_taskfarm_set_timeout(tf, 5.0), TF_OK);
    assert_eq!(tf_taskfarm_set_retries(tf, 0), TF_OK);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1.0e7] {
        assert_eq!(
            tf_taskfarm_set_timeout(tf, bad),
            TF_ERR_INVALID_ARGUMENT,
            "{bad}"
        );
    }
    assert_eq!(
        tf_taskfarm_set_retries(tf, 1_000_000),
        TF_ERR_INVALID_ARGUMENT
    );
    let mut n = -1;
    assert_eq!(tf_taskfarm_num_done(tf, &mut n), TF_OK, "still works");

    // A worker lends its run: the same functions work on it.
    let w = worker_on(tf);
    let borrowed_tf = tf_worker_taskfarm(w);
    assert_eq!(run_uuid(borrowed_tf), run_uuid(tf));
    assert_eq!(tf_taskfarm_num_tasks(borrowed_tf), 1);
    assert_eq!(tf_taskfarm_set_retries(borrowed_tf, 2), TF_OK);
    tf_worker_free(w);
    tf_taskfarm_free(tf);
}

#[test]
fn one_taskfarm_serves_many_threads_at_once() {
    // Threads share one tf_taskfarm for information calls while a worker
    // works through the run. (Concurrent workers belong on PostgreSQL: with
    // SQLite the server has no row locks and fails concurrent task requests.)
    let tf = create(6);
    let shared = tf as usize;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let calls: usize = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let stop = &stop;
                scope.spawn(move || {
                    let tf = shared as *const tf_taskfarm;
                    let mut calls = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) || calls == 0 {
                        let s = status_of(tf);
                        assert_eq!(s.num_tasks, 6);
                        let mut p = -1.0;
                        assert_eq!(
                            tf_taskfarm_percent_done(tf, &mut p),
                            TF_OK,
                            "{}",
                            last_error()
                        );
                        assert!((0.0..=100.0).contains(&p));
                        assert!(!borrowed(tf_taskfarm_token(tf)).is_empty());
                        calls += 1;
                    }
                    calls
                })
            })
            .collect();
        let w = worker_on(tf);
        while next_task(w).is_some() {
            assert_eq!(tf_worker_update(w, 100.0), TF_OK, "{}", last_error());
            assert_eq!(tf_worker_done(w), TF_OK, "{}", last_error());
        }
        tf_worker_free(w);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        readers.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(calls >= 3);
    let s = status_of(tf);
    assert_eq!((s.num_done, s.percent_done), (6, 100.0));
    tf_taskfarm_free(tf);
}
