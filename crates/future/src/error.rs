//! The errors a future can hold or report.
//!
//! Python has one exception hierarchy for everything; here the two roles are
//! split:
//!
//! * [`TaskError`] is an *outcome*: what a finished future holds when the task
//!   did not produce a value (it returned an error, it panicked, its executor
//!   broke, or its promise was dropped). It is cheap to clone, so every reader
//!   of the future sees the same error.
//! * [`FutureError`] is what a *read* returns: the task error, or that the
//!   future was cancelled, or that the wait timed out (the future is then left
//!   untouched and can be read again).

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// An error value of any type, shared, with its type's short name kept for
/// `Debug` output (`<Future state=finished raised ParseIntError>`).
#[derive(Clone)]
pub struct DynError {
    type_name: String,
    error: Arc<dyn Error + Send + Sync + 'static>,
}

impl DynError {
    /// Wraps `error`, remembering its type's short name.
    pub fn new<E: Error + Send + Sync + 'static>(error: E) -> Self {
        DynError {
            type_name: short_type_name(std::any::type_name::<E>()),
            error: Arc::new(error),
        }
    }

    /// Wraps an error whose type is only known by name: for example an error
    /// that crossed a pipe from another process as text.
    pub fn from_parts(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        DynError {
            type_name: type_name.into(),
            error: Arc::new(MessageError(message.into())),
        }
    }

    /// The short name of the wrapped error's type, like Python's exception class name.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The wrapped error, to inspect or downcast.
    pub fn get(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.error
    }

    /// The wrapped error as `E`, if that is its type.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref::<E>()
    }
}

impl fmt::Debug for DynError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?})", self.type_name, self.error)
    }
}

impl fmt::Display for DynError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

/// An error known only by its message (see [`DynError::from_parts`]).
#[derive(Debug)]
struct MessageError(String);

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for MessageError {}

/// Why a finished future holds no value.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TaskError {
    /// The task ran and returned an error.
    Failed(DynError),
    /// The task panicked; the panic message is kept.
    Panicked(String),
    /// The executor was broken before or while running the task: its
    /// initializer failed, or (with the process pool's "break" policy) a worker
    /// died. Python's `BrokenExecutor`.
    BrokenExecutor(String),
    /// The executor could not run the task to its end for a reason of its own
    /// (a worker process was killed, a per-task timeout expired, a frame was
    /// corrupt). Downcast the inner error to the executor's error type.
    Executor(DynError),
    /// The [`Promise`](crate::Promise) was dropped without being completed.
    BrokenPromise,
}

impl TaskError {
    /// Wraps an error returned by a task.
    pub fn failed<E: Error + Send + Sync + 'static>(error: E) -> Self {
        TaskError::Failed(DynError::new(error))
    }

    /// Turns a caught panic payload (from `std::panic::catch_unwind`) into a
    /// task error, keeping the panic message when it is a string.
    ///
    /// The payload is the user's value and its own `Drop` may panic: that
    /// second panic is caught and its payload leaked (`drop_payload`), so
    /// this never unwinds into the caller, which is usually a worker
    /// handling the first panic.
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = panic_message(&*payload);
        crate::contain::drop_payload(payload);
        TaskError::Panicked(message)
    }

    /// The name shown after `raised` in a future's `Debug` output, the
    /// counterpart of Python's exception class name.
    pub fn name(&self) -> &str {
        match self {
            TaskError::Failed(e) | TaskError::Executor(e) => e.type_name(),
            TaskError::Panicked(_) => "TaskPanicked",
            TaskError::BrokenExecutor(_) => "BrokenExecutor",
            TaskError::BrokenPromise => "BrokenPromise",
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Failed(e) => write!(f, "task failed: {e}"),
            TaskError::Panicked(msg) => write!(f, "task panicked: {msg}"),
            TaskError::BrokenExecutor(msg) => write!(f, "executor is broken: {msg}"),
            TaskError::Executor(e) => write!(f, "{e}"),
            TaskError::BrokenPromise => {
                f.write_str("broken promise: the task's promise was dropped before it completed")
            }
        }
    }
}

impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TaskError::Failed(e) | TaskError::Executor(e) => Some(e.get()),
            _ => None,
        }
    }
}

/// Why reading a future did not give a value.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum FutureError {
    /// The future was cancelled before it ran (Python's `CancelledError`).
    Cancelled,
    /// The wait's deadline passed; the future is untouched (Python's `TimeoutError`).
    Timeout(Duration),
    /// The task finished without a value.
    Task(TaskError),
    /// The value was already moved out by `into_result` on another handle.
    ValueTaken,
}

impl fmt::Display for FutureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled => f.write_str("the future was cancelled"),
            FutureError::Timeout(t) => write!(f, "the future did not finish within {t:?}"),
            FutureError::Task(e) => fmt::Display::fmt(e, f),
            FutureError::ValueTaken => f.write_str(
                "the future's value was already moved out by into_result() on another handle",
            ),
        }
    }
}

impl Error for FutureError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            FutureError::Task(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TaskError> for FutureError {
    fn from(e: TaskError) -> Self {
        FutureError::Task(e)
    }
}

/// A future was completed, or marked running, in a state that forbids it
/// (Python's `InvalidStateError` and `RuntimeError('Future in unexpected state')`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidStateError {
    /// The future's repr when the call was refused, e.g.
    /// `FINISHED: <Future state=finished returned i32>`.
    pub message: String,
}

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid state: {}", self.message)
    }
}

impl Error for InvalidStateError {}

/// The deadline of `as_completed` passed with futures still unfinished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutError {
    /// How many futures had not been yielded.
    pub unfinished: usize,
    /// How many distinct futures were given.
    pub total: usize,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (of {}) futures unfinished",
            self.unfinished, self.total
        )
    }
}

impl Error for TimeoutError {}

/// The message of a panic payload: `&str` and `String` payloads are kept,
/// anything else is described.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// `alloc::vec::Vec<alloc::string::String>` -> `Vec<String>`: drops module
/// paths, keeps generics, as Python's repr shows a bare class name.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(""));
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_type_names_drop_paths_and_keep_generics() {
        assert_eq!(short_type_name("i32"), "i32");
        assert_eq!(short_type_name("alloc::string::String"), "String");
        assert_eq!(
            short_type_name("alloc::vec::Vec<alloc::string::String>"),
            "Vec<String>"
        );
        assert_eq!(
            short_type_name("core::result::Result<u8, std::io::error::Error>"),
            "Result<u8, Error>"
        );
    }

    #[test]
    fn as_completed_timeout_message_matches_python() {
        let e = TimeoutError {
            unfinished: 2,
            total: 4,
        };
        assert_eq!(e.to_string(), "2 (of 4) futures unfinished");
    }

    #[test]
    fn panic_messages_are_kept() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(panic_message(&*p), "boom 7");
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(
            TaskError::from_panic(p).to_string(),
            "task panicked: static"
        );
    }
}
