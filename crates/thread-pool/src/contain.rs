//! Panics that escape a task's own `catch_unwind`.
//!
//! A task's closure runs under `catch_unwind` (`job.rs`), and a panicking
//! done-callback is caught by the future crate. A few panics can still come
//! out of a job: the drop of a cancelled task's closure (it is dropped
//! unrun), the drop of a result nobody holds (dropped with the task's
//! promise, on the worker), and, before issue 17, a callback-panic hook
//! that panicked itself (the future crate now catches that one where it
//! reports, see `future/src/report.rs`). Left
//! alone, any of them unwound through the worker loop and killed the thread
//! without leaving the pool's counts, so the pool believed in a worker that
//! did not exist: later submits counted on it and never ran (issue 11).
//!
//! [`contain`] runs such a step, catches what escapes, reports it on stderr
//! (the default panic hook has already printed where it happened) and lets
//! the caller go on: a worker keeps its thread and its place in the counts,
//! and `shutdown(cancel_futures)` still cancels every queued task. rayon
//! aborts the process here instead; continuing is safe because every path
//! that can panic here runs after the job's bookkeeping is done (the
//! outcome published or the cancellation acknowledged, the worker's counts
//! updated), so nothing is left half-updated.

use std::any::Any;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use future::panic_message;

/// Runs `step`; a panic that escapes it is reported and swallowed. Returns
/// false if one did.
pub(crate) fn contain(what: &str, step: impl FnOnce()) -> bool {
    match catch_unwind(AssertUnwindSafe(step)) {
        Ok(()) => true,
        Err(payload) => {
            let message = panic_message(&*payload);
            drop_payload(payload);
            // A failed write to stderr has nowhere else to go.
            let _ = writeln!(
                io::stderr(),
                "thread-pool: a panic escaped {what}: {message} (contained; the worker goes on)"
            );
            false
        }
    }
}

/// Drops a panic payload, whose own `Drop` may panic too; such a payload is
/// leaked instead (once, by the second catch).
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}
