//! User code that used to run on the Celery executor's only listener thread:
//! a panicking waker, a result whose `Drop` or
//! `Deserialize` panics, and done-callbacks that submit to the same
//! executor and wait, or drop its last handle. None of them may kill or
//! block the listener: later results still arrive, and dropping the
//! executor returns.
//!
//! Each test submits before any worker runs, so the futures are pending
//! while the test sets up its listeners; then it starts the worker.

mod common;
#[path = "../../future/tests/wakers/mod.rs"]
mod wakers;

use std::future::{Future as _, IntoFuture};
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

use celery::{tasks, CeleryExecutor};
use common::*;
use serde::{Deserialize, Deserializer};
use wakers::{PanickingWaker, SendingWaker};

fn executor(redis: &RedisServer) -> CeleryExecutor {
    CeleryExecutor::builder(&redis.url(0))
        .registry(tasks::builtin())
        .connect()
        .expect("connect")
}

/// One task at a time, so results come back in submission order.
fn worker(redis: &RedisServer) -> ThreadWorker {
    ThreadWorker::start(&redis.url(0), &["celery"], 1)
}

/// Later tasks still get their results: the listener is alive.
fn still_delivers(ex: &CeleryExecutor) {
    for i in 0..3i64 {
        let f = ex.submit_fallible(tasks::add, (i, 1)).unwrap();
        assert_eq!(
            f.result_timeout(LONG)
                .expect("a later result never came: the listener is gone"),
            i + 1
        );
    }
}

/// Drops the executor on another thread and fails if that does not return.
fn drop_returns(ex: ManuallyDrop<CeleryExecutor>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(ManuallyDrop::into_inner(ex));
        tx.send(()).unwrap();
    });
    rx.recv_timeout(LONG)
        .expect("dropping the executor did not return");
}

#[test]
fn a_panicking_waker_does_not_kill_the_listener_or_the_other_wakers() {
    let redis = RedisServer::start();
    // Leaked, not dropped, if an assertion fails first (a drop could hang).
    let ex = ManuallyDrop::new(executor(&redis));
    let f = ex.submit_fallible(tasks::add, (2, 3)).unwrap();
    let bad = Waker::from(Arc::new(PanickingWaker));
    let mut bad_await = (&f).into_future();
    assert!(Pin::new(&mut bad_await)
        .poll(&mut Context::from_waker(&bad))
        .is_pending());
    let (tx, woken) = mpsc::channel();
    let good = Waker::from(Arc::new(SendingWaker(Mutex::new(tx))));
    let mut good_await = (&f).into_future();
    assert!(Pin::new(&mut good_await)
        .poll(&mut Context::from_waker(&good))
        .is_pending());
    let _w = worker(&redis);
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
    woken
        .recv_timeout(LONG)
        .expect("the waker after the panicking one was never woken");
    still_delivers(&ex);
    drop_returns(ex);
}

/// A result whose `Drop` panics (in this process: the worker never builds one).
struct PanicsOnDrop(#[allow(dead_code)] i64);

impl<'de> Deserialize<'de> for PanicsOnDrop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(PanicsOnDrop)
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("this result panics when dropped");
    }
}

/// A result whose `Deserialize` panics.
#[derive(Clone, Debug)]
struct PanicsOnDeserialize;

impl<'de> Deserialize<'de> for PanicsOnDeserialize {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("this result panics when read");
    }
}

#[test]
fn a_result_whose_drop_or_deserialize_panics_does_not_kill_the_listener() {
    let redis = RedisServer::start();
    let ex = ManuallyDrop::new(executor(&redis));
    // Nobody holds this future when its result comes: the value is dropped
    // where the promise is, on the listener.
    let unheld = ex
        .submit_named::<_, PanicsOnDrop>("rust.add", (1, 2))
        .unwrap();
    drop(unheld);
    let unreadable = ex
        .submit_named::<_, PanicsOnDeserialize>("rust.add", (1, 2))
        .unwrap();
    let _w = worker(&redis);
    let err = unreadable
        .result_timeout(LONG)
        .expect_err("a result that cannot be read");
    assert!(
        err.to_string().contains("this result panics when read"),
        "the Deserialize panic's message is lost: {err}"
    );
    still_delivers(&ex);
    drop_returns(ex);
}

#[test]
fn a_callback_may_submit_to_its_own_executor_and_wait() {
    let redis = RedisServer::start();
    let ex = Arc::new(ManuallyDrop::new(executor(&redis)));
    let first = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    let (tx, rx) = mpsc::channel();
    let e = Arc::clone(&ex);
    first.add_done_callback(move |f| {
        let x = f.result().unwrap();
        let second = e
            .submit_fallible(tasks::add, (x, 10))
            .unwrap()
            .result_timeout(LONG);
        // Let go of the handle before saying so: the closure itself is
        // dropped only after it returns, which a loaded machine may delay
        // past the test's `try_unwrap` below.
        drop(e);
        tx.send(second).unwrap();
    });
    let _w = worker(&redis);
    let second = rx.recv_timeout(2 * LONG).expect("the callback never ended");
    assert_eq!(
        second.expect("the callback's own submit never got its result (deadlock)"),
        12
    );
    still_delivers(&ex);
    let ex = Arc::try_unwrap(ex)
        .ok()
        .expect("the callback dropped its handle");
    drop_returns(ex);
}

#[test]
fn a_callback_may_drop_the_last_handle() {
    let redis = RedisServer::start();
    let ex = executor(&redis);
    let first = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    let (tx, rx) = mpsc::channel();
    first.add_done_callback(move |_| {
        drop(ex);
        tx.send(()).unwrap();
    });
    let _w = worker(&redis);
    rx.recv_timeout(LONG)
        .expect("dropping the executor in its own callback panicked or hung");
    assert_eq!(first.result_timeout(LONG).unwrap(), 2);
}
