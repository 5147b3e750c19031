//! Fault tests of the C ABI against the scripted fault server (loopback).
//!
//! Every test calls the `extern "C"` functions exactly as a C program would:
//! `CString` arguments, raw out-pointers pre-filled with a sentinel, the
//! returned `tf_status`, then `tf_last_error()` / `tf_last_http_status()`.
//! The fault server answers a whole session realistically (`GET token`,
//! `GET runs/U`, `POST worker`, `POST runs/U/task`, `PUT runs/U/tasks/N`,
//! checking the Basic credentials like the real server) and each test injects
//! its fault into one route. What is covered:
//!
//! - retries: a 500 then success on a GET (one token re-check, then normal
//!   retries); 503 forever (exact number of attempts, elapsed time); a 500 to
//!   a POST is never repeated; a failed PUT keeps the worker's task held;
//! - authentication: 401 with a new token (call repeated with it), 401 with
//!   the same token (an auth error, no loop), the server's key changed (old
//!   token answered 500) on a GET and on a POST, a wrong password;
//! - answers: a Flask HTML error page, invalid JSON, missing fields, a body
//!   over `MAX_BODY_BYTES`, a task number outside the run (one table of
//!   cases, [`bad_answers`], each a route, its answer, the call and what it
//!   must say), 204 (no task left);
//! - transport: an answer slower than the timeout (GET retried, POST not),
//!   a connection closed mid-answer or without answer (GET/PUT retried, POST
//!   not; nor a hand-back's PUT, which sets the task `waiting`), nothing
//!   listening, a connect that never completes (a POST
//!   repeated: nothing was sent; through the Rust API, the one test that does
//!   not use the C ABI), one keep-alive connection for a whole worker
//!   session, a kept-alive connection closed by the server before a POST;
//! - a URL without `/api/`: a `404` to `GET token` says the URL is not the
//!   API's, a `404` for the run (with a token) says where the API usually is;
//! - a series of retries says so once on stderr, and not at all with
//!   `TASKFARM_LOG=quiet` (the test binary run again as a child process,
//!   whose stderr is read);
//! - for every failure: the exact status, the HTTP status, a message that
//!   names the function, what was asked (method and endpoint), the HTTP status
//!   and the server's body where there was one, and never the password or a
//!   token; out-pointers written only on `TF_OK`; request counts on the server.
//!
//! Backoff and retries: `TASKFARM_BACKOFF`, `TASKFARM_RETRIES` and
//! `TASKFARM_TIMEOUT` are read from the environment when a handle is created.
//! Every test first calls [`setup`], whose `std::sync::Once` sets
//! `TASKFARM_BACKOFF=0.01` (waits 0, 20, 40, 80 ms ... instead of 0, 0.6,
//! 1.2, 2.4 s), `TASKFARM_RETRIES=3` (handle creation against a dead server
//! gives up after 4 attempts, ~60 ms, instead of 10 retries, ~10 s) and
//! `TASKFARM_TIMEOUT=5` (a safety net: no test can hang for the default
//! 60 s), once for the whole test binary and before any handle exists. The
//! URL, user name and password are always passed explicitly, never through
//! the environment, since the tests run in parallel threads. Each test then
//! sets the retries (and where needed the timeout) of its handle with
//! `tf_taskfarm_set_retries` / `tf_taskfarm_set_timeout`. The whole file runs
//! in about two seconds.

mod common;

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use common::fault_server::*;
use serde_json::{json, Value};
use taskfarm_worker::ffi::last_error::tf_last_http_status;
use taskfarm_worker::ffi::run_list::tf_runs_json;
use taskfarm_worker::ffi::status::tf_status::{self, *};
use taskfarm_worker::ffi::strings::tf_string_free;
use taskfarm_worker::ffi::taskfarm::{
    tf_run_status, tf_taskfarm, tf_taskfarm_free, tf_taskfarm_num_done, tf_taskfarm_open,
    tf_taskfarm_open_with_token, tf_taskfarm_percent_done, tf_taskfarm_set_retries,
    tf_taskfarm_set_timeout, tf_taskfarm_status, tf_taskfarm_token,
};
use taskfarm_worker::ffi::worker::{
    tf_worker, tf_worker_done, tf_worker_free, tf_worker_new, tf_worker_requeue, tf_worker_task,
    tf_worker_taskfarm, tf_worker_update,
};
use taskfarm_worker::internal::http::reply::MAX_BODY_BYTES;

/// The run every test works on (10 tasks).
const RUN: &str = "5f0c6a2e9b8d4e1fa3c7b2d90e4f6a81";
const USER: &str = "alice";
const PASSWORD: &str = "Pw-faults-7781";
const WRONG_PASSWORD: &str = "Wrong-pw-3319";
/// Everything that must never appear in `tf_last_error()`.
const SECRETS: [&str; 4] = [PASSWORD, WRONG_PASSWORD, "tok1", "tok2"];

/// Sentinels pre-filled into out-pointers: a failure must leave them as they are.
const SENTINEL_I64: i64 = -4242;
const SENTINEL_F64: f64 = -42.5;
const SENTINEL_STATUS: tf_run_status = tf_run_status {
    num_tasks: -7,
    num_waiting: -7,
    num_computing: -7,
    num_done: -7,
    percent_done: -7.0,
};

/// Flask's 404 page, as `abort(404)` sends it.
const FLASK_404: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n\
<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n";
/// ... and its text, tags dropped.
const FLASK_404_TEXT: &str = "Not Found The requested URL was not found on the server.";
/// Flask's 500 page (what the real server answers to a token of an old key).
const FLASK_500: &str =
    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n\
<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to \
complete your request.</p>\n";

/// Fast backoff and few retries for the whole binary (see the file's doc).
fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("TASKFARM_BACKOFF", "0.01");
        std::env::set_var("TASKFARM_RETRIES", "3");
        std::env::set_var("TASKFARM_TIMEOUT", "5");
        // The waits these tests time are the steps themselves (the jitter is
        // tested in tests/scale.rs and tests/dead_server.rs).
        std::env::set_var("TASKFARM_RETRY_JITTER", "none");
        // These tests follow every request of the transport: each update is
        // sent at once (coalesced progress is tested in tests/progress.rs).
        std::env::set_var("TASKFARM_UPDATE_INTERVAL", "0");
    });
}

// ---------------------------------------------------------------- the server

/// The request's path relative to the API base (`runs/U?...` without query).
fn rel(req: &RecordedRequest) -> &str {
    req.path.strip_prefix("/api/").unwrap_or(&req.path)
}

fn run_path() -> String {
    format!("runs/{RUN}")
}

fn task_path() -> String {
    format!("runs/{RUN}/task")
}

/// Whether `req` is `method rel_path?query` exactly.
fn is(req: &RecordedRequest, method: &str, rel_path: &str, query: &str) -> bool {
    req.method == method && rel(req) == rel_path && req.query == query
}

