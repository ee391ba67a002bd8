//! The injection queue: one FIFO shared by every submitter and every worker,
//! optionally bounded.
//!
//! Two queues make one FIFO:
//!
//! * a **ring**, crossbeam's [`ArrayQueue`] (a bounded lock-free MPMC ring,
//!   Vyukov's design: one CAS on the tail to push, one on the head to pop,
//!   slots allocated once), which holds the tasks in the common case;
//! * an **overflow** ([`Overflow`]), used only when the ring is full: two
//!   `VecDeque`s behind two locks, one that submitters push to and one that
//!   workers pop from, swapped when the workers' side runs dry.
//!
//! Why not a lock-free segmented queue for the overflow (crossbeam's
//! `Injector`, DESIGN.md's baseline, which this crate used first): it
//! allocates a block per 63 tasks on the submitting thread and frees it on a
//! worker thread. Profiled on the 200k-task benchmark (a backlog of ~100k
//! tasks, so nearly every task goes through the overflow), those blocks cost
//! about a fifth of the run inside glibc: each block (2.5 KiB) is a "large"
//! request, and every large request first consolidates all the small free
//! chunks (the futures freed by the caller), so the next futures are carved
//! out of big chunks on the slow path; and the worker's free of a block
//! takes the submitter's arena lock. The two `VecDeque`s keep their
//! capacity when swapped, so once a pool has seen its largest backlog the
//! queue never allocates again.
//!
//! Why two locks and a swap rather than one `Mutex<VecDeque>`: the
//! submitter and the workers then never wait for each other, except for
//! the swap itself, which exchanges two pointers (O(1), whatever the
//! backlog). Workers pop from their side one task at a time under its lock
//! (held for a `pop_front`), contending only with each other.
//!
//! FIFO per submitter is kept: a submit goes to the ring only while the
//! overflow is empty, and workers take from the ring first. So a task that
//! went to the overflow (the ring was full) is behind every task already in
//! the ring, and every later task of the same submitter goes to the overflow
//! too until it has drained.
//!
//! DESIGN.md asks to measure before adding per-worker deques with work
//! stealing; see `docs/thread-pool.md` ("The queue") for the measurement.
//!
//! ## Bounded mode (back-pressure)
//!
//! With a capacity, a submitter first reserves a slot from [`Slots`] (a
//! counting semaphore, `slots.rs`) and a worker gives it back when it pops
//! the task; `submit` waits for a slot, `try_submit` does not.

use std::collections::VecDeque;
use std::mem;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use crate::raw::RawJob;
use crate::slots::Slots;

/// Slots in the ring (about 40 KiB of `RawJob`s and stamps per pool).
const RING_SLOTS: usize = 1024;

/// The unbounded FIFO behind the ring. See the module docs.
struct Overflow {
    /// Where submitters push (the newer tasks).
    incoming: CachePadded<Mutex<VecDeque<RawJob>>>,
    /// Where workers pop (the older tasks). When it is empty, a worker swaps
    /// it with `incoming` while holding both locks (`outgoing` first, the
    /// only order in which both are ever held).
    outgoing: CachePadded<Mutex<VecDeque<RawJob>>>,
    /// True while the overflow may hold a task; false means it holds none.
    /// Set by a submitter, under `incoming`'s lock, before its push; cleared
    /// by a worker that found both deques empty while holding both locks, so
    /// no push can slip in between its look and the clear. Read without a
    /// lock: by submitters (ring or overflow?) and by the park protocol's
    /// look at the queue (`sleep.rs`), hence SeqCst. A flag rather than a
    /// count: it changes once per burst instead of twice per task, so in a
    /// long burst its cache line stays shared by every core and reading it
    /// costs no miss (a count written by both sides on every task was the
    /// hottest line of the benchmark).
    in_use: CachePadded<AtomicBool>,
}

impl Overflow {
    fn new() -> Self {
        Overflow {
            incoming: CachePadded::new(Mutex::new(VecDeque::new())),
            outgoing: CachePadded::new(Mutex::new(VecDeque::new())),
            in_use: CachePadded::new(AtomicBool::new(false)),
        }
    }

    fn push(&self, job: RawJob) {
        let mut incoming = self.incoming.lock();
        if !self.in_use.load(SeqCst) {
            self.in_use.store(true, SeqCst);
        }
        incoming.push_back(job);
    }

    fn pop(&self) -> Option<RawJob> {
        if self.is_empty() {
            return None;
        }
        let mut outgoing = self.outgoing.lock();
        if let Some(job) = outgoing.pop_front() {
            return Some(job);
        }
        // Every task in `incoming` is newer than every task popped so far,
        // so taking them all keeps the order. The swap leaves our (empty,
        // but allocated) deque to the submitters.
        let mut incoming = self.incoming.lock();
        mem::swap(&mut *outgoing, &mut *incoming);
        let job = outgoing.pop_front();
        if job.is_none() {
            // Both empty, and both locked: nobody can push until we unlock.
            self.in_use.store(false, SeqCst);
        }
        job
    }

    /// A submitter's question (ring or overflow?), and the queue half of
    /// the park protocol: false whenever a pushed task is still here.
    fn is_empty(&self) -> bool {
        !self.in_use.load(SeqCst)
    }

    /// How many tasks are here (for `stats()`: takes the locks).
    fn len(&self) -> usize {
        let outgoing = self.outgoing.lock();
        outgoing.len() + self.incoming.lock().len()
    }
}

pub(crate) struct Queue {
    ring: ArrayQueue<RawJob>,
    overflow: Overflow,
    /// `Some` in bounded mode.
    slots: Option<Slots>,
}

impl Queue {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        Queue {
            ring: ArrayQueue::new(RING_SLOTS),
            overflow: Overflow::new(),
            slots: capacity.map(Slots::new),
        }
    }

    /// Reserves room for one task without blocking. Always true when unbounded.
    pub(crate) fn try_reserve(&self) -> bool {
        self.slots.as_ref().map_or(true, Slots::try_acquire)
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
        let job = self.ring.pop().or_else(|| self.overflow.pop())?;
        self.release();
        Some(job)
    }

    /// Takes every queued task (shutdown with `cancel_futures`, broken pool).
    pub(crate) fn drain(&self) -> Vec<RawJob> {
        std::iter::from_fn(|| self.pop()).collect()
    }

    /// True if no task is queued. It reads the ring's head and tail indices
    /// and the overflow's count (atomics that every push and pop writes),
    /// which the park protocol relies on together with its fences.
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
