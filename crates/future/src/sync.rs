//! The synchronisation primitives the crate is built on, swapped for loom's
//! model-checked twins under `--cfg loom`.
//!
//! Each future keeps its whole fast path in one atomic word (`Inner::state`
//! in `future.rs`) and its outcome in an [`UnsafeCell`] that the word guards;
//! the mutex and the condition variable are touched only once someone has
//! registered to wait (a bit in the word says so). `future.rs` and
//! `docs/future.md` argue each transition; loom checks them, the cell
//! accesses included (loom's `UnsafeCell` fails a model on any access that
//! the word's orderings do not separate from another).
//!
//! The trace recorder's event blocks (`trace/block.rs`) are written by one
//! thread and published by a `Release` store of their length, so that
//! recording an event takes no lock; loom checks that protocol too.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;

/// `std::cell::UnsafeCell` with loom's closure API, so that the same code
/// runs under loom (whose cell checks every access) and without it (where
/// this wrapper compiles away).
#[cfg(not(loom))]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer to the value; the caller's protocol must
    /// make the access exclusive.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

use std::time::Instant;

/// Locks `mutex`, ignoring poisoning.
///
/// Done-callbacks and wakes always run after the guard is dropped, but some
/// user code does run under a future's lock: the value's `Clone` in
/// `result()` (reads and moves of the value take turns there), and an
/// awaiting task's `Waker` clone and drop when it registers. If one of those
/// panics, the lock is poisoned with the data still consistent (the `Clone`
/// only borrowed the value; the waker list changes by whole entries), so we
/// keep going (`tests/value_clone.rs`).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Blocks on `cond` until woken or until `deadline` passes (`None`: forever).
///
/// Returns the guard and `false` if the deadline has passed. Callers loop:
/// condition variables may wake spuriously, so a wake-up is only a hint to
/// re-check the state.
pub(crate) fn wait_until<'a, T>(
    cond: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> (MutexGuard<'a, T>, bool) {
    match deadline {
        None => (
            cond.wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            true,
        ),
        Some(deadline) => {
            let now = Instant::now();
            if now >= deadline {
                return (guard, false);
            }
            let (guard, _) = cond
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (guard, true)
        }
    }
}

/// Turns a relative timeout into an absolute deadline, once, at the call.
///
/// A timeout too large to represent is treated as "wait forever".
pub(crate) fn deadline_after(timeout: Option<std::time::Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}
