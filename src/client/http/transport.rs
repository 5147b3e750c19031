//! The HTTP transport of one handle: a keep-alive `ureq` agent, the token,
//! and the attempts of a request. Every request of the library goes through
//! [`Connection::call`] (token calls) or the token fetch in this file, both
//! repeated by the retry loop of [`retry`], which also sorts their failures.
//!
//! Authentication (docs/PROTOCOL.md): the token is fetched once with the user name
//! and password, or given by the caller (`TASKFARM_TOKEN`: no `GET token`,
//! no password check on the server), and sent as the Basic user name of every
//! later call. A `401` or `500` to a token call makes us fetch the token
//! again, once: when it changed (the server was restarted with another key)
//! the call is repeated with the new one; when it is the same, the answer
//! stands. Without credentials no new token can be fetched: a `401` means the
//! token was refused, and a `500` is told apart from a failure of the server
//! by two single requests (see `Connection::token_refused`); a refused
//! token is an authentication error that says so.
//!
//! A retry observer (`Settings::on_retry`) is told of every retry before its
//! wait: the command-line tool says on stderr what it is waiting for. Without
//! one, a series of retries says so once on stderr (`retry::series_line`)
//! unless `Settings::announce_retries` is off (`TASKFARM_LOG=quiet`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Serialize;
use ureq::unversioned::transport::{Connector, DefaultConnector};
use ureq::Agent;

use super::credentials::{Credentials, Secret, MAX_TOKEN_BYTES};
use super::endpoint::Endpoint;
use super::proxy;
use super::reply::{status_line, Reply, MAX_BODY_BYTES};
use super::resolve::CachingResolver;
use super::retry::{
    self, Attempted, Classified, Method, Policy, Repeat, RetryObserver, TlsMismatch,
};
use super::scrub::{self, Registration};
use super::single_write::{SendWatch, SingleWriteConnector};
use super::tls;
use crate::client::error::{Error, ErrorKind, Result};
use crate::client::settings::Settings;
use crate::client::wire::TokenAnswer;

/// What the token-refusal check asks: a run that does not exist, so a token
/// the server accepts gets `404`.
const PROBE_ENDPOINT: &str = "runs/00000000000000000000000000000000?info=numDone";

/// What the message of a `404` to `GET token` says of the base URL: the
/// server answered, but that URL is not where its API is (the base URL
/// usually ends in `/api/`).
pub const NOT_AN_API: &str = "is not a taskfarm API";

/// The hint a `404` gives when the base URL may not be the API's: `; its URL
/// usually ends in /api/` when it does not end so, else nothing.
pub fn api_hint(base_url: &str) -> &'static str {
    if base_url.ends_with("/api/") {
        ""
    } else {
        "; the URL of the taskfarm API usually ends in /api/"
    }
}

/// The Basic user name of the control request of the token-refusal check:
/// not a JWT, so the server looks it up as a user name (no such user: `401`
/// without a password check).
const NOT_A_TOKEN: &str = "taskfarm-worker-not-a-token";

/// The connection of one handle to the server. Safe to share between threads.
#[derive(Debug)]
pub struct Connection {
    /// The process that made it: its keep-alive sockets are that process's.
    pid: u32,
    agent: Agent,
    base_url: String,
    credentials: Option<Credentials>,
    /// Keeps the password out of every message while the connection lives.
    _password_scrub: Option<Registration>,
    token: Mutex<Arc<TokenHeader>>,
    timeout_nanos: AtomicU64,
    retries: AtomicU32,
    backoff: Duration,
    log_requests: bool,
    announce_retries: bool,
    on_retry: Option<RetryObserver>,
    /// `the proxy HOST:PORT (from http_proxy)` when there is one, for
    /// messages (never its user name or password).
    proxy_name: Option<String>,
}

