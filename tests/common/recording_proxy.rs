//! A recording HTTP proxy on loopback in front of the REAL taskfarm server:
//! each request the library sends is forwarded unchanged and its answer
//! passed back unchanged, and the proxy records what arrived (method, path,
//! body, when), so that a test can count the requests a worker made and
//! poll for one without reading through the library (a read through the
//! library would itself send pending progress).
//!
//! For the error paths it can refuse requests (read the request, then close
//! the connection without forwarding it), hold the answers to `PUT`s for a
//! while (a request in flight), or answer 503 itself to every request (and
//! record when each arrived: the retries' spacing). For races, chosen requests are steered by
//! rules, the first matching one wins: [`RecordingProxy::hold`] forwards a
//! request and holds its answer at a [`Gate`] until the test releases it
//! (the server has acted, the client has not heard: a request in flight, for
//! as long as the test wants), [`RecordingProxy::fail`] refuses chosen
//! requests, and [`RecordingProxy::cut`] forwards chosen requests and closes
//! the connection without their answers (the server has acted, the client
//! never hears), and [`RecordingProxy::bad_gateway`] forwards them and
//! answers 502 in the server's place (the server has acted, the client hears
//! of an error), and [`RecordingProxy::answer`] answers chosen requests
//! itself without forwarding them (the server certainly did not act). std only: one accept thread plus one thread per connection; one
//! upstream connection per client connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::server::TaskfarmServer;

/// One request as it reached the proxy.
#[derive(Debug, Clone)]
pub struct Record {
    /// When the whole request had arrived.
    pub at: Instant,
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The path with its query, e.g. `/api/runs/U/tasks/0`.
    pub path: String,
    /// The body (JSON text for PUT and POST; empty otherwise).
    pub body: String,
}

impl Record {
    /// The body as JSON (`Null` when empty).
    pub fn json(&self) -> serde_json::Value {
        if self.body.is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{self:?}: {e}"))
    }
}

/// What the proxy does with the requests that arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Forward and answer.
    Forward,
    /// Close the connection without forwarding (counted in `refused`).
    Refuse,
    /// Forward; hold the answer to each `PUT` this long before passing it on.
    HoldPuts(Duration),
    /// Record the request and answer `503 Service Unavailable` itself,
    /// forwarding nothing (a server that is away behind a front proxy).
    Unavailable,
}

/// Which requests a rule applies to.
pub type Matcher = Arc<dyn Fn(&Record) -> bool + Send + Sync>;

/// A `PUT runs/RUN/tasks/TASK` of run `run` whose body's `status` is
/// `status` (`None`: a body without a status, a progress update).
pub fn put_status(run: &str, task: i64, status: Option<&str>) -> Matcher {
    let (path, status) = (
        format!("/runs/{run}/tasks/{task}"),
        status.map(str::to_owned),
    );
    Arc::new(move |r: &Record| {
        r.method == "PUT"
            && r.path.ends_with(&path)
            && r.json().get("status").and_then(|s| s.as_str()) == status.as_deref()
    })
}

/// A `PUT` to any task of run `run` whose body's `status` is `status`.
pub fn any_put_status(run: &str, status: &str) -> Matcher {
    let (part, status) = (format!("/runs/{run}/tasks/"), status.to_owned());
    Arc::new(move |r: &Record| {
        r.method == "PUT"
            && r.path.contains(&part)
            && r.json().get("status").and_then(|s| s.as_str()) == Some(status.as_str())
    })
}

/// A `PUT` to any task of run `run` that sets the percentage `percent`.
pub fn any_put_percent(run: &str, percent: f64) -> Matcher {
    let part = format!("/runs/{run}/tasks/");
    Arc::new(move |r: &Record| {
        r.method == "PUT" && r.path.contains(&part) && r.json()["percentCompleted"] == percent
    })
}

/// The `POST runs/RUN/task` that asks run `run` for a task.
pub fn task_request(run: &str) -> Matcher {
    let path = format!("/runs/{run}/task");
    Arc::new(move |r: &Record| r.method == "POST" && r.path.ends_with(&path))
}

/// Where a held answer waits: every answer to a matching request is held
/// until [`Gate::release`], then passed on (and later ones pass at once).
#[derive(Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

