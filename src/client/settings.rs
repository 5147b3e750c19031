//! Where a handle's settings come from: the caller's arguments, then the
//! `TASKFARM_*` environment variables, then the defaults of the Python client.

use std::path::PathBuf;
use std::time::Duration;

use super::env;
use super::error::{Error, Result};
use super::http::credentials::{Credentials, Secret, MAX_TOKEN_BYTES};
use super::http::endpoint::split_authority;
use super::http::proxy::{self, ProxySetting};
use super::http::retry::RetryObserver;

/// The URL used when neither the caller nor `TASKFARM_URL` gives one.
pub const DEFAULT_URL: &str = "http://localhost:5000/api/";
/// Timeout of one attempt when `TASKFARM_TIMEOUT` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries after the first attempt when `TASKFARM_RETRIES` is not set (as the Python client).
pub const DEFAULT_RETRIES: u32 = 10;
/// Backoff factor when `TASKFARM_BACKOFF` is not set (as the Python client).
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(300);
/// The smallest timeout accepted, in seconds (1 ms).
pub const MIN_TIMEOUT_SECS: f64 = 0.001;
/// The largest timeout accepted, in seconds (about 11.5 days).
pub const MAX_TIMEOUT_SECS: f64 = 1.0e6;
/// The most retries accepted.
pub const MAX_RETRIES: u32 = 1000;
/// The largest backoff factor accepted, in seconds.
pub const MAX_BACKOFF_SECS: f64 = 120.0;

/// The interval when neither `TASKFARM_UPDATE_INTERVAL` nor the program sets one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The longest interval accepted, in seconds (one day).
pub const MAX_INTERVAL_SECS: f64 = 86_400.0;

