//! Thread pool, step 2: reuse an idle worker instead of starting a thread.
//!
//! Step 1 starts a thread per submit even while a worker sits idle. CPython
//! 3.8's fix is an idle count (a semaphore): a worker raises it after each
//! task; `submit` takes one instead of starting a thread. Here: a counter
//! under the queue's lock. The worker must count itself idle *before* it
//! publishes the result: CPython counts after, so a caller woken by the
//! result may submit before the count rises and start a second thread. So
//! each job gets a hook, `now_idle`, called between computing and setting.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use future::{promise, Future};

type Job = Box<dyn FnOnce(&dyn Fn()) + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// CPython's `_idle_semaphore`: tasks finished minus idle workers claimed.
    idle: usize,
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

    pub fn submit<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Future<T> {
        let (promise, future) = promise();
        let job: Job = Box::new(move |now_idle| {
            if promise.set_running_or_notify_cancel() != Ok(true) {
                return now_idle();
            }
            let value = f();
            now_idle(); // before the result can wake anyone
            let _ = promise.set_result(value);
        });
        let mut queue = lock(&self.shared.queue);
        queue.jobs.push_back(job);
        let claimed_idle = queue.idle > 0;
        queue.idle -= usize::from(claimed_idle);
        drop(queue);
        self.shared.work.notify_one();
        let mut threads = lock(&self.threads);
        if !claimed_idle && threads.len() < self.max_workers {
            let shared = self.shared.clone();
            threads.push(thread::spawn(move || worker(&shared)));
        }
        future
    }

    pub fn threads_started(&self) -> usize {
        lock(&self.threads).len()
    }
}

fn worker(shared: &Shared) {
    let now_idle = || lock(&shared.queue).idle += 1;
    loop {
        let mut queue = lock(&shared.queue);
        while queue.jobs.is_empty() && !queue.shutdown {
            queue = shared.work.wait(queue).unwrap_or_else(PoisonError::into_inner);
        }
        let Some(job) = queue.jobs.pop_front() else { return };
        drop(queue);
        job(&now_idle);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        lock(&self.shared.queue).shutdown = true;
        self.shared.work.notify_all();
        lock(&self.threads).drain(..).for_each(|t| drop(t.join()));
    }
}

/// The demo: `cargo run -p learn -- s05` (step 1 started three threads here).
pub fn main() {
    let pool = ThreadPool::new(4);
    for x in 1..=3u64 {
        let square = pool.submit(move || x * x).result();
        println!("{x} squared is {square:?}; threads started: {}", pool.threads_started());
    }
}

// The production crate adds: lock-free counts of searching and sleeping
// workers, and workers that retire after `idle_timeout`. See
// `Shared::ensure_worker` in `crates/thread-pool/src/shared.rs`.
