//! Panics that escape a task's own `catch_unwind`: the
//! drop of a cancelled task's closure, the drop of a result nobody holds,
//! and the drop of closures cancelled by `shutdown(cancel_futures)`. After
//! any of them the pool still runs every later task, and `stats()` tells
//! the truth about its threads. (The third path, a callback-panic hook that
//! panics, replaces a process-wide hook, so it has its own test binary:
//! `escaped_hook_panic.rs`.)

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use common::{Event, LONG};
use thread_pool::{FutureError, ThreadPoolExecutor};

/// Panics when dropped.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{} panicked in drop", self.0);
    }
}

fn pool(prefix: &str, workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .thread_name_prefix(prefix)
        .build()
        .unwrap()
}

/// Later tasks run, and once the pool is quiet `stats()` matches the
/// threads that really exist: each alive worker is an OS thread, and all
/// of them are idle.
fn assert_pool_still_works(pool: &ThreadPoolExecutor, prefix: &str) {
    let results: Vec<_> = (0..20)
        .map(|i| pool.submit(move || i * 3).unwrap())
        .collect();
    for (i, f) in results.into_iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i * 3);
    }
    let truthful = common::eventually(|| {
        let s = pool.stats();
        let threads = common::os_threads_named(prefix).len();
        s.workers_alive == threads && s.workers_idle == s.workers_alive && s.running == 0
    });
    assert!(
        truthful,
        "stats {:?}, OS threads {:?}",
        pool.stats(),
        common::os_threads_named(prefix)
    );
}

#[test]
fn a_cancelled_closure_whose_drop_panics_does_not_kill_the_worker() {
    let pool = pool("tpescdrop", 1);
    let gate = Event::new();
    let g = gate.clone();
    let blocker = pool.submit(move || g.wait()).unwrap();
    let bomb = PanicOnDrop("a cancelled closure");
    let cancelled = pool
        .submit(move || {
            let _keep = &bomb;
        })
        .unwrap();
    assert!(cancelled.cancel());
    gate.set();
    assert!(blocker.result_timeout(LONG).unwrap());
    assert!(matches!(cancelled.result(), Err(FutureError::Cancelled)));
    assert_pool_still_works(&pool, "tpescdrop");
    assert_eq!(pool.stats().cancelled, 1);
}

#[test]
fn a_result_nobody_holds_whose_drop_panics_does_not_kill_the_worker() {
    let pool = pool("tpescres", 1);
    let gate = Event::new();
    let g = gate.clone();
    let unheld = pool
        .submit(move || {
            g.wait();
            PanicOnDrop("an unheld result")
        })
        .unwrap();
    // Nobody holds the future when the worker publishes, so the value is
    // dropped on the worker, with the task's promise.
    drop(unheld);
    gate.set();
    assert_pool_still_works(&pool, "tpescres");
    assert_eq!(pool.stats().completed, 21);
}

#[test]
fn closures_cancelled_by_shutdown_whose_drop_panics_are_all_cancelled() {
    let pool = pool("tpescshut", 1);
    let gate = Event::new();
    let g = gate.clone();
    let blocker = pool.submit(move || g.wait()).unwrap();
    assert!(common::eventually(|| pool.stats().running == 1));
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..3)
        .map(|_| {
            let (bomb, ran) = (PanicOnDrop("a closure cancelled by shutdown"), ran.clone());
            pool.submit(move || {
                let _keep = &bomb;
                ran.fetch_add(1, SeqCst);
            })
            .unwrap()
        })
        .collect();
    let opener = std::thread::spawn(move || gate.set());
    // Every queued task is cancelled although each drop panics, and the
    // waited shutdown still joins the worker.
    pool.shutdown(true, true);
    opener.join().unwrap();
    assert!(blocker.result_timeout(LONG).unwrap());
    for f in &queued {
        assert!(matches!(
            f.result_timeout(LONG),
            Err(FutureError::Cancelled)
        ));
    }
    assert_eq!(ran.load(SeqCst), 0);
    assert!(common::threads_gone("tpescshut"));
    let s = pool.stats();
    assert_eq!((s.workers_alive, s.cancelled, s.completed), (0, 3, 1));
}
