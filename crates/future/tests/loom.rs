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

use std::future::{Future as _, IntoFuture};
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

// ---- The state word's flags: `WRITING` and `WAITING` (see `future.rs`) ----
//
// The outcome lives in a cell guarded by the word; loom's `UnsafeCell`
// fails a model on any access to it that the word's orderings do not
// separate from another (a write racing a read, two writes).

/// A value that counts its drops, to show that an outcome is dropped exactly
/// once whoever wins (the cell holds it, or the losing completer took it back).
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Two completers on one shared promise: the `WRITING` claim makes exactly
/// one the cell's writer; the other waits for the outcome to be published and
/// is refused in Python's words, and the winner's value is the one read.
#[test]
fn two_completers_race_for_the_cell() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let p = Arc::new(p);
        let other = {
            let p = p.clone();
            thread::spawn(move || p.set_result(2))
        };
        let mine = p.set_result(1);
        let theirs = other.join().unwrap();
        assert_ne!(mine.is_ok(), theirs.is_ok());
        let refused = mine.as_ref().err().or(theirs.as_ref().err()).unwrap();
        assert!(
            refused
                .to_string()
                .contains("FINISHED: <Future state=finished returned"),
            "{refused}"
        );
        let expected = if mine.is_ok() { 1 } else { 2 };
        assert_eq!(f.result().unwrap(), expected);
    });
}

/// A lock-free completion against a lock-free cancel (nobody registered):
/// exactly one wins, and a value whose completer lost is taken back out of
/// the cell and dropped once, never read.
#[test]
fn a_lock_free_completion_races_a_lock_free_cancel_and_the_value_is_dropped_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (p, f) = promise::<Counted>();
        let canceller = {
            let f = f.clone();
            thread::spawn(move || f.cancel())
        };
        let completed = p.set_result(Counted(drops.clone())).is_ok();
        let cancelled = canceller.join().unwrap();
        assert_ne!(completed, cancelled);
        if cancelled {
            assert_eq!(drops.load(Ordering::SeqCst), 1, "taken back and dropped");
            assert!(matches!(f.into_result(), Err(FutureError::Cancelled)));
        } else {
            assert_eq!(drops.load(Ordering::SeqCst), 0);
            drop(f.into_result().unwrap());
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        }
        drop(p);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// A promise dropped unused (it writes `Broken` without claiming `WRITING`)
/// against `cancel()`: one of them makes the future done, and every reader
/// agrees with what `cancel` returned.
#[test]
fn a_dropped_promise_races_cancel() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let canceller = {
            let f = f.clone();
            thread::spawn(move || f.cancel())
        };
        drop(p);
        let cancelled = canceller.join().unwrap();
        match f.result() {
            Err(FutureError::Cancelled) => assert!(cancelled),
            Err(FutureError::Task(TaskError::BrokenPromise)) => assert!(!cancelled),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// `cancel()` with a callback registered (`WAITING` set, so the cancel takes
/// the lock) against the executor starting the task: the callback runs once,
/// with the future done, whichever won; and only when cancel won does it see
/// a cancelled future before the completion.
#[test]
fn a_locked_cancel_races_the_start_and_serves_the_callback_once() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let calls = Arc::new(AtomicUsize::new(0));
        {
            let calls = calls.clone();
            f.add_done_callback(move |fut| {
                assert!(fut.done());
                calls.fetch_add(1, Ordering::SeqCst);
            });
        }
        let canceller = {
            let f = f.clone();
            thread::spawn(move || f.cancel())
        };
        let started = p.set_running_or_notify_cancel().unwrap();
        let cancelled = canceller.join().unwrap();
        assert_ne!(started, cancelled);
        if started {
            assert_eq!(calls.load(Ordering::SeqCst), 0);
            p.set_result(1).unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

/// Two handles reading one finished outcome at once, one cloning it
/// (`result`) and one moving it out (`into_result`, not the last handle):
/// both go through the lock, so loom's cell sees no overlapping access, and
/// the clone gets the value or `ValueTaken`, never a torn read.
#[test]
fn a_clone_and_a_move_of_the_value_never_overlap() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let g = f.clone();
        let completer = thread::spawn(move || p.set_result(3).unwrap());
        let mover = thread::spawn(move || g.into_result());
        let cloned = f.result();
        let moved = mover.join().unwrap();
        completer.join().unwrap();
        assert_eq!(moved.unwrap(), 3);
        match cloned {
            Ok(3) | Err(FutureError::ValueTaken) => {}
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// A lock-free completion against `wait` installing its waiter (`WAITING`
/// set under the lock): the waiter is posted exactly once, by whichever of
/// the two saw the other, and the error counts for FIRST_EXCEPTION.
#[test]
fn a_failing_completion_races_the_installation_of_a_waiter() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let completer =
            thread::spawn(move || p.set_error(TaskError::Panicked("boom".into())).unwrap());
        let split = wait([&f], None, ReturnWhen::FirstException);
        assert_eq!(split.done.len(), 1);
        completer.join().unwrap();
        assert!(matches!(f.exception(), Ok(Some(TaskError::Panicked(_)))));
    });
}

