//! The last failure of each thread: its message and HTTP status, read back by
//! `tf_last_error` and `tf_last_http_status`.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};

thread_local! {
    static LAST_ERROR: RefCell<(CString, c_int)> = RefCell::new((CString::default(), 0));
}

/// Records a failure of `function` on this thread.
pub(crate) fn record(function: &str, message: &str, http_status: u16) {
    let text = format!("{function}: {message}").replace('\0', "\\0");
    let text = CString::new(text).unwrap_or_default();
    // A thread being torn down has no thread-local storage left: then the
    // message is dropped, the status code still tells the caller.
    let _ = LAST_ERROR.try_with(|cell| {
        *cell.borrow_mut() = (text, c_int::from(http_status));
    });
}

/// The message of the last failure on the calling thread: what was asked,
/// the HTTP status and the server's body where there was one. Never holds a
/// password or token. An empty string when nothing has failed yet on this
/// thread; successful calls leave it as it is.
///
/// The string is owned by the library and stays valid until the next failing
/// call on the same thread; do not free it.
#[no_mangle]
pub extern "C" fn tf_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|cell| cell.borrow().0.as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// The HTTP status of the answer behind the last failure on the calling
/// thread, or 0 when that failure had no answer (bad argument, no connection).
#[no_mangle]
pub extern "C" fn tf_last_http_status() -> c_int {
    LAST_ERROR.try_with(|cell| cell.borrow().1).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn failures_are_kept_per_thread() {
        record("tf_test", "first", 404);
        std::thread::spawn(|| {
            assert_eq!(unsafe { CStr::from_ptr(tf_last_error()) }.to_bytes(), b"");
            assert_eq!(tf_last_http_status(), 0);
            record("tf_test", "other thread", 500);
        })
        .join()
        .unwrap();
        let message = unsafe { CStr::from_ptr(tf_last_error()) };
        assert_eq!(message.to_str().unwrap(), "tf_test: first");
        assert_eq!(tf_last_http_status(), 404);
        record("tf_test", "nul\0inside", 0);
        let message = unsafe { CStr::from_ptr(tf_last_error()) };
        assert_eq!(message.to_str().unwrap(), "tf_test: nul\\0inside");
    }
}
