//! `Future<T>` (the read side) and `Promise<T>` (the write side), sharing one
//! slot behind one mutex and one condition variable.
//!
//! This is CPython's `concurrent.futures.Future` with its two roles split:
//! the executor holds the [`Promise`], completes it exactly once, and can
//! never be confused with a reader; users hold [`Future`]s, as many clones as
//! they like, all looking at the same slot.
//!
//! Every transition happens under the slot's mutex; what must happen *after*
//! a transition (waking blocked readers, posting to `wait`/`as_completed`
//! waiters, running done-callbacks) is decided under the lock and done in
//! this order: waiters are posted under the lock (so installation cannot miss
//! them), blocked readers are notified, the lock is released, and only then
//! do user callbacks run, so a callback may freely read or even wait on the
//! future (or any other) without deadlocking.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::error::{short_type_name, FutureError, InvalidStateError, TaskError};
use crate::report::report_callback_panic;
use crate::state::State;
use crate::sync::{
    deadline_after, lock, wait_until, Arc, AtomicU8, Condvar, Mutex, MutexGuard, Ordering,
};
use crate::waiter::Waiter;

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send + 'static>;

/// Where the state lives, with what a final state holds.
enum Phase<T> {
    Pending,
    Running,
    /// `acknowledged`: the executor has seen the cancellation through
    /// `set_running_or_notify_cancel` (Python's CANCELLED_AND_NOTIFIED). It
    /// only matters to make a second acknowledgement an error, as in Python.
    Cancelled {
        acknowledged: bool,
    },
    /// The outcome; `Ok(None)` once `into_result` has moved the value out.
    /// The error is boxed: errors are rare, and a small slot keeps every
    /// future's allocation small (see `Inner`).
    Finished(Result<Option<T>, Box<TaskError>>),
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
}

struct Slot<T> {
    phase: Phase<T>,
    /// Drained on completion.
    listeners: Option<Box<Listeners<T>>>,
    /// Threads blocked in `result()` and friends. Completion only pays for a
    /// condvar broadcast (a syscall) when someone is actually blocked.
    blocked_readers: usize,
}

impl<T> Slot<T> {
    fn state(&self) -> State {
        match self.phase {
            Phase::Pending => State::Pending,
            Phase::Running => State::Running,
            Phase::Cancelled { .. } => State::Cancelled,
            Phase::Finished(_) => State::Finished,
        }
    }

    /// Python's repr, written from inside the lock.
    fn repr(&self) -> String {
        match &self.phase {
            Phase::Finished(Ok(_)) => format!(
                "<Future state=finished returned {}>",
                short_type_name(std::any::type_name::<T>())
            ),
            Phase::Finished(Err(e)) => format!("<Future state=finished raised {}>", e.name()),
            _ => format!("<Future state={}>", self.state()),
        }
    }

    /// `FINISHED: <Future state=finished returned i32>`, as Python words it.
    fn invalid_state(&self) -> InvalidStateError {
        let word = match self.phase {
            Phase::Pending => "PENDING",
            Phase::Running => "RUNNING",
            Phase::Cancelled {
                acknowledged: false,
            } => "CANCELLED",
            Phase::Cancelled { acknowledged: true } => "CANCELLED_AND_NOTIFIED",
            Phase::Finished(_) => "FINISHED",
        };
        InvalidStateError {
            message: format!("{word}: {}", self.repr()),
        }
    }

    fn listeners(&mut self) -> &mut Listeners<T> {
        self.listeners.get_or_insert_with(|| {
            Box::new(Listeners {
                callbacks: Vec::new(),
                waiters: Vec::new(),
            })
        })
    }
}

/// What a transition to a final state leaves to do once the lock is released.
#[must_use]
struct AfterFinish<T> {
    callbacks: Vec<Callback<T>>,
    wake_readers: bool,
}