/// The handle count lives in the state word: a promise dropped unused
/// publishes `Broken` and lets go of its handle in one CAS, racing the
/// future's last handle going away and a clone being made and read. Whoever
/// is last frees the allocation (Miri checks the free; loom, that no access
/// to the cell or the word is left unordered), and the clone reads the broken
/// promise.
#[test]
fn a_promise_dropped_unused_races_the_other_handles() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let g = f.clone();
        let dropper = thread::spawn(move || drop(f));
        let reader = thread::spawn(move || g.into_result());
        drop(p);
        dropper.join().unwrap();
        assert!(matches!(
            reader.join().unwrap(),
            Err(FutureError::Task(TaskError::BrokenPromise))
        ));
    });
}

// ---- Awaiting: the waker protocol (see `awaiting.rs`) ----

/// A waker that does nothing (`Waker::noop` needs Rust 1.85; our MSRV is 1.80).
fn noop_waker() -> std::task::Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    std::task::Waker::from(std::sync::Arc::new(Noop))
}
//
// `loom::future::block_on` polls, then parks on loom's own notifier until the
// waker is called: a lost wake-up leaves it parked forever, which loom
// reports as a deadlock.

/// Completion against a task registering its waker: the task always wakes
/// to the value.
#[test]
fn an_await_is_woken_by_completion() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let completer = thread::spawn(move || p.set_result(5).unwrap());
        assert_eq!(loom::future::block_on(f.into_future()).unwrap(), 5);
        completer.join().unwrap();
    });
}

/// `cancel()` against a registering task: the await ends with `Cancelled`.
#[test]
fn an_await_is_woken_by_cancel() {
    loom::model(|| {
        let (_p, f) = promise::<u8>();
        let canceller = {
            let f = f.clone();
            thread::spawn(move || assert!(f.cancel()))
        };
        assert!(matches!(
            loom::future::block_on((&f).into_future()),
            Err(FutureError::Cancelled)
        ));
        canceller.join().unwrap();
    });
}

/// A task re-polled with a new waker (it moved to another worker) while the
/// future completes: the replacement never drops the wake-up on the floor.
#[test]
fn a_repoll_with_a_new_waker_races_with_completion() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let mut awaiting = f.clone().into_future();
        let first = noop_waker();
        let polled =
            std::pin::Pin::new(&mut awaiting).poll(&mut std::task::Context::from_waker(&first));
        assert!(polled.is_pending());
        let completer = thread::spawn(move || p.set_result(8).unwrap());
        // block_on polls with its own waker: a replacement racing completion.
        assert_eq!(loom::future::block_on(awaiting).unwrap(), 8);
        completer.join().unwrap();
        assert_eq!(f.registered_wakers(), 0);
    });
}

/// Dropping a registered await while the future completes: whichever goes
/// first, nothing stays registered and the outcome is intact.
#[test]
fn dropping_an_await_races_with_completion() {
    loom::model(|| {
        let (p, f) = promise::<u8>();
        let mut awaiting = (&f).into_future();
        let polled = std::pin::Pin::new(&mut awaiting)
            .poll(&mut std::task::Context::from_waker(&noop_waker()));
        assert!(polled.is_pending());
        let completer = thread::spawn(move || p.set_result(2).unwrap());
        drop(awaiting);
        completer.join().unwrap();
        assert_eq!(f.registered_wakers(), 0);
        assert_eq!(f.result().unwrap(), 2);
    });
}

/// `as_completed_stream` against two completions on another thread: the
/// task parks between items and is always woken for the next one.
#[test]
fn the_stream_is_woken_for_every_completion() {
    loom::model(|| {
        let (p1, f1) = promise::<u8>();
        let (p2, f2) = promise::<u8>();
        let mut stream = future::as_completed_stream([&f1, &f2]);
        let completer = thread::spawn(move || {
            p2.set_result(2).unwrap();
            p1.set_result(1).unwrap();
        });
        let seen = loom::future::block_on(async {
            let mut seen = Vec::new();
            while let Some(f) = std::future::poll_fn(|cx| {
                futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
            })
            .await
            {
                seen.push(f.result().unwrap());
            }
            seen
        });
        assert_eq!(seen, [2, 1]);
        completer.join().unwrap();
    });
}