/// How many requests `method rel_path?query` (exactly) the server got.
fn hits(server: &FaultServer, method: &str, rel_path: &str, query: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| is(r, method, rel_path, query))
        .count()
}

fn full_run() -> Value {
    json!({"id": 1, "uuid": RUN, "numTasks": 10, "percentDone": 35.0,
           "numWaiting": 2, "numDone": 3, "numComputing": 1})
}

fn task_answer(task: i64) -> Action {
    Action::json(
        201,
        &json!({"id": task + 1, "task": task, "percentCompleted": 0.0, "status": "computing"}),
    )
}

fn unauthorized() -> Action {
    Action::text(401, "Unauthorized Access")
}

/// What the real server answers when `token` is its valid token: the user
/// name and password for `GET token`, the token for everything else, a run
/// of 10 tasks with 3 done, task 0 for every worker.
fn healthy(req: &RecordedRequest, token: &str) -> Action {
    let auth = req.basic_auth_user();
    let path = rel(req);
    if req.method == "GET" && path == "token" {
        return if auth == Some((USER.to_owned(), PASSWORD.to_owned())) {
            token_ok(token)
        } else {
            unauthorized()
        };
    }
    if auth != Some((token.to_owned(), String::new())) {
        return unauthorized();
    }
    match req.method.as_str() {
        "GET" if path == "runs" => Action::json(
            200,
            &json!({"data": [{"id": 1, "uuid": RUN, "numTasks": 10}]}),
        ),
        "GET" if path == run_path() => {
            let run = full_run();
            match req.query.strip_prefix("info=").unwrap_or("") {
                "" => Action::json(200, &run),
                key if run.get(key).is_some() && key != "id" && key != "uuid" => {
                    Action::json(200, &json!({ key: run[key] }))
                }
                _ => Action::html(404, FLASK_404),
            }
        }
        "POST" if path == "worker" => {
            let body = req.body_json();
            assert!(
                body["hostname"].is_string() && body["pid"].is_u64(),
                "{body}"
            );
            Action::json(201, &json!({"uuid": body["uuid"], "id": 1}))
        }
        "POST" if path == task_path() => {
            assert!(req.body_json()["worker_uuid"].is_string());
            task_answer(0)
        }
        "PUT" if path.starts_with(&format!("{}/tasks/", run_path())) => Action::empty(204),
        _ => Action::html(404, FLASK_404),
    }
}

/// A server healthy everywhere (token "tok1") except where `fault` answers.
fn serve(
    fault: impl Fn(&RecordedRequest) -> Option<Action> + Send + Sync + 'static,
) -> FaultServer {
    setup();
    FaultServer::start(move |req, _| fault(req).unwrap_or_else(|| healthy(req, "tok1")))
}

/// A server whose key can change: `key` is the token the token endpoint gives
/// now; a request with the other token gets `stale()` (401 for a token that
/// does not verify, 500 as the real server for a signature of an old key).
fn rotating_server(stale: fn() -> Action) -> (FaultServer, Arc<Mutex<&'static str>>) {
    setup();
    let key = Arc::new(Mutex::new("tok1"));
    let k = Arc::clone(&key);
    let server = FaultServer::start(move |req, _| {
        let current: &str = *k.lock().unwrap();
        let old_token = rel(req) != "token"
            && req
                .basic_auth_user()
                .is_some_and(|(user, pass)| pass.is_empty() && user.starts_with("tok"))
            && req.basic_auth_user().unwrap().0 != current;
        if old_token {
            stale()
        } else {
            healthy(req, current)
        }
    });
    (server, key)
}