/// The shared part of a future. It is one allocation per task, so it is kept
/// small (under 128 bytes for small `T`, where glibc's allocator stays on its
/// lock-free per-thread cache).
pub(crate) struct Inner<T> {
    slot: Mutex<Slot<T>>,
    /// Signalled (broadcast) when the future becomes done.
    done: Condvar,
    /// A copy of the slot's state, for reads that need no lock: `state()`,
    /// `done()`, the spin before blocking, and `Promise::drop`. Written only
    /// under the slot's lock (Release: whoever reads a final state with
    /// Acquire also sees the outcome written before it); read with Acquire.
    /// Final states never change, so a final state read here is the truth;
    /// a non-final one may be stale, and every decision that depends on it
    /// being non-final is re-checked under the lock.
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
            phase: Phase::Pending,
            listeners: None,
            blocked_readers: 0,
        }),
        done: Condvar::new(),
        state: AtomicU8::new(State::Pending as u8),
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

    /// The state, read without the lock (see the `state` field).
    fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Changes the phase and its lock-free copy; only ever called with the
    /// slot locked.
    fn set_phase(&self, slot: &mut Slot<T>, phase: Phase<T>) {
        slot.phase = phase;
        // Release: pairs with the Acquire loads in `state()`.
        self.state.store(slot.state() as u8, Ordering::Release);
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
        if slot.state().is_done() {
            return Ok(slot);
        }
        let deadline = deadline_after(timeout);
        loop {
            slot.blocked_readers += 1;
            let (guard, in_time) = wait_until(&self.done, slot, deadline);
            slot = guard;
            slot.blocked_readers -= 1;
            if slot.state().is_done() {
                return Ok(slot);
            }
            if !in_time {
                return Err(FutureError::Timeout(timeout.unwrap_or_default()));
            }
        }
    }

    /// Moves to a done state under the lock: posts to every installed waiter
    /// (each hears once: a future becomes done once) and returns what is left
    /// to do after unlocking. `failed` says whether FIRST_EXCEPTION waiters
    /// should count it.
    fn finish_locked(&self, slot: &mut Slot<T>, phase: Phase<T>, failed: bool) -> AfterFinish<T> {
        self.set_phase(slot, phase);
        let mut callbacks = Vec::new();
        if let Some(listeners) = slot.listeners.take() {
            for (waiter, index) in listeners.waiters {
                waiter.post(index, failed);
            }
            callbacks = listeners.callbacks;
        }
        AfterFinish {
            callbacks,
            wake_readers: slot.blocked_readers > 0,
        }
    }

    /// Finishes a transition once the slot's lock is released: wakes blocked
    /// readers, then runs the callbacks on this thread.
    ///
    /// Waking after unlocking spares the woken reader from bumping into the
    /// lock we still held. No wake-up is lost: `wake_readers` was read under
    /// the lock, and a reader counted there is already inside `Condvar::wait`
    /// (which released the lock atomically), so this notify reaches it.
    fn after_unlock(&self, after: AfterFinish<T>, future: impl FnOnce() -> Future<T>) {
        if after.wake_readers {
            self.done.notify_all();
        }
        if !after.callbacks.is_empty() {
            run_callbacks(&future(), after.callbacks);
        }
    }
}

/// Spin rounds before blocking: 1 + 2 + ... + 2^(SPIN_STEPS-1) spin hints.
#[cfg(not(loom))]
const SPIN_STEPS: u32 = 7;

