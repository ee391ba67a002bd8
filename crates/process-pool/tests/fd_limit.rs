//! The pool's process at its open-file limit. A worker's
//! three pipe ends reach the pool with `SCM_RIGHTS`; with fewer than three
//! free descriptor numbers the kernel installs only some of them and sets
//! `MSG_CTRUNC`. Every descriptor that arrived must be closed, the half-made
//! worker must go, the task must fail with a clear error, and the pool must
//! work again once descriptors are free.
//!
//! The limit is made exact and deterministic: `RLIMIT_NOFILE` is lowered to
//! just above the highest open descriptor, every free number below it is
//! filled with `/dev/null`, and then exactly `free` of them are closed.

mod common;

use std::os::fd::OwnedFd;

use common::{clean, wait_until, T};
use future::{FutureError, TaskError};
use process_pool::{ProcessPoolExecutor, SpawnFailed};

fn square(x: u64) -> u64 {
    x * x
}

fn highest_open_fd() -> i32 {
    let dir = std::fs::read_dir("/proc/self/fd").unwrap();
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .max()
        .unwrap()
}

fn rlimit() -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid struct `r`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r
}

fn set_rlimit(r: libc::rlimit) {
    // SAFETY: setrlimit reads the valid struct `r`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
}

/// Lowers the limit and fills every free number below it, leaving exactly
/// `free` numbers free. Returns the placeholders and the old limit.
fn exhaust_descriptors(free: usize) -> (Vec<OwnedFd>, libc::rlimit) {
    let old = rlimit();
    let cap = highest_open_fd() as libc::rlim_t + 8;
    set_rlimit(libc::rlimit {
        rlim_cur: cap,
        rlim_max: old.rlim_max,
    });
    let mut filler = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => filler.push(OwnedFd::from(f)),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                break;
            }
        }
    }
    assert!(
        filler.len() >= free,
        "only {} numbers were free",
        filler.len()
    );
    filler.truncate(filler.len() - free);
    (filler, old)
}

#[test]
fn truncated_descriptors_are_closed_the_worker_goes_and_the_pool_recovers() {
    let clean = clean();
    for free in [0, 1, 2] {
        // The pool's doorbell and thread exist now; workers start on demand.
        let pool = ProcessPoolExecutor::new(1).unwrap();
        let (filler, old) = exhaust_descriptors(free);
        let outcome = pool.submit(square, 3).unwrap().result_timeout(T);
        // Free the descriptors again before judging, so a failure can print.
        drop(filler);
        set_rlimit(old);
        match outcome {
            Err(FutureError::Task(TaskError::Executor(e))) => {
                let spawn = e.downcast_ref::<SpawnFailed>().expect("SpawnFailed");
                assert!(spawn.message.contains("RLIMIT_NOFILE"), "{spawn}");
            }
            other => panic!("{free} free: expected SpawnFailed, got {other:?}"),
        }
        // The half-made worker is gone: it held no task.
        wait_until("the half-made worker to be reaped", || {
            common::workers().is_empty()
        });
        // Not broken for good: the next task gets a worker and runs.
        let ok = pool.submit(square, free as u64).unwrap().result_timeout(T);
        assert_eq!(ok.unwrap(), (free * free) as u64, "{free} free");
        let stats = pool.stats();
        assert_eq!(stats.workers_started, 1, "{free} free: {stats:?}");
        assert_eq!(stats.tasks_failed, 1, "{free} free: {stats:?}");
        assert_eq!(stats.tasks_completed, 1, "{free} free: {stats:?}");
        drop(pool);
    }
    clean.check();
}