/// Counts calls of a handler: `next()` gives 0, 1, 2, ...
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Counter {
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

// ------------------------------------------------------------ the C side

/// The C strings of one session.
struct Args {
    user: CString,
    password: CString,
    url: CString,
    run: CString,
}

impl Args {
    fn new(url: &str) -> Args {
        Args::with_password(url, PASSWORD)
    }

    fn with_password(url: &str, password: &str) -> Args {
        Args {
            user: CString::new(USER).unwrap(),
            password: CString::new(password).unwrap(),
            url: CString::new(url).unwrap(),
            run: CString::new(RUN).unwrap(),
        }
    }

    fn open(&self, out: &mut *mut tf_taskfarm) -> tf_status {
        tf_taskfarm_open(
            self.user.as_ptr(),
            self.password.as_ptr(),
            self.url.as_ptr(),
            self.run.as_ptr(),
            out,
        )
    }

    fn new_worker(&self, out: &mut *mut tf_worker) -> tf_status {
        tf_worker_new(
            self.user.as_ptr(),
            self.password.as_ptr(),
            self.url.as_ptr(),
            self.run.as_ptr(),
            out,
        )
    }
}

/// A dangling but non-NULL pointer: a sentinel for handle and string out-pointers.
fn sentinel_ptr<T>() -> *mut T {
    NonNull::dangling().as_ptr()
}

/// Opens the run on `server` and sets the handle's retries.
fn open(server: &FaultServer, retries: u32) -> *mut tf_taskfarm {
    let mut tf = ptr::null_mut();
    let status = Args::new(&server.url()).open(&mut tf);
    assert_eq!(status, TF_OK, "{}", last_error());
    assert_eq!(tf_taskfarm_set_retries(tf, retries), TF_OK);
    tf
}

/// Registers a worker on `server` and sets its retries.
fn new_worker(server: &FaultServer, retries: u32) -> *mut tf_worker {
    let mut w = ptr::null_mut();
    let status = Args::new(&server.url()).new_worker(&mut w);
    assert_eq!(status, TF_OK, "{}", last_error());
    assert_eq!(
        tf_taskfarm_set_retries(tf_worker_taskfarm(w), retries),
        TF_OK
    );
    w
}

fn token(tf: *const tf_taskfarm) -> String {
    common::c_abi::borrowed(tf_taskfarm_token(tf))
}

/// `tf_last_error()`, checked to hold no password and no token.
/// The last error (`common::c_abi::last_error`), checked to hold no secret.
fn last_error() -> String {
    let message = common::c_abi::last_error();
    for secret in SECRETS {
        assert!(
            !message.contains(secret),
            "secret {secret:?} in tf_last_error: {message}"
        );
    }
    message
}

/// Checks a failed call: its exact status, `tf_last_http_status()`, a message
/// that starts with the function's name, says `HTTP <status>` when there was
/// an answer, holds every one of `parts` and no secret. Returns the message.
#[track_caller]
fn assert_failure(
    got: tf_status,
    want: tf_status,
    function: &str,
    http: c_int,
    parts: &[&str],
) -> String {
    check_failure("", got, want, function, http, parts)
}

/// As [`assert_failure`], every assertion message starting with `case` (when
/// not empty).
#[track_caller]
fn check_failure(
    case: &str,
    got: tf_status,
    want: tf_status,
    function: &str,
    http: c_int,
    parts: &[&str],
) -> String {
    let case = if case.is_empty() {
        String::new()
    } else {
        format!("{case}: ")
    };
    let message = last_error();
    assert_eq!(got, want, "{case}{message}");
    assert_eq!(tf_last_http_status(), http, "{case}{message}");
    assert!(
        message.starts_with(&format!("{function}: ")),
        "{case}names the function: {message}"
    );
    if http != 0 {
        assert!(
            message.contains(&format!("HTTP {http}")),
            "{case}names the HTTP status: {message}"
        );
    }
    for part in parts {
        assert!(
            message.contains(part),
            "{case}{part:?} missing in: {message}"
        );
    }
    message
}

#[track_caller]
fn assert_ok(status: tf_status) {
    assert_eq!(status, TF_OK, "{}", last_error());
}

/// `tf_taskfarm_num_done` into a sentinel-filled out value.
fn num_done(tf: *const tf_taskfarm) -> (tf_status, i64) {
    let mut n = SENTINEL_I64;
    let status = tf_taskfarm_num_done(tf, &mut n);
    (status, n)
}

// ------------------------------------------------------------------ retries

#[test]
fn a_get_answered_500_then_200_is_retried_after_one_token_check() {
    let calls = Counter::default();
    let c = calls.clone();
    let server = serve(move |req| {
        (is(req, "GET", &run_path(), "info=numDone") && c.next() < 2)
            .then(|| Action::html(500, FLASK_500))
    });
    let tf = open(&server, 3);
    let (status, n) = num_done(tf);
    assert_ok(status);
    assert_eq!(n, 3);
    assert_eq!(
        hits(&server, "GET", &run_path(), "info=numDone"),
        3,
        "two 500s, then the 200"
    );
    assert_eq!(
        hits(&server, "GET", "token", ""),
        2,
        "the token of the open, then one re-check after the first 500 (unchanged), none after the second"
    );
    assert_eq!(token(tf), "tok1");
    tf_taskfarm_free(tf);
}

#[test]
fn a_get_answered_503_forever_fails_after_exactly_the_retries() {
    let server = serve(|req| {
        is(req, "GET", &run_path(), "info=numDone")
            .then(|| Action::text(503, "down for maintenance"))
    });
    let tf = open(&server, 2);
    let started = Instant::now();
    let (status, n) = num_done(tf);
    let elapsed = started.elapsed();
    assert_failure(
        status,
        TF_ERR_CONNECTION,
        "tf_taskfarm_num_done",
        503,
        &[
            &format!("GET runs/{RUN}?info=numDone"),
            "HTTP 503 Service Unavailable",
            "(after 3 attempts)",
            "down for maintenance",
        ],
    );
    assert_eq!(n, SENTINEL_I64);
    assert_eq!(
        hits(&server, "GET", &run_path(), "info=numDone"),
        3,
        "the first attempt and 2 retries"
    );
    assert_eq!(
        hits(&server, "GET", "token", ""),
        1,
        "a 503 is no reason to check the token"
    );
    // Waits 0 + 20 ms.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    tf_taskfarm_free(tf);
}

#[test]
fn a_post_answered_500_is_not_repeated_and_leaves_no_task_held() {
    let failing = Arc::new(AtomicBool::new(true));
    let f = Arc::clone(&failing);
    let server = serve(move |req| {
        (req.method == "POST" && rel(req) == task_path() && f.load(Ordering::SeqCst))
            .then(|| Action::html(500, FLASK_500))
    });
    let w = new_worker(&server, 5);
    let mut task = SENTINEL_I64;
    assert_failure(
        tf_worker_task(w, &mut task),
        TF_ERR_HTTP,
        "tf_worker_task",
        500,
        &[
            &format!("POST runs/{RUN}/task answered HTTP 500 Internal Server Error"),
            "The server encountered an internal error",
        ],
    );
    assert_eq!(task, SENTINEL_I64);
    assert_eq!(
        hits(&server, "POST", &task_path(), ""),
        1,
        "a POST is not repeated"
    );
    assert_eq!(
        hits(&server, "GET", "token", ""),
        2,
        "the 500 made the library check the token once (unchanged)"
    );
    // No task is held: an update sends nothing.
    assert_ok(tf_worker_update(w, 50.0));
    assert_eq!(server.count("PUT", "/tasks/0"), 0);
    // The server recovers: the next call asks again and gets task 0.
    failing.store(false, Ordering::SeqCst);
    assert_ok(tf_worker_task(w, &mut task));
    assert_eq!(task, 0);
    assert_eq!(hits(&server, "POST", &task_path(), ""), 2);
    assert_ok(tf_worker_update(w, 50.0));
    assert_eq!(server.count("PUT", "/tasks/0"), 1);
    tf_worker_free(w);
}

#[test]
fn a_failed_done_keeps_the_task_held_until_it_succeeds() {
    let failing = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&failing);
    let server = serve(move |req| {
        (req.method == "PUT" && f.load(Ordering::SeqCst)).then(|| Action::html(500, FLASK_500))
    });
    let w = new_worker(&server, 1);
    let mut task = SENTINEL_I64;
    assert_ok(tf_worker_task(w, &mut task));
    assert_eq!(task, 0);
    assert_ok(tf_worker_update(w, 100.0));
    failing.store(true, Ordering::SeqCst);
    let put = format!("{}/tasks/0", run_path());
    assert_failure(
        tf_worker_done(w),
        TF_ERR_HTTP,
        "tf_worker_done",
        500,
        &[
            &format!("PUT {put} answered HTTP 500 Internal Server Error (after 2 attempts)"),
            "Internal Server Error",
        ],
    );
    assert_eq!(
        hits(&server, "PUT", &put, ""),
        1 + 2,
        "the update, then the done PUT and its one retry"
    );
    // Still held: no new task is asked for.
    task = SENTINEL_I64;
    assert_ok(tf_worker_task(w, &mut task));
    assert_eq!(task, 0);
    assert_eq!(hits(&server, "POST", &task_path(), ""), 1);
    // The server recovers: done marks it done now, at 100 % (a finished
    // task is recorded at 100 % whatever became of the updates before).
    failing.store(false, Ordering::SeqCst);
    assert_ok(tf_worker_done(w));
    let last = server.requests().pop().unwrap();
    assert!(is(&last, "PUT", &put, ""));
    assert_eq!(
        last.body_json(),
        json!({"percentCompleted": 100.0, "status": "done"})
    );
    tf_worker_free(w);
}

