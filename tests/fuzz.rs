//! Fuzzing with proptest, bounded in `make test` (256 cases per property by
//! default; set `PROPTEST_CASES=100000` to run longer by hand):
//! - the response parsing: a worker session against a fault server whose
//!   answers (status and body) are generated — valid JSON of the wrong shape,
//!   truncated JSON, random bytes;
//! - the FFI inputs: random bytes (invalid UTF-8 included) for every string
//!   argument, and any number for every numeric one.
//!
//! Whatever comes in, no call may panic or give `TF_ERR_INTERNAL`, every
//! status must be one of the documented ones, out-pointers stay untouched on
//! failure, and no message holds the password or the token.

mod common;

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::{Arc, Mutex, Once};

use common::c_abi::last_error;
use common::fault_server::{token_ok, Action, FaultServer, RecordedRequest};
use proptest::prelude::*;
use serde_json::{json, Value};
use taskfarm_worker::ffi::run_list::tf_runs_json;
use taskfarm_worker::ffi::status::tf_status::{self, *};
use taskfarm_worker::ffi::strings::tf_string_free;
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

const RUN: &str = "0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "fuzz-Pa55word";
const TOKEN: &str = "tok-fuzz-123";

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("TASKFARM_RETRIES", "0");
        std::env::set_var("TASKFARM_BACKOFF", "0");
        std::env::set_var("TASKFARM_TIMEOUT", "2");
    });
}

/// Checks a status and the message that goes with it.
fn check(status: tf_status, allowed: &[tf_status]) {
    assert_ne!(status, TF_ERR_INTERNAL, "{}", last_error());
    assert!(allowed.contains(&status) || status != TF_OK, "{status:?}");
    let message = last_error();
    assert!(
        !message.contains(PASSWORD) && !message.contains(TOKEN),
        "{message}"
    );
}

fn healthy(req: &RecordedRequest) -> Action {
    let run_path = format!("/api/runs/{RUN}");
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/api/token") => token_ok(TOKEN),
        ("GET", p) if p == run_path => Action::json(
            200,
            &json!({"id": 1, "uuid": RUN, "numTasks": 10, "percentDone": 0.0,
                    "numWaiting": 0, "numDone": 0, "numComputing": 0}),
        ),
        ("POST", "/api/worker") => {
            Action::json(201, &json!({"uuid": req.body_json()["uuid"], "id": 1}))
        }
        ("POST", _) => Action::json(
            201,
            &json!({"id": 1, "task": 0, "percentCompleted": 0.0, "status": "computing"}),
        ),
        _ => Action::empty(204),
    }
}

/// A fault server that answers from a script, then healthily.
struct Scripted {
    server: FaultServer,
    script: Arc<Mutex<Vec<Action>>>,
}

fn scripted() -> Scripted {
    let script: Arc<Mutex<Vec<Action>>> = Arc::default();
    let s = script.clone();
    let server =
        FaultServer::start(move |req, _| s.lock().unwrap().pop().unwrap_or_else(|| healthy(req)));
    Scripted { server, script }
}

/// JSON values of every shape, with the protocol's field names.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z0-9 ]{0,12}".prop_map(Value::from),
        prop_oneof![Just("waiting"), Just("computing"), Just("done"), Just(RUN)]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let keys = prop_oneof![
            Just("token"),
            Just("id"),
            Just("uuid"),
            Just("numTasks"),
            Just("task"),
            Just("percentCompleted"),
            Just("status"),
            Just("data"),
            Just("numDone"),
            Just("percentDone"),
            Just("numWaiting"),
            Just("numComputing"),
            Just("x"),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.prop_map(String::from), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One generated answer.
fn answer() -> impl Strategy<Value = Action> {
    let status = prop_oneof![
        Just(200u16),
        Just(201),
        Just(204),
        Just(400),
        Just(401),
        Just(404),
        Just(500),
        Just(503),
        100u16..600,
    ];
    let body = prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let at = cut.index(text.len() + 1);
            text[..at].to_vec()
        }),
        prop::collection::vec(any::<u8>(), 0..200),
    ];
    (status, body).prop_map(|(status, body)| {
        if matches!(status, 100..=199 | 204 | 304) {
            Action::empty(if status == 204 { 204 } else { 500 })
        } else {
            Action::raw(status, "application/json", body)
        }
    })
}

/// Non-NUL bytes, valid UTF-8 or not.
fn c_bytes() -> impl Strategy<Value = CString> {
    prop_oneof![
        prop::collection::vec(1u8..=255, 0..48),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        "(http|https|ftp)://[a-z0-9.:@/?#%-]{0,30}".prop_map(String::into_bytes),
    ]
    .prop_map(|bytes| CString::new(bytes).unwrap())
}

