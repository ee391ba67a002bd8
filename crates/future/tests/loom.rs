//! Loom models of the future's state machine and of the waiter protocol.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p future --test loom --release`
//! (`.ci/run` does). Loom runs each closure under every interleaving of the
//! threads' lock operations (up to its preemption bound) and fails on a
//! deadlock, which is how a lost wake-up shows up: a reader left blocked on a
//! condition variable that nobody will signal again.
//!
//! Loom's `Condvar::wait_timeout` does not time out (it waits like `wait`),
//! so a timed wait with a long timeout is modelled exactly as a blocking
//! wait: the model proves the wake-up arrives; a zero timeout takes the
//! "deadline already passed" path, which never touches the condvar.

#![cfg(loom)]

use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use future::{promise, wait, FutureError, ReturnWhen, State, TaskError};

#[test]
fn cancel_races_with_the_executor_starting_the_task() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let canceller = {
            let f = f.clone();
            thread::spawn(move || f.cancel())
        };
        let started = p.set_running_or_notify_cancel().unwrap();
        let cancelled = canceller.join().unwrap();
        // Exactly one side wins.
        assert_ne!(started, cancelled);
        if started {
            assert_eq!(f.state(), State::Running);
            p.set_result(1).unwrap();
            assert_eq!(f.result().unwrap(), 1);
        } else {
            assert_eq!(f.state(), State::Cancelled);
            assert!(p.set_result(1).is_err());
        }
    });
}

/// The executor's whole path (lock-free start, locked completion) against a
/// canceller and a blocked reader: exactly one of start and cancel wins, the
/// loser's view agrees, and the reader always wakes to the final outcome.
#[test]
fn cancel_races_with_start_and_completion_and_a_blocked_reader() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let canceller = {
            let f = f.clone();
            thread::spawn(move || f.cancel())
        };
        let reader = {
            let f = f.clone();
            thread::spawn(move || f.result())
        };
        let started = p.set_running_or_notify_cancel().unwrap();
        if started {
            p.set_result(9).unwrap();
        } else {
            // A second acknowledgement is an error, as in Python.
            assert!(p.set_running_or_notify_cancel().is_err());
        }
        let cancelled = canceller.join().unwrap();
        assert_ne!(started, cancelled);
        match reader.join().unwrap() {
            Ok(9) => assert!(started),
            Err(FutureError::Cancelled) => assert!(cancelled),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// Completing a future that was never started (allowed, as in Python) while
/// another thread tries to start it: the CAS from Pending decides. Either the
/// start wins (then the completion finishes from Running) or the completion
/// does (then the start is refused); the value is never lost.
#[test]
fn completion_from_pending_races_with_start() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let p = Arc::new(p);
        let starter = {
            let p = p.clone();
            thread::spawn(move || p.set_running_or_notify_cancel())
        };
        p.set_result(4).unwrap();
        match starter.join().unwrap() {
            Ok(true) | Err(_) => {}
            Ok(false) => panic!("nobody cancelled"),
        }
        assert_eq!(f.state(), State::Finished);
        assert_eq!(f.result().unwrap(), 4);
    });
}

#[test]
fn cancel_races_with_completion() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let canceller = {
            let f = f.clone();
            thread::spawn(move || f.cancel())
        };
        let completed = p.set_result(7).is_ok();
        let cancelled = canceller.join().unwrap();
        assert_ne!(completed, cancelled);
        match f.result() {
            Ok(v) => assert!(completed && v == 7),
            Err(FutureError::Cancelled) => assert!(cancelled),
            Err(e) => panic!("unexpected {e}"),
        }
    });
}

#[test]
fn completion_races_with_add_done_callback() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let calls = Arc::new(AtomicUsize::new(0));
        let adder = {
            let f = f.clone();
            let calls = calls.clone();
            thread::spawn(move || {
                f.add_done_callback(move |fut| {
                    assert!(fut.done());
                    calls.fetch_add(1, Ordering::SeqCst);
                })
            })
        };
        p.set_result(1).unwrap();
        adder.join().unwrap();
        // Whichever came first, the callback ran exactly once.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn completion_races_with_a_blocked_timed_reader() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let reader = {
            let f = f.clone();
            thread::spawn(move || f.result_timeout(Duration::from_secs(3600)))
        };
        p.set_result(3).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 3);
    });
}

#[test]
fn a_zero_timeout_read_sees_either_state_and_never_blocks() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let reader = {
            let f = f.clone();
            thread::spawn(move || f.result_timeout(Duration::ZERO))
        };
        p.set_result(3).unwrap();
        match reader.join().unwrap() {
            Ok(3) | Err(FutureError::Timeout(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    });
}

#[test]
fn a_dropped_promise_wakes_a_blocked_reader() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let reader = thread::spawn(move || f.result());
        drop(p);
        assert!(matches!(
            reader.join().unwrap(),
            Err(FutureError::Task(TaskError::BrokenPromise))
        ));
    });
}

#[test]
fn wait_never_misses_a_completion_during_installation() {
    loom::model(|| {
        let (p1, f1) = promise::<u8>();
        let (p2, f2) = promise::<u8>();
        let completer = thread::spawn(move || {
            p1.set_result(1).unwrap();
            p2.set_result(2).unwrap();
        });
        let split = wait([&f1, &f2], None, ReturnWhen::AllCompleted);
        assert_eq!(split.done.len(), 2);
        assert!(split.not_done.is_empty());
        completer.join().unwrap();
    });
}

#[test]
fn cancel_wakes_as_completed() {
    loom::model(|| {
        let (_p, f) = promise::<u8>();
        let canceller = {
            let f = f.clone();
            thread::spawn(move || assert!(f.cancel()))
        };
        let mut it = future::as_completed([&f], None);
        assert!(it.next().unwrap().unwrap().cancelled());
        canceller.join().unwrap();
    });
}

/// `into_result`'s lock-free path (last handle of a done future) racing with
/// the promise being completed and dropped: whichever way `try_unwrap` goes,
/// the value comes out once.
#[test]
fn into_result_races_with_the_promise_being_dropped() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let completer = thread::spawn(move || {
            p.set_result(6).unwrap();
            drop(p);
        });
        assert_eq!(f.into_result().unwrap(), 6);
        completer.join().unwrap();
    });
}
