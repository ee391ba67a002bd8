//! # `future`: a future and a promise with CPython's `concurrent.futures` semantics
//!
//! A [`Future<T>`] is a handle to the outcome of a task that runs somewhere
//! else: a thread pool worker, a process pool worker, any thread. It starts
//! *pending*, may be *cancelled* before it runs, goes *running* when an
//! executor picks it up, and ends *finished* with a value or a [`TaskError`].
//! The executor completes it through the matching [`Promise<T>`], exactly
//! once. This is Python's `concurrent.futures.Future` with its two roles split
//! in two types, so that readers can never complete a future by mistake.
//!
//! ## How it works
//!
//! * Each future keeps its state ([`State`]; the diagram is in the `state`
//!   module and in `docs/future.md`) in one atomic word, with two flags
//!   ("a completer holds the outcome cell", "someone waits") and the count
//!   of handles (the promise and each future share one allocation). Starting,
//!   cancelling and completing a future nobody waits on are one
//!   compare-and-swap each, with no lock; the callbacks, waiters, wakers
//!   and blocked readers live behind one mutex with one condition variable,
//!   and a completion takes that lock only once one of them registered.
//!   Readers block on the condvar with a deadline and loop on spurious
//!   wake-ups; completion broadcasts only if someone is blocked.
//! * [`wait`] and [`as_completed`] install one *waiter* (a tiny mailbox with
//!   its own condvar) into each future; a future posts its index to every
//!   installed waiter when it becomes done. No polling, no sleeping loops, no
//!   thread per future.
//! * Done-callbacks run on the completing thread after the lock is released;
//!   a panicking callback (or waker, or callback-panic hook) is caught and
//!   reported, and the other listeners are still served. An executor whose
//!   completing thread must not run user code hands the callbacks to a
//!   [`CallbackRunner`] instead, and wraps what user code is left there
//!   (a result's `Drop`) in [`contain`].
//! * A [`Promise`] dropped before it completes finishes its future with
//!   [`TaskError::BrokenPromise`]: no reader can hang on a task that vanished.
//! * Unlike CPython, `cancel()` wakes `wait` and `as_completed` at once
//!   (CPython leaves a hand-cancelled future "not done" for them: gh-92001).
//! * Async code awaits a future on any runtime: `future.await` moves the
//!   value out (`(&future).await` clones it), and [`as_completed_stream`] is
//!   a `futures_core::Stream` in completion order. The task's waker is kept
//!   with the other listeners, under the future's lock: no thread, no
//!   polling, no runtime dependency (see [`Awaiting`]).
//!
//! ## Example
//!
//! ```
//! use std::thread;
//! use std::time::Duration;
//! use future::{as_completed, promise, FutureError};
//!
//! let (promise_a, a) = promise::<u64>();
//! let (promise_b, b) = promise::<u64>();
//!
//! // Install the waiter first: from here on, completions are seen in order.
//! let completions = as_completed([&a, &b], Some(Duration::from_secs(10)));
//!
//! // An "executor": a thread that runs two tasks and completes the promises.
//! let worker = thread::spawn(move || {
//!     assert!(promise_b.set_running_or_notify_cancel().unwrap());
//!     promise_b.set_result(2).unwrap();
//!     assert!(promise_a.set_running_or_notify_cancel().unwrap());
//!     promise_a.set_result(1).unwrap();
//! });
//!
//! // Results in completion order: b finished first.
//! let seen: Vec<u64> = completions.map(|done| done.unwrap().result().unwrap()).collect();
//! worker.join().unwrap();
//! assert_eq!(seen, [2, 1]);
//!
//! // A future that is cancelled before it runs stays cancelled.
//! let (promise_c, c) = promise::<u64>();
//! assert!(c.cancel());
//! assert!(!promise_c.set_running_or_notify_cancel().unwrap()); // the executor skips it
//! assert!(matches!(c.result(), Err(FutureError::Cancelled)));
//! ```

#![warn(missing_docs)]
// No `unsafe` anywhere but in `future.rs`, where the outcome cell is guarded
// by the state word, `shared.rs`, the handles' reference count, and the trace
// recorder's clock, which reads the CPU's time-stamp counter (`trace/clock.rs`);
// each block argues its case in a `SAFETY:` comment.
#![deny(unsafe_code)]

mod as_completed;
mod as_completed_stream;
mod awaiting;
mod contain;
mod error;
#[allow(unsafe_code)]
mod future;
mod interrupt;
mod report;
mod runner;
#[allow(unsafe_code)]
mod shared;
mod state;
mod sync;
mod task_report;
pub mod trace;
mod wait;
mod waiter;

pub use as_completed::{as_completed, AsCompleted};
pub use as_completed_stream::{as_completed_stream, AsCompletedStream};
pub use awaiting::Awaiting;
pub use contain::contain;
pub use error::{panic_message, DynError, FutureError, InvalidStateError, TaskError, TimeoutError};
pub use future::{promise, Future, Promise};
pub use interrupt::Interrupt;
pub use report::{
    reset_callback_panic_hook, set_callback_panic_hook, CallbackPanic, CallbackPanicHook,
};
pub use runner::{on_runner_thread, CallbackJob, CallbackRunner};
pub use state::State;
pub use task_report::{TaskReport, WorkerEnd};
pub use wait::{wait, DoneAndNotDone, ReturnWhen};
