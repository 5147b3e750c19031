//! Hostile input against the scripted fault server: a server that echoes
//! the credentials back, a user name Basic authentication cannot carry, a
//! port that would wrap, an answer head over ureq's limit, a token too big to
//! send, CA files that are not files, and server strings carrying terminal
//! controls (`taskfarm list`, `info`, `create`, `token`). Every test checks what reached the
//! listening side, not only the status: bad input sends nothing.
//!
//! Ports that fall back to the scheme's port (`:5OOO` → 80) are checked in
//! `tests/bad_urls.rs`, where a proxy catches whatever would be sent.
//!
//! `TASKFARM_RETRIES=2`, `TASKFARM_BACKOFF=0` and `TASKFARM_TIMEOUT=20` are
//! set once for the binary before any handle exists (see `setup`); URLs and
//! credentials are always passed explicitly.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use common::c_abi::{c, last_error};
use common::fault_server::*;
use serde_json::json;
use taskfarm_worker::ffi::status::tf_status::{self, *};
use taskfarm_worker::ffi::taskfarm::{tf_taskfarm, tf_taskfarm_free, tf_taskfarm_open};
use taskfarm_worker::ffi::worker::{tf_worker, tf_worker_free, tf_worker_new};
use taskfarm_worker::internal::http::credentials::MAX_TOKEN_BYTES;

const RUN: &str = "5f0c6a2e9b8d4e1fa3c7b2d90e4f6a81";
const USER: &str = "alice";
const PASSWORD: &str = "PASSWORDXYZ-hostile-4417";
const TOKEN: &str = "tokHOSTILE.5521-abcdefghijklmnopqrstuvwxyz";

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("TASKFARM_RETRIES", "2");
        std::env::set_var("TASKFARM_BACKOFF", "0");
        std::env::set_var("TASKFARM_TIMEOUT", "20");
    });
}

fn open(user: &str, url: &str) -> (tf_status, String) {
    let mut tf: *mut tf_taskfarm = ptr::null_mut();
    let status = tf_taskfarm_open(
        c(user).as_ptr(),
        c(PASSWORD).as_ptr(),
        c(url).as_ptr(),
        c(RUN).as_ptr(),
        &mut tf,
    );
    let message = last_error();
    tf_taskfarm_free(tf);
    (status, message)
}

/// Every form of the credentials and the token an echo could carry: plain,
/// decoded Basic, and the base64 of each `Authorization` header the server
/// received.
fn secrets(server: &FaultServer) -> Vec<String> {
    let mut all = vec![
        PASSWORD.to_owned(),
        format!("{USER}:{PASSWORD}"),
        TOKEN.to_owned(),
    ];
    for request in server.requests() {
        if let Some(value) = request.header("authorization") {
            let encoded = value.strip_prefix("Basic ").expect("Basic authorization");
            all.push(encoded.trim_end_matches('=').to_owned());
        }
    }
    all
}

/// Fails when `text` holds any 8 consecutive characters of a secret: not
/// even a part of one may survive a cut.
fn assert_no_secret(text: &str, secrets: &[String]) {
    for secret in secrets {
        for start in 0..=secret.len().saturating_sub(8) {
            let piece = &secret[start..(start + 8).min(secret.len())];
            assert!(
                !text.contains(piece),
                "{piece:?} of a secret in the message: {text}"
            );
        }
    }
}

/// What a debug page shows of the request: the header as sent, decoded, and
/// both again as JSON and HTML would escape them.
fn echo(request: &RecordedRequest) -> String {
    let header = request.header("authorization").unwrap_or("").to_owned();
    let decoded = request
        .basic_auth_user()
        .map(|(u, p)| format!("{u}:{p}"))
        .unwrap_or_default();
    format!(
        "Authorization: {header} (decoded {decoded}); as JSON {}; as HTML <pre>{}</pre>",
        json!({ "authorization": header, "decoded": decoded }),
        decoded.replace('&', "&amp;").replace('<', "&lt;")
    )
}

/// A server that answers the token, then `answer` for the rest.
fn serve(answer: impl Fn(&RecordedRequest) -> Action + Send + Sync + 'static) -> FaultServer {
    setup();
    FaultServer::start(move |request, _| {
        if request.path == "/api/token" {
            return if request.basic_auth_user() == Some((USER.to_owned(), PASSWORD.to_owned())) {
                token_ok(TOKEN)
            } else {
                Action::text(401, "Unauthorized Access")
            };
        }
        answer(request)
    })
}

