//! Process pool, step 2: N workers and one `poll()` loop.
//!
//! Over step 1: several workers, and one thread that drives them all. Each
//! idle worker is handed the next item; then a single `poll()` sleeps until
//! *some* worker's result pipe is readable, and whichever answered gets the
//! next item. No thread per worker, no busy loop, and results are put back in
//! input order by index. One task per worker at a time means an 8-byte write
//! always fits in the pipe, so only the reads need `poll`.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use crate::s08_process_pool_fork_pipes::{recv, Worker};

/// Blocks until one of `fds` is readable (or closed): their indices.
pub fn readable(fds: &[RawFd]) -> io::Result<Vec<usize>> {
    let mut polled: Vec<_> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `polled` is a valid array of `polled.len()` pollfd structs.
    while unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) } < 0 {
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    Ok((0..fds.len()).filter(|&i| polled[i].revents != 0).collect())
}

pub struct Pool {
    pub workers: Vec<Worker>,
}

impl Pool {
    /// Forks `n` workers running `f` (async-signal-safe, as in step 1).
    pub fn new(n: usize, f: fn(u64) -> u64) -> io::Result<Pool> {
        Ok(Pool { workers: (0..n.max(1)).map(|_| Worker::spawn(f)).collect::<io::Result<_>>()? })
    }

    /// Runs `f` over `items` on every worker at once; results in input order.
    pub fn map(&self, items: &[u64]) -> io::Result<Vec<u64>> {
        let mut results = vec![0; items.len()];
        let mut running: Vec<Option<usize>> = vec![None; self.workers.len()]; // item per worker
        let mut next = 0;
        loop {
            for (worker, item) in self.workers.iter().zip(&mut running) {
                if item.is_none() && next < items.len() {
                    if !worker.send(items[next]) {
                        return Err(io::Error::other(format!("worker {} died", worker.pid)));
                    }
                    (*item, next) = (Some(next), next + 1);
                }
            }
            let busy: Vec<usize> = (0..running.len()).filter(|&w| running[w].is_some()).collect();
            if busy.is_empty() {
                return Ok(results);
            }
            let fds: Vec<RawFd> =
                busy.iter().map(|&w| self.workers[w].result.as_raw_fd()).collect();
            for w in readable(&fds)?.into_iter().map(|i| busy[i]) {
                let worker = &self.workers[w];
                let answer = recv(worker.result.as_raw_fd());
                let died = || io::Error::other(format!("worker {} died", worker.pid));
                results[running[w].take().ok_or_else(died)?] = answer.ok_or_else(died)?;
            }
        }
    }
}

fn pid_of_worker(_: u64) -> u64 {
    u64::from(std::process::id()) // getpid(): async-signal-safe
}

/// The demo: `cargo run -p learn -- s09`.
pub fn main() {
    let squares = Pool::new(3, |x| x * x).and_then(|pool| pool.map(&[1, 2, 3, 4, 5, 6, 7]));
    println!("squares, in input order: {squares:?}");
    let pids = Pool::new(3, pid_of_worker).and_then(|pool| pool.map(&[0; 3]));
    let distinct = pids.map(|pids| pids.iter().collect::<HashSet<_>>().len());
    println!("the first three items ran in {distinct:?} different processes");
}

// The production crate adds: framed messages and several tasks in flight
// per worker, polled writes so a large task and a large result never
// deadlock, an eventfd doorbell for new submits, and timeouts. See
// `Dispatcher::run` in `crates/process-pool/src/parent/dispatcher/mod.rs`.
