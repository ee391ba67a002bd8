//! `pool.scope`: tasks that borrow from the stack.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::{Event, LONG};
use thread_pool::{FutureError, SubmitError, TaskError, ThreadPoolExecutor};

#[test]
fn tasks_borrow_and_mutate_stack_data() {
    let pool = ThreadPoolExecutor::new(3);
    let counter = AtomicUsize::new(0);
    let mut chunks = vec![vec![1u64, 2, 3], vec![4, 5], vec![6]];
    pool.scope(|s| {
        for chunk in chunks.iter_mut() {
            let counter = &counter;
            s.submit(move || {
                for x in chunk.iter_mut() {
                    *x *= 10;
                }
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
    });
    // The scope returned only after every task ended.
    assert_eq!(counter.load(Ordering::SeqCst), 3);
    assert_eq!(chunks, [vec![10, 20, 30], vec![40, 50], vec![60]]);
}

#[test]
fn the_scope_waits_even_for_tasks_whose_futures_were_dropped() {
    let pool = ThreadPoolExecutor::new(2);
    let log = Mutex::new(Vec::new());
    let gate = Event::new();
    pool.scope(|s| {
        for i in 0..4 {
            let (log, gate) = (&log, &gate);
            drop(s.submit(move || {
                gate.wait();
                log.lock().unwrap().push(i);
            }));
        }
        gate.set();
    });
    let mut got = log.into_inner().unwrap();
    got.sort();
    assert_eq!(got, [0, 1, 2, 3]);
}

#[test]
fn scoped_futures_may_return_borrowed_values() {
    let pool = ThreadPoolExecutor::new(2);
    let words = ["alpha", "beta", "gamma"];
    let longest: &str = pool.scope(|s| {
        let futures: Vec<_> = words
            .iter()
            .map(|w| s.submit(move || (w.len(), *w)).unwrap())
            .collect();
        futures
            .into_iter()
            .map(|f| f.into_result().unwrap())
            .max()
            .unwrap()
            .1
    });
    assert_eq!(longest, "gamma");
}

#[test]
fn a_panicking_scoped_task_fails_its_future_only() {
    let pool = ThreadPoolExecutor::new(2);
    let v = [1, 2, 3];
    let (bad, good) = pool.scope(|s| {
        let bad = s.submit(|| -> usize { panic!("scoped boom") }).unwrap();
        let good = s.submit(|| v.len()).unwrap();
        (bad.wait(Some(LONG)).then_some(bad).unwrap(), good)
    });
    assert!(
        matches!(bad.result(), Err(FutureError::Task(TaskError::Panicked(m))) if m == "scoped boom")
    );
    assert_eq!(good.result().unwrap(), 3);
}

#[test]
fn a_panic_in_the_scope_body_waits_for_tasks_then_resumes() {
    let pool = ThreadPoolExecutor::new(2);
    let finished = AtomicUsize::new(0);
    let gate = Event::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..3 {
                let (finished, gate) = (&finished, &gate);
                s.submit(move || {
                    gate.wait();
                    finished.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            let opener = gate.clone();
            std::thread::spawn(move || opener.set());
            panic!("body failed");
        })
    }));
    assert!(result.is_err());
    assert_eq!(finished.load(Ordering::SeqCst), 3);
}

#[test]
fn scope_on_a_shut_down_pool_refuses_tasks() {
    let pool = ThreadPoolExecutor::new(2);
    pool.shutdown(true, false);
    let data = 5;
    let refused = pool.scope(|s| s.submit(|| data).err());
    assert_eq!(refused, Some(SubmitError::Shutdown));
}

#[test]
fn cancelled_scoped_tasks_release_the_scope() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Event::new();
    let local = String::from("borrowed");
    pool.scope(|s| {
        let g = &gate;
        s.submit(move || g.wait()).unwrap();
        let queued: Vec<_> = (0..3).map(|_| s.submit(|| local.len()).unwrap()).collect();
        for f in &queued {
            assert!(f.cancel());
        }
        gate.set();
    });
    assert_eq!(pool.stats().cancelled, 3);
}
