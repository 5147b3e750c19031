//! Handles: how C holds the library's opaque types, written once.
//!
//! - [`Handle`]: implemented by each opaque type (`tf_taskfarm`, `tf_worker`,
//!   `tf_run_list`), saying how C holds it ([`Handle::Held`]) and whether a
//!   `_free` in this process may release it ([`Handle::releasable`]).
//! - [`hand_out`]: makes a handle, a raw pointer written to the caller's
//!   out-parameter (only on success: the value is built first).
//! - [`free`]: the body of every `tf_*_free`; NULL does nothing.
//! - [`borrow`]: the handle behind a pointer from C, NULL refused.
//! - [`lend`]: a handle that lives inside another one, lent to C and never
//!   freed by it.
//!
//! Every handle is held in a [`Boxed`] allocation today: C owns it alone,
//! from its constructor to its `_free`. A type shared by reference counting
//! would add a second [`Held`] (an `Arc`'s `into_raw` and `from_raw`).
//! There is no mutable borrow: C may call on one handle from several threads,
//! so what a call changes sits behind a lock inside the handle.

use super::args::{self, Out};
use super::boundary::value_call;
use crate::client::Result;

/// An opaque type C holds through a pointer.
pub(crate) trait Handle: Sized {
    /// How the pointer C holds was made, and how it is released.
    type Held: Held;

    /// Whether `tf_*_free` may release this handle in the calling process.
    /// Always, unless the type says otherwise (a worker after `fork()`).
    fn releasable(&self) -> bool {
        true
    }
}

/// How a handle's allocation is made and released.
pub(crate) trait Held {
    /// Moves `value` to where C holds it.
    fn into_raw<T>(value: T) -> *mut T;

    /// Releases what [`into_raw`](Self::into_raw) made.
    ///
    /// # Safety
    /// `ptr` came from `into_raw` of this same `Held` and is released once.
    unsafe fn release<T>(ptr: *mut T);
}

/// Held in a `Box`: C owns the handle alone.
pub(crate) enum Boxed {}

impl Held for Boxed {
    fn into_raw<T>(value: T) -> *mut T {
        Box::into_raw(Box::new(value))
    }

    unsafe fn release<T>(ptr: *mut T) {
        // SAFETY: the caller's contract: from Box::into_raw, released once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Makes a handle of `value` and writes it to `out`, which C then owns and
/// frees with the type's `_free`.
pub(crate) fn hand_out<T: Handle>(out: Out<*mut T>, value: T) {
    out.write(T::Held::into_raw(value));
}

/// Frees the handle `ptr` for the exported function `function` (a
/// `tf_*_free`): NULL does nothing, a handle that is not
/// [`releasable`](Handle::releasable) here is left alone (nothing of it
/// dropped, nothing freed).
pub(crate) fn free<T: Handle>(function: &str, ptr: *mut T) {
    value_call(function, (), || {
        // SAFETY: C passes NULL or a handle of this library not yet freed.
        if let Some(handle) = unsafe { ptr.as_ref() } {
            if handle.releasable() {
                // SAFETY: made by `hand_out` with this type's `Held`; C frees it once.
                unsafe { T::Held::release(ptr) };
            }
        }
        Ok(())
    })
}

/// The handle behind `ptr`, an argument named `name`, for one call: NULL is
/// refused (by [`args::handle`], where every NULL is checked).
pub(crate) fn borrow<'a, T: Handle>(ptr: *const T, name: &str) -> Result<&'a T> {
    args::handle(ptr, name)
}

/// A pointer to `handle`, a handle held inside another one, for a getter
/// that lends it: valid while its owner lives, never freed by C. The pointer
/// is `*mut` because the header declares it so; the library only ever takes
/// shared references to a handle.
pub(crate) fn lend<T: Handle>(handle: &T) -> *mut T {
    std::ptr::from_ref(handle).cast_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A handle that counts its drops.
    struct Counted {
        releasable: bool,
        drops: Arc<AtomicUsize>,
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Handle for Counted {
        type Held = Boxed;
        fn releasable(&self) -> bool {
            self.releasable
        }
    }

    fn made(releasable: bool, drops: &Arc<AtomicUsize>) -> *mut Counted {
        let mut handle = ptr::null_mut();
        let out = args::out(&mut handle, "out_handle").unwrap();
        let drops = Arc::clone(drops);
        hand_out(out, Counted { releasable, drops });
        assert!(!handle.is_null());
        handle
    }

    #[test]
    fn a_handle_is_made_borrowed_and_freed_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let handle = made(true, &drops);
        assert!(borrow(handle.cast_const(), "handle").unwrap().releasable);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        free("tf_example_free", handle);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        free("tf_example_free", ptr::null_mut::<Counted>());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_handle_not_releasable_here_is_left_alone() {
        let drops = Arc::new(AtomicUsize::new(0));
        let handle = made(false, &drops);
        free("tf_example_free", handle);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        // Still there: release it as its own process would.
        unsafe { Boxed::release(handle) };
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_null_handle_is_refused_by_name() {
        let error = borrow(ptr::null::<Counted>(), "worker").err().unwrap();
        assert_eq!(error.message(), "worker is NULL");
    }

    #[test]
    fn a_lent_handle_is_the_one_inside_its_owner() {
        let drops = Arc::new(AtomicUsize::new(0));
        let owner = Counted {
            releasable: true,
            drops,
        };
        assert!(ptr::eq(lend(&owner), &owner));
    }
}
