//! Behaviour tests ported from CPython's test_process_pool.py and the
//! executor tests common to all pools (section E.4/E.6 of the reference).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{clean, T};
use future::{FutureError, TaskError};
use process_pool::{BuildError, ProcessPoolExecutor, SubmitError};

fn pow(args: (u64, u32)) -> u64 {
    args.0.wrapping_pow(args.1)
}

fn mul(args: (u64, u64)) -> u64 {
    args.0 * args.1
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn sleep_then_pid(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

fn double(x: u64) -> u64 {
    x * 2
}

fn square(x: u64) -> u64 {
    x * x
}

fn panics(msg: String) -> u64 {
    panic!("{msg}")
}

fn parse(s: String) -> Result<u64, std::num::ParseIntError> {
    s.parse()
}

fn nested(_: ()) -> String {
    ProcessPoolExecutor::new(1).unwrap_err().to_string()
}

#[test]
fn submit_returns_the_value() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    assert_eq!(
        pool.submit(pow, (2, 8)).unwrap().result_timeout(T).unwrap(),
        256
    );
    assert_eq!(
        pool.submit(mul, (2, 8)).unwrap().result_timeout(T).unwrap(),
        16
    );
    let s = pool
        .submit(|s: String| s.to_uppercase(), "abc".into())
        .unwrap();
    assert_eq!(s.result_timeout(T).unwrap(), "ABC");
    drop(pool);
    c.check();
}

#[test]
fn max_workers_must_be_positive() {
    let c = clean();
    let err = ProcessPoolExecutor::new(0).unwrap_err();
    assert_eq!(err, BuildError::ZeroWorkers);
    assert_eq!(err.to_string(), "max_workers must be greater than 0");
    let err = ProcessPoolExecutor::builder()
        .max_tasks_per_child(0)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "max_tasks_per_child must be >= 1");
    c.check();
}

#[test]
fn map_chunksize_matches_sequential_map() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let items: Vec<(u64, u32)> = (0..40u64).zip(0..40u32).collect();
    let expected: Vec<u64> = items.iter().map(|&a| pow(a)).collect();
    for chunksize in [1, 6, 40, 50] {
        let got: Vec<u64> = pool
            .map(pow, items.clone(), chunksize)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(got, expected, "chunksize {chunksize}");
    }
    assert_eq!(
        pool.map(pow, items, 0).err(),
        Some(SubmitError::ZeroChunksize)
    );
    let empty: Vec<u64> = pool
        .map(square, Vec::new(), 3)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(empty.is_empty());
    drop(pool);
    c.check();
}

#[test]
fn map_yields_each_failed_chunks_error_per_item() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();

    fn fail_on_13(x: u64) -> u64 {
        assert_ne!(x, 13, "unlucky");
        x
    }
    let results: Vec<Result<u64, FutureError>> =
        pool.map(fail_on_13, 0..30u64, 10).unwrap().collect();
    assert_eq!(results.len(), 30);
    for (i, r) in results.iter().enumerate() {
        if (10..20).contains(&i) {
            match r {
                Err(FutureError::Task(TaskError::Panicked(m))) => {
                    assert!(m.contains("unlucky"), "{m}")
                }
                other => panic!("item {i}: {other:?}"),
            }
        } else {
            assert_eq!(r.as_ref().unwrap(), &(i as u64));
        }
    }
    drop(pool);
    c.check();
}

