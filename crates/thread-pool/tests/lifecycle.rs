//! Worker lifecycle: idle timeout, shutdown joins every thread, shutdown
//! from inside a task, stats.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{os_threads_named, Event, LONG};
use thread_pool::{FutureError, SubmitError, ThreadPoolExecutor};

#[test]
fn idle_workers_exit_after_the_timeout_and_come_back_on_demand() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .thread_name_prefix("tpidt")
        .idle_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    assert_eq!(pool.submit(|| 1).unwrap().result_timeout(LONG).unwrap(), 1);
    assert!(common::eventually(|| pool.stats().workers_alive == 0));
    assert!(common::threads_gone("tpidt-"));
    // A new worker (the next number) takes the next task.
    let name = pool
        .submit(|| std::thread::current().name().unwrap().to_string())
        .unwrap()
        .result_timeout(LONG)
        .unwrap();
    assert_eq!(name, "tpidt-1");
    assert_eq!(pool.stats().completed, 2);
}

#[test]
fn retiring_workers_never_strand_a_task() {
    // Submits that race with workers timing out: every task still runs.
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .idle_timeout(Duration::ZERO)
        .build()
        .unwrap();
    for round in 0..200u64 {
        let f = pool.submit(move || round).unwrap();
        assert_eq!(f.result_timeout(LONG).unwrap(), round);
        if round % 10 == 0 {
            std::thread::sleep(Duration::from_micros(300));
        }
    }
}

#[test]
fn no_thread_outlives_a_waited_shutdown() {
    let live = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .thread_name_prefix("tpgone")
        .initializer(common::counting_initializer(live.clone()))
        .build()
        .unwrap();
    let gate = Event::new();
    let futures: Vec<_> = (0..8)
        .map(|_| {
            let g = gate.clone();
            pool.submit(move || g.wait()).unwrap()
        })
        .collect();
    assert!(common::eventually(|| pool.stats().running == 4));
    assert_eq!(live.load(Ordering::SeqCst), 4);
    assert_eq!(os_threads_named("tpgone-").len(), 4);
    gate.set();
    pool.shutdown(true, false);
    // Exactly, at once: every worker ran its thread-local destructors,
    // which happens before join returns.
    assert_eq!(live.load(Ordering::SeqCst), 0);
    assert!(futures.iter().all(|f| f.result().unwrap()));
    assert_eq!(pool.stats().workers_alive, 0);
    assert!(common::threads_gone("tpgone-"));
}

#[test]
fn concurrent_waited_shutdowns_both_return_after_every_worker() {
    let live = Arc::new(AtomicUsize::new(0));
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(4)
            .thread_name_prefix("tpboth")
            .initializer(common::counting_initializer(live.clone()))
            .build()
            .unwrap(),
    );
    let gate = Event::new();
    for _ in 0..4 {
        let g = gate.clone();
        pool.submit(move || g.wait()).unwrap();
    }
    assert!(common::eventually(|| pool.stats().running == 4));
    // Two threads shut down and wait at once; each reports how many workers
    // were still alive when its `shutdown` returned.
    let callers: Vec<_> = (0..2)
        .map(|i| {
            let (pool, live) = (pool.clone(), live.clone());
            std::thread::Builder::new()
                .name(format!("tpbothc-{i}"))
                .spawn(move || {
                    pool.shutdown(true, false);
                    live.load(Ordering::SeqCst)
                })
                .unwrap()
        })
        .collect();
    // The workers are held by the gate. Open it only once each caller is
    // blocked in its shutdown (asleep in a join or waiting for its turn) or
    // has already returned (the bug this test catches).
    assert!(common::eventually(|| {
        let states = common::os_thread_states("tpbothc-");
        states.len() < 2 || states.iter().all(|&(_, state)| state == 'S')
    }));
    gate.set();
    for caller in callers {
        assert_eq!(
            caller.join().unwrap(),
            0,
            "a waited shutdown returned early"
        );
    }
    assert!(common::threads_gone("tpboth-"));
}

#[test]
fn parked_workers_wake_up_for_shutdown() {
    let live = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .thread_name_prefix("tppark")
        .initializer(common::counting_initializer(live.clone()))
        .build()
        .unwrap();
    let gate = Event::new();
    let futures: Vec<_> = (0..3)
        .map(|_| {
            let g = gate.clone();
            pool.submit(move || g.wait()).unwrap()
        })
        .collect();
    assert!(common::eventually(|| pool.stats().running == 3));
    gate.set();
    for f in &futures {
        f.wait(Some(LONG));
    }
    // Let them spin out and park (all three asleep, per /proc).
    assert!(common::eventually(|| {
        let states = common::os_thread_states("tppark-");
        states.len() == 3 && states.iter().all(|(_, state)| *state == 'S')
    }));
    assert_eq!(live.load(Ordering::SeqCst), 3);
    drop(pool);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    assert!(common::threads_gone("tppark-"));
}

#[test]
fn shutdown_from_inside_a_task_does_not_deadlock() {
    let pool = Arc::new(ThreadPoolExecutor::new(2));
    let p = pool.clone();
    let f = pool
        .submit(move || {
            p.shutdown(true, false);
            p.submit(|| ()).err()
        })
        .unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), Some(SubmitError::Shutdown));
    pool.shutdown(true, false);
}

