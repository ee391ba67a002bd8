//! The state one pool's handle and its workers share, and the decisions
//! that need all of it: admitting a task, waking or starting a worker,
//! breaking the pool, shutting it down.
//!
//! ## The gate
//!
//! `gate` is a read-write lock over the pool's [`Life`] (open, shutting
//! down, terminating, broken: `life.rs` draws the transitions). Every submit
//! holds it *shared* from its check that the pool is open until its push is
//! done and its wake-or-spawn decision is made; `shutdown` and `break_pool`
//! take it *exclusively* to move the state ([`Shared::transition`], the one
//! place it moves). So once the pool has left `Open`, no push is in flight
//! and none can follow. That is what lets a worker exit as soon as it sees
//! the pool closing and the queue empty: no task can arrive after its look
//! (the push happened before the unlock, the unlock before the `closing`
//! store, and the worker's SeqCst load of `closing` synchronises with that
//! store). A shared lock costs a submit two uncontended atomic RMWs.
//!
//! The gate is never held while user code runs: tasks drained on shutdown
//! are cancelled, and their done-callbacks run, after it is released.
//!
//! ## Queued work that is not in the queue
//!
//! A running default `map` holds queued work of its own: the items in its
//! bag and the unstarted rest of its runners' claims (`adaptive.rs`).
//! Draining the queue does not reach them, so the two places that drain it
//! (`shutdown` with `cancel_futures`, and `break_pool`) also raise
//! `queued_cancelled`, which those runners read before every item and stop
//! at. The items they leave yield `Cancelled` (or the broken pool's error).
//!
//! ## Starting workers
//!
//! After a push (see `sleep.rs` for why the fence and the load are enough):
//! if a worker is searching, it will find the task; else wake a sleeper;
//! else, if fewer than `max_workers` are alive, start one. (First, an
//! optimisation: if nobody sleeps and all `max_workers` are alive, there is
//! nothing to do, learnt from two rarely written lines without reading the
//! busy `idle` word.) A newly started worker counts as searching from
//! birth, so the next submit does not start another one while this one is
//! still running its initializer.
//!
//! The *chain rule*: a searching worker that takes a task, and sees more
//! tasks queued and no other worker searching, applies the same rule for the
//! next task. This turns "one wake-up per burst" into as many workers as the
//! burst needs, without making every submit pay for a wake-up.

use crate::interrupt::Tokens;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;
use std::{io, panic};

use crossbeam_utils::CachePadded;
use future::{contain, panic_message, TaskError};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use crate::error::SubmitError;
use crate::life::Life;
use crate::queue::Queue;
use crate::raw::RawJob;
use crate::sleep::{searching, sleeping, Sleep, Watch};
use crate::stats::{Stats, Totals, WorkerCounters};
use crate::worker;

/// A worker initializer, with its error already turned into text.
pub(crate) type Initializer = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the builder decided.
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) thread_name_prefix: String,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) queue_capacity: Option<usize>,
    /// `map`'s default window; `None`: every item submitted at the call.
    pub(crate) map_window: Option<usize>,
    /// Where task transitions are recorded (`Builder::trace`); `None`: not
    /// recorded, at the cost of this test per submit.
    pub(crate) trace: Option<future::trace::Recorder>,
}

/// Why a task was not admitted.
pub(crate) enum Refusal {
    Full,
    Shutdown,
    Broken(String),
}

impl Refusal {
    pub(crate) fn into_submit_error(self) -> SubmitError {
        match self {
            // `enter(block = true)` never answers Full.
            Refusal::Full | Refusal::Shutdown => SubmitError::Shutdown,
            Refusal::Broken(msg) => SubmitError::Broken(msg),
        }
    }
}

pub(crate) type Counters = Arc<CachePadded<WorkerCounters>>;

#[derive(Default)]
struct Registry {
    /// Workers ever started: the next thread is `prefix-{next_id}`.
    next_id: usize,
    handles: Vec<JoinHandle<()>>,
    /// The counters of the live workers.
    counters: Vec<Counters>,
}

