//! User code that runs on the dispatcher thread while it completes a future:
//! a panicking `Waker::wake` and the panicking `Drop` of a result nobody
//! holds. Neither may kill the dispatcher, the only thread
//! that delivers results: later tasks still run and `drop(pool)` returns.

mod common;
#[path = "../../future/tests/wakers/mod.rs"]
mod wakers;

use std::future::{Future as _, IntoFuture};
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use process_pool::ProcessPoolExecutor;
use serde::{Deserialize, Serialize};
use wakers::{PanickingWaker, SendingWaker};

/// Hang guard: a dead dispatcher fails the test instead of hanging it.
const LONG: Duration = Duration::from_secs(120);

fn square(x: u64) -> u64 {
    x * x
}

/// Waits (in the worker) until `path` exists, so the test decides when the
/// task ends; gives up after `LONG` as a hang guard.
fn held_until_file_exists(path: String) -> u64 {
    let deadline = std::time::Instant::now() + LONG;
    while !std::path::Path::new(&path).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    1
}

fn gate_path(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("ppcontain-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

fn open_gate(path: &str) {
    std::fs::write(path, b"go").unwrap();
}

/// Drops the pool on another thread and fails if that does not return.
/// The pool is a `ManuallyDrop` so that a failed assertion before this
/// leaks it on unwind instead of hanging in its drop.
fn drop_returns(pool: ManuallyDrop<ProcessPoolExecutor>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(ManuallyDrop::into_inner(pool));
        tx.send(()).unwrap();
    });
    rx.recv_timeout(LONG)
        .expect("drop(pool) did not return: the dispatcher is gone");
}

/// Later tasks still run: the dispatcher is alive.
fn still_runs_tasks(pool: &ProcessPoolExecutor) {
    for x in 0..5u64 {
        let f = pool.submit(square, x).unwrap();
        assert_eq!(
            f.result_timeout(LONG).expect("a later task never ran"),
            x * x
        );
    }
}

#[test]
fn a_panicking_waker_does_not_kill_the_dispatcher_or_the_other_wakers() {
    let c = common::clean();
    let pool = ManuallyDrop::new(ProcessPoolExecutor::new(1).unwrap());
    let gate = gate_path("waker");
    let held = pool.submit(held_until_file_exists, gate.clone()).unwrap();
    let bad = Waker::from(Arc::new(PanickingWaker));
    let mut bad_await = (&held).into_future();
    assert!(Pin::new(&mut bad_await)
        .poll(&mut Context::from_waker(&bad))
        .is_pending());
    let (tx, woken) = mpsc::channel();
    let good = Waker::from(Arc::new(SendingWaker(Mutex::new(tx))));
    let mut good_await = (&held).into_future();
    assert!(Pin::new(&mut good_await)
        .poll(&mut Context::from_waker(&good))
        .is_pending());

    open_gate(&gate);
    assert_eq!(held.result_timeout(LONG).unwrap(), 1);
    woken
        .recv_timeout(LONG)
        .expect("the waker after the panicking one was never woken");
    still_runs_tasks(&pool);
    drop_returns(pool);
    let _ = std::fs::remove_file(&gate);
    c.check();
}

/// A result whose `Drop` panics.
#[derive(Serialize, Deserialize)]
struct PanicsOnDrop(u64);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        // Only in the parent: the worker drops its copy after encoding it.
        if !common::in_worker() {
            panic!("this result panics when dropped");
        }
    }
}

fn held_then_panics_on_drop(path: String) -> PanicsOnDrop {
    PanicsOnDrop(held_until_file_exists(path))
}

#[test]
fn a_result_whose_drop_panics_does_not_kill_the_dispatcher() {
    let c = common::clean();
    // One worker: the later tasks' results come after the dropped one.
    let pool = ManuallyDrop::new(ProcessPoolExecutor::new(1).unwrap());
    let gate = gate_path("drop");
    let unheld = pool.submit(held_then_panics_on_drop, gate.clone()).unwrap();
    // Nobody holds the future when the result comes: the dispatcher drops
    // the value with the promise.
    drop(unheld);
    open_gate(&gate);
    still_runs_tasks(&pool);
    drop_returns(pool);
    let _ = std::fs::remove_file(&gate);
    c.check();
}
