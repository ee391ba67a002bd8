//! `Shared<T>`: the handles' reference count, an `Arc` without weak counts,
//! whose count lives in a word of the value itself.
//!
//! A future and its promise share one allocation. `std::sync::Arc` keeps two
//! counters beside the value (strong and weak), and dropping the last handle
//! pays an atomic read-modify-write on each; nothing here ever makes a weak
//! reference. So this is `Arc` with the strong count alone, with `Arc`'s
//! orderings (see `Clone` and `Drop` below, and the Rustonomicon's
//! "Implementing Arc", from which this is taken), and one more step: the
//! count is kept in the high bits of an atomic word the value already has
//! (a future's state word, see [`Counted`]), so that one compare-and-swap
//! can change the value's state and let go of a handle at once (a promise
//! dropped unused, `Promise::drop`).

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::sync::{fence, AtomicUsize, Ordering};

/// A value that carries its own count of handles.
pub(crate) trait Counted {
    /// One handle in the count: a power of two; the bits below it are the
    /// value's own, the bits from it up are the count.
    const HANDLE: usize;

    /// The atomic word whose high bits hold the count.
    fn count_word(&self) -> &AtomicUsize;
}

/// The number of handles a count word says there are.
fn handles<T: Counted>(word: usize) -> usize {
    word / T::HANDLE
}

/// A counted, shared handle to a `T` (see the module docs).
pub(crate) struct Shared<T: Counted> {
    ptr: NonNull<T>,
}

// SAFETY: a `Shared<T>` gives `&T` to any thread that holds one, and the last
// one drops the `T` on whatever thread it is: exactly `Arc<T>`'s situation,
// with `Arc`'s bounds.
unsafe impl<T: Counted + Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Counted + Send + Sync> Sync for Shared<T> {}

impl<T: Counted> Shared<T> {
    /// Moves `value` into a new allocation, with two handles to it (a
    /// promise's and its future's: counting both from the start spares an
    /// atomic increment). Its count word must count two handles.
    pub(crate) fn new_pair(value: T) -> (Self, Self) {
        debug_assert_eq!(handles::<T>(value.count_word().load(Ordering::Relaxed)), 2);
        let ptr = NonNull::from(Box::leak(Box::new(value)));
        (Shared { ptr }, Shared { ptr })
    }

    /// True if `a` and `b` are handles to the same allocation.
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// True if this is the only handle: then no other thread can reach the
    /// value (making another handle needs one), and every access another
    /// handle made before it was dropped happens-before what the caller
    /// does next (Acquire, pairing with the Release of `Drop`'s decrement).
    pub(crate) fn is_unique(&self) -> bool {
        handles::<T>(self.count_word().load(Ordering::Acquire)) == 1
    }

    /// Finishes dropping a handle whose count the caller has already taken
    /// off, with a Release read-modify-write of the count word that read
    /// `before` (a CAS that also changed the value's own bits): frees the
    /// allocation if that was the last handle.
    ///
    /// # Safety
    ///
    /// The caller removed exactly this handle from the count, as described,
    /// and never uses or drops `this` again.
    pub(crate) unsafe fn released(this: &mut ManuallyDrop<Self>, before: usize) {
        if handles::<T>(before) == 1 {
            // SAFETY: the caller's contract: this handle is gone from the
            // count, it was the last, and `this` is not used again.
            unsafe { this.free() };
        }
    }

    /// Frees the allocation, after the last handle's Release decrement.
    ///
    /// # Safety
    ///
    /// The count went from one to zero by this handle's decrement, and this
    /// handle is not used again.
    unsafe fn free(&mut self) {
        // Acquire, as in `Arc::drop`: every other handle's uses of the value
        // happen-before their Release decrements, and so before this fence
        // and the drop of the value.
        fence(Ordering::Acquire);
        // SAFETY: the count reached zero, so nothing else can reach the
        // allocation (no handle can be made without one); it came from
        // `Box::leak` in `new`, and only the last handle frees it, once.
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}

impl<T: Counted> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `ptr` came from `Box::leak` in `new`, and the allocation
        // lives while any handle does (this one included): only the drop of
        // the last handle frees it.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Counted> Clone for Shared<T> {
    fn clone(&self) -> Self {
        // Relaxed, as in `Arc::clone`: a new handle is made from an existing
        // one, which keeps the allocation alive meanwhile, and nothing is
        // published by counting it.
        let before = self.count_word().fetch_add(T::HANDLE, Ordering::Relaxed);
        // As `Arc` does: abort long before the count could wrap around.
        if before > usize::MAX / 2 {
            std::process::abort();
        }
        Shared { ptr: self.ptr }
    }
}

impl<T: Counted> Drop for Shared<T> {
    fn drop(&mut self) {
        // Release, as in `Arc::drop`: this handle's uses of the value
        // happen-before the decrement, so before the last handle's Acquire
        // fence in `free`, and so before the value is dropped.
        let before = self.count_word().fetch_sub(T::HANDLE, Ordering::Release);
        if handles::<T>(before) == 1 {
            // SAFETY: this decrement took the count from one to zero, and
            // `self` is being dropped.
            unsafe { self.free() };
        }
    }
}

// Not under Miri, which cannot start the child process the test watches.
#[cfg(all(test, not(loom), not(miri), unix))]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A value whose count word starts where the caller says.
    struct Word(AtomicUsize);

    impl Counted for Word {
        const HANDLE: usize = 1 << 5;

        fn count_word(&self) -> &AtomicUsize {
            &self.0
        }
    }

    /// Set in the child process that `clone_aborts_before_the_count_wraps`
    /// starts: then this test makes the clone that must abort.
    const CHILD: &str = "SHARED_OVERFLOW_CHILD";

    /// As `Arc`: `mem::forget` of clones in a loop must end in an abort,
    /// never in a count that wraps into the value's own bits (and then a
    /// free while handles remain). A loop would take 2^58 clones, so the
    /// count starts just below the limit; the abort is watched from a child
    /// process (this test binary, run again on this one test).
    #[test]
    fn clone_aborts_before_the_count_wraps() {
        if std::env::var_os(CHILD).is_some() {
            // Two handles counted, the word just under the limit: the next
            // clone reads a word past it and must abort.
            let start = usize::MAX / 2 - Word::HANDLE + 1;
            let (a, b) = Shared::new_pair(Word(AtomicUsize::new(2 * Word::HANDLE)));
            a.count_word().store(start, Ordering::Relaxed);
            std::mem::forget(a.clone()); // word: start, below the limit
            std::mem::forget(a.clone()); // word past the limit: aborts
                                         // Not reached if the abort works; leave without freeing.
            std::mem::forget((a, b));
            println!("no abort");
            return;
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "shared::tests::clone_aborts_before_the_count_wraps",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("running the test binary again as a child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains("no abort"),
            "the clone past the limit did not abort: {stdout}"
        );
        assert_eq!(
            out.status.signal(),
            Some(6),
            "the child should die of SIGABRT, as Arc's overflow does: {:?}\n{stdout}",
            out.status
        );
    }
}