struct GateInner {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    /// The requests whose answers are held (or were, before the release).
    held: Vec<Record>,
    released: bool,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            inner: Arc::new(GateInner {
                state: Mutex::new(GateState::default()),
                changed: Condvar::new(),
            }),
        }
    }

    /// Waits until `count` requests have reached the gate (their answers
    /// held), at most `deadline`; panics otherwise. Returns them.
    pub fn wait_held(&self, count: usize, deadline: Duration) -> Vec<Record> {
        let until = Instant::now() + deadline;
        let mut state = self.inner.state.lock().unwrap();
        while state.held.len() < count {
            let now = Instant::now();
            assert!(
                now < until,
                "{count} requests were not held within {deadline:?}; held: {:#?}",
                state.held
            );
            state = self
                .inner
                .changed
                .wait_timeout(state, until - now)
                .unwrap()
                .0;
        }
        state.held.clone()
    }

    /// The requests that reached the gate so far.
    pub fn held(&self) -> Vec<Record> {
        self.inner.state.lock().unwrap().held.clone()
    }

    /// Passes every held answer on, and every later one at once.
    pub fn release(&self) {
        self.inner.state.lock().unwrap().released = true;
        self.inner.changed.notify_all();
    }

    /// Holds an answer to `record` until the release.
    fn hold(&self, record: &Record) {
        let mut state = self.inner.state.lock().unwrap();
        state.held.push(record.clone());
        self.inner.changed.notify_all();
        while !state.released {
            state = self.inner.changed.wait(state).unwrap();
        }
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

/// What a rule does with a matching request.
#[derive(Debug, Clone)]
enum Action {
    Hold(Gate),
    Fail,
    Cut,
    BadGateway,
    Answer(u16),
}

/// A rule of [`RecordingProxy::fail`]; dropping it does not end it, [`Rule::remove`] does.
#[derive(Debug)]
pub struct Rule {
    id: usize,
    shared: Arc<Shared>,
}

impl Rule {
    /// Ends the rule: matching requests are forwarded again.
    pub fn remove(self) {
        self.shared
            .rules
            .lock()
            .unwrap()
            .retain(|r| r.id != self.id);
    }
}

struct RuleEntry {
    id: usize,
    matcher: Matcher,
    action: Action,
}

struct Shared {
    records: Mutex<Vec<Record>>,
    mode: Mutex<Mode>,
    refused: AtomicUsize,
    rules: Mutex<Vec<RuleEntry>>,
    next_rule: AtomicUsize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    fn add_rule(&self, matcher: Matcher, action: Action) -> usize {
        let id = self.next_rule.fetch_add(1, Ordering::SeqCst);
        self.rules.lock().unwrap().push(RuleEntry {
            id,
            matcher,
            action,
        });
        id
    }

    /// The action of the first rule that matches `record`.
    fn action_for(&self, record: &Record) -> Option<Action> {
        self.rules
            .lock()
            .unwrap()
            .iter()
            .find(|r| (r.matcher)(record))
            .map(|r| r.action.clone())
    }
}

/// The proxy; it lives as long as the test process.
#[derive(Debug)]
pub struct RecordingProxy {
    /// The base URL to give the library, `http://127.0.0.1:PORT/api/`.
    pub url: String,
    shared: Arc<Shared>,
}

impl RecordingProxy {
    /// Starts a proxy in front of `server` on a free port.
    pub fn start(server: &TaskfarmServer) -> RecordingProxy {
        let rest = server
            .url
            .strip_prefix("http://")
            .expect("an http:// server");
        let (authority, path) = rest.split_once('/').unwrap();
        let upstream = authority.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/{path}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            records: Mutex::new(Vec::new()),
            mode: Mutex::new(Mode::Forward),
            refused: AtomicUsize::new(0),
            rules: Mutex::new(Vec::new()),
            next_rule: AtomicUsize::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let shared = Arc::clone(&accept_shared);
                let upstream = upstream.clone();
                std::thread::spawn(move || serve(client, &upstream, &shared));
            }
        });
        RecordingProxy { url, shared }
    }

    /// Sets what is done with the requests that arrive from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// From now on, the requests `matcher` accepts are forwarded and their
    /// answers held at the returned gate until the test releases it.
    pub fn hold(&self, matcher: Matcher) -> Gate {
        let gate = Gate::new();
        self.shared.add_rule(matcher, Action::Hold(gate.clone()));
        gate
    }

    /// From now on, the requests `matcher` accepts are read and refused (the
    /// connection closed, nothing forwarded, counted in `refused`) until the
    /// rule is removed.
    pub fn fail(&self, matcher: Matcher) -> Rule {
        let id = self.shared.add_rule(matcher, Action::Fail);
        Rule {
            id,
            shared: Arc::clone(&self.shared),
        }
    }

    /// From now on, the requests `matcher` accepts are forwarded, the
    /// server's answer read, and the connection to the client closed
    /// without it, until the rule is removed.
    pub fn cut(&self, matcher: Matcher) -> Rule {
        let id = self.shared.add_rule(matcher, Action::Cut);
        Rule {
            id,
            shared: Arc::clone(&self.shared),
        }
    }

    /// From now on, the requests `matcher` accepts are forwarded, the
    /// server's answer read, and `502 Bad Gateway` sent to the client in its
    /// place (as a front proxy does whose back end answered too late), until
    /// the rule is removed.
    pub fn bad_gateway(&self, matcher: Matcher) -> Rule {
        let id = self.shared.add_rule(matcher, Action::BadGateway);
        Rule {
            id,
            shared: Arc::clone(&self.shared),
        }
    }

    /// From now on, the requests `matcher` accepts are read and answered
    /// with `status` (and an empty body) by the proxy itself, nothing
    /// forwarded nor recorded (as a front proxy's rate limit, 429), until the
    /// rule is removed: a failure the server certainly did not act on.
    pub fn answer(&self, matcher: Matcher, status: u16) -> Rule {
        let id = self.shared.add_rule(matcher, Action::Answer(status));
        Rule {
            id,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Every request forwarded so far, in the order of arrival.
    pub fn records(&self) -> Vec<Record> {
        self.shared.records.lock().unwrap().clone()
    }

    /// The forwarded requests whose path contains `part` (a run's uuid).
    pub fn records_of(&self, part: &str) -> Vec<Record> {
        self.records()
            .into_iter()
            .filter(|r| r.path.contains(part))
            .collect()
    }

    /// How many requests were refused.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Polls until `done(records)` holds, for at most `deadline`; panics
    /// with `what` and the records otherwise.
    pub fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        done: impl Fn(&[Record]) -> bool,
    ) -> Vec<Record> {
        let start = Instant::now();
        loop {
            let records = self.records();
            if done(&records) {
                return records;
            }
            assert!(
                start.elapsed() < deadline,
                "{what}: not within {deadline:?}; the proxy saw {records:#?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Reads one HTTP/1.1 message head (up to the empty line) and its
/// `Content-Length` body; `None` at the end of the stream.
fn read_message(reader: &mut impl BufRead, no_body: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let mut message = Vec::new();
    let mut length = 0usize;
    let mut first = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        message.extend_from_slice(line.as_bytes());
        if first.is_empty() {
            first = line.clone();
            continue;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        assert!(
            !lower.starts_with("transfer-encoding:"),
            "the recording proxy does not relay chunked messages: {line}"
        );
    }
    if !no_body(&first) {
        let start = message.len();
        message.resize(start + length, 0);
        reader.read_exact(&mut message[start..]).ok()?;
    }
    Some(message)
}

/// Whether the server's `answer` closes its connection after it.
fn closes(answer: &[u8]) -> bool {
    let head = String::from_utf8_lossy(answer).to_ascii_lowercase();
    head.contains("\r\nconnection: close\r\n")
}

fn serve(client: TcpStream, upstream: &str, shared: &Shared) {
    let mut from_client = BufReader::new(client.try_clone().unwrap());
    let mut to_client = client;
    let mut server: Option<(TcpStream, BufReader<TcpStream>)> = None;
    while let Some(request) = read_message(&mut from_client, |_| false) {
        let text = String::from_utf8_lossy(&request).into_owned();
        let mut words = text.split(' ');
        let method = words.next().unwrap_or_default().to_owned();
        let path = words.next().unwrap_or_default().to_owned();
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        let mode = *shared.mode.lock().unwrap();
        let record = Record {
            at: Instant::now(),
            method: method.clone(),
            path,
            body,
        };
        let action = shared.action_for(&record);
        if mode == Mode::Refuse || matches!(action, Some(Action::Fail)) {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            let _ = to_client.shutdown(Shutdown::Both);
            return;
        }
        if let Some(Action::Answer(status)) = action {
            let answer = format!("HTTP/1.1 {status} Refused Here\r\ncontent-length: 0\r\n\r\n");
            if to_client.write_all(answer.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        shared.records.lock().unwrap().push(record.clone());
        if mode == Mode::Unavailable {
            let answer = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
            if to_client.write_all(answer.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        if server.is_none() {
            let stream = TcpStream::connect(upstream).unwrap();
            let reader = BufReader::new(stream.try_clone().unwrap());
            server = Some((stream, reader));
        }
        let (to_server, from_server) = server.as_mut().unwrap();
        if to_server.write_all(&request).is_err() {
            return;
        }
        let no_body = |status_line: &str| {
            let code = status_line.split(' ').nth(1).unwrap_or("");
            method == "HEAD" || code == "204" || code == "304" || code.starts_with('1')
        };
        let Some(answer) = read_message(from_server, no_body) else {
            return;
        };
        if let Some(Action::Cut) = action {
            let _ = to_client.shutdown(Shutdown::Both);
            return;
        }
        if let Some(Action::BadGateway) = action {
            if closes(&answer) {
                server = None;
            }
            let answer = "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n";
            if to_client.write_all(answer.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        if let (Mode::HoldPuts(hold), "PUT") = (mode, method.as_str()) {
            std::thread::sleep(hold);
        }
        if let Some(Action::Hold(gate)) = action {
            gate.hold(&record);
        }
        if closes(&answer) {
            server = None;
        }
        if to_client.write_all(&answer).is_err() {
            return;
        }
    }
}
