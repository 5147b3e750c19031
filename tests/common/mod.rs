//! Test support shared by the integration tests: the real taskfarm server
//! harness, the requests in its access log, the scripted fault server and
//! the Slurm cluster harness.
#![allow(dead_code)]

pub mod access_log;
pub mod fault_server;
pub mod server;
pub mod slurm;
