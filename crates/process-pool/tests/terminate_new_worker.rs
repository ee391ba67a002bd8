//! `terminate_workers` must end a worker forked a moment ago, in a program
//! that ignores SIGTERM.
//!
//! The fork server keeps what the user ignored, so a new worker starts with
//! SIGTERM ignored and sets it to its default itself (`worker_signals`), a
//! few system calls after `fork`. A SIGTERM sent in between (the pool may
//! assign the task and be told to terminate before a loaded machine has
//! run the child at all) is discarded by the kernel on arrival, the worker
//! then runs its task forever, and a waited shutdown hangs.
//!
//! The test makes that window certain instead of likely: it traces the fork
//! server (`PTRACE_O_TRACEFORK`), so the new worker stops before its first
//! instruction; it terminates the pool while the worker is stopped there,
//! then lets the worker go. (A traced process keeps even an ignored signal
//! pending; on release it is delivered, or discarded, by the worker's own
//! disposition and mask, exactly as if it had arrived at that point.)

#[path = "common/checks.rs"]
mod common;

use std::time::{Duration, Instant};

use common::clean;
use future::{FutureError, TaskError};
use process_pool::{ProcessPoolExecutor, WorkerTerminated};

// SAFETY (ctor's contract): this runs before main, single-threaded, and only
// changes this process's SIGTERM disposition, then forks the fork server
// (this binary uses `common/checks.rs` without its constructor).
#[ctor::ctor]
unsafe fn ignore_sigterm_before_main() {
    common::PARENT_PID.get_or_init(std::process::id);
    // SAFETY: a plain disposition change, before any thread exists.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    process_pool::start_fork_server();
}

/// Never ends by itself: only a signal ends it.
fn endless(_: ()) -> u64 {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A hang guard: far beyond anything this needs on a loaded machine.
const GUARD: Duration = Duration::from_secs(60);

/// Waits for a ptrace stop of `pid`; returns the raw wait status.
fn wait_stop(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid writes only the status word we own.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
    assert_eq!(
        r,
        pid,
        "waitpid({pid}): {}",
        std::io::Error::last_os_error()
    );
    status
}

fn ptrace(request: libc::c_uint, pid: i32, data: usize) -> libc::c_long {
    // SAFETY: requests on a process this thread traces; `data` is an
    // option word, a signal number, or the address of a c_ulong we own.
    unsafe { libc::ptrace(request, pid, std::ptr::null_mut::<libc::c_void>(), data) }
}

/// SIGKILLs the worker if the test fails while it lives, so that nothing
/// outlives the test.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill has no memory effects; a pid already gone gives ESRCH.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

#[test]
fn terminate_workers_ends_a_worker_that_has_not_yet_set_its_signals() {
    let clean = clean();
    let server = process_pool::fork_server_info()
        .expect("the fork server was started before main")
        .pid;
    let seized = ptrace(
        libc::PTRACE_SEIZE,
        server,
        libc::PTRACE_O_TRACEFORK as usize,
    );
    assert_eq!(
        seized,
        0,
        "PTRACE_SEIZE of the fork server failed ({}): this test needs ptrace of \
         one's own child processes (allow it in the container's seccomp profile \
         or Yama's ptrace_scope)",
        std::io::Error::last_os_error()
    );

    let pool = ProcessPoolExecutor::new(1).unwrap();
    let fut = pool.submit(endless, ()).unwrap();

    // The fork server forks the worker: take the new pid, let the server go.
    let status = wait_stop(server);
    assert_eq!(
        status >> 8,
        libc::SIGTRAP | (libc::PTRACE_EVENT_FORK << 8),
        "expected the fork server's fork event, got wait status {status:#x}"
    );
    let mut worker: libc::c_ulong = 0;
    ptrace(
        libc::PTRACE_GETEVENTMSG,
        server,
        &mut worker as *mut libc::c_ulong as usize,
    );
    let worker = worker as i32;
    let _kill = KillOnDrop(worker);
    ptrace(libc::PTRACE_DETACH, server, 0);
    // The new worker is traced too, and stopped before its first instruction.
    let status = wait_stop(worker);
    assert!(
        libc::WIFSTOPPED(status),
        "the new worker should be stopped, wait status {status:#x}"
    );

    // The task is assigned (its frame waits in the worker's pipe); terminate.
    let deadline = Instant::now() + GUARD;
    while pool.stats().tasks_running != 1 {
        assert!(
            Instant::now() < deadline,
            "the task was never handed to the worker"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    pool.terminate_workers();
    match fut.result_timeout(GUARD) {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            assert!(e.downcast_ref::<WorkerTerminated>().is_some(), "{e:?}")
        }
        other => panic!("expected WorkerTerminated, got {other:?}"),
    }
    // The fork server has sent SIGTERM (the future failed after its reply).
    // Let the worker run from where fork left it.
    ptrace(libc::PTRACE_DETACH, worker, 0);

    let deadline = Instant::now() + GUARD;
    while std::path::Path::new(&format!("/proc/{worker}")).exists()
        && common::workers().contains(&worker)
    {
        assert!(
            Instant::now() < deadline,
            "worker {worker} got SIGTERM before it had set its own signals, and \
             still runs its task {GUARD:?} later: the signal was lost"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(pool);
    clean.check();
}
