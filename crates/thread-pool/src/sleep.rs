//! Idle workers: who is looking for work, who is parked, and how a
//! submitter wakes a parked worker without ever losing the wake-up.
//!
//! The first four sections are the protocol, complete on its own. The last
//! two are set apart because the protocol does not need them: the
//! `parking` count is an optimisation (speed only), and retiring a parked
//! worker after the idle timeout is an extension (a feature Python lacks).
//! The code keeps the same split: the protocol's own functions come first,
//! the other two sit in their own marked blocks at the end.
//!
//! ## The counters
//!
//! One atomic word, `idle`, holds two counts, so that a submitter learns
//! both with a single load and a worker moves between them with a single
//! read-modify-write:
//!
//! | bits  | count       | meaning                                                  |
//! |-------|-------------|----------------------------------------------------------|
//! | 0-31  | `searching` | awake and not running a task: will look at the queue again before it parks |
//! | 32-63 | `sleeping`  | announced it will park, or parked                        |
//!
//! ## The protocol
//!
//! A **submitter**, after pushing its task, executes a SeqCst fence and loads
//! `idle`:
//!
//! * some worker is `searching`: do nothing, that worker will find the task;
//! * else some worker is `sleeping`: wake one ([`Sleep::wake_one`]);
//! * else every worker is busy: start a new one if below `max_workers`.
//!
//! A **worker** that found the queue empty (after its back-off, see
//! `backoff.rs`) parks through [`Sleep::park`], which, under the `beds`
//! mutex:
//!
//! 1. moves itself from `searching` to `sleeping` (one SeqCst RMW),
//! 2. executes a SeqCst fence and looks at the queue one last time; if there
//!    is work (or the pool is closing) it moves back and returns,
//! 3. otherwise counts itself in `beds.waiting` and waits on the condition
//!    variable until a *token* is posted (`beds.tokens`).
//!
//! ## Why no wake-up is lost
//!
//! The submitter does `push; fence; load idle`; the worker does
//! `RMW idle; fence; load queue`. The two SeqCst fences are ordered one way
//! or the other in the single total order of SeqCst operations:
//!
//! * submitter's fence first: the worker's last look (after its own fence)
//!   sees the pushed task, so it does not park;
//! * worker's fence first: the submitter's load of `idle` (after its fence)
//!   sees the worker as `sleeping` and posts a token.
//!
//! Posting a token takes the `beds` mutex. The worker held that mutex from
//! before its announcement until the condition variable's wait released it,
//! so the submitter either finds it already waiting (and its `notify_one`
//! reaches it), or finds that it backed out in step 2 (then `waiting` was not
//! incremented and no token is posted). Tokens are capped at the number of
//! waiting workers, so a token never piles up for a worker that is not
//! there; a stray token (its worker was woken by a spurious wake-up or by
//! shutdown) at worst makes a later sleeper look at the queue once more.
//!
//! The same argument covers a submitter that saw a `searching` worker and
//! did nothing: that worker's move to `sleeping` is later in the counter's
//! modification order than the value the submitter read, so its fence comes
//! after the submitter's fence, and its last look sees the task. A searching
//! worker that instead takes *another* task will look at the queue again
//! when that task ends; and a worker that takes a task while more are queued
//! and no one else is searching wakes or starts a helper (the "chain rule"
//! in `shared.rs`), so a burst of submits fans out over the workers.
//!
//! ## Shutdown
//!
//! Shutdown sets the pool's closing flag *before* taking the mutex and
//! broadcasting, and a parking worker checks the flag under the mutex, so
//! shutdown cannot slip between a worker's check and its wait either.
//!
//! ## Optimisation: the `parking` count
//!
//! `idle` changes whenever a worker goes from idle to busy and back, which
//! in a busy pool is every few tasks; every submit reading it then pays a
//! cache miss. `parking` is a second count of sleepers, on its own cache
//! line, that changes only when a worker parks or wakes: raised *before*
//! the worker's announcement in `idle` (so before its fence), lowered after
//! it is back, so it is never below the `sleeping` count. A submitter
//! first reads it ([`Sleep::nobody_sleeping`]): if it is zero and the pool
//! has all its workers, there is nobody to wake or start, and `idle` is not
//! read at all. Reading zero there after the submitter's fence is as safe
//! as reading `sleeping == 0` in `idle`: the same two-fence argument
//! applies to this counter (the worker's increment comes before its
//! fence). Measured on the 200k-task benchmark: the median ratio to the
//! threadpool crate went from about 0.95 to about 1.08 (two series of 15
//! interleaved runs).
//!
//! ## Extension: the idle timeout
//!
//! With an idle timeout, the wait of step 3 has a deadline. A worker whose
//! deadline passes with no token leaves `idle` altogether, still under the
//! mutex (so no token can be posted for it meanwhile), and asks the pool to
//! let it go ([`Watch::retire`]): the pool leaves its `alive` count, fences
//! and looks at the queue, the same pattern as step 2, and keeps the worker
//! if a task arrived.

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use crate::sync::{fence, AtomicU64, Condvar, Mutex, MutexGuard};

