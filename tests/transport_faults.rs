//! Error paths of the transport, through the C ABI, against the scripted
//! fault server (loopback): what the real server will not do on demand.
//! Each test checks the exact status, `tf_last_http_status`, that
//! `tf_last_error` names what was asked, the HTTP status and the server's body,
//! how many attempts reached the server, and that out-pointers are written
//! only on success.
//!
//! Backoff: every test first sets `TASKFARM_BACKOFF=0.01` and
//! `TASKFARM_RETRIES=3` (once, before any handle exists) so that retries wait
//! 0, 20, 40 ms and the file stays fast; the retry count of each handle is then
//! set with `tf_taskfarm_set_retries`.

mod common;

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use common::fault_server::{token_ok, Action, FaultServer, RecordedRequest};
use serde_json::json;
use taskfarm_worker::client::transport::MAX_BODY_BYTES;
use taskfarm_worker::ffi::last_error::{tf_last_error, tf_last_http_status};
use taskfarm_worker::ffi::run_list::tf_runs_json;
use taskfarm_worker::ffi::status::tf_status::{self, *};
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

const RUN: &str = "0123456789abcdef0123456789abcdef";
const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pa55word";

fn fast_backoff() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("TASKFARM_BACKOFF", "0.01");
        std::env::set_var("TASKFARM_RETRIES", "3");
    });
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(tf_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// The last error, checked to hold no secret.
fn checked_error() -> String {
    let message = last_error();
    for secret in [PASSWORD, "tok1", "tok2"] {
        assert!(!message.contains(secret), "secret {secret:?} in {message}");
    }
    message
}

/// What a healthy server answers: a run of 10 tasks, a worker, task 0.
fn healthy(req: &RecordedRequest) -> Action {
    let run_path = format!("/api/runs/{RUN}");
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/api/token") => token_ok("tok1"),
        ("GET", p) if p == run_path => match req.query.strip_prefix("info=") {
            Some("numDone") => Action::json(200, &json!({"numDone": 3})),
            Some("percentDone") => Action::json(200, &json!({"percentDone": 30.0})),
            _ => Action::json(
                200,
                &json!({"id": 1, "uuid": RUN, "numTasks": 10, "percentDone": 30.0,
                        "numWaiting": 0, "numDone": 3, "numComputing": 1}),
            ),
        },
        ("GET", "/api/runs") => Action::json(
            200,
            &json!({"data": [{"id": 1, "uuid": RUN, "numTasks": 10}]}),
        ),
        ("POST", "/api/worker") => {
            Action::json(201, &json!({"uuid": req.body_json()["uuid"], "id": 7}))
        }
        ("POST", p) if p == format!("{run_path}/task") => Action::json(
            201,
            &json!({"id": 11, "task": 0, "percentCompleted": 0.0, "status": "computing"}),
        ),
        ("PUT", p) if p.starts_with(&format!("{run_path}/tasks/")) => Action::empty(204),
        _ => Action::html(
            404,
            "<!doctype html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>",
        ),
    }
}

/// A server that is healthy except where `fault` returns an action.
fn server(
    fault: impl Fn(&RecordedRequest) -> Option<Action> + Send + Sync + 'static,
) -> FaultServer {
    fast_backoff();
    FaultServer::start(move |req, _| fault(req).unwrap_or_else(|| healthy(req)))
}

/// Counts calls: `n()` gives 0, 1, 2, ... on successive calls.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Counter {
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

fn is(req: &RecordedRequest, method: &str, path_end: &str, query: &str) -> bool {
    req.method == method && req.path.ends_with(path_end) && req.query == query
}

struct Strings {
    user: CString,
    password: CString,
    url: CString,
    run: CString,
}

fn strings(server: &FaultServer) -> Strings {
    Strings {
        user: CString::new(USER).unwrap(),
        password: CString::new(PASSWORD).unwrap(),
        url: CString::new(server.url()).unwrap(),
        run: CString::new(RUN).unwrap(),
    }
}

fn open(server: &FaultServer, retries: u32) -> *mut tf_taskfarm {
    let s = strings(server);
    let mut tf = ptr::null_mut();
    let status = tf_taskfarm_open(
        s.user.as_ptr(),
        s.password.as_ptr(),
        s.url.as_ptr(),
        s.run.as_ptr(),
        &mut tf,
    );
    assert_eq!(status, TF_OK, "{}", last_error());
    assert_eq!(tf_taskfarm_set_retries(tf, retries), TF_OK);
    tf
}