/// Everything one pool's handle and its workers share (module docs). The
/// handle and every live worker hold it in an `Arc`.
///
/// Invariants: outside a transition (which holds the gate exclusively),
/// `closing` is `gate.is_closing()` and `queued_cancelled` is
/// `gate.queued_cancelled()`; `alive` never exceeds `config.max_workers`.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) queue: Queue,
    pub(crate) sleep: Sleep,
    /// Workers started and not exited (bounded by `max_workers` with a CAS).
    alive: CachePadded<AtomicUsize>,
    /// `Life::is_closing` of the gate's state, readable without the lock.
    /// Stored only by `transition`, never cleared.
    closing: AtomicBool,
    /// `Life::queued_cancelled` of the gate's state: the queued tasks were
    /// dropped (cancelled, or failed by a broken pool), so a running `map`
    /// starts no more items (module docs). Stored only by `transition`,
    /// never cleared; in an `Arc` because every running `map`'s bag holds
    /// it and reads it directly.
    queued_cancelled: Arc<AtomicBool>,
    /// The pool's life cycle, behind the gate (module docs).
    gate: RwLock<Life>,
    registry: Mutex<Registry>,
    /// Held by an outside caller of `shutdown(wait = true)` while it joins.
    joining: Mutex<()>,
    totals: Totals,
    /// The tokens of interruptible tasks (see `interrupt`).
    pub(crate) tokens: Tokens,
}

