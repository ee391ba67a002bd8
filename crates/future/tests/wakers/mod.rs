//! Hand-made wakers for the tests that play a runtime: one that counts its
//! wake-ups, one that reports them on a channel, and one that panics (user
//! code on the completing thread). Shared by the tests of `future`,
//! `process-pool`, `executor` and `celery` (`#[path]` to this file).

// Each test file uses a part of this module; the rest is dead code there.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::Wake;

/// A waker that counts its wake-ups; its `Arc`'s strong count tells how
/// many copies of it are still stored somewhere.
#[derive(Default)]
pub struct CountingWaker {
    pub wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker that reports each wake-up on a channel.
pub struct SendingWaker(pub Mutex<mpsc::Sender<()>>);

impl Wake for SendingWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.0.lock().unwrap().send(());
    }
}

/// A waker whose `wake` panics: user code (a runtime's, or a hand-written
/// one) on the completing thread.
pub struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics");
    }
}
