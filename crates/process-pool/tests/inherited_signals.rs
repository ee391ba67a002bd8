//! A parent with unusual signal settings.
//!
//! Before `main` (and before the fork server starts) this binary does what
//! daemons, `nohup` and `sigwait`-style programs do: it ignores SIGCHLD (the
//! kernel then reaps children by itself), SIGHUP, SIGTERM and SIGUSR1,
//! blocks SIGTERM and catches SIGUSR2. The rule (as in CPython): what the
//! user ignored stays ignored in the fork server and the workers, handlers
//! are reset, and the pool overrides only what it depends on:
//!
//! * SIGCHLD at its default in the fork server, so that with SIGCHLD
//!   ignored a worker's death is still reported with its real status (not
//!   `Unknown` after a grace period) and the fork server keeps no stale pid
//!   or status pipe for it (the workers get the user's SIGCHLD back);
//! * SIGTERM at its default and unblocked in workers, so that
//!   `terminate_workers` still ends a running task;
//! * SIGINT and SIGPIPE ignored in both (Ctrl-C is for the pool's process
//!   to handle; a write to a pool that is gone gives EPIPE);
//! * with SIGHUP ignored, a hangup kills neither the fork server nor a
//!   running task.

#[path = "common/checks.rs"]
mod common;

use std::mem::ManuallyDrop;

use common::{clean, wait_until, T};
use future::{FutureError, TaskError};
use process_pool::{ExitCause, ProcessPoolExecutor, WorkerDied, WorkerTerminated};

extern "C" fn on_usr2(_: libc::c_int) {}

// SAFETY (ctor's contract): this runs before main, single-threaded, and only
// changes this process's signal dispositions and mask, then forks the fork
// server (this binary uses `common/checks.rs` without its constructor, so
// nothing starts the fork server before these settings are made).
#[ctor::ctor]
unsafe fn odd_signal_settings_before_main() {
    common::PARENT_PID.get_or_init(std::process::id);
    // SAFETY: plain disposition changes; `on_usr2` is async-signal-safe
    // (it does nothing).
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        // `nohup`: a terminal hangup must not kill what the user protected.
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGUSR2, on_usr2 as *const () as libc::sighandler_t);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    process_pool::start_fork_server();
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn abort(_: ()) -> u64 {
    std::process::abort()
}

