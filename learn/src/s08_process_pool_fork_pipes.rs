//! Process pool, step 1: fork, two pipes and one blocking worker.
//!
//! A worker is a `fork()` of this process. The parent writes a task (a `u64`)
//! into the *task* pipe; the child runs `f` on it and writes the answer into
//! the *result* pipe. Closing the task pipe is the shutdown: the child reads
//! EOF and exits, and the parent reaps it with `waitpid` (else: a zombie).
//! `fork()` copies only the calling thread, so a lock another thread held
//! (the allocator's, stdout's) stays locked forever in the child: it does only
//! async-signal-safe work (raw `read`/`write`, `f`'s arithmetic, `_exit`), and
//! first closes every other descriptor, since a stray copy of another pipe's
//! write end would keep that pipe from ever reporting EOF.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Moves 8 bytes with `op` (a read or a write); false at EOF or on an error.
fn whole(buf: &mut [u8; 8], op: impl Fn(*mut libc::c_void, usize) -> isize) -> bool {
    let mut done = 0;
    while done < 8 {
        match op(buf[done..].as_mut_ptr().cast(), 8 - done) {
            n @ 1.. => done += n as usize,
            -1 if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => return false,
        }
    }
    true
}

pub fn send(fd: RawFd, x: u64) -> bool {
    // SAFETY: `whole` passes a pointer and length within its buffer.
    whole(&mut x.to_le_bytes(), |at, len| unsafe { libc::write(fd, at, len) })
}

pub fn recv(fd: RawFd) -> Option<u64> {
    let mut buf = [0; 8];
    // SAFETY: as in `send`.
    whole(&mut buf, |at, len| unsafe { libc::read(fd, at, len) }).then(|| u64::from_le_bytes(buf))
}

/// The child's whole life: keep two descriptors, answer tasks until EOF.
pub fn serve(f: fn(u64) -> u64, task: RawFd, result: RawFd) -> ! {
    let (lo, hi) = (task.min(result) as u32, task.max(result) as u32);
    for (first, end) in [(3, lo), (lo + 1, hi), (hi + 1, u32::MAX)] {
        if first.max(3) < end {
            // SAFETY: close_range (Linux 5.9+) only closes; neither kept fd is in range.
            unsafe { libc::syscall(libc::SYS_close_range, first.max(3), end - 1, 0) };
        }
    }
    while let Some(x) = recv(task) {
        if !send(result, f(x)) {
            break;
        }
    }
    // SAFETY: ends the process at once, running no destructor or atexit hook.
    unsafe { libc::_exit(0) }
}

pub struct Worker {
    pub pid: i32,
    task: Option<OwnedFd>,
    pub result: OwnedFd,
}

impl Worker {
    /// Forks a worker answering `x` with `f(x)`; `f` must be async-signal-safe.
    pub fn spawn(f: fn(u64) -> u64) -> io::Result<Worker> {
        let ((task_r, task_w), (result_r, result_w)) = (nix::unistd::pipe()?, nix::unistd::pipe()?);
        // SAFETY: the child only calls `serve`, which is async-signal-safe
        // as long as `f` is (the caller's promise): see the module docs.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => serve(f, task_r.as_raw_fd(), result_w.as_raw_fd()),
            pid => Ok(Worker { pid, task: Some(task_w), result: result_r }),
        }
    }

    pub fn send(&self, x: u64) -> bool {
        self.task.as_ref().is_some_and(|task| send(task.as_raw_fd(), x))
    }

    pub fn call(&self, x: u64) -> io::Result<u64> {
        let answer = if self.send(x) { recv(self.result.as_raw_fd()) } else { None };
        answer.ok_or_else(|| io::Error::other(format!("worker {} died", self.pid)))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Close the task pipe (the child reads end-of-file and exits), then reap.
        self.task = None;
        // SAFETY: waitpid on our own child, with no status buffer.
        while unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}

/// The demo: `cargo run -p learn -- s08`.
pub fn main() {
    let Ok(worker) = Worker::spawn(|x| x * x) else { return eprintln!("cannot fork a worker") };
    for x in [3, 4] {
        println!("parent: {x} -> worker -> {:?}", worker.call(x));
    }
    drop(worker);
    println!("parent: closed the task pipe; the worker exited and was reaped");
}

// The production crate adds: length-prefixed frames of serde values, many
// tasks in flight per worker, and workers forked by a fork server (step 3).
// See `run` in `crates/process-pool/src/child/worker.rs`.
