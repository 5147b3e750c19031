//! A URL whose port or host cannot be read as written is refused before
//! anything is sent, through `url_base`, `TASKFARM_URL` and the `taskfarm`
//! tool alike (a port like `:5OOO` used to become the scheme's port 80, and
//! the password went there).
//!
//! Whatever a request's destination, it would go through the proxy:
//! `http_proxy` and `https_proxy` name a listener on loopback that counts
//! connections and refuses each with 403. A good URL reaches it (the check
//! can fail); no bad one does. The environment is process-wide, so this
//! binary holds a single test.
//!
//! A host name that does not exist (under `.invalid`, which no DNS has,
//! RFC 6761) fails at once, with the default 10 retries, for the server and
//! for a proxy; a resolver that cannot answer now (`EAI_AGAIN`: the tool run
//! in a network namespace of its own, `unshare -n`, where no DNS server can
//! be reached) is retried, and each retry says why.

mod common;

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::c_abi::last_error;
use taskfarm_worker::ffi::run_list::tf_runs_json;
use taskfarm_worker::ffi::status::tf_status::*;
use taskfarm_worker::ffi::strings::tf_string_free;
use taskfarm_worker::ffi::taskfarm::{tf_taskfarm, tf_taskfarm_free, tf_taskfarm_open};

const USER: &str = "alice";
const PASSWORD: &str = "PASSWORDXYZ";
const RUN: &str = "5f0c6a2e9b8d4e1fa3c7b2d90e4f6a81";

/// A proxy on loopback that counts connections and refuses every request.
fn counting_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, count)
}

/// `tf_taskfarm_open` and `tf_runs_json` with `url` (NULL: `TASKFARM_URL`).
fn through_the_c_api(url: Option<&str>) -> Vec<(&'static str, i32, String)> {
    let (user, password, run) = (
        CString::new(USER).unwrap(),
        CString::new(PASSWORD).unwrap(),
        CString::new(RUN).unwrap(),
    );
    let url = url.map(|u| CString::new(u).unwrap());
    let url_ptr = url.as_ref().map_or(ptr::null(), |u| u.as_ptr());
    let mut tf: *mut tf_taskfarm = ptr::null_mut();
    let opened = tf_taskfarm_open(
        user.as_ptr(),
        password.as_ptr(),
        url_ptr,
        run.as_ptr(),
        &mut tf,
    );
    let open_message = last_error();
    tf_taskfarm_free(tf);
    let mut json = ptr::null_mut();
    let listed = tf_runs_json(user.as_ptr(), password.as_ptr(), url_ptr, &mut json);
    let runs_message = last_error();
    tf_string_free(json);
    vec![
        ("tf_taskfarm_open", opened as i32, open_message),
        ("tf_runs_json", listed as i32, runs_message),
    ]
}

