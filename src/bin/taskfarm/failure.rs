//! Failures of the tool: an exit status and a one-line message, printed on
//! stderr as `taskfarm: <message>`, never holding the password.

use std::sync::OnceLock;

use taskfarm_worker::internal::{Error, ErrorKind};

use crate::format::is_bidi_control;

/// Exit status of a local failure (the password cannot be read, stdout cannot
/// be written).
pub const EXIT_LOCAL: i32 = 1;
/// Exit status of a usage error (clap's).
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the server cannot be reached after retries.
pub const EXIT_CONNECTION: i32 = 3;
/// Exit status when the server refuses the credentials.
pub const EXIT_AUTH: i32 = 4;
/// Exit status when the run or task does not exist.
pub const EXIT_NOT_FOUND: i32 = 5;
/// Exit status of any other server or protocol error.
pub const EXIT_SERVER: i32 = 6;
/// Exit status of `watch` stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// A failure: the exit status and the message.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(EXIT_USAGE, message)
    }

    pub fn local(message: impl Into<String>) -> Failure {
        Failure::new(EXIT_LOCAL, message)
    }
}

/// The exit status for an error of the protocol client.
pub fn exit_code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::InvalidArgument => EXIT_USAGE,
        ErrorKind::Connection => EXIT_CONNECTION,
        ErrorKind::Auth => EXIT_AUTH,
        ErrorKind::NotFound => EXIT_NOT_FOUND,
        // The tool installs no stop signals and sets no deadline.
        ErrorKind::Stopped => EXIT_INTERRUPTED,
        // Http, Protocol, and any kind a later version adds: the server's answer.
        _ => EXIT_SERVER,
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::new(exit_code(error.kind()), error.message())
    }
}

/// The password in use, so that no message can ever show it.
static SECRET: OnceLock<String> = OnceLock::new();

/// Remembers the password to keep it out of every message.
pub fn register_secret(password: &str) {
    let _ = SECRET.set(password.to_owned());
}

/// The message as one line, the password (if it is long enough to be told
/// apart from ordinary text) replaced by `***`: control characters (C0, DEL,
/// C1: a line break, an escape sequence from a server's answer) and
/// bidirectional formatting characters become spaces.
pub fn one_line(message: &str) -> String {
    let mut line: String = message
        .split(|c: char| c.is_control() || is_bidi_control(c))
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(secret) = SECRET.get().filter(|s| s.chars().count() >= 4) {
        line = line.replace(secret.as_str(), "***");
    }
    line
}

/// Prints `taskfarm: <message>` on stderr and exits with `code`.
pub fn exit_with(code: i32, message: &str) -> ! {
    eprintln!("taskfarm: {}", one_line(message));
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_class_has_its_own_status() {
        let codes = [
            ErrorKind::InvalidArgument,
            ErrorKind::Connection,
            ErrorKind::Auth,
            ErrorKind::NotFound,
            ErrorKind::Http,
        ]
        .map(exit_code);
        assert_eq!(codes, [2, 3, 4, 5, 6]);
        assert_eq!(exit_code(ErrorKind::Protocol), EXIT_SERVER);
    }

    #[test]
    fn messages_are_one_line_without_the_password() {
        register_secret("hunter2");
        assert_eq!(
            one_line("first\n  second\r\n\tthird hunter2"),
            "first second third ***"
        );
        // A server's text with DEL, a C1 CSI and a right-to-left override.
        assert_eq!(
            one_line("run a\u{7f}b\u{9b}31mc\u{202e}d"),
            "run a b 31mc d"
        );
    }
}
