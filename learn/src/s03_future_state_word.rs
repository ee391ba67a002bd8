//! Future, step 3: the state in one atomic word.
//!
//! Over step 2: the state moves out of the mutex into an `AtomicU8`, the
//! source of truth. An executor starts every task, so Pending -> Running is
//! the hot transition; it becomes one compare-and-swap, no lock. That is safe
//! because nobody waits for "running": no waiter must be woken.
//!
//! Every move to a *done* state still takes the lock (the value and the
//! condvar live there) and is a CAS from the state it saw, so a lock-free
//! start racing with `cancel` has one winner. Done-ness changes only under
//! the lock, so a reader that holds it and sees "not done" can sleep on the
//! condvar without missing the completion; `done()` is one load, no lock.

use std::sync::atomic::{AtomicU8, Ordering::*};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

pub const PENDING: u8 = 0;
pub const RUNNING: u8 = 1;
pub const CANCELLED: u8 = 2;
pub const FINISHED: u8 = 3;

pub struct Future<T> {
    state: AtomicU8,
    value: Mutex<Option<T>>,
    done: Condvar,
}

impl<T: Clone> Future<T> {
    pub fn pending() -> Self {
        let (value, done) = (Mutex::new(None), Condvar::new());
        Future { state: AtomicU8::new(PENDING), value, done }
    }

    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One load, no lock. Acquire pairs with the Release of the move to a
    /// done state, so whoever sees "done" also sees the value written.
    pub fn done(&self) -> bool {
        self.state.load(Acquire) >= CANCELLED
    }

    /// Lock-free: one CAS, which alone decides a race with `cancel`. Relaxed:
    /// it publishes nothing (the task's inputs reach the executor through its
    /// queue, which orders them), and no reader waits for Running.
    pub fn set_running_or_notify_cancel(&self) -> bool {
        self.state.compare_exchange(PENDING, RUNNING, Relaxed, Relaxed).is_ok()
    }

    /// Under the lock; the CAS decides a race with a lock-free start. Release
    /// publishes the state to `done()`; on failure the value is only compared.
    pub fn cancel(&self) -> bool {
        let _value = self.lock();
        let won = self.state.compare_exchange(PENDING, CANCELLED, Release, Relaxed);
        match won {
            Ok(_) => self.done.notify_all(),
            Err(now) => return now == CANCELLED,
        }
        true
    }

    /// Under the lock, so the Relaxed load sees every done state (all written
    /// under it); only a start can race, and the CAS decides that. From
    /// Running nobody else moves the state: a plain store. Release: the value,
    /// written before, is visible to whoever Acquires "done".
    pub fn set_result(&self, value: T) -> bool {
        let mut slot = self.lock();
        let before = self.state.load(Relaxed);
        if before >= CANCELLED {
            return false;
        }
        *slot = Some(value);
        if before == RUNNING
            || self.state.compare_exchange(PENDING, FINISHED, Release, Relaxed).is_err()
        {
            self.state.store(FINISHED, Release);
        }
        drop(slot);
        self.done.notify_all();
        true
    }

    /// Blocks until done; the value, or `None` if cancelled.
    pub fn result(&self) -> Option<T> {
        let mut slot = self.lock();
        while !self.done() {
            slot = self.done.wait(slot).unwrap_or_else(PoisonError::into_inner);
        }
        slot.clone()
    }
}

/// The demo: `cargo run -p learn -- s03`.
pub fn main() {
    let task = Future::<u64>::pending();
    println!("start: {} (one CAS, no lock)", task.set_running_or_notify_cancel());
    println!("cancel while running: {}", task.cancel());
    println!("done before completion: {}", task.done());
    std::thread::scope(|s| {
        s.spawn(|| task.set_result(42));
        println!("result: {:?}, done: {}", task.result(), task.done());
    });
}

// The production crate adds: the same word with callbacks, waiters and
// wakers kept under the lock, a short spin before blocking, and loom models
// of every race. See `Promise::set_running_or_notify_cancel` and
// `Inner::finish` in `crates/future/src/future.rs`, checked by
// `crates/future/tests/loom.rs`.
