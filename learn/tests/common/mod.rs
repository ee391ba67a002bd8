//! Helpers shared by the ladder's tests.

// Each test file uses some of these helpers, not all.
#![allow(dead_code)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A guard against hangs, never a bound on speed: runs `f` on its own
/// thread and fails the test if it has not returned within 60 s (a lost
/// wake-up or a deadlock would otherwise hang the suite forever).
pub fn within_60s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, outcome) = mpsc::channel();
    let runner = thread::spawn(move || {
        let _ = done.send(f());
    });
    match outcome.recv_timeout(Duration::from_secs(60)) {
        Ok(value) => {
            let _ = runner.join();
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // `f` panicked: re-raise its panic in the test thread.
            match runner.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the runner sends before it returns"),
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hang guard: {what} did not finish in 60 s"),
    }
}

/// Yields until `condition` holds (a state the code under test reports),
/// under the same 60 s hang guard.
pub fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "hang guard: {what} never happened in 60 s");
        thread::yield_now();
    }
}
