//! Where a panicking done-callback is reported.
//!
//! CPython logs a failing callback on the `concurrent.futures` logger and goes
//! on with the next one. Here the report goes to a hook: by default a line on
//! stderr, `exception calling callback for <Future ...>: <message>`; a program
//! or a test can install its own with [`set_callback_panic_hook`].

use std::sync::RwLock;

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
static HOOK: RwLock<Option<CallbackPanicHook>> = RwLock::new(None);

/// Replaces the reporter of panicking done-callbacks for the whole process;
/// returns the previous one (`None`: the default, a line on stderr).
pub fn set_callback_panic_hook(
    hook: impl Fn(&CallbackPanic) + Send + Sync + 'static,
) -> Option<CallbackPanicHook> {
    let mut slot = HOOK.write().unwrap_or_else(|p| p.into_inner());
    slot.replace(Box::new(hook))
}

/// Puts the default stderr reporter back.
pub fn reset_callback_panic_hook() {
    let mut slot = HOOK.write().unwrap_or_else(|p| p.into_inner());
    *slot = None;
}

pub(crate) fn report_callback_panic(future: &str, payload: &(dyn std::any::Any + Send)) {
    let report = CallbackPanic {
        future: future.to_string(),
        message: panic_message(payload),
    };
    let hook = HOOK.read().unwrap_or_else(|p| p.into_inner());
    match &*hook {
        Some(hook) => hook(&report),
        None => eprintln!(
            "exception calling callback for {}: {}",
            report.future, report.message
        ),
    }
}