/// The chaos soak (seed 27) saw a give-back whose answer was lost land
/// twice: its repeat set the task `waiting` again after another worker had
/// taken it and marked it done. A PUT that sets a task `waiting` is
/// therefore sent once when it may have reached the server, as a POST.
#[test]
fn a_hand_back_put_closed_without_answer_is_not_repeated() {
    let server = serve(|req| {
        (req.method == "PUT" && req.body_json()["status"] == "waiting")
            .then_some(Action::CloseWithoutAnswer)
    });
    let w = new_worker(&server, 3);
    let mut task = SENTINEL_I64;
    assert_ok(tf_worker_task(w, &mut task));
    assert_eq!(task, 0);
    assert_ok(tf_worker_update(w, 40.0));
    let put = format!("{}/tasks/0", run_path());
    let before = hits(&server, "PUT", &put, "");
    let requeued = tf_worker_requeue(w);
    assert_eq!(requeued, TF_ERR_CONNECTION, "{}", last_error());
    let hand_backs: Vec<Value> = server
        .requests()
        .iter()
        .filter(|r| is(r, "PUT", &put, "") && r.body_json()["status"] == "waiting")
        .map(|r| r.body_json())
        .collect();
    assert_eq!(
        hand_backs,
        [json!({"percentCompleted": 0.0, "status": "waiting"})],
        "one hand-back PUT, not repeated (before it: {before} PUTs)"
    );
    tf_worker_free(w);
}

// ---------------------------------------------------------- authentication

#[test]
fn a_401_then_a_new_token_repeats_the_call_with_it() {
    let (server, key) = rotating_server(unauthorized);
    let tf = open(&server, 0);
    assert_eq!(token(tf), "tok1");
    *key.lock().unwrap() = "tok2";
    let (status, n) = num_done(tf);
    assert_ok(status);
    assert_eq!(n, 3);
    let asked: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| is(r, "GET", &run_path(), "info=numDone"))
        .map(|r| r.basic_auth_user().unwrap())
        .collect();
    assert_eq!(
        asked,
        [
            ("tok1".to_owned(), String::new()),
            ("tok2".to_owned(), String::new())
        ],
        "answered 401 with tok1, repeated with tok2"
    );
    assert_eq!(hits(&server, "GET", "token", ""), 2);
    assert_eq!(token(tf), "tok2");
    // Later calls use tok2 straight away.
    assert_eq!(num_done(tf), (TF_OK, 3));
    assert_eq!(hits(&server, "GET", "token", ""), 2);
    assert_eq!(
        server
            .requests()
            .pop()
            .unwrap()
            .basic_auth_user()
            .unwrap()
            .0,
        "tok2"
    );
    tf_taskfarm_free(tf);
}

#[test]
fn a_401_with_the_same_token_is_an_auth_error_without_a_loop() {
    let server = serve(|req| is(req, "GET", &run_path(), "info=numDone").then(unauthorized));
    let tf = open(&server, 3);
    let started = Instant::now();
    let (status, n) = num_done(tf);
    assert_failure(
        status,
        TF_ERR_AUTH,
        "tf_taskfarm_num_done",
        401,
        &[
            &format!("GET runs/{RUN}?info=numDone"),
            "HTTP 401 Unauthorized",
            "Unauthorized Access",
        ],
    );
    assert_eq!(n, SENTINEL_I64);
    assert_eq!(
        hits(&server, "GET", &run_path(), "info=numDone"),
        1,
        "a 401 is not retried"
    );
    assert_eq!(
        hits(&server, "GET", "token", ""),
        2,
        "the open's token and one re-check"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(token(tf), "tok1");
    tf_taskfarm_free(tf);
}

#[test]
fn a_new_server_key_500_on_a_get_is_repeated_with_the_new_token() {
    let (server, key) = rotating_server(|| Action::html(500, FLASK_500));
    let tf = open(&server, 0);
    *key.lock().unwrap() = "tok2";
    // With 0 retries, only the token change can repeat the call.
    assert_eq!(num_done(tf), (TF_OK, 3), "{}", last_error());
    let asked: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| is(r, "GET", &run_path(), "info=numDone"))
        .map(|r| r.basic_auth_user().unwrap().0)
        .collect();
    assert_eq!(asked, ["tok1", "tok2"]);
    assert_eq!(hits(&server, "GET", "token", ""), 2);
    assert_eq!(token(tf), "tok2");
    tf_taskfarm_free(tf);
}

#[test]
fn a_new_server_key_500_on_a_post_is_repeated_with_the_new_token() {
    let (server, key) = rotating_server(|| Action::html(500, FLASK_500));
    let w = new_worker(&server, 0);
    *key.lock().unwrap() = "tok2";
    let mut task = SENTINEL_I64;
    assert_ok(tf_worker_task(w, &mut task));
    assert_eq!(task, 0);
    let asked: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| is(r, "POST", &task_path(), ""))
        .map(|r| r.basic_auth_user().unwrap().0)
        .collect();
    assert_eq!(
        asked,
        ["tok1", "tok2"],
        "the server never got past authentication: the POST is repeated once, with tok2"
    );
    assert_eq!(token(tf_worker_taskfarm(w)), "tok2");
    tf_worker_free(w);
}

#[test]
fn a_wrong_password_is_an_auth_error_that_never_shows_the_password() {
    let server = serve(|_| None);
    let args = Args::with_password(&server.url(), WRONG_PASSWORD);
    let mut tf = sentinel_ptr();
    let message = assert_failure(
        args.open(&mut tf),
        TF_ERR_AUTH,
        "tf_taskfarm_open",
        401,
        &["GET token", "\"alice\""],
    );
    assert!(!message.contains(WRONG_PASSWORD) && !message.contains(PASSWORD));
    assert_eq!(tf, sentinel_ptr(), "out-pointer untouched");
    assert_eq!(
        hits(&server, "GET", "token", ""),
        1,
        "a 401 to the token is not retried"
    );
    assert_eq!(server.requests().len(), 1, "nothing asked without a token");

    let mut w = sentinel_ptr();
    assert_failure(
        args.new_worker(&mut w),
        TF_ERR_AUTH,
        "tf_worker_new",
        401,
        &["GET token"],
    );
    assert_eq!(w, sentinel_ptr());
    let mut json = sentinel_ptr();
    assert_failure(
        tf_runs_json(
            args.user.as_ptr(),
            args.password.as_ptr(),
            args.url.as_ptr(),
            &mut json,
        ),
        TF_ERR_AUTH,
        "tf_runs_json",
        401,
        &["GET token"],
    );
    assert_eq!(json, sentinel_ptr());
    assert_eq!(server.requests().len(), 3);
}

// ------------------------------------------------------------------ answers

/// The call a bad-answer case makes, its out-pointer pre-filled with a sentinel.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// `tf_taskfarm_open`.
    Open,
    /// `tf_taskfarm_status` on an open handle.
    Status,
    /// `tf_taskfarm_percent_done` on an open handle.
    PercentDone,
    /// `tf_worker_task` of a registered worker.
    WorkerTask,
    /// `tf_runs_json`.
    RunsJson,
}

