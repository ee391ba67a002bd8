//! Stress for the state word (`docs/future.md`, "The state word, the cell
//! and the lock"): every transition that may race, raced on real threads,
//! with the one allocation freed by whichever handle goes last.
//!
//! Each round races a completion, a `cancel`, a callback registered at the
//! instant of completion, a reader that moves the value out, and handles
//! cloned and dropped, then checks what the protocol promises: exactly one
//! of completion and cancel wins, the callback runs exactly once, the reader
//! sees the winner's outcome, and every value made (by the completer or by a
//! `Clone` for a reader) is dropped exactly once, the loser's included.
//!
//! Under Miri (`cargo +nightly miri test -p future --test state_word_stress`)
//! the rounds are few, and the point is its race and use-after-free
//! detector on the cell and the handles' count; natively the rounds are many.
//! All blocking reads are bounded by a 60 s hang guard.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use future::{promise, FutureError, TaskError};

const ROUNDS: usize = if cfg!(miri) { 8 } else { 2000 };
const LONG: Duration = Duration::from_secs(60);

/// How many values were made and dropped.
#[derive(Default)]
struct Ledger {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

/// A value that counts its making and its drop in a ledger.
struct Tracked {
    n: usize,
    ledger: Arc<Ledger>,
}

impl Tracked {
    fn new(n: usize, ledger: &Arc<Ledger>) -> Self {
        ledger.made.fetch_add(1, Ordering::SeqCst);
        Tracked {
            n,
            ledger: ledger.clone(),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(self.n, &self.ledger)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn completion_cancel_registration_and_reads_race_and_every_value_drops_once() {
    let ledger = Arc::new(Ledger::default());
    let (mut completions, mut cancels) = (0, 0);
    for round in 0..ROUNDS {
        let (p, f) = promise::<Tracked>();
        let callbacks = Arc::new(AtomicUsize::new(0));
        let (completed, cancelled, read, cloned) = thread::scope(|s| {
            let completer = {
                let ledger = ledger.clone();
                s.spawn(move || {
                    let ok = p.set_result(Tracked::new(round, &ledger)).is_ok();
                    drop(p);
                    ok
                })
            };
            let canceller = {
                let f = f.clone();
                s.spawn(move || f.cancel())
            };
            let registrant = {
                let (f, callbacks) = (f.clone(), callbacks.clone());
                s.spawn(move || {
                    f.add_done_callback(move |_| {
                        callbacks.fetch_add(1, Ordering::SeqCst);
                    });
                    // The last handle but one, or the last: either path of
                    // `into_result` (locked, or lock-free when unique).
                    f.wait(Some(LONG));
                    f.into_result()
                })
            };
            let cloner = {
                let f = f.clone();
                s.spawn(move || {
                    let clones: Vec<_> = (0..4).map(|_| f.clone()).collect();
                    let read = f.result_timeout(LONG);
                    drop(clones);
                    read
                })
            };
            (
                completer.join().unwrap(),
                canceller.join().unwrap(),
                registrant.join().unwrap(),
                cloner.join().unwrap(),
            )
        });
        assert_ne!(
            completed, cancelled,
            "round {round}: completion and cancel must have exactly one winner"
        );
        assert_eq!(
            callbacks.load(Ordering::SeqCst),
            1,
            "round {round}: the callback must run exactly once"
        );
        if completed {
            completions += 1;
            // The value was moved out by one reader or the other: whoever
            // came first got it, the other read ValueTaken.
            let got: Vec<usize> = [read.as_ref().ok(), cloned.as_ref().ok()]
                .into_iter()
                .flatten()
                .map(|t| t.n)
                .collect();
            assert!(
                got.iter().all(|n| *n == round) && !got.is_empty(),
                "round {round}: the readers got {got:?}, {:?} and {:?}",
                read.as_ref().err(),
                cloned.as_ref().err()
            );
        } else {
            cancels += 1;
            assert!(
                matches!(read, Err(FutureError::Cancelled))
                    && matches!(cloned, Err(FutureError::Cancelled)),
                "round {round}: a cancelled future reads as Cancelled"
            );
        }
        drop((read, cloned));
        drop(f);
        assert_eq!(
            ledger.made.load(Ordering::SeqCst),
            ledger.dropped.load(Ordering::SeqCst),
            "round {round}: every value made is dropped exactly once"
        );
    }
    // Not an assertion on the schedule (both sides may win every round on a
    // loaded machine); said so that a run shows which paths it exercised.
    println!("{completions} completions won, {cancels} cancels won");
}

#[test]
fn a_promise_dropped_unused_races_readers_registrations_and_the_last_handle() {
    for round in 0..ROUNDS {
        let (p, f) = promise::<Tracked>();
        let callbacks = Arc::new(AtomicUsize::new(0));
        thread::scope(|s| {
            // The promise's one CAS publishes and lets go of its handle...
            s.spawn(move || drop(p));
            // ...while a reader blocks (or finds it done), a callback is
            // registered, and the other handles go, in any order: whichever
            // is last frees the allocation.
            let reader = f.clone();
            s.spawn(move || {
                let read = reader.result_timeout(LONG);
                assert!(
                    matches!(read, Err(FutureError::Task(TaskError::BrokenPromise))),
                    "round {round}: a dropped promise reads as BrokenPromise, not {:?}",
                    read.err()
                );
            });
            let registrant = f.clone();
            let counter = callbacks.clone();
            s.spawn(move || {
                registrant.add_done_callback(move |f| {
                    assert!(f.done());
                    counter.fetch_add(1, Ordering::SeqCst);
                })
            });
            s.spawn(move || drop(f));
        });
        assert_eq!(
            callbacks.load(Ordering::SeqCst),
            1,
            "round {round}: the callback must run exactly once"
        );
    }
}
