//! `wait(futures, timeout, return_when)`: block until a condition over a set
//! of futures holds, then split them into done and not done.
//!
//! One [`Waiter`] is installed into every future (see `waiter.rs` for the
//! protocol); the calling thread sleeps on it and re-checks its condition each
//! time a future posts. Already-done futures post during installation, so the
//! fast paths (everything done, a failure already there) never sleep.

use std::time::Duration;

use crate::future::Future;
use crate::sync::{deadline_after, wait_until, Arc};
use crate::waiter::{Mailbox, Waiter};

/// When `wait` returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any future is done (finished or cancelled).
    FirstCompleted,
    /// As soon as any future finishes with an error; if none does, when all are done.
    /// Cancelled futures never count as errors.
    FirstException,
    /// When every future is done.
    AllCompleted,
}

/// The two halves `wait` returns (Python's `DoneAndNotDoneFutures`).
///
/// `done` lists the done futures in the order they became done (those
/// already done at the call first, in input order); `not_done` keeps input
/// order. Duplicates in the input appear once.
#[derive(Debug)]
pub struct DoneAndNotDone<T> {
    /// Finished or cancelled futures.
    pub done: Vec<Future<T>>,
    /// The rest.
    pub not_done: Vec<Future<T>>,
}

/// Drops repeated handles to the same future, keeping first occurrences in order.
pub(crate) fn distinct<T, I>(futures: I) -> Vec<Future<T>>
where
    I: IntoIterator,
    I::Item: std::borrow::Borrow<Future<T>>,
{
    let mut seen = std::collections::HashSet::new();
    futures
        .into_iter()
        .map(|f| std::borrow::Borrow::borrow(&f).clone())
        .filter(|f| seen.insert(f.id()))
        .collect()
}

/// Waits until `return_when` holds for `futures`, or `timeout` passes
/// (`None`: no limit; zero: never blocks). Never errs on timeout: what is
/// not done is in `not_done`.
///
/// ```
/// use future::{promise, wait, ReturnWhen};
/// use std::time::Duration;
///
/// let (p1, f1) = promise::<i32>();
/// let (_p2, f2) = promise::<i32>();
/// p1.set_result(1).unwrap();
/// let split = wait([&f1, &f2], Some(Duration::from_millis(10)), ReturnWhen::AllCompleted);
/// assert_eq!(split.done, vec![f1]);
/// assert_eq!(split.not_done, vec![f2]);
/// ```
pub fn wait<T, I>(
    futures: I,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<T>
where
    I: IntoIterator,
    I::Item: std::borrow::Borrow<Future<T>>,
{
    let deadline = deadline_after(timeout);
    let futures = distinct(futures);
    let total = futures.len();
    let waiter = Arc::new(Waiter::default());
    let linked: Vec<bool> = futures
        .iter()
        .enumerate()
        .map(|(index, f)| f.install_waiter(&waiter, index))
        .collect();

    let satisfied = |mailbox: &Mailbox| match return_when {
        ReturnWhen::FirstCompleted => mailbox.posted > 0 || total == 0,
        ReturnWhen::FirstException => mailbox.failed > 0 || mailbox.posted == total,
        ReturnWhen::AllCompleted => mailbox.posted == total,
    };
    {
        let mut mailbox = waiter.mailbox();
        while !satisfied(&mailbox) {
            let (guard, in_time) = wait_until(waiter.condvar(), mailbox, deadline);
            mailbox = guard;
            if !in_time {
                break;
            }
        }
    }

    for (f, _) in futures.iter().zip(&linked).filter(|(_, linked)| **linked) {
        f.remove_waiter(&waiter);
    }
    // Whatever posted before the links were removed counts as done, as in Python.
    let done_indices: Vec<usize> = waiter.mailbox().done.drain(..).collect();
    let mut is_done = vec![false; total];
    for &i in &done_indices {
        is_done[i] = true;
    }
    let done = done_indices.iter().map(|&i| futures[i].clone()).collect();
    let not_done = futures
        .into_iter()
        .zip(is_done)
        .filter(|(_, done)| !done)
        .map(|(f, _)| f)
        .collect();
    DoneAndNotDone { done, not_done }
}