/// Runs done-callbacks in order, outside any lock. A panicking callback is
/// caught and reported, and the ones after it still run.
fn run_callbacks<T>(future: &Future<T>, callbacks: Vec<Callback<T>>) {
    for callback in callbacks {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(future))) {
            report_callback_panic(&format!("{future:?}"), &*payload);
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
        match slot.phase {
            Phase::Running | Phase::Finished(_) => false,
            Phase::Cancelled { .. } => true,
            Phase::Pending => {
                let phase = Phase::Cancelled {
                    acknowledged: false,
                };
                let after = self.inner.finish_locked(&mut slot, phase, false);
                drop(slot);
                self.inner.after_unlock(after, || self.clone());
                true
            }
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
        match &slot.phase {
            Phase::Finished(Ok(Some(value))) => Ok(value.clone()),
            Phase::Finished(Ok(None)) => Err(FutureError::ValueTaken),
            Phase::Finished(Err(e)) => Err(FutureError::Task((**e).clone())),
            _ => Err(FutureError::Cancelled),
        }
    }

    /// Waits (forever) and moves the value out, without cloning it.
    ///
    /// Other handles to the same future then read [`FutureError::ValueTaken`]
    /// instead of the value (they still see its state, errors and
    /// cancellation as before).
    pub fn into_result(self) -> Result<T, FutureError> {
        self.take_result(None)
    }

    fn take_result(&self, timeout: Option<Duration>) -> Result<T, FutureError> {
        let mut slot = self.inner.lock_done(timeout)?;
        match &mut slot.phase {
            Phase::Finished(Ok(value)) => value.take().ok_or(FutureError::ValueTaken),
            Phase::Finished(Err(e)) => Err(FutureError::Task((**e).clone())),
            _ => Err(FutureError::Cancelled),
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
        match &slot.phase {
            Phase::Finished(Ok(_)) => Ok(None),
            Phase::Finished(Err(e)) => Ok(Some((**e).clone())),
            _ => Err(FutureError::Cancelled),
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
        if !slot.state().is_done() {
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

    /// A stable identity for this future, shared by all its handles.
    pub fn id(&self) -> usize {
        &*self.inner as *const Inner<T> as *const () as usize
    }

    /// Links `waiter` to this future under its lock, or posts `index` at once
    /// if the future is already done. Returns true if a link was made.
    pub(crate) fn install_waiter(&self, waiter: &Arc<Waiter>, index: usize) -> bool {
        let mut slot = self.inner.lock();
        match &slot.phase {
            Phase::Finished(outcome) => {
                waiter.post(index, outcome.is_err());
                false
            }
            Phase::Cancelled { .. } => {
                waiter.post(index, false);
                false
            }
            Phase::Pending | Phase::Running => {
                slot.listeners().waiters.push((waiter.clone(), index));
                true
            }
        }
    }

    /// Unlinks `waiter`, if it is still linked (it is not once the future is done).
    pub(crate) fn remove_waiter(&self, waiter: &Arc<Waiter>) {
        let mut slot = self.inner.lock();
        if let Some(listeners) = &mut slot.listeners {
            listeners.waiters.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
        }
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
    pub fn set_running_or_notify_cancel(&self) -> Result<bool, InvalidStateError> {
        let mut slot = self.inner.lock();
        match slot.phase {
            Phase::Pending => {
                self.inner.set_phase(&mut slot, Phase::Running);
                Ok(true)
            }
            Phase::Cancelled {
                acknowledged: false,
            } => {
                self.inner
                    .set_phase(&mut slot, Phase::Cancelled { acknowledged: true });
                Ok(false)
            }
            _ => Err(slot.invalid_state()),
        }
    }

    /// Completes the future with a value. Errs, keeping the first outcome,
    /// if the future is already finished or cancelled.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.complete(Ok(Some(value)))
    }

    /// Completes the future with an error. Errs, keeping the first outcome,
    /// if the future is already finished or cancelled.
    pub fn set_error(&self, error: TaskError) -> Result<(), InvalidStateError> {
        self.complete(Err(Box::new(error)))
    }

    /// Completes the future with `outcome`: the value, or the error.
    pub fn set_outcome(&self, outcome: Result<T, TaskError>) -> Result<(), InvalidStateError> {
        self.complete(outcome.map(Some).map_err(Box::new))
    }

    /// True if the future was cancelled: an executor may skip work it has
    /// not started yet.
    pub fn is_cancelled(&self) -> bool {
        self.inner.state() == State::Cancelled
    }

    fn complete(
        &self,
        outcome: Result<Option<T>, Box<TaskError>>,
    ) -> Result<(), InvalidStateError> {
        let mut slot = self.inner.lock();
        if slot.state().is_done() {
            return Err(slot.invalid_state());
        }
        let failed = outcome.is_err();
        let after = self
            .inner
            .finish_locked(&mut slot, Phase::Finished(outcome), failed);
        drop(slot);
        self.inner.after_unlock(after, || self.future());
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
        let mut slot = self.inner.lock();
        if slot.state().is_done() {
            return; // cancelled meanwhile
        }
        let broken = Phase::Finished(Err(Box::new(TaskError::BrokenPromise)));
        let after = self.inner.finish_locked(&mut slot, broken, true);
        drop(slot);
        self.inner.after_unlock(after, || self.future());
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
        f.write_str(&self.inner.lock().repr())
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Promise({})", self.inner.lock().repr())
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