/// Never ends by itself: only a signal ends it.
fn endless(_: ()) -> u64 {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn square(x: u64) -> u64 {
    x * x
}

/// A signal-mask line of `/proc/<pid>/status` (SigBlk, SigIgn, SigCgt),
/// without the two signals the C library reserves for itself (32 and 33 in
/// glibc), which a program cannot change through `sigaction`.
fn mask(pid: u32, field: &str) -> u64 {
    raw_mask(pid, field) & !((1u64 << 31) | (1u64 << 32))
}

fn raw_mask(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:\t")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

fn bits(signals: &[libc::c_int]) -> u64 {
    signals.iter().map(|&s| 1u64 << (s - 1)).sum()
}

fn fork_server_pid() -> u32 {
    process_pool::fork_server_info().unwrap().pid as u32
}

fn fd_count_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn fork_server_and_workers_start_from_their_own_signal_state() {
    let clean = clean();
    // The parent really has the odd settings (the test would prove nothing
    // otherwise).
    let me = std::process::id();
    assert_ne!(mask(me, "SigBlk") & bits(&[libc::SIGTERM]), 0);
    assert_ne!(
        mask(me, "SigIgn") & bits(&[libc::SIGCHLD, libc::SIGUSR1]),
        0
    );
    assert_ne!(mask(me, "SigCgt") & bits(&[libc::SIGUSR2]), 0);

    let pool = ProcessPoolExecutor::new(1).unwrap();
    let worker = pool.submit(pid, ()).unwrap().result_timeout(T).unwrap();
    // Rust's runtime may catch SIGSEGV and SIGBUS (its stack-overflow
    // report); those handlers are kept on purpose. Nothing else is caught.
    let rust_handlers = bits(&[libc::SIGSEGV, libc::SIGBUS]);
    let server = fork_server_pid();
    assert_eq!(
        mask(server, "SigBlk"),
        bits(&[libc::SIGCHLD]),
        "fork server mask"
    );
    // The user's ignored signals (SIGCHLD excepted: the fork server reaps
    // its workers itself), and its own two.
    assert_eq!(
        mask(server, "SigIgn"),
        bits(&[
            libc::SIGHUP,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGINT,
            libc::SIGPIPE
        ]),
        "fork server ignores"
    );
    assert_eq!(
        mask(server, "SigCgt") & !rust_handlers,
        0,
        "fork server catches"
    );
    assert_eq!(mask(worker, "SigBlk"), 0, "worker mask");
    // The user's ignored signals (SIGCHLD back, SIGTERM not: it is how
    // `terminate_workers` ends a task), SIGINT and SIGPIPE.
    assert_eq!(
        mask(worker, "SigIgn"),
        bits(&[
            libc::SIGHUP,
            libc::SIGCHLD,
            libc::SIGUSR1,
            libc::SIGINT,
            libc::SIGPIPE
        ]),
        "worker ignores"
    );
    assert_eq!(mask(worker, "SigCgt") & !rust_handlers, 0, "worker catches");
    drop(pool);
    clean.check();
}

#[test]
fn with_sigchld_ignored_deaths_are_reported_with_their_status() {
    let clean = clean();
    let server_fds = fd_count_of(fork_server_pid());
    let pool = ProcessPoolExecutor::new(1).unwrap();
    for round in 0..3u64 {
        match pool.submit(abort, ()).unwrap().result_timeout(T) {
            Err(FutureError::Task(TaskError::Executor(e))) => {
                let died = e.downcast_ref::<WorkerDied>().expect("WorkerDied");
                // Not `Unknown`: the fork server reaped the worker itself.
                assert_eq!(died.cause, ExitCause::Signaled(libc::SIGABRT), "{died}");
            }
            other => panic!("expected WorkerDied, got {other:?}"),
        }
        let ok = pool.submit(square, round).unwrap().result_timeout(T);
        assert_eq!(ok.unwrap(), round * round);
    }
    let stats = pool.stats();
    assert_eq!(stats.worker_exits.signal, 3, "{stats:?}");
    drop(pool);
    // The fork server keeps no status pipe of a dead worker. (It closes
    // each one just after writing the status the pool waits for, so the
    // count may lag an instant behind the pool's drop.)
    wait_until(
        "the fork server to close the dead workers' status pipes",
        || fd_count_of(fork_server_pid()) == server_fds,
    );
    clean.check();
}

#[test]
fn with_sigterm_blocked_and_ignored_terminate_workers_still_ends_the_task() {
    let clean = clean();
    // If the worker kept running, dropping the pool would wait forever:
    // keep it out of the unwinding path so a failure fails, not hangs.
    let pool = ManuallyDrop::new(ProcessPoolExecutor::new(1).unwrap());
    let fut = pool.submit(endless, ()).unwrap();
    wait_until("the endless task to be running", || {
        pool.stats().tasks_running == 1
    });
    pool.terminate_workers();
    match fut.result_timeout(T) {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            assert!(e.downcast_ref::<WorkerTerminated>().is_some(), "{e:?}")
        }
        other => panic!("expected WorkerTerminated, got {other:?}"),
    }
    // The worker really dies of the SIGTERM (the future fails at once
    // either way; the process must go too).
    wait_until("the terminated worker to exit", || {
        common::workers().is_empty()
    });
    ManuallyDrop::into_inner(pool).shutdown(true, false);
    clean.check();
}

#[test]
fn with_sigterm_blocked_and_ignored_interrupt_ends_the_task_with_sigterm() {
    let clean = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let fut = pool.submit(endless, ()).unwrap();
    wait_until("the endless task to be running", || {
        pool.stats().tasks_running == 1
    });
    assert_eq!(pool.interrupt(&fut), future::Interrupt::Requested);
    match fut.result_timeout(T) {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            let e = e
                .downcast_ref::<process_pool::TerminatedByRequest>()
                .unwrap_or_else(|| panic!("expected TerminatedByRequest, got {e:?}"));
            // SIGTERM itself took effect: the worker did not inherit the
            // ignored, blocked SIGTERM (no escalation to SIGKILL needed).
            assert_eq!(e.cause, ExitCause::Signaled(libc::SIGTERM), "{e}");
            assert!(!e.escalated, "{e}");
        }
        other => panic!("expected TerminatedByRequest, got {other:?}"),
    }
    assert_eq!(
        pool.submit(square, 6).unwrap().result_timeout(T).unwrap(),
        36
    );
    drop(pool);
    clean.check();
}

/// Waits until the file `gate` exists (the test creates it), then returns
/// this worker's pid. Only a signal can end it before that.
fn until_gate(gate: String) -> u32 {
    while !std::path::Path::new(&gate).exists() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::process::id()
}

fn gate_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pp-signals-{}-{name}", std::process::id()))
}

#[test]
fn with_sighup_ignored_a_hangup_kills_neither_the_fork_server_nor_a_running_task() {
    let clean = clean();
    let gate = gate_path("sighup");
    let _ = std::fs::remove_file(&gate);
    let pool = ManuallyDrop::new(ProcessPoolExecutor::new(1).unwrap());
    let fut = pool.submit(until_gate, gate.display().to_string()).unwrap();
    wait_until("the gated task to be running", || {
        pool.stats().tasks_running == 1
    });
    // The hangup a terminal sends (here to each process by pid: the test
    // harness shares its process group with cargo).
    let server = fork_server_pid();
    let workers = common::workers();
    assert_eq!(workers.len(), 1, "{workers:?}");
    for pid in workers.iter().copied().chain([server as i32]) {
        // SAFETY: kill() on a pid of our fork server or one of its children.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    }
    std::fs::write(&gate, b"open").unwrap();
    let ran_in = fut.result_timeout(T);
    let _ = std::fs::remove_file(&gate);
    assert_eq!(
        ran_in.unwrap(),
        workers[0] as u32,
        "the task finished in its worker"
    );
    assert_eq!(
        pool.submit(square, 9).unwrap().result_timeout(T).unwrap(),
        81
    );
    let stats = pool.stats();
    assert_eq!(stats.worker_exits.signal, 0, "{stats:?}");
    assert_eq!(stats.workers_started, 1, "{stats:?}");
    assert_eq!(fork_server_pid(), server);
    ManuallyDrop::into_inner(pool).shutdown(true, false);
    clean.check();
}
