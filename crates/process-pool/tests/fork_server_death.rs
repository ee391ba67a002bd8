//! The fork server killed from outside: running tasks fail (their workers
//! die with it), queued tasks fail with a broken-pool error because no
//! worker can be started, nothing hangs, and the dead fork server is reaped.
//! (Its own test binary: it kills the process-wide fork server.)

use std::time::Duration;

use future::{FutureError, TaskError};
use process_pool::{ProcessPoolExecutor, SubmitError, WorkerDied};

const T: Duration = Duration::from_secs(30);

// SAFETY (ctor's contract): this runs before main, single-threaded; it
// only records a pid and forks the fork server, touching no other state.
#[ctor::ctor]
unsafe fn start_before_main() {
    process_pool::start_fork_server();
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rfind(')').and_then(|i| stat[i + 2..].chars().next())
}

#[test]
fn killing_the_fork_server_fails_tasks_instead_of_hanging() {
    let fs = process_pool::fork_server_info().unwrap().pid;
    // One task per worker, so the second task stays in the pool's queue
    // instead of being pipelined to the worker that is about to die.
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap();
    assert_eq!(
        pool.submit(sleep_ms, 1).unwrap().result_timeout(T).unwrap(),
        1
    );
    let running = pool.submit(sleep_ms, 20_000).unwrap();
    let deadline = std::time::Instant::now() + T;
    while !running.running() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let queued = pool.submit(sleep_ms, 1).unwrap();
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(fs, libc::SIGKILL) }, 0);

    // The worker dies with its parent (PDEATHSIG); with the fork server gone
    // its exit status is unknown.
    match running.result_timeout(T) {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            let died = e
                .downcast_ref::<WorkerDied>()
                .unwrap_or_else(|| panic!("{e:?}"));
            assert_eq!(died.cause, process_pool::ExitCause::Unknown);
        }
        other => panic!("{other:?}"),
    }
    match queued.result_timeout(T) {
        Err(FutureError::Task(TaskError::BrokenExecutor(msg))) => {
            assert!(msg.contains("fork server is gone"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        pool.submit(sleep_ms, 1),
        Err(SubmitError::Broken(_))
    ));
    drop(pool);
    // The dead fork server was reaped, not left a zombie.
    assert_eq!(state_of(fs), None, "the fork server must be reaped");
    // New pools report the problem instead of hanging.
    let pool = ProcessPoolExecutor::new(1).unwrap();
    match pool.submit(sleep_ms, 1).unwrap().result_timeout(T) {
        Err(FutureError::Task(TaskError::BrokenExecutor(msg))) => {
            assert!(msg.contains("gone"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}
