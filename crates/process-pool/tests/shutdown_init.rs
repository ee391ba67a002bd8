//! The process parts of CPython's test_shutdown.py and test_init.py, and
//! cancellation of pending futures.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{clean, T};
use future::{FutureError, State, TaskError};
use process_pool::{ProcessPoolExecutor, SubmitError};

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn run_after_shutdown_is_refused() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    pool.shutdown(true, false);
    let err = pool.submit(square, 2).unwrap_err();
    assert_eq!(err, SubmitError::Shutdown);
    assert_eq!(
        err.to_string(),
        "cannot schedule new futures after shutdown"
    );
    assert!(pool.map(square, [1], 1).is_err());
    pool.shutdown(true, false); // twice is fine
    drop(pool);
    c.check();
}

#[test]
fn hang_issue12364_shutdown_waits_for_all_work() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futs: Vec<_> = (0..20)
        .map(|_| pool.submit(sleep_ms, 10).unwrap())
        .collect();
    pool.shutdown(true, false);
    for f in &futs {
        assert_eq!(f.state(), State::Finished);
        assert_eq!(f.result().unwrap(), 10);
    }
    drop(pool);
    c.check();
}

#[test]
fn shutdown_no_wait_returns_at_once_and_work_completes() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futs: Vec<_> = (0..4)
        .map(|_| pool.submit(sleep_ms, 200).unwrap())
        .collect();
    pool.shutdown(false, false);
    assert!(
        futs.iter().any(|f| !f.done()),
        "shutdown(wait=false) must not wait"
    );
    for f in &futs {
        assert_eq!(f.result_timeout(T).unwrap(), 200);
    }
    drop(pool); // joins the dispatcher
    c.check();
}

#[test]
fn cancel_futures_on_shutdown() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap();
    let first = pool.submit(sleep_ms, 300).unwrap();
    common::wait_until("the first task to start", || first.running());
    let rest: Vec<_> = (0..50)
        .map(|_| pool.submit(sleep_ms, 10).unwrap())
        .collect();
    pool.shutdown(true, true);
    assert_eq!(first.result().unwrap(), 300);
    let cancelled = rest.iter().filter(|f| f.cancelled()).count();
    let finished = rest.iter().filter(|f| f.result().is_ok()).count();
    assert_eq!(cancelled + finished, 50);
    assert!(
        cancelled >= 45,
        "most pending futures are cancelled: {cancelled}"
    );
    assert_eq!(pool.stats().tasks_cancelled, cancelled as u64);
    drop(pool);
    c.check();
}

#[test]
fn drop_shuts_down_and_reaps_every_worker() {
    // CPython's test_del_shutdown.
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futs: Vec<_> = (0..4).map(|_| pool.submit(sleep_ms, 50).unwrap()).collect();
    drop(pool);
    for f in &futs {
        assert_eq!(f.result_timeout(Duration::ZERO).unwrap(), 50);
    }
    c.check();
}

#[test]
fn cancel_a_pending_future() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap();
    let running = pool.submit(sleep_ms, 300).unwrap();
    common::wait_until("the first task to start", || running.running());
    let pending: Vec<_> = (0..5u64).map(|i| pool.submit(square, i).unwrap()).collect();
    assert!(!running.cancel(), "a running task cannot be cancelled");
    for f in &pending[2..] {
        assert!(f.cancel());
    }
    assert_eq!(running.result_timeout(T).unwrap(), 300);
    assert_eq!(pending[0].result_timeout(T).unwrap(), 0);
    assert_eq!(pending[1].result_timeout(T).unwrap(), 1);
    for f in &pending[2..] {
        assert!(matches!(f.result_timeout(T), Err(FutureError::Cancelled)));
    }
    pool.shutdown(true, false);
    assert_eq!(pool.stats().tasks_cancelled, 3);
    assert_eq!(pool.stats().tasks_completed, 3);
    drop(pool);
    c.check();
}

static INIT_VALUE: AtomicU64 = AtomicU64::new(0);

fn init() {
    INIT_VALUE.store(42, Ordering::SeqCst);
}

fn read_init(_: ()) -> u64 {
    INIT_VALUE.load(Ordering::SeqCst)
}

fn bad_init() {
    panic!("initializer exploded");
}

fn exiting_init() {
    std::process::exit(5);
}

#[test]
fn initializer_runs_in_every_worker() {
    let c = clean();
    assert_eq!(INIT_VALUE.load(Ordering::SeqCst), 0);
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(init)
        .build()
        .unwrap();
    let futs: Vec<_> = (0..10)
        .map(|_| pool.submit(read_init, ()).unwrap())
        .collect();
    for f in &futs {
        assert_eq!(f.result_timeout(T).unwrap(), 42);
    }
    assert_eq!(
        INIT_VALUE.load(Ordering::SeqCst),
        0,
        "the initializer runs in the workers only"
    );
    drop(pool);
    c.check();
}

fn assert_broken(pool: &ProcessPoolExecutor, futs: &[future::Future<u64>], needle: &str) {
    for f in futs {
        match f.result_timeout(T) {
            Err(FutureError::Task(TaskError::BrokenExecutor(msg))) => {
                assert!(msg.contains(needle), "{msg}")
            }
            other => panic!("expected a broken pool, got {other:?}"),
        }
    }
    match pool.submit(square, 1) {
        Err(SubmitError::Broken(msg)) => assert!(msg.contains(needle), "{msg}"),
        other => panic!("expected SubmitError::Broken, got {other:?}"),
    }
}

#[test]
fn failing_initializer_breaks_the_pool() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(bad_init)
        .build()
        .unwrap();
    let futs: Vec<_> = (0..5u64).map(|i| pool.submit(square, i).unwrap()).collect();
    assert_broken(&pool, &futs, "initializer exploded");
    drop(pool);
    c.check();
}

#[test]
fn exiting_initializer_breaks_the_pool() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .initializer(exiting_init)
        .build()
        .unwrap();
    let futs: Vec<_> = (0..3u64).map(|i| pool.submit(square, i).unwrap()).collect();
    assert_broken(&pool, &futs, "exited with code 5");
    drop(pool);
    c.check();
}
