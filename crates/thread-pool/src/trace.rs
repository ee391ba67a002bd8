//! Recording the schedule (`Builder::trace`): a task's body wrapped so
//! that the worker records its start and end (`future::trace`).
//!
//! The wrapping happens at submit, and only when the pool has a recorder:
//! an untraced pool pushes the user's closure as it is, so recording
//! costs nothing but the test of `Config::trace` there.

use future::trace::{Recorder, TaskTrace};
use future::TaskError;

/// `body`, recording its start on the worker thread that runs it and its
/// end there: failed if it returns an error or panics (the panic goes on
/// to the pool's own `catch_unwind`).
pub(crate) fn traced<T>(
    recorder: &Recorder,
    body: impl FnOnce() -> Result<T, TaskError>,
) -> impl FnOnce() -> Result<T, TaskError> {
    let mut trace = recorder.submitted();
    move || {
        trace.started_here();
        let mut end = EndOnUnwind(Some(trace));
        let outcome = body();
        if let Some(trace) = end.0.take() {
            trace.ended(outcome.is_ok());
        }
        outcome
    }
}

/// Records a failed end if the body unwinds past it.
struct EndOnUnwind(Option<TaskTrace>);

impl Drop for EndOnUnwind {
    fn drop(&mut self) {
        if let Some(trace) = self.0.take() {
            trace.ended(false);
        }
    }
}