#[test]
fn an_echoed_password_is_removed_from_the_message() {
    setup();
    for status in [401, 500, 400] {
        let server = FaultServer::start(move |request, _| Action::html(status, &echo(request)));
        let (got, message) = open(USER, &server.url());
        assert_ne!(got, TF_OK);
        // The server did get the credentials, and echoed them.
        let sent = server.requests();
        assert!(
            sent.iter()
                .all(|r| r.basic_auth_user() == Some((USER.to_owned(), PASSWORD.to_owned()))),
            "{sent:?}"
        );
        assert!(message.contains("***"), "HTTP {status}: {message}");
        assert!(message.contains("Authorization: Basic"), "{message}");
        assert_no_secret(&message, &secrets(&server));
    }
}

#[test]
fn an_echoed_token_is_removed_from_the_message() {
    // 400 and 500 to GET runs/U (500 makes the library check the token
    // once); a 404 says "no run UUID on URL" without quoting the body.
    for status in [400, 404, 500] {
        let server = serve(move |request| Action::text(status, &echo(request)));
        let (got, message) = open(USER, &server.url());
        assert_eq!(
            got,
            if status == 404 {
                TF_ERR_NOT_FOUND
            } else {
                TF_ERR_HTTP
            },
            "{message}"
        );
        let runs = server
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/api/runs/"))
            .collect::<Vec<_>>();
        assert!(!runs.is_empty());
        assert!(runs
            .iter()
            .all(|r| r.basic_auth_user() == Some((TOKEN.to_owned(), String::new()))));
        if status == 404 {
            assert!(message.contains("no run "), "{message}");
        } else {
            assert!(message.contains("***"), "{message}");
        }
        assert_no_secret(&message, &secrets(&server));
    }
}

#[test]
fn a_secret_at_a_cut_of_a_long_body_leaves_no_part_behind() {
    // The excerpt shows 300 characters of the body's text, and the text is
    // made of the first 64 Ki characters: the token straddles either cut.
    for padding in ["x".repeat(285), " ".repeat(64 * 1024 - 12)] {
        let server = serve(move |request| {
            let decoded = request.basic_auth_user().unwrap().0;
            Action::text(404, &format!("{padding}{decoded} {}", "y".repeat(400)))
        });
        let (got, message) = open(USER, &server.url());
        assert_eq!(got, TF_ERR_NOT_FOUND, "{message}");
        assert_no_secret(&message, &secrets(&server));
    }
}

#[test]
fn an_echo_in_a_quoted_field_is_removed_too() {
    // POST worker answers a uuid other than the one sent: the message quotes it.
    let server = serve(|request| match request.path.as_str() {
        "/api/worker" => Action::json(201, &json!({"uuid": echo(request), "id": 1})),
        _ => Action::json(
            200,
            &json!({"id": 1, "uuid": RUN, "numTasks": 10, "percentDone": 0.0,
                    "numWaiting": 10, "numDone": 0, "numComputing": 0}),
        ),
    });
    let mut worker: *mut tf_worker = ptr::null_mut();
    let got = tf_worker_new(
        c(USER).as_ptr(),
        c(PASSWORD).as_ptr(),
        c(&server.url()).as_ptr(),
        c(RUN).as_ptr(),
        &mut worker,
    );
    let message = last_error();
    tf_worker_free(worker);
    assert_eq!(got, TF_ERR_PROTOCOL, "{message}");
    assert!(message.contains("POST worker registered uuid"), "{message}");
    assert!(message.contains("***"), "{message}");
    assert_no_secret(&message, &secrets(&server));
}