/// A route answered badly, and what the call that asks it must say.
struct BadAnswer {
    name: &'static str,
    /// The route: method, path relative to the API base, query.
    route: (&'static str, String, &'static str),
    /// What the server answers there.
    answer: fn() -> Action,
    call: Call,
    status: tf_status,
    /// `tf_last_http_status()`: the answer behind the failure.
    http: c_int,
    /// In the message (`{url}`: the server's base URL).
    parts: Vec<String>,
    /// Not in the message.
    absent: &'static [&'static str],
}

/// The route answers of [`bad_answers_are_errors_that_are_not_retried`].
fn bad_answers() -> Vec<BadAnswer> {
    let task_at = |bad: &str| {
        vec![
            format!("POST runs/{RUN}/task"),
            bad.to_owned(),
            "10 tasks".to_owned(),
        ]
    };
    let post_task = ("POST", task_path(), "");
    vec![
        BadAnswer {
            name: "a Flask HTML 404 on open says there is no such run",
            route: ("GET", run_path(), ""),
            answer: || Action::html(404, FLASK_404),
            call: Call::Open,
            status: TF_ERR_NOT_FOUND,
            http: 404,
            parts: vec![
                format!("no run {RUN} on {{url}}"),
                format!("GET runs/{RUN} answered HTTP 404 Not Found"),
            ],
            // Flask's boilerplate says nothing the message does not.
            // Flask's boilerplate says nothing the message does not; the
            // URL ends in /api/: no hint about it.
            absent: &[FLASK_404_TEXT, "<", "/api/ usually"],
        },
        BadAnswer {
            name: "invalid JSON with 200 is a protocol error quoting the body",
            route: ("GET", run_path(), "info="),
            answer: || {
                Action::raw(
                    200,
                    "application/json",
                    "{\"numTasks\": 10, \"numDone\": oops",
                )
            },
            call: Call::Status,
            status: TF_ERR_PROTOCOL,
            http: 200,
            parts: vec![
                format!("GET runs/{RUN}?info="),
                "{\"numTasks\": 10, \"numDone\": oops".to_owned(),
            ],
            absent: &[],
        },
        BadAnswer {
            name: "a missing percentDone is a protocol error",
            route: ("GET", run_path(), "info=percentDone"),
            answer: || Action::json(200, &json!({"numDone": 3})),
            call: Call::PercentDone,
            status: TF_ERR_PROTOCOL,
            http: 200,
            parts: vec![
                format!("GET runs/{RUN}?info=percentDone"),
                "\"percentDone\"".to_owned(),
                "{\"numDone\":3}".to_owned(),
            ],
            absent: &[],
        },
        BadAnswer {
            name: "a task answer without its number is a protocol error",
            route: post_task.clone(),
            answer: || {
                Action::json(
                    201,
                    &json!({"id": 1, "percentCompleted": 0.0, "status": "computing"}),
                )
            },
            call: Call::WorkerTask,
            status: TF_ERR_PROTOCOL,
            http: 201,
            parts: vec![
                format!("POST runs/{RUN}/task answered HTTP 201"),
                "missing field `task`".to_owned(),
                "\"status\":\"computing\"".to_owned(),
            ],
            absent: &[],
        },
        BadAnswer {
            name: "a body over the cap is a protocol error",
            route: ("GET", "runs".to_owned(), ""),
            answer: || {
                let size = usize::try_from(MAX_BODY_BYTES).unwrap() + 1024 * 1024;
                Action::raw(200, "application/json", vec![b' '; size])
            },
            call: Call::RunsJson,
            status: TF_ERR_PROTOCOL,
            // The server did answer (200): that answer is behind the failure.
            http: 200,
            parts: vec![
                "GET runs".to_owned(),
                format!("limit of {MAX_BODY_BYTES} bytes"),
            ],
            absent: &[],
        },
        // A task number outside the run (10 tasks), or a percentage over 100:
        // the answer behind the failure was a 201.
        BadAnswer {
            name: "task 99 is outside the run",
            route: post_task.clone(),
            answer: || task_answer(99),
            call: Call::WorkerTask,
            status: TF_ERR_PROTOCOL,
            http: 201,
            parts: task_at("task 99 at 0 %"),
            absent: &[],
        },
        BadAnswer {
            name: "task -1 is outside the run",
            route: post_task.clone(),
            answer: || task_answer(-1),
            call: Call::WorkerTask,
            status: TF_ERR_PROTOCOL,
            http: 201,
            parts: task_at("task -1 at 0 %"),
            absent: &[],
        },
        BadAnswer {
            name: "task 10 is outside the run",
            route: post_task.clone(),
            answer: || task_answer(10),
            call: Call::WorkerTask,
            status: TF_ERR_PROTOCOL,
            http: 201,
            parts: task_at("task 10 at 0 %"),
            absent: &[],
        },
        BadAnswer {
            name: "a task at 150 % is outside the run",
            route: post_task,
            answer: || {
                Action::json(
                    201,
                    &json!({"id": 3, "task": 2, "percentCompleted": 150.0, "status": "computing"}),
                )
            },
            call: Call::WorkerTask,
            status: TF_ERR_PROTOCOL,
            http: 201,
            parts: task_at("task 2 at 150 %"),
            absent: &[],
        },
    ]
}

/// The handle a bad-answer case made its call on, freed after the checks.
enum Handle {
    None,
    Taskfarm(*mut tf_taskfarm),
    Worker(*mut tf_worker),
}

/// Makes `case`'s call against `server`: its status, whether the out-pointer
/// still holds its sentinel, and the handle it used.
fn make_call(case: &BadAnswer, server: &FaultServer) -> (tf_status, bool, Handle) {
    match case.call {
        Call::Open => {
            let mut tf = sentinel_ptr();
            let status = Args::new(&server.url()).open(&mut tf);
            (status, tf == sentinel_ptr(), Handle::None)
        }
        Call::Status => {
            let tf = open(server, 3);
            let mut out = SENTINEL_STATUS;
            let status = tf_taskfarm_status(tf, &mut out);
            (status, out == SENTINEL_STATUS, Handle::Taskfarm(tf))
        }
        Call::PercentDone => {
            let tf = open(server, 3);
            let mut percent = SENTINEL_F64;
            let status = tf_taskfarm_percent_done(tf, &mut percent);
            (status, percent == SENTINEL_F64, Handle::Taskfarm(tf))
        }
        Call::WorkerTask => {
            let w = new_worker(server, 3);
            let mut task = SENTINEL_I64;
            let status = tf_worker_task(w, &mut task);
            (status, task == SENTINEL_I64, Handle::Worker(w))
        }
        Call::RunsJson => {
            let args = Args::new(&server.url());
            let mut json = sentinel_ptr();
            let status = tf_runs_json(
                args.user.as_ptr(),
                args.password.as_ptr(),
                args.url.as_ptr(),
                &mut json,
            );
            (status, json == sentinel_ptr(), Handle::None)
        }
    }
}

