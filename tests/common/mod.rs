//! Test support shared by the integration tests: the C ABI helpers (C
//! strings, the last error, a run or a worker opened), the real taskfarm
//! server harness and the running of its scripts, the requests
//! in its access log, a recording proxy in front of it, the scripted fault
//! server, the worker journals of the reap tests, the Slurm cluster and Grid Engine
//! cell harnesses and the support of the MPI and Slurm tests.
#![allow(dead_code)]

pub mod access_log;
pub mod c_abi;
pub mod c_programs;
pub mod fault_server;
pub mod gridengine;
pub mod harness_script;
pub mod jobs;
pub mod journals;
pub mod recording_proxy;
pub mod server;
pub mod slurm;
pub mod tool;
