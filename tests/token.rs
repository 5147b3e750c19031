//! One password check per farm: a token shared by many workers, against the
//! real server.
//!
//! - `taskfarm token` prints the token alone (`--json`: `{"token": ...}`),
//!   ignoring `TASKFARM_TOKEN`; the other commands work with
//!   `TASKFARM_TOKEN` and no password.
//! - Worker PROCESSES (tests/concurrency/worker.c, which calls
//!   `tf_worker_new(NULL, NULL, NULL, uuid)`) started with `TASKFARM_TOKEN`
//!   and no password work through a run on PostgreSQL + gunicorn, every task
//!   done once, and the server's access log shows exactly one `GET
//!   /api/token` for the whole job: the one `taskfarm token` made. Their
//!   `TASKFARM_LOG=debug` lines never hold the token.
//! - A server restarted with another `SECRET_KEY` refuses the token (500):
//!   with credentials the workers fetch a new one and carry on; without, the
//!   call fails at once with `TF_ERR_AUTH` and a message saying why. A `500`
//!   that is the server's own failure is not taken for a refusal.
//! - A malformed token is refused before anything is sent.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::ptr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::access_log::{self, count_requests, parse_line};
use common::c_abi::{c, last_error};
use common::c_programs;
use common::jobs;
use common::server::{Db, TaskfarmServer};
use serde_json::Value;
use taskfarm_worker::ffi::last_error::tf_last_http_status;
use taskfarm_worker::ffi::status::tf_status::*;
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;
use taskfarm_worker::internal::settings::TokenSource;
use taskfarm_worker::internal::{ErrorKind, Run, RunInfoKey, Settings, TaskInfoKey, Worker};

const TOKEN_PATH: &str = "/api/token";

/// Settings with the server's credentials only (no token).
fn with_password(server: &TaskfarmServer) -> Settings {
    Settings::resolve_with(
        TokenSource::Fetch,
        Some(&server.user),
        Some(&server.password),
        Some(&server.url),
        &|_| None,
    )
    .unwrap()
}

/// Settings that start with `token`; the server's credentials as well when
/// `credentials` (as `TASKFARM_USER`/`TASKFARM_PASSWORD` would give them).
fn with_token(server: &TaskfarmServer, token: &str, credentials: bool) -> Settings {
    let (user, password) = (server.user.clone(), server.password.clone());
    Settings::resolve_with(
        TokenSource::Required(Some(token)),
        None,
        None,
        Some(&server.url),
        &move |name| match name {
            "TASKFARM_USER" if credentials => Some(user.clone()),
            "TASKFARM_PASSWORD" if credentials => Some(password.clone()),
            _ => None,
        },
    )
    .unwrap()
}

/// The tool with no `TASKFARM_*` variable of the test's environment.
fn taskfarm() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TASKFARM_") {
            command.env_remove(name);
        }
    }
    command
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null());
    command
}