/// Checks an update interval given in seconds: a number in [0, one day].
pub fn interval_from_secs(seconds: f64) -> Result<Duration> {
    if !seconds.is_finite() || !(0.0..=MAX_INTERVAL_SECS).contains(&seconds) {
        return Err(Error::invalid_argument(format!(
            "update interval {seconds:?} s is not a number of seconds in [0, {MAX_INTERVAL_SECS:?}]"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The environment variables read by [`Settings::resolve`].
pub const VARIABLES: [&str; 10] = env::SETTINGS;

/// Everything a handle needs to reach the server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL of the API, always ending in `/`.
    pub base_url: String,
    /// The user name and password for `GET token`; `None` when a token was
    /// given without them (a refused token is then an error).
    pub credentials: Option<Credentials>,
    /// The token to start with (given, or `TASKFARM_TOKEN`): no `GET token`
    /// is sent. `None`: fetch one with the credentials. At least one of
    /// `credentials` and `token` is set.
    pub token: Option<Secret>,
    /// Timeout of one attempt (connect, send, answer and body).
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Backoff factor: no wait before the first retry, then `backoff·2^(n-1)`.
    pub backoff: Duration,
    /// A PEM bundle of extra certificate authorities for `https://`.
    pub ca_file: Option<PathBuf>,
    /// Print one line per request on stderr (`TASKFARM_LOG=debug`).
    pub log_requests: bool,
    /// Say once on stderr when a series of retries starts: what failed, how
    /// many retries follow and how long they may take. On by default;
    /// `TASKFARM_LOG=quiet` (or `off`) turns it off. A retry observer
    /// ([`Settings::on_retry`]) replaces it.
    pub announce_retries: bool,
    /// The proxy to go through, from `http_proxy`/`https_proxy`/`all_proxy`
    /// and `no_proxy` as the Python client reads them; `None`: direct.
    #[doc(hidden)]
    pub proxy: Option<ProxySetting>,
    /// Told of every retry before its wait; `None` by default (the
    /// command-line tool sets one to say what it is waiting for).
    #[doc(hidden)]
    pub on_retry: Option<RetryObserver>,
    /// At most one progress request per worker per this interval
    /// (`TASKFARM_UPDATE_INTERVAL`; zero: every update at once).
    pub update_interval: Duration,
}

/// Where the token of a handle comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource<'a> {
    /// `TASKFARM_TOKEN` when it is set; else the credentials fetch one.
    Environment,
    /// The token passed by the caller, or `TASKFARM_TOKEN` for `None`; one of
    /// them must be there. Credentials come from the environment, for
    /// re-authentication only.
    Required(Option<&'a str>),
    /// No token: the credentials fetch a new one (`taskfarm token`);
    /// `TASKFARM_TOKEN` is not read.
    Fetch,
}

impl Settings {
    /// Settings from the `TASKFARM_*` environment variables alone (see
    /// [`Settings::resolve`]): the URL, then `TASKFARM_TOKEN` or
    /// `TASKFARM_USER` and `TASKFARM_PASSWORD`, the timeout, retries,
    /// backoff, CA file, log level and update interval.
    pub fn from_env() -> Result<Settings> {
        Settings::resolve(None, None, None)
    }

    /// The same settings with the timeout of one attempt set to `timeout`
    /// (1 ms to about 11.5 days).
    pub fn with_timeout(self, timeout: Duration) -> Result<Settings> {
        let timeout = timeout_from_secs(timeout.as_secs_f64())?;
        Ok(Settings { timeout, ..self })
    }

    /// The same settings with `retries` retries after the first attempt (at
    /// most [`MAX_RETRIES`]).
    pub fn with_retries(self, retries: u32) -> Result<Settings> {
        let retries = check_retries(retries)?;
        Ok(Settings { retries, ..self })
    }

    /// The same settings with the progress interval of the workers made on
    /// them set to `interval` (zero: every update is sent at once; at most a day).
    pub fn with_update_interval(self, interval: Duration) -> Result<Settings> {
        let update_interval = interval_from_secs(interval.as_secs_f64())?;
        Ok(Settings {
            update_interval,
            ..self
        })
    }

    /// Settings from the caller's arguments, each falling back to its
    /// environment variable (`TASKFARM_USER`, `TASKFARM_PASSWORD`,
    /// `TASKFARM_URL`), plus the environment's token, timeout, retries,
    /// backoff, CA file, log level and update interval. With `TASKFARM_TOKEN`
    /// set the credentials are optional.
    pub fn resolve(
        username: Option<&str>,
        password: Option<&str>,
        url_base: Option<&str>,
    ) -> Result<Settings> {
        Settings::resolve_from(TokenSource::Environment, username, password, url_base)
    }

    /// Settings of a handle that starts with a token: `token`, or
    /// `TASKFARM_TOKEN` for `None`. `TASKFARM_USER` and `TASKFARM_PASSWORD`,
    /// when both are set, are kept for the case that the server refuses the
    /// token.
    pub fn resolve_with_token(token: Option<&str>, url_base: Option<&str>) -> Result<Settings> {
        Settings::resolve_from(TokenSource::Required(token), None, None, url_base)
    }

    /// Settings for fetching a new token with the credentials: as
    /// [`Settings::resolve`], but `TASKFARM_TOKEN` is ignored.
    pub fn resolve_credentials(
        username: Option<&str>,
        password: Option<&str>,
        url_base: Option<&str>,
    ) -> Result<Settings> {
        Settings::resolve_from(TokenSource::Fetch, username, password, url_base)
    }

    fn resolve_from(
        token: TokenSource<'_>,
        username: Option<&str>,
        password: Option<&str>,
        url_base: Option<&str>,
    ) -> Result<Settings> {
        env::check_unicode(&VARIABLES)?;
        Settings::resolve_with(token, username, password, url_base, &env::var)
    }

    /// As [`Settings::resolve`] and its siblings, reading variables through
    /// `env` (for tests).
    pub fn resolve_with(
        token_source: TokenSource<'_>,
        username: Option<&str>,
        password: Option<&str>,
        url_base: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings> {
        let token = match token_source {
            TokenSource::Environment => env(env::TOKEN)
                .map(|t| check_token(&t, "TASKFARM_TOKEN"))
                .transpose()?,
            TokenSource::Required(Some(given)) => Some(check_token(given, "the token")?),
            TokenSource::Required(None) => {
                let t = env(env::TOKEN).ok_or_else(|| {
                    Error::invalid_argument(
                        "no token: pass one or set the environment variable TASKFARM_TOKEN",
                    )
                })?;
                Some(check_token(&t, "TASKFARM_TOKEN")?)
            }
            TokenSource::Fetch => None,
        };
        let username = username.map(str::to_owned).or_else(|| env(env::USER));
        let password = password.map(str::to_owned).or_else(|| env(env::PASSWORD));
        if username.as_deref() == Some("") {
            return Err(Error::invalid_argument("the user name is empty"));
        }
        if let Some(username) = username.as_deref() {
            check_username(username)?;
        }
        let credentials = match (username, password) {
            (Some(username), Some(password)) => Some(Credentials {
                username,
                password: Secret::new(password),
            }),
            // With a token, credentials are only for re-authentication:
            // half of them is as good as none.
            _ if token.is_some() => None,
            (None, _) => {
                return Err(Error::invalid_argument(
                    "no user name: pass one or set the environment variable TASKFARM_USER \
                     (or give a token: TASKFARM_TOKEN)",
                ))
            }
            (Some(_), None) => {
                return Err(Error::invalid_argument(
                    "no password: pass one or set the environment variable TASKFARM_PASSWORD \
                     (or give a token: TASKFARM_TOKEN)",
                ))
            }
        };
        let url = match url_base {
            Some(u) => u.to_owned(),
            None => env(env::URL)
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_URL.to_owned()),
        };
        let timeout = match env(env::TIMEOUT) {
            Some(v) => parse_seconds("TASKFARM_TIMEOUT", &v).and_then(check_timeout)?,
            None => DEFAULT_TIMEOUT,
        };
        let retries = match env(env::RETRIES) {
            Some(v) => parse_retries(&v)?,
            None => DEFAULT_RETRIES,
        };
        let backoff = match env(env::BACKOFF) {
            Some(v) => parse_seconds("TASKFARM_BACKOFF", &v).and_then(check_backoff)?,
            None => DEFAULT_BACKOFF,
        };
        let update_interval = match env(env::UPDATE_INTERVAL) {
            Some(v) => parse_seconds("TASKFARM_UPDATE_INTERVAL", &v).and_then(|s| {
                interval_from_secs(s).map_err(|e| e.context("TASKFARM_UPDATE_INTERVAL"))
            })?,
            None => DEFAULT_INTERVAL,
        };
        let log = env(env::LOG);
        let log_requests = log.as_deref().is_some_and(env::log_is_debug);
        let announce_retries = !log.as_deref().is_some_and(env::log_is_quiet);
        let base_url = normalize_base_url(&url)?;
        Ok(Settings {
            proxy: proxy::choose(&base_url, env),
            base_url,
            credentials,
            token,
            timeout,
            retries,
            backoff,
            ca_file: env(env::CA_FILE)
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            log_requests,
            announce_retries,
            on_retry: None,
            update_interval,
        })
    }
}

/// Checks a user name before anything is sent: no `:`, which HTTP Basic
/// authentication cannot carry. A name typed as `user:password` (the habit
/// of `curl -u`) is the likely cause, so the message quotes only what comes
/// before the `:`: what follows may be the password.
pub fn check_username(username: &str) -> Result<()> {
    let Some((before, _)) = username.split_once(':') else {
        return Ok(());
    };
    Err(Error::invalid_argument(format!(
        "the user name {before:?} is followed by a ':' and more (not shown: it may be a \
         password), which HTTP Basic authentication cannot carry; give the user name alone \
         and the password separately (TASKFARM_PASSWORD, or the password prompt), not as \
         user:password"
    )))
}

/// Checks a token before anything is sent: not empty, at most
/// [`MAX_TOKEN_BYTES`], printable ASCII without spaces, and no `:` (it goes
/// into HTTP Basic as the user name, where `:` ends the name). The server's
/// tokens are JWTs (letters, digits, `-`, `_`, `.`). `what` names where it
/// came from; the message never quotes the token.
pub fn check_token(token: &str, what: &str) -> Result<Secret> {
    if token.is_empty() {
        let hint = if what == "TASKFARM_TOKEN" {
            " (did `taskfarm token` fail? unset it to use TASKFARM_USER and TASKFARM_PASSWORD)"
        } else {
            ""
        };
        return Err(Error::invalid_argument(format!("{what} is empty{hint}")));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Error::invalid_argument(format!(
            "{what} is {} bytes long, more than the limit of {MAX_TOKEN_BYTES}",
            token.len()
        )));
    }
    if let Some((at, c)) = token
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_graphic() || c == ':')
    {
        let kind = match c {
            ':' => "a ':'",
            c if c.is_whitespace() => "white space",
            c if c.is_control() => "a control character",
            _ => "a character that is not ASCII",
        };
        return Err(Error::invalid_argument(format!(
            "{what} holds {kind} at byte {at}: not a token of the taskfarm server"
        )));
    }
    Ok(Secret::new(token))
}

/// Checks a per-attempt timeout given in seconds and turns it into a `Duration`.
pub fn timeout_from_secs(seconds: f64) -> Result<Duration> {
    if !(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&seconds) {
        return Err(Error::invalid_argument(format!(
            "timeout {seconds:?} s is not a number of seconds in [{MIN_TIMEOUT_SECS}, {MAX_TIMEOUT_SECS:?}]"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Checks a number of retries.
pub fn check_retries(retries: u32) -> Result<u32> {
    if retries > MAX_RETRIES {
        return Err(Error::invalid_argument(format!(
            "{retries} retries is more than the limit of {MAX_RETRIES}"
        )));
    }
    Ok(retries)
}

fn parse_seconds(variable: &str, value: &str) -> Result<f64> {
    value.trim().parse::<f64>().map_err(|_| {
        Error::invalid_argument(format!("{variable}={value:?} is not a number of seconds"))
    })
}

fn check_timeout(seconds: f64) -> Result<Duration> {
    timeout_from_secs(seconds).map_err(|e| e.context("TASKFARM_TIMEOUT"))
}

fn check_backoff(seconds: f64) -> Result<Duration> {
    if !seconds.is_finite() || !(0.0..=MAX_BACKOFF_SECS).contains(&seconds) {
        return Err(Error::invalid_argument(format!(
            "TASKFARM_BACKOFF={seconds:?} is not a number of seconds in [0, {MAX_BACKOFF_SECS:?}]"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_retries(value: &str) -> Result<u32> {
    let digits = value.trim();
    let too_many = || {
        Error::invalid_argument(format!(
            "TASKFARM_RETRIES={value:?} is more than the limit of {MAX_RETRIES} retries"
        ))
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Any number of digits: one too large for u32 is the same mistake
        // as 65535.
        return match digits.parse::<u32>() {
            Ok(retries) if retries <= MAX_RETRIES => Ok(retries),
            _ => Err(too_many()),
        };
    }
    Err(Error::invalid_argument(format!(
        "TASKFARM_RETRIES={value:?} is not a whole number of retries"
    )))
}

/// Checks a base URL and gives it a trailing `/`. Only `http://` and
/// `https://` with a host are accepted; credentials in the URL are refused so
/// that they can never leak into a message or a log line.
pub fn normalize_base_url(url: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid_argument(format!("URL {url:?} {why}"));
    // Schemes are case-insensitive (RFC 3986): `HTTP://` is `http://`.
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(scheme, _)| {
            ["http", "https"]
                .iter()
                .any(|s| scheme.eq_ignore_ascii_case(s))
        })
        .ok_or_else(|| bad("does not start with http:// or https://"))?;
    let url = format!("{}://{rest}", scheme.to_ascii_lowercase());
    let url = url.as_str();
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    if authority.contains('@') {
        return Err(Error::invalid_argument(
            "the URL holds credentials: pass the user name and password separately",
        ));
    }
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("has a query, a fragment, spaces or control characters"));
    }
    let parsed: std::result::Result<ureq::http::Uri, _> = url.parse();
    if parsed.is_err() {
        return Err(bad("is not a valid URL"));
    }
    // Strictly: a port or host the parser reads loosely would send the
    // request (and the password) somewhere other than the user wrote.
    let default_port = if url.starts_with("https://") { 443 } else { 80 };
    split_authority(authority, default_port).map_err(|why| bad(&why))?;
    let mut normalized = url.to_owned();
    if !normalized.ends_with('/') {
        normalized.push('/');
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::error::ErrorKind;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> Result<Settings> {
        resolve_from(TokenSource::Environment, vars)
    }

    fn resolve_from(source: TokenSource<'_>, vars: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve_with(source, None, None, None, &|name| map.get(name).cloned())
    }

    #[test]
    fn environment_fills_what_the_caller_left_out() {
        let s = resolve(&[
            ("TASKFARM_USER", "alice"),
            ("TASKFARM_PASSWORD", "pw"),
            ("TASKFARM_URL", "http://example.org:8080/api"),
            ("TASKFARM_TIMEOUT", "2.5"),
            ("TASKFARM_RETRIES", "3"),
            ("TASKFARM_BACKOFF", "0.01"),
            ("TASKFARM_LOG", "debug"),
            ("TASKFARM_UPDATE_INTERVAL", "0.25"),
        ])
        .unwrap();
        let credentials = s.credentials.unwrap();
        assert_eq!(credentials.username, "alice");
        assert_eq!(credentials.password.expose(), "pw");
        assert!(s.token.is_none());
        assert_eq!(s.base_url, "http://example.org:8080/api/");
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert_eq!(s.retries, 3);
        assert_eq!(s.backoff, Duration::from_millis(10));
        assert!(s.log_requests);
        assert!(
            s.announce_retries,
            "debug lines do not silence the retry line"
        );
        assert_eq!(s.update_interval, Duration::from_millis(250));
    }

    #[test]
    fn taskfarm_log_quiet_or_off_silences_the_retry_line() {
        for value in ["quiet", "OFF", "Quiet"] {
            let s = resolve(&[
                ("TASKFARM_USER", "a"),
                ("TASKFARM_PASSWORD", "b"),
                ("TASKFARM_LOG", value),
            ])
            .unwrap();
            assert!(!s.announce_retries, "{value}");
            assert!(!s.log_requests, "{value}");
        }
        let s = resolve(&[
            ("TASKFARM_USER", "a"),
            ("TASKFARM_PASSWORD", "b"),
            ("TASKFARM_LOG", "info"),
        ])
        .unwrap();
        assert!(s.announce_retries && !s.log_requests);
    }

    #[test]
    fn defaults_are_those_of_the_python_client() {
        let s = resolve(&[("TASKFARM_USER", "a"), ("TASKFARM_PASSWORD", "b")]).unwrap();
        assert_eq!(s.base_url, DEFAULT_URL);
        assert_eq!(s.retries, 10);
        assert_eq!(s.backoff, Duration::from_millis(300));
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert!(!s.log_requests);
        assert!(s.announce_retries);
        assert_eq!(s.update_interval, Duration::from_secs(1));
    }

    #[test]
    fn missing_credentials_and_bad_numbers_are_refused() {
        assert!(resolve(&[("TASKFARM_PASSWORD", "b")])
            .unwrap_err()
            .message()
            .contains("TASKFARM_USER"));
        assert!(resolve(&[("TASKFARM_USER", "a")])
            .unwrap_err()
            .message()
            .contains("TASKFARM_PASSWORD"));
        for (var, value) in [
            ("TASKFARM_TIMEOUT", "abc"),
            ("TASKFARM_TIMEOUT", "0"),
            ("TASKFARM_TIMEOUT", "nan"),
            ("TASKFARM_TIMEOUT", "inf"),
            ("TASKFARM_RETRIES", "-1"),
            ("TASKFARM_RETRIES", "100000"),
            ("TASKFARM_BACKOFF", "-0.5"),
            ("TASKFARM_UPDATE_INTERVAL", "soon"),
            ("TASKFARM_UPDATE_INTERVAL", "-1"),
            ("TASKFARM_UPDATE_INTERVAL", "nan"),
            ("TASKFARM_UPDATE_INTERVAL", "inf"),
            ("TASKFARM_UPDATE_INTERVAL", "1e300"),
        ] {
            let err = resolve(&[
                ("TASKFARM_USER", "a"),
                ("TASKFARM_PASSWORD", "b"),
                (var, value),
            ])
            .unwrap_err();
            assert!(err.message().contains(var), "{var}={value}: {err}");
        }
        // Too many retries is one mistake, however many digits it has.
        for value in ["1001", "65535", "99999999999", "1".repeat(50).as_str()] {
            let err = resolve(&[
                ("TASKFARM_USER", "a"),
                ("TASKFARM_PASSWORD", "b"),
                ("TASKFARM_RETRIES", value),
            ])
            .unwrap_err();
            assert!(
                err.message()
                    .ends_with("is more than the limit of 1000 retries"),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn urls_are_checked_and_completed() {
        assert_eq!(
            normalize_base_url("https://h/api").unwrap(),
            "https://h/api/"
        );
        assert_eq!(
            normalize_base_url("HTTP://h:5000/api/").unwrap(),
            "http://h:5000/api/"
        );
        assert_eq!(
            normalize_base_url("HttpS://h/api").unwrap(),
            "https://h/api/"
        );
        for bad in [
            "",
            "ftp://h/api/",
            "http://",
            "http:///api/",
            "http://u:secret@h/api/",
            "http://h/api/?x=1",
            "http://h/a pi/",
            "http://127.0.0.1:5OOO/api/",
            "http://127.0.0.1:abc/api/",
            "http://127.0.0.1:70000/api/",
            "http://127.0.0.1:65536/api/",
            "http://127.0.0.1:99999/api/",
            "http://127.0.0.1:-1/api/",
            "http://127.0.0.1:/api/",
            "http://127.0.0.1:0/api/",
            "https://[::1]x/api/",
            "http://:5000/api/",
            "http://127.1:5000/api/",
        ] {
            let err = normalize_base_url(bad).unwrap_err();
            assert!(!err.message().contains("secret"), "{err}");
        }
        assert_eq!(
            normalize_base_url("http://127.0.0.1:5OOO/api/")
                .unwrap_err()
                .message(),
            "URL \"http://127.0.0.1:5OOO/api/\" has port \"5OOO\": a port is a number in 1..65535"
        );
    }

    #[test]
    fn a_user_name_with_a_colon_is_refused() {
        let err = Settings::resolve_with(
            TokenSource::Environment,
            Some("al:ice"),
            Some("pw"),
            None,
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::client::ErrorKind::InvalidArgument);
        assert!(
            err.message().contains("\"al\" is followed by a ':'"),
            "{err}"
        );
        assert!(!err.message().contains("ice"), "{err}");
    }

    #[test]
    fn a_user_name_typed_as_user_colon_password_does_not_print_the_password() {
        // The curl -u habit, as the argument and as TASKFARM_USER.
        let typed = "alice:S3cretPassw0rd";
        for from_env in [false, true] {
            let env = |name: &str| (from_env && name == "TASKFARM_USER").then(|| typed.to_owned());
            let arg = (!from_env).then_some(typed);
            let err = Settings::resolve_with(TokenSource::Environment, arg, None, None, &env)
                .unwrap_err();
            assert_eq!(err.kind(), crate::client::ErrorKind::InvalidArgument);
            assert!(!err.message().contains("S3cret"), "{err}");
            assert!(err.message().contains("\"alice\""), "{err}");
            assert!(err.message().contains("user:password"), "{err}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = resolve(&[("TASKFARM_USER", "a"), ("TASKFARM_PASSWORD", "hunter2")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6MX0.dGhpcy1pcy1ub3QtYS1zaWduYXR1cmU";

    #[test]
    fn a_token_in_the_environment_makes_credentials_optional() {
        let s = resolve(&[("TASKFARM_TOKEN", JWT)]).unwrap();
        assert_eq!(s.token.as_ref().map(Secret::expose), Some(JWT));
        assert!(s.credentials.is_none());
        // Half of the credentials is as good as none with a token ...
        let s = resolve(&[("TASKFARM_TOKEN", JWT), ("TASKFARM_USER", "a")]).unwrap();
        assert!(s.credentials.is_none());
        // ... and both are kept for re-authentication.
        let s = resolve(&[
            ("TASKFARM_TOKEN", JWT),
            ("TASKFARM_USER", "a"),
            ("TASKFARM_PASSWORD", "b"),
        ])
        .unwrap();
        assert!(s.token.is_some());
        assert_eq!(s.credentials.unwrap().username, "a");
    }

    #[test]
    fn a_required_token_comes_from_the_caller_then_the_environment() {
        let given = resolve_from(TokenSource::Required(Some(JWT)), &[]).unwrap();
        assert_eq!(given.token.unwrap().expose(), JWT);
        let from_env = resolve_from(TokenSource::Required(None), &[("TASKFARM_TOKEN", JWT)]);
        assert_eq!(from_env.unwrap().token.unwrap().expose(), JWT);
        let err = resolve_from(TokenSource::Required(None), &[("TASKFARM_USER", "a")]).unwrap_err();
        assert_eq!(err.kind(), crate::client::ErrorKind::InvalidArgument);
        assert!(err.message().contains("TASKFARM_TOKEN"), "{err}");
        // The caller's token wins over the environment's.
        let both = resolve_from(
            TokenSource::Required(Some("a.b.c")),
            &[("TASKFARM_TOKEN", JWT)],
        );
        assert_eq!(both.unwrap().token.unwrap().expose(), "a.b.c");
    }

    #[test]
    fn fetching_a_token_ignores_the_environments_token() {
        let s = resolve_from(
            TokenSource::Fetch,
            &[
                ("TASKFARM_TOKEN", ""),
                ("TASKFARM_USER", "a"),
                ("TASKFARM_PASSWORD", "b"),
            ],
        )
        .unwrap();
        assert!(s.token.is_none() && s.credentials.is_some());
        assert!(resolve_from(TokenSource::Fetch, &[("TASKFARM_TOKEN", JWT)]).is_err());
    }

    #[test]
    fn malformed_tokens_are_refused_without_being_quoted() {
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        for bad in [
            "",
            "secret token",
            "secret\ntoken",
            "secret\ttoken",
            "secret:token",
            "secret\u{7f}token",
            "secrettoken\u{e9}",
            &long,
        ] {
            for source in [TokenSource::Required(Some(bad)), TokenSource::Environment] {
                let err = resolve_from(source, &[("TASKFARM_TOKEN", bad)]).unwrap_err();
                assert_eq!(err.kind(), crate::client::ErrorKind::InvalidArgument);
                assert!(
                    bad.is_empty() || !err.message().contains("secret"),
                    "{bad:?}: {err}"
                );
                let name = match source {
                    TokenSource::Environment => "TASKFARM_TOKEN",
                    _ => "the token",
                };
                assert!(err.message().starts_with(name), "{err}");
            }
        }
        assert!(check_token(&"x".repeat(MAX_TOKEN_BYTES), "t").is_ok());
    }

    #[test]
    fn intervals_are_checked() {
        assert_eq!(interval_from_secs(0.0).unwrap(), Duration::ZERO);
        assert_eq!(
            interval_from_secs(0.25).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            interval_from_secs(MAX_INTERVAL_SECS).unwrap(),
            Duration::from_secs(86_400)
        );
        for bad in [
            -0.001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            MAX_INTERVAL_SECS + 1.0,
        ] {
            let err = interval_from_secs(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(err.message().contains("update interval"), "{err}");
        }
    }
}
