//! Without an early `start_fork_server()` (no constructor in this test
//! binary), a pool built in a process that already runs several threads
//! must refuse with a typed error: the fork server would
//! be forked with whatever locks the other threads hold at that instant, and
//! every worker would inherit them held. `start_fork_server_late()` is the
//! explicit opt-in; this test also shows what the opt-in risks: a lock held
//! by another thread at the late start stays held in every worker.

use std::sync::{mpsc, Mutex};
use std::time::Duration;

use future::{FutureError, TaskError};
use process_pool::{BuildError, ForkServerError, ProcessPoolExecutor, TaskTimedOut};

const T: Duration = Duration::from_secs(30);

fn square(x: u64) -> u64 {
    x * x
}

/// Held by a thread of the test process while the fork server is forked.
static HELD: Mutex<u64> = Mutex::new(0);

/// In a worker: takes `HELD`, which was copied locked. Never returns.
fn take_the_held_lock(x: u64) -> u64 {
    *HELD.lock().unwrap_or_else(|p| p.into_inner()) + x
}

#[test]
fn late_start_is_refused_unless_opted_in_and_the_opt_in_copies_held_locks() {
    // The test harness runs this test on a thread of its own: already > 1.
    let threads = process_pool::thread_count().unwrap();
    assert!(threads > 1, "{threads}");
    assert!(process_pool::fork_server_info().is_none());

    // By default: a clear, typed error, and nothing started.
    let Err(err) = ProcessPoolExecutor::new(2) else {
        panic!("a late start must be refused");
    };
    let BuildError::ForkServer(ForkServerError::LateStart { threads: seen }) = err.clone() else {
        panic!("expected LateStart, got {err:?}");
    };
    assert!(seen > 1, "{seen}");
    let msg = err.to_string();
    assert!(msg.contains("start_fork_server()"), "{msg}");
    assert!(msg.contains("start_fork_server_late()"), "{msg}");
    assert!(matches!(
        process_pool::try_start_fork_server(),
        Err(ForkServerError::LateStart { .. })
    ));
    assert!(process_pool::fork_server_info().is_none());

    // The opt-in, while another thread holds a lock.
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let guard = HELD.lock().unwrap();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        drop(guard);
    });
    held_rx.recv().unwrap();
    process_pool::start_fork_server_late().unwrap();
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let info = process_pool::fork_server_info().unwrap();
    assert!(info.threads_at_start.unwrap() > 2, "{info:?}");

    // Tasks that need no inherited lock work...
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futs: Vec<_> = (0..10u64)
        .map(|i| pool.submit(square, i).unwrap())
        .collect();
    for (i, f) in futs.iter().enumerate() {
        assert_eq!(f.result_timeout(T).unwrap(), (i * i) as u64);
    }
    drop(pool);
    // ...but the lock the holder released in this process is still held
    // in every worker: the task can only hang, until the pool's timeout
    // kills it. (In this process the lock is free.) The timeout is only a
    // lower bound here: nothing else runs in this pool.
    assert_eq!(*HELD.lock().unwrap(), 0);
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .task_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    match pool
        .submit(take_the_held_lock, 1)
        .unwrap()
        .result_timeout(T)
    {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            assert!(e.downcast_ref::<TaskTimedOut>().is_some(), "{e:?}")
        }
        other => panic!("expected the task to hang until its timeout, got {other:?}"),
    }
    // So does its replacement, forked from the same fork server.
    match pool
        .submit(take_the_held_lock, 2)
        .unwrap()
        .result_timeout(T)
    {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            assert!(e.downcast_ref::<TaskTimedOut>().is_some(), "{e:?}")
        }
        other => panic!("expected the task to hang until its timeout, got {other:?}"),
    }
}
