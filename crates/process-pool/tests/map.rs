//! `map` with Python 3.14's rules: every chunk is
//! submitted at the call by default; a bounded window (`buffersize`) is the
//! opt-in lazy mode; dropping the iterator cancels what closing CPython's
//! `result_iterator` cancels.

mod common;

use std::time::Duration;

use common::{clean, wait_until, T};
use future::{FutureError, TaskError};
use process_pool::{MapShutDown, ProcessPoolExecutor};

fn square(x: u64) -> u64 {
    x * x
}

/// Returns the item's number; an item with a path first waits (in the
/// worker) until that file exists, so the test decides when it ends.
fn held(item: (u64, Option<String>)) -> u64 {
    if let Some(path) = item.1 {
        let deadline = std::time::Instant::now() + T;
        while !std::path::Path::new(&path).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    item.0
}

fn gate(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("ppdisp-map-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

/// A pool whose one worker holds one task at a time, so queued tasks stay
/// where a cancel reaches them.
fn one_at_a_time() -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap()
}

#[test]
fn every_chunk_is_submitted_at_the_call_so_shutdown_loses_nothing() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let results = pool.map(square, 0..1000u64, 1).unwrap();
    pool.shutdown(false, false);
    let got: Vec<u64> = results.map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..1000u64).map(square).collect::<Vec<_>>());
    drop(pool);
    // With chunks too, and a waited shutdown before the first next().
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let results = pool.map(square, 0..1000u64, 7).unwrap();
    pool.shutdown(true, false);
    assert_eq!(pool.stats().tasks_completed, 1000u64.div_ceil(7));
    assert_eq!(
        results.map(|r| r.unwrap()).sum::<u64>(),
        (0..1000u64).map(square).sum()
    );
    drop(pool);
    c.check();
}

#[test]
fn a_map_never_advanced_cancels_nothing_when_dropped() {
    // CPython: a result_iterator generator that never started has no
    // `finally` to run; every call it submitted runs.
    let c = clean();
    let pool = one_at_a_time();
    drop(pool.map(square, 0..50u64, 1).unwrap());
    pool.shutdown(true, false);
    let stats = pool.stats();
    assert_eq!(stats.tasks_cancelled, 0, "{stats:?}");
    assert_eq!(stats.tasks_completed, 50, "{stats:?}");
    drop(pool);
    c.check();
}

#[test]
fn an_advanced_map_dropped_cancels_what_has_not_started() {
    // CPython: closing the generator cancels every future it still holds;
    // the running one cannot be cancelled and finishes.
    let c = clean();
    let pool = one_at_a_time();
    let path = gate("advanced-drop");
    let mut items: Vec<(u64, Option<String>)> = (0..10).map(|i| (i, None)).collect();
    items[1].1 = Some(path.clone());
    let mut it = pool.map(held, items, 1).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    wait_until("item 1 to run", || pool.stats().tasks_running == 1);
    drop(it);
    std::fs::write(&path, b"go").unwrap();
    pool.shutdown(true, false);
    let stats = pool.stats();
    assert_eq!(stats.tasks_cancelled, 8, "{stats:?}");
    assert_eq!(stats.tasks_completed, 2, "{stats:?}");
    let _ = std::fs::remove_file(&path);
    drop(pool);
    c.check();
}

#[test]
fn a_windowed_map_keeps_at_most_its_window_in_flight() {
    let c = clean();
    let pool = one_at_a_time();
    let path = gate("window");
    let items = (0..20u64).map(|i| (i, Some(path.clone())));
    let mut it = pool.map_windowed(held, items, 2, 3).unwrap();
    // Three chunks of two at the call, none more while the first is held.
    wait_until("the first chunk to run", || pool.stats().tasks_running == 1);
    let stats = pool.stats();
    assert_eq!(stats.tasks_queued + stats.tasks_running, 3, "{stats:?}");
    std::fs::write(&path, b"go").unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    let stats = pool.stats();
    assert!(
        stats.tasks_queued + stats.tasks_running + stats.tasks_completed <= 4,
        "{stats:?}"
    );
    let rest: Vec<u64> = it.map(|r| r.unwrap()).collect();
    assert_eq!(rest, (1..20).collect::<Vec<_>>());
    let _ = std::fs::remove_file(&path);
    // An infinite input works in windowed mode.
    let first: Vec<u64> = pool
        .map_windowed(square, 0u64.., 10, 2)
        .unwrap()
        .take(25)
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(first, (0..25u64).map(square).collect::<Vec<_>>());
    drop(pool);
    c.check();
}

#[test]
fn a_windowed_map_after_shutdown_yields_what_was_submitted_then_says_shut_down() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let mut it = pool.map_windowed(square, 0..1000u64, 1, 4).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert_eq!(it.next().unwrap().unwrap(), 1);
    pool.shutdown(false, false);
    let mut got = vec![0, 1];
    let error = loop {
        match it.next() {
            Some(Ok(v)) => got.push(v),
            Some(Err(e)) => break e,
            None => panic!("ended without saying why, after {got:?}"),
        }
    };
    // Everything submitted before the shutdown (the window) was yielded.
    assert!(got.len() >= 2 + 4 - 1 && got.len() <= 2 + 4, "{got:?}");
    assert_eq!(got, (0..got.len() as u64).map(square).collect::<Vec<_>>());
    let text = error.to_string();
    assert!(text.contains("shut down"), "{text}");
    assert!(!text.contains("broken"), "{text}");
    match &error {
        FutureError::Task(TaskError::Executor(e)) => {
            let e = e.downcast_ref::<MapShutDown>().expect("MapShutDown");
            assert_eq!(e.submitted, got.len());
        }
        other => panic!("{other:?}"),
    }
    assert!(it.next().is_none());
    drop(it);
    drop(pool);
    c.check();
}
