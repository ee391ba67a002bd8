//! The trait on the two pools: each method calls the pool's own public API.

use std::error::Error;

use future::trace::Recorder;
use future::{Future, FutureError, Interrupt};
use process_pool::ProcessPoolExecutor;
use thread_pool::ThreadPoolExecutor;

use crate::error::{ErrorKind, ExecutorError};
use crate::executor::{Executor, Payload};

/// The names in [`ExecutorError`] messages.
pub(crate) const THREAD_POOL: &str = "thread pool";
pub(crate) const PROCESS_POOL: &str = "process pool";

/// A thread pool runs `f(arg)` as a closure on one of its threads; `arg` and
/// the result are moved, never serialised. Dropping the pool is
/// `shutdown(true, false)` (its own `Drop`).
impl Executor for ThreadPoolExecutor {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, ExecutorError>
    where
        A: Payload,
        R: Payload,
    {
        Ok(ThreadPoolExecutor::submit(self, move || f(arg))?)
    }

    fn submit_fallible<A, R, E>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<Future<R>, ExecutorError>
    where
        A: Payload,
        R: Payload,
        E: Error + Send + Sync + 'static,
    {
        Ok(ThreadPoolExecutor::submit_fallible(self, move || f(arg))?)
    }

    /// The pool's own `map` with its default options: every item submitted
    /// at the call, unless the pool was built with `Builder::map_window`
    /// (then lazy, as Python's `buffersize`).
    fn map<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<impl Iterator<Item = Result<R, FutureError>>, ExecutorError>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
    {
        Ok(ThreadPoolExecutor::map(self, f, items)?)
    }

    /// The pool's own `interrupt`: a pending task is cancelled; a running
    /// one has no token (tasks submitted through this trait never do), so
    /// it is refused with [`ErrorKind::Unsupported`] and runs to its end.
    fn interrupt<R>(&self, future: &Future<R>) -> Result<Interrupt, ExecutorError> {
        ThreadPoolExecutor::interrupt(self, future)
            .map_err(|e| ExecutorError::new(ErrorKind::Unsupported, THREAD_POOL, e))
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ThreadPoolExecutor::shutdown(self, wait, cancel_futures);
    }

    fn recorder(&self) -> Option<&Recorder> {
        ThreadPoolExecutor::recorder(self)
    }
}

/// A process pool runs `f(arg)` in a worker process; `arg` and the result
/// cross the pipe through serde. Dropping the pool is `shutdown(true,
/// false)` (its own `Drop`). The program must start the fork server early
/// (`process_pool::start_fork_server()` first thing in `main`).
impl Executor for ProcessPoolExecutor {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, ExecutorError>
    where
        A: Payload,
        R: Payload,
    {
        Ok(ProcessPoolExecutor::submit(self, f, arg)?)
    }

    fn submit_fallible<A, R, E>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<Future<R>, ExecutorError>
    where
        A: Payload,
        R: Payload,
        E: Error + Send + Sync + 'static,
    {
        Ok(ProcessPoolExecutor::submit_fallible(self, f, arg)?)
    }

    /// The pool's own [`map_auto`](ProcessPoolExecutor::map_auto): every
    /// item submitted at the call, in chunks sized from the number of items
    /// and workers (about 4 per worker, 1 to 65,536 items). For Python's
    /// exact `chunksize`, call the inherent `map(f, items, chunksize)`.
    fn map<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<impl Iterator<Item = Result<R, FutureError>>, ExecutorError>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
    {
        Ok(ProcessPoolExecutor::map_auto(self, f, items)?)
    }

    /// The pool's own `interrupt`: SIGTERM to the running task's worker,
    /// SIGKILL after the pool's `interrupt_grace`, the worker replaced.
    fn interrupt<R>(&self, future: &Future<R>) -> Result<Interrupt, ExecutorError> {
        Ok(ProcessPoolExecutor::interrupt(self, future))
    }

    /// Every finished task carries its worker's pid and cost (see
    /// `process_pool`'s module docs, "The cause and cost of a task").
    fn reports_tasks(&self) -> bool {
        true
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ProcessPoolExecutor::shutdown(self, wait, cancel_futures);
    }

    fn recorder(&self) -> Option<&Recorder> {
        ProcessPoolExecutor::recorder(self)
    }
}
