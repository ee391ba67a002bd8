//! Containing user code that runs on an executor's own threads.
//!
//! A done-callback, a waker and the callback-panic hook are caught where
//! they run (`future.rs`, `report.rs`). Some user code runs elsewhere on an
//! executor's threads: a result's `Deserialize` or `Drop` (the drop of a
//! result nobody holds happens where the promise is dropped), a job on a
//! [`CallbackRunner`](crate::CallbackRunner). If any of it unwound through
//! a thread an executor depends on (a process pool's dispatcher, a Celery
//! listener, a callback runner) that thread would die, and with it every
//! later result. [`contain`] runs such a step, catches what escapes,
//! reports it on stderr (the default panic hook has already printed where it
//! happened) and lets the caller go on. Continuing is safe when the step is
//! the last thing done for its task, after the executor's own bookkeeping,
//! which is how every caller uses it.

use std::any::Any;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::panic_message;

/// Runs `step`; a panic that escapes it is reported on stderr as
/// `<who>: a panic escaped <what>: <message> (contained)` and swallowed.
/// Returns false if one did.
///
/// ```
/// let survived = future::contain("my-executor", "a result's drop", || panic!("boom"));
/// assert!(!survived);
/// assert!(future::contain("my-executor", "a result's drop", || ()));
/// ```
pub fn contain(who: &str, what: &str, step: impl FnOnce()) -> bool {
    match catch_unwind(AssertUnwindSafe(step)) {
        Ok(()) => true,
        Err(payload) => {
            let message = panic_message(&*payload);
            drop_payload(payload);
            // A failed write to stderr has nowhere else to go.
            let _ = writeln!(
                io::stderr(),
                "{who}: a panic escaped {what}: {message} (contained; the thread goes on)"
            );
            false
        }
    }
}

/// Drops a panic payload, whose own `Drop` may panic too; such a payload is
/// leaked instead (once, by the second catch).
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}