/// One worker in the `searching` count.
pub(crate) const SEARCHING: u64 = 1;
/// One worker in the `sleeping` count.
pub(crate) const SLEEPING: u64 = 1 << 32;

/// The `searching` count of a value of `idle`.
pub(crate) fn searching(idle: u64) -> u64 {
    idle & (SLEEPING - 1)
}

/// The `sleeping` count of a value of `idle`.
pub(crate) fn sleeping(idle: u64) -> u64 {
    idle >> 32
}

/// What a parking worker needs to know about its pool.
pub(crate) trait Watch {
    /// True if the queue holds a task (a SeqCst read of the queue).
    fn has_work(&self) -> bool;
    /// True once the pool is shut down or broken: workers drain and leave.
    fn closing(&self) -> bool;
    /// The idle timeout passed: try to leave the pool. Called with the worker
    /// already removed from `idle`; returns false if the worker must stay
    /// (it then counts as `searching` again). (The idle-timeout extension.)
    fn retire(&self) -> bool;
}

/// How [`Sleep::park`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Did not park: work appeared, or the pool is closing. Look again.
    Recheck,
    /// A submitter posted a token.
    Woken,
    /// The pool is closing.
    Closing,
    /// The idle timeout passed and the worker left the pool.
    Retired,
}

#[derive(Default)]
struct Beds {
    /// Workers waiting on `bell`.
    waiting: usize,
    /// Wake-ups posted and not yet taken; never more than `waiting`.
    tokens: usize,
}

/// The idle-worker registry of one pool. See the module docs.
pub(crate) struct Sleep {
    idle: crossbeam_utils::CachePadded<AtomicU64>,
    /// Optimisation (module docs, "The `parking` count"): a second count of
    /// the workers in `sleeping`, raised *before* a worker announces itself
    /// in `idle` and lowered after it left, so it is never below the real
    /// count. On its own cache line, which only changes when a worker parks
    /// or wakes.
    parking: crossbeam_utils::CachePadded<AtomicU64>,
    beds: Mutex<Beds>,
    bell: Condvar,
}

// The protocol.
impl Sleep {
    pub(crate) fn new() -> Self {
        Sleep {
            idle: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            parking: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            beds: Mutex::new(Beds::default()),
            bell: Condvar::new(),
        }
    }

    /// The packed counts (SeqCst: this load is the submitter's half of the
    /// protocol, after its fence).
    pub(crate) fn load(&self) -> u64 {
        self.idle.load(SeqCst)
    }

    /// A worker is born, or finished a task and found the queue empty: it
    /// counts as searching from now on.
    pub(crate) fn start_searching(&self) {
        self.idle.fetch_add(SEARCHING, SeqCst);
    }

    /// A searching worker took a task (or leaves the pool). Returns the new
    /// value, and fences, so that the caller's next look at the queue is
    /// ordered after this change (the chain rule relies on it).
    pub(crate) fn stop_searching(&self) -> u64 {
        let now = self.idle.fetch_sub(SEARCHING, SeqCst) - SEARCHING;
        fence(SeqCst);
        now
    }

