//! The HTTP machinery under a [`Run`](crate::client::Run): one keep-alive
//! agent per handle, the token, the attempts of a request and their retries.
//!
//! - `transport.rs`: the connection of one handle: the agent, the token
//!   (fetched, refreshed, refused), one attempt of a request.
//! - [`retry`]: *where a retry is decided*: which failure may have reached
//!   the server, what is retried, the backoff, the one retry loop.
//! - `reply.rs`: an answer read to its end, the status line and the body
//!   told in a message.
//! - [`credentials`]: the password and token kept out of `Debug`, the
//!   longest token accepted.
//! - `single_write.rs`: a request's head and body sent in one write, and
//!   whether an attempt sent any byte of it.
//! - `resolve.rs`: host names looked up once a minute, not once per request.
//! - `proxy.rs`: which proxy, from the variables as the Python client reads them.
//! - `endpoint.rs`: a URL's host and port, read strictly.
//! - `tls.rs`: the system's roots plus `TASKFARM_CA_FILE`.
//! - `scrub.rs`: the password and token removed from every message and log line.
//!
//! The leaves are `credentials`, `reply`, `endpoint`, `scrub`: the transport
//! uses the retry loop, never the other way round. `cargo test --test
//! import_graph` fails on any circle.

pub mod credentials;
pub(crate) mod endpoint;
pub(crate) mod proxy;
pub mod reply;
mod resolve;
pub mod retry;
pub(crate) mod scrub;
mod single_write;
mod tls;
pub mod transport;
