//! [`Interrupt`]: what an executor did when asked to stop one task.
//!
//! Python's `Future.cancel()` only stops a task that has not started, and
//! [`Future::cancel`](crate::Future::cancel) keeps that meaning. Stopping a
//! task that *runs* is executor-specific (a thread cannot be killed, a
//! process can), so each executor has an `interrupt(&future)` verb; this is
//! the one answer type they share, so generic code can read it the same way
//! on every executor. The answer says what happened *now*; when the task
//! was running, its future ends later with an error that names the step
//! that took effect (a signal, a token the task saw), or with its value if
//! it finished first.

use std::fmt;

/// What an executor's `interrupt(&future)` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interrupt {
    /// The task had not started: it was cancelled, exactly as
    /// [`Future::cancel`](crate::Future::cancel) does, and will never run.
    Cancelled,
    /// The task had already finished (or was already cancelled): nothing
    /// was done.
    AlreadyDone,
    /// The task was running (or handed to a worker): the executor started
    /// its escalation (a signal to the worker process, the task's token
    /// set). The future ends with an error naming the step that took
    /// effect, or with the task's own outcome if it finished first.
    Requested,
}

impl fmt::Display for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interrupt::Cancelled => "the task had not started and was cancelled",
            Interrupt::AlreadyDone => "the task had already finished; nothing was done",
            Interrupt::Requested => "the task is running; its interruption was requested",
        })
    }
}
