//! When a failed attempt is tried again, and how long to wait before it.
//!
//! The rules are those of the Python client (urllib3's `Retry(total=10,
//! backoff_factor=0.3, status_forcelist=[500, 502, 503, 504])`), plus a
//! timeout per attempt: connection failures and 500/502/503/504 answers are
//! retried for GET, PUT and DELETE; a POST is repeated only when the request
//! cannot have reached the server (nothing was sent).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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

/// The wait before retry number `retry` (1 for the first retry): none before
/// the first, then `backoff·2^(retry-1)`, never more than 120 s.
pub fn backoff_delay(backoff: Duration, retry: u32) -> Duration {
    const CAP: Duration = Duration::from_secs(120);
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
