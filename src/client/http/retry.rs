//! When a failed attempt is tried again, and how long to wait before it.
//!
//! The rules are those of the Python client (urllib3's `Retry(total=10,
//! backoff_factor=0.3, status_forcelist=[500, 502, 503, 504])`), plus a
//! timeout per attempt: connection failures and 500/502/503/504 answers are
//! retried for GET, PUT and DELETE; a POST is repeated only when the request
//! cannot have reached the server (nothing was sent).
//!
//! Everything that decides a retry is here: `classify` sorts a transport
//! error (with whether any byte of the request was sent) into what it means
//! and whether it may be repeated (a host name that does not exist is not),
//! and `with_retries` is the one loop that repeats attempts, for the token
//! calls and for `GET token` alike. Its waits are jittered ([`retry_wait`]):
//! workers that lost the server together do not come back together. A
//! series of retries says so once on stderr (`series_line`), unless the
//! program turned that off.

use std::fmt;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::reply::{status_line, Reply, MAX_BODY_BYTES};
use super::resolve::LookupFailed;
use super::scrub;
use crate::client::env;
use crate::client::error::{Error, ErrorKind, Result};
use crate::client::jitter;

/// The HTTP methods of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// Whether repeating the request is harmless.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post)
    }
}

/// Whether a request may be sent again after an attempt that may have
/// reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// As its method says: GET, PUT and DELETE are repeated, a POST only
    /// when nothing was sent.
    AsMethod,
    /// Only when nothing was sent, whatever the method: a `PUT` that sets a
    /// task `waiting` (a hand-back, a reaper's give-back). Repeated after
    /// its first attempt reached the server, it lands after the server has
    /// handed the task to another worker, and takes it from that worker or
    /// undoes its `done` (found by the chaos soak, seed 27).
    OnlyIfNothingSent,
}

/// How an attempt failed before an answer was read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// The connection could not be made: nothing reached the server.
    NothingSent,
    /// The request may have reached the server (reset, closed or timed out
    /// after sending).
    MaybeSent,
    /// A failure that repeating cannot mend (bad certificate, body over the cap).
    Permanent,
}

/// What [`classify`] needs to know of a failed attempt besides its error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempted<'a> {
    /// Whether any byte of the request was handed to the connection
    /// (`single_write::SendWatch`): when none was, the request cannot have
    /// reached the server, whatever the error says.
    pub request_sent: bool,
    /// The timeout of one attempt, for messages.
    pub timeout: Duration,
    /// `the proxy HOST:PORT (from http_proxy)` when the request goes through
    /// one (then every connection is made to the proxy, not the server).
    pub proxy: Option<&'a str>,
}

/// A transport error sorted: whether it may be repeated, and what it tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Classified {
    /// Whether (and for which methods) the attempt may be repeated.
    pub failure: TransportFailure,
    /// Whether the request may have reached the server.
    pub reached: bool,
    /// The kind of the error the caller gets.
    pub kind: ErrorKind,
    /// What went wrong, for the message: `cannot connect (Connection refused)`.
    pub detail: String,
    /// The status of an answer whose body could not be kept (0: no answer).
    pub http_status: u16,
}

impl Classified {
    /// The failure of reading the body of an answer with `status`: a body
    /// that breaks the protocol says that the server did answer.
    pub fn after_answer(mut self, status: u16) -> Classified {
        if self.kind == ErrorKind::Protocol {
            self.http_status = status;
            self.detail = format!("answered HTTP {status}, but {}", self.detail);
        }
        self
    }

    /// The failure of an `https://` URL whose server does not speak TLS:
    /// not repeated, and the message names the `http://` URL to use.
    pub fn server_not_tls(mut self, plain_url: &str) -> Classified {
        let cause = self
            .detail
            .strip_prefix("the connection failed (")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or(&self.detail);
        self.detail = format!(
            "the server did not speak TLS ({cause}); if it serves plain HTTP, use {plain_url}"
        );
        self.failure = TransportFailure::Permanent;
        self
    }
}

/// What an error of an `https://` request says of a server that may not
/// speak TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMismatch {
    /// Nothing: the error is about something else.
    No,
    /// The server answered in plain HTTP where a TLS record should be.
    Certain,
    /// The server hung up on the TLS greeting: it does not speak TLS if it
    /// answers a plain-HTTP request (the transport asks it).
    IfPlainHttpAnswers,
}

/// What `error` of an `https://` request says of a server that may not speak TLS.
pub(crate) fn tls_mismatch(error: &ureq::Error) -> TlsMismatch {
    use std::io::ErrorKind as Io;
    match error {
        // rustls reading an HTTP answer where a TLS record should be.
        ureq::Error::Io(io) if io.kind() == Io::InvalidData => {
            if io.to_string().contains("InvalidContentType") {
                TlsMismatch::Certain
            } else {
                TlsMismatch::No
            }
        }
        ureq::Error::Io(io) if matches!(io.kind(), Io::UnexpectedEof | Io::ConnectionReset) => {
            TlsMismatch::IfPlainHttpAnswers
        }
        _ => TlsMismatch::No,
    }
}

/// When in an attempt an error can happen, as far as its kind tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the request: while resolving the host or connecting.
    Connecting,
    /// At any time, before or after a byte of the request was sent.
    Any,
}

