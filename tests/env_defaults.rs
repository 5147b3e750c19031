//! `username`, `password` and `url_base` may be NULL: then `TASKFARM_USER`,
//! `TASKFARM_PASSWORD` and `TASKFARM_URL` are used (the header's
//! `tf_taskfarm_create`). The environment is process-wide, so this binary
//! holds a single test that changes it.

mod common;

use std::ffi::CString;
use std::ptr;

use common::c_abi::last_error;
use common::server::TaskfarmServer;
use taskfarm_worker::ffi::run_list::{tf_run_list_free, tf_run_list_len, tf_runs};
use taskfarm_worker::ffi::status::tf_status::*;
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

#[test]
fn null_credentials_and_url_come_from_the_environment() {
    let server = TaskfarmServer::start();
    // SAFETY (Rust 2024 rules): this binary runs no other thread that reads
    // the environment while it is changed.
    std::env::remove_var("TASKFARM_USER");
    std::env::remove_var("TASKFARM_PASSWORD");
    std::env::set_var("TASKFARM_URL", &server.url);

    let mut tf = ptr::null_mut();
    assert_eq!(
        tf_taskfarm_create(ptr::null(), ptr::null(), ptr::null(), 2, &mut tf),
        TF_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("TASKFARM_USER"), "{}", last_error());

    std::env::set_var("TASKFARM_USER", &server.user);
    assert_eq!(
        tf_taskfarm_create(ptr::null(), ptr::null(), ptr::null(), 2, &mut tf),
        TF_ERR_INVALID_ARGUMENT
    );
    assert!(
        last_error().contains("TASKFARM_PASSWORD"),
        "{}",
        last_error()
    );

    std::env::set_var("TASKFARM_PASSWORD", &server.password);
    assert_eq!(
        tf_taskfarm_create(ptr::null(), ptr::null(), ptr::null(), 2, &mut tf),
        TF_OK,
        "{}",
        last_error()
    );
    let mut w = ptr::null_mut();
    assert_eq!(
        tf_worker_new(
            ptr::null(),
            ptr::null(),
            ptr::null(),
            tf_taskfarm_uuid(tf),
            &mut w
        ),
        TF_OK,
        "{}",
        last_error()
    );
    let mut list = ptr::null_mut();
    assert_eq!(
        tf_runs(ptr::null(), ptr::null(), ptr::null(), &mut list),
        TF_OK
    );
    assert!(tf_run_list_len(list) >= 1);
    tf_run_list_free(list);

    // Explicit arguments win over the environment.
    let wrong = CString::new("wrong").unwrap();
    let mut other = ptr::null_mut();
    assert_eq!(
        tf_taskfarm_open(
            ptr::null(),
            wrong.as_ptr(),
            ptr::null(),
            tf_taskfarm_uuid(tf),
            &mut other
        ),
        TF_ERR_AUTH
    );

    // Bad settings in the environment are refused with their name.
    for (var, value) in [
        ("TASKFARM_TIMEOUT", "soon"),
        ("TASKFARM_RETRIES", "-3"),
        ("TASKFARM_BACKOFF", "nan"),
        ("TASKFARM_UPDATE_INTERVAL", "-1"),
        ("TASKFARM_UPDATE_INTERVAL", "1e300"),
        ("TASKFARM_URL", "localhost:5000"),
    ] {
        let saved = std::env::var(var).ok();
        std::env::set_var(var, value);
        assert_eq!(
            tf_taskfarm_open(
                ptr::null(),
                ptr::null(),
                ptr::null(),
                tf_taskfarm_uuid(tf),
                &mut other
            ),
            TF_ERR_INVALID_ARGUMENT,
            "{var}={value}"
        );
        assert!(
            last_error().contains(if var == "TASKFARM_URL" { "URL" } else { var }),
            "{}",
            last_error()
        );
        let mut worker = ptr::null_mut();
        assert_eq!(
            tf_worker_new(
                ptr::null(),
                ptr::null(),
                ptr::null(),
                tf_taskfarm_uuid(tf),
                &mut worker
            ),
            TF_ERR_INVALID_ARGUMENT,
            "{var}={value}"
        );
        assert!(worker.is_null());
        match saved {
            Some(v) => std::env::set_var(var, v),
            None => std::env::remove_var(var),
        }
    }
    assert!(other.is_null());

    // With no TASKFARM_URL the default http://localhost:5000/api/ is used.
    std::env::remove_var("TASKFARM_URL");
    std::env::set_var("TASKFARM_RETRIES", "0");
    let mut url = ptr::null_mut();
    let mut probe = ptr::null_mut();
    let status = tf_taskfarm_open(
        ptr::null(),
        ptr::null(),
        ptr::null(),
        tf_taskfarm_uuid(tf),
        &mut probe,
    );
    if status == TF_OK {
        // Something answers on localhost:5000: then it must be a taskfarm.
        let endpoint = CString::new("").unwrap();
        assert_eq!(tf_taskfarm_url(probe, endpoint.as_ptr(), &mut url), TF_OK);
        tf_taskfarm_free(probe);
    } else {
        assert!(
            last_error().contains("http://localhost:5000/api/"),
            "{}",
            last_error()
        );
    }
    std::env::remove_var("TASKFARM_RETRIES");
    if !url.is_null() {
        taskfarm_worker::ffi::strings::tf_string_free(url);
    }

    tf_worker_free(w);
    tf_taskfarm_free(tf);
}