    /// The submitter's half: called after a push and a SeqCst fence, when
    /// `idle` showed a sleeper and no searcher. Posts one token if some
    /// waiting worker has none yet. Returns false if every waiting worker
    /// already has a token (they are on their way, but each will take only
    /// one task, so the caller should look for another worker).
    pub(crate) fn wake_one(&self) -> bool {
        let mut beds = self.beds.lock();
        if beds.tokens < beds.waiting {
            beds.tokens += 1;
            self.bell.notify_one();
            true
        } else {
            false
        }
    }

    /// Wakes every parked worker (shutdown, broken pool). The caller has set
    /// the closing flag first.
    pub(crate) fn wake_all(&self) {
        let _beds = self.beds.lock();
        self.bell.notify_all();
    }

    /// The worker's half: park until woken, the pool closes, or `timeout`
    /// (the idle timeout) passes. The caller counts as searching on entry,
    /// and again on return unless the result is [`Wake::Retired`]. Workers
    /// call it through [`sleep`](Self::sleep), which adds the `parking`
    /// count.
    fn park(&self, pool: &dyn Watch, timeout: Option<Duration>) -> Wake {
        let mut beds = self.beds.lock();
        // 1. Announce: searching -> sleeping, in one RMW.
        self.idle.fetch_add(SLEEPING - SEARCHING, SeqCst);
        // 2. The last look, ordered after the announcement.
        fence(SeqCst);
        if pool.has_work() || pool.closing() {
            self.idle.fetch_sub(SLEEPING - SEARCHING, SeqCst);
            return Wake::Recheck;
        }
        // 3. Wait for a token.
        beds.waiting += 1;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let wake = self.wait_for_token(&mut beds, pool, deadline);
        beds.waiting -= 1;
        // Keep the invariant tokens <= waiting when leaving without a token.
        beds.tokens = beds.tokens.min(beds.waiting);
        if wake == Wake::Retired {
            return self.retire_or_stay(&beds, pool);
        }
        self.idle
            .fetch_add(SEARCHING.wrapping_sub(SLEEPING), SeqCst);
        wake
    }

    /// Step 3's wait on the condition variable, with `beds` held (the wait
    /// releases it while asleep): until a token is there (taken), the pool
    /// closes, or the deadline passes with neither ([`Wake::Retired`], the
    /// idle-timeout extension; no deadline, no timeout).
    fn wait_for_token(
        &self,
        beds: &mut MutexGuard<'_, Beds>,
        pool: &dyn Watch,
        deadline: Option<Instant>,
    ) -> Wake {
        loop {
            if beds.tokens > 0 {
                beds.tokens -= 1;
                return Wake::Woken;
            }
            if pool.closing() {
                return Wake::Closing;
            }
            match deadline {
                None => self.bell.wait(beds),
                Some(deadline) => {
                    if self.bell.wait_until(beds, deadline).timed_out()
                        && beds.tokens == 0
                        && !pool.closing()
                    {
                        return Wake::Retired;
                    }
                }
            }
        }
    }
}

// Optimisation: the `parking` count (module docs).
impl Sleep {
    /// True if no worker is sleeping (or about to). SeqCst: like
    /// [`load`](Self::load), this is a submitter's read after its fence. A
    /// zero here is as good as a zero `sleeping` count in `idle` for the
    /// protocol: the worker raises `parking` before its own fence, so if
    /// the submitter's fence came first the worker's last look sees the task,
    /// and otherwise this load sees the raised count.
    pub(crate) fn nobody_sleeping(&self) -> bool {
        self.parking.load(SeqCst) == 0
    }

    /// [`park`](Self::park), counted in `parking` throughout: what a worker
    /// calls.
    pub(crate) fn sleep(&self, pool: &dyn Watch, timeout: Option<Duration>) -> Wake {
        self.parking.fetch_add(1, SeqCst);
        let wake = self.park(pool, timeout);
        self.parking.fetch_sub(1, SeqCst);
        wake
    }
}

// Extension: the idle timeout (module docs).
impl Sleep {
    /// The idle timeout passed with no token: leave `idle` altogether, then
    /// let the pool decide ([`Watch::retire`]), which re-checks the queue
    /// after its own fence (the same pattern as step 2) and may keep us.
    /// Called from `park` with `beds` still held (`_held`), so that no
    /// token can be posted for this worker meanwhile.
    fn retire_or_stay(&self, _held: &MutexGuard<'_, Beds>, pool: &dyn Watch) -> Wake {
        self.idle.fetch_sub(SLEEPING, SeqCst);
        fence(SeqCst);
        if pool.retire() {
            return Wake::Retired;
        }
        self.idle.fetch_add(SEARCHING, SeqCst);
        Wake::Recheck
    }
}

