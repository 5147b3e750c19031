//! Test support shared by the integration tests: the real taskfarm server
//! harness and the scripted fault server.
#![allow(dead_code)]

pub mod fault_server;
pub mod server;