/// Returns the item's number; an item with a path first waits (in the
/// worker) until that file exists, so the test decides when it ends.
fn held_until_file_exists(item: (u64, Option<String>)) -> u64 {
    if let Some(path) = item.1 {
        let deadline = std::time::Instant::now() + T;
        while !std::path::Path::new(&path).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    item.0
}

#[test]
fn map_timeout_yields_a_timeout_then_ends_and_cancels_the_rest() {
    // Python: map(sleep, [0, 0, 6], timeout=5) gives the results, then
    // TimeoutError, and the pending calls are cancelled (gh-95166).
    let c = clean();
    // One task per worker at a time, as in Python: the rest stay queued,
    // where a cancel reaches them.
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap();
    let release = std::env::temp_dir().join(format!("pp-map-timeout-{}", std::process::id()));
    let _ = std::fs::remove_file(&release);
    let held = Some(release.to_string_lossy().into_owned());
    let mut items: Vec<(u64, Option<String>)> = (0..12).map(|i| (i, None)).collect();
    items[2].1 = held;
    let timeout = Duration::from_millis(300);
    let mut it = pool
        .map(held_until_file_exists, items, 1)
        .unwrap()
        .timeout(timeout);
    let mut got = Vec::new();
    loop {
        match it.next() {
            Some(Ok(v)) => got.push(v),
            Some(Err(FutureError::Timeout(d))) => {
                assert_eq!(d, timeout);
                break;
            }
            other => panic!("after {got:?}: {other:?}"),
        }
    }
    // On a loaded machine the timeout may even beat items 0 and 1, but the
    // held item and those after it can never come before it.
    assert!(got.iter().all(|&v| v < 2), "{got:?}");
    assert!(it.next().is_none());
    assert!(it.next().is_none());
    std::fs::write(&release, b"").unwrap();
    pool.shutdown(true, false);
    let stats = pool.stats();
    // Items 3..12 were still queued when the timeout fired: cancelled,
    // never run. (With deeper pipelining a few would already be in the
    // worker's pipe, out of a cancel's reach, as in Python's call queue.)
    assert!(stats.tasks_cancelled >= 9, "{stats:?}");
    assert_eq!(
        stats.tasks_completed + stats.tasks_cancelled,
        12,
        "{stats:?}"
    );
    let _ = std::fs::remove_file(&release);
    drop(it);
    drop(pool);
    c.check();
}

#[test]
fn panics_and_errors_come_back_with_their_message_and_the_worker_survives() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let before = pool.submit(pid, ()).unwrap().result_timeout(T).unwrap();
    match pool
        .submit(panics, "boom 123".into())
        .unwrap()
        .result_timeout(T)
    {
        Err(FutureError::Task(TaskError::Panicked(m))) => assert_eq!(m, "boom 123"),
        other => panic!("{other:?}"),
    }
    let fut = pool.submit_fallible(parse, "12x".into()).unwrap();
    match fut.result_timeout(T) {
        Err(FutureError::Task(TaskError::Failed(e))) => {
            assert_eq!(e.type_name(), "ParseIntError");
            assert_eq!(e.to_string(), "invalid digit found in string");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        format!("{fut:?}").contains("raised ParseIntError"),
        "{fut:?}"
    );
    let ok = pool.submit_fallible(parse, "12".into()).unwrap();
    assert_eq!(ok.result_timeout(T).unwrap(), 12);
    let after = pool.submit(pid, ()).unwrap().result_timeout(T).unwrap();
    assert_eq!(before, after, "the worker must survive panics");
    assert_eq!(pool.stats().workers_started, 1);
    drop(pool);
    c.check();
}

#[test]
fn idle_process_reuse_one() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(4).unwrap();
    let pids: HashSet<u32> = (0..3)
        .map(|_| pool.submit(pid, ()).unwrap().result_timeout(T).unwrap())
        .collect();
    assert_eq!(pids.len(), 1);
    assert_eq!(pool.stats().workers_started, 1);
    drop(pool);
    c.check();
}

#[test]
fn idle_process_reuse_multiple() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(4).unwrap();
    pool.submit(mul, (12, 7))
        .unwrap()
        .result_timeout(T)
        .unwrap();
    pool.submit(mul, (33, 25)).unwrap();
    pool.submit(mul, (25, 26))
        .unwrap()
        .result_timeout(T)
        .unwrap();
    pool.submit(mul, (18, 29)).unwrap();
    pool.submit(mul, (1, 2)).unwrap().result_timeout(T).unwrap();
    pool.submit(mul, (0, 9)).unwrap();
    assert!(pool.stats().workers_started <= 3, "{:?}", pool.stats());
    drop(pool);
    c.check();
}

