//! [`Slots`]: the counting semaphore behind the bounded queue.
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
//!   fence(SeqCst)                        fence(SeqCst)
//!   try to reserve: load used (SeqCst)   load waiters         (SeqCst)
//!   if none: wait (releases lock)        if > 0: lock, notify_one
//! ```
//!
//! In the single total order of SeqCst operations, either the submitter's
//! load of `used` comes after the worker's decrement (it reserves the slot
//! and does not sleep), or the worker's load of `waiters` comes after the
//! submitter's increment (it notifies; and since it must take `lock` to do
//! so, the notification cannot slip in between the submitter's check and its
//! wait, which happen under that lock). The SeqCst fences between each
//! side's write and read make the argument hold under the fence rules too,
//! which is what loom checks (loom treats SeqCst accesses as AcqRel, but
//! models SeqCst fences).
//!
//! The loom test at the end checks it exhaustively for one blocked
//! submitter and one freeing worker.

use std::sync::atomic::Ordering::SeqCst;

use crate::sync::{fence, AtomicUsize, Condvar, Mutex};

/// At most `capacity` slots handed out at once; see the module docs.
pub(crate) struct Slots {
    capacity: usize,
    /// Queued tasks plus slots reserved by submitters about to push.
    used: AtomicUsize,
    /// Submitters blocked (or about to block) waiting for a slot.
    waiters: AtomicUsize,
    lock: Mutex<()>,
    space: Condvar,
}

impl Slots {
    pub(crate) fn new(capacity: usize) -> Self {
        Slots {
            capacity,
            used: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            space: Condvar::new(),
        }
    }

    /// Takes a slot if one is free, without blocking.
    pub(crate) fn try_acquire(&self) -> bool {
        let mut used = self.used.load(SeqCst);
        while used < self.capacity {
            match self
                .used
                .compare_exchange_weak(used, used + 1, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
        false
    }

    /// Takes a slot, blocking until one is free.
    pub(crate) fn acquire(&self) {
        if self.try_acquire() {
            return;
        }
        let mut guard = self.lock.lock();
        loop {
            self.waiters.fetch_add(1, SeqCst);
            fence(SeqCst);
            let got = self.try_acquire();
            if !got {
                self.space.wait(&mut guard);
            }
            self.waiters.fetch_sub(1, SeqCst);
            if got {
                return;
            }
        }
    }

    /// Gives a slot back and wakes one blocked submitter, if any.
    pub(crate) fn release(&self) {
        self.used.fetch_sub(1, SeqCst);
        fence(SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.space.notify_one();
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    #[test]
    fn loom_a_freed_slot_reaches_a_blocked_submitter() {
        loom::model(|| {
            let slots = Arc::new(Slots::new(1));
            assert!(slots.try_acquire());
            let submitter = {
                let slots = slots.clone();
                loom::thread::spawn(move || slots.acquire())
            };
            slots.release(); // the worker popped the queued task
            submitter.join().unwrap(); // a lost wake-up would deadlock here
            assert!(!slots.try_acquire());
        });
    }
}
