//! `terminate_workers` / `kill_workers` (Python 3.14, reference item 77):
//! the workers get the signal, the tasks they held fail, the queued ones are
//! cancelled, nothing is replaced, later submits are refused, and no zombie
//! or descriptor is left behind.

mod common;

use std::time::Duration;

use common::{clean, T};
use future::{FutureError, TaskError};
use process_pool::{ProcessPoolExecutor, SubmitError, WorkerTerminated};

/// Blocks (in the worker) for ten times `T`: only a signal ends it early.
/// Long enough that a shutdown which waited for it cannot pass for one that
/// only reaped, however loaded the machine.
fn block(_: ()) -> u64 {
    std::thread::sleep(T * 10);
    0
}

fn square(x: u64) -> u64 {
    x * x
}

fn fails_to_init() {
    panic!("no init for you");
}

/// Two workers each running a blocking task, and three tasks queued.
fn busy_pool() -> (
    ProcessPoolExecutor,
    Vec<future::Future<u64>>,
    Vec<future::Future<u64>>,
) {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        // One task per worker, so the rest stay in the pool's queue.
        .tasks_per_worker(1)
        .build()
        .unwrap();
    let running: Vec<_> = (0..2).map(|_| pool.submit(block, ()).unwrap()).collect();
    common::wait_until("both blocking tasks to run", || {
        pool.stats().tasks_running == 2
    });
    let queued: Vec<_> = (0..3).map(|i| pool.submit(square, i).unwrap()).collect();
    (pool, running, queued)
}

fn terminated(r: Result<u64, FutureError>) -> WorkerTerminated {
    match r {
        Err(FutureError::Task(TaskError::Executor(e))) => e
            .downcast_ref::<WorkerTerminated>()
            .unwrap_or_else(|| panic!("expected WorkerTerminated, got {e:?}"))
            .clone(),
        other => panic!("expected WorkerTerminated, got {other:?}"),
    }
}

fn check_stopped(
    pool: &ProcessPoolExecutor,
    running: &[future::Future<u64>],
    queued: &[future::Future<u64>],
    signal: &str,
) {
    for f in running {
        let err = terminated(f.result_timeout(T));
        assert_eq!(err.signal, signal);
        let method = if signal == "SIGKILL" {
            "kill_workers()"
        } else {
            "terminate_workers()"
        };
        assert!(err.to_string().contains(method), "{err}");
    }
    for f in queued {
        assert!(matches!(f.result_timeout(T), Err(FutureError::Cancelled)));
    }
    assert_eq!(pool.submit(square, 1).unwrap_err(), SubmitError::Shutdown);
    // Waits for the workers to be reaped, not for the blocked tasks: it
    // returns long before they would have ended on their own (10 T).
    let start = std::time::Instant::now();
    pool.shutdown(true, false);
    assert!(
        start.elapsed() < T * 5,
        "shutdown waited for the blocked tasks"
    );
    let stats = pool.stats();
    assert_eq!(stats.workers_alive, 0, "{stats:?}");
    assert_eq!(stats.workers_started, 2, "nothing is replaced: {stats:?}");
    assert_eq!(stats.worker_exits.signal, 2, "{stats:?}");
    assert_eq!(stats.tasks_cancelled, 3, "{stats:?}");
}

#[test]
fn terminate_workers_stops_running_tasks_with_sigterm() {
    let c = clean();
    let (pool, running, queued) = busy_pool();
    pool.terminate_workers();
    check_stopped(&pool, &running, &queued, "SIGTERM");
    drop(pool);
    c.check();
}

#[test]
fn kill_workers_stops_running_tasks_with_sigkill() {
    let c = clean();
    let (pool, running, queued) = busy_pool();
    pool.kill_workers();
    check_stopped(&pool, &running, &queued, "SIGKILL");
    drop(pool);
    c.check();
}

#[test]
fn pipelined_tasks_fail_with_their_worker() {
    // With the default pipelining, a worker may already hold the next task
    // in its pipe: that one fails with the worker too (it cannot be
    // cancelled any more), and nothing hangs.
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(2)
        .build()
        .unwrap();
    let first = pool.submit(block, ()).unwrap();
    let second = pool.submit(square, 3).unwrap();
    common::wait_until("both blocking tasks to run", || {
        pool.stats().tasks_running == 2
    });
    pool.kill_workers();
    assert_eq!(terminated(first.result_timeout(T)).signal, "SIGKILL");
    assert_eq!(terminated(second.result_timeout(T)).signal, "SIGKILL");
    drop(pool);
    c.check();
}

#[test]
fn terminate_without_workers_is_a_shutdown() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    pool.terminate_workers();
    pool.kill_workers();
    assert_eq!(pool.submit(square, 1).unwrap_err(), SubmitError::Shutdown);
    assert_eq!(pool.stats().workers_started, 0);
    drop(pool);
    c.check();
}

#[test]
fn terminate_on_a_broken_pool_does_not_fail() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .initializer(fails_to_init)
        .build()
        .unwrap();
    let f = pool.submit(square, 2).unwrap();
    assert!(matches!(
        f.result_timeout(T),
        Err(FutureError::Task(TaskError::BrokenExecutor(_)))
    ));
    pool.terminate_workers();
    pool.kill_workers();
    assert!(pool.submit(square, 1).is_err());
    drop(pool);
    c.check();
}

fn short(x: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(200));
    x
}

#[test]
fn kill_workers_racing_with_submitters_leaves_no_future_hanging() {
    // Submitters keep going while the workers are killed: every future
    // must end (a value, cancelled, or WorkerTerminated), every later
    // submit must be refused, and nothing may be left behind. Idle workers
    // are lent to submitters here (no task timeout), so this also races
    // the direct hand-off with the kill.
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futures = std::sync::Mutex::new(Vec::new());
    let refused = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (pool, futures, refused) = (&pool, &futures, &refused);
            s.spawn(move || {
                // Until refused (the cap only bounds a broken test).
                for i in 0..1_000_000u64 {
                    match pool.submit(short, t * 10_000 + i) {
                        Ok(f) => futures.lock().unwrap().push(f),
                        Err(SubmitError::Shutdown) => {
                            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            break;
                        }
                        Err(e) => panic!("unexpected submit error: {e}"),
                    }
                }
            });
        }
        // Let some tasks run, then kill while the submitters are busy.
        // Bounded without a panic here: a panic inside the scope would wait
        // for the submitters, which only stop once the pool is shut down.
        let deadline = std::time::Instant::now() + T;
        while pool.stats().tasks_completed < 20 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        pool.kill_workers();
    });
    let futures = futures.into_inner().unwrap();
    let (mut ok, mut cancelled, mut terminated_count) = (0, 0, 0);
    for f in &futures {
        match f.result_timeout(T) {
            Ok(_) => ok += 1,
            Err(FutureError::Cancelled) => cancelled += 1,
            other => {
                terminated(other);
                terminated_count += 1;
            }
        }
    }
    assert!(ok >= 20, "ok {ok}");
    assert_eq!(ok + cancelled + terminated_count, futures.len());
    // Both submitters ran into the shutdown.
    assert_eq!(refused.load(std::sync::atomic::Ordering::Relaxed), 2);
    drop(pool);
    c.check();
}
