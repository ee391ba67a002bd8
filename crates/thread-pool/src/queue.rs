//! The injection queue: one FIFO shared by every submitter and every worker,
//! optionally bounded.
//!
//! Two lock-free crossbeam queues make one FIFO:
//!
//! * a **ring**, crossbeam's [`ArrayQueue`] (a bounded MPMC ring, Vyukov's
//!   design: one CAS on the tail to push, one on the head to pop, slots
//!   allocated once), which holds the tasks in the common case;
//! * an **overflow**, crossbeam's [`Injector`] (an unbounded segmented FIFO:
//!   a linked list of 63-slot blocks), used only when the ring is full.
//!
//! Why not the `Injector` alone (the first version, the baseline of `docs/design.md`):
//! it allocates a block per 63 tasks on the submitting thread and frees it
//! on a worker thread. Profiled on the 200k-task benchmark, those
//! cross-thread frees were behind every futex call of the run: glibc's
//! arena lock, taken by the worker's free and by the submitter's next
//! allocation at once. The ring never allocates after creation.
//!
//! FIFO per submitter is kept: a submit goes to the ring only while the
//! overflow is empty, and workers take from the ring first. So a task that
//! went to the overflow (the ring was full) is behind every task already in
//! the ring, and every later task of the same submitter goes to the overflow
//! too until it has drained.
//!
//! `docs/design.md` asks to measure before adding per-worker deques with work
//! stealing; see `docs/thread-pool.md` ("The queue") for the measurement.
//!
//! ## Bounded mode (back-pressure)
//!
//! With a capacity, a submitter first reserves a slot from [`Slots`] (a
//! counting semaphore, `slots.rs`) and a worker gives it back when it pops
//! the task; `submit` waits for a slot, `try_submit` does not.

use crate::raw::RawJob;
use crate::slots::Slots;
use crossbeam_deque::{Injector, Steal};
use crossbeam_queue::ArrayQueue;

/// Slots in the ring (about 40 KiB of `RawJob`s and stamps per pool).
const RING_SLOTS: usize = 1024;

pub(crate) struct Queue {
    ring: ArrayQueue<RawJob>,
    overflow: Injector<RawJob>,
    /// `Some` in bounded mode.
    slots: Option<Slots>,
}

impl Queue {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        Queue {
            ring: ArrayQueue::new(RING_SLOTS),
            overflow: Injector::new(),
            slots: capacity.map(Slots::new),
        }
    }

    /// Reserves room for one task without blocking. Always true when unbounded.
    pub(crate) fn try_reserve(&self) -> bool {
        self.slots.as_ref().is_none_or(Slots::try_acquire)
    }

    /// Reserves room for one task, blocking until a worker frees a slot.
    pub(crate) fn reserve(&self) {
        if let Some(slots) = &self.slots {
            slots.acquire();
        }
    }

    /// Gives back a slot: a task left the queue, or a reservation was not used.
    pub(crate) fn release(&self) {
        if let Some(slots) = &self.slots {
            slots.release();
        }
    }

    /// Pushes a task into a slot reserved with `reserve`/`try_reserve`.
    pub(crate) fn push(&self, job: RawJob) {
        // The ring only while the overflow is empty: see the module docs.
        let job = if self.overflow.is_empty() {
            match self.ring.push(job) {
                Ok(()) => return,
                Err(job) => job,
            }
        } else {
            job
        };
        self.overflow.push(job);
    }

    /// Takes the oldest task, if any, and frees its slot.
    pub(crate) fn pop(&self) -> Option<RawJob> {
        if let Some(job) = self.ring.pop() {
            self.release();
            return Some(job);
        }
        loop {
            match self.overflow.steal() {
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

    /// True if no task is queued. It reads the head and tail indices of both
    /// queues (atomics that every push and pop writes), which the park
    /// protocol relies on together with its fences.
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty() && self.overflow.is_empty()
    }

    /// How many tasks are queued (a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.ring.len() + self.overflow.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Job, Ran, RunHooks};
    use future::TaskError;
    use std::sync::{Arc, Mutex};

    /// A job that logs its number when run.
    struct Numbered(usize, Arc<Mutex<Vec<usize>>>);

    impl Job for Numbered {
        fn run(self, _hooks: &mut dyn RunHooks) {
            self.1.lock().unwrap().push(self.0);
        }
        fn cancel(self) {}
        fn fail(self, _error: TaskError) {}
    }

    struct NoHooks;
    impl RunHooks for NoHooks {
        fn started(&mut self) {}
        fn before_publish(&mut self, _ran: Ran) {}
    }

    #[test]
    fn fifo_across_the_ring_and_the_overflow() {
        let queue = Queue::new(None);
        let log = Arc::new(Mutex::new(Vec::new()));
        let n = RING_SLOTS * 3 + 7;
        // Fill past the ring, take some out (the ring has room again while
        // the overflow is not empty), and push more: order must hold.
        for i in 0..n {
            queue.push(RawJob::new(Numbered(i, log.clone())));
        }
        assert_eq!(queue.len(), n);
        for _ in 0..10 {
            queue.pop().unwrap().run(&mut NoHooks);
        }
        for i in n..n + 50 {
            queue.push(RawJob::new(Numbered(i, log.clone())));
        }
        while let Some(job) = queue.pop() {
            job.run(&mut NoHooks);
        }
        assert!(queue.is_empty());
        assert_eq!(*log.lock().unwrap(), (0..n + 50).collect::<Vec<_>>());
    }

    #[test]
    fn bounded_reservations() {
        let queue = Queue::new(Some(2));
        assert!(queue.try_reserve());
        assert!(queue.try_reserve());
        assert!(!queue.try_reserve());
        queue.release();
        assert!(queue.try_reserve());
    }
}
