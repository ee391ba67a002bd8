//! `as_completed(futures, timeout)`: an iterator over futures in the order
//! they become done.
//!
//! One [`Waiter`] is installed into every future at the call; each future
//! posts its index when done, and the iterator hands them out first come,
//! first served. Futures already done at the call post during installation,
//! so they come first. Each future is yielded once, even if passed twice, and
//! the iterator keeps no handle to a future it has yielded. Dropping the
//! iterator unlinks its waiter from the futures still pending.

use std::time::{Duration, Instant};

use crate::error::TimeoutError;
use crate::future::Future;
use crate::sync::{deadline_after, wait_until, Arc};
use crate::waiter::Waiter;

/// Yields each future when it is done; see [`as_completed`].
pub struct AsCompleted<T> {
    /// Input futures by index; `None` once yielded.
    futures: Vec<Option<Future<T>>>,
    waiter: Arc<Waiter>,
    deadline: Option<Instant>,
    unfinished: usize,
    timed_out: bool,
}

/// Returns an iterator that yields `futures` as they become done (finished
/// or cancelled), already-done ones first.
///
/// The `timeout` (`None`: no limit) runs from this call. When it passes with
/// futures still pending, the iterator yields one `Err(TimeoutError)`, whose
/// message reads `2 (of 5) futures unfinished`, and then ends.
///
/// ```
/// use future::{as_completed, promise};
///
/// let (p1, f1) = promise::<&str>();
/// let (p2, f2) = promise::<&str>();
/// p2.set_result("second").unwrap();
/// p1.set_result("first").unwrap();
/// let order: Vec<_> = as_completed([&f1, &f2], None)
///     .map(|f| f.unwrap().result().unwrap())
///     .collect();
/// assert_eq!(order, ["first", "second"]); // both were done: input order
/// ```
pub fn as_completed<T, I>(futures: I, timeout: Option<Duration>) -> AsCompleted<T>
where
    I: IntoIterator,
    I::Item: std::borrow::Borrow<Future<T>>,
{
    let deadline = deadline_after(timeout);
    let futures = crate::wait::distinct(futures);
    let waiter = Arc::new(Waiter::default());
    for (index, f) in futures.iter().enumerate() {
        f.install_waiter(&waiter, index);
    }
    AsCompleted {
        unfinished: futures.len(),
        futures: futures.into_iter().map(Some).collect(),
        waiter,
        deadline,
        timed_out: false,
    }
}

impl<T> AsCompleted<T> {
    /// How many distinct futures were given.
    pub fn total(&self) -> usize {
        self.futures.len()
    }

    /// How many have not been yielded yet.
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Result<Future<T>, TimeoutError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.unfinished == 0 || self.timed_out {
            return None;
        }
        let mut mailbox = self.waiter.mailbox();
        loop {
            if let Some(index) = mailbox.done.pop_front() {
                drop(mailbox);
                self.unfinished -= 1;
                // Each index is posted once (a future becomes done once), so
                // the slot is still full.
                return self.futures[index].take().map(Ok);
            }
            let (guard, in_time) = wait_until(self.waiter.condvar(), mailbox, self.deadline);
            mailbox = guard;
            if !in_time && mailbox.done.is_empty() {
                self.timed_out = true;
                return Some(Err(TimeoutError {
                    unfinished: self.unfinished,
                    total: self.futures.len(),
                }));
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.timed_out {
            (0, Some(0))
        } else {
            (0, Some(self.unfinished))
        }
    }
}

impl<T> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        for f in self.futures.iter().flatten() {
            f.remove_waiter(&self.waiter);
        }
    }
}
