//! `Future<T>` (the read side) and `Promise<T>` (the write side), sharing one
//! allocation: a state word, the outcome, and (for those who wait) a mutex
//! and a condition variable.
//!
//! This is CPython's `concurrent.futures.Future` with its two roles split:
//! the executor holds the [`Promise`], completes it exactly once, and can
//! never be confused with a reader; users hold [`Future`]s, as many clones as
//! they like, all looking at the same outcome.
//!
//! ## The state word
//!
//! The whole fast path lives in one atomic word, `Inner::state` (the table
//! of its bits and the argument for every transition are in
//! `docs/future.md`, "The state word, the cell and the lock"):
//!
//! | bits | name | meaning |
//! |---|---|---|
//! | 0-2 | the code | `PENDING`, `RUNNING`, `CANCELLED`, `FINISHED`, `CANCELLED_AND_NOTIFIED` |
//! | 3 | `WRITING` | a completer has claimed the outcome cell (set once, never cleared) |
//! | 4 | `WAITING` | someone registered under the lock (a callback, a waiter, a waker, a blocked reader): from then on, the move to a done state takes the lock (set once, never cleared) |
//! | 5.. | handles | how many handles (the promise, each future) there are: `shared.rs` counts them here, so that a promise dropped unused publishes and lets go of its handle in one CAS |
//!
//! * **Start and cancel are one compare-and-swap each** on the code
//!   (Pending -> Running, Cancelled -> CancelledAndNotified, Pending ->
//!   Cancelled), whatever the flag bits say; a `cancel` that finds `WAITING`
//!   makes its CAS under the lock instead, to hand over the listeners.
//! * **A completion** claims the cell with `WRITING` (one `fetch_or`: the
//!   first claimant is the only writer there will ever be), writes the
//!   outcome into the cell, and publishes it with one CAS to `FINISHED`
//!   (Release). With nobody registered that is all: no lock, no syscall.
//!   If `WAITING` is set, the same CAS is made under the lock, and the
//!   listeners are drained there, as before this word existed. If a
//!   cancel wins the race for the code, the completer takes its value back
//!   out of the cell (nobody reads the cell of a cancelled future).
//! * **A registration** (`add_done_callback`, `wait`/`as_completed`
//!   installing their waiter, an `Awaiting` storing its waker, a reader
//!   about to block) takes the lock and sets `WAITING` with one `fetch_or`.
//!   The `fetch_or` and the completion's CAS are ordered one way or the
//!   other: either the `fetch_or` sees the future done (and the registrant
//!   serves itself: runs the callback, posts to the waiter, reads the
//!   value), or the CAS sees `WAITING` (it fails, reloads, and completes
//!   under the lock, where it finds the registration). Never neither.
//! * **A reader** that finds the future done (an Acquire load of the word)
//!   reads the cell under the lock, because a done future's value can still
//!   be moved out (`into_result` on one of several handles); the last handle
//!   moves it out with no lock at all (`Shared::is_unique`).
//!
//! What must happen *after* a transition to done, when someone registered
//! (waking blocked readers, posting to `wait`/`as_completed` waiters,
//! running done-callbacks) is decided under the lock and done in this
//! order: waiters are posted under the lock (so installation cannot miss
//! them), blocked readers are notified, the lock is released, and only then
//! do user callbacks run, so a callback may freely read or even wait on the
//! future (or any other) without deadlocking.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Waker;
use std::time::Duration;

use crate::error::{short_type_name, FutureError, InvalidStateError, TaskError};
use crate::report::{report_callback_panic, report_waker_panic};
use crate::shared::{Counted, Shared};
use crate::state::State;
use crate::sync::{
    deadline_after, lock, wait_until, yield_now, Arc, AtomicUsize, Condvar, Mutex, MutexGuard,
    Ordering, UnsafeCell,
};
use crate::task_report::TaskReport;
use crate::waiter::Waiter;

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send + 'static>;

/// What the outcome cell holds. A finished future holds `Value`, `Failed`
/// or `Broken`, and `Value` becomes `Vacant` when a handle moves it out.
enum Outcome<T> {
    /// No value: not written yet, moved out by `into_result`, or taken back
    /// by a completer that lost the race to `cancel()`.
    Vacant,
    /// The task's value.
    Value(T),
    /// The task's error. Boxed: errors are rare, and a small cell keeps
    /// every future's allocation small (see `Inner`).
    Failed(Box<TaskError>),
    /// The promise was dropped before it completed
    /// ([`TaskError::BrokenPromise`]): the one failure that every unused
    /// promise pays, so it costs no allocation.
    Broken,
}

impl<T> Outcome<T> {
    fn from_result(result: Result<T, TaskError>) -> Self {
        match result {
            Ok(value) => Outcome::Value(value),
            Err(TaskError::BrokenPromise) => Outcome::Broken,
            Err(e) => Outcome::Failed(Box::new(e)),
        }
    }

    /// Whether FIRST_EXCEPTION waiters count it (cancelled futures never do).
    fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_) | Outcome::Broken)
    }

    /// The task's error, if it failed.
    fn error(&self) -> Option<TaskError> {
        match self {
            Outcome::Failed(e) => Some((**e).clone()),
            Outcome::Broken => Some(TaskError::BrokenPromise),
            Outcome::Vacant | Outcome::Value(_) => None,
        }
    }

    /// What `result()` returns: a clone of the value, or why there is none.
    fn cloned(&self) -> Result<T, FutureError>
    where
        T: Clone,
    {
        match self {
            Outcome::Value(value) => Ok(value.clone()),
            other => Err(other
                .error()
                .map_or(FutureError::ValueTaken, FutureError::Task)),
        }
    }

    /// What `into_result()` returns: the value moved out (leaving `Vacant`).
    fn take(&mut self) -> Result<T, FutureError> {
        match std::mem::replace(self, Outcome::Vacant) {
            Outcome::Value(value) => Ok(value),
            other => {
                let error = other.error();
                *self = other;
                Err(error.map_or(FutureError::ValueTaken, FutureError::Task))
            }
        }
    }
}

