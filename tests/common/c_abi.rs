//! The C ABI as the Rust tests call it: C strings going in, the library's
//! strings coming out, the last error of the calling thread, and a run or a
//! worker opened with a test server's credentials. One copy for every test
//! binary.

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use taskfarm_worker::ffi::last_error::{tf_last_error, tf_last_http_status};
use taskfarm_worker::ffi::status::tf_status::TF_OK;
use taskfarm_worker::ffi::strings::tf_string_free;
use taskfarm_worker::ffi::taskfarm::{
    tf_run_status, tf_taskfarm, tf_taskfarm_create, tf_taskfarm_open, tf_taskfarm_status,
    tf_taskfarm_uuid,
};
use taskfarm_worker::ffi::worker::{tf_worker, tf_worker_new, tf_worker_uuid};

use super::server::TaskfarmServer;

/// `text` as a C string; a NUL inside it is a bug of the test (panics).
pub fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// The message of the last failure on the calling thread (`tf_last_error`),
/// copied; invalid UTF-8 is replaced, never a reason to panic.
pub fn last_error() -> String {
    unsafe { CStr::from_ptr(tf_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// `last_error()` followed by the HTTP status of that failure
/// (`tf_last_http_status`): `"message (HTTP 500)"`, for assertion messages
/// that must tell a refused request from a lost connection.
pub fn last_error_with_http() -> String {
    format!("{} (HTTP {})", last_error(), tf_last_http_status())
}

/// Copies a `char*` the library allocated (JSON text, a URL) and frees it
/// with `tf_string_free`; NULL or invalid UTF-8 fails the test.
pub fn take_string(string: *mut c_char) -> String {
    assert!(!string.is_null(), "NULL string: {}", last_error());
    let copy = unsafe { CStr::from_ptr(string) }
        .to_str()
        .unwrap()
        .to_owned();
    tf_string_free(string);
    copy
}

/// Copies a `const char*` the library owns (a UUID, a token); NULL or
/// invalid UTF-8 fails the test.
pub fn borrowed(string: *const c_char) -> String {
    assert!(!string.is_null(), "NULL string: {}", last_error());
    unsafe { CStr::from_ptr(string) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// A new run of `num_tasks` tasks on `server` (`tf_taskfarm_create` with its
/// credentials and URL), to be freed with `tf_taskfarm_free`; a failure
/// fails the test.
pub fn create_run(server: &TaskfarmServer, num_tasks: i64) -> *mut tf_taskfarm {
    let (user, password, url) = (c(&server.user), c(&server.password), c(&server.url));
    let mut tf = ptr::null_mut();
    let status = tf_taskfarm_create(
        user.as_ptr(),
        password.as_ptr(),
        url.as_ptr(),
        num_tasks,
        &mut tf,
    );
    assert_eq!(
        status,
        TF_OK,
        "tf_taskfarm_create: {}",
        last_error_with_http()
    );
    tf
}

/// The run `uuid` opened with `server`'s credentials at `url` (the server's,
/// or a proxy's in front of it) through `tf_taskfarm_open`, to be freed with
/// `tf_taskfarm_free`; a failure fails the test.
pub fn open_run(server: &TaskfarmServer, url: &str, uuid: &str) -> *mut tf_taskfarm {
    let (user, password, url, uuid) = (c(&server.user), c(&server.password), c(url), c(uuid));
    let mut tf = ptr::null_mut();
    let status = tf_taskfarm_open(
        user.as_ptr(),
        password.as_ptr(),
        url.as_ptr(),
        uuid.as_ptr(),
        &mut tf,
    );
    assert_eq!(
        status,
        TF_OK,
        "tf_taskfarm_open: {}",
        last_error_with_http()
    );
    tf
}

/// A worker registered for run `uuid` with `server`'s credentials at `url`
/// (the server's, or a proxy's) through `tf_worker_new`, to be freed with
/// `tf_worker_free`; on failure, the status and the last error.
pub fn try_new_worker(
    server: &TaskfarmServer,
    url: &str,
    uuid: &str,
) -> Result<*mut tf_worker, String> {
    let (user, password, url, uuid) = (c(&server.user), c(&server.password), c(url), c(uuid));
    let mut w = ptr::null_mut();
    let status = tf_worker_new(
        user.as_ptr(),
        password.as_ptr(),
        url.as_ptr(),
        uuid.as_ptr(),
        &mut w,
    );
    if status != TF_OK {
        return Err(format!(
            "tf_worker_new: {status:?}: {}",
            last_error_with_http()
        ));
    }
    Ok(w)
}

/// [`try_new_worker`], whose failure fails the test.
pub fn new_worker(server: &TaskfarmServer, url: &str, uuid: &str) -> *mut tf_worker {
    try_new_worker(server, url, uuid).unwrap_or_else(|e| panic!("{e}"))
}

/// The run's UUID (`tf_taskfarm_uuid`), copied.
pub fn run_uuid(tf: *const tf_taskfarm) -> String {
    borrowed(tf_taskfarm_uuid(tf))
}

/// Every count of the run and its percentage done (`tf_taskfarm_status`,
/// one request); on failure, the status and the last error.
pub fn run_status(tf: *const tf_taskfarm) -> Result<tf_run_status, String> {
    let mut s = tf_run_status {
        num_tasks: -1,
        num_waiting: -1,
        num_computing: -1,
        num_done: -1,
        percent_done: -1.0,
    };
    match tf_taskfarm_status(tf, &mut s) {
        TF_OK => Ok(s),
        other => Err(format!(
            "tf_taskfarm_status: {other:?}: {}",
            last_error_with_http()
        )),
    }
}

/// The worker's UUID (`tf_worker_uuid`), copied.
pub fn worker_uuid(w: *const tf_worker) -> String {
    borrowed(tf_worker_uuid(w))
}
