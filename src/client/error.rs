//! The client's error: a kind that the C layer maps to a `tf_status`, the
//! HTTP status where there was one, and a message for people.

use std::fmt;

use super::http::scrub;

/// What went wrong, in the classes a caller can act on. More kinds may come
/// in a later version: a `match` needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A bad argument: caught before anything was sent.
    InvalidArgument,
    /// The server could not be reached or did not answer in time, after retries.
    Connection,
    /// The server refused the credentials (HTTP 401).
    Auth,
    /// The run, task or info key does not exist on the server (HTTP 404).
    NotFound,
    /// Any other unexpected HTTP status.
    Http,
    /// An answer that breaks the protocol: bad JSON, a missing field, too large.
    Protocol,
    /// Not a failure: the worker stopped taking tasks, because a stop signal
    /// was caught or its deadline leaves no time for another task.
    Stopped,
}

/// An error of the protocol client. The message never holds a password or
/// token: the library builds no sentence from one, the text that comes from
/// outside (answers, OS and TLS errors) is cleaned where it comes in
/// (`scrub::clean`), and every constructor passes the whole message through
/// `scrub::clean_compound`, a last net that leaves the library's own words
/// alone.
///
/// Its `Debug` is what a `main` returning [`Result`] prints after `Error: `:
/// the message, then the kind and the HTTP status (`{:#?}`: the fields, the
/// HTTP status as [`Error::http_status`] gives it).
#[derive(Clone, PartialEq)]
pub struct Error {
    kind: ErrorKind,
    http_status: u16,
    message: String,
    may_have_reached_server: bool,
}

/// The result type of the protocol client.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with no HTTP status.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            http_status: 0,
            message: scrub::clean_compound(&message.into()),
            may_have_reached_server: false,
        }
    }

    /// A bad argument, caught before anything was sent.
    pub fn invalid_argument(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// An answer that breaks the protocol.
    pub fn protocol(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Protocol, message)
    }

    /// An error carrying the HTTP status the server answered with.
    pub fn with_http_status(
        kind: ErrorKind,
        http_status: u16,
        message: impl Into<String>,
    ) -> Error {
        Error {
            kind,
            http_status,
            message: scrub::clean_compound(&message.into()),
            may_have_reached_server: false,
        }
    }

    /// The same error, marked as one whose request may have reached the
    /// server ([`Error::may_have_reached_server`]).
    pub(crate) fn maybe_reached_server(mut self) -> Error {
        self.may_have_reached_server = true;
        self
    }

    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status of the answer that caused the error; `None` when
    /// there was no answer (a connection failure, a bad argument).
    pub fn http_status(&self) -> Option<u16> {
        (self.http_status != 0).then_some(self.http_status)
    }

    /// True when the server may have acted on the request: an attempt of it
    /// failed after a byte of it was sent and before an answer came (the
    /// connection closed or reset, a timeout), or the answer was of the 5xx
    /// class (the server, or a front proxy's back end, may have acted before
    /// failing). False for a request that certainly did not reach the server
    /// (cannot connect, DNS), for any other answer, and for errors that are
    /// not of a request.
    pub fn may_have_reached_server(&self) -> bool {
        self.may_have_reached_server
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `note` put after its message.
    pub fn context_after(mut self, note: &str) -> Error {
        self.message = scrub::clean_compound(&format!("{}{note}", self.message));
        self
    }

    /// The same error with `context` put in front of its message.
    pub fn context(mut self, context: &str) -> Error {
        self.message = scrub::clean_compound(&format!("{context}: {}", self.message));
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return f
                .debug_struct("Error")
                .field("kind", &self.kind)
                .field("http_status", &self.http_status())
                .field("message", &self.message)
                .finish();
        }
        write!(f, "{} ({:?}", self.message, self.kind)?;
        match self.http_status() {
            Some(status) => write!(f, ", HTTP {status})"),
            None => f.write_str(")"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_the_message_a_main_prints_and_the_status_is_an_option() {
        let refused = Error::new(ErrorKind::Connection, "GET token to http://h/api/: refused");
        assert_eq!(
            format!("{refused:?}"),
            "GET token to http://h/api/: refused (Connection)"
        );
        assert!(format!("{refused:#?}").contains("http_status: None"));
        let missing = Error::with_http_status(ErrorKind::NotFound, 404, "no run x");
        assert_eq!(format!("{missing:?}"), "no run x (NotFound, HTTP 404)");
        assert!(format!("{missing:#?}").contains("http_status: Some(\n        404,\n    )"));
    }
}
