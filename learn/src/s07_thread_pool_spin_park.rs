//! Thread pool, step 4: a lock-free queue, spin, then park (step 3).
//!
//! Over step 2: crossbeam's lock-free `SegQueue`, step 3's `Sleep`, and a
//! short spin before parking (work often returns within microseconds). The
//! chain rule: a searcher that takes a task while more wait and nobody else
//! searches gets a helper, so a burst that counted on it alone fans out.

use crate::s04_thread_pool_cpython::{task, Job};
use crate::s06_thread_pool_sleep::{searching, Sleep, SLEEPING};
use crossbeam_queue::SegQueue;
use future::Future;
use std::sync::atomic::{fence, AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

#[derive(Default)]
struct Shared {
    queue: SegQueue<Job>,
    sleep: Sleep,
    closing: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    max_workers: usize,
}

pub struct ThreadPool(Arc<Shared>);

impl ThreadPool {
    pub fn new(max_workers: usize) -> Self {
        ThreadPool(Arc::new(Shared { max_workers: max_workers.max(1), ..Shared::default() }))
    }

    pub fn submit<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Future<T> {
        let (job, future) = task(f);
        self.0.queue.push(job);
        fence(SeqCst); // the submitter's fence (step 3)
        self.0.ensure_worker();
        future
    }

    pub fn counts(&self) -> (u64, usize) {
        (self.0.sleep.load() / SLEEPING, self.0.threads.lock().unwrap().len())
    }
}

impl Shared {
    fn ensure_worker(self: &Arc<Self>) {
        let idle = self.sleep.load();
        if searching(idle) > 0 || (idle >= SLEEPING && self.sleep.wake_one()) {
            return;
        }
        let mut threads = self.threads.lock().unwrap();
        if threads.len() < self.max_workers && !self.closing.load(SeqCst) {
            self.sleep.start_searching();
            let shared = self.clone();
            threads.push(thread::spawn(move || shared.work()));
        }
    }

    fn work(self: &Arc<Self>) {
        let (mut searching_now, mut round) = (true, 0); // born searching
        loop {
            if let Some(job) = self.queue.pop() {
                if searching_now {
                    let idle = self.sleep.stop_searching();
                    if searching(idle) == 0 && !self.queue.is_empty() {
                        self.ensure_worker(); // the chain rule
                    }
                }
                (searching_now, round) = (false, 0);
                job();
            } else if !searching_now {
                self.sleep.start_searching(); // then look once more
                searching_now = true;
            } else if self.closing.load(SeqCst) {
                return; // no submit after closing: the queue stays empty
            } else if round < 7 {
                (0..1 << round).for_each(|_| std::hint::spin_loop());
                round += 1;
            } else {
                self.sleep.sleep(|| !self.queue.is_empty(), || self.closing.load(SeqCst));
                round = 0;
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.0.closing.store(true, SeqCst);
        self.0.sleep.wake_all();
        // Not under the lock: a worker's chain rule may need it to finish.
        let threads = std::mem::take(&mut *self.0.threads.lock().unwrap());
        threads.into_iter().for_each(|t| drop(t.join()));
    }
}

/// The demo: `cargo run -p learn -- s07`.
pub fn main() {
    let pool = ThreadPool::new(2);
    println!("first: {:?}", pool.submit(|| 1).result());
    while pool.counts().0 == 0 {
        thread::yield_now(); // until the worker has spun and parked
    }
    let second = pool.submit(|| 2).result();
    println!("parked, then woken for: {second:?}; threads: {}", pool.counts().1);
}

// The production crate adds: paced spinning by one worker at a time, idle
// retirement, contained panics, `map`. See `Worker::find_work` in
// `crates/thread-pool/src/worker.rs`.
