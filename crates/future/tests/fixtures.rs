//! The six fixture futures of CPython's `test_concurrent_futures/util.py`,
//! built through the public API, shared by the conformance tests.

#![allow(dead_code)]

use std::thread;
use std::time::Duration;

use future::{promise, Future, Promise, TaskError};

/// An error type standing in for Python's `OSError()` in the fixtures.
#[derive(Debug)]
pub struct OsError;

impl std::fmt::Display for OsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("os error")
    }
}

impl std::error::Error for OsError {}

/// A future and its promise; the promise must stay alive so the future is
/// not completed as "broken promise" behind the test's back.
pub struct Fixture {
    pub future: Future<i32>,
    pub promise: Promise<i32>,
}

pub fn pending() -> Fixture {
    let (promise, future) = promise();
    Fixture { future, promise }
}

pub fn running() -> Fixture {
    let f = pending();
    assert_eq!(f.promise.set_running_or_notify_cancel(), Ok(true));
    f
}

/// Cancelled, the executor has not looked yet (Python's CANCELLED).
pub fn cancelled() -> Fixture {
    let f = pending();
    assert!(f.future.cancel());
    f
}

/// Cancelled and acknowledged by the executor (Python's CANCELLED_AND_NOTIFIED).
pub fn cancelled_and_notified() -> Fixture {
    let f = cancelled();
    assert_eq!(f.promise.set_running_or_notify_cancel(), Ok(false));
    f
}

pub fn exception() -> Fixture {
    let f = pending();
    f.promise.set_error(TaskError::failed(OsError)).unwrap();
    f
}

pub fn successful() -> Fixture {
    let f = pending();
    f.promise.set_result(42).unwrap();
    f
}

/// Python's `executor.submit(time.sleep, secs)` / `submit(mul, a, b)`: a
/// thread that runs `work` after `delay` and completes the future.
pub fn spawn_after<T: Send + 'static>(
    delay: Duration,
    work: impl FnOnce() -> Result<T, TaskError> + Send + 'static,
) -> (Future<T>, thread::JoinHandle<()>) {
    let (promise, future) = promise();
    let handle = thread::spawn(move || {
        if promise.set_running_or_notify_cancel() == Ok(true) {
            thread::sleep(delay); // the task's own work: Python's time.sleep
            let _ = promise.set_outcome(work());
        }
    });
    (future, handle)
}
