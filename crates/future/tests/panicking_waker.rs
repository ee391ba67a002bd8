//! A panicking `Waker::wake`: the completer, the other
//! awaiting tasks and every done-callback survive it, and it is reported
//! through the callback-panic hook. Its own test binary, because the hook is
//! process-wide.

#![cfg(not(loom))]

#[path = "wakers/mod.rs"]
mod wakers;

use std::future::IntoFuture;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use future::promise;
use wakers::{CountingWaker, PanickingWaker};

fn poll_once<F: std::future::Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

#[test]
fn a_panicking_waker_wakes_the_others_runs_every_callback_and_stays_in_its_box() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    future::set_callback_panic_hook(move |p| r.lock().unwrap().push(p.clone()));

    let (promise, future) = promise::<u32>();
    // The panicking waker registers first, so it is woken first.
    let bad = Waker::from(Arc::new(PanickingWaker));
    let mut bad_await = (&future).into_future();
    assert!(poll_once(&mut bad_await, &bad).is_pending());
    let good = Arc::new(CountingWaker::default());
    let good_waker = Waker::from(good.clone());
    let mut good_await = (&future).into_future();
    assert!(poll_once(&mut good_await, &good_waker).is_pending());
    // Two listeners of the other kind: a `map` and a plain callback.
    let mapped = future.clone().map(|n| n + 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    future.add_done_callback(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });

    let completed = catch_unwind(AssertUnwindSafe(|| promise.set_result(41)));
    assert!(
        matches!(completed, Ok(Ok(()))),
        "the waker's panic escaped set_result into the completer"
    );
    assert_eq!(
        good.wakes.load(Ordering::SeqCst),
        1,
        "the waker after the panicking one was not woken"
    );
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the done-callback did not run"
    );
    assert_eq!(
        mapped.result_timeout(Duration::ZERO).unwrap(),
        42,
        "the map's callback did not run"
    );
    // Ready (the map moved the value out, so it reads `ValueTaken`).
    assert!(poll_once(&mut good_await, &good_waker).is_ready());
    future::reset_callback_panic_hook();

    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].message, "a waker panicked: this waker panics");
    assert_eq!(reports[0].future, "<Future state=finished returned u32>");
}