#[test]
fn a_task_shutting_down_while_an_outside_shutdown_joins_does_not_deadlock() {
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(2)
            .thread_name_prefix("tpinout")
            .build()
            .unwrap(),
    );
    let gate = Event::new();
    let (p, g) = (pool.clone(), gate.clone());
    let inside = pool
        .submit(move || {
            g.wait();
            p.shutdown(true, false);
        })
        .unwrap();
    let g = gate.clone();
    pool.submit(move || g.wait()).unwrap();
    assert!(common::eventually(|| pool.stats().running == 2));
    // The outside shutdown starts joining both workers, one of which will
    // itself call a waited shutdown.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let p = pool.clone();
    let outside = std::thread::spawn(move || {
        p.shutdown(true, false);
        done_tx.send(()).unwrap();
    });
    assert!(common::eventually(|| pool.is_shutdown()));
    gate.set();
    assert!(
        done_rx.recv_timeout(LONG).is_ok(),
        "the two shutdowns deadlocked"
    );
    outside.join().unwrap();
    assert!(inside.result_timeout(LONG).is_ok());
    assert!(common::threads_gone("tpinout-"));
}

#[test]
fn shutdown_is_idempotent_and_a_later_wait_joins() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .thread_name_prefix("tptwice")
        .build()
        .unwrap();
    let gate = Event::new();
    let g = gate.clone();
    let f = pool.submit(move || g.wait()).unwrap();
    assert!(common::eventually(|| pool.stats().running == 1));
    pool.shutdown(false, false);
    pool.shutdown(false, true);
    assert!(pool.is_shutdown());
    gate.set();
    pool.shutdown(true, false);
    assert!(f.result().unwrap());
    assert!(common::threads_gone("tptwice-"));
}

#[test]
fn cancel_futures_without_wait_cancels_the_queue() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Event::new();
    let g = gate.clone();
    let running = pool.submit(move || g.wait()).unwrap();
    assert!(common::eventually(|| pool.stats().running == 1));
    let queued: Vec<_> = (0..5).map(|i| pool.submit(move || i).unwrap()).collect();
    pool.shutdown(false, true);
    for f in &queued {
        assert!(f.cancelled());
        assert!(matches!(f.result(), Err(FutureError::Cancelled)));
    }
    // cancel() wakes `wait` at once (unlike CPython, gh-109934).
    let done = future::wait(
        &queued,
        Some(Duration::ZERO),
        future::ReturnWhen::AllCompleted,
    );
    assert_eq!(done.done.len(), 5);
    gate.set();
    assert!(running.result_timeout(LONG).unwrap());
    pool.shutdown(true, false);
    assert_eq!(pool.stats().cancelled, 5);
}

#[test]
fn stats_count_every_outcome() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Event::new();
    let g = gate.clone();
    let blocker = pool.submit(move || g.wait()).unwrap();
    assert!(common::eventually(|| pool.stats().running == 1));
    let cancelled = pool.submit(|| 0).unwrap();
    assert!(cancelled.cancel());
    let failed = pool.submit(|| -> i32 { panic!("x") }).unwrap();
    let ok = pool.submit(|| 1).unwrap();
    let s = pool.stats();
    assert_eq!((s.workers_alive, s.running, s.queued), (1, 1, 3), "{s}");
    gate.set();
    blocker.result_timeout(LONG).unwrap();
    failed.wait(Some(LONG));
    ok.result_timeout(LONG).unwrap();
    let s = pool.stats();
    assert_eq!(
        (s.completed, s.failed, s.cancelled, s.running, s.queued),
        (2, 1, 1, 0, 0),
        "{s}"
    );
    assert!(s.to_string().contains("2 completed, 1 failed, 1 cancelled"));
}

#[test]
fn a_burst_wakes_every_parked_worker() {
    // Four workers exist and are parked; four tasks that each wait until all
    // four have started can only finish if the burst wakes all four (the
    // submit wakes one, the chain rule the rest).
    const N: usize = 4;
    let pool = ThreadPoolExecutor::builder()
        .max_workers(N)
        .thread_name_prefix("tpburst")
        .build()
        .unwrap();
    for _ in 0..3 {
        // A barrier that gives up after LONG, so a failure cannot hang.
        let started = Arc::new(AtomicUsize::new(0));
        let all_started = Event::new();
        let futures: Vec<_> = (0..N)
            .map(|_| {
                let (started, all_started) = (started.clone(), all_started.clone());
                pool.submit(move || {
                    if started.fetch_add(1, Ordering::SeqCst) + 1 == N {
                        all_started.set();
                    }
                    all_started.wait()
                })
                .unwrap()
            })
            .collect();
        for f in &futures {
            assert!(
                f.result_timeout(LONG * 2).unwrap(),
                "not every parked worker was woken"
            );
        }
        assert_eq!(pool.stats().workers_alive, N);
        // Every worker stops spinning and parks (its /proc state).
        assert!(common::eventually(|| {
            let states = common::os_thread_states("tpburst-");
            states.len() == N && states.iter().all(|(_, state)| *state == 'S')
        }));
    }
}
