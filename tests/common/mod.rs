//! Test support shared by the integration tests: the real taskfarm server
//! harness, a recording proxy in front of it, and the scripted fault server.
#![allow(dead_code)]

pub mod fault_server;
pub mod recording_proxy;
pub mod server;
