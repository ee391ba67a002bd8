//! Awaiting a [`Future`] from async code, on any runtime.
//!
//! `future.await` (through [`IntoFuture`]) turns a handle into an
//! [`Awaiting`], a `std::future::Future` whose output is
//! `Result<T, FutureError>`: the same outcome, with the same errors, as
//! [`Future::into_result`]. `(&future).await` clones the value instead, as
//! [`Future::result`] does.
//!
//! # The waker protocol
//!
//! An `Awaiting` is one more listener, kept where callbacks and waiters are
//! kept: in the future's slot, under its lock. A pending poll registers the
//! task's `Waker` there under a key that the `Awaiting` keeps; completion
//! (or `cancel()`, or a dropped promise) drains the wakers under the same
//! lock and wakes them once the lock is released. So:
//!
//! * no wake-up is lost: "is it done?" (setting the state word's `WAITING`
//!   bit) and "store the waker" happen under the lock, and a completer that
//!   finds `WAITING` takes that lock to change the state and drain the
//!   wakers, so either the poll sees the future done, or the completer sees
//!   the waker;
//! * no thread per future, no polling: a pending `Awaiting` costs one entry
//!   in one vector until the future is done;
//! * a re-poll with another waker (the task moved to another worker thread)
//!   replaces the stored one, under the same key: one entry per `Awaiting`;
//! * dropping an `Awaiting` (its task was dropped, or a `select!` chose
//!   another branch) removes its entry: polling and dropping awaits in a
//!   loop leaves nothing behind.
//!
//! # Why `future.await` moves the value out
//!
//! `.await` on a handle consumes the handle, so it is the async spelling of
//! [`Future::into_result`]: the value is moved, not cloned, which works for
//! any `T` (a process pool's `Vec<u8>`, a non-`Clone` type) and costs
//! nothing for large values. This is what `tokio::task::JoinHandle` and
//! every other Rust handle do. Other handles to the same future then read
//! [`FutureError::ValueTaken`], exactly as after `into_result`. To read
//! without taking, await a reference: `(&future).await` clones the value
//! (`T: Clone`), as Python's `await asyncio.wrap_future(f)` leaves `f`
//! readable.

use std::future::IntoFuture;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::FutureError;
use crate::future::Future;

/// How a done future's outcome is read: moved out, or cloned.
type Read<T> = fn(Future<T>) -> Result<T, FutureError>;

/// A [`Future`] being awaited; made by `future.await` or `(&future).await`.
///
/// Output: the value, or [`FutureError::Cancelled`], [`FutureError::Task`]
/// (the task's error or panic), or [`FutureError::ValueTaken`]. Never
/// [`FutureError::Timeout`]: combine with your runtime's timeout (for
/// example `tokio::time::timeout`), which drops the `Awaiting` and so
/// unregisters it.
///
/// `Awaiting` is `Unpin` and `Send` (for `T: Send`). Like every
/// `std::future::Future`, it must not be polled again after it returned
/// `Ready`: it panics then, naming the mistake.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     // A minimal executor for the example; use your runtime's.
/// #     use std::sync::Arc;
/// #     use std::task::{Context, Poll, Wake};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark { fn wake(self: Arc<Self>) { self.0.unpark() } }
/// #     let waker = Arc::new(Unpark(std::thread::current())).into();
/// #     let mut cx = Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         if let Poll::Ready(out) = f.as_mut().poll(&mut cx) { return out; }
/// #         std::thread::park();
/// #     }
/// # }
/// let (promise, fut) = future::promise::<String>();
/// let worker = std::thread::spawn(move || promise.set_result("done".to_string()).unwrap());
/// let value = block_on(async { fut.await });
/// assert_eq!(value.unwrap(), "done");
/// worker.join().unwrap();
/// ```
#[must_use = "an Awaiting does nothing unless polled (.await it)"]
pub struct Awaiting<T> {
    /// `None` once the outcome has been returned.
    future: Option<Future<T>>,
    /// This await's entry among the future's wakers, once it has one.
    key: Option<u64>,
    read: Read<T>,
}

impl<T> Awaiting<T> {
    fn new(future: Future<T>, read: Read<T>) -> Self {
        Awaiting {
            future: Some(future),
            key: None,
            read,
        }
    }
}

/// Clones the value of a done future (`(&future).await`).
fn read_clone<T: Clone>(future: Future<T>) -> Result<T, FutureError> {
    future.result_timeout(std::time::Duration::ZERO)
}

impl<T> std::future::Future for Awaiting<T> {
    type Output = Result<T, FutureError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin, so is `Awaiting`.
        let this = self.get_mut();
        let future = this
            .future
            .as_ref()
            .expect("Awaiting polled after it returned its outcome");
        if !future.register_waker(&mut this.key, cx.waker()) {
            return Poll::Pending;
        }
        // Done: completion drained our entry (if we had one) with the rest.
        this.key = None;
        let future = this.future.take().expect("checked above");
        // The future is done, so reading it never blocks.
        Poll::Ready((this.read)(future))
    }
}

impl<T> Drop for Awaiting<T> {
    fn drop(&mut self) {
        if let (Some(future), Some(key)) = (&self.future, self.key) {
            future.unregister_waker(key);
        }
    }
}

impl<T> std::fmt::Debug for Awaiting<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.future {
            Some(future) => write!(f, "Awaiting({future:?})"),
            None => f.write_str("Awaiting(<outcome returned>)"),
        }
    }
}

/// `future.await`: waits without blocking a thread, then moves the value
/// out (see the module docs for why it moves).
impl<T> IntoFuture for Future<T> {
    type Output = Result<T, FutureError>;
    type IntoFuture = Awaiting<T>;

    fn into_future(self) -> Awaiting<T> {
        Awaiting::new(self, Future::into_result)
    }
}

/// `(&future).await`: waits without blocking a thread, then clones the
/// value, leaving the future readable by its other handles.
impl<T: Clone> IntoFuture for &Future<T> {
    type Output = Result<T, FutureError>;
    type IntoFuture = Awaiting<T>;

    fn into_future(self) -> Awaiting<T> {
        Awaiting::new(self.clone(), read_clone)
    }
}