/// (exit status, stdout, stderr)
fn output(mut command: Command) -> (i32, String, String) {
    let out = command.output().expect("taskfarm runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `taskfarm token` with the server's credentials in the environment.
fn cli_token(server: &TaskfarmServer) -> String {
    let mut command = taskfarm();
    command.envs(server.credentials_env()).arg("token");
    let (code, stdout, stderr) = output(command);
    assert_eq!((code, stderr.as_str()), (0, ""), "taskfarm token: {stdout}");
    let token = stdout
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("no newline after the token: {stdout:?}"));
    assert!(
        !token.is_empty() && token.chars().all(|c| c.is_ascii_graphic()),
        "taskfarm token printed more than a token: {stdout:?}"
    );
    token.to_owned()
}

#[test]
fn access_log_lines_of_both_servers_are_read() {
    let gunicorn =
        "127.0.0.1 [02/Dec/2026:03:00:00 +0000] \"GET /api/token HTTP/1.1\" 200 150 250ms <1234>";
    let flask =
        "127.0.0.1 - - [02/Dec/2026 03:00:00] \"POST /api/runs/ab/task?x=1 HTTP/1.1\" 204 -";
    let coloured = "127.0.0.1 - - [02/Dec/2026 03:00:00] \"\u{1b}[31m\u{1b}[1mGET /api/token HTTP/1.1\u{1b}[0m\" 401 -";
    let r = parse_line(coloured).unwrap();
    assert_eq!(
        (r.method.as_str(), r.path(), r.status),
        ("GET", TOKEN_PATH, 401)
    );
    let r = parse_line(gunicorn).unwrap();
    assert_eq!(
        (r.method.as_str(), r.path(), r.status),
        ("GET", TOKEN_PATH, 200)
    );
    let r = parse_line(flask).unwrap();
    assert_eq!(
        (r.method.as_str(), r.path(), r.target.as_str(), r.status),
        ("POST", "/api/runs/ab/task", "/api/runs/ab/task?x=1", 204)
    );
    for other in [
        "[2026-12-02 03:00:00 +0000] [7] [INFO] Booting worker with pid: 7",
        " * Running on http://127.0.0.1:5000",
        "ERROR:root:no run with uuid=\"x\"",
    ] {
        assert_eq!(parse_line(other), None, "{other}");
    }
}

#[test]
fn taskfarm_token_prints_the_token_that_the_commands_and_workers_use_without_a_password() {
    let server = TaskfarmServer::start();
    let run = Run::create(&with_password(&server), 2).unwrap();
    let library_token = run.connection().token().expose().to_owned();

    let token = cli_token(&server);
    assert_eq!(token, library_token, "the server's token for this user");

    // --json, and a TASKFARM_TOKEN already set is not used (nor checked).
    let mut command = taskfarm();
    command
        .envs(server.credentials_env())
        .env("TASKFARM_TOKEN", "an old token")
        .args(["--json", "token"]);
    let (code, stdout, stderr) = output(command);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json, serde_json::json!({ "token": token }));

    // A wrong password: exit 4, one line, no secret.
    let mut command = taskfarm();
    command
        .env("TASKFARM_URL", &server.url)
        .env("TASKFARM_USER", &server.user)
        .env("TASKFARM_PASSWORD", "Wr0ng-pa55word")
        .arg("token");
    let (code, stdout, stderr) = output(command);
    assert_eq!((code, stdout.as_str()), (4, ""), "{stderr}");
    assert!(
        stderr.starts_with("taskfarm: ") && !stderr.contains("Wr0ng-pa55word"),
        "{stderr}"
    );

    let (code, help, _) = output({
        let mut command = taskfarm();
        command.arg("--help");
        command
    });
    assert_eq!(code, 0);
    assert!(
        help.contains("TASKFARM_TOKEN") && help.contains("export TASKFARM_TOKEN=$(taskfarm token)"),
        "{help}"
    );

    // The commands with TASKFARM_TOKEN and no credentials: no GET token.
    let checks_before = count_requests(&server, "GET", TOKEN_PATH);
    // Run::create and the four `taskfarm token`s above (one refused).
    assert_eq!(checks_before, 4, "GET /api/token in the access log so far");
    let token_only = |args: &[&str]| {
        let mut command = taskfarm();
        command
            .env("TASKFARM_URL", &server.url)
            .env("TASKFARM_TOKEN", &token)
            .env("TASKFARM_LOG", "debug")
            .args(args);
        output(command)
    };
    let (code, created, stderr) = token_only(&["create", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains(&token),
        "the token in a log line: {stderr}"
    );
    let uuid = created.trim().to_owned();
    let (code, info, stderr) = token_only(&["--json", "info", &uuid]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains(&token),
        "the token in a log line: {stderr}"
    );
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["numTasks"], 3);
    // The same in the library: a worker with the token.
    let mut w = ptr::null_mut();
    let status = tf_worker_new_with_token(
        c(&token).as_ptr(),
        c(&server.url).as_ptr(),
        c(&uuid).as_ptr(),
        &mut w,
    );
    assert_eq!(status, TF_OK, "{}", last_error());
    let mut task = -1;
    assert_eq!(tf_worker_task(w, &mut task), TF_OK, "{}", last_error());
    assert_eq!(task, 0);
    tf_worker_free(w);
    assert_eq!(
        count_requests(&server, "GET", TOKEN_PATH),
        checks_before,
        "a command or worker with a token asked for one"
    );

    // A malformed TASKFARM_TOKEN: a usage error, the token not quoted.
    let mut command = taskfarm();
    command
        .env("TASKFARM_URL", &server.url)
        .env("TASKFARM_TOKEN", "SECRET TOKEN")
        .arg("list");
    let (code, _, stderr) = output(command);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("TASKFARM_TOKEN") && !stderr.contains("SECRET"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_token_is_refused_before_anything_is_sent() {
    let server = TaskfarmServer::start();
    let run = Run::create(&with_password(&server), 1).unwrap();
    let uuid = c(run.uuid());
    let before = access_log::requests(&server).len();
    assert!(before >= 2, "GET token and POST run are in the access log");
    for bad in [
        "",
        "SECRET TOKEN",
        "SECRET:TOKEN",
        "SECRET\nTOKEN",
        "SECRET\u{e9}",
    ] {
        let mut w = ptr::null_mut();
        let status = tf_worker_new_with_token(
            c(bad).as_ptr(),
            c(&server.url).as_ptr(),
            uuid.as_ptr(),
            &mut w,
        );
        assert_eq!(status, TF_ERR_INVALID_ARGUMENT, "{bad:?}");
        assert!(w.is_null());
        let message = last_error();
        assert!(
            message.starts_with("tf_worker_new_with_token") && !message.contains("SECRET"),
            "{message}"
        );
        let mut tf = ptr::null_mut();
        let status = tf_taskfarm_open_with_token(
            c(bad).as_ptr(),
            c(&server.url).as_ptr(),
            uuid.as_ptr(),
            &mut tf,
        );
        assert_eq!(status, TF_ERR_INVALID_ARGUMENT, "{bad:?}");
        assert!(tf.is_null() && !last_error().contains("SECRET"));
    }
    assert_eq!(
        access_log::requests(&server).len(),
        before,
        "a request was sent with a malformed token"
    );
}

#[test]
fn a_refused_token_is_replaced_with_credentials_and_an_auth_error_without() {
    let server = TaskfarmServer::start();
    let run = Run::create(&with_password(&server), 4).unwrap();
    let token = run.connection().token().expose().to_owned();
    let open = |credentials| {
        let run =
            Arc::new(Run::open(&with_token(&server, &token, credentials), run.uuid()).unwrap());
        let mut worker = Worker::register(Arc::clone(&run)).unwrap();
        assert!(worker.task().unwrap().is_some());
        worker
    };
    let mut kept = open(true);
    let stranded = open(false);

    server.restart(Some("another-secret-key-for-this-test"));

    // With credentials: a new token, and the worker carries on.
    kept.update(100.0).unwrap();
    kept.done().unwrap();
    assert!(kept.task().unwrap().is_some());
    assert_ne!(kept.run().connection().token().expose(), token);

    // Without: at once (no 4.5 minutes of retries), TF_ERR_AUTH, saying why.
    let started = Instant::now();
    let err = stranded.run().status().unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        (err.kind(), err.http_status()),
        (ErrorKind::Auth, Some(500)),
        "{err}"
    );
    for part in [
        "refused the token",
        "SECRET_KEY",
        "no credentials",
        "taskfarm token",
    ] {
        assert!(err.message().contains(part), "{part:?} not in: {err}");
    }
    assert!(!err.message().contains(&token), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}: retried?");
    // The held task is still there for a worker that can get in.
    assert!(stranded.held_task().is_some());

    // Through the C ABI, without TASKFARM_USER/TASKFARM_PASSWORD.
    std::env::remove_var("TASKFARM_USER");
    std::env::remove_var("TASKFARM_PASSWORD");
    let mut w = ptr::null_mut();
    let status = tf_worker_new_with_token(
        c(&token).as_ptr(),
        c(&server.url).as_ptr(),
        c(run.uuid()).as_ptr(),
        &mut w,
    );
    let message = last_error();
    assert_eq!(status, TF_ERR_AUTH, "{message}");
    assert_eq!(tf_last_http_status(), 500);
    assert!(w.is_null());
    assert!(
        message.contains("refused the token") && !message.contains(&token),
        "{message}"
    );

    // A 500 that is the server's own failure is not a refused token: a task
    // written before it was handed out makes the next hand-out fail (docs/PROTOCOL.md).
    let fresh = cli_token(&server);
    let broken = Run::create(&with_password(&server), 5).unwrap();
    broken
        .set_task_info(3, TaskInfoKey::Status, &Value::from("done"))
        .unwrap();
    let run = Arc::new(Run::open(&with_token(&server, &fresh, false), broken.uuid()).unwrap());
    let mut worker = Worker::register(run).unwrap();
    let err = worker.task().unwrap_err();
    assert_eq!(
        (err.kind(), err.http_status()),
        (ErrorKind::Http, Some(500)),
        "{err}"
    );
    assert!(!err.message().contains("refused the token"), "{err}");
}

// ---------------------------------------------------------------------------
// Many worker processes, one password check.

/// This test process's scratch directory (the worker binary, its logs).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| jobs::scratch("token"))
}

