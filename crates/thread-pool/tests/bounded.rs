//! A bounded queue: back-pressure on `submit`, the task handed back by
//! `try_submit`, and blocked submitters released by shutdown.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use common::{Event, LONG};
use thread_pool::{BuildError, SubmitError, ThreadPoolExecutor, TrySubmitError};

fn bounded(capacity: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(1)
        .queue_capacity(capacity)
        .build()
        .unwrap()
}

/// Occupies the single worker until the returned gate is set.
fn block_worker(pool: &ThreadPoolExecutor) -> Event {
    let gate = Event::new();
    let g = gate.clone();
    pool.submit(move || {
        g.wait();
    })
    .unwrap();
    assert!(common::eventually(|| pool.stats().running == 1));
    gate
}

#[test]
fn zero_capacity_is_refused() {
    let e = ThreadPoolExecutor::builder()
        .queue_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(e, BuildError::ZeroCapacity);
}

#[test]
fn try_submit_hands_the_task_back_when_full() {
    let pool = bounded(2);
    let gate = block_worker(&pool);
    let a = pool.try_submit(|| 1).unwrap();
    let b = pool.try_submit(|| 2).unwrap();
    assert_eq!(pool.stats().queued, 2);
    let refused = pool.try_submit(|| 3).unwrap_err();
    assert!(refused.is_full());
    assert!(refused.to_string().contains("queue is full"));
    // The closure we got back is ours, unrun.
    assert_eq!(refused.into_inner()(), 3);
    gate.set();
    assert_eq!(a.result_timeout(LONG).unwrap(), 1);
    assert_eq!(b.result_timeout(LONG).unwrap(), 2);
    // Room again.
    assert_eq!(
        pool.try_submit(|| 4).unwrap().result_timeout(LONG).unwrap(),
        4
    );
}

#[test]
fn submit_waits_for_room() {
    let pool = Arc::new(bounded(1));
    let gate = block_worker(&pool);
    pool.submit(|| ()).unwrap(); // fills the single slot
    let returned = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let submitter = {
        let (pool, returned) = (pool.clone(), returned.clone());
        std::thread::Builder::new()
            .name("tpbpwaiter".into())
            .spawn(move || {
                tx.send(()).unwrap();
                let f = pool.submit(|| 7).unwrap();
                returned.store(true, Ordering::SeqCst);
                f.result_timeout(LONG).unwrap()
            })
            .unwrap()
    };
    rx.recv().unwrap();
    // While the worker is blocked the queue stays full: the submitter cannot
    // return. Once it sleeps (its /proc state), it is blocked in submit (if
    // back-pressure were broken it would have returned, and the queue would
    // hold 2).
    assert!(common::eventually(|| {
        common::os_thread_states("tpbpwaiter") == [("tpbpwaiter".to_string(), 'S')]
    }));
    assert!(!returned.load(Ordering::SeqCst));
    assert!(pool.stats().queued <= 1);
    gate.set();
    assert_eq!(submitter.join().unwrap(), 7);
    assert!(returned.load(Ordering::SeqCst));
}

#[test]
fn queue_never_exceeds_capacity_under_many_submitters() {
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(2)
            .queue_capacity(4)
            .build()
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (pool, stop) = (pool.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut max = 0;
            while !stop.load(Ordering::SeqCst) {
                max = max.max(pool.stats().queued);
                std::thread::yield_now();
            }
            max
        })
    };
    let submitters: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let futures: Vec<_> = (0..500)
                    .map(|i| pool.submit(move || t * 1000 + i).unwrap())
                    .collect();
                futures
                    .into_iter()
                    .map(|f| f.result_timeout(LONG).unwrap())
                    .sum::<usize>()
            })
        })
        .collect();
    let total: usize = submitters.into_iter().map(|s| s.join().unwrap()).sum();
    stop.store(true, Ordering::SeqCst);
    let max = watcher.join().unwrap();
    assert_eq!(
        total,
        (0..4)
            .map(|t| (0..500).map(|i| t * 1000 + i).sum::<usize>())
            .sum()
    );
    assert!(max <= 4, "queue reached {max}");
}

#[test]
fn shutdown_releases_blocked_submitters() {
    let pool = Arc::new(bounded(1));
    let gate = block_worker(&pool);
    pool.submit(|| ()).unwrap();
    let (tx, rx) = mpsc::channel();
    let submitter = {
        let pool = pool.clone();
        std::thread::Builder::new()
            .name("tpbpblocked".into())
            .spawn(move || {
                tx.send(()).unwrap();
                pool.submit(|| ()).map(drop)
            })
            .unwrap()
    };
    rx.recv().unwrap();
    // The submitter is blocked waiting for room (its /proc state).
    assert!(common::eventually(|| {
        common::os_thread_states("tpbpblocked") == [("tpbpblocked".to_string(), 'S')]
    }));
    // Cancelling the queued task frees the slot; the blocked submitter then
    // sees the shutdown.
    pool.shutdown(false, true);
    assert_eq!(submitter.join().unwrap(), Err(SubmitError::Shutdown));
    gate.set();
    pool.shutdown(true, false);
    match pool.try_submit(|| ()) {
        Err(TrySubmitError::Shutdown(_)) => {}
        other => panic!("{:?}", other.map(drop)),
    }
}
