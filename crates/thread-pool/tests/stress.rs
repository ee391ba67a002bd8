//! Many submitters and cancellers at once, bounded in time: every future
//! ends exactly once, either cancelled or with its own value, and the
//! counters add up.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::LONG;
use thread_pool::{Future, FutureError, ThreadPoolExecutor};

#[test]
fn submitters_and_cancellers() {
    const SUBMITTERS: u64 = 4;
    const PER_SUBMITTER: u64 = 3_000;
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(3)
            .thread_name_prefix("tpstress")
            .build()
            .unwrap(),
    );
    let shared: Arc<Mutex<Vec<Future<u64>>>> = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let cancellers: Vec<_> = (0..2)
        .map(|k| {
            let (shared, done) = (shared.clone(), done.clone());
            std::thread::spawn(move || {
                let mut cancelled = 0u64;
                let mut i = k;
                while !done.load(Ordering::SeqCst) {
                    let f = {
                        let v = shared.lock().unwrap();
                        if v.is_empty() {
                            None
                        } else {
                            Some(v[(i * 7919) % v.len()].clone())
                        }
                    };
                    if let Some(f) = f {
                        if f.cancel() {
                            cancelled += 1;
                        }
                    }
                    i += 1;
                    std::thread::yield_now();
                }
                cancelled
            })
        })
        .collect();
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            let (pool, shared) = (pool.clone(), shared.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..PER_SUBMITTER {
                    let value = t * 1_000_000 + i;
                    let f = pool.submit(move || value * 2).unwrap();
                    if i % 3 == 0 {
                        shared.lock().unwrap().push(f.clone());
                    }
                    mine.push((value, f));
                    if i % 500 == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                mine
            })
        })
        .collect();
    let started = Instant::now();
    let mut results = Vec::new();
    for s in submitters {
        results.extend(s.join().unwrap());
    }
    let mut cancelled = 0;
    let mut completed = 0;
    for (value, f) in &results {
        match f.result_timeout(LONG) {
            Ok(v) => {
                assert_eq!(v, value * 2);
                completed += 1;
            }
            Err(FutureError::Cancelled) => cancelled += 1,
            Err(e) => panic!("{e}"),
        }
    }
    done.store(true, Ordering::SeqCst);
    let cancel_calls: u64 = cancellers.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(started.elapsed() < LONG * 2);
    assert_eq!(completed + cancelled, SUBMITTERS * PER_SUBMITTER);
    // Every successful cancel() of a pending future is one cancelled task
    // (a repeat cancel of a cancelled future also returns true, so >=).
    assert!(cancel_calls >= cancelled);
    pool.shutdown(true, false);
    let stats = pool.stats();
    assert_eq!(stats.completed, completed, "{stats}");
    assert_eq!(stats.cancelled, cancelled, "{stats}");
    assert_eq!(
        (stats.workers_alive, stats.queued, stats.running),
        (0, 0, 0)
    );
}

#[test]
fn submit_and_wait_from_many_threads_through_parks_and_wakes() {
    // Every round trip goes through the spin/park/wake path at random
    // moments; a lost wake-up would hang a result (caught by the timeout).
    let pool = Arc::new(ThreadPoolExecutor::new(2));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for i in 0..400u64 {
                    let f = pool.submit(move || t + i).unwrap();
                    assert_eq!(f.result_timeout(LONG).unwrap(), t + i);
                    if i % 50 == 0 {
                        // Long enough for the workers to stop spinning and park.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(pool.stats().completed, 1600);
}

#[test]
fn shutdown_races_with_submitters() {
    for _ in 0..20 {
        let pool = Arc::new(ThreadPoolExecutor::new(2));
        let submitters: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let mut accepted = Vec::new();
                    for i in 0..200u32 {
                        match pool.submit(move || i) {
                            Ok(f) => accepted.push(f),
                            Err(_) => break,
                        }
                    }
                    accepted
                })
            })
            .collect();
        pool.shutdown(true, false);
        for s in submitters {
            // Everything accepted before the shutdown ran to completion.
            for f in s.join().unwrap() {
                assert!(f.done(), "an accepted task was stranded");
                f.result().unwrap();
            }
        }
    }
}