fn new_worker(server: &FaultServer, retries: u32) -> *mut tf_worker {
    let s = strings(server);
    let mut w = ptr::null_mut();
    let status = tf_worker_new(
        s.user.as_ptr(),
        s.password.as_ptr(),
        s.url.as_ptr(),
        s.run.as_ptr(),
        &mut w,
    );
    assert_eq!(status, TF_OK, "{}", last_error());
    assert_eq!(
        tf_taskfarm_set_retries(tf_worker_taskfarm(w), retries),
        TF_OK
    );
    w
}

fn num_done(tf: *const tf_taskfarm) -> (tf_status, i64) {
    let mut n = -42;
    let status = tf_taskfarm_num_done(tf, &mut n);
    (status, n)
}

fn flask_500() -> Action {
    Action::html(
        500,
        "<!doctype html>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>",
    )
}

#[test]
fn a_500_then_success_is_retried() {
    let calls = Counter::default();
    let c = calls.clone();
    let server =
        server(move |req| (is(req, "GET", RUN, "info=numDone") && c.next() == 0).then(flask_500));
    let tf = open(&server, 3);
    assert_eq!(num_done(tf), (TF_OK, 3), "{}", last_error());
    assert_eq!(
        calls.0.load(Ordering::SeqCst),
        2,
        "one failed attempt, one retry"
    );
    // The 500 made the library check the token once (it had not changed).
    assert_eq!(server.count("GET", "/api/token"), 2);
    tf_taskfarm_free(tf);
}

#[test]
fn a_503_forever_fails_as_connection_within_the_retries() {
    let server =
        server(|req| is(req, "GET", RUN, "info=numDone").then(|| Action::text(503, "maintenance")));
    let tf = open(&server, 2);
    let started = Instant::now();
    assert_eq!(num_done(tf), (TF_ERR_CONNECTION, -42));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(tf_last_http_status(), 503);
    let message = checked_error();
    assert!(
        message.starts_with("tf_taskfarm_num_done: GET runs/"),
        "{message}"
    );
    assert!(
        message.contains("HTTP 503 Service Unavailable (after 3 attempts): maintenance"),
        "{message}"
    );
    let attempts = server
        .requests()
        .iter()
        .filter(|r| is(r, "GET", RUN, "info=numDone"))
        .count();
    assert_eq!(attempts, 3, "the first attempt and 2 retries");
    tf_taskfarm_free(tf);
}

#[test]
fn a_post_that_reached_the_server_is_never_repeated() {
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f = failing.clone();
    let server = server(move |req| {
        (req.method == "POST" && req.path.ends_with("/task") && f.load(Ordering::SeqCst))
            .then(flask_500)
    });
    let w = new_worker(&server, 5);
    let mut task = -42;
    assert_eq!(tf_worker_task(w, &mut task), TF_ERR_HTTP);
    assert_eq!(task, -42);
    assert_eq!(tf_last_http_status(), 500);
    let message = checked_error();
    assert!(
        message.contains(&format!(
            "POST runs/{RUN}/task answered HTTP 500 Internal Server Error"
        )),
        "{message}"
    );
    assert!(message.contains("Internal Server Error"), "{message}");
    assert_eq!(server.count("POST", "/task"), 1, "a POST is not repeated");
    // The server recovers: the worker asks again and gets its task.
    failing.store(false, Ordering::SeqCst);
    assert_eq!(tf_worker_task(w, &mut task), TF_OK, "{}", last_error());
    assert_eq!(task, 0);
    tf_worker_free(w);
}

#[test]
fn a_401_fetches_a_new_token_and_repeats_the_call() {
    let tokens = Counter::default();
    let t = tokens.clone();
    let server = FaultServer::start(move |req, _| {
        if req.path == "/api/token" {
            return token_ok(if t.next() == 0 { "tok1" } else { "tok2" });
        }
        match req.basic_auth_user() {
            Some((token, _)) if token == "tok2" => healthy(req),
            _ if req.path == format!("/api/runs/{RUN}") && req.query.is_empty() => healthy(req),
            _ => Action::text(401, "Unauthorized Access"),
        }
    });
    fast_backoff();
    let tf = open(&server, 0);
    assert_eq!(num_done(tf), (TF_OK, 3), "{}", last_error());
    let last = server
        .requests()
        .into_iter()
        .rfind(|r| r.query == "info=numDone")
        .unwrap();
    assert_eq!(
        last.basic_auth_user(),
        Some(("tok2".to_owned(), String::new()))
    );
    assert_eq!(
        unsafe { CStr::from_ptr(tf_taskfarm_token(tf)) }
            .to_str()
            .unwrap(),
        "tok2"
    );
    tf_taskfarm_free(tf);
}