/// The codes of the state word (bits 0-2). The first four are [`State`]'s
/// own discriminants; `CANCELLED_AND_NOTIFIED` is Python's name for a
/// cancellation the executor has seen (through
/// `set_running_or_notify_cancel`), which reads as Cancelled from outside
/// and only makes a second acknowledgement an error, as in Python.
const PENDING: usize = State::Pending as usize;
const RUNNING: usize = State::Running as usize;
const CANCELLED: usize = State::Cancelled as usize;
const FINISHED: usize = State::Finished as usize;
const CANCELLED_AND_NOTIFIED: usize = 4;
/// The bits of the word that hold the code.
const CODE: usize = 0b111;
/// A completer has claimed the outcome cell: the only one that ever will.
const WRITING: usize = 1 << 3;
/// Someone registered under the lock: the move to done must take the lock.
const WAITING: usize = 1 << 4;
/// One handle (the promise, or one future) in the count that the bits from
/// here up hold (see `shared.rs`).
const HANDLE: usize = 1 << 5;

/// The code of a state word.
fn code(word: usize) -> usize {
    word & CODE
}

/// `word` with its code replaced by `to` (the flag bits kept).
fn with_code(word: usize, to: usize) -> usize {
    (word & !CODE) | to
}

/// The public state a state word stands for.
fn state_of(word: usize) -> State {
    match code(word) {
        PENDING => State::Pending,
        RUNNING => State::Running,
        CANCELLED | CANCELLED_AND_NOTIFIED => State::Cancelled,
        _ => State::Finished,
    }
}

/// Whether a state word says done (a done code is final).
fn is_done(word: usize) -> bool {
    state_of(word).is_done()
}

/// Who to tell when the future is done. Most futures never get a callback
/// or a waiter, so this lives behind an `Option<Box<..>>`: one word in the
/// slot instead of two vectors.
struct Listeners<T> {
    /// Done-callbacks, in the order they were added.
    callbacks: Vec<Callback<T>>,
    /// `wait`/`as_completed` waiters to post to on completion, each with the
    /// index this future has in that waiter's list.
    waiters: Vec<(Arc<Waiter>, usize)>,
    /// Async tasks awaiting this future (see `awaiting.rs`), each under the
    /// key its `Awaiting` was given at its first pending poll. One entry per
    /// `Awaiting`: a re-poll replaces the waker, a drop removes the entry.
    wakers: Vec<(u64, Waker)>,
    /// The next key to hand out (unique while this box lives, and it lives
    /// until the future is done, after which nothing registers).
    next_waker_key: u64,
}

/// What lives behind the lock: only what waiting needs, and the report.
struct Slot<T> {
    /// Drained on completion.
    listeners: Option<Box<Listeners<T>>>,
    /// Threads blocked in `result()` and friends. Completion only pays for a
    /// condvar broadcast (a syscall) when someone is actually blocked.
    blocked_readers: usize,
    /// Where and how the task ran, if its executor measured it (see
    /// `task_report`). Boxed: most futures never get one.
    report: Option<Box<TaskReport>>,
}

impl<T> Slot<T> {
    fn listeners(&mut self) -> &mut Listeners<T> {
        self.listeners.get_or_insert_with(|| {
            Box::new(Listeners {
                callbacks: Vec::new(),
                waiters: Vec::new(),
                wakers: Vec::new(),
                next_waker_key: 0,
            })
        })
    }
}

/// What a transition to a final state leaves to do once the lock is released.
#[must_use]
struct AfterFinish<T> {
    callbacks: Vec<Callback<T>>,
    /// Awaiting tasks, and `as_completed_stream` tasks whose waiter was
    /// posted: woken after unlocking, since a waker may run arbitrary code.
    wakers: Vec<Waker>,
    wake_readers: bool,
}

/// The shared part of a future. It is one allocation per task, so it is kept
/// small (under 128 bytes for small `T`, where glibc's allocator stays on its
/// lock-free per-thread cache).
pub(crate) struct Inner<T> {
    /// The state word (see the module docs): the code, the `WRITING` and
    /// `WAITING` flags, and the count of handles. Done codes are final, so a
    /// done code read anywhere is the truth.
    state: AtomicUsize,
    /// The outcome. Written only by the completer that set `WRITING`, and
    /// only while the code is not `FINISHED`; read (and moved out of) only
    /// once an Acquire load has seen `FINISHED`, under the slot's lock (or
    /// with the last handle, which nobody else can reach).
    outcome: UnsafeCell<Outcome<T>>,
    slot: Mutex<Slot<T>>,
    /// Signalled (broadcast) when the future becomes done, if a reader is
    /// blocked.
    done: Condvar,
}

// SAFETY: `Inner` is shared between threads through `Shared`. All of it is
// `Sync` on its own except the outcome cell, which the state word guards: it
// is written by one thread (the `WRITING` claimant) before the Release that
// publishes `FINISHED`, and after that only under the slot's mutex, which
// makes every later access exclusive (see `Inner::outcome` and the module
// docs). So `&Inner<T>` gives `&mut T` to one thread at a time, and
// only needs `T: Send`, exactly as `Mutex<T>` is `Sync` when `T: Send`.
unsafe impl<T: Send> Sync for Inner<T> {}

/// The handles' count lives in the state word's high bits (see `shared.rs`).
impl<T> Counted for Inner<T> {
    const HANDLE: usize = HANDLE;

    fn count_word(&self) -> &AtomicUsize {
        &self.state
    }
}

// A handle stays usable after a panic caught around it, as it was when all
// of this lived in a `Mutex` (which is `RefUnwindSafe`): the cell only
// changes by whole writes and moves with no user code in between, and user
// code (a `Clone` of the value) only ever sees a shared borrow of it.
impl<T> std::panic::RefUnwindSafe for Inner<T> {}

