//! `pool.scope(|s| ...)`: tasks that borrow from the caller's stack.
//!
//! The pool's queue holds type-erased jobs ([`RawJob`]) that carry no
//! lifetime, because workers outlive any one caller; a safe `RawJob` can only
//! be made from a `'static` job. A scoped task may borrow data that lives
//! only for the scope (`'scope`), so it is erased with the unsafe
//! `RawJob::new_unchecked`, and the scope makes that sound by not returning
//! until every such job has been consumed and dropped:
//!
//! * each scoped job is wrapped in a [`ScopedJob`] whose `Drop` first drops
//!   the inner job (closure, captures, promise) and only then decrements the
//!   scope's `pending` count;
//! * every way a job can leave the queue (run, cancelled by shutdown, failed
//!   by a broken pool) consumes and drops it, and
//!   the queue is never dropped while the pool is borrowed by the scope;
//! * [`run`] waits for `pending == 0` after the scope's closure returns, and
//!   also when it panics (the panic is resumed afterwards), as
//!   `std::thread::scope` does.
//!
//! The futures handed out may hold values that borrow for `'scope`; their
//! type carries that lifetime, so the borrow checker keeps them from being
//! used after the borrowed data is gone.

use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use future::{promise, Future, TaskError};
use parking_lot::{Condvar, Mutex};

use crate::error::SubmitError;
use crate::executor::ThreadPoolExecutor;
use crate::job::{Job, PromiseJob, RunHooks};
use crate::raw::RawJob;
use crate::shared::Refusal;
use crate::trace::TracedJob;

/// A scope of tasks that may borrow from the stack; see
/// [`ThreadPoolExecutor::scope`].
///
/// ```
/// use thread_pool::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::new(2);
/// let words = vec!["alpha".to_string(), "beta".to_string()];
/// let total: usize = pool.scope(|s| {
///     let futures: Vec<_> = words.iter().map(|w| s.submit(move || w.len()).unwrap()).collect();
///     futures.into_iter().map(|f| f.into_result().unwrap()).sum()
/// });
/// assert_eq!(total, 9);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'scope ThreadPoolExecutor,
    pending: Arc<Pending>,
    /// Invariant in `'scope` and `'env`, as `std::thread::Scope` is.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// How many of the scope's jobs have not been dropped yet.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    zero: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock() += 1;
    }

    fn done(&self) {
        let mut count = self.count.lock();
        *count -= 1;
        if *count == 0 {
            self.zero.notify_all();
        }
    }

    fn wait_zero(&self) {
        let mut count = self.count.lock();
        while *count > 0 {
            self.zero.wait(&mut count);
        }
    }
}

/// A scoped job, its lifetime erased, that reports its own drop.
struct ScopedJob {
    inner: Option<RawJob>,
    pending: Arc<Pending>,
}

impl Drop for ScopedJob {
    fn drop(&mut self) {
        // The inner job (and everything it borrows) goes first; only then may
        // the scope learn that this job is gone, even if that drop panics
        // (the guard also runs while unwinding).
        struct Done<'a>(&'a Pending);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        let _done = Done(&self.pending);
        drop(self.inner.take());
    }
}

impl Job for ScopedJob {
    fn run(mut self, hooks: &mut dyn RunHooks) {
        if let Some(job) = self.inner.take() {
            job.run(hooks);
        }
    }

    fn cancel(mut self) {
        if let Some(job) = self.inner.take() {
            job.cancel();
        }
    }

    fn fail(mut self, error: TaskError) {
        if let Some(job) = self.inner.take() {
            job.fail(error);
        }
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Schedules `f`, which may borrow anything that outlives the scope.
    /// Same rules as [`ThreadPoolExecutor::submit`].
    pub fn submit<F, T>(&'scope self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let ticket = self
            .pool
            .shared()
            .enter(true)
            .map_err(Refusal::into_submit_error)?;
        let (promise, future) = promise();
        let job = PromiseJob::new(move || Ok(f()), promise);
        // SAFETY (both arms): `new_unchecked` requires the job to be consumed
        // before `'scope` ends. It is wrapped in a `ScopedJob`, which counts
        // in `pending` until it is dropped (after the inner job), and `run`
        // does not return before `pending` is zero; every path out of the
        // queue consumes the job, and the pool cannot drop its queue while
        // this scope borrows it.
        let job = match &self.pool.shared().config.trace {
            // SAFETY: see above.
            None => unsafe { RawJob::new_unchecked(job) },
            // A traced pool records every task, a scope's too.
            // SAFETY: see above; `TracedJob` holds the job and a number.
            Some(recorder) => unsafe { RawJob::new_unchecked(TracedJob::new(recorder, job)) },
        };
        self.pending.add();
        ticket.push(RawJob::new(ScopedJob {
            inner: Some(job),
            pending: self.pending.clone(),
        }));
        Ok(future)
    }
}

/// The body of [`ThreadPoolExecutor::scope`].
pub(crate) fn run<'env, F, R>(pool: &ThreadPoolExecutor, f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let scope = Scope {
        pool,
        pending: Arc::new(Pending::default()),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.pending.wait_zero();
    match result {
        Ok(value) => value,
        Err(payload) => resume_unwind(payload),
    }
}