/// Sorts a transport error of an attempt into what it means for the caller
/// and whether the attempt may be repeated. A failure that repeating cannot
/// mend (a certificate that does not verify, an answer that is not HTTP) is
/// [`TransportFailure::Permanent`]; any other failure may have reached the
/// server only when a byte of the request was sent and the error is not one
/// of connecting (a refused connection, a host not found, a connect timeout).
/// That fact, not the error alone, decides: ureq reports a connect that never
/// completes as the attempt's overall timeout, indistinguishable by its kind
/// from a server that is slow to answer.
pub(crate) fn classify(error: &ureq::Error, attempted: &Attempted<'_>) -> Classified {
    let (permanent, phase, kind, detail) = match lookup_failed(error) {
        Some(failed) => sort_lookup(failed, attempted),
        None => sort(error, attempted),
    };
    let reached = attempted.request_sent && phase == Phase::Any;
    Classified {
        failure: match (permanent, reached) {
            (true, _) => TransportFailure::Permanent,
            (false, true) => TransportFailure::MaybeSent,
            (false, false) => TransportFailure::NothingSent,
        },
        reached,
        kind,
        // ureq's, the OS's and the TLS library's words: foreign text.
        detail: scrub::clean(&detail),
        http_status: 0,
    }
}

/// The failed host name lookup inside `error`, when it is one
/// (`resolve::CachingResolver` puts it in an `Io` error).
fn lookup_failed(error: &ureq::Error) -> Option<&LookupFailed> {
    match error {
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<LookupFailed>(),
        _ => None,
    }
}

/// A failed lookup of the server's (or the proxy's) host name: a name that
/// does not exist fails at once (a typo in the URL would otherwise cost the
/// whole retry series in silence); a resolver that could not answer now
/// (`EAI_AGAIN`: a DNS server restarting, a network not yet up) is retried
/// like a refused connection.
fn sort_lookup(
    failed: &LookupFailed,
    attempted: &Attempted<'_>,
) -> (bool, Phase, ErrorKind, String) {
    let of_proxy = attempted
        .proxy
        .map_or(String::new(), |proxy| format!(" of {proxy}"));
    let detail = if failed.no_such_name() {
        format!(
            "host not found: the name {}{of_proxy} does not exist ({})",
            failed.host, failed.reason
        )
    } else {
        format!(
            "cannot look up the name {}{of_proxy} ({})",
            failed.host, failed.reason
        )
    };
    (
        failed.no_such_name(),
        Phase::Connecting,
        ErrorKind::Connection,
        detail,
    )
}

/// Every other transport error: whether repeating cannot mend it, when in
/// the attempt it can happen, the kind and the detail of [`classify`].
fn sort(error: &ureq::Error, attempted: &Attempted<'_>) -> (bool, Phase, ErrorKind, String) {
    use std::io::ErrorKind as Io;
    use ureq::Error as E;
    use ureq::Timeout as T;
    let to_proxy = attempted
        .proxy
        .map_or(String::new(), |proxy| format!(" to {proxy}"));
    let seconds = attempted.timeout.as_secs_f64();
    match error {
        E::Io(io) => match io.kind() {
            Io::ConnectionRefused
            | Io::AddrNotAvailable
            | Io::NetworkUnreachable
            | Io::HostUnreachable => (
                false,
                Phase::Connecting,
                ErrorKind::Connection,
                format!("cannot connect{to_proxy} ({io})"),
            ),
            Io::InvalidData if io.to_string().contains("certificate") => (
                true,
                Phase::Connecting,
                ErrorKind::Connection,
                format!("the server's TLS certificate does not verify ({io})"),
            ),
            _ => (
                false,
                Phase::Any,
                ErrorKind::Connection,
                format!("the connection failed ({io})"),
            ),
        },
        E::HostNotFound => (
            false,
            Phase::Connecting,
            ErrorKind::Connection,
            match attempted.proxy {
                Some(proxy) => format!("host not found ({proxy})"),
                None => "host not found".to_owned(),
            },
        ),
        E::ConnectionFailed => (
            false,
            Phase::Connecting,
            ErrorKind::Connection,
            format!("cannot connect{to_proxy}"),
        ),
        // A timeout before a byte was sent is one of connecting, whatever
        // stage ureq names.
        E::Timeout(stage)
            if matches!(stage, T::Connect | T::Resolve) || !attempted.request_sent =>
        {
            (
                false,
                Phase::Connecting,
                ErrorKind::Connection,
                format!("cannot connect{to_proxy} within {seconds:.1} s"),
            )
        }
        E::Timeout(_) => (
            false,
            Phase::Any,
            ErrorKind::Connection,
            format!("no answer within {seconds:.1} s"),
        ),
        E::BodyExceedsLimit(_) => (
            true,
            Phase::Any,
            ErrorKind::Protocol,
            format!("the answer's body is larger than the limit of {MAX_BODY_BYTES} bytes"),
        ),
        E::LargeResponseHeader(_, limit) => (
            true,
            Phase::Any,
            ErrorKind::Protocol,
            format!("the answer's head is larger than the limit of {limit} bytes"),
        ),
        E::Protocol(p) => (
            true,
            Phase::Any,
            ErrorKind::Protocol,
            format!("the answer is not valid HTTP ({p})"),
        ),
        E::ConnectProxyFailed(reason) => (
            // "proxy server responded 403/403": a refusal (400-499) will
            // not change on a retry; 502/503/504 or no answer may.
            reason.contains(" responded 4"),
            Phase::Connecting,
            ErrorKind::Connection,
            format!(
                "the proxy would not open a tunnel to the server ({reason}); \
                 if the server is reachable directly, list its host in no_proxy"
            ),
        ),
        E::Tls(t) => (
            true,
            Phase::Connecting,
            ErrorKind::Connection,
            format!("TLS failed ({t})"),
        ),
        other => (
            true,
            Phase::Any,
            ErrorKind::Connection,
            format!("the request failed ({other})"),
        ),
    }
}

