//! The requests the real server logged: its access log is in `server.log` of
//! the state directory (gunicorn's access log in PostgreSQL mode, the Flask
//! development server's request lines in SQLite mode), one line per request:
//!
//! ```text
//! 127.0.0.1 [02/Dec/2026:03:00:00 +0000] "GET /api/token HTTP/1.1" 200 ...   (gunicorn)
//! 127.0.0.1 - - [02/Dec/2026 03:00:00] "GET /api/token HTTP/1.1" 200 -       (Flask)
//! ```
//!
//! ```ignore
//! use common::access_log;
//! // Every request answered before this call, once it is in the log:
//! let n = access_log::count_requests(&server, "GET", "/api/token");
//! let all = access_log::requests(&server);   // method, path (query kept), status
//! ```
//!
//! A server writes a request's line after it has answered, so a line can
//! trail the answer by a moment. Both functions first send a request of
//! their own (`GET /?access-log-mark=N`, outside the API: no authentication,
//! no database) and wait for its line: the requests answered before it are
//! then in the log too. Lines of earlier runs of a restarted server are kept
//! (the harness appends to `server.log`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::server::TaskfarmServer;

/// One request as the server logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: String,
    /// The path with its query, as sent: `/api/runs/UUID?info=numDone`.
    pub target: String,
    /// The HTTP status the server answered with.
    pub status: u16,
}

impl Request {
    /// The path without its query: `/api/runs/UUID`.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// The number of requests `METHOD PATH` (the path without a query, e.g.
/// `/api/token`) that the server answered so far (its own marks excluded).
pub fn count_requests(server: &TaskfarmServer, method: &str, path: &str) -> usize {
    requests(server)
        .iter()
        .filter(|r| r.method == method && r.path() == path)
        .count()
}

/// Every request the server answered so far, in the order of its log,
/// without the marks this module sends.
pub fn requests(server: &TaskfarmServer) -> Vec<Request> {
    let text = settled_log(server);
    text.lines()
        .filter_map(parse_line)
        .filter(|r| !r.target.starts_with(MARK_PREFIX))
        .collect()
}

const MARK_PREFIX: &str = "/?access-log-mark=";

/// How long a mark may take to show up in the log (a loaded machine).
const MARK_DEADLINE: Duration = Duration::from_secs(60);

/// The text of `server.log` once the line of a fresh mark is in it.
fn settled_log(server: &TaskfarmServer) -> String {
    static MARKS: AtomicU64 = AtomicU64::new(0);
    let mark = format!(
        "{MARK_PREFIX}{}-{}",
        std::process::id(),
        MARKS.fetch_add(1, Ordering::Relaxed)
    );
    send_mark(server, &mark);
    let log = server.state_dir.join("server.log");
    let needle = format!("\"GET {mark} ");
    let deadline = Instant::now() + MARK_DEADLINE;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not log the mark {mark} within {MARK_DEADLINE:?}: {}\n{}",
            log.display(),
            server.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET <mark>` on the server's root (the API URL's host and port).
fn send_mark(server: &TaskfarmServer, mark: &str) {
    let authority = server
        .url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("not an http:// URL: {}", server.url));
    let mut stream = TcpStream::connect(authority)
        .unwrap_or_else(|e| panic!("cannot connect to {authority} for a log mark: {e}"));
    stream
        .set_read_timeout(Some(MARK_DEADLINE))
        .expect("set a read timeout");
    write!(
        stream,
        "GET {mark} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the log mark");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("read the answer to the log mark");
    assert!(
        answer.starts_with(b"HTTP/1.") && answer.get(9..12) == Some(b"200"),
        "the log mark got: {}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
}

/// `... "METHOD TARGET HTTP/1.1" STATUS ...` → the request; other lines
/// (start-up messages, tracebacks) → `None`. The Flask development server
/// colours the request of a 4xx or 5xx answer (`ESC[31m ... ESC[0m`), even
/// into a file: the colour codes are dropped first.
pub fn parse_line(line: &str) -> Option<Request> {
    let line = without_colours(line);
    let (_, rest) = line.split_once('"')?;
    let (request, after) = rest.split_once('"')?;
    let mut parts = request.split(' ');
    let (method, target, protocol) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !protocol.starts_with("HTTP/") || !target.starts_with('/') {
        return None;
    }
    let status = after.split_whitespace().next()?.parse().ok()?;
    Some(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        status,
    })
}

/// `line` without ANSI colour sequences (`ESC [ digits/semicolons m`).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if !(d.is_ascii_digit() || d == ';') {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}
