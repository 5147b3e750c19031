//! A scripted, misbehaving HTTP/1.1 server on loopback for testing the
//! client's error paths (5xx bursts, 401, HTML or invalid bodies, oversized
//! bodies, slow answers, connections dropped mid-answer or without answer).
//!
//! It is never a stand-in for the real taskfarm server: every answer comes
//! from the test's handler closure. std only: one accept thread plus one
//! thread per connection, HTTP/1.1 keep-alive, `Content-Length` bodies.
//!
//! If the handler panics, the client gets a `500` with the panic message and
//! the panic is re-raised when the [`FaultServer`] is dropped, so a failed
//! assertion inside a handler fails the test.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Granularity at which blocked reads and delays look at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// A connection with no complete request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Writes blocked for this long give up (client stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a deliberate close, how long to wait for the client to hang up.
const LINGER: Duration = Duration::from_secs(2);
/// Largest accepted request head (request line plus headers).
const MAX_HEAD: usize = 64 * 1024;
/// Largest accepted request body.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One request as received by the fault server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Request method as sent, e.g. `"GET"`.
    pub method: String,
    /// Request path without the query string, e.g. `"/api/runs/abc"`.
    pub path: String,
    /// Query string without the leading `?` (empty when there is none).
    pub query: String,
    /// Headers in the order received; names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// Request body (`Content-Length` bytes; empty when there is none).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// Value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; panics with the body text if it is not JSON.
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: request body is not JSON ({e}): {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// `(user, password)` from an `Authorization: Basic base64(user:pass)`
    /// header; `None` if the header is missing or malformed.
    pub fn basic_auth_user(&self) -> Option<(String, String)> {
        let value = self.header("authorization")?.trim();
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
        let (user, pass) = decoded.split_once(':')?;
        Some((user.to_string(), pass.to_string()))
    }
}

/// Decodes standard base64 (`A-Z a-z 0-9 + /`, `=` padding optional).
/// Returns `None` on any invalid character or impossible length.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    use base64::Engine as _;
    const PADDING_OPTIONAL: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    PADDING_OPTIONAL.decode(text).ok()
}

/// What the fault server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Wait `delay`, then answer `status` with `body` (and `Content-Type`
    /// when given). No body and no `Content-Length` are sent for 204/304,
    /// nor a body for `HEAD`.
    Respond {
        /// HTTP status code.
        status: u16,
        /// `Content-Type` header value; `None` sends no such header.
        content_type: Option<String>,
        /// Response body, sent whole with a matching `Content-Length`.
        body: Vec<u8>,
        /// How long to wait before writing anything.
        delay: Duration,
    },
    /// Send a head claiming `Content-Length: declared_len`, then only
    /// `sent`, then close the connection.
    CloseMidBody {
        /// HTTP status code of the truncated answer.
        status: u16,
        /// `Content-Length` announced in the head.
        declared_len: usize,
        /// Body bytes actually sent before closing.
        sent: Vec<u8>,
    },
    /// Read the request, then close the connection without writing a byte.
    CloseWithoutAnswer,
    /// Write these bytes as they are (head and all), then close: for answers
    /// no well-behaved server sends, such as a head over the client's limit.
    RawAnswer(Vec<u8>),
    /// Answer `status` (a redirect: 301, 302, 307, 308) with a `Location`
    /// header and an empty body.
    Redirect {
        /// HTTP status code.
        status: u16,
        /// The `Location` header's value.
        location: String,
    },
}

impl Action {
    /// `status` with `value` serialised as `application/json`.
    pub fn json(status: u16, value: &serde_json::Value) -> Action {
        Action::raw(status, "application/json", value.to_string())
    }

    /// `status` with an HTML body (`text/html; charset=utf-8`).
    pub fn html(status: u16, html: &str) -> Action {
        Action::raw(status, "text/html; charset=utf-8", html)
    }

    /// `status` with a plain-text body (`text/plain; charset=utf-8`).
    pub fn text(status: u16, text: &str) -> Action {
        Action::raw(status, "text/plain; charset=utf-8", text)
    }