/// The read side of a task's outcome. Cheap to clone: clones share one slot.
///
/// Equality and hashing are by identity (two handles are equal when they
/// are handles to the same future), so futures can key a map, as the book's
/// `to_do_map` does.
pub struct Future<T> {
    inner: Shared<Inner<T>>,
}

/// The write side: completed once by whoever runs the task.
///
/// Dropping a promise that was never completed finishes its future with
/// [`TaskError::BrokenPromise`], so no reader can wait forever on a task that
/// vanished (a worker that died, a queue that was dropped).
pub struct Promise<T> {
    /// Dropped by hand in `Drop`: a promise dropped unused lets go of its
    /// handle in the same CAS that publishes the broken promise.
    inner: ManuallyDrop<Shared<Inner<T>>>,
}

/// Creates a pending future and the promise that completes it.
///
/// ```
/// let (promise, future) = future::promise::<u32>();
/// assert!(!future.done());
/// promise.set_result(7).unwrap();
/// assert_eq!(future.result().unwrap(), 7);
/// ```
pub fn promise<T>() -> (Promise<T>, Future<T>) {
    let (for_promise, for_future) = Shared::new_pair(Inner {
        // Two handles: the promise's and the future's.
        state: AtomicUsize::new(PENDING + 2 * HANDLE),
        outcome: UnsafeCell::new(Outcome::Vacant),
        slot: Mutex::new(Slot {
            listeners: None,
            blocked_readers: 0,
            report: None,
        }),
        done: Condvar::new(),
    });
    (
        Promise {
            inner: ManuallyDrop::new(for_promise),
        },
        Future { inner: for_future },
    )
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        lock(&self.slot)
    }

    /// The state word. Acquire: pairs with the Release of the completion's
    /// CAS, so a thread that sees `FINISHED` also sees the outcome written
    /// before it (and user code that checks `done()` without the lock sees
    /// what the completing thread did before completing).
    fn word(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    /// The public state, read without the lock.
    fn state(&self) -> State {
        state_of(self.word())
    }

    /// Under the lock (`_slot` proves it is held): sets `WAITING` and
    /// returns the word as it was. If it was not done, whoever makes it
    /// done will take this lock to do so, and find what the caller
    /// registers before releasing it; if it was done, nobody will drain the
    /// listeners again, and the caller serves itself.
    ///
    /// Acquire: if the future was done, pairs with the completion's Release,
    /// so the caller may read the outcome. Release is not needed: a
    /// completer that sees `WAITING` takes the lock, which orders the rest.
    fn listen(&self, _slot: &mut Slot<T>) -> usize {
        self.state.fetch_or(WAITING, Ordering::Acquire)
    }

    /// Under the lock (`_slot` proves it is held), runs `f` on the outcome
    /// if the future is finished; `None` if it is not (pending, running, or
    /// cancelled: a cancelled future has no outcome).
    fn with_outcome<R>(
        &self,
        _slot: &mut Slot<T>,
        f: impl FnOnce(&mut Outcome<T>) -> R,
    ) -> Option<R> {
        if code(self.word()) != FINISHED {
            return None;
        }
        // SAFETY: the Acquire load above saw FINISHED, so the completer's
        // write of the cell happens-before this access, and the completer
        // never touches the cell again once FINISHED is published. Every
        // access after FINISHED is made here, under the slot's lock (which
        // the caller holds), or through the last handle (`into_result`),
        // which excludes every other thread. So this access is exclusive.
        Some(self.outcome.with_mut(|outcome| f(unsafe { &mut *outcome })))
    }

    /// Python's repr, written from inside the lock.
    fn repr(&self, slot: &mut Slot<T>) -> String {
        let word = self.word();
        let described = self.with_outcome(slot, |outcome| match outcome {
            Outcome::Failed(e) => format!("<Future state=finished raised {}>", e.name()),
            Outcome::Broken => format!(
                "<Future state=finished raised {}>",
                TaskError::BrokenPromise.name()
            ),
            Outcome::Value(_) | Outcome::Vacant => format!(
                "<Future state=finished returned {}>",
                short_type_name(std::any::type_name::<T>())
            ),
        });
        described.unwrap_or_else(|| format!("<Future state={}>", state_of(word)))
    }

    /// `FINISHED: <Future state=finished returned i32>`, as Python words it.
    fn invalid_state(&self, slot: &mut Slot<T>) -> InvalidStateError {
        let word = match code(self.word()) {
            PENDING => "PENDING",
            RUNNING => "RUNNING",
            CANCELLED => "CANCELLED",
            CANCELLED_AND_NOTIFIED => "CANCELLED_AND_NOTIFIED",
            _ => "FINISHED",
        };
        InvalidStateError {
            message: format!("{word}: {}", self.repr(slot)),
        }
    }

    /// Spins briefly, without the lock, in case the future is about to be
    /// done: a reader that arrives a microsecond before the result then
    /// skips the sleep and the wake-up (a syscall on each side), which
    /// roughly halves a pool's round trip. Bounded: about a microsecond of
    /// `spin_loop` hints, then the caller blocks on the condvar. (Not under
    /// loom: the spin only reads, and the blocking path re-checks.)
    fn spin_until_done(&self) {
        #[cfg(not(loom))]
        for step in 0..SPIN_STEPS {
            if self.state().is_done() {
                return;
            }
            for _ in 0..(1u32 << step) {
                std::hint::spin_loop();
            }
        }
    }

    /// Blocks until the future is done or the deadline derived from `timeout`
    /// passes. Returns the locked slot, done, or a timeout error.
    fn lock_done(&self, timeout: Option<Duration>) -> Result<MutexGuard<'_, Slot<T>>, FutureError> {
        if timeout != Some(Duration::ZERO) {
            self.spin_until_done();
        }
        let mut slot = self.lock();
        if self.state().is_done() {
            return Ok(slot);
        }
        let deadline = deadline_after(timeout);
        if timeout == Some(Duration::ZERO) {
            // A try-read registers nothing: later completions stay lock-free.
            return Err(FutureError::Timeout(Duration::ZERO));
        }
        // From here on the completion takes this lock, and so sees
        // `blocked_readers` counted before this thread sleeps.
        if is_done(self.listen(&mut slot)) {
            return Ok(slot);
        }
        loop {
            slot.blocked_readers += 1;
            let (guard, in_time) = wait_until(&self.done, slot, deadline);
            slot = guard;
            slot.blocked_readers -= 1;
            if self.state().is_done() {
                return Ok(slot);
            }
            if !in_time {
                return Err(FutureError::Timeout(timeout.unwrap_or_default()));
            }
        }
    }

    /// The completion, the one way a promise finishes its future
    /// (`set_result` and friends, `set_outcome_deferred`): claim the cell
    /// with `WRITING`, write the outcome, publish `FINISHED`. Returns what
    /// is left to do once the lock is released (`None`: nobody registered,
    /// nothing to do), or, if the future was already done (or another
    /// completer got the cell first), the error Python raises, with
    /// nothing changed.
    fn complete(&self, outcome: Outcome<T>) -> Result<Option<AfterFinish<T>>, InvalidStateError> {
        // Acquire: a done word read here leads to reading the outcome for
        // the error message (under the lock, which `with_outcome` re-checks
        // with its own Acquire load; this one only decides the path).
        let before = self.state.fetch_or(WRITING, Ordering::Acquire);
        if before & WRITING != 0 || is_done(before) {
            return Err(self.refuse(before));
        }
        // SAFETY: this thread set `WRITING` first (the fetch_or above saw it
        // clear), and it is never cleared, so no other completer will ever
        // write the cell; nobody reads it before `FINISHED` is published,
        // which only `publish` below does, after this write.
        self.outcome.with_mut(|cell| unsafe { *cell = outcome });
        self.publish()
    }

    /// A completer that lost: the future is done, or another completer holds
    /// the cell and is about to make it done (no user code runs between its
    /// claim and its publication, so this waits a few instructions, unless
    /// that thread was preempted). Then the error, worded under the lock.
    fn refuse(&self, mut word: usize) -> InvalidStateError {
        while !is_done(word) {
            yield_now();
            word = self.word();
        }
        let mut slot = self.lock();
        self.invalid_state(&mut slot)
    }

    /// With the outcome written by the cell's only writer: moves the code
    /// to `FINISHED`. Lock-free while nobody registered; under the lock (to
    /// drain the listeners) once `WAITING` is set. If `cancel()` won the
    /// race for the code (from Pending: it is the only other transition to
    /// done), takes the outcome back out of the cell and refuses, as
    /// Python's `set_result` on a cancelled future does.
    fn publish(&self) -> Result<Option<AfterFinish<T>>, InvalidStateError> {
        // Relaxed: the value only picks the path; each CAS re-checks it.
        let mut word = self.state.load(Ordering::Relaxed);
        while !is_done(word) {
            if word & WAITING != 0 {
                return self.publish_locked();
            }
            // Release on success: publishes the outcome written before it
            // to whoever Acquires `FINISHED`. Relaxed on failure: the fresh
            // value only feeds the next attempt.
            match self.state.compare_exchange(
                word,
                with_code(word, FINISHED),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(None),
                Err(now) => word = now,
            }
        }
        Err(self.take_back())
    }

    /// `publish` once someone registered: the same CAS under the lock, then
    /// the listeners drained. Under the lock nothing else can make the
    /// future done (a `cancel` that sees `WAITING` takes the lock too); the
    /// one change that can still race is the lock-free start (Pending ->
    /// Running), and the CAS loop absorbs it.
    fn publish_locked(&self) -> Result<Option<AfterFinish<T>>, InvalidStateError> {
        let mut slot = self.lock();
        let mut word = self.state.load(Ordering::Relaxed);
        while !is_done(word) {
            // Release on success, as in `publish`.
            match self.state.compare_exchange(
                word,
                with_code(word, FINISHED),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let failed = self
                        .with_outcome(&mut slot, |outcome| outcome.is_failure())
                        .unwrap_or(false);
                    return Ok(Some(self.finish_locked(&mut slot, failed)));
                }
                Err(now) => word = now,
            }
        }
        drop(slot);
        Err(self.take_back())
    }

    /// The completer's way out when `cancel()` won: the outcome it wrote is
    /// taken back (and dropped), and the refusal worded.
    fn take_back(&self) -> InvalidStateError {
        self.take_back_outcome();
        let mut slot = self.lock();
        self.invalid_state(&mut slot)
    }

    /// Takes the outcome back out of the cell of a cancelled future, and
    /// drops it. Only for the cell's writer, once `cancel()` won.
    fn take_back_outcome(&self) {
        // SAFETY: this thread is the cell's only writer (it set `WRITING`,
        // or it is the promise's `drop`, see there), and the code is
        // Cancelled, not `FINISHED`, so no reader will ever access the cell.
        let outcome = self
            .outcome
            .with_mut(|cell| unsafe { std::mem::replace(&mut *cell, Outcome::Vacant) });
        drop(outcome);
    }

    /// Under the lock, right after the state became done: posts to every
    /// installed waiter (each hears once: a future becomes done once) and
    /// returns what is left to do after unlocking. `failed` says whether
    /// FIRST_EXCEPTION waiters should count it.
    fn finish_locked(&self, slot: &mut Slot<T>, failed: bool) -> AfterFinish<T> {
        let mut callbacks = Vec::new();
        let mut wakers = Vec::new();
        if let Some(listeners) = slot.listeners.take() {
            wakers = listeners.wakers.into_iter().map(|(_, w)| w).collect();
            for (waiter, index) in listeners.waiters {
                wakers.extend(waiter.post(index, failed));
            }
            callbacks = listeners.callbacks;
        }
        AfterFinish {
            callbacks,
            wakers,
            wake_readers: slot.blocked_readers > 0,
        }
    }

    /// Finishes a transition once the slot's lock is released: wakes blocked
    /// readers and awaiting tasks, then runs the callbacks on this thread.
    ///
    /// Waking after unlocking spares the woken reader from bumping into the
    /// lock we still held. No wake-up is lost: `wake_readers` was read under
    /// the lock, and a reader counted there is already inside `Condvar::wait`
    /// (which released the lock atomically), so this notify reaches it.
    ///
    /// Wakers and callbacks are user code, and each one is contained: a
    /// panic in one is reported and the others still run, so no listener
    /// depends on another one behaving, and nothing escapes into the
    /// completer (an executor's worker, dispatcher or listener thread).
    fn after_unlock(&self, after: AfterFinish<T>, future: impl FnOnce() -> Future<T>) {
        if after.wake_readers {
            self.done.notify_all();
        }
        for waker in after.wakers {
            // `wake` consumes the waker, so its drop is inside the catch too.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                report_waker_panic(&self.repr_locked(), payload);
            }
        }
        if !after.callbacks.is_empty() {
            run_callbacks(&future(), after.callbacks);
        }
    }

    /// Python's repr of this future, read under the lock.
    fn repr_locked(&self) -> String {
        let mut slot = self.lock();
        self.repr(&mut slot)
    }
}