/// `taskfarm -l` with `-b url`, or with `TASKFARM_URL=url` when `by_env`.
fn through_the_tool(url: &str, by_env: bool) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
    command.args(["-u", USER, "-p", PASSWORD]);
    if by_env {
        command.env("TASKFARM_URL", url);
    } else {
        command.args(["-b", url]);
    }
    let output = command.arg("-l").output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_ports_and_hosts_are_refused_before_anything_is_sent() {
    let (proxy, connections) = counting_proxy();
    // SAFETY (Rust 2024 rules): no other thread reads the environment here.
    for name in ["no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"] {
        std::env::remove_var(name);
    }
    std::env::set_var("http_proxy", &proxy);
    std::env::set_var("https_proxy", &proxy);
    std::env::set_var("TASKFARM_RETRIES", "0");
    std::env::set_var("TASKFARM_TIMEOUT", "20");

    // A good URL reaches the proxy: one connection per call.
    std::env::remove_var("TASKFARM_URL");
    for (function, status, message) in through_the_c_api(Some("http://127.0.0.1:5000/api/")) {
        assert_eq!(status, TF_ERR_CONNECTION as i32, "{function}: {message}");
        assert!(message.contains("proxy"), "{function}: {message}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    let (code, stderr) = through_the_tool("http://127.0.0.1:5000/api/", false);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(connections.load(Ordering::SeqCst), 3);

    let started = Instant::now();
    for (url, why) in [
        ("http://127.0.0.1:5OOO/api/", "has port \"5OOO\""),
        ("http://127.0.0.1:abc/api/", "has port \"abc\""),
        ("http://127.0.0.1:70000/api/", "has port \"70000\""),
        ("http://127.0.0.1:65536/api/", "has port \"65536\""),
        ("http://127.0.0.1:99999/api/", "has port \"99999\""),
        ("http://127.0.0.1:-1/api/", "has port \"-1\""),
        ("http://127.0.0.1:0/api/", "has port \"0\""),
        ("http://127.0.0.1:+5000/api/", "has port \"+5000\""),
        ("http://127.0.0.1:/api/", "without a port"),
        ("https://127.0.0.1:5OOO/api/", "has port \"5OOO\""),
        ("http://[::1]5000/api/", "after the IPv6 address"),
        ("http://127.1:5000/api/", "not an IPv4 address"),
        ("http://:5000/api/", "has no host"),
    ] {
        for (function, status, message) in through_the_c_api(Some(url)) {
            assert_eq!(
                status, TF_ERR_INVALID_ARGUMENT as i32,
                "{function} {url}: {message}"
            );
            assert!(message.contains(why), "{function} {url}: {message}");
        }
        std::env::set_var("TASKFARM_URL", url);
        for (function, status, message) in through_the_c_api(None) {
            assert_eq!(
                status, TF_ERR_INVALID_ARGUMENT as i32,
                "{function} {url}: {message}"
            );
            assert!(
                message.contains(why),
                "{function} TASKFARM_URL={url}: {message}"
            );
        }
        std::env::remove_var("TASKFARM_URL");
        for by_env in [false, true] {
            let (code, stderr) = through_the_tool(url, by_env);
            assert_eq!(code, Some(2), "{url} (by env: {by_env}): {stderr}");
            assert!(stderr.contains(why), "{url}: {stderr}");
            assert!(!stderr.contains(PASSWORD), "{stderr}");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3, "{url} was sent");
    }
    assert!(started.elapsed() < Duration::from_secs(120));

    // A proxy URL with such a port is refused too: ureq would go to the
    // proxy host's port 80 with the proxy's password.
    std::env::set_var("http_proxy", "http://u:proxypw@127.0.0.1:3l28");
    for (function, status, message) in through_the_c_api(Some("http://127.0.0.1:5000/api/")) {
        assert_eq!(
            status, TF_ERR_INVALID_ARGUMENT as i32,
            "{function}: {message}"
        );
        assert!(message.contains("the proxy in http_proxy"), "{message}");
        assert!(!message.contains("proxypw"), "{message}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);

    // A name that does not exist: no retry series (10 retries would wait
    // 273 s), for the server and for a proxy.
    std::env::remove_var("TASKFARM_RETRIES");
    std::env::remove_var("TASKFARM_BACKOFF");
    std::env::remove_var("http_proxy");
    std::env::remove_var("https_proxy");
    let started = Instant::now();
    for (function, status, message) in through_the_c_api(Some("http://locahost.invalid:5000/api/"))
    {
        assert_eq!(status, TF_ERR_CONNECTION as i32, "{function}: {message}");
        assert!(
            message.contains(
                "GET token to http://locahost.invalid:5000/api/: host not found: \
                 the name locahost.invalid does not exist ("
            ),
            "{function}: {message}"
        );
        assert!(!message.contains("attempts"), "{function}: {message}");
    }
    let (code, stderr) = through_the_tool("http://locahost.invalid:5000/api/", false);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("retry"), "no retry: {stderr}");
    std::env::set_var("http_proxy", "http://u:proxypw@squid.invalid:3128");
    for (function, status, message) in through_the_c_api(Some("http://127.0.0.1:5000/api/")) {
        assert_eq!(status, TF_ERR_CONNECTION as i32, "{function}: {message}");
        assert!(
            message.contains(
                "host not found: the name squid.invalid of the proxy squid.invalid:3128 \
                 (from http_proxy) does not exist"
            ),
            "{function}: {message}"
        );
        assert!(!message.contains("proxypw"), "{message}");
    }
    std::env::remove_var("http_proxy");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}: retried",
        started.elapsed()
    );

    // A resolver that cannot answer now is retried: in a network namespace
    // of its own no DNS server answers (EAI_AGAIN).
    let output = Command::new("unshare")
        .args(["--net", "--", env!("CARGO_BIN_EXE_taskfarm")])
        .args([
            "-u",
            USER,
            "-p",
            PASSWORD,
            "-b",
            "http://locahost.invalid:5000/api/",
            "-l",
        ])
        .env("TASKFARM_RETRIES", "2")
        .env("TASKFARM_BACKOFF", "0.01")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let retries: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cannot look up the name locahost.invalid ("))
        .collect();
    assert_eq!(retries.len(), 3, "two retry lines and the error: {stderr}");
    assert!(stderr.contains("(after 3 attempts)"), "{stderr}");
}
