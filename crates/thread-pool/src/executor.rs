//! [`ThreadPoolExecutor`]: the handle users hold.
//!
//! Every method is a thin layer over `shared.rs`: build the task's promise
//! and job, get a [`Ticket`](crate::shared::Ticket) from the gate, push.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use future::{promise, DynError, Future, Interrupt, TaskError};

use crate::builder::{default_max_workers, Builder};
use crate::error::{SubmitError, TrySubmitError};
use crate::interrupt::{InterruptToken, Interrupted, NotInterruptible};
use crate::job::PromiseJob;
use crate::map::{Map, MapOptions};
use crate::raw::RawJob;
use crate::scope::{self, Scope};
use crate::shared::{Refusal, Shared};
use crate::stats::Stats;
use crate::trace::TracedJob;

/// A pool of worker threads that runs closures and hands out a
/// [`Future`] for each, with the semantics of Python's
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// Dropping the pool is `shutdown(wait = true, cancel_futures = false)`:
/// queued tasks still run, and every worker thread is joined.
///
/// The handle is `Send + Sync`: share it by reference (or in an `Arc`)
/// between threads that submit work.
pub struct ThreadPoolExecutor {
    shared: Arc<Shared>,
}

impl ThreadPoolExecutor {
    /// A pool of at most `max_workers` threads (0 counts as 1; use
    /// [`builder`](Self::builder) to have 0 refused) with the other settings
    /// at Python's defaults.
    pub fn new(max_workers: usize) -> Self {
        Builder::new()
            .max_workers(max_workers.max(1))
            .build()
            .expect("a positive max_workers and default settings are always valid")
    }

    /// A builder for the settings `new` does not take.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        ThreadPoolExecutor { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Schedules `f` and returns the future of its value. A panic in `f`
    /// finishes the future with [`TaskError::Panicked`] (the worker
    /// survives).
    ///
    /// With a bounded queue, waits for room. Errs if the pool is shut down
    /// or broken.
    pub fn submit<F, T>(&self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_outcome(move || Ok(f()))
    }

