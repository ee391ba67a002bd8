//! `Future<T>` (the read side) and `Promise<T>` (the write side), sharing one
//! slot behind one mutex and one condition variable.
//!
//! This is CPython's `concurrent.futures.Future` with its two roles split:
//! the executor holds the [`Promise`], completes it exactly once, and can
//! never be confused with a reader; users hold [`Future`]s, as many clones as
//! they like, all looking at the same slot.
//!
//! ## The state word and the lock
//!
//! The state lives in one atomic byte, `Inner::state`, which is the source
//! of truth; the outcome, the listeners and the count of blocked readers live
//! in the slot behind the mutex. Transitions are compare-and-swaps on the
//! state word, and they come in two kinds:
//!
//! * **lock-free**, the two an executor makes once per task:
//!   Pending -> Running and Cancelled -> CancelledAndNotified, both in
//!   `Promise::set_running_or_notify_cancel`. Neither makes the future done
//!   or undone, so nobody waiting for "done" needs to hear about them;
//! * **under the lock**, every transition *to a done state* (cancel,
//!   completion, a dropped promise). These must post to waiters, wake
//!   blocked readers and hand over the callbacks, which all live under the
//!   lock; each one CASes from the state it observed, so a lock-free
//!   Pending -> Running racing with `cancel()` is decided by the CAS: exactly
//!   one of them wins.
//!
//! So whether the future is *done* changes only under the lock, which is
//! what keeps the readers', waiters' and callbacks' protocols as simple as
//! if every transition were locked: whoever holds the lock and sees "not
//! done" knows that the completer, who will drain the listeners, has not run
//! yet. An executor pays one CAS to start a task instead of a lock and an
//! unlock.
//!
//! Every completion (`set_result` and friends, `set_outcome_deferred`, a
//! dropped promise) goes through one function, `Inner::complete`; `cancel`
//! makes its own CAS from Pending and shares the rest (`finish_locked`,
//! then `after_unlock`).
//!
//! What must happen *after* a transition to done (waking blocked readers,
//! posting to `wait`/`as_completed` waiters, running done-callbacks) is
//! decided under the lock and done in this order: waiters are posted under
//! the lock (so installation cannot miss them), blocked readers are
//! notified, the lock is released, and only then do user callbacks run, so a
//! callback may freely read or even wait on the future (or any other)
//! without deadlocking.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Waker;
use std::time::Duration;

use crate::error::{short_type_name, FutureError, InvalidStateError, TaskError};
use crate::report::{report_callback_panic, report_waker_panic};
use crate::state::State;
use crate::sync::{
    deadline_after, lock, wait_until, Arc, AtomicU8, Condvar, Mutex, MutexGuard, Ordering,
};
use crate::task_report::TaskReport;
use crate::waiter::Waiter;

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send + 'static>;

/// What a finished future holds: the value (`None` once `into_result` has
/// moved it out), or the error. The error is boxed: errors are rare, and a
/// small slot keeps every future's allocation small (see `Inner`).
type Outcome<T> = Result<Option<T>, Box<TaskError>>;

/// The values of the state word. The first four are [`State`]'s own
/// discriminants; `CANCELLED_AND_NOTIFIED` is Python's name for a
/// cancellation the executor has seen (through
/// `set_running_or_notify_cancel`), which reads as Cancelled from outside
/// and only makes a second acknowledgement an error, as in Python.
const PENDING: u8 = State::Pending as u8;
const RUNNING: u8 = State::Running as u8;
const CANCELLED: u8 = State::Cancelled as u8;
const FINISHED: u8 = State::Finished as u8;
const CANCELLED_AND_NOTIFIED: u8 = 4;

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

struct Slot<T> {
    /// `Some` once the state is Finished (set under the lock, before the
    /// state word says so). A done future with no outcome was cancelled.
    outcome: Option<Outcome<T>>,
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
    /// Python's repr, written from inside the lock (`state` read there).
    fn repr(&self, state: State) -> String {
        match &self.outcome {
            Some(Ok(_)) => format!(
                "<Future state=finished returned {}>",
                short_type_name(std::any::type_name::<T>())
            ),
            Some(Err(e)) => format!("<Future state=finished raised {}>", e.name()),
            None => format!("<Future state={state}>"),
        }
    }

