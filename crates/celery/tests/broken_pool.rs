//! A worker whose process pool is broken (its fork server is gone) must not
//! acknowledge what it could not run: the messages it fetched go back to
//! their queue for a healthy worker, and it stops fetching and exits
//! non-zero, saying why.

mod common;

use celery::resp::Reply;
use celery::{tasks, CeleryExecutor};
use common::*;

/// The children of process `pid` (from every thread's `children` file).
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    threads
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

#[test]
fn a_worker_with_a_broken_pool_returns_its_tasks_to_the_queue_and_exits_non_zero() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let mut a = Spawned::start(&url, || {}, &["-c", "1", "--pool", "processes"]);
    // Its only child is the fork server (pool processes are forked from the
    // fork server on demand, and no task has run yet).
    let mut fork_server = Vec::new();
    wait_until(LONG, "worker A's fork server", || {
        fork_server = children_of(a.pid());
        fork_server.len() == 1
    });
    // SAFETY: kill(2) on a child of our child, alive (listed just now) and
    // not reaped: it is worker A's to reap.
    assert_eq!(unsafe { libc::kill(fork_server[0], libc::SIGKILL) }, 0);
    let ex = CeleryExecutor::builder(&url)
        .registry(tasks::builtin())
        .connect()
        .unwrap();
    let sums: Vec<_> = (0..5i64)
        .map(|i| ex.submit_fallible(tasks::add, (i, 100)).unwrap())
        .collect();
    let code = a.wait_exit();
    assert!(
        code.is_some_and(|c| c != 0),
        "worker A exits non-zero: {code:?}"
    );
    assert!(
        a.stderr().contains("process pool"),
        "worker A says why: {}",
        a.stderr()
    );
    let mut c = redis.connect();
    assert_eq!(
        c.command(&[b"HLEN", b"unacked"]).unwrap(),
        Reply::Integer(0),
        "worker A holds no message"
    );
    assert_eq!(
        c.command(&[b"LLEN", b"celery"]).unwrap(),
        Reply::Integer(5),
        "all five are back on the queue (none acked as a failure)"
    );
    // A healthy worker runs all five.
    let _b = rust_worker(&url, &["-c", "2", "--pool", "threads"]);
    for (i, f) in sums.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i as i64 + 100);
    }
}

/// A worker whose process pool cannot start (here: no process registry was
/// installed) returns the error, and the threads it started before (the
/// pidbox listener, the restore rounds, the heartbeat) end with it: a
/// program that goes on after the error keeps none of them running.
#[test]
fn a_worker_whose_pool_cannot_start_leaves_no_thread_running() {
    let redis = RedisServer::start();
    let mut config = celery::WorkerConfig::new(&redis.url(0));
    config.pool = celery::PoolKind::Processes;
    let worker = celery::Worker::new(config, tasks::builtin());
    let err = worker.run().unwrap_err();
    assert!(
        err.to_string().contains("install_process_registry"),
        "{err}"
    );
    // `run` returned: whatever it started is joined (no wait needed).
    let left: Vec<(&str, usize)> = ["celery-pidbox", "celery-restore", "celery-lease"]
        .into_iter()
        .map(|name| (name, threads_named(name)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(left.is_empty(), "threads left running: {left:?}");
}
