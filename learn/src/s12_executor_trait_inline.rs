//! Executor, step 1: the trait and an inline executor, in one screen.
//!
//! Python's `Executor` is an abstract class with `submit`, `map` and
//! `shutdown`, and its pools are interchangeable. In Rust that is a trait. A
//! task is a plain `fn(A) -> R` and one argument: a shape every executor can
//! take (a thread runs it, a process pool sends the function's address and
//! the argument's bytes, Celery sends a name). The inline executor runs each
//! task in the caller's thread, during `submit`: the sequential baseline, and
//! the smallest correct executor. Steps 2-3 write `map` once, for all.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use future::{promise, Future};

/// `submit` after `shutdown`, as Python's `RuntimeError` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownError;

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot schedule new futures after shutdown")
    }
}

impl Error for ShutdownError {}

pub trait Executor {
    /// Schedules `f(arg)`; its future.
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, ShutdownError>
    where
        A: Send + 'static,
        R: Send + 'static;

    /// Refuses new tasks from now on.
    fn shutdown(&self);
}

#[derive(Default)]
pub struct Inline {
    /// Relaxed: the flag guards no other data; a submit racing with
    /// shutdown may go either way, in every executor.
    shut_down: AtomicBool,
}

impl Executor for Inline {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, ShutdownError>
    where
        A: Send + 'static,
        R: Send + 'static,
    {
        if self.shut_down.load(Relaxed) {
            return Err(ShutdownError);
        }
        let (promise, future) = promise();
        if promise.set_running_or_notify_cancel() == Ok(true) {
            let _ = promise.set_result(f(arg));
        }
        Ok(future)
    }

    fn shutdown(&self) {
        self.shut_down.store(true, Relaxed);
    }
}

/// Generic code sees only the trait: this runs on any executor.
pub fn sum_of_squares(executor: &impl Executor, n: u64) -> Result<u64, ShutdownError> {
    let futures: Vec<_> =
        (1..=n).map(|x| executor.submit(|x| x * x, x)).collect::<Result<_, _>>()?;
    Ok(futures.iter().filter_map(|f| f.result().ok()).sum())
}

/// The demo: `cargo run -p learn -- s12`.
pub fn main() {
    let inline = Inline::default();
    let four = inline.submit(|x: u64| x * x, 2);
    println!("done at submit: {:?}", four.as_ref().map(|f| (f.done(), f.result())));
    println!("sum of squares 1..=10: {:?}", sum_of_squares(&inline, 10));
    inline.shutdown();
    println!("after shutdown: {:?}", sum_of_squares(&inline, 10).map_err(|e| e.to_string()));
}

// The production crate adds: `Payload` bounds (serde) so that processes and
// Celery take the same tasks, `submit_fallible`, typed errors with kinds, and
// the trait over both pools. See `Executor` in `crates/executor/src/executor.rs`
// and `InlineExecutor` in `crates/executor/src/inline.rs`.