impl Connection {
    /// Builds the agent and takes the settings' token, or fetches one with
    /// the credentials (one `GET token`) when there is none.
    pub fn open(settings: &Settings) -> Result<Connection> {
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("taskfarm_worker/", env!("CARGO_PKG_VERSION")))
            .max_redirects(0)
            .max_idle_connections_per_host(8);
        if settings.base_url.starts_with("https://") {
            config = config.tls_config(tls::tls_config(settings.ca_file.as_deref())?);
        }
        // Always set: ureq's default would read the proxy variables its own way.
        let proxy = proxy::for_agent(settings.proxy.as_ref())?;
        let proxy_name = proxy
            .as_ref()
            .zip(settings.proxy.as_ref())
            .map(|(p, s)| format!("the proxy {}:{} (from {})", p.host(), p.port(), s.variable));
        config = config.proxy(proxy);
        let connection = Connection {
            agent: Agent::with_parts(
                config.build(),
                DefaultConnector::default().chain(SingleWriteConnector),
                CachingResolver::default(),
            ),
            base_url: settings.base_url.clone(),
            credentials: settings.credentials.clone(),
            _password_scrub: settings
                .credentials
                .as_ref()
                .map(|c| scrub::register_credentials(&c.username, c.password.expose())),
            token: Mutex::new(Arc::new(TokenHeader::new(Secret::new(String::new())))),
            timeout_nanos: AtomicU64::new(duration_nanos(settings.timeout)),
            retries: AtomicU32::new(settings.retries),
            backoff: settings.backoff,
            log_requests: settings.log_requests,
            announce_retries: settings.announce_retries,
            on_retry: settings.on_retry.clone(),
            proxy_name,
            pid: std::process::id(),
        };
        let token = match &settings.token {
            Some(token) => token.clone(),
            None => connection.fetch_token()?,
        };
        *connection.lock_token() = Arc::new(TokenHeader::new(token));
        Ok(connection)
    }

    /// The base URL, ending in `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The full URL of `endpoint` (the Python client's `url()`).
    pub fn url(&self, endpoint: &str) -> String {
        format!("{}{}", self.base_url, endpoint)
    }

    /// The token in use.
    pub fn token(&self) -> Secret {
        self.lock_token().token.clone()
    }

    /// The timeout of one attempt.
    pub fn timeout(&self) -> Duration {
        Duration::from_nanos(self.timeout_nanos.load(Ordering::Relaxed))
    }

    /// Sets the timeout of one attempt.
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_nanos
            .store(duration_nanos(timeout), Ordering::Relaxed);
    }

    /// The number of retries after the first attempt.
    pub fn retries(&self) -> u32 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Sets the number of retries after the first attempt.
    pub fn set_retries(&self, retries: u32) {
        self.retries.store(retries, Ordering::Relaxed);
    }

    /// Whether this process made the connection (false in a child after `fork()`).
    pub fn is_own(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Refuses a request from a child after `fork()`: the keep-alive sockets
    /// are shared with the parent, whose answers the child could read (and
    /// the parent the child's). Checked before any lock is taken.
    fn check_process(&self) -> Result<()> {
        if self.is_own() {
            return Ok(());
        }
        Err(Error::invalid_argument(format!(
            "this handle's connection to {} belongs to process {}, not to this one (after \
             fork()): a child process opens its own handles (tf_taskfarm_open, tf_worker_new)",
            self.base_url, self.pid
        )))
    }

    /// Sends a token-authenticated request to `endpoint` (relative to the base
    /// URL, query included) with an optional JSON body, retrying as
    /// [`retry`] says, and returns the answer whatever its status.
    pub fn call<B: Serialize>(
        &self,
        method: Method,
        endpoint: &str,
        body: Option<&B>,
    ) -> Result<Reply> {
        self.call_as(method, Repeat::AsMethod, endpoint, body)
    }

    /// [`Connection::call`], repeated only as `repeat` allows (see
    /// [`Repeat`]).
    pub fn call_as<B: Serialize>(
        &self,
        method: Method,
        repeat: Repeat,
        endpoint: &str,
        body: Option<&B>,
    ) -> Result<Reply> {
        self.check_process()?;
        let body = body
            .map(|b| serde_json::to_vec(b))
            .transpose()
            .map_err(|e| Error::invalid_argument(format!("cannot encode the request: {e}")))?;
        let mut token = Arc::clone(&self.lock_token());
        let mut token_checked = false;
        let log = |line: std::fmt::Arguments<'_>| self.log_line(line);
        retry::with_retries_as(&self.policy(&log), method, repeat, endpoint, || {
            let outcome = self.attempt(
                method,
                endpoint,
                token.authorization.expose(),
                body.as_deref(),
            );
            let status = match &outcome {
                Ok(reply) if !token_checked && matches!(reply.status, 401 | 500) => reply.status,
                _ => return Ok(outcome),
            };
            token_checked = true;
            if self.credentials.is_none() {
                if self.token_refused(status, &token) {
                    return Err(refused_token(method, endpoint, status));
                }
                return Ok(outcome);
            }
            let fresh = self.fetch_token()?;
            if fresh == token.token {
                return Ok(outcome);
            }
            let fresh = Arc::new(TokenHeader::new(fresh));
            *self.lock_token() = Arc::clone(&fresh);
            token = fresh;
            self.log_line(format_args!(
                "{} {endpoint}: new token, repeating",
                method.as_str()
            ));
            // Not a retry: the same attempt again, with the new token.
            Ok(self.attempt(
                method,
                endpoint,
                token.authorization.expose(),
                body.as_deref(),
            ))
        })
    }

    /// Whether the server refused `token`, which got `status` (401 or 500)
    /// and cannot be replaced (no credentials). A `401` to a token call is a
    /// refusal. The server answers `500` both to a token signed with another
    /// key (the signature error escapes its check, before any database work)
    /// and to failures of its own, so one attempt each of two requests tells
    /// them apart: the token on a read that cannot fail on the server's side
    /// (a run that does not exist: `404` for an accepted token), and, when
    /// that gets `500` too, a control request with a user name that is not a
    /// token (`401` from a server that works). Only a token `500` next to a
    /// control `401` is a refusal; anything else leaves the answer to the
    /// usual retries.
    fn token_refused(&self, status: u16, token: &TokenHeader) -> bool {
        if status == 401 {
            return true;
        }
        let probe = self.attempt(
            Method::Get,
            PROBE_ENDPOINT,
            token.authorization.expose(),
            None,
        );
        if !matches!(probe, Ok(ref reply) if reply.status == 500) {
            return false;
        }
        let control = self.attempt(
            Method::Get,
            PROBE_ENDPOINT,
            &basic_authorization(NOT_A_TOKEN, ""),
            None,
        );
        matches!(control, Ok(ref reply) if reply.status == 401)
    }

    /// `GET token` with the user name and password, retried like any GET.
    fn fetch_token(&self) -> Result<Secret> {
        let Some(credentials) = &self.credentials else {
            return Err(Error::invalid_argument(
                "no credentials to get a token with: set TASKFARM_USER and TASKFARM_PASSWORD",
            ));
        };
        let authorization =
            basic_authorization(&credentials.username, credentials.password.expose());
        let log = |line: std::fmt::Arguments<'_>| self.log_line(line);
        let reply = retry::with_retries(&self.policy(&log), Method::Get, "token", || {
            Ok(self.attempt(Method::Get, "token", &authorization, None))
        })?;
        let reply = reply.expect(&[200]).map_err(|e| match e.kind() {
            ErrorKind::Auth => e.context_after(&format!(
                " (the server refused user {:?} and its password)",
                credentials.username
            )),
            // Flask's page says only "Not Found": say what it means.
            ErrorKind::NotFound if e.http_status() == Some(404) => Error::with_http_status(
                ErrorKind::NotFound,
                404,
                format!(
                    "{} {NOT_AN_API} (GET token answered HTTP 404 Not Found); \
                     its URL usually ends in /api/",
                    self.base_url
                ),
            ),
            _ => e,
        })?;
        // The body holds the token: never quote it in a message.
        let answer: TokenAnswer = serde_json::from_slice(&reply.body).map_err(|_| {
            Error::with_http_status(
                ErrorKind::Protocol,
                200,
                "GET token answered HTTP 200 without a {\"token\": string} object",
            )
        })?;
        if answer.token.is_empty() {
            return Err(Error::with_http_status(
                ErrorKind::Protocol,
                200,
                "GET token answered HTTP 200 with an empty token",
            ));
        }
        if answer.token.len() > MAX_TOKEN_BYTES {
            return Err(Error::with_http_status(
                ErrorKind::Protocol,
                200,
                format!(
                    "GET token answered HTTP 200 with a token of {} bytes, more than the \
                     {MAX_TOKEN_BYTES} bytes accepted: requests carrying it would be too large \
                     for the server",
                    answer.token.len()
                ),
            ));
        }
        if answer.token.contains(':') {
            return Err(Error::with_http_status(
                ErrorKind::Protocol,
                200,
                "GET token answered HTTP 200 with a token holding a ':', \
                 which HTTP Basic authentication cannot carry",
            ));
        }
        // Held to the rules of TASKFARM_TOKEN, so that a token printed by
        // `taskfarm token` is one that `export TASKFARM_TOKEN=...` accepts.
        crate::client::settings::check_token(&answer.token, "it").map_err(|refused| {
            Error::with_http_status(
                ErrorKind::Protocol,
                200,
                format!(
                    "GET token answered HTTP 200 with a token that TASKFARM_TOKEN would refuse: \
                     {}",
                    refused.message()
                ),
            )
        })?;
        Ok(Secret::new(answer.token))
    }

    /// How this handle repeats its requests, as the retry loop needs it.
    fn policy<'a>(&'a self, log: &'a dyn Fn(std::fmt::Arguments<'_>)) -> Policy<'a> {
        Policy {
            retries: self.retries(),
            backoff: self.backoff,
            base_url: &self.base_url,
            observer: self.on_retry.as_ref(),
            announce: self.announce_retries,
            timeout: self.timeout(),
            log,
        }
    }

    /// What classifying a failure of an attempt needs besides the error.
    fn attempted(&self, watch: &SendWatch) -> Attempted<'_> {
        Attempted {
            request_sent: watch.request_sent(),
            timeout: self.timeout(),
            proxy: self.proxy_name.as_deref(),
        }
    }

    /// One attempt: send the request, read the whole answer.
    fn attempt(
        &self,
        method: Method,
        endpoint: &str,
        authorization: &str,
        body: Option<&[u8]>,
    ) -> std::result::Result<Reply, Classified> {
        let started = Instant::now();
        let watch = SendWatch::start();
        let url = self.url(endpoint);
        let timeout = Some(self.timeout());
        let sent = match method {
            Method::Get | Method::Delete => {
                let request = if method == Method::Get {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                request
                    .header("Authorization", authorization)
                    .config()
                    .timeout_global(timeout)
                    .build()
                    .call()
            }
            Method::Post | Method::Put => {
                let request = if method == Method::Post {
                    self.agent.post(&url)
                } else {
                    self.agent.put(&url)
                };
                let request = request
                    .header("Authorization", authorization)
                    .config()
                    .timeout_global(timeout)
                    .build();
                match body {
                    Some(bytes) => request
                        .header("Content-Type", "application/json")
                        .send(bytes),
                    None => request.send_empty(),
                }
            }
        };
        let outcome = sent
            .map_err(|e| self.unanswered(&e, &watch))
            .and_then(|mut response| {
                let status = response.status().as_u16();
                let redirect = (300..400).contains(&status).then(|| {
                    let location = response
                        .headers()
                        .get("location")
                        .and_then(|l| l.to_str().ok());
                    redirect_note(&self.base_url, endpoint, location)
                });
                response
                    .body_mut()
                    .with_config()
                    .limit(MAX_BODY_BYTES)
                    .read_to_vec()
                    .map(|body| Reply {
                        what: format!("{} {endpoint}", method.as_str()),
                        status,
                        body,
                        attempts: 1,
                        redirect,
                    })
                    .map_err(|e| retry::classify(&e, &self.attempted(&watch)).after_answer(status))
            });
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        match &outcome {
            Ok(reply) => self.log_line(format_args!(
                "{} {endpoint} -> {} ({elapsed:.1} ms)",
                method.as_str(),
                reply.status
            )),
            Err(e) => self.log_line(format_args!(
                "{} {endpoint} -> failed: {} ({elapsed:.1} ms)",
                method.as_str(),
                e.detail
            )),
        }
        outcome
    }

    /// The failure of a request that got no answer: as [`retry::classify`]
    /// says, but an `https://` URL whose server does not speak TLS says so
    /// (asking the server in plain HTTP when its hang-up leaves it open).
    fn unanswered(&self, error: &ureq::Error, watch: &SendWatch) -> Classified {
        let classified = retry::classify(error, &self.attempted(watch));
        let Some(rest) = self.base_url.strip_prefix("https://") else {
            return classified;
        };
        let not_tls = match retry::tls_mismatch(error) {
            TlsMismatch::No => false,
            TlsMismatch::Certain => true,
            TlsMismatch::IfPlainHttpAnswers => {
                self.proxy_name.is_none() && answers_plain_http(&self.base_url, self.timeout())
            }
        };
        if not_tls {
            classified.server_not_tls(&format!("http://{rest}"))
        } else {
            classified
        }
    }

    fn lock_token(&self) -> std::sync::MutexGuard<'_, Arc<TokenHeader>> {
        self.token.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log_line(&self, line: std::fmt::Arguments<'_>) {
        if self.log_requests {
            eprintln!("taskfarm: {}", scrub::clean(&line.to_string()));
        }
    }
}

