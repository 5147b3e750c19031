//! The library's version, as a string (the header has `TF_VERSION_MAJOR`,
//! `TF_VERSION_MINOR` and `TF_VERSION_PATCH` for the compile-time version).

use std::ffi::c_char;

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The version of the library at run time, `"MAJOR.MINOR.PATCH"`: a static
/// string, never freed. Compare it with the `TF_VERSION_*` macros of the header
/// the program was compiled with.
#[no_mangle]
pub extern "C" fn tf_version() -> *const c_char {
    VERSION.as_ptr().cast()
}
