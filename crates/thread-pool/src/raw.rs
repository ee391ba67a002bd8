//! [`RawJob`]: a queued task with its type erased, stored *inline* in the
//! queue slot when it is small, so that the common task costs no allocation
//! of its own.
//!
//! The obvious representation, `Box<dyn Job>`, costs one heap allocation
//! per task, made by the submitting thread and freed by a worker. Measured
//! (see `docs/thread-pool.md`), that cross-thread free pattern is what the
//! allocator likes least: the worker's frees land in the submitter's arena
//! under its lock, and the submitter's next large request consolidates them.
//! Most tasks are tiny (a promise pointer and a few captured words), so a
//! `RawJob` keeps up to [`INLINE_WORDS`] machine words of job in place and
//! only boxes larger ones, with a hand-made vtable (four function pointers,
//! one `'static` table per job type) to run, cancel, fail or drop it.
//!
//! # Safety contract
//!
//! * `storage` holds a live `J` (inline) or a live `Box<J>` (boxed), as
//!   recorded by `vtable`, from construction until exactly one of `run`,
//!   `cancel`, `fail` or `Drop` moves it out. The consuming methods wrap
//!   `self` in `ManuallyDrop` first, so `Drop` never sees a moved-out job.
//! * Inline storage is only used when `J` fits in size and alignment.
//! * A `RawJob` is `Send` because it is only built from `J: Send`.
//! * It has no lifetime: [`RawJob::new`] requires `J: 'static`;
//!   [`RawJob::new_unchecked`] leaves it to the caller (the scope) to consume
//!   the job before any borrow in it ends.

use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::ptr;

use future::TaskError;

use crate::job::{Job, RunHooks};

/// Words of job kept in place (24 bytes on 64-bit targets): enough for a
/// promise and two captured words, e.g. `submit(move || x * 2)` or a `map`
/// item with its shared closure.
pub(crate) const INLINE_WORDS: usize = 3;

type Storage = MaybeUninit<[usize; INLINE_WORDS]>;

/// Operations on a job of one concrete type, stored one way or the other.
struct VTable {
    run: unsafe fn(*mut Storage, &mut dyn RunHooks),
    cancel: unsafe fn(*mut Storage),
    fail: unsafe fn(*mut Storage, TaskError),
    drop: unsafe fn(*mut Storage),
}

/// A type-erased job; see the module docs.
pub(crate) struct RawJob {
    storage: Storage,
    vtable: &'static VTable,
}

// SAFETY: a RawJob owns a `J: Send` (checked at construction), and its
// vtable is a shared table of plain function pointers.
unsafe impl Send for RawJob {}

const fn fits_inline<J>() -> bool {
    size_of::<J>() <= size_of::<Storage>() && align_of::<J>() <= align_of::<Storage>()
}

/// Reads the job out of inline storage.
///
/// # Safety
/// `storage` holds a live inline `J`, which the caller then owns.
unsafe fn take_inline<J>(storage: *mut Storage) -> J {
    // SAFETY: per the contract, a live J sits at the start of `storage`,
    // properly aligned (checked by `fits_inline` at construction).
    unsafe { ptr::read(storage.cast::<J>()) }
}

/// Reads the job out of its box.
///
/// # Safety
/// `storage` holds a live `Box<J>`, which the caller then owns.
unsafe fn take_boxed<J>(storage: *mut Storage) -> J {
    // SAFETY: per the contract, a live Box<J> sits at the start of `storage`;
    // a Box is one pointer, which always fits and is word-aligned.
    unsafe { *ptr::read(storage.cast::<Box<J>>()) }
}

struct Inline<J>(J);
struct Boxed<J>(J);

impl<J: Job> Inline<J> {
    const VTABLE: VTable = VTable {
        // SAFETY (all four): the vtable is only paired with inline storage
        // holding a live J, and each entry is called at most once (module docs).
        run: |s, hooks| unsafe { take_inline::<J>(s) }.run(hooks),
        cancel: |s| unsafe { take_inline::<J>(s) }.cancel(),
        fail: |s, e| unsafe { take_inline::<J>(s) }.fail(e),
        drop: |s| drop(unsafe { take_inline::<J>(s) }),
    };
}

impl<J: Job> Boxed<J> {
    const VTABLE: VTable = VTable {
        // SAFETY (all four): the vtable is only paired with storage holding a
        // live Box<J>, and each entry is called at most once (module docs).
        run: |s, hooks| unsafe { take_boxed::<J>(s) }.run(hooks),
        cancel: |s| unsafe { take_boxed::<J>(s) }.cancel(),
        fail: |s, e| unsafe { take_boxed::<J>(s) }.fail(e),
        drop: |s| drop(unsafe { take_boxed::<J>(s) }),
    };
}

impl RawJob {
    /// Erases a `'static` job.
    pub(crate) fn new<J: Job + 'static>(job: J) -> Self {
        // SAFETY: J is 'static, so it borrows nothing that could end first.
        unsafe { Self::new_unchecked(job) }
    }

    /// Erases a job that may borrow.
    ///
    /// # Safety
    /// The returned `RawJob` must be consumed (run, cancelled, failed or
    /// dropped) before any lifetime that `J` contains ends.
    pub(crate) unsafe fn new_unchecked<J: Job>(job: J) -> Self {
        let mut storage = Storage::uninit();
        let vtable: &'static VTable = if fits_inline::<J>() {
            // SAFETY: J fits `storage` in size and alignment (just checked),
            // and `storage` is ours and uninitialised: nothing is overwritten.
            unsafe { ptr::write(storage.as_mut_ptr().cast::<J>(), job) };
            &Inline::<J>::VTABLE
        } else {
            // SAFETY: a Box is one word, so it fits; same as above otherwise.
            unsafe { ptr::write(storage.as_mut_ptr().cast::<Box<J>>(), Box::new(job)) };
            &Boxed::<J>::VTABLE
        };
        RawJob { storage, vtable }
    }

    /// Runs the job (see [`Job::run`]).
    pub(crate) fn run(self, hooks: &mut dyn RunHooks) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: the storage holds the live job its vtable expects, and
        // ManuallyDrop guarantees `Drop` will not touch it again.
        unsafe { (this.vtable.run)(&mut this.storage, hooks) }
    }

    /// Cancels the job's future (see [`Job::cancel`]).
    pub(crate) fn cancel(self) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: as in `run`.
        unsafe { (this.vtable.cancel)(&mut this.storage) }
    }

    /// Fails the job's future (see [`Job::fail`]).
    pub(crate) fn fail(self, error: TaskError) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: as in `run`.
        unsafe { (this.vtable.fail)(&mut this.storage, error) }
    }
}

