//! Thread pool, step 3: parking idle workers without losing a wake-up.
//!
//! Step 2 woke workers through the queue's lock; step 4's queue is
//! lock-free, so waking needs a protocol of its own: this file. One atomic
//! word, `idle`, counts the `searching` workers (awake, will look at the
//! queue again; low 32 bits) and the `sleeping` ones (high 32 bits). The
//! risk: a submitter pushes and sees nobody asleep just as a worker saw the
//! queue empty and goes to sleep. Two SeqCst fences forbid it:
//!
//! * submitter: push; fence; load `idle`; wake a sleeper if no one searches;
//! * worker ([`Sleep::sleep`]): searching -> sleeping; fence; last look.
//!
//! The two fences fall in some order. The submitter's first: the worker's
//! last look sees the task and it does not park. The worker's first: the
//! submitter's load sees it sleeping and posts a token under `beds`, a lock
//! the worker holds from before its announcement until its wait releases it,
//! so the notify cannot fall between its last look and its wait.

use std::sync::atomic::{fence, AtomicU64, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

pub const SEARCHING: u64 = 1;
pub const SLEEPING: u64 = 1 << 32;

pub fn searching(idle: u64) -> u64 {
    idle % SLEEPING
}

/// Parked workers, and wake-ups posted for them (`tokens <= waiting`).
#[derive(Default)]
struct Beds {
    waiting: usize,
    tokens: usize,
}

#[derive(Default)]
pub struct Sleep {
    idle: AtomicU64,
    beds: Mutex<Beds>,
    bell: Condvar,
}

impl Sleep {
    fn beds(&self) -> MutexGuard<'_, Beds> {
        self.beds.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// The submitter's load, after its push and fence.
    pub fn load(&self) -> u64 {
        self.idle.load(SeqCst)
    }

    pub fn start_searching(&self) {
        self.idle.fetch_add(SEARCHING, SeqCst);
    }

    /// A searcher took a task: the new counts. The fence orders the
    /// caller's next look at the queue after this change.
    pub fn stop_searching(&self) -> u64 {
        let now = self.idle.fetch_sub(SEARCHING, SeqCst) - SEARCHING;
        fence(SeqCst);
        now
    }

    /// Posts one token, if some parked worker has none; false otherwise.
    pub fn wake_one(&self) -> bool {
        let mut beds = self.beds();
        let room = beds.tokens < beds.waiting;
        if room {
            beds.tokens += 1;
            self.bell.notify_one();
        }
        room
    }

    /// Shutdown: the caller set its closing flag first.
    pub fn wake_all(&self) {
        let _beds = self.beds();
        self.bell.notify_all();
    }

    /// The worker's half, entered and left counted as searching.
    pub fn sleep(&self, has_work: impl Fn() -> bool, closing: impl Fn() -> bool) {
        let mut beds = self.beds();
        self.idle.fetch_add(SLEEPING - SEARCHING, SeqCst); // 1. announce
        fence(SeqCst); // 2. the last look, after the announcement
        if !has_work() && !closing() {
            beds.waiting += 1; // 3. wait for a token (or closing)
            while beds.tokens == 0 && !closing() {
                beds = self.bell.wait(beds).unwrap_or_else(PoisonError::into_inner);
            }
            beds.waiting -= 1;
            beds.tokens = beds.tokens.saturating_sub(1).min(beds.waiting);
        }
        self.idle.fetch_sub(SLEEPING - SEARCHING, SeqCst);
    }
}

/// The demo: `cargo run -p learn -- s06`; step 4 shows it in a pool.
pub fn main() {
    let sleep = Sleep::default();
    sleep.start_searching();
    println!("one worker born searching: idle = {:#x}", sleep.load());
    sleep.sleep(|| true, || false); // work seen at the last look: no wait
    println!("after a sleep that found work: idle = {:#x}", sleep.load());
    println!("wake_one with nobody parked: {}", sleep.wake_one());
}

// The production crate adds: a second count of sleepers on its own cache
// line, idle retirement with the same fence pattern, and loom models of every
// interleaving. See `Sleep::sleep` in `crates/thread-pool/src/sleep.rs`.
