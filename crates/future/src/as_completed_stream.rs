//! `as_completed_stream(futures)`: the async twin of [`as_completed`](crate::as_completed),
//! a [`Stream`] of futures in the order they become done.
//!
//! It installs the same [`Waiter`] into every future that the blocking
//! iterator installs (see `waiter.rs`); the only difference is how the owner
//! sleeps. Instead of blocking on the waiter's condition variable, a pending
//! `poll_next` leaves the task's `Waker` in the waiter's mailbox, under the
//! mailbox lock, and the next future to post takes it and wakes the task.
//! Posting and "is the mailbox empty?" happen under that same lock, so a
//! notice is never missed: either the poll finds it, or the post finds the
//! waker. One waiter and at most one stored waker per stream; no thread, no
//! timer, no polling.
//!
//! # No timeout
//!
//! A deadline needs a clock that wakes the task when it passes, which is a
//! runtime's job (a timer wheel) or a thread's; this crate has neither, on
//! purpose. Combine the stream with your runtime's timer instead:
//! `tokio::time::timeout(d, stream.next())` for each item, or
//! `tokio::time::timeout_at(deadline, ..)` for the whole loop. Dropping the
//! stream on timeout unlinks it from the futures still pending, and
//! [`AsCompletedStream::remaining`] hands back what was not yet yielded.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use crate::future::Future;
use crate::sync::Arc;
use crate::waiter::Waiter;

/// Yields each future when it is done; see [`as_completed_stream`].
pub struct AsCompletedStream<T> {
    /// Input futures by index; `None` once yielded.
    futures: Vec<Option<Future<T>>>,
    waiter: Arc<Waiter>,
    unfinished: usize,
}

/// Returns a [`Stream`] that yields `futures` as they become done (finished
/// or cancelled), already-done ones first, each once even if passed twice:
/// Python's `asyncio.as_completed` over wrapped futures.
///
/// No timeout: see the module docs (use your runtime's). The stream works on
/// any runtime; it needs no thread of its own.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
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
/// use std::future::poll_fn;
/// use std::pin::Pin;
/// use futures_core::Stream;
///
/// let (p1, f1) = future::promise::<u32>();
/// let (p2, f2) = future::promise::<u32>();
/// let mut stream = future::as_completed_stream([&f1, &f2]);
/// let worker = std::thread::spawn(move || {
///     p2.set_result(2).unwrap();
///     p1.set_result(1).unwrap();
/// });
/// let order = block_on(async {
///     let mut order = Vec::new();
///     // `StreamExt::next` from futures or tokio-stream does the same.
///     while let Some(done) = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
///         order.push(done.await.unwrap());
///     }
///     order
/// });
/// worker.join().unwrap();
/// assert_eq!(order, [2, 1]);
/// ```
pub fn as_completed_stream<T, I>(futures: I) -> AsCompletedStream<T>
where
    I: IntoIterator,
    I::Item: std::borrow::Borrow<Future<T>>,
{
    let futures = crate::wait::distinct(futures);
    let waiter = Arc::new(Waiter::default());
    for (index, f) in futures.iter().enumerate() {
        f.install_waiter(&waiter, index);
    }
    AsCompletedStream {
        unfinished: futures.len(),
        futures: futures.into_iter().map(Some).collect(),
        waiter,
    }
}

impl<T> AsCompletedStream<T> {
    /// How many distinct futures were given.
    pub fn total(&self) -> usize {
        self.futures.len()
    }

    /// How many have not been yielded yet.
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// The futures not yielded yet, in input order (for example after a
    /// timeout, to cancel them). The stream keeps yielding them as before.
    pub fn remaining(&self) -> Vec<Future<T>> {
        self.futures.iter().flatten().cloned().collect()
    }
}

impl<T> Stream for AsCompletedStream<T> {
    type Item = Future<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Future<T>>> {
        let this = self.get_mut();
        if this.unfinished == 0 {
            return Poll::Ready(None);
        }
        let mut mailbox = this.waiter.mailbox();
        match mailbox.done.pop_front() {
            Some(index) => {
                drop(mailbox);
                this.unfinished -= 1;
                // Each index is posted once (a future becomes done once), so
                // the slot is still full.
                Poll::Ready(this.futures[index].take())
            }
            None => {
                // Under the mailbox lock, which `Waiter::post` takes: the
                // next post sees this waker.
                match &mut mailbox.waker {
                    Some(stored) if stored.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.unfinished, Some(self.unfinished))
    }
}

impl<T> FusedStream for AsCompletedStream<T> {
    fn is_terminated(&self) -> bool {
        self.unfinished == 0
    }
}

impl<T> Drop for AsCompletedStream<T> {
    fn drop(&mut self) {
        for f in self.futures.iter().flatten() {
            f.remove_waiter(&self.waiter);
        }
    }
}

impl<T> std::fmt::Debug for AsCompletedStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompletedStream")
            .field("total", &self.total())
            .field("unfinished", &self.unfinished)
            .finish()
    }
}
