//! The command-line tool `taskfarm` as a new user meets it (issue 19): what
//! it says while it retries, the tasks a fresh run has not started, slips of
//! the command line, messages that name the real cause, and counts from a
//! confused server. The real server where the server's behaviour matters, the
//! scripted fault server (or a bare socket) for the failures it never makes.

mod common;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::fault_server::{token_ok, Action, FaultServer, RecordedRequest};
use common::server::TaskfarmServer;
use serde_json::{json, Value};
use taskfarm_worker::internal::settings::TokenSource;
use taskfarm_worker::internal::{ErrorKind, Run, Settings};

const EXIT_USAGE: i32 = 2;
const EXIT_CONNECTION: i32 = 3;
const EXIT_NOT_FOUND: i32 = 5;
const EXIT_SERVER: i32 = 6;

const RUN: &str = "0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "Pa55word-of-the-test";
/// Nothing listens on port 1 of the loopback address.
const DEAD_URL: &str = "http://127.0.0.1:1/api/";

/// What one run of the tool gave.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Exit status `code`, nothing on stdout, the last stderr line the
    /// failure, no password anywhere.
    fn fails(self, code: i32) -> Out {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        assert!(
            self.stderr.lines().all(|l| l.starts_with("taskfarm: ")),
            "{self:?}"
        );
        for bad in ["panicked", "backtrace", PASSWORD] {
            assert!(!self.stderr.contains(bad), "{bad:?} in {self:?}");
        }
        self
    }

    /// The failure's one line (the last on stderr).
    fn last_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }
}

/// The tool with credentials for `url`, no other `TASKFARM_*` or proxy
/// variable of the test's environment, no terminal on stdin.
fn tool(url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy().to_ascii_lowercase();
        if name_text.starts_with("taskfarm_") || name_text.ends_with("_proxy") {
            command.env_remove(name);
        }
    }
    command
        .env("TASKFARM_URL", url)
        .env("TASKFARM_USER", "alice")
        .env("TASKFARM_PASSWORD", PASSWORD)
        .stdin(Stdio::null());
    command
}

fn real(server: &TaskfarmServer) -> Command {
    let mut command = tool(&server.url);
    command
        .env("TASKFARM_USER", &server.user)
        .env("TASKFARM_PASSWORD", &server.password);
    command
}

