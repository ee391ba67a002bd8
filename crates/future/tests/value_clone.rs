//! The value's `Clone` is user code that `result()` runs under the future's
//! lock (reads and moves of the value take turns there, so a `T` that is
//! `Send` but not `Sync` is never borrowed by two threads at once). A
//! `Clone` that panics poisons that lock; the future must stay fully usable
//! afterwards, for this reader and every other one.

#![cfg(not(loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use future::{promise, wait, ReturnWhen};

/// A value whose `Clone` panics while `fail` is set.
struct Fickle {
    n: u32,
    fail: Arc<AtomicBool>,
}

impl Clone for Fickle {
    fn clone(&self) -> Self {
        if self.fail.load(Ordering::SeqCst) {
            panic!("Fickle::clone refuses");
        }
        Fickle {
            n: self.n,
            fail: self.fail.clone(),
        }
    }
}

#[test]
fn a_panicking_clone_of_the_value_leaves_the_future_readable() {
    let fail = Arc::new(AtomicBool::new(true));
    let (p, f) = promise::<Fickle>();
    let other = f.clone();
    // Registered before completion, so the completion takes the lock path.
    let (tx, rx) = std::sync::mpsc::channel();
    f.add_done_callback(move |f| tx.send(f.done()).unwrap());
    p.set_result(Fickle {
        n: 7,
        fail: fail.clone(),
    })
    .unwrap();
    assert!(rx.recv().unwrap());

    // The panic escapes to the reader that called `result()`, as the
    // value's own error...
    let caught = catch_unwind(AssertUnwindSafe(|| f.result()));
    assert!(caught.is_err(), "the panicking Clone must reach its caller");

    // ...and everything else still works: state, repr, waits, callbacks,
    // reads by other handles, and the move of the value.
    fail.store(false, Ordering::SeqCst);
    assert!(f.done());
    assert_eq!(format!("{f:?}"), "<Future state=finished returned Fickle>");
    let split = wait(
        std::slice::from_ref(&other),
        Some(Duration::from_secs(60)),
        ReturnWhen::AllCompleted,
    );
    assert!(split.not_done.is_empty());
    let (tx, rx) = std::sync::mpsc::channel();
    other.add_done_callback(move |f| tx.send(f.result().unwrap().n).unwrap());
    assert_eq!(rx.recv().unwrap(), 7);
    assert_eq!(other.result_timeout(Duration::from_secs(60)).unwrap().n, 7);
    drop(other);
    assert_eq!(f.into_result().unwrap().n, 7);
}
