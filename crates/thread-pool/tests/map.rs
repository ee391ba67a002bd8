//! `map`: input order whatever the completion order, laziness, a bounded
//! number of tasks in flight, cancellation on drop, and the pool closing
//! under it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Event, LONG};
use thread_pool::{
    FutureError, MapOptions, MapShutDown, SubmitError, TaskError, ThreadPoolExecutor,
};

#[test]
fn results_come_in_input_order_when_tasks_finish_in_reverse() {
    // Item i waits until item i+1 has finished, so the tasks complete in
    // reverse input order; map must still yield 0, 1, 2, ...
    const N: usize = 6;
    let pool = ThreadPoolExecutor::new(N);
    let done: Arc<Vec<Event>> = Arc::new((0..N).map(|_| Event::new()).collect());
    let order = Arc::new(Mutex::new(Vec::new()));
    let (d, o) = (done.clone(), order.clone());
    let results: Vec<usize> = pool
        .map_with(
            move |i: usize| {
                if i + 1 < N {
                    assert!(d[i + 1].wait());
                }
                o.lock().unwrap().push(i);
                d[i].set();
                i * 10
            },
            0..N,
            MapOptions::new().window(N),
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [0, 10, 20, 30, 40, 50]);
    assert_eq!(*order.lock().unwrap(), [5, 4, 3, 2, 1, 0]);
}