#[test]
fn a_401_with_an_unchanged_token_is_an_auth_error() {
    let server = server(|req| {
        is(req, "GET", RUN, "info=numDone").then(|| Action::text(401, "Unauthorized Access"))
    });
    let tf = open(&server, 3);
    assert_eq!(num_done(tf), (TF_ERR_AUTH, -42));
    assert_eq!(tf_last_http_status(), 401);
    assert!(
        checked_error().contains("HTTP 401 Unauthorized: Unauthorized Access"),
        "{}",
        last_error()
    );
    assert_eq!(
        server.count("GET", "/api/token"),
        2,
        "one token check, no loop"
    );
    tf_taskfarm_free(tf);
}

#[test]
fn a_500_to_a_token_of_an_old_key_fetches_the_new_token() {
    // The real server, restarted with another SECRET_KEY, answers an old
    // token with 500 (PROTOCOL.md); its new token works.
    let tokens = Counter::default();
    let t = tokens.clone();
    let server = FaultServer::start(move |req, _| {
        if req.path == "/api/token" {
            return token_ok(if t.next() == 0 { "tok1" } else { "tok2" });
        }
        match req.basic_auth_user() {
            Some((token, _)) if token == "tok1" && req.method == "POST" => flask_500(),
            _ => healthy(req),
        }
    });
    fast_backoff();
    let w = new_worker(&server, 0);
    // Registration (POST worker) got 500 with tok1 and was repeated with tok2.
    let mut task = -1;
    assert_eq!(tf_worker_task(w, &mut task), TF_OK, "{}", last_error());
    assert_eq!(task, 0);
    let posts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(
        posts.len(),
        3,
        "POST worker with tok1 (500), again with tok2, POST task with tok2"
    );
    assert_eq!(posts[0].basic_auth_user().unwrap().0, "tok1");
    assert_eq!(posts[1].basic_auth_user().unwrap().0, "tok2");
    assert_eq!(posts[2].basic_auth_user().unwrap().0, "tok2");
    tf_worker_free(w);
}

#[test]
fn a_wrong_password_is_an_auth_error_that_never_shows_the_password() {
    let server =
        server(|req| (req.path == "/api/token").then(|| Action::text(401, "Unauthorized Access")));
    let s = strings(&server);
    let mut tf = ptr::null_mut();
    let status = tf_taskfarm_open(
        s.user.as_ptr(),
        s.password.as_ptr(),
        s.url.as_ptr(),
        s.run.as_ptr(),
        &mut tf,
    );
    assert_eq!(status, TF_ERR_AUTH);
    assert!(tf.is_null());
    assert_eq!(tf_last_http_status(), 401);
    let message = checked_error();
    assert!(
        message.contains("GET token") && message.contains("\"alice\""),
        "{message}"
    );
}

#[test]
fn flask_html_error_pages_become_readable_messages() {
    let server = server(|req| {
        is(req, "GET", RUN, "").then(|| {
            Action::html(
                404,
                "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n\
                 <p>The requested URL was not found on the server.</p>\n",
            )
        })
    });
    let s = strings(&server);
    let mut tf = ptr::null_mut();
    let status = tf_taskfarm_open(
        s.user.as_ptr(),
        s.password.as_ptr(),
        s.url.as_ptr(),
        s.run.as_ptr(),
        &mut tf,
    );
    assert_eq!(status, TF_ERR_NOT_FOUND);
    assert_eq!(tf_last_http_status(), 404);
    let message = checked_error();
    assert!(
        message.ends_with("HTTP 404 Not Found: 404 Not Found Not Found The requested URL was not found on the server."),
        "{message}"
    );
    assert!(!message.contains('<'), "{message}");
}

