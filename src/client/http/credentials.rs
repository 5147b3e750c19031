//! The secrets of a connection: a password or token ([`Secret`], kept out of
//! `Debug` output), the credentials that fetch a token, and the longest
//! token accepted. A leaf: settings, proxy and transport all use it.

use std::fmt;

/// The longest token accepted, from `GET token` or from the caller (4 KiB).
/// Its Basic header, a third longer, must fit the request-header limits of common servers
/// (gunicorn 8190 bytes per header line, nginx 8 KiB); the server's own
/// tokens are about 200 bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// A password or token: kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: use it only to build a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A user name and its password, for `GET token`.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The user's password.
    pub password: Secret,
}
