//! [`InlineExecutor`]: each task runs in the caller's thread, inside `submit`.

use std::error::Error;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use future::trace::Recorder;
use future::{promise, Future, Interrupt, TaskError};

use crate::error::{ErrorKind, ExecutorError};
use crate::executor::{Executor, Payload};

/// The name in [`ExecutorError`] messages.
pub(crate) const INLINE: &str = "inline executor";

/// An executor that runs each task in the calling thread, before `submit`
/// returns: the book's sequential baseline, and what a test reaches for when
/// it wants the executor out of the picture.
///
/// The future `submit` returns is already finished, so `result()` never
/// blocks and a done-callback added to it runs at once. A panic in the task
/// is caught and finishes the future with `TaskError::Panicked`, as on the
/// pools. Arguments and results are moved, never serialised: the
/// [`Payload`] bounds are the trait's, but this executor does not exercise
/// them.
///
/// `map` runs every item before it returns (Python 3.14 submits every item
/// at the call, and here submitting is running), so dropping its iterator
/// cancels nothing.
///
/// `shutdown` refuses later submits. It has nothing to cancel and nothing
/// to wait for in its own thread; a task another thread is running at that
/// moment is that thread's `submit` call, which finishes on its own.
/// Dropping it is `shutdown(true, false)`, which therefore does nothing
/// more.
///
/// [`traced`](Self::traced) makes one that records each task's transitions
/// (all on the caller's thread) for a picture of the schedule.
#[derive(Default)]
pub struct InlineExecutor {
    shut_down: AtomicBool,
    trace: Option<Recorder>,
}

impl InlineExecutor {
    /// A new inline executor.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new inline executor that records every task's transitions in
    /// `recorder` (`future::trace`).
    pub fn traced(recorder: Recorder) -> Self {
        InlineExecutor {
            shut_down: AtomicBool::new(false),
            trace: Some(recorder),
        }
    }

    /// Whether `shutdown` was called.
    pub fn is_shutdown(&self) -> bool {
        self.shut_down.load(Ordering::SeqCst)
    }

    /// Runs `task` now, in this thread, and returns its finished future.
    fn run<R>(
        &self,
        task: impl FnOnce() -> Result<R, TaskError>,
    ) -> Result<Future<R>, ExecutorError> {
        if self.is_shutdown() {
            return Err(ExecutorError::new(
                ErrorKind::Shutdown,
                INLINE,
                "cannot schedule new futures after shutdown",
            ));
        }
        let (promise, future) = promise();
        let mut trace = self.trace.as_ref().map(Recorder::submitted);
        // A fresh future: nobody can have cancelled it yet.
        if promise.set_running_or_notify_cancel() == Ok(true) {
            if let Some(trace) = &mut trace {
                trace.started_here();
            }
            let outcome = catch_unwind(AssertUnwindSafe(task))
                .unwrap_or_else(|payload| Err(TaskError::from_panic(payload)));
            if let Some(trace) = trace {
                trace.ended(outcome.is_ok());
            }
            // The only completion of a fresh promise cannot be refused.
            let _ = promise.set_outcome(outcome);
        }
        Ok(future)
    }
}

impl Executor for InlineExecutor {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, ExecutorError>
    where
        A: Payload,
        R: Payload,
    {
        self.run(move || Ok(f(arg)))
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
        self.run(move || f(arg).map_err(TaskError::failed))
    }

    /// Not applicable: a task runs inside `submit`, so its future is
    /// finished before anyone holds it, and there is nothing to interrupt.
    /// Always refused with [`ErrorKind::Unsupported`], to say so.
    fn interrupt<R>(&self, _future: &Future<R>) -> Result<Interrupt, ExecutorError> {
        Err(ExecutorError::new(
            ErrorKind::Unsupported,
            INLINE,
            "not applicable: a task runs inside submit, so it has finished before its future \
             is returned; there is never a running task to interrupt",
        ))
    }

    fn shutdown(&self, _wait: bool, _cancel_futures: bool) {
        self.shut_down.store(true, Ordering::SeqCst);
    }

    fn recorder(&self) -> Option<&Recorder> {
        self.trace.as_ref()
    }
}

impl Drop for InlineExecutor {
    fn drop(&mut self) {
        Executor::shutdown(self, true, false);
    }
}

impl fmt::Debug for InlineExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineExecutor")
            .field("shut_down", &self.is_shutdown())
            .field("traced", &self.trace.is_some())
            .finish()
    }
}