/// Permission to push one task: a reserved queue slot and the gate held shared.
pub(crate) struct Ticket<'a> {
    shared: &'a Arc<Shared>,
    gate: RwLockReadGuard<'a, Life>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Arc<Self> {
        Arc::new(Shared {
            queue: Queue::new(config.queue_capacity),
            config,
            sleep: Sleep::new(),
            alive: CachePadded::new(AtomicUsize::new(0)),
            closing: AtomicBool::new(false),
            queued_cancelled: Arc::new(AtomicBool::new(false)),
            gate: RwLock::new(Life::Open),
            registry: Mutex::new(Registry::default()),
            joining: Mutex::new(()),
            totals: Totals::default(),
            tokens: Tokens::default(),
        })
    }

    /// Admits one task: reserves a queue slot (waiting for room if `block`)
    /// and holds the gate shared until the task is pushed.
    pub(crate) fn enter(self: &Arc<Self>, block: bool) -> Result<Ticket<'_>, Refusal> {
        // A cheap early answer, so a closed pool never makes anyone wait for room.
        if self.closing() {
            return Err(self.refusal(&self.gate.read()).unwrap_or(Refusal::Shutdown));
        }
        if block {
            self.queue.reserve();
        } else if !self.queue.try_reserve() {
            return Err(Refusal::Full);
        }
        let gate = self.gate.read();
        if let Some(refusal) = self.refusal(&gate) {
            drop(gate);
            self.queue.release();
            return Err(refusal);
        }
        Ok(Ticket { shared: self, gate })
    }

    fn refusal(&self, life: &Life) -> Option<Refusal> {
        match life {
            Life::Open => None,
            Life::Broken { message, .. } => Some(Refusal::Broken(message.clone())),
            Life::ShuttingDown | Life::Terminating => Some(Refusal::Shutdown),
        }
    }

    /// The one place the life cycle moves: with the gate held exclusively,
    /// replaces the state by `next(state)` and stores the two flags read
    /// without the gate. The flags only ever go from false to true, as the
    /// states only go forward (`life.rs`).
    fn transition(&self, life: &mut Life, next: impl FnOnce(Life) -> Life) {
        *life = next(std::mem::take(life));
        if life.is_closing() {
            self.closing.store(true, SeqCst);
        }
        if life.queued_cancelled() {
            self.queued_cancelled.store(true, SeqCst);
        }
    }

    /// True once the pool is shut down or broken (`Life::is_closing`).
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(SeqCst)
    }

    /// The flag raised once the queued tasks were cancelled or failed
    /// (module docs), for a `map`'s runners to read before each item
    /// (`adaptive.rs` says why a relaxed load of it is enough).
    pub(crate) fn queued_cancelled_flag(&self) -> Arc<AtomicBool> {
        self.queued_cancelled.clone()
    }

    /// The broken-pool message, if the pool is broken.
    pub(crate) fn broken(&self) -> Option<String> {
        self.gate.read().broken().map(str::to_owned)
    }

    /// True once `shutdown` was called.
    pub(crate) fn is_shutdown(&self) -> bool {
        self.gate.read().is_shut_down()
    }

    /// After a push (and a SeqCst fence): make sure some worker will take the
    /// task. Errs only if a needed thread could not be started.
    fn ensure_worker(self: &Arc<Self>, gate: &Life) -> io::Result<()> {
        // Optimisation (sleep.rs, "The `parking` count"): the common case of
        // a busy pool at full size, nobody to wake and no room to start
        // anyone, learnt from two lines that rarely change.
        if self.sleep.nobody_sleeping() && self.alive.load(SeqCst) >= self.config.max_workers {
            return Ok(());
        }
        let idle = self.sleep.load();
        if searching(idle) > 0 {
            return Ok(());
        }
        if sleeping(idle) > 0 && self.sleep.wake_one() {
            return Ok(());
        }
        self.try_spawn(gate).map(drop)
    }

    /// The chain rule, called by a worker that just left the searching state
    /// with tasks still queued and nobody else searching.
    pub(crate) fn chain(self: &Arc<Self>) {
        let gate = self.gate.read();
        if self.refusal(&gate).is_none() {
            // A failed spawn here is harmless: the caller is alive and will
            // come back to the queue.
            let _ = self.ensure_worker(&gate);
        }
    }

    /// Starts a worker if fewer than `max_workers` are alive. The caller
    /// holds the gate shared and has checked that the pool is open, so a
    /// concurrent `shutdown(wait = true)` will find this thread's handle.
    fn try_spawn(self: &Arc<Self>, _gate: &Life) -> io::Result<bool> {
        let mut alive = self.alive.load(SeqCst);
        loop {
            if alive >= self.config.max_workers {
                return Ok(false);
            }
            match self
                .alive
                .compare_exchange_weak(alive, alive + 1, SeqCst, SeqCst)
            {
                Ok(_) => break,
                Err(now) => alive = now,
            }
        }
        // Born searching: see the module docs.
        self.sleep.start_searching();
        let counters = Counters::default();
        let mut registry = self.registry.lock();
        reap_finished(&mut registry.handles);
        let id = registry.next_id;
        let shared = self.clone();
        let mine = counters.clone();
        let spawned = thread::Builder::new()
            .name(format!("{}-{id}", self.config.thread_name_prefix))
            .spawn(move || worker::run(shared, mine));
        match spawned {
            Ok(handle) => {
                registry.next_id += 1;
                registry.handles.push(handle);
                registry.counters.push(counters);
                Ok(true)
            }
            Err(e) => {
                self.sleep.stop_searching();
                self.alive.fetch_sub(1, SeqCst);
                Err(e)
            }
        }
    }

    /// Marks the pool broken (an initializer failed, or no worker thread can
    /// be started) and fails every queued task with the message.
    pub(crate) fn break_pool(&self, message: String) {
        let (message, drained) = {
            let mut gate = self.gate.write();
            self.transition(&mut gate, |life| life.break_with(message));
            // The first message, if the pool was already broken.
            let message = gate.broken().unwrap_or_default().to_owned();
            (message, self.queue.drain())
        };
        self.sleep.wake_all();
        for job in drained {
            // Relaxed: a statistics counter (see stats.rs); bumped before the
            // future is failed, so whoever sees the failure sees the count.
            self.totals.failed.fetch_add(1, Relaxed);
            let error = TaskError::BrokenExecutor(message.clone());
            contain(
                "thread-pool",
                "the drop of a task failed by a broken pool",
                || job.fail(error),
            );
        }
    }

    /// `shutdown(wait, cancel_futures)`; see the executor's docs.
    pub(crate) fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let drained = {
            let mut gate = self.gate.write();
            self.transition(&mut gate, |life| life.shut_down(cancel_futures));
            if cancel_futures {
                self.queue.drain()
            } else {
                Vec::new()
            }
        };
        self.sleep.wake_all();
        for job in drained {
            // Relaxed: a statistics counter, bumped before the cancel is
            // visible (as above).
            self.totals.cancelled.fetch_add(1, Relaxed);
            contain(
                "thread-pool",
                "the drop of a task cancelled by shutdown",
                || job.cancel(),
            );
        }
        if wait {
            self.join_workers();
        }
    }

    /// Joins every worker thread started so far, except the calling thread
    /// (a task may shut down its own pool).
    ///
    /// Callers from outside the pool take turns (`joining`): the first one
    /// takes every handle, so a second concurrent waited shutdown must not
    /// return before the first one has joined them all. A worker does not
    /// take a turn: an outside caller holding it may be joining that very
    /// worker, which would then never exit.
    fn join_workers(&self) {
        let me = thread::current().id();
        let _turn = (!worker::is_worker_of(self)).then(|| self.joining.lock());
        let handles = std::mem::take(&mut self.registry.lock().handles);
        let (own, others): (Vec<_>, Vec<_>) =
            handles.into_iter().partition(|h| h.thread().id() == me);
        self.registry.lock().handles.extend(own);
        for handle in others {
            // Workers catch task panics; a join error would be our own bug,
            // and there is nothing useful to do with it during shutdown.
            let _ = handle.join();
        }
    }

    /// Runs the initializer, if any, turning an error or a panic into the
    /// broken-pool message.
    pub(crate) fn run_initializer(&self) -> Result<(), String> {
        let Some(init) = &self.config.initializer else {
            return Ok(());
        };
        const BROKEN: &str = "A thread initializer failed, the thread pool is not usable anymore";
        match panic::catch_unwind(panic::AssertUnwindSafe(|| init())) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(format!("{BROKEN}: {msg}")),
            Err(payload) => Err(format!(
                "{BROKEN}: the initializer panicked: {}",
                panic_message(&*payload)
            )),
        }
    }

    /// A worker leaves: fold its counters into the totals and, unless it
    /// already left `idle` and `alive` (idle timeout), leave them now.
    pub(crate) fn worker_exit(&self, counters: &Counters, still_counted: bool) {
        if still_counted {
            self.sleep.stop_searching();
            self.alive.fetch_sub(1, SeqCst);
        }
        let mut registry = self.registry.lock();
        self.totals.absorb(counters);
        registry.counters.retain(|c| !Arc::ptr_eq(c, counters));
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        {
            // Under the registry lock, so an exiting worker is counted once:
            // either in the list or in the totals.
            let registry = self.registry.lock();
            for c in &registry.counters {
                c.add_to(&mut stats);
            }
            self.totals.add_to(&mut stats);
        }
        let idle = self.sleep.load();
        stats.workers_alive = self.alive.load(SeqCst);
        stats.workers_idle = (searching(idle) + sleeping(idle)) as usize;
        stats.queued = self.queue.len();
        stats
    }
}

