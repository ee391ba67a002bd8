//! Stress: thousands of futures completed by several threads while other
//! threads cancel them, `wait` on overlapping sets and run `as_completed`.
//! Every future must end in exactly one final state, every waiter must see
//! every future, nothing may hang (all waits are bounded), and each future's
//! callback must run exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use future::{as_completed, promise, wait, Future, FutureError, Promise, ReturnWhen, State};

const FUTURES: usize = 4000;
const COMPLETERS: usize = 4;
const LONG: Duration = Duration::from_secs(60);

#[test]
fn many_threads_complete_cancel_and_wait_at_once() {
    let mut promises: Vec<Option<Promise<usize>>> = Vec::new();
    let mut futures: Vec<Future<usize>> = Vec::new();
    let callbacks = Arc::new(AtomicUsize::new(0));
    for _ in 0..FUTURES {
        let (p, f) = promise();
        let c = callbacks.clone();
        f.add_done_callback(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        promises.push(Some(p));
        futures.push(f);
    }
    let futures = Arc::new(futures);
    let start = Arc::new(Barrier::new(COMPLETERS + 4));

    // Completers: each owns an interleaved share of the promises.
    let mut shares: Vec<Vec<(usize, Promise<usize>)>> =
        (0..COMPLETERS).map(|_| Vec::new()).collect();
    for (i, p) in promises.iter_mut().enumerate() {
        shares[i % COMPLETERS].push((i, p.take().unwrap()));
    }
    let completers: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                let mut finished = 0;
                for (i, p) in share {
                    if p.set_running_or_notify_cancel() == Ok(true) {
                        p.set_result(i).unwrap();
                        finished += 1;
                    }
                }
                finished
            })
        })
        .collect();

    // A canceller racing the completers over every third future.
    let canceller = {
        let (futures, start) = (futures.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            futures.iter().step_by(3).filter(|f| f.cancel()).count()
        })
    };

    // Two waiters over overlapping halves (they share the middle third).
    let waiters: Vec<_> = [(0, FUTURES * 2 / 3), (FUTURES / 3, FUTURES)]
        .into_iter()
        .map(|(from, to)| {
            let (futures, start) = (futures.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let split = wait(&futures[from..to], Some(LONG), ReturnWhen::AllCompleted);
                assert!(
                    split.not_done.is_empty(),
                    "wait timed out with futures pending"
                );
                split.done.len()
            })
        })
        .collect();

    // as_completed over everything.
    let collector = {
        let (futures, start) = (futures.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            let mut seen = vec![false; FUTURES];
            for f in as_completed(futures.iter(), Some(LONG)) {
                let f = f.expect("as_completed timed out");
                match f.result() {
                    Ok(i) => {
                        assert!(!seen[i], "future {i} yielded twice");
                        seen[i] = true;
                    }
                    Err(FutureError::Cancelled) => {}
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            seen.iter().filter(|s| **s).count()
        })
    };

    let finished: usize = completers.into_iter().map(|t| t.join().unwrap()).sum();
    let cancelled = canceller.join().unwrap();
    assert_eq!(
        finished + cancelled,
        FUTURES,
        "a future ended in neither or both states"
    );
    for w in waiters {
        let n = w.join().unwrap();
        assert!(n == FUTURES * 2 / 3 || n == FUTURES - FUTURES / 3);
    }
    assert_eq!(collector.join().unwrap(), finished);
    assert!(futures
        .iter()
        .all(|f| matches!(f.state(), State::Finished | State::Cancelled)));
    assert_eq!(
        callbacks.load(Ordering::SeqCst),
        FUTURES,
        "a callback ran twice or never"
    );
}

#[test]
fn many_readers_block_on_one_future() {
    for _ in 0..50 {
        let (p, f) = promise::<u64>();
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let f = f.clone();
                thread::spawn(move || f.result_timeout(LONG))
            })
            .collect();
        p.set_result(99).unwrap();
        for r in readers {
            assert_eq!(r.join().unwrap().unwrap(), 99);
        }
    }
}
