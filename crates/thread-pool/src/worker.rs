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
//! would count on it and start nobody, and a callback that submitted a task
//! and waited for it would wait forever. The future calls the `before_callbacks` hook only
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
//! ## Panics that escape a task
//!
//! A task's closure runs under `catch_unwind` (`job.rs`), and a panicking
//! done-callback or callback-panic hook is caught by the future crate. A
//! few panics can still come out of a job: the drop of a cancelled task's
//! closure (it is dropped unrun) and the drop of a result nobody holds
//! (dropped with the task's promise, on the worker). Left alone, one would
//! unwind through the worker loop and end the thread without leaving the
//! pool's counts, and the pool would believe in a worker that does not
//! exist: later submits would count on it and never run. So the worker runs
//! each job under `future::contain`, which catches what escapes, reports it
//! on stderr and lets the worker go on with its thread and its place in the
//! counts (`shutdown(cancel_futures)` and a broken pool drop each queued
//! task the same way, so every one is still cancelled or failed). rayon
//! aborts the process here instead; continuing is safe because every path
//! that can panic there runs after the job's bookkeeping is done (the
//! outcome published or the cancellation acknowledged, the worker's counts
//! updated), so nothing is left half-updated.
//!
//! ## Spin, then park (an optimisation)
//!
//! A worker that finds the queue empty does not park at once: a
//! [`Backoff`] spins and yields for tens of
//! microseconds first (`backoff.rs` says why), its first spin as long as
//! the pacing gap (`pacing.rs`: one pause hint unless submitters are
//! streaming). Submitters skip the wake-up entirely while a worker is
//! searching. Only one worker spins at a time: a worker that finds another
//! one already searching parks at once (after the protocol's last look), so
//! idle workers do not take CPU from the threads doing real work.

use std::cell::Cell;
use std::sync::Arc;

use future::contain;

use crate::backoff::{Backoff, Snooze};
use crate::job::{Ran, RunHooks};
use crate::pacing::Pacing;
use crate::raw::RawJob;
use crate::shared::{Counters, Shared};
use crate::sleep::{searching, Wake};

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
                if !contain("thread-pool", what, || job.run(&mut worker)) {
                    // Every step that can panic here comes after the
                    // task's bookkeeping (module docs, "Panics that escape
                    // a task"); this is for safety.
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
    /// Takes the next task, or says why there is none.
    ///
    /// The essential path is the park protocol of `sleep.rs`: pop; on an
    /// empty queue count as searching and look again; then park, and look
    /// again when woken. The spinning before the park (`backoff.rs`) and the
    /// pacing of the second look (`pacing.rs`) are optimisations, marked
    /// below; without them no task would be missed, only woken for more
    /// often.
    fn find_work(&mut self) -> Found {
        let shared = self.shared;
        let mut backoff = Backoff::new();
        // Optimisation (pacing): whether this search has spun since its last
        // empty look. The pacing learns only from looks that follow its own
        // waits (not from a wake-up after a park, whose wait was not the gap).
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
                // No task can be pushed once the pool is closing (shared.rs,
                // "The gate"), so an empty queue now stays empty.
                if shared.queue.is_empty() {
                    return Found::Closing;
                }
                continue;
            }
            // Optimisation: only one worker spins. If another one is already
            // searching, it will catch the next task quickly, and a second
            // would only take CPU from the threads doing real work: park
            // (after the protocol's last look) instead.
            if backoff.is_fresh() && searching(shared.sleep.load()) > 1 {
                backoff.park_next();
                continue;
            }
            // Optimisation: spin, then yield, before parking; the first spin
            // is the pacing gap.
            match backoff.snooze(self.pacing.gap()) {
                Snooze::Spun => waited = true,
                Snooze::Yielded => {}
                Snooze::Park => {
                    let timeout = shared.config.idle_timeout;
                    if shared.sleep.sleep(&**shared, timeout) == Wake::Retired {
                        self.searching = false;
                        return Found::Retired;
                    }
                    // Woken, or work seen at the last look: search afresh.
                    backoff = Backoff::new();
                    waited = false;
                }
            }
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