impl Drop for RawJob {
    fn drop(&mut self) {
        // SAFETY: `Drop` runs only when no consuming method ran (they wrap
        // self in ManuallyDrop), so the job is still live here.
        unsafe { (self.vtable.drop)(&mut self.storage) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Ran;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    /// Records which operation consumed it, and that it was dropped once.
    struct Probe<const N: usize> {
        log: Arc<Log>,
        _pad: [u8; N],
    }

    #[derive(Default)]
    struct Log {
        ran: AtomicUsize,
        cancelled: AtomicUsize,
        failed: AtomicUsize,
        dropped: AtomicUsize,
    }

    impl<const N: usize> Drop for Probe<N> {
        fn drop(&mut self) {
            self.log.dropped.fetch_add(1, SeqCst);
        }
    }

    impl<const N: usize> Job for Probe<N> {
        fn run(self, hooks: &mut dyn RunHooks) {
            hooks.before_publish(Ran::Completed);
            self.log.ran.fetch_add(1, SeqCst);
        }
        fn cancel(self) {
            self.log.cancelled.fetch_add(1, SeqCst);
        }
        fn fail(self, _error: TaskError) {
            self.log.failed.fetch_add(1, SeqCst);
        }
    }

    struct NoHooks(usize);
    impl RunHooks for NoHooks {
        fn started(&mut self) {}
        fn before_publish(&mut self, _ran: Ran) {
            self.0 += 1;
        }
    }

    fn counts(log: &Log) -> [usize; 4] {
        [
            log.ran.load(SeqCst),
            log.cancelled.load(SeqCst),
            log.failed.load(SeqCst),
            log.dropped.load(SeqCst),
        ]
    }

    fn exercise<const N: usize>() {
        let log = Arc::new(Log::default());
        let probe = || Probe::<N> {
            log: log.clone(),
            _pad: [7; N],
        };
        let mut hooks = NoHooks(0);
        RawJob::new(probe()).run(&mut hooks);
        assert_eq!(hooks.0, 1);
        assert_eq!(counts(&log), [1, 0, 0, 1]);
        RawJob::new(probe()).cancel();
        assert_eq!(counts(&log), [1, 1, 0, 2]);
        RawJob::new(probe()).fail(TaskError::BrokenPromise);
        assert_eq!(counts(&log), [1, 1, 1, 3]);
        drop(RawJob::new(probe()));
        assert_eq!(counts(&log), [1, 1, 1, 4]);
        // Moving a RawJob around (as the queue does) keeps the job intact.
        let jobs: Vec<RawJob> = (0..10).map(|_| RawJob::new(probe())).collect();
        let moved: Vec<RawJob> = jobs.into_iter().rev().collect();
        for job in moved {
            job.run(&mut hooks);
        }
        assert_eq!(counts(&log), [11, 1, 1, 14]);
    }

    #[test]
    fn small_jobs_are_inline_and_consumed_once() {
        assert!(fits_inline::<Probe<8>>());
        exercise::<8>();
        assert!(fits_inline::<Probe<0>>());
        exercise::<0>();
    }

    #[test]
    fn large_jobs_are_boxed_and_consumed_once() {
        assert!(!fits_inline::<Probe<64>>());
        exercise::<64>();
    }

    #[test]
    fn over_aligned_jobs_are_boxed() {
        #[repr(align(32))]
        struct Wide(#[allow(dead_code)] u8);
        impl Job for Wide {
            fn run(self, _: &mut dyn RunHooks) {}
            fn cancel(self) {}
            fn fail(self, _: TaskError) {}
        }
        assert!(!fits_inline::<Wide>());
        RawJob::new(Wide(1)).run(&mut NoHooks(0));
        drop(RawJob::new(Wide(2)));
    }

    #[test]
    fn a_submit_sized_job_fits_inline() {
        // What `submit(move || x)` queues: a closure of one word and a promise.
        let (promise, _future) = future::promise::<u64>();
        let x = 5u64;
        let job = crate::job::PromiseJob::new(move || Ok(x), promise);
        assert!(fits_inline_val(&job));
    }

    #[test]
    fn a_traced_submit_sized_job_fits_inline() {
        // What a traced pool's `submit(move || x)` queues: the same job and
        // the task's number. Boxed, a traced task cost an allocation by the
        // submitter freed by a worker (the `trace_200k` bench row).
        let recorder = future::trace::Recorder::new();
        let (promise, _future) = future::promise::<u64>();
        let x = 5u64;
        let job = crate::job::PromiseJob::new(move || Ok(x), promise);
        let traced = crate::trace::TracedJob::new(&recorder, job);
        assert!(fits_inline_val(&traced));
    }

    fn fits_inline_val<J>(_: &J) -> bool {
        fits_inline::<J>()
    }
}