#[test]
fn saturation_starts_exactly_max_workers() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futs: Vec<_> = (0..30)
        .map(|_| pool.submit(sleep_then_pid, 5).unwrap())
        .collect();
    let pids: HashSet<u32> = futs.iter().map(|f| f.result_timeout(T).unwrap()).collect();
    assert_eq!(pids.len(), 2);
    assert_eq!(pool.stats().workers_started, 2);
    drop(pool);
    c.check();
}

#[test]
fn processes_terminate_on_shutdown() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(3).unwrap();
    let futs: Vec<_> = (0..3)
        .map(|_| pool.submit(sleep_then_pid, 200).unwrap())
        .collect();
    common::wait_until("3 workers", || pool.stats().workers_alive == 3);
    assert_eq!(common::workers().len(), 3);
    pool.shutdown(true, false);
    for f in &futs {
        f.result_timeout(T).unwrap();
    }
    assert!(common::workers().is_empty());
    drop(pool);
    c.check();
}

#[test]
fn max_tasks_per_child_replaces_the_worker() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..4)
        .map(|_| pool.submit(pid, ()).unwrap().result_timeout(T).unwrap())
        .collect();
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[1], pids[2]);
    assert_ne!(pids[2], pids[3]);
    common::wait_until("the retired worker to be reaped", || {
        pool.stats().worker_exits.max_tasks_per_child == 1
    });
    assert_eq!(pool.stats().workers_alive, 1);
    drop(pool);
    c.check();
}

#[test]
fn max_tasks_early_shutdown() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(3)
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    let futs: Vec<_> = (0..6u64).map(|i| pool.submit(square, i).unwrap()).collect();
    pool.shutdown(true, false);
    for (i, f) in futs.iter().enumerate() {
        assert_eq!(f.result_timeout(T).unwrap(), (i * i) as u64);
    }
    assert_eq!(pool.stats().worker_exits.max_tasks_per_child, 6);
    drop(pool);
    c.check();
}

#[test]
fn max_tasks_per_child_pending_tasks_gh115634() {
    let c = clean();
    for (workers, max_tasks, n) in [(1, 2, 6u64), (2, 2, 8)] {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(workers)
            .max_tasks_per_child(max_tasks)
            .build()
            .unwrap();
        let futs: Vec<_> = (0..n).map(|i| pool.submit(double, i).unwrap()).collect();
        for (i, f) in futs.iter().enumerate() {
            assert_eq!(f.result_timeout(T).unwrap(), i as u64 * 2);
        }
    }
    c.check();
}

#[test]
fn shutdown_gh_132969_no_hang_with_max_tasks_and_a_failing_task() {
    fn task(x: u64) -> u64 {
        if x == 2 {
            panic!("fail")
        }
        x
    }
    let c = clean();
    for workers in [2, 4] {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(workers)
            .max_tasks_per_child(1)
            .build()
            .unwrap();
        let mut sum = 0;
        for r in pool.map(task, [1, 2, 3], 1).unwrap() {
            match r {
                Ok(v) => sum += v,
                Err(_) => break,
            }
        }
        pool.shutdown(false, false);
        assert_eq!(sum, 1);
        drop(pool); // joins the dispatcher: must not hang
    }
    c.check();
}

#[test]
fn pools_do_not_nest() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let msg = pool.submit(nested, ()).unwrap().result_timeout(T).unwrap();
    assert!(msg.contains("inside a pool worker"), "{msg}");
    drop(pool);
    c.check();
}

#[test]
fn stats_count_tasks() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    for i in 0..5u64 {
        pool.submit(square, i).unwrap().result_timeout(T).unwrap();
    }
    let _ = pool.submit(panics, "x".into()).unwrap().result_timeout(T);
    let s = pool.stats();
    assert_eq!(s.tasks_completed, 5);
    assert_eq!(s.tasks_failed, 1);
    assert_eq!(s.tasks_queued, 0);
    assert_eq!(s.tasks_running, 0);
    assert!(s.workers_alive >= 1 && s.workers_alive <= 2, "{s:?}");
    drop(pool);
    c.check();
}
