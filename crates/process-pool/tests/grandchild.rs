//! A task that forks a helper without `exec`. The helper
//! inherits the worker's result pipe, so end-of-file on that pipe does not
//! come when the worker dies, only when the helper exits. The fork server's
//! exit status must be enough: the task fails at once with the real cause,
//! and a waited shutdown does not wait for the pool's grandchildren.
//!
//! The helper lives until the test removes its "keep alive" file (bounded
//! by 120 s, so a failing run cleans up after itself). The pool's answers
//! are all awaited while that file exists: a pool that waited for the helper
//! would time out there.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use common::{clean, T};
use future::{FutureError, TaskError};
use process_pool::{ExitCause, ProcessPoolExecutor, WorkerDied};

/// Forks a helper that lives while `keep_alive` exists, then aborts the
/// worker (or, with `abort == false`, returns normally).
fn fork_helper_then(args: (PathBuf, bool)) -> u32 {
    let (keep_alive, abort) = args;
    // SAFETY: a worker is single-threaded, so the child may run any code;
    // it only polls a path and then leaves with _exit.
    match unsafe { libc::fork() } {
        0 => {
            for _ in 0..6000 {
                if !keep_alive.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // SAFETY: _exit is always sound.
            unsafe { libc::_exit(0) }
        }
        -1 => panic!("fork failed"),
        _ => {
            if abort {
                std::process::abort();
            }
            std::process::id()
        }
    }
}

fn square(x: u64) -> u64 {
    x * x
}

struct KeepAlive(PathBuf);

impl KeepAlive {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "process-pool-grandchild-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, b"").unwrap();
        KeepAlive(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_worker_dies_while_its_helper_holds_the_result_pipe() {
    let clean = clean();
    let keep = KeepAlive::new("abort");
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let fut = pool
        .submit(fork_helper_then, (keep.path().to_owned(), true))
        .unwrap();
    match fut.result_timeout(T) {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            let died = e.downcast_ref::<WorkerDied>().expect("WorkerDied");
            assert_eq!(died.cause, ExitCause::Signaled(libc::SIGABRT), "{died}");
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    // The pool goes on, with a new worker.
    assert_eq!(
        pool.submit(square, 7).unwrap().result_timeout(T).unwrap(),
        49
    );
    // A waited shutdown returns while the helper still lives.
    let (tx, rx) = mpsc::channel();
    let shutdown = std::thread::spawn(move || {
        pool.shutdown(true, false);
        let _ = tx.send(());
    });
    let returned = rx.recv_timeout(T).is_ok();
    assert!(keep.path().exists());
    drop(keep); // the helper exits now, whatever happened
    assert!(returned, "shutdown(true) waited for the worker's helper");
    shutdown.join().unwrap();
    clean.check();
}

#[test]
fn a_retiring_worker_with_a_helper_does_not_hold_up_shutdown() {
    let clean = clean();
    let keep = KeepAlive::new("retire");
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let pid = pool
        .submit(fork_helper_then, (keep.path().to_owned(), false))
        .unwrap()
        .result_timeout(T)
        .unwrap();
    assert!(pid > 0);
    let (tx, rx) = mpsc::channel();
    let shutdown = std::thread::spawn(move || {
        let stats_before = pool.stats();
        pool.shutdown(true, false);
        let _ = tx.send(stats_before);
    });
    let returned = rx.recv_timeout(T);
    assert!(keep.path().exists());
    drop(keep);
    assert!(
        returned.is_ok(),
        "shutdown(true) waited for the worker's helper"
    );
    shutdown.join().unwrap();
    clean.check();
}