#[test]
fn map_is_lazy_on_an_infinite_input() {
    let pool = ThreadPoolExecutor::new(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let input = (0u64..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let mut it = pool
        .map_with(|x: u64| x.to_string(), input, MapOptions::new().window(3))
        .unwrap();
    // Exactly the window was taken from the input before iterating.
    assert_eq!(pulled.load(Ordering::SeqCst), 3);
    assert_eq!(it.next().unwrap().unwrap(), "0");
    assert_eq!(it.next().unwrap().unwrap(), "1");
    assert_eq!(it.next().unwrap().unwrap(), "2");
    // Each yielded item is replaced, keeping 3 in flight: 3 yielded + 3.
    assert_eq!(pulled.load(Ordering::SeqCst), 6);
}

#[test]
fn tasks_in_flight_never_exceed_the_window() {
    const WINDOW: usize = 8;
    let pool = ThreadPoolExecutor::new(4);
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let mut consumed = 0;
    let it = pool
        .map_with(
            move |x: u32| {
                s.fetch_add(1, Ordering::SeqCst);
                x
            },
            0..20_000u32,
            MapOptions::new().window(WINDOW),
        )
        .unwrap();
    for (i, r) in it.enumerate() {
        assert_eq!(r.unwrap(), i as u32);
        consumed += 1;
        let started = started.load(Ordering::SeqCst);
        // At most WINDOW submitted and not yet yielded.
        assert!(
            started <= consumed + WINDOW,
            "{started} started, {consumed} consumed"
        );
        let queued = pool.stats().queued;
        assert!(queued <= WINDOW, "{queued} queued");
    }
    assert_eq!(consumed, 20_000);
}

#[test]
fn by_default_every_item_is_submitted_at_the_call() {
    let pool = ThreadPoolExecutor::new(3);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let it = pool
        .map(
            |x: u32| x,
            (0u32..1000).inspect(move |_| {
                p.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    assert_eq!(pulled.load(Ordering::SeqCst), 1000);
    assert_eq!(
        it.map(Result::unwrap).collect::<Vec<_>>(),
        (0..1000).collect::<Vec<_>>()
    );
    // A pool's default window makes its maps lazy.
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .map_window(5)
        .build()
        .unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let _it = pool
        .map(
            |x: u32| x,
            (0u32..).inspect(move |_| {
                p.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    assert_eq!(pulled.load(Ordering::SeqCst), 5);
}

#[test]
fn shutdown_right_after_a_default_map_loses_nothing() {
    // A shutdown right after `map` must not cut the map short (an earlier
    // map yielded 20 values, then "broken").
    let pool = ThreadPoolExecutor::new(2);
    let r = pool.map(|x: u32| x * 2, 0..100).unwrap();
    pool.shutdown(false, false);
    let out: Vec<u32> = r.map(Result::unwrap).collect();
    assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
}

#[test]
fn dropping_the_pool_after_a_default_map_loses_nothing() {
    let pool = ThreadPoolExecutor::new(2);
    let r = pool.map(|x: u32| x + 1, 0..100).unwrap();
    drop(pool);
    let out: Vec<u32> = r.map(Result::unwrap).collect();
    assert_eq!(out, (1..101).collect::<Vec<_>>());
}

#[test]
fn dropping_an_unadvanced_map_cancels_nothing() {
    // CPython: closing a generator that never started skips its `finally`.
    for window in [None, Some(4)] {
        let pool = ThreadPoolExecutor::new(1);
        let gate = Event::new();
        let g = gate.clone();
        let blocker = pool.submit(move || g.wait()).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let f = move |_: u32| {
            r.fetch_add(1, Ordering::SeqCst);
        };
        let it = match window {
            None => pool.map(f, 0..10).unwrap(),
            Some(n) => pool
                .map_with(f, 0..10, MapOptions::new().window(n))
                .unwrap(),
        };
        drop(it);
        gate.set();
        blocker.result_timeout(LONG).unwrap();
        pool.shutdown(true, false);
        // Everything submitted ran: all 10, or the window's 4.
        assert_eq!(ran.load(Ordering::SeqCst), window.unwrap_or(10));
        assert_eq!(pool.stats().cancelled, 0);
    }
}

#[test]
fn dropping_an_advanced_map_cancels_what_has_not_started() {
    for window in [None, Some(10)] {
        let pool = ThreadPoolExecutor::new(1);
        let gate = Event::new();
        let one_started = Event::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let (g, r, started) = (gate.clone(), ran.clone(), one_started.clone());
        let f = move |x: u32| {
            if x == 1 {
                started.set();
                g.wait();
            }
            r.fetch_add(1, Ordering::SeqCst);
        };
        let mut it = match window {
            None => pool.map(f, 0..100).unwrap(),
            Some(n) => pool
                .map_with(f, 0..100, MapOptions::new().window(n))
                .unwrap(),
        };
        it.next().unwrap().unwrap();
        assert!(one_started.wait());
        drop(it);
        gate.set();
        pool.shutdown(true, false);
        let ran = ran.load(Ordering::SeqCst);
        match window {
            // The default map checks before every item of a claim: item 1
            // finishes, nothing after it starts, not even the rest of its claim.
            None => assert_eq!(ran, 2, "only items 0 and 1 ran"),
            // Windowed, one task per item: the 9 queued behind item 1.
            Some(n) => {
                assert_eq!(ran, 2, "only items 0 and 1 ran");
                assert_eq!(pool.stats().cancelled, n as u64 - 1);
            }
        }
    }
}

#[test]
fn a_windowed_map_never_has_more_than_its_window_submitted() {
    // Item 0 blocks; the consumer waits for it inside next(). While it
    // waits, only the window's 3 items may have been taken from the input
    // (before the fix, next() submitted the 4th before waiting).
    let pool = ThreadPoolExecutor::new(8);
    let gate = Event::new();
    let pulled = Arc::new(AtomicUsize::new(0));
    let (g, p) = (gate.clone(), pulled.clone());
    let it = pool
        .map_with(
            move |x: u32| {
                if x == 0 {
                    g.wait();
                }
                x
            },
            (0u32..50).inspect(move |_| {
                p.fetch_add(1, Ordering::SeqCst);
            }),
            MapOptions::new().window(3),
        )
        .unwrap();
    let consumer = std::thread::Builder::new()
        .name("tpwinconsumer".into())
        .spawn(move || {
            let mut it = it;
            let first = it.next().unwrap().unwrap();
            (first, it)
        })
        .unwrap();
    // The consumer is blocked in next(), waiting for item 0.
    assert!(common::eventually(|| {
        common::os_thread_states("tpwinconsumer") == [("tpwinconsumer".to_string(), 'S')]
    }));
    assert_eq!(pulled.load(Ordering::SeqCst), 3);
    gate.set();
    let (first, mut it) = consumer.join().unwrap();
    assert_eq!(first, 0);
    // One yielded, one submitted in its place.
    assert_eq!(pulled.load(Ordering::SeqCst), 4);
    let mut yielded = 1;
    for r in it.by_ref() {
        assert_eq!(r.unwrap(), yielded);
        yielded += 1;
        assert!(pulled.load(Ordering::SeqCst) <= yielded as usize + 3);
    }
    assert_eq!(yielded, 50);
}

#[test]
fn window_one_runs_one_at_a_time() {
    let pool = ThreadPoolExecutor::new(4);
    let running = Arc::new(AtomicUsize::new(0));
    let r = running.clone();
    let out: Vec<u32> = pool
        .map_with(
            move |x: u32| {
                assert_eq!(r.fetch_add(1, Ordering::SeqCst), 0);
                r.fetch_sub(1, Ordering::SeqCst);
                x + 1
            },
            0..50,
            MapOptions::new().window(1),
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (1..51).collect::<Vec<_>>());
}

#[test]
fn empty_input_ends_at_once() {
    let pool = ThreadPoolExecutor::new(2);
    let mut it = pool.map(|x: u32| x, Vec::new()).unwrap();
    assert!(it.next().is_none());
    assert!(it.next().is_none());
}

#[test]
fn map_after_shutdown_is_refused() {
    let pool = ThreadPoolExecutor::new(2);
    pool.shutdown(true, false);
    assert!(matches!(
        pool.map(|x: u32| x, 0..3),
        Err(SubmitError::Shutdown)
    ));
}

#[test]
fn shutdown_during_map_yields_in_flight_then_one_error() {
    let pool = ThreadPoolExecutor::new(2);
    let mut it = pool
        .map_with(|x: u32| x, 0..100, MapOptions::new().window(4))
        .unwrap();
    pool.shutdown(false, false);
    let rest: Vec<_> = it.by_ref().collect();
    // The 4 in flight complete (queued work still runs after a shutdown
    // without cancel), then one error says why the input stopped.
    assert_eq!(rest.len(), 5);
    for (i, r) in rest[..4].iter().enumerate() {
        assert_eq!(*r.as_ref().unwrap(), i as u32);
    }
    match &rest[4] {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            let text = e.to_string();
            assert!(text.contains("shut down"), "{text}");
            assert!(!text.contains("broken"), "{text}");
            assert_eq!(
                e.downcast_ref::<MapShutDown>(),
                Some(&MapShutDown { submitted: 4 })
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(it.next().is_none());
}

#[test]
fn cancel_futures_during_map_yields_cancelled_items() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Event::new();
    let g = gate.clone();
    let mut it = pool
        .map_with(
            move |x: u32| {
                if x == 0 {
                    g.wait();
                }
                x
            },
            0..3,
            MapOptions::new().window(3),
        )
        .unwrap();
    assert!(common::eventually(|| pool.stats().running == 1));
    let opener = std::thread::spawn({
        let gate = gate.clone();
        move || gate.set()
    });
    pool.shutdown(false, true);
    opener.join().unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert!(matches!(it.next(), Some(Err(FutureError::Cancelled))));
    assert!(matches!(it.next(), Some(Err(FutureError::Cancelled))));
    assert!(it.next().is_none());
    let _ = LONG;
}

#[test]
fn chunked_map_keeps_order_errors_and_the_window() {
    let pool = ThreadPoolExecutor::new(3);
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let it = pool
        .map_with(
            move |x: u32| {
                s.fetch_add(1, Ordering::SeqCst);
                if x % 7 == 3 {
                    panic!("bad item {x}");
                }
                x * 2
            },
            0..1000u32,
            MapOptions::new().window(40).chunk_size(16),
        )
        .unwrap();
    let mut consumed = 0;
    for (i, r) in it.enumerate() {
        let x = i as u32;
        if x % 7 == 3 {
            match r {
                Err(FutureError::Task(TaskError::Panicked(m))) => {
                    assert_eq!(m, format!("bad item {x}"))
                }
                other => panic!("{other:?}"),
            }
        } else {
            assert_eq!(r.unwrap(), x * 2);
        }
        consumed += 1;
        let started = started.load(Ordering::SeqCst);
        assert!(
            started <= consumed + 40,
            "{started} started, {consumed} consumed"
        );
    }
    assert_eq!(consumed, 1000);
}

#[test]
fn dropping_a_chunked_map_cancels_its_unstarted_chunks() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Event::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let (g, r) = (gate.clone(), ran.clone());
    let mut it = pool
        .map_with(
            move |x: u32| {
                if x == 5 {
                    g.wait();
                }
                r.fetch_add(1, Ordering::SeqCst);
                x
            },
            0..100,
            MapOptions::new().window(20).chunk_size(5),
        )
        .unwrap();
    // Chunk 0 is yielded from; chunk 1 blocks on item 5; chunks 2 and 3 wait.
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert!(common::eventually(|| pool.stats().running == 1));
    drop(it);
    gate.set();
    pool.shutdown(true, false);
    assert_eq!(pool.stats().cancelled, 2);
    assert_eq!(ran.load(Ordering::SeqCst), 10, "chunks 0 and 1 ran");
}
