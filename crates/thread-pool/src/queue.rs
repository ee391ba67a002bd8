//! The injection queue: one FIFO shared by every submitter and every worker,
//! optionally bounded.
//!
//! The queue is crossbeam's [`Injector`], a lock-free segmented FIFO (a
//! linked list of 63-slot blocks with head and tail indices, the
//! Chase-Lev-style global queue of crossbeam-deque). Push is one CAS on the
//! tail; pop is one CAS on the head. DESIGN.md asks for this as the baseline
//! and to measure before adding per-worker deques with work stealing; see
//! `docs/thread-pool.md` ("The queue") for the measurement.
//!
//! ## Bounded mode (back-pressure)
//!
//! With a capacity, a submitter first *reserves a slot* (`used` counts queued
//! tasks plus reservations), and a worker frees the slot when it pops the
//! task. A submitter that finds no room either gives up (`try_submit`) or
//! blocks on a condition variable until a worker frees a slot.
//!
//! No wake-up is lost between a blocking submitter and a freeing worker; it
//! is the same store/load pattern ("Dekker") as the worker park protocol:
//!
//! ```text
//! submitter (under `lock`)             worker
//!   waiters += 1          (SeqCst)       used -= 1            (SeqCst)
//!   try to reserve: load used (SeqCst)   load waiters         (SeqCst)
//!   if none: wait (releases lock)        if > 0: lock, notify_one
//! ```
//!
//! In the single total order of SeqCst operations, either the submitter's
//! load of `used` comes after the worker's decrement (it reserves the slot
//! and does not sleep), or the worker's load of `waiters` comes after the
//! submitter's increment (it notifies; and since it must take `lock` to do
//! so, the notification cannot slip in between the submitter's check and its
//! wait, which happen under that lock).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use crossbeam_deque::{Injector, Steal};
use parking_lot::{Condvar, Mutex};

use crate::raw::RawJob;

pub(crate) struct Queue {
    injector: Injector<RawJob>,
    bound: Option<Bound>,
}

struct Bound {
    capacity: usize,
    /// Queued tasks plus slots reserved by submitters about to push.
    used: AtomicUsize,
    /// Submitters blocked (or about to block) waiting for a slot.
    waiters: AtomicUsize,
    lock: Mutex<()>,
    space: Condvar,
}

impl Queue {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        Queue {
            injector: Injector::new(),
            bound: capacity.map(|capacity| Bound {
                capacity,
                used: AtomicUsize::new(0),
                waiters: AtomicUsize::new(0),
                lock: Mutex::new(()),
                space: Condvar::new(),
            }),
        }
    }

    /// Reserves room for one task without blocking. Always true when unbounded.
    pub(crate) fn try_reserve(&self) -> bool {
        let Some(b) = &self.bound else { return true };
        let mut used = b.used.load(SeqCst);
        while used < b.capacity {
            match b.used.compare_exchange_weak(used, used + 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
        false
    }

    /// Reserves room for one task, blocking until a worker frees a slot.
    pub(crate) fn reserve(&self) {
        let Some(b) = &self.bound else { return };
        if self.try_reserve() {
            return;
        }
        let mut guard = b.lock.lock();
        loop {
            b.waiters.fetch_add(1, SeqCst);
            let got = self.try_reserve();
            if !got {
                b.space.wait(&mut guard);
            }
            b.waiters.fetch_sub(1, SeqCst);
            if got {
                return;
            }
        }
    }

    /// Gives back a slot: a task left the queue, or a reservation was not used.
    pub(crate) fn release(&self) {
        let Some(b) = &self.bound else { return };
        b.used.fetch_sub(1, SeqCst);
        if b.waiters.load(SeqCst) > 0 {
            let _guard = b.lock.lock();
            b.space.notify_one();
        }
    }

    /// Pushes a task into a slot reserved with `reserve`/`try_reserve`.
    pub(crate) fn push(&self, job: RawJob) {
        self.injector.push(job);
    }

    /// Takes the oldest task, if any, and frees its slot.
    pub(crate) fn pop(&self) -> Option<RawJob> {
        loop {
            match self.injector.steal() {
                Steal::Success(job) => {
                    self.release();
                    return Some(job);
                }
                Steal::Empty => return None,
                // Another thread moved the head at the same moment: a
                // lock-free retry, bounded by the progress of the others.
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    /// Takes every queued task (shutdown with `cancel_futures`, broken pool).
    pub(crate) fn drain(&self) -> Vec<RawJob> {
        std::iter::from_fn(|| self.pop()).collect()
    }

    /// True if no task is queued. Its loads are SeqCst (crossbeam's
    /// `Injector::is_empty` reads the head and tail indices with SeqCst),
    /// which the park protocol relies on together with its fences.
    pub(crate) fn is_empty(&self) -> bool {
        self.injector.is_empty()
    }

    /// How many tasks are queued (a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.injector.len()
    }
}