/// The token and the `Authorization` header made of it, built once per token
/// rather than once per request (the base64 encoding was a tenth of the
/// user-space instructions per request in the benchmark's profile).
#[derive(Debug)]
struct TokenHeader {
    token: Secret,
    authorization: Secret,
    /// Keeps the token out of every message while it is in use.
    _scrub: Registration,
}

impl TokenHeader {
    fn new(token: Secret) -> TokenHeader {
        let authorization = Secret::new(basic_authorization(token.expose(), ""));
        TokenHeader {
            _scrub: scrub::register_token(token.expose()),
            token,
            authorization,
        }
    }
}

/// The error for a token the server refused when no credentials are there to
/// fetch a new one. Never quotes the token.
fn refused_token(method: Method, endpoint: &str, status: u16) -> Error {
    let why = match status {
        500 => "it was made with another SECRET_KEY: the server's key has changed",
        _ => "it is not a token of this server",
    };
    Error::with_http_status(
        ErrorKind::Auth,
        status,
        format!(
            "{} {endpoint} answered HTTP {}: the server refused the token ({why}), and there \
             are no credentials to get a new one: give a new token (taskfarm token), or set \
             TASKFARM_USER and TASKFARM_PASSWORD as well",
            method.as_str(),
            status_line(status)
        ),
    )
}