#[test]
fn invalid_json_and_missing_fields_are_protocol_errors() {
    let server = server(|req| {
        if is(req, "GET", RUN, "info=") {
            Some(Action::raw(
                200,
                "application/json",
                "{\"numTasks\": 10, oops",
            ))
        } else if is(req, "GET", RUN, "info=percentDone") {
            Some(Action::json(200, &json!({"numDone": 3})))
        } else {
            None
        }
    });
    let tf = open(&server, 3);
    let mut status = tf_run_status {
        num_tasks: -1,
        num_waiting: -1,
        num_computing: -1,
        num_done: -1,
        percent_done: -1.0,
    };
    assert_eq!(tf_taskfarm_status(tf, &mut status), TF_ERR_PROTOCOL);
    assert_eq!(status.num_tasks, -1, "out-pointer untouched");
    assert_eq!(tf_last_http_status(), 200);
    let message = checked_error();
    assert!(
        message.contains("GET runs/") && message.contains("{\"numTasks\": 10, oops"),
        "{message}"
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| is(r, "GET", RUN, "info="))
            .count(),
        1,
        "not retried"
    );

    let mut percent = -1.0;
    assert_eq!(tf_taskfarm_percent_done(tf, &mut percent), TF_ERR_PROTOCOL);
    assert_eq!(percent, -1.0);
    assert!(
        checked_error().contains("without \"percentDone\""),
        "{}",
        last_error()
    );
    tf_taskfarm_free(tf);
}

#[test]
fn a_task_answer_without_its_number_or_outside_the_run_is_a_protocol_error() {
    let calls = Counter::default();
    let c = calls.clone();
    let server = server(move |req| {
        (req.method == "POST" && req.path.ends_with("/task")).then(|| match c.next() {
            0 => Action::json(
                201,
                &json!({"id": 11, "percentCompleted": 0.0, "status": "computing"}),
            ),
            _ => Action::json(
                201,
                &json!({"id": 11, "task": 99, "percentCompleted": 0.0, "status": "computing"}),
            ),
        })
    });
    let w = new_worker(&server, 0);
    let mut task = -42;
    assert_eq!(tf_worker_task(w, &mut task), TF_ERR_PROTOCOL);
    assert!(
        checked_error().contains("missing field `task`"),
        "{}",
        last_error()
    );
    assert_eq!(tf_worker_task(w, &mut task), TF_ERR_PROTOCOL);
    assert!(checked_error().contains("task 99"), "{}", last_error());
    assert_eq!(task, -42);
    tf_worker_free(w);
}

#[test]
fn a_body_over_the_cap_is_refused_and_not_retried() {
    let server = server(|req| {
        (req.path == "/api/runs").then(|| {
            let size = usize::try_from(MAX_BODY_BYTES).unwrap() + 1024 * 1024;
            Action::raw(200, "application/json", vec![b' '; size])
        })
    });
    let s = strings(&server);
    let mut json: *mut c_char = ptr::null_mut();
    assert_eq!(
        tf_runs_json(
            s.user.as_ptr(),
            s.password.as_ptr(),
            s.url.as_ptr(),
            &mut json
        ),
        TF_ERR_PROTOCOL
    );
    assert!(json.is_null());
    let message = checked_error();
    assert!(
        message.contains("GET runs")
            && message.contains(&format!("limit of {MAX_BODY_BYTES} bytes")),
        "{message}"
    );
    assert_eq!(server.count("GET", "/api/runs"), 1);
}

#[test]
fn an_answer_slower_than_the_timeout_is_retried_for_a_get_but_not_for_a_post() {
    let server = server(|req| {
        let slow = is(req, "GET", RUN, "info=numDone")
            || (req.method == "POST" && req.path.ends_with("/task"));
        slow.then(|| healthy(req).delayed(Duration::from_secs(3)))
    });
    let w = new_worker(&server, 1);
    let tf = tf_worker_taskfarm(w);
    assert_eq!(tf_taskfarm_set_timeout(tf, 0.3), TF_OK);

    let started = Instant::now();
    assert_eq!(num_done(tf), (TF_ERR_CONNECTION, -42));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(tf_last_http_status(), 0);
    let message = checked_error();
    assert!(
        message.contains("no answer within 0.3 s (after 2 attempts)"),
        "{message}"
    );

    let mut task = -42;
    assert_eq!(tf_worker_task(w, &mut task), TF_ERR_CONNECTION);
    assert_eq!(task, -42);
    assert!(checked_error().contains("POST runs/"), "{}", last_error());
    assert_eq!(
        server.count("POST", "/task"),
        1,
        "a POST that may have arrived is not repeated"
    );
    tf_worker_free(w);
}

