//! A server that stays down: every call fails with `TF_ERR_CONNECTION` within
//! the bound that `TASKFARM_RETRIES` and `TASKFARM_BACKOFF` give. Without
//! jitter (`TASKFARM_RETRY_JITTER=none`): no wait before the first retry,
//! then backoff·2^(n-1), and no sooner. With it (the default) each wait is
//! drawn between 0 and twice its step: never longer than twice the bound.
//! The environment is process-wide, so this binary holds a single test.

mod common;

use std::ffi::CString;
use std::ptr;
use std::time::{Duration, Instant};

use common::c_abi::last_error;
use taskfarm_worker::ffi::status::tf_status::TF_ERR_CONNECTION;
use taskfarm_worker::ffi::taskfarm::{tf_taskfarm_create, tf_taskfarm_open};
use taskfarm_worker::ffi::worker::tf_worker_new;

#[test]
fn a_dead_server_fails_every_call_within_retries_times_backoff() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // SAFETY (Rust 2024 rules): the only test of this binary, no other thread.
    std::env::set_var("TASKFARM_URL", format!("http://127.0.0.1:{port}/api/"));
    std::env::set_var("TASKFARM_USER", "alice");
    std::env::set_var("TASKFARM_PASSWORD", "pw");
    std::env::set_var("TASKFARM_RETRIES", "4");
    std::env::set_var("TASKFARM_BACKOFF", "0.1");
    // Waits before the retries: 0, 0.2, 0.4 and 0.8 s.
    let bound = Duration::from_millis(1400);
    let uuid = CString::new("0123456789abcdef0123456789abcdef").unwrap();
    let calls: [(&str, Box<dyn Fn() -> _>); 3] = [
        (
            "tf_taskfarm_create",
            Box::new(|| {
                let mut tf = ptr::null_mut();
                tf_taskfarm_create(ptr::null(), ptr::null(), ptr::null(), 5, &mut tf)
            }),
        ),
        (
            "tf_taskfarm_open",
            Box::new(|| {
                let mut tf = ptr::null_mut();
                tf_taskfarm_open(
                    ptr::null(),
                    ptr::null(),
                    ptr::null(),
                    uuid.as_ptr(),
                    &mut tf,
                )
            }),
        ),
        (
            "tf_worker_new",
            Box::new(|| {
                let mut w = ptr::null_mut();
                tf_worker_new(ptr::null(), ptr::null(), ptr::null(), uuid.as_ptr(), &mut w)
            }),
        ),
    ];
    for (jitter, (name, call)) in [false, true]
        .into_iter()
        .flat_map(|j| calls.iter().map(move |c| (j, c)))
    {
        // SAFETY (Rust 2024 rules): the only test of this binary, no other thread.
        if jitter {
            std::env::remove_var("TASKFARM_RETRY_JITTER");
        } else {
            std::env::set_var("TASKFARM_RETRY_JITTER", "none");
        }
        let started = Instant::now();
        let status = call();
        let elapsed = started.elapsed();
        let message = last_error();
        assert_eq!(status, TF_ERR_CONNECTION, "{name}: {message}");
        assert!(
            message.contains("cannot connect") && message.contains("(after 5 attempts)"),
            "{message}"
        );
        let (low, high) = if jitter {
            (Duration::ZERO, 2 * bound)
        } else {
            (bound, bound)
        };
        assert!(
            elapsed >= low && elapsed < high + Duration::from_millis(600),
            "{name} (jitter: {jitter}) took {elapsed:?}, the bound is {bound:?}"
        );
        eprintln!(
            "{name} (jitter: {jitter}): TF_ERR_CONNECTION after {:.2} s (bound {:.2} s)",
            elapsed.as_secs_f64(),
            bound.as_secs_f64()
        );
    }
}