#[test]
fn the_tool_prints_no_echoed_secret_nor_logs_one() {
    let server = FaultServer::start(|request, _| Action::text(401, &echo(request)));
    let output = Command::new(env!("CARGO_BIN_EXE_taskfarm"))
        .args(["-b", &server.url(), "-u", USER, "-p", PASSWORD, "-l"])
        .env("TASKFARM_LOG", "debug")
        .env("TASKFARM_RETRIES", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert_eq!(server.count("GET", "/api/token"), 1);
    assert!(stderr.contains("GET token -> 401"), "{stderr}");
    assert!(stderr.contains("***"), "{stderr}");
    assert_no_secret(&stderr, &secrets(&server));
    assert_no_secret(&String::from_utf8_lossy(&output.stdout), &secrets(&server));
}

#[test]
fn a_user_name_with_a_colon_sends_nothing_and_hides_what_follows_it() {
    setup();
    let server = FaultServer::start(|_, _| token_ok(TOKEN));
    // The curl -u habit: user:password typed as the user name.
    let typed = "alice:S3cretPassw0rd";
    let (got, message) = open(typed, &server.url());
    assert_eq!(got, TF_ERR_INVALID_ARGUMENT, "{message}");
    assert!(
        message.contains("\"alice\" is followed by a ':'"),
        "{message}"
    );
    assert!(!message.contains("S3cret"), "{message}");
    // The command line, with and without -p (without, it would prompt).
    for password in [Some(PASSWORD), None] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
        command.args(["-b", &server.url(), "-u", typed, "-l"]);
        command
            .env_remove("TASKFARM_PASSWORD")
            .env_remove("TASKFARM_TOKEN");
        if let Some(password) = password {
            command.args(["-p", password]);
        }
        let output = command.stdin(std::process::Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("Basic authentication cannot carry"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("S3cret") && !stdout.contains("S3cret"),
            "{stderr}{stdout}"
        );
    }
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_port_past_65535_does_not_wrap_to_another() {
    setup();
    let server = FaultServer::start(|_, _| token_ok(TOKEN));
    let port = u32::from(server.addr().port()) + 65536;
    let (got, message) = open(USER, &format!("http://127.0.0.1:{port}/api/"));
    assert_eq!(got, TF_ERR_INVALID_ARGUMENT, "{message}");
    assert!(
        message.contains("a port is a number in 1..65535"),
        "{message}"
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn an_answer_head_over_the_limit_is_a_protocol_error_not_retried() {
    let server = serve(|_| {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Padding: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', 70 * 1024));
        head.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\n{}");
        Action::RawAnswer(head)
    });
    let (got, message) = open(USER, &server.url());
    assert_eq!(got, TF_ERR_PROTOCOL, "{message}");
    assert!(
        message.contains("the answer's head is larger than the limit of 65536 bytes"),
        "{message}"
    );
    // A GET, yet not repeated: the same server would answer the same.
    assert_eq!(server.count("GET", &format!("/api/runs/{RUN}")), 1);

    // The tool says it is the server's fault (exit 6), not the network's.
    let (code, stderr) = list_runs(&server);
    assert_eq!(code, Some(6), "{stderr}");
    assert!(stderr.contains("the answer's head is larger"), "{stderr}");
    assert_eq!(server.count("GET", "/api/runs"), 1);
}

/// `taskfarm -l` against the server, with the default retries.
fn list_runs(server: &FaultServer) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_taskfarm"))
        .args(["-b", &server.url(), "-u", USER, "-p", PASSWORD, "-l"])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_token_over_the_limit_is_refused_when_it_arrives() {
    setup();
    let huge = "t".repeat(MAX_TOKEN_BYTES + 1);
    let server = FaultServer::start(move |_, _| token_ok(&huge));
    let (got, message) = open(USER, &server.url());
    assert_eq!(got, TF_ERR_PROTOCOL, "{message}");
    assert!(
        message.contains(&format!(
            "a token of {} bytes, more than the {MAX_TOKEN_BYTES} bytes accepted",
            MAX_TOKEN_BYTES + 1
        )),
        "{message}"
    );
    assert!(!message.contains("ttttt"), "{message}");
    // Only the token was asked for; nothing was sent with it.
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
    let (code, stderr) = list_runs(&server);
    assert_eq!(code, Some(6), "{stderr}");
    assert!(
        stderr.contains("more than the 4096 bytes accepted"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());

    // A token of exactly the limit is used.
    let largest = "u".repeat(MAX_TOKEN_BYTES);
    let expected = largest.clone();
    let server = FaultServer::start(move |request, _| {
        if request.path == "/api/token" {
            token_ok(&largest)
        } else {
            Action::json(
                200,
                &json!({"id": 1, "uuid": RUN, "numTasks": 10, "percentDone": 0.0,
                        "numWaiting": 10, "numDone": 0, "numComputing": 0}),
            )
        }
    });
    let (got, message) = open(USER, &server.url());
    assert_eq!(got, TF_OK, "{message}");
    let runs = server.requests();
    assert_eq!(
        runs.last().and_then(|r| r.basic_auth_user()),
        Some((expected, String::new()))
    );
}

/// A listener that counts connections and never answers.
fn silent_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, count)
}

/// `taskfarm -l` against `https://127.0.0.1:port/api/` with
/// `TASKFARM_CA_FILE=ca_file`, in at most 1.5 GiB of address space (reading
/// `/dev/zero` without bound cannot take the machine down) and 120 s.
fn list_with_ca_file(port: u16, ca_file: Option<&Path>) -> (Option<i32>, String, Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
    command
        .args(["-b", &format!("https://127.0.0.1:{port}/api/")])
        .args(["-u", USER, "-p", PASSWORD, "-l"])
        .env("TASKFARM_RETRIES", "0")
        .env("TASKFARM_TIMEOUT", "2")
        .env_remove("TASKFARM_CA_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(path) = ca_file {
        command.env("TASKFARM_CA_FILE", path);
    }
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1536 << 20,
                rlim_max: 1536 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("taskfarm with TASKFARM_CA_FILE={ca_file:?} still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (code, stderr, started.elapsed())
}

#[test]
fn a_ca_file_that_is_not_a_sane_file_is_refused_before_connecting() {
    let dir = std::env::temp_dir().join(format!("tf-hostile-ca-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo.pem");
    let c_fifo = c(fifo.to_str().unwrap());
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    let huge = dir.join("huge.pem");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let (port, connections) = silent_listener();

    // The listener does see a client that gets that far: without a CA file
    // the tool connects, and its TLS handshake times out.
    let (code, stderr, _) = list_with_ca_file(port, None);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(connections.load(Ordering::SeqCst), 1);

    let cases: [(PathBuf, &str); 4] = [
        (PathBuf::from("/dev/zero"), "is not a regular file"),
        (fifo, "is not a regular file"),
        (dir.clone(), "is a directory"),
        (huge, "is 1073741824 bytes, more than the 4194304 bytes"),
    ];
    for (path, why) in cases {
        let (code, stderr, took) = list_with_ca_file(port, Some(&path));
        assert_eq!(code, Some(2), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(&format!("TASKFARM_CA_FILE {}: {why}", path.display())),
            "{stderr}"
        );
        // At once (the bound is for a loaded machine): nothing was read
        // from /dev/zero or waited for on the FIFO.
        assert!(took < Duration::from_secs(60), "{took:?}");
        assert_eq!(connections.load(Ordering::SeqCst), 1, "{}", path.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A server string carrying what a terminal obeys: an escape sequence (ESC
/// and the 8-bit CSI), a carriage return that would overwrite the line, a
/// line feed that would forge one, a bidirectional override.
const TERMINAL_TRAP: &str = "run\u{1b}]0;owned\u{7}\u{1b}[2J\rFAKE\nid 9 \u{9b}31m\u{202e}evil";
/// [`TERMINAL_TRAP`] as `taskfarm` writes it out: visible, not obeyed.
const TERMINAL_TRAP_WRITTEN_OUT: &str =
    r"run\u{1b}]0;owned\u{7}\u{1b}[2J\u{d}FAKE\u{a}id 9 \u{9b}31m\u{202e}evil";

/// A fault server that gives out the token and answers every other request
/// with `status` and `body`.
fn server_answering(status: u16, body: serde_json::Value) -> FaultServer {
    FaultServer::start(move |request, _| {
        if request.path.ends_with("/token") {
            return token_ok(TOKEN);
        }
        Action::json(status, &body)
    })
}

/// `taskfarm -b URL -u USER -p PASSWORD ARGS` against `server`: its exit
/// status, stdout and stderr.
fn taskfarm_against(server: &FaultServer, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_taskfarm"))
        .args(["-b", &server.url(), "-u", USER, "-p", PASSWORD])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Fails when `text` holds a character a terminal would act on.
fn assert_no_terminal_control(text: &str, what: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
        .collect();
    assert!(
        bad.is_empty(),
        "{what} reaches the terminal with {bad:?}: {text:?}"
    );
}

#[test]
fn taskfarm_list_prints_a_servers_control_characters_visibly() {
    setup();
    let server = server_answering(
        200,
        json!({"data": [{"id": 1, "uuid": TERMINAL_TRAP, "numTasks": 3}]}),
    );
    // `list` (a table) and manageTF's `-l` (its lines).
    for (how, lines_expected) in [("list", 2), ("-l", 1)] {
        let (code, stdout, stderr) = taskfarm_against(&server, &[how]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_no_terminal_control(&stdout, "taskfarm -l");
        // One line per run (and the header): the LF did not forge a line.
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), lines_expected, "{how}: {stdout}");
        // Written out, not dropped: the reader sees what the server sent.
        assert!(stdout.contains(TERMINAL_TRAP_WRITTEN_OUT), "{stdout}");
    }
}

#[test]
fn taskfarm_info_prints_a_servers_control_characters_visibly() {
    setup();
    let server = server_answering(
        200,
        json!({"id": 1, "uuid": TERMINAL_TRAP, "numTasks": 3, "numWaiting": 1,
            "numComputing": 1, "numDone": 1, "percentDone": 33.3}),
    );
    // `info` (a table) and manageTF's `-i` (one line).
    for (how, lines_expected) in [(&["info", RUN][..], 8), (&["-i", RUN][..], 1)] {
        let (code, stdout, stderr) = taskfarm_against(&server, how);
        assert_eq!(code, Some(0), "{how:?}: {stderr}");
        assert_no_terminal_control(&stdout, &format!("taskfarm {how:?}"));
        assert_eq!(stdout.lines().count(), lines_expected, "{how:?}: {stdout}");
        assert!(
            stdout.contains(TERMINAL_TRAP_WRITTEN_OUT),
            "{how:?}: {stdout}"
        );
    }
}

#[test]
fn taskfarm_create_shows_a_servers_control_characters_visibly() {
    setup();
    // The server answers the new run with a uuid that is no UUID: refused,
    // and the refusal shows what the server sent without obeying it.
    let server = server_answering(201, json!({"id": 1, "uuid": TERMINAL_TRAP, "numTasks": 3}));
    for how in [&["create", "3"][..], &["create", "3", "--json"][..]] {
        let (code, stdout, stderr) = taskfarm_against(&server, how);
        assert_ne!(code, Some(0), "{how:?}: {stdout}");
        assert_eq!(stdout, "", "{how:?}");
        assert_no_terminal_control(&stderr, &format!("taskfarm {how:?}"));
        assert!(stderr.contains("is not a UUID"), "{how:?}: {stderr}");
        assert!(stderr.contains("FAKE"), "{how:?}: {stderr}");
    }
}

#[test]
fn taskfarm_token_refuses_a_token_that_taskfarm_token_would_refuse() {
    setup();
    for (bad, kind) in [
        ("Q7x\u{1b}[2Jz9", "a control character"),
        ("Q7x z9", "white space"),
        ("Q7x\r\nz9", "white space"),
        ("Q7x\u{9b}z9", "a control character"),
        ("Q7xéz9", "a character that is not ASCII"),
    ] {
        let server = FaultServer::start(move |_, _| token_ok(bad));
        let (code, stdout, stderr) = taskfarm_against(&server, &["token"]);
        assert_eq!(code, Some(6), "{bad:?}: {stderr}");
        assert!(stdout.is_empty(), "{bad:?} printed: {stdout:?}");
        assert!(
            stderr.contains("a token that TASKFARM_TOKEN would refuse") && stderr.contains(kind),
            "{bad:?}: {stderr}"
        );
        assert_no_terminal_control(&stderr, "the token's error");
        // Never quoted: a token is a secret even when it is refused.
        assert!(!stderr.contains("Q7x"), "{stderr}");
    }
}

#[test]
fn a_short_password_leaves_the_librarys_words_alone_and_is_removed_from_an_echo() {
    setup();
    // The password `server`, a word of the library's own messages; the
    // server's answer echoes it (issue 26 point 13).
    let server = FaultServer::start(|_, _| {
        Action::text(401, "refused: the password server is wrong (server)")
    });
    let mut tf: *mut tf_taskfarm = ptr::null_mut();
    let status = tf_taskfarm_open(
        c(USER).as_ptr(),
        c("server").as_ptr(),
        c(&server.url()).as_ptr(),
        c(RUN).as_ptr(),
        &mut tf,
    );
    let message = last_error();
    tf_taskfarm_free(tf);
    assert_eq!(status, TF_ERR_AUTH, "{message}");
    // The library's words read naturally ...
    assert!(
        message.contains("(the server refused user \"alice\" and its password)"),
        "{message}"
    );
    // ... and the echo does not show the password.
    assert!(
        message.contains("refused: the password *** is wrong (***)"),
        "{message}"
    );
    assert!(!message.contains("password server"), "{message}");
}
