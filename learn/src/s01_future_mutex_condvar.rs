//! Future, step 1: a one-shot value behind a `Mutex` and a `Condvar`.
//!
//! The smallest future that works. One thread sets a value once; any number
//! of threads wait for it. The mutex guards the slot, and the condition
//! variable lets a reader sleep until the slot is filled instead of spinning.
//!
//! Two details carry the whole design:
//! * the reader checks the slot in a `while` loop around `wait`, because a
//!   condition variable may wake a thread for no reason (a spurious wake-up);
//! * the writer fills the slot while holding the lock, so a reader cannot
//!   check "empty", then miss the `notify_all`, then sleep forever: the
//!   check and the sleep happen under the same lock the writer needs.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

struct Shared<T> {
    slot: Mutex<Option<T>>,
    filled: Condvar,
}

/// The write side. `set` takes `self`, so setting twice does not compile.
pub struct Promise<T>(Arc<Shared<T>>);

/// The read side. Clone it to wait from several threads.
pub struct Future<T>(Arc<Shared<T>>);

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future(self.0.clone())
    }
}

/// A connected pair: what the promise sets, the future returns.
pub fn promise<T>() -> (Promise<T>, Future<T>) {
    let shared = Arc::new(Shared { slot: Mutex::new(None), filled: Condvar::new() });
    (Promise(shared.clone()), Future(shared))
}

impl<T> Promise<T> {
    /// Fills the slot and wakes every waiter.
    pub fn set(self, value: T) {
        // A poisoned lock only means another thread panicked while holding
        // it; the slot itself is still a valid `Option`, so carry on.
        let mut slot = self.0.slot.lock().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(value);
        self.0.filled.notify_all();
    }
}

impl<T: Clone> Future<T> {
    /// Blocks until the value is set, then returns a copy of it.
    pub fn wait(&self) -> T {
        let mut slot = self.0.slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(value) = &*slot {
                return value.clone();
            }
            slot = self.0.filled.wait(slot).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The value if it is already set, without blocking.
    pub fn try_get(&self) -> Option<T> {
        let slot = self.0.slot.lock().unwrap_or_else(PoisonError::into_inner);
        slot.clone()
    }
}

/// The demo: `cargo run -p learn -- s01`.
pub fn main() {
    let (promise, future) = promise::<u64>();
    println!("main: waiting for the value");
    let worker = thread::spawn(move || {
        let answer = 6 * 7;
        println!("worker: computed {answer}");
        promise.set(answer);
    });
    println!("main: got {}", future.wait());
    let _ = worker.join();
}

// The production crate adds: cancellation, running/finished states, errors,
// timeouts, and a dropped promise that fails its future instead of leaving
// readers waiting forever (which this step does: try it). See `Promise` in
// `crates/future/src/future.rs` and the diagram in `crates/future/src/state.rs`.