/// The statuses that are retried (for idempotent methods).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

/// Whether an attempt that failed in transport may be repeated.
pub fn may_retry_failure(method: Method, failure: TransportFailure) -> bool {
    match failure {
        TransportFailure::NothingSent => true,
        TransportFailure::MaybeSent => method.is_idempotent(),
        TransportFailure::Permanent => false,
    }
}

/// Whether an attempt answered with `status` may be repeated.
pub fn may_retry_status(method: Method, status: u16) -> bool {
    method.is_idempotent() && is_retryable_status(status)
}

/// The longest wait before a retry.
pub const MAX_WAIT: Duration = Duration::from_secs(120);

/// The backoff step of retry number `retry` (1 for the first retry): none
/// before the first, then `backoff·2^(retry-1)`, never more than 120 s (the
/// waits of urllib3, which [`retry_wait`] jitters).
pub fn backoff_delay(backoff: Duration, retry: u32) -> Duration {
    const CAP: Duration = MAX_WAIT;
    if retry <= 1 {
        return Duration::ZERO;
    }
    let factor = 2f64.powi(retry.saturating_sub(1).min(64) as i32);
    let seconds = backoff.as_secs_f64() * factor;
    if !seconds.is_finite() || seconds >= CAP.as_secs_f64() {
        CAP
    } else {
        Duration::from_secs_f64(seconds)
    }
}

/// The wait before retry number `retry`: full jitter over its
/// [`backoff_delay`] step (uniform between 0 and twice the step, at most
/// [`MAX_WAIT`]; `jitter::full_jitter`), so that a series of retries waits as
/// long as urllib3's on average but workers that failed together spread out.
/// `TASKFARM_RETRY_JITTER=none` keeps urllib3's fixed waits (for
/// measurements).
pub fn retry_wait(backoff: Duration, retry: u32) -> Duration {
    let step = backoff_delay(backoff, retry);
    if env::var(env::RETRY_JITTER).is_some_and(|v| v.trim().eq_ignore_ascii_case("none")) {
        return step;
    }
    jitter::with_thread_rng(|rng| jitter::full_jitter(step, MAX_WAIT, rng))
}

/// How a handle repeats its requests: its settings, and where it tells of a retry.
pub(crate) struct Policy<'a> {
    /// The number of retries after the first attempt.
    pub retries: u32,
    /// The backoff factor of [`backoff_delay`].
    pub backoff: Duration,
    /// The server's base URL, for messages.
    pub base_url: &'a str,
    /// Told of every retry before its wait.
    pub observer: Option<&'a RetryObserver>,
    /// Whether a series of retries says so once on stderr ([`series_line`])
    /// when no observer is told of each retry: on unless the program turned
    /// it off (`TASKFARM_LOG=quiet`).
    pub announce: bool,
    /// The timeout of one attempt, for that line.
    pub timeout: Duration,
    /// Writes a line of the request log (when the handle keeps one).
    pub log: &'a dyn Fn(fmt::Arguments<'_>),
}

/// Makes `attempt` until its outcome is kept: an answer whose status is not
/// retried, a failure that may not be repeated (see [`may_retry_failure`]),
/// or the last of `1 + policy.retries` attempts. Before each retry the log
/// and the observer are told, then the [`retry_wait`] is waited. An `Err`
/// from `attempt` itself ends the loop at once. The reply says how many
/// attempts it took; a failure becomes an error naming the request, the base
/// URL and, after more than one, the number of attempts.
pub(crate) fn with_retries(
    policy: &Policy<'_>,
    method: Method,
    endpoint: &str,
    attempt: impl FnMut() -> Result<std::result::Result<Reply, Classified>>,
) -> Result<Reply> {
    with_retries_as(policy, method, Repeat::AsMethod, endpoint, attempt)
}

/// [`with_retries`], with what `repeat` allows: with
/// [`Repeat::OnlyIfNothingSent`] an answer (even 500 or 503: the server, or
/// a proxy's back end, may have acted on it) and a failure after sending
/// end the loop.
pub(crate) fn with_retries_as(
    policy: &Policy<'_>,
    method: Method,
    repeat: Repeat,
    endpoint: &str,
    mut attempt: impl FnMut() -> Result<std::result::Result<Reply, Classified>>,
) -> Result<Reply> {
    let mut retry = 0;
    // Whether an attempt failed after sending: the server may have acted.
    let mut reached = false;
    loop {
        let outcome = attempt()?;
        reached |= matches!(&outcome, Err(failure) if failure.reached);
        let retryable = match (&outcome, repeat) {
            (Ok(reply), Repeat::AsMethod) => may_retry_status(method, reply.status),
            (Err(failure), Repeat::AsMethod) => may_retry_failure(method, failure.failure),
            (Ok(_), Repeat::OnlyIfNothingSent) => false,
            (Err(failure), Repeat::OnlyIfNothingSent) => {
                failure.failure == TransportFailure::NothingSent
            }
        };
        if !retryable || retry >= policy.retries {
            return finish(policy, method, endpoint, outcome, retry).map_err(|e| {
                if reached {
                    e.maybe_reached_server()
                } else {
                    e
                }
            });
        }
        retry += 1;
        let wait = retry_wait(policy.backoff, retry);
        (policy.log)(format_args!(
            "{} {endpoint}: retry {retry} of {} in {:.1} s",
            method.as_str(),
            policy.retries,
            wait.as_secs_f64()
        ));
        // Cleaned as the log lines are: a failure's text may echo a secret.
        let reason = scrub::clean(&match &outcome {
            Ok(reply) => format!("answered HTTP {}", status_line(reply.status)),
            Err(failure) => failure.detail.clone(),
        });
        if retry == 1 && policy.announce && policy.observer.is_none() {
            let line = series_line(policy, method, endpoint, &reason);
            // Never a panic for a stderr that cannot be written.
            let _ = writeln!(std::io::stderr().lock(), "taskfarm: {line}");
        }
        if let Some(observer) = policy.observer {
            observer.notify(&RetryEvent {
                request: &format!("{} {endpoint}", method.as_str()),
                base_url: policy.base_url,
                reason: &reason,
                retry,
                retries: policy.retries,
                wait,
            });
        }
        std::thread::sleep(wait);
    }
}

