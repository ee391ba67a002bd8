//! The future rung (steps s01-s03): each test checks a claim its step makes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::within_60s;
use learn::s01_future_mutex_condvar as s01;
use learn::s02_future_callbacks_wait as s02;
use learn::s03_future_state_word as s03;

#[test]
fn s01_the_condvar_one_shot_wakes_every_waiter() {
    let (promise, future) = s01::promise::<u64>();
    let ready = Arc::new(Barrier::new(4));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (future, ready) = (future.clone(), ready.clone());
            thread::spawn(move || {
                ready.wait();
                future.wait()
            })
        })
        .collect();
    ready.wait();
    assert_eq!(future.try_get(), None);
    promise.set(42);
    let seen = within_60s("three waiters", move || {
        waiters.into_iter().map(|w| w.join().unwrap_or(0)).collect::<Vec<_>>()
    });
    assert_eq!(seen, [42, 42, 42]);
    assert_eq!(future.wait(), 42, "a late reader gets the value at once");
}

#[test]
fn s02_cancel_before_start_skips_the_task_and_start_before_cancel_wins() {
    let cancelled = s02::Future::<u64>::pending();
    assert!(cancelled.cancel());
    assert!(cancelled.cancel(), "cancelling again still says cancelled");
    assert!(!cancelled.set_running_or_notify_cancel());
    assert!(!cancelled.set_result(1));
    assert_eq!(cancelled.state(), s02::State::Cancelled);

    let running = s02::Future::<u64>::pending();
    assert!(running.set_running_or_notify_cancel());
    assert!(!running.cancel(), "a running task cannot be cancelled");
    assert!(running.set_result(7));
    assert!(!running.set_result(8), "completed once");
    assert_eq!((running.state(), running.result()), (s02::State::Finished, Some(7)));
}

#[test]
fn s02_callbacks_run_once_unlocked_and_may_read_the_future() {
    let future = s02::Future::<u64>::pending();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    // Reading the future inside the callback takes its lock: this would
    // deadlock if callbacks ran under it.
    future.add_done_callback(move |f| {
        assert_eq!(f.result(), Some(5));
        counted.fetch_add(1, SeqCst);
    });
    let completer = future.clone();
    within_60s("a callback that reads its future", move || completer.set_result(5));
    assert_eq!(calls.load(SeqCst), 1);
    let late = calls.clone();
    future.add_done_callback(move |_| {
        late.fetch_add(1, SeqCst);
    });
    assert_eq!(calls.load(SeqCst), 2, "added after done: runs at once");
}

#[test]
fn s02_wait_wakes_when_another_thread_completes() {
    let future = s02::Future::<u64>::pending();
    assert!(!future.wait(Duration::ZERO), "pending: not done");
    let completer = future.clone();
    let waiter = thread::spawn(move || future.wait(Duration::from_secs(60)));
    completer.set_result(3);
    assert!(within_60s("wait", move || waiter.join().unwrap_or(false)));
}

#[test]
fn s03_a_lock_free_start_racing_a_cancel_has_exactly_one_winner() {
    for _ in 0..2_000 {
        let future = Arc::new(s03::Future::<u64>::pending());
        let start = Arc::new(Barrier::new(2));
        let executor = {
            let (future, start) = (future.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                future.set_running_or_notify_cancel()
            })
        };
        start.wait();
        let cancelled = future.cancel();
        let started = executor.join().unwrap_or(false);
        assert!(cancelled != started, "cancelled {cancelled}, started {started}");
        assert_eq!(future.done(), cancelled);
        if started {
            assert!(future.set_result(9));
            assert_eq!(future.result(), Some(9));
        } else {
            assert!(!future.set_result(9), "a cancelled future stays cancelled");
            assert_eq!(future.result(), None);
        }
    }
}

#[test]
fn s03_done_is_read_without_the_lock_and_result_wakes() {
    let future = Arc::new(s03::Future::<u64>::pending());
    assert!(!future.done());
    let reader = {
        let future = future.clone();
        thread::spawn(move || future.result())
    };
    assert!(future.set_result(11), "from Pending straight to Finished, as in Python");
    assert!(future.done());
    assert_eq!(within_60s("result", move || reader.join().ok().flatten()), Some(11));
}