/// `Basic base64(user:password)`.
fn basic_authorization(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Whether the server of `base_url` answers a plain-HTTP request (the first
/// bytes of its answer are `HTTP/`), within `timeout` (at most 5 s).
fn answers_plain_http(base_url: &str, timeout: Duration) -> bool {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    let Ok(uri) = base_url.parse::<ureq::http::Uri>() else {
        return false;
    };
    let Some(endpoint) = Endpoint::of(&uri) else {
        return false;
    };
    let timeout = timeout.min(Duration::from_secs(5));
    let Some(address) = (endpoint.host, endpoint.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    let mut head = [0u8; 5];
    stream.set_read_timeout(Some(timeout)).is_ok()
        && stream.set_write_timeout(Some(timeout)).is_ok()
        && stream
            .write_all(format!("HEAD / HTTP/1.0\r\nHost: {}\r\n\r\n", endpoint.host).as_bytes())
            .is_ok()
        && stream.read_exact(&mut head).is_ok()
        && &head == b"HTTP/"
}

/// What a redirect of `endpoint` to `location` says: where it points and,
/// when the target is the same endpoint under another base URL, that URL.
/// A location holding credentials is not quoted.
fn redirect_note(base_url: &str, endpoint: &str, location: Option<&str>) -> String {
    let Some(location) = location.map(str::trim).filter(|l| !l.is_empty()) else {
        return "a redirect without a Location header".to_owned();
    };
    let lower = location.to_ascii_lowercase();
    let absolute = if lower.starts_with("http://") || lower.starts_with("https://") {
        location.to_owned()
    } else if location.starts_with('/') {
        // The base URL's scheme://authority, then the location's path.
        let authority_end = base_url
            .find("://")
            .and_then(|i| base_url[i + 3..].find('/').map(|j| i + 3 + j))
            .unwrap_or(base_url.len());
        format!("{}{location}", &base_url[..authority_end])
    } else {
        return format!("a redirect to {location:?}, which is not a URL");
    };
    let authority = absolute.split("://").nth(1).unwrap_or("");
    if authority.split('/').next().unwrap_or("").contains('@') {
        return "a redirect to a URL holding credentials (not shown)".to_owned();
    }
    let path = |url: &str| url.split(['?', '#']).next().unwrap_or("").to_owned();
    let (target, wanted) = (path(&absolute), path(endpoint));
    match target
        .strip_suffix(&wanted)
        .filter(|base| base.ends_with('/'))
    {
        Some(base) if base != base_url => {
            format!("the server redirects to {absolute}: use the URL {base} instead")
        }
        _ => format!("the server redirects to {absolute} (the library does not follow redirects)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_name_the_base_url_to_use() {
        let base = "http://h:5000/api/";
        assert_eq!(
            redirect_note(base, "token", Some("https://h/api/token")),
            "the server redirects to https://h/api/token: use the URL https://h/api/ instead"
        );
        assert_eq!(
            redirect_note(base, "runs/ab?info=", Some("/tf/api/runs/ab?info=")),
            "the server redirects to http://h:5000/tf/api/runs/ab?info=: \
             use the URL http://h:5000/tf/api/ instead"
        );
        assert!(redirect_note(base, "token", Some("http://h/login")).contains("http://h/login"));
        let hidden = redirect_note(base, "token", Some("http://u:pw@h/api/token"));
        assert!(!hidden.contains("pw"), "{hidden}");
        assert!(redirect_note(base, "token", None).contains("without a Location"));
    }

    #[test]
    fn basic_authorization_for_a_token_has_an_empty_password() {
        assert_eq!(basic_authorization("abc", ""), "Basic YWJjOg==");
    }
}
