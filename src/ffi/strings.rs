//! Strings the library hands to C: allocated here, freed by `tf_string_free`.

use std::ffi::{c_char, CString};

use super::boundary::value_call;
use crate::client::{Error, Result};

/// Moves `text` into a C string owned by the caller (freed with `tf_string_free`).
pub(crate) fn into_c_string(text: String, what: &str) -> Result<*mut c_char> {
    CString::new(text)
        .map(CString::into_raw)
        .map_err(|_| Error::protocol(format!("{what} holds a NUL character")))
}

/// A string owned by a handle, for `const char*` getters.
pub(crate) fn owned_c_string(text: &str, what: &str) -> Result<CString> {
    CString::new(text).map_err(|_| Error::protocol(format!("{what} holds a NUL character")))
}

/// Frees a string that the library returned as `char*` (JSON text, URLs).
/// NULL does nothing. Never pass it a string from elsewhere, nor a
/// `const char*` owned by a handle.
#[no_mangle]
pub extern "C" fn tf_string_free(string: *mut c_char) {
    value_call("tf_string_free", (), || {
        if !string.is_null() {
            // SAFETY: the string came from `into_c_string` and is freed once.
            drop(unsafe { CString::from_raw(string) });
        }
        Ok(())
    })
}