/// The line a series of retries says on stderr at its first retry: what
/// failed, how many retries follow, how long they wait in all on average
/// (the sum of the [`backoff_delay`]s, which [`retry_wait`] jitters around)
/// and the timeout of each attempt, and how to silence it.
pub(crate) fn series_line(
    policy: &Policy<'_>,
    method: Method,
    endpoint: &str,
    reason: &str,
) -> String {
    let waits: Duration = (1..=policy.retries)
        .map(|retry| backoff_delay(policy.backoff, retry))
        .sum();
    format!(
        "{} {endpoint} to {}: {reason}; retrying up to {} {} over about {} of waits, \
         each attempt up to {} ({}=quiet silences this line)",
        method.as_str(),
        policy.base_url,
        policy.retries,
        if policy.retries == 1 { "time" } else { "times" },
        seconds(waits),
        seconds(policy.timeout),
        crate::client::env::LOG
    )
}

/// `0.6 s`, `273 s`: a duration for a message.
fn seconds(duration: Duration) -> String {
    let s = duration.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// Turns the last outcome, after `retries` retries, into the caller's result.
fn finish(
    policy: &Policy<'_>,
    method: Method,
    endpoint: &str,
    outcome: std::result::Result<Reply, Classified>,
    retries: u32,
) -> Result<Reply> {
    match outcome {
        Ok(reply) => Ok(Reply {
            attempts: retries + 1,
            ..reply
        }),
        Err(failure) => {
            let attempts = match retries {
                0 => String::new(),
                n => format!(" (after {} attempts)", n + 1),
            };
            Err(Error::with_http_status(
                failure.kind,
                failure.http_status,
                format!(
                    "{} {endpoint} to {}: {}{attempts}",
                    method.as_str(),
                    policy.base_url,
                    failure.detail
                ),
            ))
        }
    }
}

/// A retry about to happen, as a [`RetryObserver`] is told of it. It holds
/// nothing secret: the request, the base URL (which never holds credentials)
/// and why the last attempt failed.
#[derive(Debug, Clone, Copy)]
pub struct RetryEvent<'a> {
    /// What is retried: `GET token`, `PUT runs/UUID/tasks/3`.
    pub request: &'a str,
    /// The server's base URL.
    pub base_url: &'a str,
    /// Why the attempt failed: `cannot connect (Connection refused)`,
    /// `answered HTTP 503 Service Unavailable`.
    pub reason: &'a str,
    /// This retry's number, 1 for the first.
    pub retry: u32,
    /// How many retries the handle makes in all.
    pub retries: u32,
    /// The wait before this retry.
    pub wait: Duration,
}

/// Told of every retry before its wait, on the thread that makes the request
/// (the command-line tool says on stderr what it is waiting for).
#[derive(Clone)]
pub struct RetryObserver(Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>);

