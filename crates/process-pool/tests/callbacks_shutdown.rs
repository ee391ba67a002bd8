//! Done-callbacks never run on the dispatcher thread, so a callback may use
//! its own pool; every waited shutdown returns only once the pool is down,
//! whoever called first.

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{clean, wait_until, T};
use process_pool::ProcessPoolExecutor;

fn square(x: u64) -> u64 {
    x * x
}

/// Waits (in the worker) until `path` exists, so the test decides when the
/// task ends; gives up after `T` as a hang guard.
fn held_until_file_exists(path: String) -> u64 {
    let deadline = std::time::Instant::now() + T;
    while !std::path::Path::new(&path).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    1
}

fn gate_path(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("ppdisp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

#[test]
fn a_callback_that_submits_to_its_own_pool_and_waits_completes() {
    let c = clean();
    let pool = Arc::new(ProcessPoolExecutor::new(2).unwrap());
    let (tx, rx) = mpsc::channel();
    let first = pool.submit(square, 3).unwrap();
    let p = Arc::clone(&pool);
    first.add_done_callback(move |f| {
        let x = f.result().unwrap();
        // Submit to the same pool from the callback, and wait.
        let second = p.submit(square, x).unwrap().result_timeout(T);
        tx.send(second).unwrap();
    });
    assert_eq!(rx.recv_timeout(2 * T).unwrap().unwrap(), 81);

    // The same through Future::map, whose closure is a callback too.
    let p = Arc::clone(&pool);
    let chained = pool
        .submit(square, 2)
        .unwrap()
        .map(move |x| p.submit(square, x).unwrap().result_timeout(T).unwrap());
    assert_eq!(chained.result_timeout(2 * T).unwrap(), 16);

    // A callback may even shut its own pool down and wait.
    let p = Arc::clone(&pool);
    let (tx, rx) = mpsc::channel();
    pool.submit(square, 1).unwrap().add_done_callback(move |_| {
        p.shutdown(true, false);
        tx.send(p.stats().workers_alive).unwrap();
    });
    assert_eq!(rx.recv_timeout(2 * T).unwrap(), 0);
    drop(pool);
    c.check();
}

/// The kernel's state letter of thread `tid` of this process.
fn thread_state(tid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .unwrap_or('?')
}

#[test]
fn a_second_waited_shutdown_returns_only_when_the_pool_is_down() {
    let c = clean();
    let pool = Arc::new(ProcessPoolExecutor::new(1).unwrap());
    let gate = gate_path("second-shutdown");
    let held = pool.submit(held_until_file_exists, gate.clone()).unwrap();
    wait_until("the task to start", || held.running());
    let released = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let pool = Arc::clone(&pool);
            let released = Arc::clone(&released);
            let (tx, rx) = mpsc::channel();
            let handle = std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tx.send(unsafe { libc::gettid() }).unwrap();
                pool.shutdown(true, false);
                // What the caller saw when shutdown returned.
                (released.load(SeqCst), pool.stats().workers_alive)
            });
            let tid = rx.recv().unwrap();
            // Each caller is either blocked inside shutdown or (the bug)
            // already back from it.
            wait_until("the caller to block or return", || {
                handle.is_finished() || thread_state(tid) == 'S'
            });
            handle
        })
        .collect();
    released.store(true, SeqCst);
    std::fs::write(&gate, b"go").unwrap();
    for (i, handle) in callers.into_iter().enumerate() {
        let (saw_released, alive) = handle.join().unwrap();
        assert!(
            saw_released,
            "waited shutdown #{i} returned while a task ran"
        );
        assert_eq!(alive, 0, "waited shutdown #{i} returned with a live worker");
    }
    assert_eq!(held.result_timeout(T).unwrap(), 1);
    let _ = std::fs::remove_file(&gate);
    drop(pool);
    c.check();
}
