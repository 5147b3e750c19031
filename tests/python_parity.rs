//! Python parity: one scenario of worker and run operations is played by the
//! reference Python client (taskfarm-worker 0.4.0, in the harness's venv) on
//! one run and through the C ABI on another run of the same real server. What
//! each operation returned, and every task's final state, must be the same.
//!
//! The C side plays it twice: with `TASKFARM_UPDATE_INTERVAL=0` (every update
//! sent at once: the Python client's requests) and with a long update interval
//! (every update coalesced), where the reads through the library must still
//! see each update. The binary holds a single test: it sets the environment.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::ptr;

use common::c_abi::{c, create_run, new_worker, run_uuid, take_string};
use common::server::{venv, TaskfarmServer};
use serde_json::{json, Value};
use taskfarm_worker::ffi::status::tf_status::{self, *};
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

const NUM_TASKS: i64 = 4;

/// The scenario: held task, done below and at 100 %, a refused update,
/// information calls, restart in both modes, set/get task information and an
/// out-of-range task.
fn scenario() -> Value {
    json!([
        ["numTasks"],
        ["info", "numDone"],
        ["task"],
        ["task"],
        ["update", 50],
        ["getTaskInfo", 0, "percentCompleted"],
        ["done"],
        ["getTaskInfo", 0, "status"],
        ["task"],
        ["update", 150],
        ["update", 100],
        ["done"],
        ["getTaskInfo", 1, "status"],
        ["task"],
        ["update", 100],
        ["done"],
        ["task"],
        ["update", 30],
        ["info", "numComputing"],
        ["info", "percentDone"],
        ["restart", false],
        ["getTaskInfo", 0, ""],
        ["info", ""],
        ["done"],
        ["task"],
        ["update", 100],
        ["done"],
        ["task"],
        ["update", 100],
        ["done"],
        ["task"],
        ["done"],
        ["info", "numDone"],
        ["info", "percentDone"],
        ["restart", true],
        ["info", "numWaiting"],
        ["getTaskInfo", 2, "percentCompleted"],
        ["setTaskInfo", 2, "status", "done"],
        ["getTaskInfo", 2, "status"],
        ["setTaskInfo", 3, "percentCompleted", 75],
        ["getTaskInfo", 3, ""],
        ["getTaskInfo", 9, "status"],
        ["getTaskInfo", -1, "status"],
        ["info", "percentDone"]
    ])
}

/// A new run of `NUM_TASKS` and its UUID.
fn new_run(server: &TaskfarmServer) -> (*mut tf_taskfarm, String) {
    let tf = create_run(server, NUM_TASKS);
    (tf, run_uuid(tf))
}

fn play_in_python(server: &TaskfarmServer, uuid: &str, ops: &Value) -> Vec<Value> {
    let mut child = Command::new(venv().join("bin/python"))
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/harness/parity_client.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the harness venv has python (tests/harness/venv.sh)");
    let spec = json!({"url": server.url, "user": server.user, "password": server.password,
                      "uuid": uuid, "ops": ops});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Python client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    results.into_iter().map(normalize).collect()
}

/// One C call's outcome as the Python transcript writes it.
fn outcome(status: tf_status, value: impl FnOnce() -> Value) -> Value {
    match status {
        TF_OK => json!({"ok": value()}),
        _ => json!({"error": true}),
    }
}

fn json_out(status: tf_status, text: *mut std::ffi::c_char) -> Value {
    outcome(status, || serde_json::from_str(&take_string(text)).unwrap())
}

