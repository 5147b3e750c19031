//! `taskfarm_worker`: a client for the [taskfarm] server with a C ABI, for
//! simulation codes written in C, C++ and Fortran.
//!
//! The crate has two layers:
//! - [`client`]: the protocol client in plain Rust (HTTP transport, retries,
//!   authentication, typed messages, runs and workers). No FFI types.
//! - [`ffi`]: the `extern "C"` functions of `include/taskfarm_worker.h`. Thin:
//!   check arguments, call the client, map errors to `tf_status`, never let a
//!   panic cross the boundary.
//!
//! [taskfarm]: https://pypi.org/project/taskfarm/

pub mod client;
pub mod ffi;
