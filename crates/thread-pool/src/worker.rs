//! The worker thread: initialise, then take tasks until the pool closes.
//!
//! ## Lifecycle
//!
//! ```text
//!            spawn (counted searching)
//!                 |
//!                 v
//!           [initializer] --error/panic--> break the pool --> exit
//!                 |
//!                 v
//!   +------> [searching] --pop a task--> [running] --task ends--+
//!   |          |   ^  \                                         |
//!   |   spins, |   |   `--pool closing and queue empty--> exit  |
//!   |   yields |   | woken (token), or work seen at last look   |
//!   |          v   |                                            |
//!   |        [sleeping] --idle timeout, queue empty--> exit     |
//!   |                                                           |
//!   +-----------------------------------------------------------+
//! ```
//!
//! A worker that finishes a task and sees an empty queue counts itself as
//! searching *before* it publishes the task's outcome. A user who waits for
//! a result and then submits again therefore always finds an idle worker, so
//! a pool that only ever sees sequential submits keeps exactly one thread
//! (CPython's test_idle_thread_reuse; CPython's own idle flag is set after
//! the result is published and relies on GIL timing for this).
//!
//! ## Done-callbacks
//!
//! Publishing the outcome runs the future's done-callbacks (and
//! `Future::map` closures) on this thread. That is user code, which may
//! block, submit to this pool, or wait for a result of it, so the worker
//! must not be counted idle meanwhile: a submitter that saw it searching
//! would count on it and start nobody (a callback that submitted and waited
//! deadlocked, issue 11). The future calls the `before_callbacks` hook only
//! when it has callbacks, right before the first one runs; the worker then
//! leaves the searching count, and if a task was queued in between (by a
//! submitter that counted on it) it applies the chain rule, which wakes or
//! starts another worker for it. The leave is the same RMW-and-fence as
//! taking a task, so the argument of `sleep.rs` (case 3: a submitter that
//! saw a searching worker) covers it: the worker's look after its fence
//! sees any task pushed by a submitter that saw it searching. After the
//! callbacks the worker counts itself searching again and looks at the
//! queue, as after any task. Futures without callbacks (the common case)
//! skip the hook, so submit-then-wait still keeps a single thread.
//!
//! ## Spin, then park
//!
//! An empty queue is often refilled within microseconds (a caller that waits
//! for one result and submits the next). Parking and being woken costs two
//! context switches and a futex call on each side, so a worker first looks
//! again for a short while: a few rounds of `spin_loop` hints (the first
//! round as long as the pacing gap of `pacing.rs`, one hint unless
//! submitters are streaming; then 2, 4, 8 and 16 per round), then some
//! `yield_now` rounds, and only then parks (see `sleep.rs`). Submitters skip
//! the wake-up entirely while a worker is searching. Only one worker spins
//! at a time: a worker that finds another one already searching parks at
//! once (after the protocol's last look), so idle workers do not take CPU
//! from the threads doing real work. The whole spin lasts tens of
//! microseconds; an idle pool then costs nothing.

use std::cell::Cell;
use std::hint::spin_loop;
use std::sync::Arc;
use std::thread;

use crate::contain::contain;
use crate::job::{Ran, RunHooks};
use crate::pacing::Pacing;
use crate::pool::{Counters, Shared};
use crate::raw::RawJob;
use crate::sleep::{searching, Wake};

/// Rounds of `spin_loop` hints (the pacing gap, 2, 4, 8, then 16 per
/// round) before yielding. The queue is looked at between rounds, so a
/// round is kept short (16 hints are well under a microsecond) to notice a
/// new task quickly.
const SPIN_ROUNDS: u32 = 12;
/// The most `spin_loop` hints in one round, as a power of two.
const MAX_SPIN_SHIFT: u32 = 4;
/// Rounds of `yield_now` before parking.
const YIELD_ROUNDS: u32 = 64;

thread_local! {
    /// The address of the pool this thread works for, 0 on other threads.
    static WORKER_OF: Cell<usize> = const { Cell::new(0) };
}

/// True if the calling thread is one of `shared`'s workers (a task of the
/// pool is calling back into it).
pub(crate) fn is_worker_of(shared: &Shared) -> bool {
    WORKER_OF.with(|pool| pool.get() == shared as *const Shared as usize)
}

