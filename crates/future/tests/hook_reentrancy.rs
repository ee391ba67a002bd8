//! The callback-panic hook is user code run while a report is made: it may
//! call back into the hook's own API, say to put the default back after its
//! first report. That must not deadlock the completing thread (a pool's
//! worker, a dispatcher, a listener). Its own test binary, because the hook
//! is process-wide.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use future::promise;

/// Hang guard.
const LONG: Duration = Duration::from_secs(120);

#[test]
fn a_hook_that_replaces_itself_does_not_deadlock_the_completer() {
    let reports = Arc::new(AtomicUsize::new(0));
    let counted = reports.clone();
    future::set_callback_panic_hook(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        // Report once, then go back to the default.
        future::reset_callback_panic_hook();
    });
    let (done_tx, done) = mpsc::channel();
    // On another thread, so that a deadlock fails the guard below.
    std::thread::spawn(move || {
        let (p, f) = promise::<u8>();
        f.add_done_callback(|_| panic!("a callback panics"));
        p.set_result(1).unwrap();
        done_tx.send(()).unwrap();
    });
    done.recv_timeout(LONG)
        .expect("the completer never returned: the hook's call back into the hook API deadlocked");
    assert_eq!(reports.load(Ordering::SeqCst), 1, "the hook ran once");
    // The default is back: a later report does not reach the old hook.
    let (p, f) = promise::<u8>();
    f.add_done_callback(|_| panic!("a second callback panics"));
    p.set_result(2).unwrap();
    assert_eq!(reports.load(Ordering::SeqCst), 1, "the hook was replaced");
}
