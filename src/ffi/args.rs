//! Checks of the arguments C hands in: NULL pointers, UTF-8, numbers. Every
//! exported function checks all of its arguments here before it sends anything.

use std::ffi::{c_char, CStr};

use crate::client::{Error, Result};

/// A handle argument: NULL is refused.
pub(crate) fn handle<'a, T>(ptr: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: C passes NULL or a pointer this library handed out and has not freed.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(name))
}

/// A string argument that must be given: NULL and invalid UTF-8 are refused.
pub(crate) fn string<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    optional_string(ptr, name)?.ok_or_else(|| null(name))
}

/// A string argument that may be NULL (`None`); invalid UTF-8 is refused.
pub(crate) fn optional_string<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: a non-NULL string argument points to a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map(Some).map_err(|e| {
        Error::invalid_argument(format!(
            "{name} is not valid UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// An out-pointer, checked for NULL before anything is sent, written only on success.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Writes the result.
    pub(crate) fn write(self, value: T) {
        // SAFETY: checked non-NULL by `out`; C passes a pointer to writable memory.
        unsafe { self.0.write(value) }
    }
}

/// An out-pointer argument: NULL is refused.
pub(crate) fn out<T>(ptr: *mut T, name: &str) -> Result<Out<T>> {
    if ptr.is_null() {
        return Err(null(name));
    }
    Ok(Out(ptr))
}

/// A floating-point argument that must be a number (not NaN).
pub(crate) fn number(value: f64, name: &str) -> Result<f64> {
    if value.is_nan() {
        return Err(Error::invalid_argument(format!("{name} is NaN")));
    }
    Ok(value)
}

fn null(name: &str) -> Error {
    Error::invalid_argument(format!("{name} is NULL"))
}
