//! `map_auto`: the chunk size is picked for the caller
//! from the number of items and workers, with Python 3.14's eager rule, in
//! input order, and without giving up what makes `map` right for slow
//! items. Everything is observed from the workers' side (files they
//! write), never with a stopwatch.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{clean, T};
use process_pool::{auto_chunksize, ProcessPoolExecutor};

fn square(x: u64) -> u64 {
    x * x
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ppmap-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls (in the worker) until `cond` holds or the hang guard passes;
/// says which.
fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn results_come_in_input_order_in_the_chunks_auto_chunksize_gives() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let n = 10_000usize;
    let got: Vec<u64> = pool
        .map_auto(square, 0..n as u64)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got, (0..n as u64).map(square).collect::<Vec<_>>());
    let chunk = auto_chunksize(n, 2);
    assert_eq!(chunk, 1250);
    assert_eq!(pool.stats().tasks_completed, n.div_ceil(chunk) as u64);
    // An empty input: no task, no item.
    assert_eq!(pool.map_auto(square, Vec::new()).unwrap().count(), 0);
    drop(pool);
    c.check();
}

#[test]
fn every_chunk_is_submitted_at_the_call_so_shutdown_right_after_loses_nothing() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let results = pool.map_auto(square, 0..100_000u64).unwrap();
    pool.shutdown(false, false);
    let got: Vec<u64> = results.map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..100_000u64).map(square).collect::<Vec<_>>());
    drop(pool);
    // A waited shutdown before the first next(): every chunk already ran.
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let results = pool.map_auto(square, 0..5000u64).unwrap();
    pool.shutdown(true, false);
    let chunks = 5000usize.div_ceil(auto_chunksize(5000, 2)) as u64;
    assert_eq!(pool.stats().tasks_completed, chunks);
    assert_eq!(results.count(), 5000);
    drop(pool);
    c.check();
}

/// Marks item `i` as started, then waits until `n` items have: true if it
/// saw them all (false only at the hang guard).
fn meet(item: (usize, usize, String)) -> bool {
    let (i, n, dir) = item;
    std::fs::write(Path::new(&dir).join(format!("started-{i}")), b"").unwrap();
    wait_for(|| std::fs::read_dir(&dir).map_or(0, |d| d.count()) >= n)
}

#[test]
fn twenty_slow_items_on_twenty_workers_all_run_at_once() {
    let c = clean();
    let dir = scratch("twenty");
    let pool = ProcessPoolExecutor::new(20).unwrap();
    let d = dir.to_string_lossy().into_owned();
    let met: Vec<bool> = pool
        .map_auto(meet, (0..20).map(|i| (i, 20, d.clone())))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    // No item could end before all 20 had started: they ran at once.
    assert_eq!(met, vec![true; 20], "items that never saw all 20 start");
    assert_eq!(pool.stats().tasks_completed, 20, "one item per task");
    drop(pool);
    std::fs::remove_dir_all(&dir).unwrap();
    c.check();
}

/// A cheap item appends one byte to the tally file; the slow one (with a
/// target) first waits until the tally reaches its target.
fn tally(item: (u64, String, Option<u64>)) -> (u64, bool) {
    let (i, path, target) = item;
    let saw = match target {
        Some(target) => wait_for(|| std::fs::metadata(&path).map_or(0, |m| m.len()) >= target),
        None => {
            let mut f = OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .unwrap();
            f.write_all(b".").unwrap();
            true
        }
    };
    (i, saw)
}

#[test]
fn one_slow_item_among_cheap_ones_holds_up_only_its_chunk_and_the_one_behind_it() {
    let c = clean();
    let dir = scratch("slow-one");
    let path = dir.join("tally").to_string_lossy().into_owned();
    let n = 4000u64;
    let chunk = auto_chunksize(n as usize, 2) as u64;
    assert_eq!(chunk, 500, "8 chunks");
    // Item 0 is slow: it waits until every item outside its own chunk and
    // the one chunk pipelined behind it on its worker has run. With
    // chunksize 1 a worker holds 2 items; with one chunk for everything
    // nothing else could run and it would wait for the hang guard.
    let target = n - 2 * chunk;
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let items = (0..n).map(|i| (i, path.clone(), (i == 0).then_some(target)));
    let got: Vec<(u64, bool)> = pool
        .map_auto(tally, items)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got[0], (0, true), "the slow item waited for the hang guard");
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        (0..n).collect::<Vec<_>>()
    );
    drop(pool);
    std::fs::remove_dir_all(&dir).unwrap();
    c.check();
}
