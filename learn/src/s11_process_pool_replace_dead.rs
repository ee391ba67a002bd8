//! Process pool, step 4: replacing a dead worker.
//!
//! Step 2's `poll()` loop over step 3's fork server. A worker that dies (a
//! crash, the OOM killer, `kill -9`) shows as end-of-file on its result pipe
//! (writes to it fail with EPIPE: Rust ignores SIGPIPE). The pool forks a
//! replacement, has the server reap the dead one, and fails only its item.

use crate::s08_process_pool_fork_pipes::{recv, send};
use crate::s09_process_pool_poll_loop::readable;
use crate::s10_process_pool_fork_server::ForkServer;
use std::os::fd::{AsRawFd, OwnedFd};
use std::{fmt, io};

/// The error of an item whose worker died: which item, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerDied {
    pub item: usize,
    pub status: i32,
}

impl fmt::Display for WorkerDied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.status {
            s if libc::WIFSIGNALED(s) => format!("was killed by signal {}", libc::WTERMSIG(s)),
            s => format!("exited with status {}", libc::WEXITSTATUS(s)),
        };
        write!(f, "the worker running item {} {how}; the pool replaced it", self.item)
    }
}

type Worker = (i32, OwnedFd, OwnedFd); // pid, task pipe, result pipe

pub struct Pool<'s> {
    server: &'s ForkServer,
    f: fn(u64) -> u64,
    workers: Vec<Worker>,
    pub replaced: usize,
}

impl<'s> Pool<'s> {
    pub fn new(server: &'s ForkServer, n: usize, f: fn(u64) -> u64) -> io::Result<Self> {
        let workers = (0..n.max(1)).map(|_| server.spawn(f)).collect::<io::Result<_>>()?;
        Ok(Pool { server, f, workers, replaced: 0 })
    }

    /// Step 2's loop; an item whose worker died is an `Err`, the rest go on.
    pub fn map(&mut self, items: &[u64]) -> io::Result<Vec<Result<u64, WorkerDied>>> {
        let mut results = vec![Ok(0); items.len()];
        let mut running: Vec<Option<usize>> = vec![None; self.workers.len()];
        let mut next = 0;
        loop {
            for (worker, item) in self.workers.iter().zip(&mut running) {
                if item.is_none() && next < items.len() {
                    send(worker.1.as_raw_fd(), items[next]); // if it failed: EOF below
                    (*item, next) = (Some(next), next + 1);
                }
            }
            let busy: Vec<usize> = (0..running.len()).filter(|&w| running[w].is_some()).collect();
            if busy.is_empty() {
                return Ok(results);
            }
            let fds: Vec<_> = busy.iter().map(|&w| self.workers[w].2.as_raw_fd()).collect();
            for w in readable(&fds)?.into_iter().map(|i| busy[i]) {
                let item = running[w].take().unwrap_or_default(); // Some: `w` is busy
                results[item] = match recv(self.workers[w].2.as_raw_fd()) {
                    Some(answer) => Ok(answer),
                    None => Err(self.replace(w, item)?),
                };
            }
        }
    }

    /// Worker `w` is gone: fork its replacement, then reap it for the cause.
    fn replace(&mut self, w: usize, item: usize) -> io::Result<WorkerDied> {
        let (dead, ..) = std::mem::replace(&mut self.workers[w], self.server.spawn(self.f)?);
        self.replaced += 1;
        Ok(WorkerDied { item, status: self.server.wait(dead)? })
    }
}

impl Drop for Pool<'_> {
    fn drop(&mut self) {
        for (pid, task, _) in self.workers.drain(..) {
            drop(task); // end-of-file: the worker exits; then the server reaps it
            let _ = self.server.wait(pid);
        }
    }
}

fn square_or_die(x: u64) -> u64 {
    if x == 3 {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL); // like a crash
    }
    x * x
}

/// The demo: `cargo run -p learn -- s11`.
pub fn main() {
    let Ok(server) = ForkServer::start() else { return eprintln!("cannot start the fork server") };
    let Ok(mut pool) = Pool::new(&server, 2, square_or_die) else { return };
    for (i, result) in pool.map(&[1, 2, 3, 4, 5]).unwrap_or_default().into_iter().enumerate() {
        println!("item {i}: {}", result.map_or_else(|e| e.to_string(), |y| format!("{y}")));
    }
    let next = pool.map(&[6, 7]);
    println!("workers replaced: {}; the next map: {next:?}", pool.replaced);
}

// The production crate adds: a status pipe per worker, the dead worker's other
// tasks re-queued, and CPython's break-the-pool mode. See `Dispatcher::bury`
// in `crates/process-pool/src/parent/dispatcher/death.rs`.