    /// `status` with no body and no `Content-Type` (e.g. 204).
    pub fn empty(status: u16) -> Action {
        Action::Respond {
            status,
            content_type: None,
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with arbitrary bytes under an arbitrary `Content-Type`.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Action {
        Action::Respond {
            status,
            content_type: Some(content_type.to_string()),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer, sent only after `delay`. Only meaningful for
    /// [`Action::Respond`]; panics for the other variants.
    pub fn delayed(self, delay: Duration) -> Action {
        match self {
            Action::Respond {
                status,
                content_type,
                body,
                ..
            } => Action::Respond {
                status,
                content_type,
                body,
                delay,
            },
            other => panic!("Action::delayed only applies to Action::Respond, not {other:?}"),
        }
    }
}

/// `200 {"token": token}`, the answer to `GET /api/token` that starts every
/// client session.
pub fn token_ok(token: &str) -> Action {
    Action::json(200, &serde_json::json!({ "token": token }))
}

type Handler = dyn Fn(&RecordedRequest, usize) -> Action + Send + Sync + 'static;

#[derive(Default)]
struct Log {
    requests: Vec<RecordedRequest>,
    per_route: HashMap<(String, String), usize>,
}

struct Shared {
    handler: Box<Handler>,
    stop: AtomicBool,
    connections: AtomicUsize,
    /// Connections the server has sent its FIN on.
    closed: AtomicUsize,
    log: Mutex<Log>,
    handler_panic: Mutex<Option<String>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A scripted HTTP/1.1 server on `127.0.0.1:<ephemeral port>`.
///
/// Dropping it stops accepting connections and joins the accept thread;
/// connection threads notice the stop flag (or time out after a few seconds
/// idle) on their own and never keep the test alive.
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl FaultServer {
    /// Starts the server. `handler` gets each request and how many requests
    /// with the same method and path came before it (0-based), and returns
    /// what to do. It runs on the connection's thread, so a delayed answer
    /// never blocks other connections.
    pub fn start<F>(handler: F) -> FaultServer
    where
        F: Fn(&RecordedRequest, usize) -> Action + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fault server: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fault server: local_addr");
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            log: Mutex::new(Log::default()),
            handler_panic: Mutex::new(None),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name(format!("fault-server-{}", addr.port()))
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("fault server: spawn accept thread");
        FaultServer {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// Base URL of the API, `"http://127.0.0.1:PORT/api/"`.
    pub fn url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// All requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log().requests.clone()
    }

    /// Number of requests received so far whose method is `method`
    /// (case-insensitive) and whose path ends with `path_suffix`.
    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.shared
            .log()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.ends_with(path_suffix))
            .count()
    }

    /// Number of TCP connections accepted so far (to check keep-alive reuse).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Number of connections the server has closed so far (its FIN sent:
    /// on loopback the client's socket has it once this count includes it).
    pub fn closed_connections(&self) -> usize {
        self.shared.closed.load(Ordering::SeqCst)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblock accept(); the accept loop sees the flag and exits.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
        let panic = self
            .shared
            .handler_panic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(message) = panic {
            if !thread::panicking() {
                panic!("fault server handler panicked: {message}");
            }
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let Ok(stream) = stream else {
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("fault-server-conn".to_string())
            .spawn(move || serve_connection(stream, &conn_shared));
        if let Err(e) = spawned {
            eprintln!("fault server: cannot spawn connection thread: {e}");
        }
    }
}

/// Result of waiting for more bytes from the client.
enum Got {
    Bytes(usize),
    /// Client closed, server stopping, idle timeout, or socket error.
    Done,
}

fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, shared: &Shared) -> Got {
    let mut chunk = [0u8; 64 * 1024];
    let idle_since = Instant::now();
    loop {
        if shared.stopped() || idle_since.elapsed() > IDLE_TIMEOUT {
            return Got::Done;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Got::Done,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Got::Bytes(n);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return Got::Done,
        }
    }
}

/// A request head parsed from the buffer.
struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    len: usize,
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn parse_head(raw: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "request head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line {request_line:?}"));
    };
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(format!("malformed request line {request_line:?}"));
    }
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        len: raw.len(),
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    if stream.set_read_timeout(Some(POLL)).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Request head.
        let head_end = loop {
            if let Some(end) = find_head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                reject(&mut stream, 431, "request head too large", shared);
                return;
            }
            if let Got::Done = read_more(&mut stream, &mut buf, shared) {
                return;
            }
        };
        let head = match parse_head(&buf[..head_end]) {
            Ok(head) => head,
            Err(why) => {
                reject(&mut stream, 400, &why, shared);
                return;
            }
        };
        if let Some(te) = header(&head.headers, "transfer-encoding") {
            reject(
                &mut stream,
                501,
                &format!("fault server: Transfer-Encoding {te:?} request bodies are not supported; send Content-Length"),
                shared,
            );
            return;
        }
        let body_len = match header(&head.headers, "content-length").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) if n <= MAX_BODY => n,
            Some(Ok(_)) => {
                reject(&mut stream, 413, "request body too large", shared);
                return;
            }
            Some(Err(_)) => {
                reject(&mut stream, 400, "invalid Content-Length", shared);
                return;
            }
        };
        if body_len > 0
            && has_token(&head.headers, "expect", "100-continue")
            && stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        // Request body.
        while buf.len() < head.len + body_len {
            if let Got::Done = read_more(&mut stream, &mut buf, shared) {
                return;
            }
        }
        let body = buf[head.len..head.len + body_len].to_vec();
        buf.drain(..head.len + body_len);

        let close_requested = if head.version == "HTTP/1.0" {
            !has_token(&head.headers, "connection", "keep-alive")
        } else {
            has_token(&head.headers, "connection", "close")
        };
        let (path, query) = match head.target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (head.target.clone(), String::new()),
        };
        let request = RecordedRequest {
            method: head.method,
            path,
            query,
            headers: head.headers,
            body,
        };
        let index = {
            let mut log = shared.log();
            let counter = log
                .per_route
                .entry((request.method.clone(), request.path.clone()))
                .or_insert(0);
            let index = *counter;
            *counter += 1;
            log.requests.push(request.clone());
            index
        };

        let action = match catch_unwind(AssertUnwindSafe(|| (shared.handler)(&request, index))) {
            Ok(action) => action,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                let text = format!(
                    "fault server handler panicked on {} {}: {message}",
                    request.method, request.path
                );
                shared
                    .handler_panic
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(text.clone());
                reject(&mut stream, 500, &text, shared);
                return;
            }
        };

        match action {
            Action::Respond {
                status,
                content_type,
                body,
                delay,
            } => {
                if !sleep_unless_stopped(delay, shared) {
                    return;
                }
                let no_body = status == 204 || status == 304 || (100..200).contains(&status);
                let head = response_head(
                    status,
                    content_type.as_deref(),
                    (!no_body).then_some(body.len()),
                    close_requested,
                );
                let mut out = head.into_bytes();
                if !no_body && request.method != "HEAD" {
                    out.extend_from_slice(&body);
                }
                if stream
                    .write_all(&out)
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
                if close_requested {
                    close_gracefully(stream, shared);
                    return;
                }
            }
            Action::CloseMidBody {
                status,
                declared_len,
                sent,
            } => {
                let mut out = response_head(status, None, Some(declared_len), false).into_bytes();
                out.extend_from_slice(&sent);
                let _ = stream.write_all(&out).and_then(|()| stream.flush());
                close_gracefully(stream, shared);
                return;
            }
            Action::CloseWithoutAnswer => {
                close_gracefully(stream, shared);
                return;
            }
            Action::RawAnswer(bytes) => {
                let _ = stream.write_all(&bytes).and_then(|()| stream.flush());
                close_gracefully(stream, shared);
                return;
            }
            Action::Redirect { status, location } => {
                let mut head = response_head(status, None, Some(0), close_requested);
                head.truncate(head.len() - 2);
                head.push_str(&format!("Location: {location}\r\n\r\n"));
                if stream
                    .write_all(head.as_bytes())
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
                if close_requested {
                    close_gracefully(stream, shared);
                    return;
                }
            }
        }
    }
}