#[test]
fn bad_answers_are_errors_that_are_not_retried() {
    for case in bad_answers() {
        let name = case.name;
        let (method, path, query) = case.route.clone();
        let p = path.clone();
        let answer = case.answer;
        let server = serve(move |req| is(req, method, &p, query).then(answer));
        let started = Instant::now();
        let (status, untouched, handle) = make_call(&case, &server);
        let elapsed = started.elapsed();
        let url = server.url();
        let parts: Vec<String> = case
            .parts
            .iter()
            .map(|p| p.replace("{url}", &url))
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let message = check_failure(
            name,
            status,
            case.status,
            call_name(case.call),
            case.http,
            &parts,
        );
        for text in case.absent {
            assert!(!message.contains(text), "{name}: {text:?} in: {message}");
        }
        assert!(untouched, "{name}: the out-pointer was written");
        assert_eq!(
            hits(&server, method, &path, query),
            1,
            "{name}: a bad answer is not retried"
        );
        assert!(elapsed < Duration::from_secs(3), "{name}: took {elapsed:?}");
        match handle {
            Handle::None => {}
            Handle::Taskfarm(tf) => tf_taskfarm_free(tf),
            Handle::Worker(w) => {
                // Nothing is held: an update sends nothing.
                assert_eq!(tf_worker_update(w, 10.0), TF_OK, "{name}: {}", last_error());
                assert_eq!(server.count("PUT", ""), 0, "{name}: an update was sent");
                tf_worker_free(w);
            }
        }
    }
}

/// The C function a [`Call`] makes.
fn call_name(call: Call) -> &'static str {
    match call {
        Call::Open => "tf_taskfarm_open",
        Call::Status => "tf_taskfarm_status",
        Call::PercentDone => "tf_taskfarm_percent_done",
        Call::WorkerTask => "tf_worker_task",
        Call::RunsJson => "tf_runs_json",
    }
}

#[test]
fn no_task_left_is_a_status_and_the_next_call_asks_again() {
    let answers = Counter::default();
    let a = answers.clone();
    let server = serve(move |req| {
        is(req, "POST", &task_path(), "").then(|| match a.next() {
            0 | 1 => Action::empty(204),
            _ => task_answer(4),
        })
    });
    let w = new_worker(&server, 3);
    let mut task = SENTINEL_I64;
    assert_eq!(tf_worker_task(w, &mut task), TF_NO_MORE_TASKS);
    assert_eq!(task, SENTINEL_I64, "out-pointer untouched");
    assert_eq!(tf_worker_task(w, &mut task), TF_NO_MORE_TASKS);
    assert_eq!(task, SENTINEL_I64);
    assert_eq!(hits(&server, "POST", &task_path(), ""), 2, "asked again");
    // A task was given back meanwhile: the next call gets it.
    assert_ok(tf_worker_task(w, &mut task));
    assert_eq!(task, 4);
    assert_eq!(hits(&server, "POST", &task_path(), ""), 3);
    tf_worker_free(w);
}

// ---------------------------------------------------------------- transport

#[test]
fn a_get_slower_than_the_timeout_is_retried_then_fails() {
    let server = serve(|req| {
        is(req, "GET", &run_path(), "info=numDone")
            .then(|| healthy(req, "tok1").delayed(Duration::from_secs(2)))
    });
    let tf = open(&server, 1);
    assert_ok(tf_taskfarm_set_timeout(tf, 0.3));
    let started = Instant::now();
    let (status, n) = num_done(tf);
    let elapsed = started.elapsed();
    assert_failure(
        status,
        TF_ERR_CONNECTION,
        "tf_taskfarm_num_done",
        0,
        &[
            &format!("GET runs/{RUN}?info=numDone"),
            "no answer within 0.3 s",
            "(after 2 attempts)",
        ],
    );
    assert_eq!(n, SENTINEL_I64);
    assert_eq!(hits(&server, "GET", &run_path(), "info=numDone"), 2);
    // Two attempts of 0.3 s, no wait before the first retry.
    assert!(
        elapsed >= Duration::from_millis(550) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    tf_taskfarm_free(tf);
}

#[test]
fn a_post_slower_than_the_timeout_is_not_repeated() {
    let server = serve(|req| {
        is(req, "POST", &task_path(), "")
            .then(|| healthy(req, "tok1").delayed(Duration::from_secs(2)))
    });
    let w = new_worker(&server, 1);
    assert_ok(tf_taskfarm_set_timeout(tf_worker_taskfarm(w), 0.3));
    let mut task = SENTINEL_I64;
    let started = Instant::now();
    let status = tf_worker_task(w, &mut task);
    let elapsed = started.elapsed();
    let message = assert_failure(
        status,
        TF_ERR_CONNECTION,
        "tf_worker_task",
        0,
        &[&format!("POST runs/{RUN}/task"), "no answer within 0.3 s"],
    );
    assert!(!message.contains("attempts"), "one attempt: {message}");
    assert_eq!(task, SENTINEL_I64);
    assert_eq!(
        hits(&server, "POST", &task_path(), ""),
        1,
        "a POST that may have reached the server is not repeated"
    );
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_millis(1000),
        "{elapsed:?}"
    );
    tf_worker_free(w);
}

/// A 200 whose `Content-Length` promises more than is sent before the close.
fn cut_answer() -> Action {
    Action::CloseMidBody {
        status: 200,
        declared_len: 100,
        sent: b"{\"numDo".to_vec(),
    }
}

#[test]
fn a_get_closed_mid_answer_once_is_retried_and_succeeds() {
    let calls = Counter::default();
    let c = calls.clone();
    let server = serve(move |req| {
        (is(req, "GET", &run_path(), "info=numDone") && c.next() == 0).then(cut_answer)
    });
    let tf = open(&server, 2);
    assert_eq!(num_done(tf), (TF_OK, 3), "{}", last_error());
    assert_eq!(hits(&server, "GET", &run_path(), "info=numDone"), 2);
    assert_eq!(server.connections(), 2, "the cut connection is not reused");
    tf_taskfarm_free(tf);
}

#[test]
fn a_get_closed_mid_answer_every_time_fails_after_the_retries() {
    let server = serve(|req| is(req, "GET", &run_path(), "info=numDone").then(cut_answer));
    let tf = open(&server, 2);
    let (status, n) = num_done(tf);
    assert_failure(
        status,
        TF_ERR_CONNECTION,
        "tf_taskfarm_num_done",
        0,
        &[
            &format!("GET runs/{RUN}?info=numDone"),
            &server.url(),
            "(after 3 attempts)",
        ],
    );
    assert_eq!(n, SENTINEL_I64);
    assert_eq!(hits(&server, "GET", &run_path(), "info=numDone"), 3);
    tf_taskfarm_free(tf);
}