/// Joins the handles of workers that have already exited (idle timeout), so
/// the list does not grow with every retired worker.
fn reap_finished(handles: &mut Vec<JoinHandle<()>>) {
    let mut i = 0;
    while i < handles.len() {
        if handles[i].is_finished() {
            let _ = handles.swap_remove(i).join();
        } else {
            i += 1;
        }
    }
}

impl Watch for Shared {
    fn has_work(&self) -> bool {
        !self.queue.is_empty()
    }

    fn closing(&self) -> bool {
        Shared::closing(self)
    }

    /// The idle-timeout extension of the park protocol (sleep.rs).
    fn retire(&self) -> bool {
        // Same pattern as the park: leave `alive`, fence, look at the queue.
        // A submitter that pushed before our fence is seen here; one that
        // pushed after it sees `alive` one lower and may start a worker.
        let mut alive = self.alive.fetch_sub(1, SeqCst) - 1;
        fence(SeqCst);
        if self.queue.is_empty() {
            return true;
        }
        // Work arrived: stay, unless a replacement already took our place.
        while alive < self.config.max_workers {
            match self
                .alive
                .compare_exchange_weak(alive, alive + 1, SeqCst, SeqCst)
            {
                Ok(_) => return false,
                Err(now) => alive = now,
            }
        }
        true
    }
}

impl Ticket<'_> {
    /// Pushes the task and makes sure a worker will take it.
    pub(crate) fn push(self, job: RawJob) {
        let Ticket { shared, gate } = self;
        shared.queue.push(job);
        // The submitter's fence of the park protocol (sleep.rs).
        fence(SeqCst);
        let spawn_error = shared.ensure_worker(&gate).err();
        drop(gate);
        if let Some(e) = spawn_error {
            // With no worker alive, nobody would ever run the task.
            if shared.alive.load(SeqCst) == 0 {
                shared.break_pool(format!("could not start a worker thread: {e}"));
            }
        }
    }
}
