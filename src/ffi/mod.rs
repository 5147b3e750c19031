//! The C ABI of `include/taskfarm_worker.h`.
//!
//! Every exported function is thin: check its arguments ([`args`]), call the
//! protocol client, map the result to a [`status::tf_status`] and record the
//! failure for `tf_last_error` ([`last_error`]). The body of each runs inside
//! the panic boundary of [`boundary`], so no panic reaches C. How C holds
//! an opaque type (`tf_taskfarm`, `tf_worker`, `tf_run_list`) is written once
//! in `handle.rs`: every constructor hands its handle out there, every
//! `_free` and every borrow of a handle goes through it.
//!
//! Raw pointers from C are checked for NULL and then trusted: a pointer that
//! is not NULL must point to what the header says. That is why the module
//! allows `not_unsafe_ptr_arg_deref`: the functions are `extern "C"` entry
//! points whose contract is the header, not Rust's type system.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
// The types carry their C names (`tf_taskfarm`, `tf_status`, ...).
#![allow(non_camel_case_types)]

pub mod args;
pub mod boundary;
mod handle;
pub mod last_error;
pub mod run_list;
pub mod status;
pub mod stop;
pub mod strings;
pub mod taskfarm;
pub mod version;
pub mod worker;
