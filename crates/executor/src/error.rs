//! One error type for every executor's refusal to take a task.
//!
//! Each executor refuses work for its own reasons, in its own words (the
//! thread pool's `SubmitError`, the process pool's, a Celery executor's
//! broker errors). Generic code needs to tell a few cases apart and to
//! print the rest: [`ExecutorError`] carries a coarse [`ErrorKind`] to
//! match on, the executor's name, and the executor's own error, whose
//! message is what `Display` prints and which [`ExecutorError::downcast_ref`]
//! gives back.

use std::error::Error;
use std::fmt;

/// What kind of refusal an [`ExecutorError`] is: the cases a generic caller
/// can act on differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `shutdown` was called (or the executor was dropped): no new work is
    /// taken. Python's `RuntimeError('cannot schedule new futures after
    /// shutdown')`.
    Shutdown,
    /// The executor cannot run anything any more (an initializer failed, a
    /// worker died under the process pool's break-the-pool policy). Python's
    /// `BrokenExecutor`.
    Broken,
    /// The executor could not be reached (a remote executor's broker is
    /// down); a later call may succeed.
    Unavailable,
    /// The call itself was wrong (an argument out of range). Python's
    /// `ValueError`.
    InvalidArgument,
    /// This executor cannot do what was asked, for a reason the message
    /// gives (e.g. `interrupt` of a running task on threads without a
    /// token, or on the inline executor).
    Unsupported,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Shutdown => "shut down",
            ErrorKind::Broken => "broken",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Unsupported => "unsupported",
        })
    }
}

/// Why an executor refused a task (or a `map`): its [`kind`](Self::kind),
/// which executor said so, and the executor's own error.
///
/// `Display` prints `<executor>: <the executor's message>`, e.g.
/// `thread pool: cannot schedule new futures after shutdown`.
pub struct ExecutorError {
    kind: ErrorKind,
    executor: &'static str,
    error: Box<dyn Error + Send + Sync + 'static>,
}

impl ExecutorError {
    /// Wraps an executor's own error. `executor` names the executor in
    /// messages ("thread pool", "process pool", "inline", "celery").
    pub fn new<E>(kind: ErrorKind, executor: &'static str, error: E) -> Self
    where
        E: Into<Box<dyn Error + Send + Sync + 'static>>,
    {
        ExecutorError {
            kind,
            executor,
            error: error.into(),
        }
    }

    /// The kind of refusal, to match on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The executor that refused, as named in messages.
    pub fn executor(&self) -> &'static str {
        self.executor
    }

    /// The executor's own error.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.error
    }

    /// The executor's own error as its concrete type, e.g.
    /// `thread_pool::SubmitError`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref()
    }

    /// Takes the executor's own error out.
    pub fn into_inner(self) -> Box<dyn Error + Send + Sync + 'static> {
        self.error
    }
}

impl fmt::Debug for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorError")
            .field("kind", &self.kind)
            .field("executor", &self.executor)
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.executor, self.error)
    }
}

// `source()` stays `None` on purpose: `Display` already prints the inner
// error's message, and a chain printer (anyhow, `Report`) would print it twice.
impl Error for ExecutorError {}

impl From<thread_pool::SubmitError> for ExecutorError {
    fn from(e: thread_pool::SubmitError) -> Self {
        let kind = match e {
            thread_pool::SubmitError::Shutdown => ErrorKind::Shutdown,
            _ => ErrorKind::Broken,
        };
        ExecutorError::new(kind, crate::pools::THREAD_POOL, e)
    }
}

impl From<process_pool::SubmitError> for ExecutorError {
    fn from(e: process_pool::SubmitError) -> Self {
        #[allow(unreachable_patterns)] // the enum may grow
        let kind = match e {
            process_pool::SubmitError::Shutdown => ErrorKind::Shutdown,
            process_pool::SubmitError::ZeroChunksize => ErrorKind::InvalidArgument,
            _ => ErrorKind::Broken,
        };
        ExecutorError::new(kind, crate::pools::PROCESS_POOL, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_executors_message_and_error() {
        let e = ExecutorError::from(thread_pool::SubmitError::Broken("init failed: x".into()));
        assert_eq!(e.kind(), ErrorKind::Broken);
        assert_eq!(e.executor(), "thread pool");
        assert_eq!(
            e.to_string(),
            "thread pool: cannot schedule new futures: init failed: x"
        );
        assert_eq!(
            e.downcast_ref::<thread_pool::SubmitError>(),
            Some(&thread_pool::SubmitError::Broken("init failed: x".into()))
        );
        assert!(e.source().is_none(), "the message is printed once");

        let e = ExecutorError::from(process_pool::SubmitError::Shutdown);
        assert_eq!(e.kind(), ErrorKind::Shutdown);
        assert_eq!(
            e.to_string(),
            "process pool: cannot schedule new futures after shutdown"
        );
        let e = ExecutorError::from(process_pool::SubmitError::ZeroChunksize);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn wraps_a_plain_message() {
        let e = ExecutorError::new(
            ErrorKind::Unavailable,
            "celery",
            "broker refused: ECONNREFUSED",
        );
        assert_eq!(e.to_string(), "celery: broker refused: ECONNREFUSED");
        assert_eq!(e.into_inner().to_string(), "broker refused: ECONNREFUSED");
    }
}
