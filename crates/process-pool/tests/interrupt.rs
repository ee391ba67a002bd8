//! `interrupt(&future)`: one task stopped wherever it is. Pending: cancelled.
//! Running: SIGTERM to its worker, SIGKILL after the grace period, the
//! worker replaced, the future failed with `TerminatedByRequest` naming the
//! step that took effect; the tasks queued behind it run elsewhere.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{clean, wait_until, T};
use future::{Future, FutureError, Interrupt, TaskError};
use process_pool::{ExitCause, ProcessPoolExecutor, TerminatedByRequest, WorkerDeath};

/// Runs until a signal ends its worker.
fn forever(_: ()) -> u64 {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn square(x: u64) -> u64 {
    x * x
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

/// Ignores SIGTERM (a task that will not stop politely), says so by
/// creating `marker`, then runs until SIGKILL.
fn ignores_sigterm(marker: String) -> u64 {
    // SAFETY: setting a disposition to SIG_IGN has no preconditions; this
    // runs in a single-threaded pool worker.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    std::fs::write(&marker, b"ignoring SIGTERM").unwrap();
    forever(())
}

extern "C" fn exit_three(_: libc::c_int) {
    // SAFETY: `_exit` is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(3) }
}

/// Cleans up on SIGTERM the way a careful task does: its handler exits
/// with code 3. Creates `marker` once the handler is installed.
fn exits_on_sigterm(marker: String) -> u64 {
    // SAFETY: installs an async-signal-safe handler (it only calls
    // `_exit`); this runs in a single-threaded pool worker.
    unsafe { libc::signal(libc::SIGTERM, exit_three as *const () as libc::sighandler_t) };
    std::fs::write(&marker, b"handler installed").unwrap();
    forever(())
}

fn marker(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "process-pool-interrupt-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

fn terminated(r: Result<u64, FutureError>) -> TerminatedByRequest {
    match r {
        Err(FutureError::Task(TaskError::Executor(e))) => e
            .downcast_ref::<TerminatedByRequest>()
            .unwrap_or_else(|| panic!("expected TerminatedByRequest, got {e:?}"))
            .clone(),
        other => panic!("expected TerminatedByRequest, got {other:?}"),
    }
}

/// A pool of one worker, to be configured further.
fn one_worker() -> process_pool::Builder {
    ProcessPoolExecutor::builder().max_workers(1)
}

/// Submits [`forever`] and waits until it runs.
fn run_forever(pool: &ProcessPoolExecutor) -> Future<u64> {
    let running = pool.submit(forever, ()).unwrap();
    wait_until("the task to run", || running.running());
    running
}

/// Interrupts the running `task` (the pool answers `Requested`) and returns
/// the error its future ends with.
fn interrupt_running(pool: &ProcessPoolExecutor, task: &Future<u64>) -> TerminatedByRequest {
    assert_eq!(pool.interrupt(task), Interrupt::Requested);
    terminated(task.result_timeout(T))
}

#[test]
fn a_running_task_is_terminated_and_its_worker_replaced() {
    let clean = clean();
    let pool = one_worker().tasks_per_worker(2).build().unwrap();
    let first_pid = pool.submit(pid, ()).unwrap().result_timeout(T).unwrap();
    let running = pool.submit(forever, ()).unwrap();
    // Queued behind it in the same worker's pipe: it has not started.
    let behind = pool.submit(square, 7).unwrap();
    wait_until("the task to run", || running.running());

    let err = interrupt_running(&pool, &running);
    assert_eq!(err.cause, ExitCause::Signaled(libc::SIGTERM));
    assert_eq!(err.signal(), Some("SIGTERM"));
    assert!(!err.escalated);
    assert_eq!(err.pid as u32, first_pid);
    let text = err.to_string();
    assert!(text.starts_with("terminated by request"), "{text}");
    assert!(text.contains("SIGTERM"), "{text}");

    // The task behind it ran, on a fresh worker; the pool goes on.
    assert_eq!(behind.result_timeout(T).unwrap(), 49);
    let next_pid = pool.submit(pid, ()).unwrap().result_timeout(T).unwrap();
    assert_ne!(next_pid, first_pid);
    assert_eq!(pool.interrupt(&running), Interrupt::AlreadyDone);
    drop(pool);
    clean.check();
}

#[test]
fn a_task_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let clean = clean();
    let pool = one_worker()
        .interrupt_grace(Duration::from_millis(200))
        .build()
        .unwrap();
    let path = marker("ignores");
    let running = pool
        .submit(ignores_sigterm, path.display().to_string())
        .unwrap();
    wait_until("the task to ignore SIGTERM", || path.exists());

    let err = interrupt_running(&pool, &running);
    assert_eq!(err.cause, ExitCause::Signaled(libc::SIGKILL));
    assert!(err.escalated);
    let text = err.to_string();
    assert!(
        text.contains("after SIGTERM") && text.contains("SIGKILL"),
        "{text}"
    );
    assert_eq!(
        pool.submit(square, 3).unwrap().result_timeout(T).unwrap(),
        9
    );
    let _ = std::fs::remove_file(&path);
    drop(pool);
    clean.check();
}

#[test]
fn a_sigterm_handler_that_exits_is_reported_with_its_code() {
    let clean = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let path = marker("exits");
    let running = pool
        .submit(exits_on_sigterm, path.display().to_string())
        .unwrap();
    wait_until("the task's handler to be installed", || path.exists());
    let err = interrupt_running(&pool, &running);
    assert_eq!(err.cause, ExitCause::Exited(3));
    assert!(!err.escalated);
    assert_eq!(err.signal(), None);
    let _ = std::fs::remove_file(&path);
    drop(pool);
    clean.check();
}

#[test]
fn zero_grace_sends_sigkill_at_once() {
    let clean = clean();
    let pool = one_worker()
        .interrupt_grace(Duration::ZERO)
        .build()
        .unwrap();
    let running = run_forever(&pool);
    let err = interrupt_running(&pool, &running);
    assert_eq!(err.cause, ExitCause::Signaled(libc::SIGKILL));
    assert!(!err.escalated, "no SIGTERM came first");
    assert!(err.to_string().contains("SIGKILL at once"), "{err}");
    drop(pool);
    clean.check();
}

#[test]
fn a_pending_task_is_cancelled_and_a_finished_one_left_alone() {
    let clean = clean();
    let pool = one_worker().tasks_per_worker(1).build().unwrap();
    let done = pool.submit(square, 2).unwrap();
    assert_eq!(done.result_timeout(T).unwrap(), 4);
    assert_eq!(pool.interrupt(&done), Interrupt::AlreadyDone);

    let running = run_forever(&pool);
    let queued = pool.submit(square, 5).unwrap();
    assert_eq!(pool.interrupt(&queued), Interrupt::Cancelled);
    assert!(matches!(
        queued.result_timeout(T),
        Err(FutureError::Cancelled)
    ));
    interrupt_running(&pool, &running);
    drop(pool);
    clean.check();
}

#[test]
fn a_task_held_behind_another_is_interrupted_when_it_starts() {
    let clean = clean();
    let pool = one_worker().tasks_per_worker(2).build().unwrap();
    let first = pool.submit(forever, ()).unwrap();
    let second = pool.submit(forever, ()).unwrap();
    wait_until("both tasks to be handed to the worker", || {
        first.running() && second.running()
    });
    // The second waits in the worker's pipe: marked, not yet signalled.
    assert_eq!(pool.interrupt(&second), Interrupt::Requested);
    assert_eq!(pool.interrupt(&first), Interrupt::Requested);
    terminated(first.result_timeout(T));
    // Re-queued when the first's worker went, then interrupted on its new
    // worker as soon as it started there.
    terminated(second.result_timeout(T));
    assert_eq!(
        pool.submit(square, 4).unwrap().result_timeout(T).unwrap(),
        16
    );
    drop(pool);
    clean.check();
}

#[test]
fn a_huge_grace_never_escalates_and_shutdown_still_returns() {
    let clean = clean();
    let pool = one_worker().interrupt_grace(Duration::MAX).build().unwrap();
    let running = run_forever(&pool);
    let err = interrupt_running(&pool, &running);
    assert_eq!(err.cause, ExitCause::Signaled(libc::SIGTERM));
    drop(pool);
    clean.check();
}

#[test]
fn interrupt_works_after_shutdown_and_the_waited_shutdown_returns() {
    let clean = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let running = run_forever(&pool);
    // A shutdown that does not wait leaves the endless task running ...
    pool.shutdown(false, true);
    // ... and interrupt still reaches it, so the waited one can return.
    interrupt_running(&pool, &running);
    pool.shutdown(true, false);
    drop(pool);
    clean.check();
}

#[test]
fn an_interrupt_does_not_break_a_pool_that_breaks_on_worker_death() {
    let clean = clean();
    let pool = one_worker()
        .on_worker_death(WorkerDeath::BreakPool)
        .build()
        .unwrap();
    let running = run_forever(&pool);
    interrupt_running(&pool, &running);
    // The death was asked for, not unexpected: the pool is not broken.
    assert_eq!(
        pool.submit(square, 8).unwrap().result_timeout(T).unwrap(),
        64
    );
    drop(pool);
    clean.check();
}

#[test]
fn interrupt_with_a_task_timeout_configured_reports_the_request_not_the_timeout() {
    let clean = clean();
    let pool = one_worker().task_timeout(T * 4).build().unwrap();
    let running = run_forever(&pool);
    let err = interrupt_running(&pool, &running);
    assert_eq!(err.cause, ExitCause::Signaled(libc::SIGTERM));
    drop(pool);
    clean.check();
}
