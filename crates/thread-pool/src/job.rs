//! A queued task: the user's closure together with the promise that
//! publishes its outcome.
//!
//! The queue holds each job as a [`RawJob`](crate::raw::RawJob): the job
//! with its type erased, kept inline in the queue slot when small (see
//! `raw.rs`). A job ends in exactly one of three ways, each consuming it
//! (or it is simply dropped, which completes its future with
//! `BrokenPromise`):
//!
//! * [`Job::run`]: a worker runs it. The promise is first moved to Running
//!   (or found cancelled, and the closure is dropped unrun), the closure runs
//!   under `catch_unwind`, and the outcome is published.
//! * [`Job::cancel`]: `shutdown(cancel_futures = true)` pulled it off the queue.
//! * [`Job::fail`]: the pool broke (an initializer failed) before it ran.
//!
//! The closure and everything it captured are dropped as soon as the task
//! returns, before the outcome is published, so a task never keeps its
//! captures alive for as long as someone holds its future (CPython's
//! test_no_stale_references).

use std::panic::{catch_unwind, AssertUnwindSafe};

use future::{Promise, TaskError};

/// How a job that a worker took ended, for the pool's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ran {
    /// The closure returned a value.
    Completed,
    /// The closure returned an error or panicked.
    Failed,
    /// The future had been cancelled while queued; the closure did not run.
    Cancelled,
}

/// What the worker does around a job: bookkeeping that must happen *before*
/// the outcome becomes visible to readers (see `worker.rs`: a worker marks
/// itself idle before it publishes, so that a reader who saw the result and
/// submits again finds an idle worker instead of starting a new one).
pub(crate) trait RunHooks {
    /// The closure is about to run.
    fn started(&mut self);
    /// The closure ended (or was skipped); its outcome is not published yet.
    fn before_publish(&mut self, ran: Ran);
    /// The outcome is published and the future has done-callbacks, which
    /// are about to run on this thread: user code, so this thread is busy
    /// again, not idle (a callback may submit to the pool and wait for it, and
    /// an idle count that included this thread would leave that task unstarted).
    fn before_callbacks(&mut self) {}
}

/// A task in the queue. See the module docs.
pub(crate) trait Job: Send + Sized {
    fn run(self, hooks: &mut dyn RunHooks);
    fn cancel(self);
    fn fail(self, error: TaskError);
}

/// The one implementation: a closure producing `Result<T, TaskError>` and
/// the promise of its future.
pub(crate) struct PromiseJob<F, T> {
    body: F,
    promise: Promise<T>,
}

impl<F, T> PromiseJob<F, T>
where
    F: FnOnce() -> Result<T, TaskError> + Send,
    T: Send,
{
    pub(crate) fn new(body: F, promise: Promise<T>) -> Self {
        PromiseJob { body, promise }
    }
}

impl<F, T> Job for PromiseJob<F, T>
where
    F: FnOnce() -> Result<T, TaskError> + Send,
    T: Send,
{
    fn run(self, hooks: &mut dyn RunHooks) {
        let PromiseJob { body, promise } = self;
        // Ok(false): cancelled while queued. Err: not pending, which only
        // our own code could cause (nobody else holds the promise); treat it
        // as "do not run" rather than run a task twice.
        if !promise.set_running_or_notify_cancel().unwrap_or(false) {
            hooks.before_publish(Ran::Cancelled);
            return;
        }
        hooks.started();
        // AssertUnwindSafe: the closure is consumed here, so nothing it may
        // have left half-updated is observed by this thread afterwards; the
        // panic is reported through the future.
        let outcome = match catch_unwind(AssertUnwindSafe(body)) {
            Ok(result) => result,
            Err(payload) => Err(TaskError::from_panic(payload)),
        };
        hooks.before_publish(if outcome.is_ok() {
            Ran::Completed
        } else {
            Ran::Failed
        });
        // A running future cannot be cancelled or completed by anyone else,
        // so this cannot fail; if it ever did, the first outcome stands.
        let _ = promise.set_outcome_with_hook(outcome, || hooks.before_callbacks());
    }

    fn cancel(self) {
        let future = self.promise.future();
        future.cancel();
        // Acknowledge, as a worker would when it dequeues a cancelled future.
        let _ = self.promise.set_running_or_notify_cancel();
    }

    fn fail(self, error: TaskError) {
        // Errs only if the user cancelled it meanwhile: then it stays cancelled.
        let _ = self.promise.set_error(error);
    }
}
