//! An answer read to its end ([`Reply`]), and how a status or a body is told
//! in a message: the status line, the server's body cleaned and cut. A leaf
//! of the transport: the transport makes replies, the retry loop and the
//! protocol read them.

use serde::de::DeserializeOwned;

use super::scrub;
use crate::client::error::{Error, ErrorKind, Result};

/// The largest answer body accepted (8 MiB): the biggest legitimate answer,
/// the list of all runs, is far smaller.
pub const MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// How much of a server's body goes into an error message.
const BODY_EXCERPT_CHARS: usize = 300;

/// An answer read to its end.
#[derive(Debug, Clone)]
pub struct Reply {
    /// What was asked, for messages: `GET runs/UUID?info=numDone`.
    pub what: String,
    /// The HTTP status.
    pub status: u16,
    /// The body (at most [`MAX_BODY_BYTES`]).
    pub body: Vec<u8>,
    /// How many attempts it took (1 when the first answer was kept).
    pub attempts: u32,
    /// For a redirect (3xx): where it points and the base URL to use instead.
    pub redirect: Option<String>,
}

impl Reply {
    /// The reply when its status is one of `expected`, else the error that
    /// status means (401 → auth, 404 → not found, 502/503/504 → connection,
    /// else HTTP), naming the request, the status and the server's body. An
    /// error of the 5xx class may have reached the server
    /// ([`Error::may_have_reached_server`]): the server, or a front proxy's
    /// back end, may have acted before the failure was answered.
    pub fn expect(self, expected: &[u16]) -> Result<Reply> {
        if expected.contains(&self.status) {
            return Ok(self);
        }
        let kind = match self.status {
            401 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            502..=504 => ErrorKind::Connection,
            _ => ErrorKind::Http,
        };
        let error = Error::with_http_status(
            kind,
            self.status,
            format!(
                "{} answered HTTP {}{}: {}",
                self.what,
                status_line(self.status),
                match self.attempts {
                    0 | 1 => String::new(),
                    n => format!(" (after {n} attempts)"),
                },
                match &self.redirect {
                    Some(redirect) => redirect.clone(),
                    None => describe_body(&self.body),
                }
            ),
        );
        Err(if self.status >= 500 {
            error.maybe_reached_server()
        } else {
            error
        })
    }

    /// The body parsed as JSON into `T`; a body that does not fit is a protocol error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::with_http_status(
                ErrorKind::Protocol,
                self.status,
                format!(
                    "{} answered HTTP {} with a body that breaks the protocol ({}): {}",
                    self.what,
                    self.status,
                    // serde quotes the answer's strings.
                    scrub::clean(&e.to_string()),
                    describe_body(&self.body)
                ),
            )
        })
    }
}

/// `404 Not Found`: the status with its reason phrase.
pub fn status_line(status: u16) -> String {
    match ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// The server's body for a message: secrets removed, HTML tags dropped,
/// white space folded, secrets removed again (a tag or a line break may have
/// split one), cut to a sane length.
pub fn describe_body(body: &[u8]) -> String {
    // The whole body (at most MAX_BODY_BYTES) is cleaned, so that no secret
    // is cut in two before it is removed; only its start is described.
    let text = scrub::clean(&String::from_utf8_lossy(body));
    let mut plain = String::new();
    let mut in_tag = false;
    for c in text.chars().take(64 * 1024) {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                plain.push(' ');
            }
            _ if !in_tag => plain.push(if c.is_control() { ' ' } else { c }),
            _ => {}
        }
    }
    let folded = scrub::clean(&plain.split_whitespace().collect::<Vec<_>>().join(" "));
    if folded.is_empty() {
        return "(empty body)".to_owned();
    }
    if folded.chars().count() > BODY_EXCERPT_CHARS {
        let cut: String = folded.chars().take(BODY_EXCERPT_CHARS).collect();
        return format!("{cut}... ({} bytes in all)", body.len());
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flask_error_pages_become_one_readable_line() {
        let html = b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n";
        assert_eq!(
            describe_body(html),
            "404 Not Found Not Found The requested URL was not found on the server."
        );
        assert_eq!(describe_body(b""), "(empty body)");
        let long = "x".repeat(5000);
        let described = describe_body(long.as_bytes());
        assert!(described.len() < 400 && described.ends_with("(5000 bytes in all)"));
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        let reply = |status| Reply {
            what: "GET runs".into(),
            status,
            body: b"nope".to_vec(),
            attempts: 1,
            redirect: None,
        };
        assert!(reply(200).expect(&[200]).is_ok());
        for (status, kind) in [
            (401, ErrorKind::Auth),
            (404, ErrorKind::NotFound),
            (503, ErrorKind::Connection),
            (500, ErrorKind::Http),
            (400, ErrorKind::Http),
        ] {
            let err = reply(status).expect(&[200]).unwrap_err();
            assert_eq!(err.kind(), kind);
            assert_eq!(err.http_status(), Some(status));
            assert!(err.message().starts_with("GET runs answered HTTP"), "{err}");
            assert!(err.message().ends_with("nope"), "{err}");
            assert_eq!(err.may_have_reached_server(), status >= 500, "{err}");
        }
    }
}