#[test]
fn a_connection_closed_mid_answer_is_retried_then_reported() {
    let calls = Counter::default();
    let c = calls.clone();
    let server = server(move |req| {
        if is(req, "GET", RUN, "info=numDone") && c.next() == 0 {
            return Some(Action::CloseMidBody {
                status: 200,
                declared_len: 1000,
                sent: b"{\"numDone\"".to_vec(),
            });
        }
        is(req, "GET", RUN, "info=percentDone").then(|| Action::CloseMidBody {
            status: 200,
            declared_len: 1000,
            sent: b"{\"perc".to_vec(),
        })
    });
    let tf = open(&server, 2);
    assert_eq!(
        num_done(tf),
        (TF_OK, 3),
        "once, then success: {}",
        last_error()
    );
    let mut percent = -1.0;
    assert_eq!(
        tf_taskfarm_percent_done(tf, &mut percent),
        TF_ERR_CONNECTION
    );
    assert_eq!(percent, -1.0);
    assert!(
        checked_error().contains("(after 3 attempts)"),
        "{}",
        last_error()
    );
    tf_taskfarm_free(tf);
}

#[test]
fn a_connection_closed_without_answer_repeats_a_put_but_not_a_post() {
    let puts = Counter::default();
    let p = puts.clone();
    let server = server(move |req| {
        if req.method == "POST"
            && req.path.ends_with("/task")
            && req.body_json()["worker_uuid"].is_string()
        {
            // Fail only the second task request.
            return None;
        }
        (req.method == "PUT" && p.next() == 0).then_some(Action::CloseWithoutAnswer)
    });
    let w = new_worker(&server, 2);
    let mut task = -1;
    assert_eq!(tf_worker_task(w, &mut task), TF_OK);
    assert_eq!(
        tf_worker_update(w, 50.0),
        TF_OK,
        "the PUT is repeated: {}",
        last_error()
    );
    assert_eq!(server.count("PUT", "/tasks/0"), 2);
    tf_worker_free(w);

    let server = server_closing_posts();
    let w = new_worker(&server, 2);
    assert_eq!(tf_worker_task(w, &mut task), TF_ERR_CONNECTION);
    assert_eq!(server.count("POST", "/task"), 1);
    tf_worker_free(w);
}

fn server_closing_posts() -> FaultServer {
    server(|req| {
        (req.method == "POST" && req.path.ends_with("/task")).then_some(Action::CloseWithoutAnswer)
    })
}

#[test]
fn nothing_listening_fails_as_connection_within_retries_times_backoff() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    fast_backoff();
    let url = CString::new(format!("http://127.0.0.1:{port}/api/")).unwrap();
    let (user, password, run) = (
        CString::new(USER).unwrap(),
        CString::new(PASSWORD).unwrap(),
        CString::new(RUN).unwrap(),
    );
    let mut tf = ptr::null_mut();
    let started = Instant::now();
    let status = tf_taskfarm_open(
        user.as_ptr(),
        password.as_ptr(),
        url.as_ptr(),
        run.as_ptr(),
        &mut tf,
    );
    let elapsed = started.elapsed();
    assert_eq!(status, TF_ERR_CONNECTION);
    assert!(tf.is_null());
    // Waits 0 + 0.02 + 0.04 s: far below a second.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    let message = checked_error();
    assert!(
        message.contains("cannot connect") && message.contains("(after 4 attempts)"),
        "{message}"
    );
}

#[test]
fn no_more_tasks_is_a_status_and_the_next_call_asks_again() {
    let server = server(|req| {
        (req.method == "POST" && req.path.ends_with("/task")).then(|| Action::empty(204))
    });
    let w = new_worker(&server, 0);
    let mut task = -42;
    assert_eq!(tf_worker_task(w, &mut task), TF_NO_MORE_TASKS);
    assert_eq!(tf_worker_task(w, &mut task), TF_NO_MORE_TASKS);
    assert_eq!(task, -42);
    assert_eq!(server.count("POST", "/task"), 2);
    tf_worker_free(w);
}

#[test]
fn a_whole_worker_session_uses_one_keep_alive_connection() {
    let server = server(|_| None);
    let w = new_worker(&server, 0);
    let mut task = -1;
    assert_eq!(tf_worker_task(w, &mut task), TF_OK);
    for p in [30.0, 60.0, 100.0] {
        assert_eq!(tf_worker_update(w, p), TF_OK);
    }
    assert_eq!(tf_worker_done(w), TF_OK);
    let (status, _) = num_done(tf_worker_taskfarm(w));
    assert_eq!(status, TF_OK);
    assert_eq!(
        server.requests().len(),
        9,
        "token, run, worker, task, 3 updates, done, numDone"
    );
    assert_eq!(server.connections(), 1);
    tf_worker_free(w);
}
