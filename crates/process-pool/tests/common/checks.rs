//! The checks shared by the integration tests: run tests one at a time
//! (they count descriptors and child processes, which other tests' pools
//! would disturb), and check that a test left no zombie and no descriptor
//! behind. `mod.rs` adds the constructor that starts the fork server before
//! `main`; a test binary that must change the process before the fork
//! server starts uses this file alone (`#[path = "common/checks.rs"]`) and
//! starts the fork server from its own constructor.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Generous bound for any single wait: a bug fails the test instead of hanging it.
pub const T: Duration = Duration::from_secs(30);

/// The test process's pid, recorded before the fork server was forked, so
/// code running in a worker can tell it is in a worker.
pub static PARENT_PID: OnceLock<u32> = OnceLock::new();

pub fn in_worker() -> bool {
    PARENT_PID.get().is_some_and(|&p| p != std::process::id())
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the test lock; on drop, checks for zombies and leaked descriptors.
pub struct Clean {
    fds: usize,
    _guard: MutexGuard<'static, ()>,
}

/// Takes the test lock and records the descriptor count.
pub fn clean() -> Clean {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    Clean {
        fds: fd_count(),
        _guard: guard,
    }
}

impl Clean {
    /// Asserts that no descriptor leaked and no child is a zombie or still
    /// a worker. Call after the pool was dropped.
    pub fn check(self) {
        assert_eq!(zombies(), Vec::<i32>::new(), "zombie children left behind");
        let workers = workers();
        assert!(
            workers.is_empty(),
            "worker processes left behind: {workers:?}"
        );
        // The harness may open a descriptor or two of its own for a moment;
        // wait for the count to settle before judging (bounded by `T`, a
        // hang guard a loaded machine cannot miss, not a timing claim).
        let deadline = Instant::now() + T;
        loop {
            let now = fd_count();
            if now <= self.fds {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "descriptors leaked: {} before, {now} after",
                self.fds
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// (pid, ppid, state) of every process.
fn processes() -> Vec<(i32, i32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": comm may contain spaces; split after ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, state));
    }
    out
}

fn fork_server_pid() -> i32 {
    process_pool::fork_server_info()
        .expect("fork server running")
        .pid
}

/// Children of this process or of the fork server in state Z.
pub fn zombies() -> Vec<i32> {
    let me = std::process::id() as i32;
    let fs = fork_server_pid();
    processes()
        .into_iter()
        .filter(|&(_, ppid, state)| (ppid == me || ppid == fs) && state == 'Z')
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Live worker processes (children of the fork server).
pub fn workers() -> Vec<i32> {
    let fs = fork_server_pid();
    processes()
        .into_iter()
        .filter(|&(_, ppid, _)| ppid == fs)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Waits until `cond` holds, failing the test after `T`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A real segmentation fault: a write to a page mapped with no access.
pub fn segfault() -> ! {
    // SAFETY: mapping a fresh anonymous page has no preconditions; the write
    // faults on purpose, which kills this (worker) process with SIGSEGV.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        std::ptr::write_volatile(p.cast::<u8>(), 1);
    }
    std::process::abort()
}