impl RetryObserver {
    /// An observer calling `f`.
    pub fn new(f: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> RetryObserver {
        RetryObserver(Arc::new(f))
    }

    /// Tells the observer of `event`.
    pub fn notify(&self, event: &RetryEvent<'_>) {
        (self.0)(event)
    }
}

impl fmt::Debug for RetryObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetryObserver(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the retry rules do with a classified failure.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Verdict {
        /// May the request have reached the server?
        reached: bool,
        /// Retried for GET, PUT and DELETE?
        idempotent: bool,
        /// Retried for POST?
        post: bool,
    }

    /// Nothing reached the server: retried whatever the method.
    const UNSENT: Verdict = Verdict {
        reached: false,
        idempotent: true,
        post: true,
    };
    /// It may have reached the server: a POST is not repeated.
    const MAYBE_SENT: Verdict = Verdict {
        reached: true,
        idempotent: true,
        post: false,
    };
    /// Repeating cannot mend it, and nothing reached the server.
    const FINAL_UNSENT: Verdict = Verdict {
        reached: false,
        idempotent: false,
        post: false,
    };
    /// Repeating cannot mend it, and the request may have reached the server.
    const FINAL: Verdict = Verdict {
        reached: true,
        idempotent: false,
        post: false,
    };

    fn io(kind: std::io::ErrorKind) -> ureq::Error {
        ureq::Error::Io(std::io::Error::new(kind, format!("{kind:?} here")))
    }

    fn pem_error() -> ureq::Error {
        let pem = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        ureq::tls::parse_pem(pem)
            .find_map(std::result::Result::err)
            .filter(|e| matches!(e, ureq::Error::Pem(_)))
            .expect("a broken PEM item")
    }

    /// One row per ureq error the transport can see: the error, the error
    /// kind the caller gets, then for an attempt that sent no byte of its
    /// request and for one that did, the verdict and how the detail starts.
    #[allow(clippy::type_complexity)]
    fn table() -> Vec<(
        &'static str,
        ureq::Error,
        ErrorKind,
        (Verdict, &'static str),
        (Verdict, &'static str),
    )> {
        use std::io::ErrorKind as Io;
        use ureq::Error as E;
        use ureq::Timeout as T;
        use ErrorKind::{Connection, Protocol};
        let refused = (UNSENT, "cannot connect (");
        let failed = (
            (UNSENT, "the connection failed ("),
            (MAYBE_SENT, "the connection failed ("),
        );
        let no_connect = (UNSENT, "cannot connect within 2.5 s");
        let late = (
            (UNSENT, "cannot connect within 2.5 s"),
            (MAYBE_SENT, "no answer within 2.5 s"),
        );
        let other = (
            (FINAL_UNSENT, "the request failed ("),
            (FINAL, "the request failed ("),
        );
        #[rustfmt::skip] // one row per line: the table reads as one
        let mut rows = vec![
            ("Io ConnectionRefused", io(Io::ConnectionRefused), Connection, refused, refused),
            ("Io AddrNotAvailable", io(Io::AddrNotAvailable), Connection, refused, refused),
            ("Io NetworkUnreachable", io(Io::NetworkUnreachable), Connection, refused, refused),
            ("Io HostUnreachable", io(Io::HostUnreachable), Connection, refused, refused),
            ("Io ConnectionReset", io(Io::ConnectionReset), Connection, failed.0, failed.1),
            ("Io ConnectionAborted", io(Io::ConnectionAborted), Connection, failed.0, failed.1),
            ("Io BrokenPipe", io(Io::BrokenPipe), Connection, failed.0, failed.1),
            ("Io TimedOut", io(Io::TimedOut), Connection, failed.0, failed.1),
            ("Io UnexpectedEof", io(Io::UnexpectedEof), Connection, failed.0, failed.1),
            ("Io NotConnected", io(Io::NotConnected), Connection, failed.0, failed.1),
            ("Io Other", io(Io::Other), Connection, failed.0, failed.1),
            ("Io InvalidData (not TLS)", ureq::Error::Io(std::io::Error::new(Io::InvalidData, "received corrupt message of type InvalidContentType")), Connection, failed.0, failed.1),
            ("Io InvalidData (certificate)", ureq::Error::Io(std::io::Error::new(Io::InvalidData, "invalid peer certificate: UnknownIssuer")), Connection, (FINAL_UNSENT, "the server's TLS certificate does not verify ("), (FINAL_UNSENT, "the server's TLS certificate does not verify (")),
            ("Timeout Connect", E::Timeout(T::Connect), Connection, no_connect, no_connect),
            ("Timeout Resolve", E::Timeout(T::Resolve), Connection, no_connect, no_connect),
            ("Timeout Global", E::Timeout(T::Global), Connection, late.0, late.1),
            ("Timeout PerCall", E::Timeout(T::PerCall), Connection, late.0, late.1),
            ("Timeout PerRead", E::Timeout(T::PerRead), Connection, late.0, late.1),
            ("Timeout PerWrite", E::Timeout(T::PerWrite), Connection, late.0, late.1),
            ("Timeout SendRequest", E::Timeout(T::SendRequest), Connection, late.0, late.1),
            ("Timeout Await100", E::Timeout(T::Await100), Connection, late.0, late.1),
            ("Timeout SendBody", E::Timeout(T::SendBody), Connection, late.0, late.1),
            ("Timeout RecvResponse", E::Timeout(T::RecvResponse), Connection, late.0, late.1),
            ("Timeout RecvBody", E::Timeout(T::RecvBody), Connection, late.0, late.1),
            ("HostNotFound", E::HostNotFound, Connection, (UNSENT, "host not found"), (UNSENT, "host not found")),
            ("ConnectionFailed", E::ConnectionFailed, Connection, (UNSENT, "cannot connect"), (UNSENT, "cannot connect")),
            ("ConnectProxyFailed 502", E::ConnectProxyFailed("proxy server responded 502/Bad Gateway".into()), Connection, (UNSENT, "the proxy would not open a tunnel"), (UNSENT, "the proxy would not open a tunnel")),
            ("ConnectProxyFailed no answer", E::ConnectProxyFailed("proxy server did not respond".into()), Connection, (UNSENT, "the proxy would not open a tunnel"), (UNSENT, "the proxy would not open a tunnel")),
            ("ConnectProxyFailed 403", E::ConnectProxyFailed("proxy server responded 403/Forbidden".into()), Connection, (FINAL_UNSENT, "the proxy would not open a tunnel"), (FINAL_UNSENT, "the proxy would not open a tunnel")),
            ("Tls", E::Tls("no root certificates"), Connection, (FINAL_UNSENT, "TLS failed ("), (FINAL_UNSENT, "TLS failed (")),
            ("BodyExceedsLimit", E::BodyExceedsLimit(MAX_BODY_BYTES), Protocol, (FINAL_UNSENT, "the answer's body is larger than the limit of 8388608 bytes"), (FINAL, "the answer's body is larger than the limit of 8388608 bytes")),
            ("LargeResponseHeader", E::LargeResponseHeader(70_000, 65_536), Protocol, (FINAL_UNSENT, "the answer's head is larger than the limit of 65536 bytes"), (FINAL, "the answer's head is larger than the limit of 65536 bytes")),
            ("Protocol", E::Protocol(ureq_proto::Error::BadHeader("x".into())), Protocol, (FINAL_UNSENT, "the answer is not valid HTTP ("), (FINAL, "the answer is not valid HTTP (")),
        ];
        let others: Vec<(&'static str, ureq::Error)> = vec![
            ("StatusCode", E::StatusCode(500)),
            (
                "Http",
                E::Http(
                    ureq::http::Request::builder()
                        .header("bad header\n", "x")
                        .body(())
                        .unwrap_err(),
                ),
            ),
            ("BadUri", E::BadUri("nope".into())),
            ("RedirectFailed", E::RedirectFailed),
            ("InvalidProxyUrl", E::InvalidProxyUrl),
            ("TooManyRedirects", E::TooManyRedirects),
            ("Pem", pem_error()),
            ("Rustls", E::Rustls(rustls::Error::DecryptError)),
            (
                "Json",
                E::Json(serde_json::from_str::<u8>("x").unwrap_err()),
            ),
            ("RequireHttpsOnly", E::RequireHttpsOnly("http://h/".into())),
            ("TlsRequired", E::TlsRequired),
            ("Other", E::Other("bespoke".into())),
            ("BodyStalled", E::BodyStalled),
        ];
        rows.extend(
            others
                .into_iter()
                .map(|(name, error)| (name, error, Connection, other.0, other.1)),
        );
        rows
    }

    #[test]
    fn every_ureq_error_is_sorted_by_whether_the_request_may_have_reached_the_server() {
        let rows = table();
        for (name, error, kind, unsent, sent) in &rows {
            for (request_sent, (verdict, detail)) in [(false, unsent), (true, sent)] {
                let case = format!("{name}, request sent: {request_sent}");
                let attempted = Attempted {
                    request_sent,
                    timeout: Duration::from_millis(2500),
                    proxy: None,
                };
                let c = classify(error, &attempted);
                let got = Verdict {
                    reached: c.reached,
                    idempotent: may_retry_failure(Method::Get, c.failure),
                    post: may_retry_failure(Method::Post, c.failure),
                };
                assert_eq!(got, *verdict, "{case}: {c:?}");
                for m in [Method::Put, Method::Delete] {
                    assert_eq!(
                        may_retry_failure(m, c.failure),
                        verdict.idempotent,
                        "{case}: {m:?}"
                    );
                }
                assert_eq!(c.kind, *kind, "{case}");
                assert!(c.detail.starts_with(detail), "{case}: {:?}", c.detail);
                assert_eq!(c.http_status, 0, "{case}");
            }
        }
        assert_eq!(rows.len(), 46, "a row per variant and kind");
    }

    #[test]
    fn through_a_proxy_a_failed_connect_names_the_proxy() {
        let attempted = Attempted {
            request_sent: false,
            timeout: Duration::from_secs(1),
            proxy: Some("the proxy p:3128 (from http_proxy)"),
        };
        let detail = |e: ureq::Error| classify(&e, &attempted).detail;
        assert_eq!(
            detail(io(std::io::ErrorKind::ConnectionRefused)),
            "cannot connect to the proxy p:3128 (from http_proxy) (ConnectionRefused here)"
        );
        assert_eq!(
            detail(ureq::Error::Timeout(ureq::Timeout::Global)),
            "cannot connect to the proxy p:3128 (from http_proxy) within 1.0 s"
        );
        assert_eq!(
            detail(ureq::Error::HostNotFound),
            "host not found (the proxy p:3128 (from http_proxy))"
        );
    }

    #[test]
    fn a_body_that_breaks_the_protocol_names_the_answer_and_a_server_without_tls_its_url() {
        let attempted = Attempted {
            request_sent: true,
            timeout: Duration::from_secs(1),
            proxy: None,
        };
        let limit = classify(&ureq::Error::BodyExceedsLimit(1), &attempted).after_answer(200);
        assert_eq!(limit.http_status, 200);
        assert!(limit
            .detail
            .starts_with("answered HTTP 200, but the answer's body"));
        let reset = classify(&io(std::io::ErrorKind::ConnectionReset), &attempted);
        assert_eq!(
            reset.clone().after_answer(200),
            reset,
            "only a protocol error names it"
        );

        let plain = ureq::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received corrupt message of type InvalidContentType",
        ));
        assert_eq!(tls_mismatch(&plain), TlsMismatch::Certain);
        assert_eq!(
            tls_mismatch(&io(std::io::ErrorKind::UnexpectedEof)),
            TlsMismatch::IfPlainHttpAnswers
        );
        assert_eq!(
            tls_mismatch(&io(std::io::ErrorKind::ConnectionRefused)),
            TlsMismatch::No
        );
        let not_tls = classify(&plain, &attempted).server_not_tls("http://h:5000/api/");
        assert_eq!(not_tls.failure, TransportFailure::Permanent);
        assert_eq!(
            not_tls.detail,
            "the server did not speak TLS (received corrupt message of type InvalidContentType); \
             if it serves plain HTTP, use http://h:5000/api/"
        );
    }

    #[test]
    fn the_retry_loop_counts_attempts_tells_the_observer_and_stops_where_the_rules_say() {
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let e = Arc::clone(&events);
        let observer = RetryObserver::new(move |event| {
            e.lock().unwrap().push(format!(
                "{} {}/{} {}: {}",
                event.request, event.retry, event.retries, event.base_url, event.reason
            ))
        });
        let lines = std::sync::Mutex::new(Vec::new());
        let log = |line: fmt::Arguments<'_>| lines.lock().unwrap().push(line.to_string());
        let policy = Policy {
            retries: 2,
            backoff: Duration::ZERO,
            base_url: "http://h/api/",
            observer: Some(&observer),
            announce: true,
            timeout: Duration::from_secs(1),
            log: &log,
        };
        let unsent = Classified {
            failure: TransportFailure::NothingSent,
            reached: false,
            kind: ErrorKind::Connection,
            detail: "cannot connect".into(),
            http_status: 0,
        };
        let reply = |status| Reply {
            what: "GET runs".into(),
            status,
            body: Vec::new(),
            attempts: 1,
            redirect: None,
        };

        // Nothing sent: a POST too is tried 1 + retries times.
        let mut made = 0;
        let err = with_retries(&policy, Method::Post, "run", || {
            made += 1;
            Ok(Err(unsent.clone()))
        })
        .unwrap_err();
        assert_eq!(made, 3);
        assert_eq!(err.kind(), ErrorKind::Connection);
        assert_eq!(
            err.message(),
            "POST run to http://h/api/: cannot connect (after 3 attempts)"
        );
        assert_eq!(
            *events.lock().unwrap(),
            [
                "POST run 1/2 http://h/api/: cannot connect",
                "POST run 2/2 http://h/api/: cannot connect"
            ]
        );
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "POST run: retry 1 of 2 in 0.0 s",
                "POST run: retry 2 of 2 in 0.0 s"
            ]
        );

