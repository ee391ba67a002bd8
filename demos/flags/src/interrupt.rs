//! Ctrl-C: stop starting new downloads, let the ones in flight finish (their
//! timeouts bound the wait), and still print the summary.
//!
//! The handler (from the `ctrlc` crate, which runs it on a thread of its own)
//! sets a flag and runs the actions registered with [`on_interrupt`], such as
//! cancelling every future that has not started yet; `as_completed` then
//! hands back those cancelled futures at once, so the main loop ends without
//! polling. A second Ctrl-C exits at once with status 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

type Action = Box<dyn FnOnce() + Send>;
static ACTIONS: Mutex<Vec<Action>> = Mutex::new(Vec::new());

/// Installs the Ctrl-C handler (once per process; later calls do nothing).
pub fn install() {
    INSTALL.call_once(|| {
        let result = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\n*** interrupted twice: exiting now");
                std::process::exit(130);
            }
            eprintln!("\n*** interrupted: finishing the downloads in flight");
            trigger_actions();
        });
        if let Err(e) = result {
            eprintln!("warning: Ctrl-C handler not installed: {e}");
        }
    });
}

/// Whether Ctrl-C was pressed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Runs `action` when Ctrl-C is pressed (at once if it already was).
pub fn on_interrupt(action: impl FnOnce() + Send + 'static) {
    let mut actions = ACTIONS.lock().unwrap_or_else(|p| p.into_inner());
    if interrupted() {
        drop(actions);
        action();
    } else {
        actions.push(Box::new(action));
    }
}

/// Acts as if Ctrl-C had been pressed (used by tests and by the handler).
pub fn simulate() {
    if !INTERRUPTED.swap(true, Ordering::SeqCst) {
        trigger_actions();
    }
}

fn trigger_actions() {
    let actions = std::mem::take(&mut *ACTIONS.lock().unwrap_or_else(|p| p.into_inner()));
    for action in actions {
        action();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn actions_run_once_on_interrupt_and_at_once_afterwards() {
        let ran = Arc::new(AtomicUsize::new(0));
        let before = ran.clone();
        on_interrupt(move || {
            before.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        simulate();
        assert!(interrupted());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        simulate(); // a second time runs nothing again
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        let after = ran.clone();
        on_interrupt(move || {
            after.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(
            ran.load(Ordering::SeqCst),
            11,
            "registered late: runs at once"
        );
    }
}
