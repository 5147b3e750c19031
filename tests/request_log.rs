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
