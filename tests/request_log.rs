//! `TASKFARM_LOG=debug` prints one line per request on stderr (method, path,
//! status, milliseconds) and never the password or the token — also when
//! requests fail. Run through the `taskfarm` tool, which logs through the same
//! client as the C ABI.

mod common;

use std::ffi::{CStr, CString};
use std::process::Command;
use std::ptr;

use common::server::TaskfarmServer;
use taskfarm_worker::ffi::status::tf_status::TF_OK;
use taskfarm_worker::ffi::taskfarm::*;

fn run_tool(server: &TaskfarmServer, password: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_taskfarm"))
        .args(args)
        .env("TASKFARM_URL", &server.url)
        .env("TASKFARM_USER", &server.user)
        .env("TASKFARM_PASSWORD", password)
        .env("TASKFARM_LOG", "debug")
        .env("TASKFARM_RETRIES", "1")
        .env("TASKFARM_BACKOFF", "0")
        .output()
        .expect("the taskfarm tool runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn request_lines_name_method_path_status_and_time_but_no_secret() {
    let server = TaskfarmServer::shared();
    let (user, password, url) = (
        CString::new(server.user.as_str()).unwrap(),
        CString::new(server.password.as_str()).unwrap(),
        CString::new(server.url.as_str()).unwrap(),
    );
    let mut tf = ptr::null_mut();
    assert_eq!(
        tf_taskfarm_create(user.as_ptr(), password.as_ptr(), url.as_ptr(), 3, &mut tf),
        TF_OK
    );
    let uuid = unsafe { CStr::from_ptr(tf_taskfarm_uuid(tf)) }
        .to_str()
        .unwrap()
        .to_owned();
    let token = unsafe { CStr::from_ptr(tf_taskfarm_token(tf)) }
        .to_str()
        .unwrap()
        .to_owned();

    let (ok, stderr) = run_tool(server, &server.password, &["info", &uuid]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("taskfarm: GET token -> 200 (")),
        "{stderr}"
    );
    let run_line = lines
        .iter()
        .find(|l| l.starts_with(&format!("taskfarm: GET runs/{uuid}")))
        .unwrap_or_else(|| panic!("no line for GET runs/{uuid}: {stderr}"));
    assert!(
        run_line.contains("-> 200 (") && run_line.ends_with(" ms)"),
        "{run_line}"
    );

    // Failures are logged too: a wrong password (401), an unknown run (404).
    let (ok, wrong) = run_tool(server, "wrong-password-123", &["info", &uuid]);
    assert!(!ok);
    assert!(wrong.contains("GET token -> 401"), "{wrong}");
    let (ok, missing) = run_tool(
        server,
        &server.password,
        &["info", "0123456789abcdef0123456789abcdef"],
    );
    assert!(!ok);
    assert!(missing.contains("-> 404"), "{missing}");

    for output in [&stderr, &wrong, &missing] {
        assert!(!output.contains(&server.password), "password in: {output}");
        assert!(
            !output.contains("wrong-password-123"),
            "password in: {output}"
        );
        assert!(!output.contains(&token), "token in: {output}");
    }
    tf_taskfarm_free(tf);
}

/// Every error class, with `TASKFARM_LOG=debug`: neither the password nor the
/// token shows up on stderr (the tool prints the library's message there too).
#[test]
fn no_error_class_shows_a_secret_in_the_debug_log() {
    use common::fault_server::{token_ok, Action, FaultServer};
    use serde_json::json;
    use std::time::Duration;

    const TOKEN: &str = "tok-SECRET-0123456789";
    const PASSWORD: &str = "pw-SECRET-9876543210";
    const RUN: &str = "0123456789abcdef0123456789abcdef";
    let faults: Vec<(&str, Action)> = vec![
        ("401", Action::text(401, "Unauthorized Access")),
        ("404", Action::html(404, "<h1>Not Found</h1>")),
        ("500", Action::html(500, "<h1>Internal Server Error</h1>")),
        ("503", Action::text(503, "down")),
        (
            "invalid JSON",
            Action::raw(200, "application/json", "{oops"),
        ),
        ("missing field", Action::json(200, &json!({"id": 1}))),
        (
            "too large",
            Action::raw(200, "application/json", vec![b' '; 9 * 1024 * 1024]),
        ),
        (
            "slow",
            Action::json(200, &json!({})).delayed(Duration::from_secs(3)),
        ),
        (
            "dropped",
            Action::CloseMidBody {
                status: 200,
                declared_len: 500,
                sent: b"{\"id\"".to_vec(),
            },
        ),
    ];
    for (name, fault) in faults {
        let server = FaultServer::start(move |req, _| {
            if req.path == "/api/token" {
                token_ok(TOKEN)
            } else {
                fault.clone()
            }
        });
        let output = Command::new(env!("CARGO_BIN_EXE_taskfarm"))
            .args(["info", RUN])
            .env("TASKFARM_URL", server.url())
            .env("TASKFARM_USER", "alice")
            .env("TASKFARM_PASSWORD", PASSWORD)
            .env("TASKFARM_LOG", "debug")
            .env("TASKFARM_RETRIES", "1")
            .env("TASKFARM_BACKOFF", "0")
            .env("TASKFARM_TIMEOUT", "1")
            .output()
            .expect("the taskfarm tool runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains("taskfarm: GET runs/"),
            "{name}: no request line: {stderr}"
        );
        assert!(
            !stderr.contains(TOKEN) && !stderr.contains(PASSWORD),
            "{name}: a secret in {stderr}"
        );
    }
    // And a dead server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_taskfarm"))
        .args(["info", RUN])
        .env("TASKFARM_URL", format!("http://127.0.0.1:{port}/api/"))
        .env("TASKFARM_USER", "alice")
        .env("TASKFARM_PASSWORD", PASSWORD)
        .env("TASKFARM_LOG", "debug")
        .env("TASKFARM_RETRIES", "1")
        .env("TASKFARM_BACKOFF", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GET token -> failed"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}