    /// `FINISHED: <Future state=finished returned i32>`, as Python words it.
    fn invalid_state(&self, code: u8) -> InvalidStateError {
        let word = match code {
            PENDING => "PENDING",
            RUNNING => "RUNNING",
            CANCELLED => "CANCELLED",
            CANCELLED_AND_NOTIFIED => "CANCELLED_AND_NOTIFIED",
            _ => "FINISHED",
        };
        InvalidStateError {
            message: format!("{word}: {}", self.repr(state_of(code))),
        }
    }

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

/// The public state a value of the state word stands for.
fn state_of(code: u8) -> State {
    match code {
        PENDING => State::Pending,
        RUNNING => State::Running,
        CANCELLED | CANCELLED_AND_NOTIFIED => State::Cancelled,
        _ => State::Finished,
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
    slot: Mutex<Slot<T>>,
    /// Signalled (broadcast) when the future becomes done.
    done: Condvar,
    /// The state (one of the `PENDING`.. constants): the source of truth,
    /// changed only by compare-and-swap, and only to a done state under the
    /// slot's lock (see the module docs). Read without the lock by
    /// `state()`, `done()`, the spin before blocking and `Promise::drop`: a
    /// done state is final, so a done state read anywhere is the truth.
    state: AtomicU8,
}

/// The read side of a task's outcome. Cheap to clone: clones share one slot.
///
/// Equality and hashing are by identity (two handles are equal when they
/// are handles to the same future), so futures can key a map, as the book's
/// `to_do_map` does.
pub struct Future<T> {
    inner: Arc<Inner<T>>,
}

/// The write side: completed once by whoever runs the task.
///
/// Dropping a promise that was never completed finishes its future with
/// [`TaskError::BrokenPromise`], so no reader can wait forever on a task that
/// vanished (a worker that died, a queue that was dropped).
pub struct Promise<T> {
    inner: Arc<Inner<T>>,
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
    let inner = Arc::new(Inner {
        slot: Mutex::new(Slot {
            outcome: None,
            listeners: None,
            blocked_readers: 0,
            report: None,
        }),
        done: Condvar::new(),
        state: AtomicU8::new(PENDING),
    });
    (
        Promise {
            inner: inner.clone(),
        },
        Future { inner },
    )
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        lock(&self.slot)
    }

    /// The state word. Acquire: pairs with the Release half of the
    /// transitions, so a thread that sees a done state also sees what the
    /// transition's thread did before it (the outcome itself is read under
    /// the lock, which orders it on its own; Acquire keeps lock-free
    /// `done()` checks as strong as the lock for user code that relies on
    /// them).
    fn code(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// The public state, read without the lock.
    fn state(&self) -> State {
        state_of(self.code())
    }

    /// Moves the state word from Pending (observed under the lock) to the
    /// done state `to`. Only called with the slot locked, so the one change
    /// that can race with it is the lock-free Pending -> Running, and the
    /// CAS decides: false if the task started first (the state is then
    /// Running).
    ///
    /// AcqRel on success: Release publishes this thread's writes (the
    /// outcome) to lock-free readers that Acquire the done state; Acquire
    /// is not needed for data (nothing is read from the racing thread) but
    /// costs nothing on an RMW. Acquire on failure: the fresh value only
    /// feeds the next attempt.
    fn done_from_pending(&self, to: u8) -> bool {
        self.state
            .compare_exchange(PENDING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Moves the state word from `observed` (Pending or Running, read under
    /// the lock) to Finished. Only called with the slot locked.
    ///
    /// From Running nobody else can move the state (the lock-free
    /// transitions start from Pending or Cancelled, and every other one
    /// takes the lock we hold), so a plain store does it, and the executor's
    /// usual path (Running -> Finished) pays no extra read-modify-write.
    /// Release: publishes the outcome written before it to lock-free readers
    /// that Acquire a done state. From Pending the CAS decides a race with
    /// the lock-free Pending -> Running; if that won, we finish from Running.
    fn finish(&self, observed: u8) {
        if observed == PENDING && self.done_from_pending(FINISHED) {
            return;
        }
        self.state.store(FINISHED, Ordering::Release);
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
        // Done-ness only changes under the lock, so this read is stable
        // while we hold it.
        if self.state().is_done() {
            return Ok(slot);
        }
        let deadline = deadline_after(timeout);
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

    /// The completion sequence, the one way a promise finishes its future
    /// (`set_result` and friends, `set_outcome_deferred`, a dropped
    /// promise): under the lock, if the future is not done yet, store the
    /// outcome, then move the state word to Finished (with Release, for
    /// lock-free readers of the state), then take the listeners. Returns
    /// what is left to do once the lock is released (the lock is released
    /// on return), or, if the future was already done, the error Python
    /// raises, with nothing changed.
    fn complete(&self, outcome: Outcome<T>) -> Result<AfterFinish<T>, InvalidStateError> {
        let mut slot = self.lock();
        let code = self.code();
        if state_of(code).is_done() {
            return Err(slot.invalid_state(code));
        }
        let failed = outcome.is_err();
        slot.outcome = Some(outcome);
        self.finish(code);
        Ok(self.finish_locked(&mut slot, failed))
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
                report_waker_panic(&self.repr(), payload);
            }
        }
        if !after.callbacks.is_empty() {
            run_callbacks(&future(), after.callbacks);
        }
    }

    /// Python's repr of this future, read under the lock.
    fn repr(&self) -> String {
        let slot = self.lock();
        slot.repr(self.state())
    }
}

/// Spin rounds before blocking: 1 + 2 + ... + 2^(SPIN_STEPS-1) spin hints.
#[cfg(not(loom))]
const SPIN_STEPS: u32 = 7;

/// What a reader gets for a done future's outcome (`None`: cancelled).
fn outcome_into_result<T>(outcome: Option<Outcome<T>>) -> Result<T, FutureError> {
    match outcome {
        Some(Ok(value)) => value.ok_or(FutureError::ValueTaken),
        Some(Err(e)) => Err(FutureError::Task(*e)),
        None => Err(FutureError::Cancelled),
    }
}

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
        let mut slot = self.inner.lock();
        match self.inner.code() {
            CANCELLED | CANCELLED_AND_NOTIFIED => true,
            PENDING => {
                // The CAS decides a race with an executor starting the task
                // (lock-free, so possible even though we hold the lock).
                if !self.inner.done_from_pending(CANCELLED) {
                    return false; // it is Running now
                }
                let after = self.inner.finish_locked(&mut slot, false);
                drop(slot);
                self.inner.after_unlock(after, || self.clone());
                true
            }
            _ => false, // Running or Finished
        }
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
        let slot = self.inner.lock_done(timeout)?;
        // Done: an outcome, or none because it was cancelled.
        match &slot.outcome {
            Some(Ok(Some(value))) => Ok(value.clone()),
            Some(Ok(None)) => Err(FutureError::ValueTaken),
            Some(Err(e)) => Err(FutureError::Task((**e).clone())),
            None => Err(FutureError::Cancelled),
        }
    }

    /// Waits (forever) and moves the value out, without cloning it.
    ///
    /// Other handles to the same future then read [`FutureError::ValueTaken`]
    /// instead of the value (they still see its state, errors and
    /// cancellation as before).
    pub fn into_result(self) -> Result<T, FutureError> {
        // The usual end of a pool task: the future is done and this is the
        // last handle (the promise is gone, no clones). Nobody else can reach
        // the slot then, so the value is moved out without locking:
        // `try_unwrap` checks "last handle" atomically (one RMW, where the
        // locked path costs a lock, an unlock and the reference count), and
        // `into_inner` takes no lock. Done-ness is read first because a
        // pending future's last handle must wait, which needs the condvar.
        if self.inner.state().is_done() {
            match Arc::try_unwrap(self.inner) {
                Ok(inner) => {
                    let slot = inner
                        .slot
                        .into_inner()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    return outcome_into_result(slot.outcome);
                }
                Err(inner) => return Future { inner }.take_result(None),
            }
        }
        self.take_result(None)
    }

    fn take_result(&self, timeout: Option<Duration>) -> Result<T, FutureError> {
        let mut slot = self.inner.lock_done(timeout)?;
        match &mut slot.outcome {
            Some(Ok(value)) => value.take().ok_or(FutureError::ValueTaken),
            Some(Err(e)) => Err(FutureError::Task((**e).clone())),
            None => Err(FutureError::Cancelled),
        }
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
        let slot = self.inner.lock_done(timeout)?;
        match &slot.outcome {
            Some(Ok(_)) => Ok(None),
            Some(Err(e)) => Ok(Some((**e).clone())),
            None => Err(FutureError::Cancelled),
        }
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
        let mut slot = self.inner.lock();
        // Not done under the lock: the completer has not drained yet.
        if !self.inner.state().is_done() {
            slot.listeners().callbacks.push(Box::new(callback));
            return;
        }
        drop(slot);
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
        if self.inner.state().is_done() {
            let failed = matches!(slot.outcome, Some(Err(_)));
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
        if self.inner.state().is_done() {
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
            inner: self.inner.clone(),
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
        // of them moves the state away from Pending.
        let mut code = PENDING;
        loop {
            let next = match code {
                PENDING => RUNNING,
                CANCELLED => CANCELLED_AND_NOTIFIED,
                _ => break,
            };
            match self.inner.state.compare_exchange(
                code,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(next == RUNNING),
                Err(now) => code = now,
            }
        }
        // Running, Finished or already acknowledged: an error, worded under
        // the lock (a Finished outcome is only readable there).
        let slot = self.inner.lock();
        Err(slot.invalid_state(self.inner.code()))
    }

    /// Completes the future with a value. Errs, keeping the first outcome,
    /// if the future is already finished or cancelled.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.complete(Ok(Some(value)), || ())
    }

    /// Completes the future with an error. Errs, keeping the first outcome,
    /// if the future is already finished or cancelled.
    pub fn set_error(&self, error: TaskError) -> Result<(), InvalidStateError> {
        self.complete(Err(Box::new(error)), || ())
    }

    /// Completes the future with `outcome`: the value, or the error.
    pub fn set_outcome(&self, outcome: Result<T, TaskError>) -> Result<(), InvalidStateError> {
        self.complete(outcome.map(Some).map_err(Box::new), || ())
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
        self.complete(outcome.map(Some).map_err(Box::new), before_callbacks)
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
        let mut after = self.inner.complete(outcome.map(Some).map_err(Box::new))?;
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
        let after = self.inner.complete(outcome)?;
        // `after_unlock` asks for the future only when it has callbacks to
        // run, right before running them: that is the hook's moment.
        self.inner.after_unlock(after, || {
            before_callbacks();
            self.future()
        });
        Ok(())
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        // The usual case: the future is done, and a done state is final, so
        // the lock-free read is enough to know there is nothing to do.
        if self.inner.state().is_done() {
            return;
        }
        // An error here means the future was cancelled meanwhile: nothing to do.
        if let Ok(after) = self.inner.complete(Err(Box::new(TaskError::BrokenPromise))) {
            self.inner.after_unlock(after, || self.future());
        }
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
        Arc::ptr_eq(&self.inner, &other.inner)
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
        let slot = self.inner.lock();
        f.write_str(&slot.repr(self.inner.state()))
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self.inner.lock();
        write!(f, "Promise({})", slot.repr(self.inner.state()))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// One `Inner` is allocated per task: keep it within glibc's per-thread
    /// cache limit (a 128-byte chunk: 120 bytes of payload) with the `Arc`'s
    /// two counters, for small `T`.
    #[test]
    fn a_small_future_fits_the_allocator_fast_path() {
        let arc_counters = 2 * std::mem::size_of::<usize>();
        assert!(
            std::mem::size_of::<Inner<u64>>() + arc_counters <= 120,
            "Inner<u64> grew to {} bytes",
            std::mem::size_of::<Inner<u64>>()
        );
    }
}