/// Spin rounds before blocking: 1 + 2 + ... + 2^(SPIN_STEPS-1) spin hints.
#[cfg(not(loom))]
const SPIN_STEPS: u32 = 7;

/// Runs done-callbacks in order, outside any lock. A panicking callback is
/// caught and reported, and the ones after it still run (the report itself
/// cannot panic: see `report.rs`).
fn run_callbacks<T>(future: &Future<T>, callbacks: Vec<Callback<T>>) {
    for callback in callbacks {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(future))) {
            report_callback_panic(&format!("{future:?}"), payload);
        }
    }
}

impl<T> Future<T> {
    /// The current state.
    pub fn state(&self) -> State {
        self.inner.state()
    }

    /// True if the future was cancelled.
    pub fn cancelled(&self) -> bool {
        self.state() == State::Cancelled
    }

    /// True while an executor runs the task.
    pub fn running(&self) -> bool {
        self.state() == State::Running
    }

    /// True once the future is finished or cancelled.
    pub fn done(&self) -> bool {
        self.state().is_done()
    }

    /// Cancels the future if it has not started running.
    ///
    /// Returns `false` (and changes nothing) if it is running or finished;
    /// `true` if it is now cancelled, including when it already was (the
    /// callbacks then do not run again). A successful cancel wakes every
    /// reader and every `wait`/`as_completed` call at once: unlike CPython,
    /// a hand-cancelled future counts as done right away (gh-92001).
    pub fn cancel(&self) -> bool {
        // Relaxed: the value only picks the path; the CAS re-checks it.
        let mut word = self.inner.state.load(Ordering::Relaxed);
        loop {
            match code(word) {
                CANCELLED | CANCELLED_AND_NOTIFIED => return true,
                PENDING => {}
                _ => return false, // Running or Finished
            }
            if word & WAITING != 0 {
                return self.cancel_locked();
            }
            // The CAS decides a race with an executor starting the task or
            // a completer publishing: exactly one of them leaves Pending.
            // Release on success: a thread that Acquires the Cancelled code
            // sees what this thread did before cancelling (no data of ours
            // rides on it; the Release keeps `cancelled()` as strong as the
            // lock was). Relaxed on failure: the value feeds the next try.
            match self.inner.state.compare_exchange(
                word,
                with_code(word, CANCELLED),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// `cancel` once someone registered: the same CAS under the lock, then
    /// the listeners drained (as `Inner::publish_locked` does).
    fn cancel_locked(&self) -> bool {
        let mut slot = self.inner.lock();
        let mut word = self.inner.state.load(Ordering::Relaxed);
        loop {
            match code(word) {
                CANCELLED | CANCELLED_AND_NOTIFIED => return true,
                PENDING => {}
                _ => return false,
            }
            // Orderings as in `cancel`.
            match self.inner.state.compare_exchange(
                word,
                with_code(word, CANCELLED),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        let after = self.inner.finish_locked(&mut slot, false);
        drop(slot);
        self.inner.after_unlock(after, || self.clone());
        true
    }

    /// Waits for the future to be done, at most `timeout` (`None`: forever).
    /// Returns whether it is done. Reads nothing, changes nothing.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.inner.lock_done(timeout).is_ok()
    }

    /// Waits (forever) and returns a clone of the value, or why there is none.
    pub fn result(&self) -> Result<T, FutureError>
    where
        T: Clone,
    {
        self.result_within(None)
    }

    /// Like [`result`](Self::result), waiting at most `timeout`.
    /// A zero timeout never blocks. On timeout the future is untouched.
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, FutureError>
    where
        T: Clone,
    {
        self.result_within(Some(timeout))
    }

    fn result_within(&self, timeout: Option<Duration>) -> Result<T, FutureError>
    where
        T: Clone,
    {
        let mut slot = self.inner.lock_done(timeout)?;
        // Done: an outcome, or none because it was cancelled.
        self.inner
            .with_outcome(&mut slot, |outcome| outcome.cloned())
            .unwrap_or(Err(FutureError::Cancelled))
    }

    /// Waits (forever) and moves the value out, without cloning it.
    ///
    /// Other handles to the same future then read [`FutureError::ValueTaken`]
    /// instead of the value (they still see its state, errors and
    /// cancellation as before).
    pub fn into_result(self) -> Result<T, FutureError> {
        // The usual end of a pool task: the future is done and this is the
        // last handle (the promise is gone, no clones). Nobody else can reach
        // the cell then, so the value is moved out without locking (one
        // load, where the locked path costs a lock and an unlock). Done-ness
        // is read first because a pending future's last handle must wait,
        // which needs the condvar.
        let word = self.inner.word();
        if is_done(word) && self.inner.is_unique() {
            // A done code is final, so `word` still describes it.
            if code(word) != FINISHED {
                return Err(FutureError::Cancelled);
            }
            // SAFETY: the Acquire load of `word` saw the completion's
            // Release (the cell is written), and `is_unique` saw every other
            // handle gone, with their last accesses ordered before this one
            // (Acquire on its load, Release on their drops); and no handle
            // can be made without this one. So this access is exclusive.
            return self
                .inner
                .outcome
                .with_mut(|cell| unsafe { (*cell).take() });
        }
        self.take_result(None)
    }

    fn take_result(&self, timeout: Option<Duration>) -> Result<T, FutureError> {
        let mut slot = self.inner.lock_done(timeout)?;
        self.inner
            .with_outcome(&mut slot, Outcome::take)
            .unwrap_or(Err(FutureError::Cancelled))
    }

    /// Waits (forever) and returns the task's error, or `None` if it
    /// produced a value (Python's `exception()`). Errs if cancelled.
    pub fn exception(&self) -> Result<Option<TaskError>, FutureError> {
        self.exception_within(None)
    }

    /// Like [`exception`](Self::exception), waiting at most `timeout`.
    pub fn exception_timeout(&self, timeout: Duration) -> Result<Option<TaskError>, FutureError> {
        self.exception_within(Some(timeout))
    }

    fn exception_within(
        &self,
        timeout: Option<Duration>,
    ) -> Result<Option<TaskError>, FutureError> {
        let mut slot = self.inner.lock_done(timeout)?;
        self.inner
            .with_outcome(&mut slot, |outcome| outcome.error())
            .ok_or(FutureError::Cancelled)
    }

    /// Adds a callback to run once, when the future is done, on the thread
    /// that completes (or cancels) it; at once, on this thread, if it is
    /// already done. Callbacks run in the order they were added. A panic in a
    /// callback is caught and reported (see [`set_callback_panic_hook`](crate::set_callback_panic_hook))
    /// and the other callbacks still run.
    pub fn add_done_callback<F>(&self, callback: F)
    where
        F: FnOnce(&Future<T>) + Send + 'static,
    {
        // Already done: run it now, no lock needed.
        if !self.done() {
            let mut slot = self.inner.lock();
            // Not done when `WAITING` went up: the completer will take the
            // lock, after this push, and drain it.
            if !is_done(self.inner.listen(&mut slot)) {
                slot.listeners().callbacks.push(Box::new(callback));
                return;
            }
        }
        run_callbacks(self, vec![Box::new(callback) as Callback<T>]);
    }

    /// A future of `f(value)`, computed by a done-callback as soon as this
    /// one finishes. Errors and cancellation pass through unchanged; a panic
    /// in `f` becomes [`TaskError::Panicked`]. The value is moved into `f`
    /// (other handles then read [`FutureError::ValueTaken`]).
    ///
    /// ```
    /// let (promise, future) = future::promise::<u32>();
    /// let text = future.map(|n| format!("n = {n}"));
    /// promise.set_result(5).unwrap();
    /// assert_eq!(text.result().unwrap(), "n = 5");
    /// ```
    pub fn map<U, F>(self, f: F) -> Future<U>
    where
        T: Send + 'static,
        U: Send + 'static,
        F: FnOnce(T) -> U + Send + 'static,
    {
        let (promise, mapped) = promise::<U>();
        self.add_done_callback(move |source| {
            // The source is done, so this never blocks. Results of these
            // `set_*` calls are ignored: only a cancel of `mapped` itself can
            // have completed it first, and then there is nothing to deliver.
            let _ = match source.take_result(Some(Duration::ZERO)) {
                Ok(value) => match catch_unwind(AssertUnwindSafe(|| f(value))) {
                    Ok(out) => promise.set_result(out),
                    Err(payload) => promise.set_error(TaskError::from_panic(payload)),
                },
                Err(FutureError::Task(e)) => promise.set_error(e),
                Err(FutureError::Cancelled) => {
                    promise.future().cancel();
                    Ok(())
                }
                Err(FutureError::ValueTaken | FutureError::Timeout(_)) => {
                    promise.set_error(TaskError::BrokenPromise)
                }
            };
        });
        mapped
    }

    /// Where and how the task ran, if its executor measured it: a process
    /// pool reports the worker's pid, the queue wait, the run and CPU
    /// times and the worker's peak RSS (see [`TaskReport`]). `None` for
    /// executors that do not measure, and until the executor set it (it is
    /// set before the outcome, so a done future has its report).
    ///
    /// ```
    /// let (promise, future) = future::promise::<u8>();
    /// assert_eq!(future.report(), None);
    /// let mut report = future::TaskReport::new();
    /// report.worker_pid = Some(42);
    /// promise.set_report(report);
    /// promise.set_result(1).unwrap();
    /// assert_eq!(future.report().unwrap().worker_pid, Some(42));
    /// ```
    pub fn report(&self) -> Option<TaskReport> {
        self.inner.lock().report.as_deref().cloned()
    }

    /// A stable identity for this future, shared by all its handles.
    pub fn id(&self) -> usize {
        &*self.inner as *const Inner<T> as *const () as usize
    }

    /// Links `waiter` to this future under its lock, or posts `index` at once
    /// if the future is already done. Returns true if a link was made.
    pub(crate) fn install_waiter(&self, waiter: &Arc<Waiter>, index: usize) -> bool {
        let mut slot = self.inner.lock();
        if is_done(self.inner.listen(&mut slot)) {
            let failed = self
                .inner
                .with_outcome(&mut slot, |outcome| outcome.is_failure())
                .unwrap_or(false);
            let waker = waiter.post(index, failed);
            drop(slot);
            if let Some(waker) = waker {
                waker.wake();
            }
            false
        } else {
            slot.listeners().waiters.push((waiter.clone(), index));
            true
        }
    }

    /// Unlinks `waiter`, if it is still linked (it is not once the future is done).
    pub(crate) fn remove_waiter(&self, waiter: &Arc<Waiter>) {
        let mut slot = self.inner.lock();
        if let Some(listeners) = &mut slot.listeners {
            listeners.waiters.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
        }
    }

    /// Registers an awaiting task's `waker`, under the lock, unless the
    /// future is already done: returns true if it is done (then nothing is
    /// registered and the caller reads the outcome).
    ///
    /// `key` is the caller's registration: `None` before its first
    /// registration, then the key it was given. A re-poll with the same key
    /// replaces the stored waker (unless it would wake the same task), so an
    /// `Awaiting` never has more than one entry. This is the waiter
    /// protocol again: "done?" and "link" happen under the lock that
    /// completion takes to drain the links, so either this call sees the
    /// future done, or completion sees the waker and wakes it.
    pub(crate) fn register_waker(&self, key: &mut Option<u64>, waker: &Waker) -> bool {
        let mut slot = self.inner.lock();
        if is_done(self.inner.listen(&mut slot)) {
            return true;
        }
        let listeners = slot.listeners();
        if let Some(key) = *key {
            if let Some((_, stored)) = listeners.wakers.iter_mut().find(|(k, _)| *k == key) {
                if !stored.will_wake(waker) {
                    stored.clone_from(waker);
                }
                return false;
            }
        }
        let new_key = listeners.next_waker_key;
        listeners.next_waker_key += 1;
        listeners.wakers.push((new_key, waker.clone()));
        *key = Some(new_key);
        false
    }

    /// Removes the waker registered under `key`, if it is still there (it is
    /// not once the future is done: completion drained it).
    pub(crate) fn unregister_waker(&self, key: u64) {
        let mut slot = self.inner.lock();
        if let Some(listeners) = &mut slot.listeners {
            listeners.wakers.retain(|(k, _)| *k != key);
        }
    }

    /// How many awaiting tasks are registered (tests and docs use it to show
    /// that dropped or re-polled awaits leave nothing behind).
    pub fn registered_wakers(&self) -> usize {
        let slot = self.inner.lock();
        slot.listeners.as_ref().map_or(0, |l| l.wakers.len())
    }
}

impl<T> Promise<T> {
    /// A read handle to the future this promise completes.
    pub fn future(&self) -> Future<T> {
        Future {
            inner: Shared::clone(&self.inner),
        }
    }

    /// Called by an executor right before it runs the task.
    ///
    /// `Ok(true)`: the future is now Running, run the task. `Ok(false)`: it
    /// was cancelled, skip the task. `Err`: it was not pending (already
    /// running, finished, or a cancellation already acknowledged): an
    /// executor bug, reported rather than ignored, as Python raises.
    ///
    /// Lock-free: one compare-and-swap (see the module docs). Neither
    /// transition makes the future done or undone, so nobody needs waking.
    pub fn set_running_or_notify_cancel(&self) -> Result<bool, InvalidStateError> {
        // Relaxed, success and failure: these two transitions carry no data
        // (Running and the acknowledgement publish nothing, and the executor
        // reads nothing a canceller wrote: a cancelled task is just skipped).
        // A CAS is atomic whatever its ordering, so a racing `cancel()`'s CAS
        // and this one are still ordered one way or the other: exactly one
        // of them moves the state away from Pending. The flag bits are kept
        // as they are (a racing `fetch_or` makes the CAS retry).
        let mut word = self.inner.state.load(Ordering::Relaxed);
        loop {
            let next = match code(word) {
                PENDING => RUNNING,
                CANCELLED => CANCELLED_AND_NOTIFIED,
                _ => break,
            };
            match self.inner.state.compare_exchange(
                word,
                with_code(word, next),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(next == RUNNING),
                Err(now) => word = now,
            }
        }
        // Running, Finished or already acknowledged: an error, worded under
        // the lock (a Finished outcome is only readable there).
        let mut slot = self.inner.lock();
        Err(self.inner.invalid_state(&mut slot))
    }

    /// Completes the future with a value. Errs, keeping the first outcome,
    /// if the future is already finished or cancelled.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.complete(Outcome::Value(value), || ())
    }

    /// Completes the future with an error. Errs, keeping the first outcome,
    /// if the future is already finished or cancelled.
    pub fn set_error(&self, error: TaskError) -> Result<(), InvalidStateError> {
        self.complete(Outcome::from_result(Err(error)), || ())
    }

    /// Completes the future with `outcome`: the value, or the error.
    pub fn set_outcome(&self, outcome: Result<T, TaskError>) -> Result<(), InvalidStateError> {
        self.complete(Outcome::from_result(outcome), || ())
    }

    /// [`set_outcome`](Self::set_outcome) for executors that count their
    /// threads: `before_callbacks` runs on this thread once the outcome is
    /// published and blocked readers are woken, right before the first
    /// done-callback, and only if there is one. A thread pool uses it to
    /// stop counting its worker as idle while user callbacks run on it (a
    /// callback may submit to the same pool and wait).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let (promise, future) = future::promise::<u8>();
    /// let l = log.clone();
    /// future.add_done_callback(move |_| l.lock().unwrap().push("callback"));
    /// let l = log.clone();
    /// promise.set_outcome_with_hook(Ok(1), move || l.lock().unwrap().push("hook")).unwrap();
    /// assert_eq!(*log.lock().unwrap(), ["hook", "callback"]);
    ///
    /// // No callback, no hook.
    /// let (promise, _future) = future::promise::<u8>();
    /// promise.set_outcome_with_hook(Ok(1), || unreachable!()).unwrap();
    /// ```
    pub fn set_outcome_with_hook(
        &self,
        outcome: Result<T, TaskError>,
        before_callbacks: impl FnOnce(),
    ) -> Result<(), InvalidStateError> {
        self.complete(Outcome::from_result(outcome), before_callbacks)
    }

    /// [`set_outcome`](Self::set_outcome) for an executor whose completing
    /// thread must not run user code (a process pool's dispatcher thread,
    /// which a callback that submits to the same pool and waits would
    /// block). Blocked readers, waiters and awaiting tasks are woken here as
    /// usual; the done-callbacks, if there are any, are not run: `defer`
    /// receives a job that runs them (in order, each under `catch_unwind`,
    /// exactly as they would have run here), and must see that it runs,
    /// on another thread. With no callback, `defer` is not called.
    ///
    /// ```
    /// let (promise, future) = future::promise::<u8>();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// future.add_done_callback(move |f| tx.send(f.result().unwrap()).unwrap());
    /// promise
    ///     .set_outcome_deferred(Ok(7), |job| {
    ///         std::thread::spawn(job);
    ///     })
    ///     .unwrap();
    /// assert_eq!(rx.recv().unwrap(), 7);
    /// ```
    pub fn set_outcome_deferred(
        &self,
        outcome: Result<T, TaskError>,
        defer: impl FnOnce(Box<dyn FnOnce() + Send>),
    ) -> Result<(), InvalidStateError>
    where
        T: Send + 'static,
    {
        let Some(mut after) = self.inner.complete(Outcome::from_result(outcome))? else {
            return Ok(()); // nobody registered: no callback to defer
        };
        let callbacks = std::mem::take(&mut after.callbacks);
        // No callbacks are left in `after`, so it never asks for the future.
        self.inner.after_unlock(after, || self.future());
        if !callbacks.is_empty() {
            let future = self.future();
            defer(Box::new(move || run_callbacks(&future, callbacks)));
        }
        Ok(())
    }

    /// Attaches where and how the task ran (see [`Future::report`]).
    /// Executors call it before completing the future; a later call
    /// replaces the report.
    pub fn set_report(&self, report: TaskReport) {
        self.inner.lock().report = Some(Box::new(report));
    }

    /// True if the future was cancelled: an executor may skip work it has
    /// not started yet.
    pub fn is_cancelled(&self) -> bool {
        self.inner.state() == State::Cancelled
    }

    /// The completion sequence (`Inner::complete`), then the work after the
    /// unlock, with `before_callbacks` right before the first callback.
    fn complete(
        &self,
        outcome: Outcome<T>,
        before_callbacks: impl FnOnce(),
    ) -> Result<(), InvalidStateError> {
        if let Some(after) = self.inner.complete(outcome)? {
            // `after_unlock` asks for the future only when it has callbacks
            // to run, right before running them: that is the hook's moment.
            self.inner.after_unlock(after, || {
                before_callbacks();
                self.future()
            });
        }
        Ok(())
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        // The usual case: the future is done, and a done state is final, so
        // the lock-free read is enough to know there is nothing to publish.
        let mut word = self.inner.word();
        if !is_done(word) {
            // Not done, so no completer holds the cell: one that set
            // `WRITING` always leaves the future done before its call
            // returns, and no call on this promise is running (`drop` has it
            // exclusively). And nobody else completes a future: only its
            // promise does. So this thread is the cell's only writer, without
            // claiming `WRITING` (one read-modify-write less for every
            // promise dropped unused).
            // SAFETY: as argued above, no other thread writes the cell, and
            // nobody reads it before the code is FINISHED, which only this
            // thread can now make it.
            self.inner
                .outcome
                .with_mut(|cell| unsafe { *cell = Outcome::Broken });
            // `Inner::publish`, with this handle let go of in the same CAS.
            while !is_done(word) {
                if word & WAITING != 0 {
                    // An error means the future was cancelled meanwhile
                    // (`publish_locked` took the outcome back): nothing to do.
                    if let Ok(Some(after)) = self.inner.publish_locked() {
                        self.inner.after_unlock(after, || self.future());
                    }
                    break;
                }
                // Release on success: publishes the outcome (as `publish`
                // does) and this handle's uses of the value (as a handle's
                // drop does). Relaxed on failure: the value feeds the next
                // attempt.
                match self.inner.state.compare_exchange(
                    word,
                    with_code(word, FINISHED) - HANDLE,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: this CAS took this handle off the count
                        // with Release, having read `word`, and `inner` is
                        // not used again.
                        unsafe { Shared::released(&mut self.inner, word) };
                        return;
                    }
                    Err(now) => word = now,
                }
            }
            if is_done(word) && code(word) != FINISHED {
                // `cancel()` won the race for the code: the outcome written
                // above is taken back (nobody reads a cancelled future's cell).
                self.inner.take_back_outcome();
            }
        }
        // SAFETY: `inner` is dropped once, here, and not used again.
        unsafe { ManuallyDrop::drop(&mut self.inner) }
    }
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            inner: self.inner.clone(),
        }
    }
}

impl<T> PartialEq for Future<T> {
    fn eq(&self, other: &Self) -> bool {
        Shared::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Eq for Future<T> {}

impl<T> Hash for Future<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

/// Python's repr: `<Future state=pending>`, `<Future state=finished returned i32>`,
/// `<Future state=finished raised TaskPanicked>`.
impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.repr_locked())
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Promise({})", self.inner.repr_locked())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// One `Inner` is allocated per task (the handles' count is in its
    /// state word): keep it within glibc's per-thread cache limit (a
    /// 128-byte chunk: 120 bytes of payload), for small `T`.
    #[test]
    fn a_small_future_fits_the_allocator_fast_path() {
        assert!(
            std::mem::size_of::<Inner<u64>>() <= 120,
            "Inner<u64> grew to {} bytes",
            std::mem::size_of::<Inner<u64>>()
        );
    }
}