    /// Like [`submit`](Self::submit) for a task that can fail: an `Err(e)`
    /// finishes the future with [`TaskError::Failed`] wrapping `e` (Python's
    /// "the call raised"), which `wait(.., FirstException)` counts as an
    /// exception.
    pub fn submit_fallible<F, T, E>(&self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Error + Send + Sync + 'static,
    {
        self.submit_outcome(move || f().map_err(TaskError::failed))
    }

    /// Like [`submit`](Self::submit) for a task that builds its own
    /// [`TaskError`] (for errors that are not `std::error::Error`, use
    /// `TaskError::Failed(DynError::from_parts(..))`).
    pub fn submit_outcome<F, T>(&self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> Result<T, TaskError> + Send + 'static,
        T: Send + 'static,
    {
        let ticket = self
            .shared
            .enter(true)
            .map_err(Refusal::into_submit_error)?;
        let (promise, future) = promise();
        match &self.shared.config.trace {
            None => ticket.push(RawJob::new(PromiseJob::new(f, promise))),
            Some(recorder) => ticket.push(RawJob::new(TracedJob::new(
                recorder,
                PromiseJob::new(f, promise),
            ))),
        }
        Ok(future)
    }

    /// Like [`submit_fallible`](Self::submit_fallible) for a task that can
    /// be stopped while it runs: it gets an [`InterruptToken`] that
    /// [`interrupt`](Self::interrupt) sets. The task checks it between
    /// steps (`token.check()?`) or sleeps on it (`token.sleep(d)?`); the
    /// [`Interrupted`] error that gives back fails the future with
    /// `TaskError::Executor(Interrupted)`, which says the task saw the
    /// request and stopped. A value says it ran to its end.
    pub fn submit_interruptible<F, T>(&self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce(&InterruptToken) -> Result<T, Interrupted> + Send + 'static,
        T: Send + 'static,
    {
        let ticket = self
            .shared
            .enter(true)
            .map_err(Refusal::into_submit_error)?;
        let (promise, future) = promise();
        let token = InterruptToken::new();
        self.shared.tokens.register(&future, token.clone());
        let task = move || f(&token).map_err(|e| TaskError::Executor(DynError::new(e)));
        match &self.shared.config.trace {
            None => ticket.push(RawJob::new(PromiseJob::new(task, promise))),
            Some(recorder) => ticket.push(RawJob::new(TracedJob::new(
                recorder,
                PromiseJob::new(task, promise),
            ))),
        }
        Ok(future)
    }

    /// Stops one task, as far as a thread can be stopped (beyond Python,
    /// whose `cancel()` only stops a task that has not started):
    ///
    /// * not started: cancelled, as [`Future::cancel`] does
    ///   ([`Interrupt::Cancelled`]);
    /// * finished: nothing ([`Interrupt::AlreadyDone`]);
    /// * running, submitted with
    ///   [`submit_interruptible`](Self::submit_interruptible): its token is
    ///   set ([`Interrupt::Requested`]); the future ends with
    ///   [`Interrupted`] if the task saw it, with the task's value if not;
    /// * running, submitted otherwise: `Err(NotInterruptible)`, and the
    ///   task runs to its end (a thread cannot be killed safely: it would
    ///   leave its locks held).
    pub fn interrupt<T>(&self, future: &Future<T>) -> Result<Interrupt, NotInterruptible> {
        if future.cancel() {
            return Ok(Interrupt::Cancelled);
        }
        if let Some(token) = self.shared.tokens.get(future.id()) {
            if future.done() {
                return Ok(Interrupt::AlreadyDone);
            }
            // Looked at before the token is set: once set, the task may
            // finish (and the future be done) before this line returns,
            // and that is the request taking effect, not "already done".
            token.interrupt();
            return Ok(Interrupt::Requested);
        }
        if future.done() {
            return Ok(Interrupt::AlreadyDone);
        }
        Err(NotInterruptible)
    }

    /// Like [`submit`](Self::submit), but never waits: if the bounded queue
    /// is full (or the pool is closed) the closure comes back in the error.
    pub fn try_submit<F, T>(&self, f: F) -> Result<Future<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let ticket = match self.shared.enter(false) {
            Ok(ticket) => ticket,
            Err(Refusal::Full) => return Err(TrySubmitError::Full(f)),
            Err(Refusal::Shutdown) => return Err(TrySubmitError::Shutdown(f)),
            Err(Refusal::Broken(msg)) => return Err(TrySubmitError::Broken(f, msg)),
        };
        let (promise, future) = promise();
        let body = move || Ok(f());
        match &self.shared.config.trace {
            None => ticket.push(RawJob::new(PromiseJob::new(body, promise))),
            Some(recorder) => ticket.push(RawJob::new(TracedJob::new(
                recorder,
                PromiseJob::new(body, promise),
            ))),
        }
        Ok(future)
    }

    /// Applies `f` to every item, in the pool, and yields the results in
    /// input order: Python 3.14's `Executor.map`. Every item is submitted
    /// before `map` returns (so a shutdown or a drop of the pool never loses
    /// one); for a lazy map with a bounded number in flight (3.14's
    /// `buffersize`), use [`map_with`](Self::map_with) and
    /// [`MapOptions::window`]. A failing item yields its own `Err` and the
    /// iteration goes on (CPython's main branch, gh-108518). Dropping the
    /// iterator after a `next()` cancels the items not yet yielded and not
    /// started; dropping it unadvanced cancels nothing (as closing CPython's
    /// unstarted `result_iterator`); `shutdown(_, true)` cancels the items not
    /// started. See [`Map`] for every rule.
    ///
    /// Errs if the pool is shut down or broken at that moment.
    pub fn map<F, I, T>(&self, f: F, items: I) -> Result<Map<I::IntoIter, F, T>, SubmitError>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
    {
        self.map_with(f, items, MapOptions::new())
    }

    /// [`map`](Self::map) with options: a window (the lazy mode), a
    /// timeout, a chunk size.
    pub fn map_with<F, I, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Map<I::IntoIter, F, T>, SubmitError>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
    {
        Map::start(self.shared.clone(), f, items.into_iter(), options)
    }

    /// Runs `f` with a [`Scope`] whose tasks may borrow from the caller's
    /// stack, and returns once every task submitted through the scope has
    /// ended (like `std::thread::scope`). A task's panic goes to its
    /// future; a panic in `f` itself is resumed after the tasks end.
    ///
    /// Do not call this from a task of the same pool whose workers may all
    /// be busy in scopes: like any blocking wait inside a pool, that can
    /// deadlock.
    pub fn scope<'env, F, R>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        scope::run(self, f)
    }

    /// Stops taking new tasks. Queued tasks still run unless
    /// `cancel_futures`, which cancels every task that has not started, and
    /// every item of a running [`map`](Self::map) that has not started. With
    /// `wait`, returns once every queued task has ended and every worker
    /// thread has been joined. Idempotent; a later `shutdown(true, ..)` joins
    /// what an earlier `shutdown(false, ..)` left running.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared.shutdown(wait, cancel_futures);
    }

    /// A snapshot of the workers and the task counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The most workers this pool runs.
    pub fn max_workers(&self) -> usize {
        self.shared.config.max_workers
    }

    /// The prefix of the worker threads' names.
    pub fn thread_name_prefix(&self) -> &str {
        &self.shared.config.thread_name_prefix
    }

    /// True once `shutdown` was called (or the pool is being dropped).
    pub fn is_shutdown(&self) -> bool {
        self.shared.is_shutdown()
    }

    /// The recorder of this pool's schedule, if it was built with one
    /// ([`Builder::trace`]).
    pub fn recorder(&self) -> Option<&future::trace::Recorder> {
        self.shared.config.trace.as_ref()
    }

    /// The broken-pool message, if an initializer failed.
    pub fn broken(&self) -> Option<String> {
        self.shared.broken()
    }
}

impl Default for ThreadPoolExecutor {
    /// A pool of Python's default size, `min(32, cpus + 4)`.
    fn default() -> Self {
        Self::new(default_max_workers())
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        self.shared.shutdown(true, false);
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.max_workers())
            .field("thread_name_prefix", &self.thread_name_prefix())
            .field("stats", &self.stats())
            .finish()
    }
}
