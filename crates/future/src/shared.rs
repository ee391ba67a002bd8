//! `Shared<T>`: the handles' reference count, an `Arc` without weak counts.
//!
//! A future and its promise share one allocation. `std::sync::Arc` keeps two
//! counters in it (strong and weak), and dropping the last handle pays an
//! atomic read-modify-write on each; nothing here ever makes a weak
//! reference, so this is `Arc` with the strong count alone: one counter, one
//! read-modify-write per clone and per drop, and the same orderings as
//! `Arc`'s (see `Clone` and `Drop` below, and the Rustonomicon's "Implementing
//! Arc", from which this is taken).

use std::ops::Deref;
use std::ptr::NonNull;

use crate::sync::{fence, AtomicUsize, Ordering};

/// Above this many handles, `clone` aborts the process, as `Arc` does: the
/// count must never wrap around to zero while handles exist.
const MAX_HANDLES: usize = isize::MAX as usize;

/// What the allocation holds: the count of handles, then the value.
struct Counted<T> {
    handles: AtomicUsize,
    value: T,
}

/// A counted, shared handle to a `T` (see the module docs).
pub(crate) struct Shared<T> {
    ptr: NonNull<Counted<T>>,
}

// SAFETY: a `Shared<T>` gives `&T` to any thread that holds one, and the last
// one drops the `T` on whatever thread it is: exactly `Arc<T>`'s situation,
// with `Arc`'s bounds.
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Moves `value` into a new allocation, with one handle.
    pub(crate) fn new(value: T) -> Self {
        let counted = Box::new(Counted {
            handles: AtomicUsize::new(1),
            value,
        });
        Shared {
            ptr: NonNull::from(Box::leak(counted)),
        }
    }

    fn counted(&self) -> &Counted<T> {
        // SAFETY: `ptr` came from `Box::leak` in `new`, and the allocation
        // lives while any handle does (this one included): only the drop of
        // the last handle frees it.
        unsafe { self.ptr.as_ref() }
    }

    /// True if `a` and `b` are handles to the same allocation.
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// True if this is the only handle: then no other thread can reach the
    /// value (making another handle needs one), and every access another
    /// handle made before it was dropped happens-before what the caller
    /// does next (Acquire, pairing with the Release of `Drop`'s decrement).
    pub(crate) fn is_unique(&self) -> bool {
        self.counted().handles.load(Ordering::Acquire) == 1
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.counted().value
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        // Relaxed, as in `Arc::clone`: a new handle is made from an existing
        // one, which keeps the allocation alive meanwhile, and nothing is
        // published by counting it.
        let before = self.counted().handles.fetch_add(1, Ordering::Relaxed);
        if before > MAX_HANDLES {
            std::process::abort();
        }
        Shared { ptr: self.ptr }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Release, as in `Arc::drop`: this handle's uses of the value
        // happen-before the decrement, so before the last handle's Acquire
        // fence below, and so before the value is dropped.
        if self.counted().handles.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: this was the last handle (the count went from 1 to 0, and
        // no handle can be made without one), so nothing else can reach the
        // allocation; it came from `Box::leak` in `new` and is freed once.
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}
