//! Done-callbacks (and `Future::map` closures) run on the worker that
//! completes the future. While they run, that worker is busy running user
//! code, not idle: a callback may submit to its own pool and wait, and a
//! task submitted meanwhile by anyone else is taken by another worker
//! (CPython starts a new thread here).

mod common;

use std::sync::mpsc;
use std::sync::Arc;

use common::{Event, LONG};
use thread_pool::ThreadPoolExecutor;

#[test]
fn a_done_callback_may_submit_to_its_own_pool_and_wait() {
    let pool = Arc::new(ThreadPoolExecutor::new(2));
    let gate = Event::new();
    let g = gate.clone();
    // The gate makes sure the callback is added before the task completes,
    // so it runs on the worker, not on this thread.
    let first = pool.submit(move || g.wait()).unwrap();
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    first.add_done_callback(move |_| {
        let inner = p.submit(|| 2 + 2).unwrap();
        let _ = tx.send(inner.result_timeout(LONG));
    });
    gate.set();
    let got = rx
        .recv_timeout(LONG + LONG)
        .expect("the callback never ended");
    assert_eq!(got.unwrap(), 4);
    assert!(first.result_timeout(LONG).unwrap());
}

#[test]
fn a_map_closure_may_submit_to_its_own_pool_and_wait() {
    let pool = Arc::new(ThreadPoolExecutor::new(2));
    let gate = Event::new();
    let g = gate.clone();
    let p = pool.clone();
    let chained = pool
        .submit(move || g.wait().then_some(20))
        .unwrap()
        .map(move |x| {
            let inner = p.submit(move || x.unwrap() + 1).unwrap();
            inner.result_timeout(LONG)
        });
    gate.set();
    assert_eq!(chained.result_timeout(LONG + LONG).unwrap().unwrap(), 21);
}

#[test]
fn callbacks_on_two_workers_that_each_submit_and_wait_both_complete() {
    // A fix that only discounts the calling worker would let each callback
    // count on the other one, which is busy too.
    let pool = Arc::new(ThreadPoolExecutor::new(4));
    let both_started = Arc::new(std::sync::Barrier::new(2));
    let gates = [Event::new(), Event::new()];
    let (tx, rx) = mpsc::channel();
    let mut firsts = Vec::new();
    for gate in &gates {
        let (g, b) = (gate.clone(), both_started.clone());
        // Both tasks run at once (the barrier), so two workers exist.
        let f = pool
            .submit(move || {
                b.wait();
                g.wait()
            })
            .unwrap();
        let (p, tx) = (pool.clone(), tx.clone());
        f.add_done_callback(move |_| {
            let inner = p.submit(|| 7).unwrap();
            let _ = tx.send(inner.result_timeout(LONG));
        });
        firsts.push(f);
    }
    for gate in &gates {
        gate.set();
    }
    for _ in 0..2 {
        let got = rx
            .recv_timeout(LONG + LONG)
            .expect("a callback never ended");
        assert_eq!(got.unwrap(), 7);
    }
}

#[test]
fn a_task_submitted_while_a_callback_runs_is_taken_by_another_worker() {
    // The callback blocks until a task submitted from this thread, after the
    // callback started, has run: it can only end if a second worker runs it.
    let pool = ThreadPoolExecutor::new(2);
    let gate = Event::new();
    let g = gate.clone();
    let first = pool.submit(move || g.wait()).unwrap();
    let in_callback = Event::new();
    let unrelated_ran = Event::new();
    let (tx, rx) = mpsc::channel();
    let (inside, ran) = (in_callback.clone(), unrelated_ran.clone());
    first.add_done_callback(move |_| {
        inside.set();
        let _ = tx.send(ran.wait());
    });
    gate.set();
    assert!(in_callback.wait());
    let ran = unrelated_ran.clone();
    let unrelated = pool.submit(move || ran.set()).unwrap();
    assert!(
        rx.recv_timeout(LONG + LONG).unwrap(),
        "the unrelated task did not run while the callback waited"
    );
    unrelated.result_timeout(LONG).unwrap();
}

#[test]
fn sequential_round_trips_without_callbacks_still_keep_one_thread() {
    // The change must not cost the idle reuse: no callback, no extra worker.
    let pool = ThreadPoolExecutor::builder()
        .max_workers(8)
        .thread_name_prefix("tpcbreuse")
        .build()
        .unwrap();
    for i in 0..50 {
        assert_eq!(
            pool.submit(move || i)
                .unwrap()
                .result_timeout(LONG)
                .unwrap(),
            i
        );
    }
    assert_eq!(pool.stats().workers_alive, 1);
    assert_eq!(common::os_threads_named("tpcbreuse").len(), 1);
}
