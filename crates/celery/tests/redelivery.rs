//! At-least-once delivery: a worker killed with SIGKILL mid-task leaves its
//! message unacked; another worker restores it after the visibility timeout
//! and runs it again.

mod common;

use celery::testing::tasks as test_tasks;
use celery::{tasks, CeleryExecutor};
use common::*;

#[test]
fn a_task_whose_worker_is_killed_mid_run_is_redelivered_to_another_worker() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let marker =
        std::env::temp_dir().join(format!("celery-redeliver-{}", celery::id::new_task_id()));
    let ex = CeleryExecutor::builder(&url)
        .registry(test_tasks::registry())
        .connect()
        .unwrap();
    // Worker A (tasks in worker processes): default visibility timeout (an
    // hour), so it restores nothing; a lease of 2 s, which lapses once A is
    // dead (src/lease.rs).
    let mut a = rust_worker(&url, &["-c", "1", "--pool", "processes", "--lease", "2"]);
    let f = ex
        .submit(
            test_tasks::block_first_run,
            marker.to_string_lossy().into_owned(),
        )
        .unwrap();
    // The first run creates the marker, then blocks: A is mid-task.
    wait_until(LONG, "worker A to start the task", || marker.exists());
    let mut c = redis.connect();
    let unacked = c.command(&[b"HLEN", b"unacked"]).unwrap();
    assert_eq!(
        unacked,
        celery::resp::Reply::Integer(1),
        "the running task is recorded as unacked"
    );
    let a_pid = a.pid();
    // SAFETY: kill(2) on our own child's pid, which `a` has not reaped yet.
    assert_eq!(unsafe { libc::kill(a_pid, libc::SIGKILL) }, 0);
    let status = a.0.wait().unwrap();
    assert!(status.code().is_none(), "killed by a signal: {status}");
    // Worker B (tasks on threads: rust.block_first_run returns B's own pid)
    // restores A's message once A's lease lapsed and B's own heartbeat has
    // renewed for a lease period (2 s); its visibility pass (1 s, every
    // 0.2 s) leaves a leased message alone.
    let b = rust_worker(
        &url,
        &[
            "-c",
            "1",
            "--pool",
            "threads",
            "--visibility-timeout",
            "1",
            "--restore-interval",
            "0.2",
            "--lease",
            "2",
        ],
    );
    let pid = f.result_timeout(LONG).unwrap();
    assert_eq!(
        pid,
        b.pid() as u32,
        "the redelivered run happened on worker B"
    );
    assert_ne!(pid, a_pid as u32);
    wait_until(LONG, "the ack to clear the unacked record", || {
        c.command(&[b"HLEN", b"unacked"]).unwrap() == celery::resp::Reply::Integer(0)
    });
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_file(marker.with_extension("pid"));
}

#[test]
fn a_worker_process_killed_mid_task_fails_the_task_with_worker_lost_as_celery_does() {
    // Celery's default (task_reject_on_worker_lost = False): a task whose
    // pool process died is stored as FAILURE WorkerLostError and acked, not
    // redelivered. Our worker does the same with its process pool.
    let redis = RedisServer::start();
    let url = redis.url(0);
    let name = format!("celery-lost-{}", celery::id::new_task_id());
    let marker = std::env::temp_dir().join(&name);
    let pid_file = std::env::temp_dir().join(format!("{name}.pid"));
    let _w = rust_worker(&url, &["-c", "1", "--pool", "processes"]);
    let ex = CeleryExecutor::builder(&url)
        .registry(test_tasks::registry())
        .connect()
        .unwrap();
    let f = ex
        .submit(
            test_tasks::block_first_run,
            marker.to_string_lossy().into_owned(),
        )
        .unwrap();
    wait_until(LONG, "the task to start in a worker process", || {
        pid_file.exists()
    });
    let child: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(
        child,
        _w.pid(),
        "the task runs in a pool process, not the worker itself"
    );
    // SAFETY: kill(2) on a pid read from the task; it is alive and blocked
    // (it wrote the file and parks forever).
    assert_eq!(unsafe { libc::kill(child, libc::SIGKILL) }, 0);
    match f.result_timeout(LONG) {
        Err(future::FutureError::Task(e)) => {
            assert_eq!(e.name(), "WorkerLostError");
            assert!(e.to_string().contains("SIGKILL"), "{e}");
        }
        other => panic!("expected WorkerLostError, got {other:?}"),
    }
    // The worker goes on with a fresh pool process.
    let g = ex.submit_fallible(tasks::add, (1, 2)).unwrap();
    assert_eq!(g.result_timeout(LONG).unwrap(), 3);
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_file(&pid_file);
}
