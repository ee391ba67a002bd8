//! The synchronisation primitives the crate is built on, swapped for loom's
//! model-checked twins under `--cfg loom`.
//!
//! Everything shared between threads in this crate lives behind a [`Mutex`],
//! except each future's state word (`Inner::state` in `future.rs`), and
//! there is no `unsafe`: every happens-before edge that carries data comes
//! from a lock release followed by a lock acquire. The state word moves
//! lock-free only between states that are not done (Pending -> Running) or
//! between two done ones (the cancellation acknowledgement); becoming done
//! happens under the lock. That is what keeps the state machine small
//! enough to read in one screen, and what loom checks.
//!
//! One other exception: the trace recorder's event blocks
//! (`trace/block.rs`), written by one thread and published by a `Release`
//! store of their length, so that recording an event takes no lock; loom
//! checks that protocol too.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

use std::time::Instant;

/// Locks `mutex`, ignoring poisoning.
///
/// No code in this crate panics while holding a lock (user callbacks always
/// run after the guard is dropped), so a poisoned lock can only come from an
/// allocation failure; the data is still consistent and we keep going.
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