/// Exhaustive checks of the protocol with loom (see `sync.rs` for the
/// command). The model keeps the protocol and replaces the rest: the queue
/// is a counter, workers park at once instead of spinning first (spinning
/// only delays parking, it adds no interleaving the model lacks), and a
/// lost wake-up shows up as a deadlock, which loom reports.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicBool, AtomicUsize};
    use loom::sync::Arc;

    struct Model {
        queue: AtomicUsize,
        taken: AtomicUsize,
        closing: AtomicBool,
        sleep: Sleep,
    }

    impl Watch for Model {
        fn has_work(&self) -> bool {
            self.queue.load(SeqCst) > 0
        }
        fn closing(&self) -> bool {
            self.closing.load(SeqCst)
        }
        fn retire(&self) -> bool {
            true
        }
    }

    impl Model {
        fn new(workers: u64) -> Arc<Self> {
            let m = Arc::new(Model {
                queue: AtomicUsize::new(0),
                taken: AtomicUsize::new(0),
                closing: AtomicBool::new(false),
                sleep: Sleep::new(),
            });
            for _ in 0..workers {
                m.sleep.start_searching(); // workers are born searching
            }
            m
        }

        fn pop(&self) -> bool {
            let mut n = self.queue.load(SeqCst);
            while n > 0 {
                match self.queue.compare_exchange(n, n - 1, SeqCst, SeqCst) {
                    Ok(_) => return true,
                    Err(now) => n = now,
                }
            }
            false
        }

        /// The submitter's half, as in `Ticket::push` + `ensure_worker`
        /// (the model's pool is always at full size, so "nobody sleeping"
        /// ends the submit, as it does in a full pool).
        fn submit(&self) {
            self.queue.fetch_add(1, SeqCst);
            fence(SeqCst);
            if self.sleep.nobody_sleeping() {
                return;
            }
            let idle = self.sleep.load();
            if searching(idle) == 0 && sleeping(idle) > 0 {
                self.sleep.wake_one();
            }
        }

        /// The worker loop, as in `Worker::find_work`: take tasks until the
        /// pool closes with an empty queue (or `until` tasks were taken).
        fn work(&self, until: usize) {
            let mut searching = true;
            loop {
                if self.pop() {
                    if searching {
                        self.sleep.stop_searching();
                        searching = false;
                    }
                    self.taken.fetch_add(1, SeqCst);
                    continue;
                }
                if !searching {
                    self.sleep.start_searching();
                    searching = true;
                    continue;
                }
                if self.taken.load(SeqCst) >= until {
                    break;
                }
                if self.closing() && !self.has_work() {
                    break;
                }
                self.sleep.sleep(self, None);
            }
            if searching {
                self.sleep.stop_searching();
            }
        }
    }

    #[test]
    fn loom_a_submit_reaches_a_parking_worker() {
        loom::model(|| {
            let m = Model::new(1);
            let w = {
                let m = m.clone();
                loom::thread::spawn(move || m.work(1))
            };
            m.submit();
            w.join().unwrap();
            assert_eq!(m.taken.load(SeqCst), 1);
        });
    }

    #[test]
    fn loom_two_submits_one_worker() {
        loom::model(|| {
            let m = Model::new(1);
            let w = {
                let m = m.clone();
                loom::thread::spawn(move || m.work(2))
            };
            m.submit();
            m.submit();
            w.join().unwrap();
            assert_eq!(m.taken.load(SeqCst), 2);
        });
    }

    #[test]
    fn loom_shutdown_reaches_parked_workers() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let m = Model::new(2);
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let m = m.clone();
                    loom::thread::spawn(move || m.work(usize::MAX))
                })
                .collect();
            m.submit();
            m.closing.store(true, SeqCst);
            m.sleep.wake_all();
            for w in workers {
                w.join().unwrap();
            }
            // Closing waits for the queue to drain: the task was taken.
            assert_eq!(m.taken.load(SeqCst), 1);
        });
    }
}
