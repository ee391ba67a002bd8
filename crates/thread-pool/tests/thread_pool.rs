//! CPython's ThreadPoolExecutor-specific tests (test_thread_pool.py and the
//! thread parts of test_shutdown.py; reference section E.5), ported, plus
//! checks that an idle worker is reused before a new thread starts, and
//! that threads start lazily, up to `max_workers`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{os_threads_named, Event, LONG};
use thread_pool::{default_max_workers, FutureError, MapOptions, ThreadPoolExecutor};

fn named(prefix: &str, workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .thread_name_prefix(prefix)
        .build()
        .unwrap()
}

#[test]
fn test_map_submits_without_iteration() {
    let pool = ThreadPoolExecutor::new(5);
    let finished = Arc::new(Mutex::new(Vec::new()));
    let f = finished.clone();
    let _it = pool
        .map_with(
            move |x: u32| f.lock().unwrap().push(x),
            0..10,
            MapOptions::new().window(10),
        )
        .unwrap();
    pool.shutdown(true, false);
    let mut got = finished.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

#[test]
fn test_default_workers() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(default_max_workers(), (cpus + 4).min(32));
    assert_eq!(
        ThreadPoolExecutor::default().max_workers(),
        (cpus + 4).min(32)
    );
}

#[test]
fn test_saturation() {
    let pool = named("tpsat", 4);
    let gate = Event::new();
    let futures: Vec<_> = (0..60)
        .map(|_| {
            let g = gate.clone();
            pool.submit(move || g.wait()).unwrap()
        })
        .collect();
    assert!(common::eventually(|| pool.stats().running == 4));
    assert_eq!(pool.stats().workers_alive, 4);
    assert_eq!(os_threads_named("tpsat-").len(), 4);
    assert_eq!(pool.stats().queued, 56);
    gate.set();
    pool.shutdown(true, false);
    assert!(futures.iter().all(|f| f.result().unwrap()));
    assert!(common::threads_gone("tpsat-"));
}

#[test]
fn test_idle_thread_reuse() {
    // A pool of 8 that only sees sequential submits keeps one thread.
    let pool = named("tpidle", 8);
    for i in 0..50 {
        assert_eq!(
            pool.submit(move || i)
                .unwrap()
                .result_timeout(LONG)
                .unwrap(),
            i
        );
    }
    let stats = pool.stats();
    assert_eq!(stats.workers_alive, 1, "{stats}");
    assert_eq!(stats.completed, 50);
    assert_eq!(os_threads_named("tpidle-"), ["tpidle-0"]);
}

#[test]
fn test_executor_map_current_future_cancel() {
    // gh-95166: a map timeout cancels the future being waited on, too.
    let pool = ThreadPoolExecutor::new(1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let gate = Event::new();
    let (l, g) = (log.clone(), gate.clone());
    let first = pool
        .submit(move || {
            l.lock().unwrap().push("first started".to_string());
            g.wait();
            l.lock().unwrap().push("first stopped".to_string());
        })
        .unwrap();
    let l = log.clone();
    let mut it = pool
        .map_with(
            move |ident: &'static str| l.lock().unwrap().push(format!("{ident} started")),
            ["second", "third"],
            MapOptions::new().timeout(Duration::ZERO),
        )
        .unwrap();
    assert!(matches!(it.next(), Some(Err(FutureError::Timeout(_)))));
    assert!(it.next().is_none());
    gate.set();
    first.result_timeout(LONG).unwrap();
    pool.shutdown(true, false);
    assert_eq!(*log.lock().unwrap(), ["first started", "first stopped"]);
}

#[test]
fn test_thread_names_assigned() {
    let pool = named("SpecialPool", 5);
    let names: Vec<String> = (0..5)
        .map(|_| {
            let gate = Event::new();
            (
                gate.clone(),
                pool.submit(move || {
                    gate.wait();
                    std::thread::current().name().unwrap().to_string()
                }),
            )
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(gate, f)| {
            gate.set();
            f.unwrap().result_timeout(LONG).unwrap()
        })
        .collect();
    for name in &names {
        let n: usize = name.strip_prefix("SpecialPool-").unwrap().parse().unwrap();
        assert!(n < 5, "{name}");
    }
}

#[test]
fn test_thread_names_default() {
    let pool = ThreadPoolExecutor::new(2);
    let name = pool
        .submit(|| std::thread::current().name().unwrap().to_string())
        .unwrap()
        .result_timeout(LONG)
        .unwrap();
    let rest = name.strip_prefix("ThreadPoolExecutor-").expect(&name);
    let (pool_no, worker_no) = rest.split_once('-').expect(&name);
    assert!(
        pool_no.parse::<usize>().is_ok() && worker_no == "0",
        "{name}"
    );
    assert_eq!(
        pool.thread_name_prefix(),
        format!("ThreadPoolExecutor-{pool_no}")
    );
}

#[test]
fn test_threads_terminate() {
    let pool = named("tpterm", 5);
    let gate = Event::new();
    let started = Arc::new(AtomicUsize::new(0));
    let futures: Vec<_> = (0..3)
        .map(|_| {
            let (g, s) = (gate.clone(), started.clone());
            pool.submit(move || {
                s.fetch_add(1, Ordering::SeqCst);
                g.wait()
            })
            .unwrap()
        })
        .collect();
    assert!(common::eventually(|| started.load(Ordering::SeqCst) == 3));
    assert_eq!(pool.stats().workers_alive, 3);
    assert_eq!(os_threads_named("tpterm-").len(), 3);
    gate.set();
    pool.shutdown(true, false);
    assert!(futures.iter().all(|f| f.done()));
    assert_eq!(pool.stats().workers_alive, 0);
    assert!(common::threads_gone("tpterm-"));
}

#[test]
fn test_workers_start_lazily() {
    let pool = named("tplazy", 4);
    assert_eq!(pool.stats().workers_alive, 0);
    assert!(os_threads_named("tplazy-").is_empty());
    pool.submit(|| ()).unwrap().result_timeout(LONG).unwrap();
    assert_eq!(pool.stats().workers_alive, 1);
}
