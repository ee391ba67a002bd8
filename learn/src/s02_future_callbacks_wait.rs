//! Future, step 2: CPython's states, `cancel`, done-callbacks and `wait`.
//!
//! Over step 1: Pending -> Running -> Finished, or Pending -> Cancelled; an
//! executor calls `set_running_or_notify_cancel` first and skips the task on
//! false. Still one mutex. Callbacks run on the completing thread *after* the
//! lock is released: they are user code, and may read this future.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::{mem, time::Duration};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Running,
    Cancelled,
    Finished,
}

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send>;
struct Slot<T> {
    state: State,
    value: Option<T>,
    callbacks: Vec<Callback<T>>,
}

fn not_done<T>(slot: &mut Slot<T>) -> bool {
    matches!(slot.state, State::Pending | State::Running)
}

/// One type for both roles, as in CPython. Clones share the slot.
#[derive(Clone)]
pub struct Future<T>(Arc<(Mutex<Slot<T>>, Condvar)>);

impl<T: Clone> Future<T> {
    pub fn pending() -> Self {
        let slot = Slot { state: State::Pending, value: None, callbacks: Vec::new() };
        Future(Arc::new((Mutex::new(slot), Condvar::new())))
    }
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner)
    }
    pub fn state(&self) -> State {
        self.lock().state
    }

    /// The executor's call before running: true to run, false if cancelled.
    pub fn set_running_or_notify_cancel(&self) -> bool {
        let mut slot = self.lock();
        let start = slot.state == State::Pending;
        slot.state = if start { State::Running } else { slot.state };
        start
    }

    /// Cancels a pending future. True if it is (now or already) cancelled.
    pub fn cancel(&self) -> bool {
        self.finish(State::Cancelled, None) || self.state() == State::Cancelled
    }
    pub fn set_result(&self, value: T) -> bool {
        self.finish(State::Finished, Some(value))
    }
    /// To a done state (Cancelled only from Pending); callbacks run unlocked.
    fn finish(&self, to: State, value: Option<T>) -> bool {
        let mut slot = self.lock();
        if !not_done(&mut slot) || (to == State::Cancelled && slot.state == State::Running) {
            return false;
        }
        (slot.state, slot.value) = (to, value);
        let callbacks = mem::take(&mut slot.callbacks);
        drop(slot);
        self.0 .1.notify_all();
        callbacks.into_iter().for_each(|callback| callback(self));
        true
    }
    /// Runs `callback` once the future is done (at once if it already is).
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + Send + 'static) {
        let mut slot = self.lock();
        if not_done(&mut slot) {
            return slot.callbacks.push(Box::new(callback));
        }
        drop(slot);
        callback(self);
    }

    /// Waits up to `timeout`; true if the future is done.
    pub fn wait(&self, timeout: Duration) -> bool {
        let waited = self.0 .1.wait_timeout_while(self.lock(), timeout, not_done);
        let (mut slot, _) = waited.unwrap_or_else(PoisonError::into_inner);
        !not_done(&mut slot)
    }

    /// The value once finished (`None` while pending, or if cancelled).
    pub fn result(&self) -> Option<T> {
        self.lock().value.clone()
    }
}

/// The demo: `cargo run -p learn -- s02`.
pub fn main() {
    let task = Future::<u64>::pending();
    task.add_done_callback(|f| println!("callback: done, state {:?}", f.state()));
    println!("executor: start? {}", task.set_running_or_notify_cancel());
    task.set_result(42);
    println!("main: done {}, result {:?}", task.wait(Duration::ZERO), task.result());
    println!("main: cancel after it finished? {}", task.cancel());
}

// The production crate adds: the promise/future split, typed errors, a
// contained panicking callback, and `wait`/`as_completed` over many futures
// with one waiter each. See `Future::add_done_callback` in
// `crates/future/src/future.rs` and `wait` in `crates/future/src/wait.rs`.