fn run(mut command: Command, args: &[&str]) -> Out {
    let output = command.args(args).output().expect("taskfarm runs");
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

fn is_run(request: &RecordedRequest, query: &str) -> bool {
    request.method == "GET" && request.path == format!("/api/runs/{RUN}") && request.query == query
}

/// A fault server that knows run [`RUN`] of `num_tasks` tasks and answers
/// the n-th `GET runs/RUN?info=` (0-based) with what `status` gives.
fn run_server(
    num_tasks: i64,
    status: impl Fn(usize) -> Action + Send + Sync + 'static,
) -> FaultServer {
    let polls = AtomicUsize::new(0);
    FaultServer::start(move |request, _| {
        if request.path == "/api/token" {
            token_ok("tok")
        } else if is_run(request, "") {
            Action::json(200, &json!({"id": 1, "uuid": RUN, "numTasks": num_tasks}))
        } else if is_run(request, "info=") {
            status(polls.fetch_add(1, Ordering::SeqCst))
        } else {
            Action::empty(404)
        }
    })
}

fn counts(tasks: i64, waiting: i64, computing: i64, done: i64, percent: f64) -> Value {
    json!({"id": 1, "uuid": RUN, "numTasks": tasks, "numWaiting": waiting,
           "numComputing": computing, "numDone": done, "percentDone": percent})
}

// ------------------------------------------------------------- 1. retries

#[test]
fn the_commands_say_what_they_retry_and_give_up_sooner_than_workers() {
    // No TASKFARM_RETRIES: the commands' own budget of 4, each retry a line.
    let mut command = tool(DEAD_URL);
    command.env("TASKFARM_BACKOFF", "0");
    let out = run(command, &["list"]).fails(EXIT_CONNECTION);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{out:?}");
    for (n, line) in lines[..4].iter().enumerate() {
        assert!(
            line.starts_with(&format!(
                "taskfarm: cannot reach {DEAD_URL} (GET token: cannot connect"
            )) && line.ends_with(&format!("): retry {} of 4 in 0.0 s", n + 1)),
            "{line}"
        );
    }
    assert!(out.last_line().contains("(after 5 attempts)"), "{out:?}");

    // TASKFARM_RETRIES is obeyed by the commands too.
    let mut command = tool(DEAD_URL);
    command
        .env("TASKFARM_BACKOFF", "0")
        .env("TASKFARM_RETRIES", "2");
    let out = run(command, &["info", RUN]).fails(EXIT_CONNECTION);
    assert_eq!(out.stderr.lines().count(), 3, "{out:?}");
    assert!(out.stderr.contains("retry 2 of 2"), "{out:?}");

    // The library (workers) keeps the budget of the Python client.
    let settings = Settings::resolve_with(
        TokenSource::Environment,
        Some("a"),
        Some("b"),
        Some(DEAD_URL),
        &|_| None,
    )
    .unwrap();
    assert_eq!(settings.retries, 10);
}

#[test]
fn watch_says_connection_lost_while_it_retries_with_the_workers_budget() {
    // Polls 1 to 5 find the connection closed without an answer; poll 6
    // finds the run complete.
    let server = run_server(2, |n| match n {
        0 => Action::json(200, &counts(2, 0, 1, 0, 50.0)),
        1..=5 => Action::CloseWithoutAnswer,
        _ => Action::json(200, &counts(2, 0, 0, 2, 100.0)),
    });
    let mut command = tool(&server.url());
    command.env("TASKFARM_BACKOFF", "0");
    let out = run(command, &["watch", RUN, "-n", "0.05"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lost: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("taskfarm: connection lost, retrying (GET runs/"))
        .collect();
    // Five retries of a budget of 10: more than the commands' 4.
    assert_eq!(lost.len(), 5, "{out:?}");
    assert!(lost[4].ends_with("retry 5 of 10 in 0.0 s"), "{out:?}");
    // Then, once, that the connection is back: after the last lost line.
    let back: Vec<usize> = out
        .stderr
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("taskfarm: connection back after "))
        .map(|(i, _)| i)
        .collect();
    let last_lost = out.stderr.lines().position(|l| l == lost[4]).unwrap();
    assert_eq!(back.len(), 1, "{out:?}");
    assert!(back[0] > last_lost, "{out:?}");
    assert!(
        out.stdout.lines().last().unwrap().ends_with("complete"),
        "{out:?}"
    );

    // Opening the run is a command like the others: the short budget.
    let down = FaultServer::start(|request, _| {
        if request.path == "/api/token" {
            token_ok("tok")
        } else {
            Action::empty(503)
        }
    });
    let mut command = tool(&down.url());
    command.env("TASKFARM_BACKOFF", "0");
    let out = run(command, &["watch", RUN]).fails(EXIT_CONNECTION);
    assert!(out.stderr.contains("cannot reach"), "{out:?}");
    assert!(
        out.stderr
            .contains("answered HTTP 503 Service Unavailable): retry 4 of 4"),
        "{out:?}"
    );
    assert_eq!(down.count("GET", &format!("/api/runs/{RUN}")), 5);
}

// ----------------------------------------------------- 3. not started yet

#[test]
fn a_fresh_run_shows_its_tasks_as_not_started() {
    let server = TaskfarmServer::shared();
    let settings = Settings::resolve(
        Some(&server.user),
        Some(&server.password),
        Some(&server.url),
    )
    .unwrap();
    let fresh = Run::create(&settings, 30).unwrap();
    let uuid = fresh.uuid();

    let text = run(real(server), &["info", uuid]);
    assert_eq!(text.code, 0, "{text:?}");
    let rows: Vec<(&str, &str)> = text
        .stdout
        .lines()
        .map(|l| {
            l.rsplit_once("  ")
                .map(|(k, v)| (k.trim(), v.trim()))
                .unwrap()
        })
        .collect();
    for row in [("not started", "30"), ("waiting", "0"), ("tasks", "30")] {
        assert!(rows.contains(&row), "{row:?} in {text:?}");
    }

    let json_out = run(real(server), &["--json", "info", uuid]);
    let info: Value = serde_json::from_str(&json_out.stdout).unwrap();
    assert_eq!(info["numNotStarted"], 30, "{json_out:?}");
    assert_eq!(info["numWaiting"], 0, "{json_out:?}");
    // The manageTF spelling prints what manageTF prints (compared with the
    // real manageTF in tests/cli.rs): no new count.
    let manage = run(real(server), &[uuid, "-i"]);
    assert_eq!(
        manage.stdout,
        format!("{} {uuid} 30 (0,0,0) 0.0\n", info["id"]),
        "{manage:?}"
    );

    let help = run(tool(DEAD_URL), &["--help"]);
    for text in [
        "not started",
        "numNotStarted",
        "only once it",
        "handed out",
        "TASKFARM_RETRIES sets both",
        "connection lost, retrying",
    ] {
        assert!(help.stdout.contains(text), "{text:?} not in --help");
    }
    fresh.delete().unwrap();
}

// ------------------------------------------------------------ 4. slips

#[test]
fn a_mistyped_command_is_not_taken_for_a_uuid() {
    for (slip, hint) in [
        ("lst", "did you mean 'list'?"),
        ("inf", "did you mean 'info'?"),
        ("wtach", "did you mean 'watch'?"),
        (
            "frobnicate",
            "the commands are list, info, reset, delete, create, task, token, watch, reap, run, report, failed, \
             completions, manpage",
        ),
    ] {
        let out = run(tool(DEAD_URL), &[slip]).fails(EXIT_USAGE);
        assert_eq!(
            out.stderr,
            format!("taskfarm: unknown command '{slip}' ({hint}) (see 'taskfarm --help')\n")
        );
    }
    // A slip before a UUID (and options) is named too, not the UUID.
    let out = run(tool(DEAD_URL), &["-b", DEAD_URL, "infoo", RUN, "--json"]).fails(EXIT_USAGE);
    assert_eq!(
        out.stderr,
        "taskfarm: unknown command 'infoo' (did you mean 'info'?) (see 'taskfarm --help')\n"
    );
    // A command with one word too many is clap's message.
    let out = run(tool(DEAD_URL), &["info", RUN, "extra"]).fails(EXIT_USAGE);
    assert!(out.stderr.contains("'extra'"), "{out:?}");
    // A mistyped UUID is still a UUID error.
    let out = run(tool(DEAD_URL), &["0123-xyz", "-i"]).fails(EXIT_USAGE);
    assert!(out.stderr.contains("is not a UUID"), "{out:?}");
}

#[test]
fn schemes_are_case_insensitive() {
    let server = TaskfarmServer::shared();
    let upper = server.url.replacen("http://", "HTTP://", 1);
    let out = run(real(server), &["-b", &upper, "--json", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with('['), "{out:?}");
    let settings = Settings::resolve(Some("a"), Some("b"), Some("HttpS://h/api")).unwrap();
    assert_eq!(settings.base_url, "https://h/api/");
}

// ------------------------------------------------------- 5. messages

#[test]
fn a_refusing_proxy_is_named_and_its_password_is_not() {
    let mut command = tool("http://taskfarm.invalid:5000/api/");
    command
        .env("TASKFARM_RETRIES", "0")
        .env("http_proxy", "http://squid:Pr0xy-secret@127.0.0.1:1");
    let out = run(command, &["list"]).fails(EXIT_CONNECTION);
    assert!(
        out.stderr
            .contains("cannot connect to the proxy 127.0.0.1:1 (from http_proxy)"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("Pr0xy-secret"), "{out:?}");
}

const FLASK_404: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n\
<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n";

#[test]
fn a_404_for_a_run_says_no_such_run_not_flasks_page() {
    let server = FaultServer::start(|request, _| {
        if request.path == "/api/token" {
            token_ok("tok")
        } else {
            Action::html(404, FLASK_404)
        }
    });
    // The library, as a C worker with a typo in the run's UUID meets it.
    let settings = Settings::resolve(Some("a"), Some("b"), Some(&server.url())).unwrap();
    let error = Run::open(&settings, RUN).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(
        error.message(),
        format!(
            "no run {RUN} on {} (GET runs/{RUN} answered HTTP 404 Not Found)",
            server.url()
        )
    );
    // The tool says the same.
    let out = run(tool(&server.url()), &["info", RUN]).fails(EXIT_NOT_FOUND);
    assert_eq!(out.stderr, format!("taskfarm: {}\n", error.message()));
}

#[test]
fn a_redirect_shows_where_it_points_and_the_url_to_use() {
    let server = FaultServer::start(|request, _| Action::Redirect {
        status: if request.path == "/api/token" {
            302
        } else {
            307
        },
        location: format!("https://tf.example.org{}", request.path),
    });
    let out = run(tool(&server.url()), &["list"]).fails(EXIT_SERVER);
    assert_eq!(
        out.last_line(),
        "taskfarm: GET token answered HTTP 302 Found: the server redirects to \
         https://tf.example.org/api/token: use the URL https://tf.example.org/api/ instead"
    );
}

#[test]
fn https_to_a_plain_http_port_says_the_server_did_not_speak_tls() {
    // The real server answers the TLS greeting in HTTP.
    let server = TaskfarmServer::shared();
    let https = server.url.replacen("http://", "https://", 1);
    let mut command = real(server);
    command.env("TASKFARM_URL", &https);
    let out = run(command, &["list"]).fails(EXIT_CONNECTION);
    assert_eq!(out.stderr.lines().count(), 1, "not retried: {out:?}");
    assert!(
        out.stderr.contains("the server did not speak TLS")
            && out.stderr.contains(&format!("use {}", server.url)),
        "{out:?}"
    );

    // A server that hangs up on the TLS greeting but answers plain HTTP.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let plain_requests = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&plain_requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut first = [0u8; 1];
            if stream.read_exact(&mut first).is_err() {
                continue;
            }
            if first[0] == 0x16 {
                // A TLS handshake record: read it whole (so that closing
                // sends a FIN, not a reset), then hang up.
                let mut header = [0u8; 4];
                if stream.read_exact(&mut header).is_ok() {
                    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
                    let _ = stream.read_exact(&mut vec![0u8; length]);
                }
                continue;
            }
            let mut head = Vec::from(first);
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
                head.push(byte[0]);
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let url = format!("https://127.0.0.1:{port}/api/");
    let mut command = tool(&url);
    command.env("TASKFARM_RETRIES", "0");
    let out = run(command, &["list"]).fails(EXIT_CONNECTION);
    assert!(
        out.stderr.contains("the server did not speak TLS")
            && out
                .stderr
                .contains(&format!("use http://127.0.0.1:{port}/api/")),
        "{out:?}"
    );
    assert_eq!(plain_requests.load(Ordering::SeqCst), 1);
}

#[test]
fn retries_beyond_the_limit_get_one_message_and_bad_utf8_is_named() {
    for value in ["65535", "99999999999"] {
        let mut command = tool(DEAD_URL);
        command.env("TASKFARM_RETRIES", value);
        let out = run(command, &["list"]).fails(EXIT_USAGE);
        assert_eq!(
            out.stderr,
            format!(
                "taskfarm: TASKFARM_RETRIES=\"{value}\" is more than the limit of 1000 retries\n"
            )
        );
    }
    let mut command = tool(DEAD_URL);
    command.env("TASKFARM_USER", OsStr::from_bytes(b"al\xffce"));
    let out = run(command, &["list"]).fails(EXIT_USAGE);
    assert_eq!(
        out.stderr,
        "taskfarm: the environment variable TASKFARM_USER is not valid UTF-8\n"
    );
}

// ------------------------------------------------- 6. confused counts

#[test]
fn counts_no_run_can_have_are_a_protocol_error_and_never_complete() {
    for (bad, why) in [
        (counts(10, -1, 0, 0, 0.0), "numWaiting is -1"),
        (counts(10, 0, 0, 15, 100.0), "is 15, more than numTasks 10"),
        (counts(10, 0, 0, 10, 150.0), "percentDone is 150"),
    ] {
        let answer = bad.clone();
        let server = run_server(10, move |_| Action::json(200, &answer));
        for args in [
            vec!["info", RUN],
            vec!["--json", "info", RUN],
            vec![RUN, "-i"],
            vec!["watch", RUN],
            vec!["--json", "watch", RUN],
        ] {
            let out = run(tool(&server.url()), &args).fails(EXIT_SERVER);
            assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
            assert!(
                out.stderr.contains("answered counts that no run can have")
                    && out.stderr.contains(why),
                "{args:?}: {out:?}"
            );
        }
    }
}

// ------------------------------------------------- 7. the Slurm example

#[test]
fn the_slurm_example_says_how_the_worker_gets_there_and_what_sbatch_exports() {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/slurm_array.sh"
    ))
    .unwrap();
    let comments: String = script
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for text in [
        "$HOME/bin/taskfarm-worker",
        "--export=ALL",
        "TASKFARM_PASSWORD",
    ] {
        assert!(comments.contains(text), "{text:?} not in the comments");
    }
}
