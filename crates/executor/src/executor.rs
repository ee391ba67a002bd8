//! The [`Executor`] trait: what every executor can do, with bounds every
//! executor can meet.

use std::error::Error;

use future::trace::Recorder;
use future::{Future, FutureError, Interrupt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ErrorKind, ExecutorError};
use crate::map::Map;

/// A value that can cross to any executor: a task's argument or result.
///
/// The bounds are the intersection of what the executors need: a process
/// pool sends values through a pipe and a Celery executor through a broker,
/// so they must be `Serialize + DeserializeOwned`; a thread pool moves them
/// to another thread, so `Send + 'static`. Implemented for every type that
/// meets them; you never implement it yourself.
pub trait Payload: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Payload for T {}

/// An executor: something that runs a task somewhere and hands back a
/// [`Future`] of its result. Python's `concurrent.futures.Executor`.
///
/// Implemented by [`InlineExecutor`](crate::InlineExecutor) (in the
/// caller's thread), [`ThreadPoolExecutor`](crate::ThreadPoolExecutor) and
/// [`ProcessPoolExecutor`](crate::ProcessPoolExecutor) here, and by the
/// Celery executor in its own crate. Code written against this trait runs
/// unchanged on each: switching from threads to processes is a one-line
/// change, as in Python.
///
/// # What a task is
///
/// A plain `fn(A) -> R` and one argument: not a closure, because a process
/// pool runs the function in another process (where only a function's
/// address is meaningful) and a Celery executor on another machine (where
/// only its registered name is). Several arguments travel as a tuple. `A`
/// and `R` are [`Payload`]s. Each executor keeps its richer API as inherent
/// methods: closures and `scope` on the thread pool, chunked `map`,
/// `task_timeout` and `terminate_workers` on the process pool.
///
/// # Calling it on a concrete pool
///
/// The pools have inherent methods of the same names (the thread pool's
/// `submit` takes a closure), and Rust picks an inherent method over a
/// trait method. Generic code (`fn run<E: Executor>(e: &E)`) always calls
/// the trait's; on a concrete pool, write `Executor::submit(&pool, f, x)`.
///
/// # Drop
///
/// Dropping an executor is `shutdown(wait = true, cancel_futures = false)`:
/// every task already submitted runs to its end, and the drop returns once
/// it has (Python's `with` block). Each implementation says so in its docs.
pub trait Executor {
    /// Schedules `f(arg)` and returns the future of its result (Python's
    /// `submit(fn, /, *args)`). A panic in `f` finishes the future with
    /// [`TaskError::Panicked`](future::TaskError::Panicked), keeping its
    /// message; the executor goes on.
    ///
    /// Errs, without running anything, if the executor is shut down or
    /// broken.
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, ExecutorError>
    where
        A: Payload,
        R: Payload;

    /// Like [`submit`](Self::submit) for a task that can fail: `Err(e)`
    /// finishes the future with
    /// [`TaskError::Failed`](future::TaskError::Failed), keeping `e`'s type
    /// name and message (Python: the call raised). Whether `e` itself can be
    /// downcast depends on the executor: the value stays in the process
    /// that ran the task.
    fn submit_fallible<A, R, E>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<Future<R>, ExecutorError>
    where
        A: Payload,
        R: Payload,
        E: Error + Send + Sync + 'static;

    /// Applies `f` to every item and yields one `Result` per item, in input
    /// order (Python 3.14's `map(fn, iterable)`).
    ///
    /// * Every item is submitted before `map` returns, so a `shutdown` or a
    ///   drop of the executor afterwards loses none of them.
    /// * A failing item yields its own `Err` and the items after it are
    ///   still yielded.
    /// * Dropping the iterator does what closing CPython's `result_iterator`
    ///   does: if it was never advanced, nothing (every item runs); if it
    ///   was, it cancels every item not yet yielded that has not started
    ///   (items already running finish unseen).
    /// * Errs if the executor refuses the work (shut down, broken); with the
    ///   default below, the items submitted before a refusal are left to
    ///   run, as in CPython.
    ///
    /// The default submits each item with [`submit`](Self::submit); the two
    /// pools override it with their own `map` (chunked on the process pool,
    /// where a failing item fails its whole chunk, as with Python's
    /// `chunksize`), which has the same meaning otherwise. Python's `timeout`, `chunksize` and
    /// `buffersize` are on the pools' inherent `map`s.
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
        Map::submit_all(items.into_iter().map(|item| self.submit(f, item)))
    }

    /// Stops one task wherever it is in its life, the second verb beside
    /// [`Future::cancel`] (which, as in Python, only stops a task that has
    /// not started). Not in Python: each executor goes as far as it safely
    /// can, and the answer says what it did:
    ///
    /// * not started: cancelled, as `cancel()` ([`Interrupt::Cancelled`]);
    /// * finished: nothing ([`Interrupt::AlreadyDone`]);
    /// * running: the executor's escalation starts
    ///   ([`Interrupt::Requested`]) and the future ends with an error that
    ///   says "by request" and names the step that took effect; on the
    ///   process pool SIGTERM to the task's worker, SIGKILL after a grace
    ///   period, the worker replaced (`TerminatedByRequest`);
    /// * running where that cannot be done safely: `Err` with
    ///   [`ErrorKind::Unsupported`] and the reason, and the task runs to its
    ///   end. A thread cannot be killed: only a task submitted with the
    ///   thread pool's inherent `submit_interruptible` (which gets a token
    ///   to check) can be interrupted there, and tasks submitted through
    ///   this trait have none. The inline executor has nothing running to
    ///   interrupt (a task runs inside `submit`) and says so.
    ///
    /// The default refuses with `Unsupported`; the executors override it.
    /// The side-by-side of the steps: `docs/executor.md`, "`interrupt`: the
    /// second verb".
    fn interrupt<R>(&self, future: &Future<R>) -> Result<Interrupt, ExecutorError> {
        let _ = future;
        Err(ExecutorError::new(
            ErrorKind::Unsupported,
            "executor",
            "this executor cannot interrupt a task (only cancel one that has not started)",
        ))
    }

    /// True if every task this executor finishes carries a
    /// [`TaskReport`](future::TaskReport) on its future
    /// ([`Future::report`]): where it ran and what it cost (beyond Python).
    /// The process pool measures its workers; the inline executor and the
    /// thread pool run in this process, where a task's CPU time and memory
    /// cannot be told from the rest, so they say false and their futures'
    /// reports are `None`.
    fn reports_tasks(&self) -> bool {
        false
    }

    /// Stops taking new tasks (Python's `shutdown(wait, *, cancel_futures)`).
    /// With `cancel_futures`, every task that has not started is cancelled;
    /// with `wait`, returns once every task that was not cancelled has
    /// ended. Calling it again is harmless.
    fn shutdown(&self, wait: bool, cancel_futures: bool);

    /// The recorder this executor records its schedule in, if it was built
    /// with one (`future::trace`; the pools' and the Celery executor's
    /// `Builder::trace`, `InlineExecutor::traced`), so that generic code can
    /// write the picture of what it ran. The default: none.
    fn recorder(&self) -> Option<&Recorder> {
        None
    }
}