/// `interval`: `None` keeps the environment's update interval, else the
/// worker's is set to it.
fn play_in_c(
    server: &TaskfarmServer,
    uuid: &str,
    ops: &Value,
    interval: Option<f64>,
) -> Vec<Value> {
    let w = new_worker(server, &server.url, uuid);
    if let Some(seconds) = interval {
        assert_eq!(tf_worker_set_update_interval(w, seconds), TF_OK);
    }
    let tf = tf_worker_taskfarm(w);
    let mut results = Vec::new();
    for op in ops.as_array().unwrap() {
        let op = op.as_array().unwrap();
        let arg = |i: usize| op[i].clone();
        let result = match op[0].as_str().unwrap() {
            "numTasks" => json!({"ok": tf_taskfarm_num_tasks(tf)}),
            "task" => {
                let mut task = -1;
                match tf_worker_task(w, &mut task) {
                    TF_NO_MORE_TASKS => json!({"ok": null}),
                    status => outcome(status, || json!(task)),
                }
            }
            "update" => outcome(tf_worker_update(w, arg(1).as_f64().unwrap()), || {
                Value::Null
            }),
            // TF_NOT_DONE (below 100 %) is the Python client's silent
            // release: the same effect on the server, only reported.
            "done" => match tf_worker_done(w) {
                TF_NOT_DONE => json!({"ok": null}),
                status => outcome(status, || Value::Null),
            },
            "restart" => outcome(tf_taskfarm_restart(tf, arg(1).as_bool().unwrap()), || {
                Value::Null
            }),
            "info" => {
                let key = c(arg(1).as_str().unwrap());
                let mut text = ptr::null_mut();
                json_out(tf_taskfarm_info(tf, key.as_ptr(), &mut text), text)
            }
            "getTaskInfo" => {
                let key = c(arg(2).as_str().unwrap());
                let mut text = ptr::null_mut();
                let status = tf_taskfarm_get_task_info(
                    tf,
                    arg(1).as_i64().unwrap(),
                    key.as_ptr(),
                    &mut text,
                );
                json_out(status, text)
            }
            "setTaskInfo" => {
                let key = c(arg(2).as_str().unwrap());
                let value = c(&arg(3).to_string());
                let status = tf_taskfarm_set_task_info(
                    tf,
                    arg(1).as_i64().unwrap(),
                    key.as_ptr(),
                    value.as_ptr(),
                );
                outcome(status, || Value::Null)
            }
            other => panic!("unknown op {other}"),
        };
        results.push(normalize(result));
    }
    tf_worker_free(w);
    results
}

/// Drops what differs between two runs by nature (database ids, the run's
/// uuid), turns error classes into `true`, and numbers into floats.
fn normalize(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k != "id" && k != "uuid")
                .map(|(k, v)| {
                    if k == "error" {
                        (k, Value::Bool(true))
                    } else {
                        (k, normalize(v))
                    }
                })
                .collect(),
        ),
        Value::Number(n) => json!(n.as_f64().unwrap()),
        other => other,
    }
}

fn final_tasks(tf: *const tf_taskfarm) -> Vec<Value> {
    (0..NUM_TASKS)
        .map(|task| {
            let key = c("");
            let mut text = ptr::null_mut();
            normalize(json_out(
                tf_taskfarm_get_task_info(tf, task, key.as_ptr(), &mut text),
                text,
            ))
        })
        .collect()
}

#[test]
fn the_c_abi_behaves_as_the_python_client() {
    std::env::set_var("TASKFARM_UPDATE_INTERVAL", "0");
    let server = TaskfarmServer::shared();
    let ops = scenario();
    let (python_tf, python_uuid) = new_run(server);
    let (c_tf, c_uuid) = new_run(server);
    let (coalesced_tf, coalesced_uuid) = new_run(server);

    let python = play_in_python(server, &python_uuid, &ops);
    assert_eq!(python.len(), ops.as_array().unwrap().len());
    for (name, tf, uuid, interval) in [
        ("interval 0", c_tf, &c_uuid, None),
        (
            "interval 3600 s",
            coalesced_tf,
            &coalesced_uuid,
            Some(3600.0),
        ),
    ] {
        let c = play_in_c(server, uuid, &ops, interval);
        for (i, op) in ops.as_array().unwrap().iter().enumerate() {
            assert_eq!(
                c[i], python[i],
                "{name}: operation {i} {op}: C gave {}, Python {}",
                c[i], python[i]
            );
        }
        assert_eq!(final_tasks(tf), final_tasks(python_tf), "{name}");
    }
    // The scenario reached the interesting states (so the comparison means something).
    assert!(python.iter().any(|r| r.get("error").is_some()));
    assert!(
        python.contains(&json!({"ok": null})),
        "no-more-tasks reached"
    );
    tf_taskfarm_free(python_tf);
    tf_taskfarm_free(c_tf);
    tf_taskfarm_free(coalesced_tf);
}
