//! The waiter that `wait()`, `as_completed()` and `as_completed_stream()`
//! install into each future.
//!
//! This is CPython's `_Waiter`, reduced to one type. A waiter is a small
//! mailbox owned by one waiting thread (or one async task): every future it
//! was installed into posts its own index there, exactly once, when it
//! becomes done (finished or cancelled), and wakes the owner: a thread
//! through the condition variable, a task through the `Waker` it left in
//! the mailbox at its last pending poll. The owner decides from the mailbox alone
//! whether its condition (first completed, first exception, all completed) is
//! met. No polling, no thread per future: one condition variable per call.
//!
//! # Lock order, and why two overlapping waits cannot deadlock
//!
//! A future posts to a waiter while holding the future's own lock, so the
//! order is always *future lock, then waiter lock*. The owner of a waiter
//! never takes a future's lock while it holds the waiter's lock. Installation
//! takes one future lock at a time (never two at once, unlike CPython, which
//! takes all of them sorted by address), so there is no cycle to close.
//!
//! # Why no completion is lost
//!
//! Installation sets the future's `WAITING` bit (reading the state in the
//! same `fetch_or`) and links the waiter under the future's lock; a
//! completion that finds `WAITING` changes the state and reads the links
//! under the same lock (see `future.rs`). So either installation sees the
//! future done (and posts the index itself), or completion sees the link
//! (and posts it). Never neither, never both.

use std::collections::VecDeque;
use std::task::Waker;

use crate::sync::{lock, Condvar, Mutex, MutexGuard};

/// A mailbox of "future `index` is done" notices, with a condition variable
/// to sleep on until the next one arrives.
#[derive(Default)]
pub(crate) struct Waiter {
    mailbox: Mutex<Mailbox>,
    posted: Condvar,
}

/// What the futures have posted so far.
#[derive(Default)]
pub(crate) struct Mailbox {
    /// Indices of done futures, in the order they became done.
    pub(crate) done: VecDeque<usize>,
    /// How many of the posted futures finished with an error (cancelled ones
    /// never count, as in Python's FIRST_EXCEPTION).
    pub(crate) failed: usize,
    /// How many notices have been posted in all (never decreases).
    pub(crate) posted: usize,
    /// The async owner's waker (`as_completed_stream`), left here by its
    /// last pending poll and taken by the next post.
    pub(crate) waker: Option<Waker>,
}

impl Waiter {
    /// Called by a future, under its own lock, when it becomes done.
    ///
    /// Returns the async owner's waker, if one is waiting: the caller wakes
    /// it once it has released the future's lock (a waker may run arbitrary
    /// code, which must not run under our locks).
    #[must_use]
    pub(crate) fn post(&self, index: usize, failed: bool) -> Option<Waker> {
        let mut mailbox = lock(&self.mailbox);
        mailbox.done.push_back(index);
        mailbox.posted += 1;
        if failed {
            mailbox.failed += 1;
        }
        // Only the waiter's owner ever sleeps on `posted`.
        self.posted.notify_one();
        mailbox.waker.take()
    }

    pub(crate) fn mailbox(&self) -> MutexGuard<'_, Mailbox> {
        lock(&self.mailbox)
    }

    pub(crate) fn condvar(&self) -> &Condvar {
        &self.posted
    }
}