        // A 503 then a 200: the reply says it took two attempts.
        events.lock().unwrap().clear();
        let mut statuses = vec![200, 503];
        let got = with_retries(&policy, Method::Get, "runs", || {
            Ok(Ok(reply(statuses.pop().unwrap())))
        })
        .unwrap();
        assert_eq!((got.status, got.attempts), (200, 2));
        assert_eq!(
            *events.lock().unwrap(),
            ["GET runs 1/2 http://h/api/: answered HTTP 503 Service Unavailable"]
        );

        // Kept at once: a POST answered 503, a failure that may have reached
        // the server, an error of the attempt itself.
        events.lock().unwrap().clear();
        let mut made = 0;
        let got = with_retries(&policy, Method::Post, "run", || {
            made += 1;
            Ok(Ok(reply(503)))
        })
        .unwrap();
        assert_eq!((made, got.attempts), (1, 1));
        let maybe = Classified {
            failure: TransportFailure::MaybeSent,
            reached: true,
            ..unsent.clone()
        };
        let err =
            with_retries(&policy, Method::Post, "run", || Ok(Err(maybe.clone()))).unwrap_err();
        assert_eq!(err.message(), "POST run to http://h/api/: cannot connect");
        let mut made = 0;
        let err = with_retries(&policy, Method::Get, "runs", || {
            made += 1;
            Err(Error::invalid_argument("stop here"))
        })
        .unwrap_err();
        assert_eq!((made, err.message()), (1, "stop here"));
        assert!(events.lock().unwrap().is_empty());
    }

    #[test]
    fn a_put_that_sets_a_task_waiting_is_repeated_only_when_nothing_was_sent() {
        let log = |_: fmt::Arguments<'_>| {};
        let policy = Policy {
            retries: 3,
            backoff: Duration::ZERO,
            base_url: "http://h/api/",
            observer: None,
            announce: false,
            timeout: Duration::from_secs(1),
            log: &log,
        };
        let failure = |failure| Classified {
            failure,
            reached: failure == TransportFailure::MaybeSent,
            kind: ErrorKind::Connection,
            detail: "reset".into(),
            http_status: 0,
        };
        let answer = |status| Reply {
            what: "PUT runs/r/tasks/0".into(),
            status,
            body: Vec::new(),
            attempts: 1,
            redirect: None,
        };
        let once = Repeat::OnlyIfNothingSent;
        // The request may have reached the server: one attempt, where a
        // progress PUT (Repeat::AsMethod) makes 1 + retries.
        for (repeat, attempts) in [(once, 1), (Repeat::AsMethod, 4)] {
            let mut made = 0;
            let err = with_retries_as(&policy, Method::Put, repeat, "runs/r/tasks/0", || {
                made += 1;
                Ok(Err(failure(TransportFailure::MaybeSent)))
            })
            .unwrap_err();
            assert_eq!((made, err.kind()), (attempts, ErrorKind::Connection));
            assert!(err.may_have_reached_server(), "{err}");
        }
        // An answer, even a 503, is kept: the server may have acted on it.
        let mut made = 0;
        let got = with_retries_as(&policy, Method::Put, once, "runs/r/tasks/0", || {
            made += 1;
            Ok(Ok(answer(503)))
        })
        .unwrap();
        assert_eq!((made, got.status), (1, 503));
        // Nothing sent: repeated as any request, and the error says that
        // the server cannot have acted on it.
        let mut made = 0;
        let err = with_retries_as(&policy, Method::Put, once, "runs/r/tasks/0", || {
            made += 1;
            Ok(Err(failure(TransportFailure::NothingSent)))
        })
        .unwrap_err();
        assert_eq!(made, 4);
        assert!(!err.may_have_reached_server(), "{err}");
        // Sent once, then nothing sent: the first attempt may have landed.
        let mut made = 0;
        let err = with_retries(&policy, Method::Get, "runs", || {
            made += 1;
            Ok(Err(failure(if made == 1 {
                TransportFailure::MaybeSent
            } else {
                TransportFailure::NothingSent
            })))
        })
        .unwrap_err();
        assert_eq!(made, 4);
        assert!(err.may_have_reached_server(), "{err}");
    }

    #[test]
    fn a_name_that_does_not_exist_is_not_retried_a_resolver_that_failed_for_now_is() {
        let lookup =
            |code| ureq::Error::Io(std::io::Error::other(LookupFailed::new("locahost", code)));
        for proxy in [None, Some("the proxy p:3128 (from http_proxy)")] {
            let attempted = Attempted {
                request_sent: false,
                timeout: Duration::from_secs(1),
                proxy,
            };
            let of_proxy = proxy.map_or(String::new(), |p| format!(" of {p}"));
            for code in [libc::EAI_NONAME, EAI_NODATA_CODE] {
                let c = classify(&lookup(code), &attempted);
                assert_eq!(c.failure, TransportFailure::Permanent, "{code}: {c:?}");
                assert!(!c.reached && c.kind == ErrorKind::Connection, "{c:?}");
                assert!(
                    c.detail.starts_with(&format!(
                        "host not found: the name locahost{of_proxy} does not exist ("
                    )),
                    "{c:?}"
                );
            }
            for code in [libc::EAI_AGAIN, libc::EAI_FAIL, libc::EAI_MEMORY] {
                let c = classify(&lookup(code), &attempted);
                assert_eq!(c.failure, TransportFailure::NothingSent, "{code}: {c:?}");
                assert!(may_retry_failure(Method::Post, c.failure));
                assert!(
                    c.detail
                        .starts_with(&format!("cannot look up the name locahost{of_proxy} (")),
                    "{c:?}"
                );
            }
        }
        // The resolver's own lookup of such a name gives that error.
        let resolver = super::super::resolve::CachingResolver::default();
        let uri: ureq::http::Uri = "http://locahost.invalid:5000/api/token".parse().unwrap();
        let timeout = ureq::unversioned::transport::NextTimeout {
            after: ureq::unversioned::transport::time::Duration::NotHappening,
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        use ureq::unversioned::resolver::Resolver as _;
        let error = resolver
            .resolve(&uri, &ureq::config::Config::default(), timeout)
            .unwrap_err();
        let failed = lookup_failed(&error).expect("a failed lookup");
        assert_eq!(failed.host, "locahost.invalid");
        assert!(
            failed.no_such_name(),
            "the resolver of this machine does not say that a name under .invalid \
             does not exist (RFC 6761): {failed:?}"
        );
    }

    /// glibc's EAI_NODATA, else EAI_NONAME again.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const EAI_NODATA_CODE: i32 = libc::EAI_NODATA;
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    const EAI_NODATA_CODE: i32 = libc::EAI_NONAME;

    #[test]
    fn a_series_says_what_failed_how_long_it_may_take_and_how_to_silence_it() {
        let log = |_: fmt::Arguments<'_>| {};
        let policy = Policy {
            retries: 10,
            backoff: Duration::from_millis(300),
            base_url: "http://locahost:5000/api/",
            observer: None,
            announce: true,
            timeout: Duration::from_secs(60),
            log: &log,
        };
        assert_eq!(
            series_line(&policy, Method::Get, "token", "cannot connect (refused)"),
            "GET token to http://locahost:5000/api/: cannot connect (refused); retrying up to \
             10 times over about 273 s of waits, each attempt up to 60 s \
             (TASKFARM_LOG=quiet silences this line)"
        );
        let short = Policy {
            retries: 2,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_millis(2500),
            ..policy
        };
        assert!(series_line(&short, Method::Put, "x", "r")
            .contains("up to 2 times over about 0.0 s of waits, each attempt up to 2.5 s"));
        let once = Policy {
            retries: 1,
            ..short
        };
        assert!(series_line(&once, Method::Put, "x", "r").contains("; retrying up to 1 time over"));
    }

    #[test]
    fn backoff_follows_urllib3() {
        let b = Duration::from_millis(300);
        let waits: Vec<f64> = (1..=10)
            .map(|n| backoff_delay(b, n).as_secs_f64())
            .collect();
        let expected = [0.0, 0.6, 1.2, 2.4, 4.8, 9.6, 19.2, 38.4, 76.8, 120.0];
        for (got, want) in waits.iter().zip(expected) {
            assert!((got - want).abs() < 1e-9, "{waits:?}");
        }
        let total: f64 = waits.iter().sum();
        assert!(
            (total - 273.0).abs() < 1e-6,
            "about 4.5 minutes in all: {total}"
        );
        assert_eq!(backoff_delay(b, 1000), Duration::from_secs(120));
    }

    #[test]
    fn post_is_repeated_only_when_nothing_was_sent() {
        assert!(may_retry_failure(
            Method::Post,
            TransportFailure::NothingSent
        ));
        assert!(!may_retry_failure(
            Method::Post,
            TransportFailure::MaybeSent
        ));
        assert!(!may_retry_status(Method::Post, 503));
        for m in [Method::Get, Method::Put, Method::Delete] {
            assert!(may_retry_failure(m, TransportFailure::MaybeSent));
            assert!(!may_retry_failure(m, TransportFailure::Permanent));
            for s in [500, 502, 503, 504] {
                assert!(may_retry_status(m, s));
            }
            for s in [200, 204, 400, 401, 404, 501] {
                assert!(!may_retry_status(m, s));
            }
        }
    }
}
