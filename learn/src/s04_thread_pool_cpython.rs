//! Thread pool, step 1: CPython's `thread.py` in Rust.
//!
//! One queue behind one mutex, one condition variable, and lazy workers: each
//! `submit` starts a thread until there are `max_workers` (CPython 3.7). Idle
//! workers sleep on the condvar; shutdown sets a flag under the lock and wakes
//! them all to drain the queue and exit. Results use the `future` crate.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use future::{promise, Future};

pub type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct ThreadPool {
    shared: Arc<Shared>,
    max_workers: usize,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl ThreadPool {
    pub fn new(max_workers: usize) -> Self {
        let threads = Mutex::new(Vec::new());
        ThreadPool { shared: Arc::default(), max_workers: max_workers.max(1), threads }
    }

    /// Queues `f` and returns its future (CPython's `submit`).
    pub fn submit<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Future<T> {
        let (job, future) = task(f);
        lock(&self.shared.queue).jobs.push_back(job);
        self.shared.work.notify_one();
        self.adjust_thread_count();
        future
    }

    /// CPython 3.7's rule: one more thread per submit, up to the maximum.
    fn adjust_thread_count(&self) {
        let mut threads = lock(&self.threads);
        if threads.len() < self.max_workers {
            let shared = self.shared.clone();
            threads.push(thread::spawn(move || worker(&shared)));
        }
    }

    pub fn threads_started(&self) -> usize {
        lock(&self.threads).len()
    }
}

/// A job that runs `f` unless its future was cancelled first, and the future.
pub fn task<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (Job, Future<T>) {
    let (promise, future) = promise();
    let job = Box::new(move || {
        if promise.set_running_or_notify_cancel() == Ok(true) {
            let _ = promise.set_result(f());
        }
    });
    (job, future)
}

fn worker(shared: &Shared) {
    loop {
        let mut queue = lock(&shared.queue);
        while queue.jobs.is_empty() && !queue.shutdown {
            queue = shared.work.wait(queue).unwrap_or_else(PoisonError::into_inner);
        }
        let Some(job) = queue.jobs.pop_front() else { return }; // shut down
        drop(queue);
        job();
    }
}

impl Drop for ThreadPool {
    // `shutdown(wait=True)`: refuse new work, let the queue drain, join.
    fn drop(&mut self) {
        lock(&self.shared.queue).shutdown = true;
        self.shared.work.notify_all();
        lock(&self.threads).drain(..).for_each(|t| drop(t.join()));
    }
}

/// The demo: `cargo run -p learn -- s04`.
pub fn main() {
    let pool = ThreadPool::new(4);
    for x in 1..=3u64 {
        let square = pool.submit(move || x * x).result();
        println!("{x} squared is {square:?}; threads started: {}", pool.threads_started());
    }
}

// The production crate adds: a worker that survives a panicking task,
// shutdown(cancel_futures), a broken pool when an initializer fails, idle
// reuse (next step). See `Ticket::push` in `crates/thread-pool/src/shared.rs`.
