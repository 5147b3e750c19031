//! The panic boundary: every exported function runs its body through one of
//! these, so a Rust error becomes a status plus `tf_last_error`, and a panic
//! becomes `TF_ERR_INTERNAL` instead of unwinding into C.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::last_error;
use super::status::tf_status;
use crate::client::Result;

/// Runs the body of the exported function `function`, which returns a status.
pub(crate) fn status_call(function: &str, body: impl FnOnce() -> Result<tf_status>) -> tf_status {
    guarded(function, tf_status::TF_ERR_INTERNAL, || {
        body().unwrap_or_else(|error| {
            last_error::record(function, error.message(), error.http_status().unwrap_or(0));
            error.kind().into()
        })
    })
}

/// Runs the body of an exported function that returns a value (a pointer, a
/// count, nothing for a `_free`), and returns `fallback` (NULL, -1, 0) when
/// the body fails or panics; the failure is recorded.
pub(crate) fn value_call<T: Copy>(
    function: &str,
    fallback: T,
    body: impl FnOnce() -> Result<T>,
) -> T {
    guarded(function, fallback, || {
        body().unwrap_or_else(|error| {
            last_error::record(function, error.message(), error.http_status().unwrap_or(0));
            fallback
        })
    })
}

/// Runs `body`, turning a panic into `on_panic` and a recorded message.
fn guarded<T>(function: &str, on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        last_error::record(
            function,
            &format!(
                "internal error, a bug in taskfarm_worker (please report it): {}",
                panic_message(payload.as_ref())
            ),
            0,
        );
        on_panic
    })
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "panic"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Error;
    use crate::ffi::last_error::{tf_last_error, tf_last_http_status};
    use std::ffi::CStr;

    fn last_error() -> String {
        unsafe { CStr::from_ptr(tf_last_error()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn errors_become_statuses_and_messages() {
        let status = status_call("tf_example", || {
            Err(Error::with_http_status(
                crate::client::ErrorKind::NotFound,
                404,
                "GET runs/x answered HTTP 404",
            ))
        });
        assert_eq!(status, tf_status::TF_ERR_NOT_FOUND);
        assert_eq!(last_error(), "tf_example: GET runs/x answered HTTP 404");
        assert_eq!(tf_last_http_status(), 404);
    }

    #[test]
    fn panics_stop_at_the_boundary() {
        let status = status_call("tf_example", || panic!("boom {}", 42));
        assert_eq!(status, tf_status::TF_ERR_INTERNAL);
        assert!(last_error().ends_with("boom 42"), "{}", last_error());
        let value = value_call("tf_getter", -1i64, || panic!("static"));
        assert_eq!(value, -1);
        assert!(last_error().starts_with("tf_getter: internal error"));
    }
}
