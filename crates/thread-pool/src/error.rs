//! The errors the pool itself reports (task outcomes are the `future`
//! crate's [`TaskError`](future::TaskError)).
//!
//! * [`BuildError`]: the builder was given a setting that cannot work.
//! * [`SubmitError`]: the pool refused a task (Python raises `RuntimeError`
//!   or `BrokenThreadPool` from `submit`).
//! * [`TrySubmitError`]: like `SubmitError`, plus "the queue is full", and it
//!   hands the refused closure back so that nothing is lost.
//! * [`MapShutDown`]: a windowed `map` could not submit the rest of its
//!   input because the pool was shut down (an item error, yielded once).

use std::error::Error;
use std::fmt;

/// Why [`Builder::build`](crate::Builder::build) refused its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_workers(0)`: a pool needs at least one worker.
    ZeroWorkers,
    /// `queue_capacity(0)`: a bounded queue needs room for at least one task.
    ZeroCapacity,
    /// The thread name prefix contains a NUL byte, which no OS thread name may hold.
    InvalidThreadName(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => f.write_str("max_workers must be greater than 0"),
            BuildError::ZeroCapacity => f.write_str(
                "queue_capacity must be greater than 0 (leave it unset for an unbounded queue)",
            ),
            BuildError::InvalidThreadName(prefix) => write!(
                f,
                "thread_name_prefix {prefix:?} contains a NUL byte; thread names cannot hold one"
            ),
        }
    }
}

impl Error for BuildError {}

/// Why the pool refused a task.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// `shutdown` was called (or the pool was dropped): no new work is taken.
    Shutdown,
    /// A worker's initializer failed, so the pool is unusable. The message
    /// names the initializer's error.
    Broken(String),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Shutdown => f.write_str("cannot schedule new futures after shutdown"),
            SubmitError::Broken(msg) => write!(f, "cannot schedule new futures: {msg}"),
        }
    }
}

impl Error for SubmitError {}

/// Why [`try_submit`](crate::ThreadPoolExecutor::try_submit) refused a task;
/// each variant gives the closure back.
#[non_exhaustive]
pub enum TrySubmitError<F> {
    /// The bounded queue is full right now; retry later or call `submit`,
    /// which waits for room.
    Full(F),
    /// The pool is shut down.
    Shutdown(F),
    /// The pool is broken; the message names the initializer's error.
    Broken(F, String),
}

impl<F> TrySubmitError<F> {
    /// The refused closure.
    pub fn into_inner(self) -> F {
        match self {
            TrySubmitError::Full(f)
            | TrySubmitError::Shutdown(f)
            | TrySubmitError::Broken(f, _) => f,
        }
    }

    /// True if the queue was full (the only reason worth a retry).
    pub fn is_full(&self) -> bool {
        matches!(self, TrySubmitError::Full(_))
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
            TrySubmitError::Shutdown(_) => f.write_str("Shutdown(..)"),
            TrySubmitError::Broken(_, msg) => write!(f, "Broken(.., {msg:?})"),
        }
    }
}

impl<F> fmt::Display for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str(
                "the task queue is full; try again later or use submit(), which waits for room",
            ),
            TrySubmitError::Shutdown(_) => fmt::Display::fmt(&SubmitError::Shutdown, f),
            TrySubmitError::Broken(_, msg) => {
                fmt::Display::fmt(&SubmitError::Broken(msg.clone()), f)
            }
        }
    }
}

impl<F> Error for TrySubmitError<F> {}

/// The item error a windowed [`map`](crate::ThreadPoolExecutor::map_with)
/// yields, once, after the items it had submitted, when the pool was shut
/// down before the rest of its input was submitted: those items were never
/// run. It arrives as `FutureError::Task(TaskError::Executor(e))`, with
/// `e.downcast_ref::<MapShutDown>()` giving this. (A broken pool gives
/// `TaskError::BrokenExecutor` instead.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapShutDown {
    /// Items this map submitted (and yielded before this error).
    pub submitted: usize,
}

impl fmt::Display for MapShutDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the pool was shut down while this windowed map had input left: the {} items submitted before it were yielded, the rest were never submitted",
            self.submitted
        )
    }
}

impl Error for MapShutDown {}
