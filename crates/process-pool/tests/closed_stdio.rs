//! Closed standard descriptors. Daemons and some
//! supervisors start programs with fds 0-2 closed, or close them later. The
//! pool's private descriptors (the fork server's socket and signalfd, the
//! doorbell, the worker pipes) must never take those numbers, or a task's
//! `println!` lands in the fork server's control socket and is read as a
//! request.
//!
//! Before `main`, this binary closes 0, 1 and 2 and starts the fork server;
//! then it gives the test harness its stdout and stderr back (on 1 and 2
//! only: a pre-fix pool's socket sat on 0). Rust's runtime would reopen
//! closed standard descriptors on `/dev/null` before `main`, which is why
//! this happens in a constructor.

#[path = "common/checks.rs"]
mod common;

use common::{clean, T};
use process_pool::{ProcessPoolExecutor, SharedBytes};

// SAFETY (ctor's contract): runs before main, single-threaded; it only
// moves this process's standard descriptors around and forks the fork
// server.
#[ctor::ctor]
unsafe fn close_stdio_then_start() {
    common::PARENT_PID.get_or_init(std::process::id);
    // SAFETY: descriptor juggling on descriptors this process owns; nothing
    // else runs yet.
    unsafe {
        let out = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 100);
        let err = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 100);
        for fd in 0..3 {
            libc::close(fd);
        }
        process_pool::start_fork_server();
        if out >= 0 {
            libc::dup2(out, 1);
            libc::close(out);
        }
        if err >= 0 {
            libc::dup2(err, 2);
            libc::close(err);
        }
    }
}

/// Prints a lot on stdout and stderr, then returns its pid.
fn chatty(lines: u32) -> u32 {
    for i in 0..lines {
        println!("stdout line {i} from a task: hello, protocol");
        eprintln!("stderr line {i} from a task");
    }
    std::process::id()
}

fn link(pid: u32, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

#[test]
fn a_task_that_prints_with_closed_stdio_cannot_corrupt_the_protocol() {
    let clean = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futs: Vec<_> = (0..20).map(|_| pool.submit(chatty, 500).unwrap()).collect();
    let mut pids = Vec::new();
    for f in futs {
        pids.push(f.result_timeout(T).unwrap());
    }
    // (Checked only now: the fork server may not have run at all before it
    // answered its first request.)
    let server = process_pool::fork_server_info().unwrap().pid as u32;
    for fd in 0..3 {
        assert_eq!(link(server, fd), "/dev/null", "fork server fd {fd}");
    }
    pids.sort_unstable();
    pids.dedup();
    for &pid in &pids {
        for fd in 0..3 {
            assert_eq!(link(pid, fd), "/dev/null", "worker {pid} fd {fd}");
        }
    }
    let stats = pool.stats();
    assert_eq!(stats.tasks_completed, 20, "{stats:?}");
    assert_eq!(stats.workers_started, pids.len() as u64, "{stats:?}");
    drop(pool);
    clean.check();
}

#[test]
fn pool_descriptors_never_take_a_closed_standard_number() {
    let clean = clean();
    // stdin, closed now while the program runs (1 and 2 stay for the
    // harness): no descriptor the pool creates or receives may land on it.
    // SAFETY: closing our own stdin; nothing in this test binary reads it.
    unsafe { libc::close(0) };
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futs: Vec<_> = (0..4).map(|_| pool.submit(chatty, 10).unwrap()).collect();
    for f in futs {
        f.result_timeout(T).unwrap();
    }
    let me = std::process::id();
    assert_eq!(link(me, 0), "<No such file or directory (os error 2)>");
    drop(pool);
    // SAFETY: gives stdin back (on /dev/null, the lowest free number: 0).
    assert_eq!(
        unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) },
        0
    );
    clean.check();
}

/// A result that crosses as a descriptor (a sealed memfd), kept open by the
/// `SharedBytes` that maps it.
fn shared(len: usize) -> SharedBytes {
    SharedBytes::from_slice(&vec![7u8; len]).unwrap()
}

#[test]
fn a_shared_bytes_result_never_takes_a_closed_standard_number() {
    let clean = clean();
    // SAFETY: closing our own stdin; nothing in this test binary reads it.
    unsafe { libc::close(0) };
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let result = pool
        .submit(shared, 1 << 16)
        .unwrap()
        .result_timeout(T)
        .unwrap();
    assert_eq!(result.len(), 1 << 16);
    let me = std::process::id();
    // The memfd it holds open is not on 0.
    assert_eq!(link(me, 0), "<No such file or directory (os error 2)>");
    drop(result);
    drop(pool);
    // SAFETY: gives stdin back (on /dev/null, the lowest free number: 0).
    assert_eq!(
        unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) },
        0
    );
    clean.check();
}
