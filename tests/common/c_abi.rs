//! The C ABI as the Rust tests call it: C strings going in, the library's
//! strings coming out, and the last error of the calling thread. One copy
//! for every test binary.

use std::ffi::{c_char, CStr, CString};

use taskfarm_worker::ffi::last_error::{tf_last_error, tf_last_http_status};
use taskfarm_worker::ffi::strings::tf_string_free;

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