#[test]
fn a_post_closed_without_answer_is_not_repeated() {
    let failing = Arc::new(AtomicBool::new(true));
    let f = Arc::clone(&failing);
    let server = serve(move |req| {
        (is(req, "POST", &task_path(), "") && f.load(Ordering::SeqCst))
            .then_some(Action::CloseWithoutAnswer)
    });
    let w = new_worker(&server, 3);
    let mut task = SENTINEL_I64;
    let message = assert_failure(
        tf_worker_task(w, &mut task),
        TF_ERR_CONNECTION,
        "tf_worker_task",
        0,
        &[&format!("POST runs/{RUN}/task")],
    );
    assert!(!message.contains("attempts"), "one attempt: {message}");
    assert_eq!(task, SENTINEL_I64);
    assert_eq!(hits(&server, "POST", &task_path(), ""), 1, "not repeated");
    failing.store(false, Ordering::SeqCst);
    assert_ok(tf_worker_task(w, &mut task));
    assert_eq!(task, 0);
    tf_worker_free(w);
}

#[test]
fn a_put_closed_without_answer_is_repeated_and_succeeds() {
    let calls = Counter::default();
    let c = calls.clone();
    let server = serve(move |req| {
        (req.method == "PUT" && c.next() == 0).then_some(Action::CloseWithoutAnswer)
    });
    let w = new_worker(&server, 2);
    let mut task = SENTINEL_I64;
    assert_ok(tf_worker_task(w, &mut task));
    assert_ok(tf_worker_update(w, 50.0));
    let put = format!("{}/tasks/0", run_path());
    let bodies: Vec<Value> = server
        .requests()
        .iter()
        .filter(|r| is(r, "PUT", &put, ""))
        .map(RecordedRequest::body_json)
        .collect();
    assert_eq!(
        bodies,
        [
            json!({"percentCompleted": 50.0}),
            json!({"percentCompleted": 50.0})
        ],
        "the same PUT, twice"
    );
    tf_worker_free(w);
}

#[test]
fn nothing_listening_fails_to_connect_within_retries_times_backoff() {
    setup();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/api/");
    let mut tf = sentinel_ptr();
    let started = Instant::now();
    let status = Args::new(&url).open(&mut tf);
    let elapsed = started.elapsed();
    assert_failure(
        status,
        TF_ERR_CONNECTION,
        "tf_taskfarm_open",
        0,
        &["GET token", &url, "cannot connect", "(after 4 attempts)"],
    );
    assert_eq!(tf, sentinel_ptr());
    // TASKFARM_RETRIES=3, TASKFARM_BACKOFF=0.01: waits 0 + 0.02 + 0.04 s.
    assert!(
        elapsed >= Duration::from_millis(60) && elapsed < Duration::from_secs(1),
        "{elapsed:?}"
    );
}

/// A listener on loopback that accepts no connection: its accept queue (of
/// length 1, `listen(fd, 0)`) holds one connection already, so the kernel
/// drops every further SYN and a connect to it never completes, as to a host
/// that drops packets.
struct Blackhole {
    listener: std::net::TcpListener,
    _queued: std::net::TcpStream,
}

impl Blackhole {
    fn start() -> Blackhole {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: a listening socket of ours; listen again only sets its backlog.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let queued = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // The queue is full once the kernel has queued that connection; for a
        // listening socket TCP_INFO's tcpi_unacked is the queue's length.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Blackhole::queued(&listener) < 1 {
            assert!(Instant::now() < deadline, "the connection was never queued");
            std::thread::yield_now();
        }
        Blackhole {
            listener,
            _queued: queued,
        }
    }

    /// The number of connections in the accept queue.
    fn queued(listener: &std::net::TcpListener) -> u32 {
        use std::os::fd::AsRawFd;
        // SAFETY: tcp_info is plain data; the kernel fills at most `len` bytes.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = unsafe {
            libc::getsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
        info.tcpi_unacked
    }

    fn url(&self) -> String {
        format!("http://{}/api/", self.listener.local_addr().unwrap())
    }
}

#[test]
fn a_post_whose_connect_never_completes_is_repeated() {
    // Through the Rust API: the C ABI has no POST without a GET before it
    // (the token or the run), which would fail first.
    use taskfarm_worker::internal::http::retry::RetryObserver;
    use taskfarm_worker::internal::settings::TokenSource;
    use taskfarm_worker::internal::{ErrorKind, Run, Settings};
    let blackhole = Blackhole::start();
    let url = blackhole.url();
    let mut settings = Settings::resolve_with(
        TokenSource::Required(Some("tok1")),
        None,
        None,
        Some(&url),
        &|_| None,
    )
    .unwrap();
    settings.timeout = Duration::from_millis(300);
    settings.retries = 2;
    settings.backoff = Duration::from_millis(10);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    settings.on_retry = Some(RetryObserver::new(move |event| {
        s.lock()
            .unwrap()
            .push(format!("{}: {}", event.request, event.reason));
    }));
    let started = Instant::now();
    let Err(error) = Run::create(&settings, 5) else {
        panic!("nothing can answer, yet the run was created");
    };
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
    assert_eq!(error.http_status(), None, "{error}");
    assert_eq!(
        error.message(),
        format!("POST run to {url}: cannot connect within 0.3 s (after 3 attempts)")
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["POST run: cannot connect within 0.3 s"; 2],
        "not a byte was sent: the POST is repeated"
    );
    // Three attempts of 0.3 s, waits of 0 and 20 ms.
    assert!(
        elapsed >= Duration::from_millis(850) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(
        Blackhole::queued(&blackhole.listener),
        1,
        "no connection of the library was queued"
    );
}

#[test]
fn a_whole_worker_session_uses_one_keep_alive_connection() {
    let server = serve(|_| None);
    let w = new_worker(&server, 0);
    let mut task = SENTINEL_I64;
    assert_ok(tf_worker_task(w, &mut task));
    assert_eq!(task, 0);
    for p in [25.0, 50.0, 100.0] {
        assert_ok(tf_worker_update(w, p));
    }
    assert_ok(tf_worker_done(w));
    let asked: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, rel(r)))
        .collect();
    let put = format!("PUT {}/tasks/0", run_path());
    assert_eq!(
        asked,
        [
            "GET token".to_owned(),
            format!("GET {}", run_path()),
            "POST worker".to_owned(),
            format!("POST {}", task_path()),
            put.clone(),
            put.clone(),
            put.clone(),
            put,
        ]
    );
    assert_eq!(
        server.connections(),
        1,
        "one TCP connection for the session"
    );
    tf_worker_free(w);
}

