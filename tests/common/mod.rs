//! Test support shared by the integration tests: the real taskfarm server
//! harness, the requests in its access log, and the scripted fault server.
#![allow(dead_code)]

pub mod access_log;
pub mod fault_server;
pub mod server;