proptest! {
    // Cases from PROPTEST_CASES (default 256); no regression files are written.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_server_answer_gives_a_documented_status(answers in prop::collection::vec(answer(), 1..8)) {
        setup();
        let scripted = scripted();
        *scripted.script.lock().unwrap() = answers.into_iter().rev().collect();
        let url = CString::new(scripted.server.url()).unwrap();
        let (user, password, run) = (c"fuzzer", CString::new(PASSWORD).unwrap(), CString::new(RUN).unwrap());

        let mut w: *mut tf_worker = ptr::null_mut();
        let status = tf_worker_new(user.as_ptr(), password.as_ptr(), url.as_ptr(), run.as_ptr(), &mut w);
        check(status, &[TF_OK]);
        if status != TF_OK {
            prop_assert!(w.is_null());
            return Ok(());
        }
        let tf = tf_worker_taskfarm(w);
        let mut task = -42;
        let status = tf_worker_task(w, &mut task);
        check(status, &[TF_OK, TF_NO_MORE_TASKS]);
        if status == TF_OK {
            prop_assert!((0..10).contains(&task));
        } else {
            prop_assert_eq!(task, -42);
        }
        check(tf_worker_update(w, 50.0), &[TF_OK]);
        check(tf_worker_update(w, 100.0), &[TF_OK]);
        check(tf_worker_done(w), &[TF_OK]);
        let mut st = tf_run_status { num_tasks: -1, num_waiting: -1, num_computing: -1, num_done: -1, percent_done: -1.0 };
        let status = tf_taskfarm_status(tf, &mut st);
        check(status, &[TF_OK]);
        if status != TF_OK {
            prop_assert_eq!(st.num_tasks, -1);
        }
        let mut json: *mut c_char = ptr::null_mut();
        let status = tf_taskfarm_info(tf, c"numDone".as_ptr(), &mut json);
        check(status, &[TF_OK]);
        if status == TF_OK {
            tf_string_free(json);
        } else {
            prop_assert!(json.is_null());
        }
        let mut percent = -1.0;
        check(tf_taskfarm_task_percent_completed(tf, 3, &mut percent), &[TF_OK]);
        check(tf_worker_requeue(w), &[TF_OK]);
        tf_worker_free(w);
        let mut runs: *mut c_char = ptr::null_mut();
        let status = tf_runs_json(user.as_ptr(), password.as_ptr(), url.as_ptr(), &mut runs);
        check(status, &[TF_OK]);
        if status == TF_OK {
            tf_string_free(runs);
        }
    }

    #[test]
    fn any_string_argument_gives_a_documented_status(
        user in c_bytes(), password in c_bytes(), url in c_bytes(), uuid in c_bytes(),
    ) {
        setup();
        let mut tf: *mut tf_taskfarm = ptr::null_mut();
        let status = tf_taskfarm_open(user.as_ptr(), password.as_ptr(), url.as_ptr(), uuid.as_ptr(), &mut tf);
        assert_ne!(status, TF_ERR_INTERNAL, "{}", last_error());
        prop_assert!(status != TF_OK);
        prop_assert!(tf.is_null());
        let mut list = ptr::null_mut();
        let status = taskfarm_worker::ffi::run_list::tf_runs(user.as_ptr(), password.as_ptr(), url.as_ptr(), &mut list);
        assert_ne!(status, TF_ERR_INTERNAL, "{}", last_error());
        prop_assert!(list.is_null());
    }

    #[test]
    fn any_task_information_argument_gives_a_documented_status(
        task in prop_oneof![any::<i64>(), -2i64..12],
        info in c_bytes(),
        value in prop_oneof![c_bytes(), json_value().prop_map(|v| CString::new(v.to_string()).unwrap())],
        percent in any::<f64>(),
        state in any::<i32>(),
        seconds in any::<f64>(),
        retries in any::<u32>(),
    ) {
        setup();
        let scripted = scripted();
        let url = CString::new(scripted.server.url()).unwrap();
        let (user, password, run) = (c"fuzzer", CString::new(PASSWORD).unwrap(), CString::new(RUN).unwrap());
        let mut w: *mut tf_worker = ptr::null_mut();
        let status = tf_worker_new(user.as_ptr(), password.as_ptr(), url.as_ptr(), run.as_ptr(), &mut w);
        prop_assert_eq!(status, TF_OK, "{}", last_error());
        let tf = tf_worker_taskfarm(w);
        let documented = [TF_OK, TF_ERR_INVALID_ARGUMENT];
        for status in [
            tf_taskfarm_set_task_info(tf, task, info.as_ptr(), value.as_ptr()),
            tf_taskfarm_set_task_percent_completed(tf, task, percent),
            tf_taskfarm_set_task_state(tf, task, state),
            tf_worker_update(w, percent),
        ] {
            prop_assert!(documented.contains(&status), "{:?}: {}", status, last_error());
        }
        let mut json: *mut c_char = ptr::null_mut();
        let status = tf_taskfarm_info(tf, info.as_ptr(), &mut json);
        prop_assert!(documented.contains(&status), "{:?}: {}", status, last_error());
        if status == TF_OK {
            tf_string_free(json);
        }
        let mut url_out: *mut c_char = ptr::null_mut();
        let expected = if info.to_str().is_ok() { TF_OK } else { TF_ERR_INVALID_ARGUMENT };
        prop_assert_eq!(tf_taskfarm_url(tf, info.as_ptr(), &mut url_out), expected);
        if !url_out.is_null() {
            tf_string_free(url_out);
        }
        let valid_timeout = (0.001..=1.0e6).contains(&seconds);
        let expected = if valid_timeout { TF_OK } else { TF_ERR_INVALID_ARGUMENT };
        prop_assert_eq!(tf_taskfarm_set_timeout(tf, seconds), expected);
        let expected = if retries <= 1000 { TF_OK } else { TF_ERR_INVALID_ARGUMENT };
        prop_assert_eq!(tf_taskfarm_set_retries(tf, retries), expected);
        tf_worker_free(w);
    }
}
