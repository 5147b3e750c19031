//! The proxy variables, end to end: which connections go through a proxy and
//! which go directly, as the Python client (requests) decides it.
//!
//! A fake proxy on loopback records each request line it gets and refuses it
//! with 403; the fault server answers `GET token` for the direct cases. The
//! environment is process-wide, so this binary holds a single test.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use common::fault_server::{token_ok, FaultServer};
use taskfarm_worker::internal::error::ErrorKind;
use taskfarm_worker::internal::http::transport::Connection;
use taskfarm_worker::internal::settings::Settings;

const PROXY_VARIABLES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A proxy that refuses everything and remembers the request lines.
fn refusing_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            log.lock()
                .unwrap()
                .push(head.lines().next().unwrap_or("").to_owned());
            let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, seen)
}

fn open(server: &FaultServer) -> Result<Connection, taskfarm_worker::internal::error::Error> {
    let mut settings = Settings::resolve(Some("user"), Some("pw"), Some(&server.url())).unwrap();
    settings.retries = 0;
    Connection::open(&settings)
}

fn set_only(vars: &[(&str, &str)]) {
    // SAFETY (Rust 2024 rules): this binary runs no other thread that reads
    // the environment while it is changed (the servers' threads do not).
    for name in PROXY_VARIABLES {
        std::env::remove_var(name);
    }
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
}

#[test]
fn proxy_variables_are_read_as_the_python_client_reads_them() {
    let server = FaultServer::start(|_, _| token_ok("t0k"));
    let (proxy, seen) = refusing_proxy();
    let server_authority = server.addr().to_string();

    set_only(&[]);
    open(&server).expect("no proxy variable: direct");

    set_only(&[("https_proxy", &proxy), ("HTTPS_PROXY", &proxy)]);
    open(&server).expect("https_proxy does not apply to an http:// server");
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );

    set_only(&[("http_proxy", &proxy)]);
    let error = open(&server).expect_err("through the refusing proxy");
    assert_eq!(error.kind(), ErrorKind::Connection);
    assert!(
        error.message().contains("proxy would not open a tunnel")
            && error.message().contains("403")
            && error.message().contains("no_proxy"),
        "{}",
        error.message()
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![format!("CONNECT {server_authority} HTTP/1.1")],
        "one attempt: a refusal is not retried"
    );

    for no_proxy in ["127.0.0.1", "127.0.0.0/8", "*", &server_authority] {
        set_only(&[("http_proxy", &proxy), ("no_proxy", no_proxy)]);
        open(&server).unwrap_or_else(|e| panic!("no_proxy={no_proxy}: {}", e.message()));
    }
    set_only(&[("HTTP_PROXY", &proxy), ("NO_PROXY", "127.0.0.1")]);
    open(&server).expect("upper-case names");

    set_only(&[("ALL_PROXY", &proxy)]);
    assert!(open(&server).is_err(), "all_proxy is the fallback");
    assert_eq!(seen.lock().unwrap().len(), 2);

    set_only(&[("http_proxy", "http://user:s3cret@[::bad")]);
    let error = open(&server).expect_err("an unusable proxy URL");
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert!(
        error.message().contains("http_proxy"),
        "{}",
        error.message()
    );
    assert!(!error.message().contains("s3cret"), "{}", error.message());
    assert_eq!(seen.lock().unwrap().len(), 2, "nothing sent anywhere");

    set_only(&[]);
    assert_eq!(server.count("GET", "/api/token"), 7, "the direct opens");
}