/// tests/concurrency/worker.c built against the tree
/// (tests/common/c_programs.rs: run `make build` first).
fn c_worker() -> PathBuf {
    let bin = scratch().join("worker");
    c_programs::build("tests/concurrency/worker.c", &bin);
    bin
}

/// Children killed (by PID) if the test ends before they do.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn worker_processes_sharing_one_token_cost_the_server_one_password_check() {
    const TASKS: i64 = 120;
    const WORKERS: usize = 6;
    let worker = c_worker();
    let server = TaskfarmServer::start_with(Db::Postgresql);
    // The job script: `export TASKFARM_TOKEN=$(taskfarm token)`, once.
    let token = cli_token(&server);
    let run = Run::create(&with_token(&server, &token, false), TASKS).unwrap();

    let mut children = Children(Vec::new());
    let mut logs = Vec::new();
    for i in 0..WORKERS {
        let (out, err) = (
            scratch().join(format!("worker-{i}.out")),
            scratch().join(format!("worker-{i}.err")),
        );
        let mut command = Command::new(&worker);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TASKFARM_") {
                command.env_remove(name);
            }
        }
        let child = command
            .arg(run.uuid())
            .env("TASKFARM_URL", &server.url)
            .env("TASKFARM_TOKEN", &token)
            .env("TASKFARM_LOG", "debug")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("start a worker");
        children.0.push(child);
        logs.push((out, err));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for (i, child) in children.0.iter_mut().enumerate() {
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "worker {i} still running");
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = std::fs::read_to_string(&logs[i].1).unwrap();
        assert!(status.success(), "worker {i}: {status}\n{stderr}");
        assert!(
            stderr.contains("taskfarm: POST runs/") && !stderr.contains(&token),
            "worker {i}: debug log without requests, or with the token:\n{stderr}"
        );
    }

    let mut done_by: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, (out, _)) in logs.iter().enumerate() {
        for line in std::fs::read_to_string(out).unwrap().lines() {
            if let Some(task) = line.strip_prefix("task ") {
                done_by.entry(task.parse().unwrap()).or_default().push(i);
            }
        }
    }
    let twice: Vec<_> = done_by.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(twice.is_empty(), "tasks done more than once: {twice:?}");
    assert_eq!(
        done_by.keys().copied().collect::<Vec<_>>(),
        (0..TASKS).collect::<Vec<_>>(),
        "tasks nobody did"
    );
    assert_eq!(run.count(RunInfoKey::NumDone).unwrap(), TASKS);

    let requests = access_log::requests(&server);
    let token_checks = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path() == TOKEN_PATH)
        .count();
    let registrations = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path() == "/api/worker")
        .count();
    assert_eq!(
        token_checks, 1,
        "GET /api/token in the access log: only `taskfarm token` may ask"
    );
    assert_eq!(registrations, WORKERS, "POST /api/worker in the access log");
    eprintln!(
        "{WORKERS} worker processes, {TASKS} tasks, {} requests in the access log, \
         {token_checks} GET /api/token",
        requests.len()
    );
}
