//! CPython's test_init.py (reference C.4, E.5 #63-64): the initializer runs
//! in every worker before any task; a failing one breaks the pool.

mod common;

use std::cell::RefCell;

use common::{Event, LONG};
use thread_pool::{FutureError, SubmitError, TaskError, ThreadPoolExecutor};

thread_local! {
    static INIT_STATUS: RefCell<&'static str> = const { RefCell::new("uninitialized") };
}

#[test]
fn test_initializer_runs_in_every_worker_first() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(|| -> Result<(), String> {
            INIT_STATUS.with(|s| *s.borrow_mut() = "initialized");
            Ok(())
        })
        .build()
        .unwrap();
    // Two tasks that block until both run, so both workers are used.
    let gate = Event::new();
    let futures: Vec<_> = (0..2)
        .map(|_| {
            let g = gate.clone();
            pool.submit(move || {
                g.wait();
                INIT_STATUS.with(|s| *s.borrow())
            })
            .unwrap()
        })
        .collect();
    assert!(common::eventually(|| pool.stats().running == 2));
    gate.set();
    for f in futures {
        assert_eq!(f.result_timeout(LONG).unwrap(), "initialized");
    }
}

fn assert_broken(e: &TaskError, needle: &str) {
    match e {
        TaskError::BrokenExecutor(msg) => {
            assert!(msg.contains("A thread initializer failed"), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
        other => panic!("expected BrokenExecutor, got {other:?}"),
    }
}

fn check_failing_initializer(pool: ThreadPoolExecutor, gate: Event, needle: &str) {
    // Submitted while the first worker is still in its initializer (it waits
    // for `gate`): the futures fail with the broken-pool error.
    let futures: Vec<_> = (0..5).map(|i| pool.submit(move || i).unwrap()).collect();
    gate.set();
    for f in &futures {
        match f.result_timeout(LONG) {
            Err(FutureError::Task(e)) => assert_broken(&e, needle),
            other => panic!("expected a broken pool, got {other:?}"),
        }
    }
    // From then on, submit itself refuses.
    match pool.submit(|| 0) {
        Err(SubmitError::Broken(msg)) => {
            assert!(msg.contains(needle), "{msg}");
            assert!(
                SubmitError::Broken(msg.clone())
                    .to_string()
                    .starts_with("cannot schedule new futures"),
                "{msg}"
            );
        }
        other => panic!("expected SubmitError::Broken, got {other:?}"),
    }
    assert!(pool.broken().unwrap().contains(needle));
    let stats = pool.stats();
    assert_eq!(stats.failed, 5, "{stats}");
    pool.shutdown(true, false);
    assert_eq!(pool.stats().workers_alive, 0);
}

#[test]
fn test_failing_initializer_error() {
    let gate = Event::new();
    let g = gate.clone();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(move || -> Result<(), String> {
            // CPython's version sleeps 0.1 s; a gate makes the order certain.
            g.wait();
            Err("ValueError: error in initializer".to_string())
        })
        .build()
        .unwrap();
    check_failing_initializer(pool, gate, "ValueError: error in initializer");
}

#[test]
fn test_failing_initializer_panic() {
    let gate = Event::new();
    let g = gate.clone();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(move || -> Result<(), String> {
            g.wait();
            panic!("init exploded")
        })
        .build()
        .unwrap();
    check_failing_initializer(pool, gate, "init exploded");
}

#[test]
fn test_map_on_broken_pool_reports_the_break() {
    let gate = Event::new();
    let g = gate.clone();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .initializer(move || {
            g.wait();
            Err::<(), _>("no database")
        })
        .build()
        .unwrap();
    // The whole input fits the first window, submitted before the worker
    // fails; each item then yields the broken-pool error.
    let it = pool.map(|x: u32| x, 0..3).unwrap();
    gate.set();
    let results: Vec<_> = it.collect();
    assert_eq!(results.len(), 3);
    for r in results {
        match r {
            Err(FutureError::Task(e)) => assert_broken(&e, "no database"),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        pool.map(|x: u32| x, 0..3),
        Err(SubmitError::Broken(_))
    ));
}