#[test]
fn a_kept_alive_connection_closed_by_the_server_does_not_fail_the_next_post() {
    // The server (or a proxy's keep-alive timeout) closes the connection
    // right after a complete answer, without `Connection: close`. The next
    // request, a POST that is never repeated, must not be sent on the dead
    // connection.
    let calls = Counter::default();
    let c = calls.clone();
    let server = serve(move |req| {
        (is(req, "GET", &run_path(), "info=numDone") && c.next() == 0).then(|| {
            let body = json!({"numDone": 3}).to_string().into_bytes();
            Action::CloseMidBody {
                status: 200,
                declared_len: body.len(),
                sent: body,
            }
        })
    });
    let w = new_worker(&server, 3);
    assert_eq!(
        num_done(tf_worker_taskfarm(w)),
        (TF_OK, 3),
        "{}",
        last_error()
    );
    // The server has closed the connection: wait for that, not for a guessed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.closed_connections() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never closed"
        );
        std::thread::yield_now();
    }
    let mut task = SENTINEL_I64;
    assert_ok(tf_worker_task(w, &mut task));
    assert_eq!(task, 0);
    assert_eq!(hits(&server, "POST", &task_path(), ""), 1);
    assert_eq!(server.connections(), 2);
    tf_worker_free(w);
}

#[test]
fn strings_returned_on_success_are_freed_with_tf_string_free() {
    // The success path of the function the cap test fails, for contrast:
    // written only on TF_OK, and freed by the caller.
    let server = serve(|_| None);
    let args = Args::new(&server.url());
    let mut json: *mut c_char = sentinel_ptr();
    assert_ok(tf_runs_json(
        args.user.as_ptr(),
        args.password.as_ptr(),
        args.url.as_ptr(),
        &mut json,
    ));
    assert_ne!(json, sentinel_ptr());
    let text = unsafe { CStr::from_ptr(json) }.to_str().unwrap().to_owned();
    tf_string_free(json);
    let runs: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(runs, json!([{"id": 1, "uuid": RUN, "numTasks": 10}]));
}

#[test]
fn a_url_without_api_says_where_the_api_usually_is() {
    // Flask's 404 for every URL outside the API, as the real server.
    let server =
        serve(|req| (!req.path.starts_with("/api/")).then(|| Action::html(404, FLASK_404)));
    let root = server.url().trim_end_matches("api/").to_owned();
    assert!(root.ends_with(':') || root.ends_with('/'), "{root}");

    // With credentials: `GET token` answered 404 (Flask's page).
    let mut tf: *mut tf_taskfarm = sentinel_ptr();
    let status = Args::new(&root).open(&mut tf);
    let message = assert_failure(
        status,
        TF_ERR_NOT_FOUND,
        "tf_taskfarm_open",
        404,
        &[&format!(
            "{root} is not a taskfarm API (GET token answered HTTP 404 Not Found); \
             its URL usually ends in /api/"
        )],
    );
    assert!(!message.contains(FLASK_404_TEXT), "{message}");
    assert_eq!(tf, sentinel_ptr(), "written only on TF_OK");
    assert_eq!(
        hits(&server, "GET", "/token", ""),
        1,
        "a 404 is not retried"
    );

    // With a token no `GET token` is sent: the run's 404 says it.
    let (token, url, run) = (
        CString::new("tok1").unwrap(),
        CString::new(root.as_str()).unwrap(),
        CString::new(RUN).unwrap(),
    );
    let status = tf_taskfarm_open_with_token(token.as_ptr(), url.as_ptr(), run.as_ptr(), &mut tf);
    let message = assert_failure(
        status,
        TF_ERR_NOT_FOUND,
        "tf_taskfarm_open_with_token",
        404,
        &[&format!(
            "no run {RUN} on {root} (GET runs/{RUN} answered HTTP 404 Not Found); \
             the URL of the taskfarm API usually ends in /api/"
        )],
    );
    assert!(!message.contains(FLASK_404_TEXT), "{message}");
}

/// The variable that makes [`retry_series_child`] run: the fault server's URL.
const CHILD_URL: &str = "TASKFARM_TEST_SERIES_URL";

/// Run by [`a_retry_series_says_so_once_on_stderr_unless_quiet`] as a child
/// process (its stderr is the library's): opens the run, then asks for
/// `numDone` twice, each a series of 3 retries of `503`, then once more on a
/// route that answers at once.
#[test]
#[ignore = "a child process of a_retry_series_says_so_once_on_stderr_unless_quiet"]
fn retry_series_child() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    setup();
    let mut tf = ptr::null_mut();
    assert_ok(Args::new(&url).open(&mut tf));
    assert_eq!(tf_taskfarm_set_retries(tf, 3), TF_OK);
    for _ in 0..2 {
        let (status, _) = num_done(tf);
        assert_eq!(status, TF_ERR_CONNECTION, "{}", last_error());
        assert!(
            last_error().contains("(after 4 attempts)"),
            "{}",
            last_error()
        );
    }
    let mut percent = SENTINEL_F64;
    assert_ok(tf_taskfarm_percent_done(tf, &mut percent));
    tf_taskfarm_free(tf);
}

#[test]
fn a_retry_series_says_so_once_on_stderr_unless_quiet() {
    let server = serve(|req| {
        is(req, "GET", &run_path(), "info=numDone").then(|| Action::text(503, "restarting"))
    });
    let line = format!(
        "taskfarm: GET runs/{RUN}?info=numDone to {}: answered HTTP 503 Service Unavailable; \
         retrying up to 3 times over about 0.1 s of waits, each attempt up to 5.0 s \
         (TASKFARM_LOG=quiet silences this line)",
        server.url()
    );
    for (log, lines) in [
        (None, 2),
        (Some("debug"), 2),
        (Some("quiet"), 0),
        (Some("off"), 0),
    ] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "retry_series_child",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_URL, server.url())
            .env_remove("TASKFARM_LOG");
        if let Some(log) = log {
            child.env("TASKFARM_LOG", log);
        }
        let out = child.output().expect("the test binary runs again");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "TASKFARM_LOG={log:?}: the child failed:\n{stdout}\n{stderr}"
        );
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("retrying up to"))
            .collect();
        assert_eq!(
            said.len(),
            lines,
            "TASKFARM_LOG={log:?}: one line per series of 3 retries:\n{stderr}"
        );
        assert!(said.iter().all(|l| *l == line), "{said:?}\nwant {line}");
        for secret in SECRETS {
            assert!(!stderr.contains(secret), "{stderr}");
        }
    }
    // Two children asked 2 series of 4 attempts each, four times.
    assert_eq!(hits(&server, "GET", &run_path(), "info=numDone"), 4 * 2 * 4);
}
