//! The thread-pool rung (steps s04-s07): each test checks a claim its step makes.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;

use common::{wait_until, within_60s};
use learn::s04_thread_pool_cpython as s04;
use learn::s05_thread_pool_idle_reuse as s05;
use learn::s06_thread_pool_sleep as s06;
use learn::s07_thread_pool_spin_park as s07;

fn thread_name() -> String {
    format!("{:?}", thread::current().id())
}

#[test]
fn s04_runs_many_tasks_on_at_most_max_workers_threads() {
    let pool = s04::ThreadPool::new(3);
    let futures: Vec<_> = (0..50).map(|_| pool.submit(thread_name)).collect();
    let threads: HashSet<String> = within_60s("50 tasks", move || {
        futures.into_iter().filter_map(|f| f.result().ok()).collect()
    });
    assert!(!threads.is_empty() && threads.len() <= 3, "ran on {} threads", threads.len());
    assert_eq!(pool.threads_started(), 3, "CPython 3.7's rule: a thread per submit up to max");
}

#[test]
fn s04_max_workers_tasks_really_run_at_once() {
    // Each task waits at a barrier for the others: this only finishes if
    // the pool runs all three at the same time, on three threads.
    let pool = s04::ThreadPool::new(3);
    let all_in = Arc::new(Barrier::new(3));
    let futures: Vec<_> = (0..3)
        .map(|_| {
            let all_in = all_in.clone();
            pool.submit(move || all_in.wait().is_leader())
        })
        .collect();
    within_60s("three tasks meeting at a barrier", move || {
        futures.iter().for_each(|f| assert!(f.result().is_ok()));
    });
}

#[test]
fn s04_starts_a_thread_per_submit_even_when_one_is_idle() {
    let pool = s04::ThreadPool::new(4);
    for x in 0..3u64 {
        assert_eq!(pool.submit(move || x).result().ok(), Some(x));
    }
    assert_eq!(pool.threads_started(), 3, "the weakness step 2 fixes");
}

#[test]
fn s04_drop_drains_the_queue_before_the_workers_leave() {
    let ran = Arc::new(AtomicU64::new(0));
    let pool = s04::ThreadPool::new(1);
    let futures: Vec<_> = (0..20)
        .map(|_| {
            let ran = ran.clone();
            pool.submit(move || ran.fetch_add(1, SeqCst))
        })
        .collect();
    within_60s("drop (shutdown with wait)", move || drop(pool));
    assert_eq!(ran.load(SeqCst), 20);
    assert!(futures.iter().all(|f| f.result().is_ok()));
}

#[test]
fn s05_sequential_submit_and_wait_keeps_one_thread() {
    // CPython's test_idle_thread_reuse, with no timing luck: the worker
    // counts itself idle before it publishes the result.
    let pool = s05::ThreadPool::new(4);
    for x in 0..200u64 {
        assert_eq!(pool.submit(move || x).result().ok(), Some(x));
    }
    assert_eq!(pool.threads_started(), 1);
}

#[test]
fn s05_a_burst_still_uses_every_worker() {
    let pool = s05::ThreadPool::new(3);
    let all_in = Arc::new(Barrier::new(3));
    let futures: Vec<_> = (0..3)
        .map(|_| {
            let all_in = all_in.clone();
            pool.submit(move || all_in.wait().is_leader())
        })
        .collect();
    within_60s("three tasks meeting at a barrier", move || {
        futures.iter().for_each(|f| assert!(f.result().is_ok()));
    });
    assert_eq!(pool.threads_started(), 3);
}

/// The model of `sleep.rs`'s loom tests, run for real: a queue that is a
/// counter, one worker that parks whenever it is empty, and a submitter
/// that pushes one task at a time and waits until it was taken, so that
/// every push races with the worker going to sleep.
#[test]
fn s06_no_submit_is_lost_while_the_worker_parks() {
    struct Model {
        queue: AtomicU64,
        taken: AtomicU64,
        sleep: s06::Sleep,
    }
    const ROUNDS: u64 = 20_000;
    let model = Arc::new(Model {
        queue: AtomicU64::new(0),
        taken: AtomicU64::new(0),
        sleep: s06::Sleep::default(),
    });
    model.sleep.start_searching();
    let worker = {
        let m = model.clone();
        thread::spawn(move || {
            while m.taken.load(SeqCst) < ROUNDS {
                if m.queue.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok() {
                    m.taken.fetch_add(1, SeqCst);
                } else {
                    m.sleep.sleep(|| m.queue.load(SeqCst) > 0, || false);
                }
            }
        })
    };
    // A lost wake-up leaves the worker parked with a task queued: a hang.
    within_60s("20000 submits, each taken by a parking worker", move || {
        for round in 1..=ROUNDS {
            model.queue.fetch_add(1, SeqCst); // push
            std::sync::atomic::fence(SeqCst); // the submitter's fence
            let idle = model.sleep.load();
            if s06::searching(idle) == 0 && idle >= s06::SLEEPING {
                model.sleep.wake_one();
            }
            while model.taken.load(SeqCst) < round {
                thread::yield_now();
            }
        }
        worker.join().is_ok()
    });
}

#[test]
fn s06_a_token_is_posted_only_for_a_parked_worker() {
    let sleep = s06::Sleep::default();
    assert!(!sleep.wake_one(), "nobody parked: no token piles up");
    sleep.start_searching();
    sleep.sleep(|| true, || false); // work at the last look: back at once
    assert_eq!(sleep.load(), s06::SEARCHING, "counted as searching again");
}

#[test]
fn s07_a_parked_worker_is_woken_by_a_submit() {
    let pool = Arc::new(s07::ThreadPool::new(1));
    for round in 0..100u64 {
        wait_until("the worker parks", || pool.counts().0 == 1 || round == 0);
        // The guard owns a clone: if it fires, no drop waits on a lost task.
        let submitter = pool.clone();
        let answer = within_60s("a submit to a parked worker", move || {
            submitter.submit(move || round).result().ok()
        });
        assert_eq!(answer, Some(round));
    }
    assert_eq!(pool.counts().1, 1, "one thread served every round");
}

#[test]
fn s07_bursts_from_several_threads_all_complete_on_at_most_max_workers() {
    let pool = Arc::new(s07::ThreadPool::new(2));
    let submitters: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || {
                let futures: Vec<_> = (0..2_000).map(|_| pool.submit(thread_name)).collect();
                futures.into_iter().filter_map(|f| f.result().ok()).collect::<HashSet<_>>()
            })
        })
        .collect();
    let threads = within_60s("8000 tasks from 4 submitters", move || {
        submitters.into_iter().flat_map(|s| s.join().unwrap_or_default()).collect::<HashSet<_>>()
    });
    assert!(threads.len() <= 2 && pool.counts().1 <= 2, "{} threads", threads.len());
}

#[test]
fn s07_the_chain_rule_lets_a_task_wait_for_one_queued_behind_it() {
    // Task A waits for task B, submitted right after it. With two workers
    // this needs B to run on the second one, however the submits and the
    // first worker's search interleave.
    for _ in 0..200 {
        let pool = Arc::new(s07::ThreadPool::new(2));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let a = pool.submit(move || rx.recv().is_ok());
        let b = pool.submit(move || tx.send(()).is_ok());
        // The closure owns the pool: if the guard fires, nothing joins a stuck worker.
        let both = within_60s("a task waiting for the next one", move || {
            let both = (a.result(), b.result());
            drop(pool);
            both
        });
        assert!(matches!(both, (Ok(true), Ok(true))));
    }
}