/// The body of every worker thread.
pub(crate) fn run(shared: Arc<Shared>, counters: Counters) {
    // The worker holds `shared` until it returns, so the address cannot be
    // reused by another pool while it is recorded here.
    WORKER_OF.with(|pool| pool.set(Arc::as_ptr(&shared) as usize));
    crate::trace::work_for(shared.config.trace.as_ref());
    if let Err(message) = shared.run_initializer() {
        shared.break_pool(message);
        shared.worker_exit(&counters, true);
        return;
    }
    let mut worker = Worker {
        shared: &shared,
        counters: &counters,
        searching: true,
        pacing: Pacing::new(),
    };
    let mut retired = false;
    loop {
        match worker.find_work() {
            Found::Job(job) => {
                let what = "a task's clean-up (a drop, or a callback-panic hook)";
                if !contain(what, || job.run(&mut worker)) {
                    // Every step that can panic here comes after the
                    // task's bookkeeping (contain.rs); this is for safety.
                    worker.counters.set_running(false);
                }
            }
            Found::Closing => break,
            Found::Retired => {
                retired = true;
                break;
            }
        }
    }
    shared.worker_exit(&counters, !retired);
}

enum Found {
    Job(RawJob),
    /// The pool is closing and the queue is empty.
    Closing,
    /// The idle timeout passed; the worker already left the counts.
    Retired,
}

struct Worker<'a> {
    shared: &'a Arc<Shared>,
    counters: &'a Counters,
    /// Whether this worker is in the pool's `searching` count.
    searching: bool,
    /// The wait before a second look at an empty queue.
    pacing: Pacing,
}

impl Worker<'_> {
    fn find_work(&mut self) -> Found {
        let shared = self.shared;
        let mut round = 0;
        // Whether this search has spun since its last empty look: the pacing
        // learns only from looks that follow its own waits (not from a
        // wake-up after a park, whose wait was not the gap).
        let mut waited = false;
        loop {
            if let Some(job) = shared.queue.pop() {
                if waited {
                    self.pacing.found(shared.queue.len() + 1);
                }
                if self.searching {
                    self.searching = false;
                    let idle = shared.sleep.stop_searching();
                    if searching(idle) == 0 && !shared.queue.is_empty() {
                        shared.chain();
                    }
                }
                return Found::Job(job);
            }
            if !self.searching {
                // Count ourselves as searching, then look once more.
                shared.sleep.start_searching();
                self.searching = true;
                continue;
            }
            if shared.closing() {
                // No task can be pushed once the pool is closing (pool.rs,
                // "The gate"), so an empty queue now stays empty.
                if shared.queue.is_empty() {
                    return Found::Closing;
                }
                continue;
            }
            if round == 0 && searching(shared.sleep.load()) > 1 {
                // Another worker is already spinning: one is enough to catch
                // the next task quickly, and a second would only take CPU
                // from the threads doing real work. Park (after the
                // protocol's last look) instead.
                round = SPIN_ROUNDS + YIELD_ROUNDS;
                continue;
            }
            if round < SPIN_ROUNDS {
                // The first wait is the pacing gap (pacing.rs), the later
                // ones the usual back-off.
                let pauses = if round == 0 {
                    self.pacing.gap()
                } else {
                    1 << round.min(MAX_SPIN_SHIFT)
                };
                for _ in 0..pauses {
                    spin_loop();
                }
                waited = true;
            } else if round < SPIN_ROUNDS + YIELD_ROUNDS {
                thread::yield_now();
            } else {
                match shared.sleep.sleep(&**shared, shared.config.idle_timeout) {
                    Wake::Retired => {
                        self.searching = false;
                        return Found::Retired;
                    }
                    Wake::Recheck | Wake::Woken | Wake::Closing => {
                        round = 0;
                        waited = false;
                    }
                }
                continue;
            }
            round += 1;
        }
    }
}

impl RunHooks for Worker<'_> {
    fn started(&mut self) {
        self.counters.set_running(true);
    }

    fn before_publish(&mut self, ran: Ran) {
        self.counters.set_running(false);
        match ran {
            Ran::Completed => self.counters.completed(),
            Ran::Failed => self.counters.failed(),
            Ran::Cancelled => self.counters.cancelled(),
        }
        // Idle before the outcome is visible: see the module docs.
        if !self.searching && self.shared.queue.is_empty() {
            self.shared.sleep.start_searching();
            self.searching = true;
        }
    }

    fn before_callbacks(&mut self) {
        // Busy again: see the module docs, "Done-callbacks".
        if self.searching {
            self.searching = false;
            self.shared.sleep.stop_searching();
            if !self.shared.queue.is_empty() {
                self.shared.chain();
            }
        }
    }
}
