//! Where a panicking done-callback is reported.
//!
//! CPython logs a failing callback on the `concurrent.futures` logger and goes
//! on with the next one. Here the report goes to a hook: by default a line on
//! stderr, `exception calling callback for <Future ...>: <message>`; a program
//! or a test can install its own with [`set_callback_panic_hook`].
//!
//! A panicking `Waker::wake` is reported here too (its message starts with
//! "a waker panicked"), and nothing here unwinds: a hook that panics is
//! caught and printed, so the thread that completed the future (a pool's
//! worker or dispatcher, a listener) goes on.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};

use crate::contain::drop_payload;
use crate::error::panic_message;

/// A done-callback panicked: which future, and the panic's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackPanic {
    /// The future's `Debug` text at the time, e.g. `<Future state=finished returned i32>`.
    pub future: String,
    /// The panic message.
    pub message: String,
}

/// A reporter of panicking done-callbacks.
pub type CallbackPanicHook = Box<dyn Fn(&CallbackPanic) + Send + Sync + 'static>;

// Not part of the state machine (and not modelled by loom): a plain std lock.
// The hook is shared (`Arc`) so that a report calls it *outside* the lock:
// a hook may call back into this API (say, to put the default back after
// its first report), which takes the lock for writing.
static HOOK: RwLock<Option<Arc<CallbackPanicHook>>> = RwLock::new(None);

/// Replaces the reporter of panicking done-callbacks for the whole process;
/// returns the previous one (`None`: the default, a line on stderr).
pub fn set_callback_panic_hook(
    hook: impl Fn(&CallbackPanic) + Send + Sync + 'static,
) -> Option<CallbackPanicHook> {
    let previous = {
        let mut slot = HOOK.write().unwrap_or_else(|p| p.into_inner());
        slot.replace(Arc::new(Box::new(hook)))
    };
    previous.map(into_box)
}

/// The hook itself, or (while a report on another thread is still calling
/// it) a hook that calls it.
fn into_box(hook: Arc<CallbackPanicHook>) -> CallbackPanicHook {
    Arc::try_unwrap(hook).unwrap_or_else(|shared| Box::new(move |report| shared(report)))
}

/// Puts the default stderr reporter back.
pub fn reset_callback_panic_hook() {
    let previous = HOOK.write().unwrap_or_else(|p| p.into_inner()).take();
    // Dropped outside the lock: a hook's captures are user values.
    drop(previous);
}

/// Reports a done-callback's panic through the hook, then drops its payload.
pub(crate) fn report_callback_panic(future: &str, payload: Box<dyn Any + Send>) {
    report(future, panic_message(&*payload));
    drop_payload(payload);
}

/// Reports a panicking `Waker::wake` (an awaiting task's runtime, or a
/// hand-written waker) the same way: it is user code run by the completer,
/// exactly like a callback.
pub(crate) fn report_waker_panic(future: &str, payload: Box<dyn Any + Send>) {
    report(
        future,
        format!("a waker panicked: {}", panic_message(&*payload)),
    );
    drop_payload(payload);
}

/// Hands the report to the hook, or prints it. The hook is user code too,
/// and it runs on the completing thread (a pool's worker or dispatcher, a
/// listener): a hook that panics is caught here and its panic printed, so a
/// report never unwinds into the thread that made it.
fn report(future: &str, message: String) {
    let report = CallbackPanic {
        future: future.to_string(),
        message,
    };
    // A clone, so the lock is not held while the hook runs (see `HOOK`).
    let hook = HOOK.read().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(hook) = hook else {
        eprintln!(
            "exception calling callback for {}: {}",
            report.future, report.message
        );
        return;
    };
    // The hook moves in: if it was replaced meanwhile, this is its last
    // handle, and its drop (of user values) is inside the catch too.
    let shown = &report;
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || hook(shown))) {
        eprintln!(
            "exception calling callback for {}: {} (and the callback-panic hook panicked: {})",
            report.future,
            report.message,
            panic_message(&*payload)
        );
        drop_payload(payload);
    }
}