/// Sleeps for `delay` in small slices; false if the server stopped meanwhile.
fn sleep_unless_stopped(delay: Duration, shared: &Shared) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        if shared.stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep(POLL.min(deadline - now));
    }
}

fn response_head(
    status: u16,
    content_type: Option<&str>,
    content_length: Option<usize>,
    close: bool,
) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if let Some(len) = content_length {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Answers a request the server itself refuses, then closes.
fn reject(stream: &mut TcpStream, status: u16, why: &str, shared: &Shared) {
    eprintln!("fault server: {status} {why}");
    let mut out = response_head(
        status,
        Some("text/plain; charset=utf-8"),
        Some(why.len()),
        true,
    )
    .into_bytes();
    out.extend_from_slice(why.as_bytes());
    let _ = stream.write_all(&out).and_then(|()| stream.flush());
    if let Ok(s) = stream.try_clone() {
        close_gracefully(s, shared);
    }
}

/// Sends FIN after everything written, then waits (briefly) for the client to
/// hang up, so the close never turns into a reset that could discard bytes
/// the client has not read yet.
fn close_gracefully(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.shutdown(Shutdown::Write);
    shared.closed.fetch_add(1, Ordering::SeqCst);
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 8192];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
}

/// Reason phrase for the status codes the tests are likely to use.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}
