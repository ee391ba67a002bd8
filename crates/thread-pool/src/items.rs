//! The default `map`'s input, read in place.
//!
//! `map` collects its input into one vector (Python's eager `map` takes
//! the whole input at the call). The runners then take the items by
//! index, straight out of that vector: a claim is a range of indexes, not
//! a copy of the items. (Before, the bag was the vector reversed and each
//! claim a `split_off` of its end: the reverse and the copy moved every
//! item twice more before `f` saw it.)
//!
//! ## Who owns an item
//!
//! The vector's memory belongs to [`Items`], but each item (each index) is
//! owned by exactly one party at a time:
//!
//! * the bag's list of unclaimed ranges (`adaptive.rs`, under its lock);
//! * or one runner's [`Claim`], after the bag handed it a range under that
//!   lock, until the runner moves the item out (to call `f`) or hands the
//!   rest of the range back under the lock;
//! * or nobody: the item was moved out, or dropped (a cancelled map drops
//!   its unclaimed ranges, and the bag drops the ranges still unclaimed
//!   when it goes).
//!
//! Every hand-over of a range happens under the bag's lock, so whoever
//! takes a range sees the items as the last owner left them (the lock's
//! release/acquire orders the accesses), and since each index has one owner
//! at a time, no two threads ever touch the same item. The unsafe code
//! below is the three ways of ending an item's life (move it out, drop it
//! in place, give its range to a claim): each says in its contract which
//! owner the caller must be.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::ops::Range;
use std::ptr::{self, NonNull};

/// The collected input: a buffer whose items are moved out or dropped one
/// range at a time (module docs). Dropping it frees the buffer but drops no
/// item: the owner of each range does that.
pub(crate) struct Items<X> {
    /// `buf`'s elements, taken once, before `buf` is moved anywhere: every
    /// access goes through this pointer, never through `buf`.
    ptr: NonNull<MaybeUninit<X>>,
    len: usize,
    /// Owns the allocation; `MaybeUninit` elements are never dropped by it.
    _buf: Vec<MaybeUninit<X>>,
}

// SAFETY: `Items` is a buffer of `X`s that the threads holding a `&Items`
// access only under the ownership rule of the module docs: one owner per
// item, ranges handed over under a lock. That is exactly what
// `Mutex<Vec<X>>` needs to be `Send` and `Sync`: `X: Send`, no more.
unsafe impl<X: Send> Send for Items<X> {}
// SAFETY: as above.
unsafe impl<X: Send> Sync for Items<X> {}

impl<X> Items<X> {
    /// Takes `items` over (no copy). The caller owns every index: it must
    /// give each range to the bag, a claim or a drop (module docs).
    pub(crate) fn new(items: Vec<X>) -> Self {
        let mut items = ManuallyDrop::new(items);
        let (len, capacity) = (items.len(), items.capacity());
        // SAFETY: the pointer, length and capacity come from a vector we
        // own and never use again (`ManuallyDrop`: it neither drops nor
        // frees), and `MaybeUninit<X>` has the size and alignment of `X`,
        // so they describe a valid `Vec<MaybeUninit<X>>` of the same
        // allocation.
        let mut buf = unsafe {
            Vec::from_raw_parts(items.as_mut_ptr().cast::<MaybeUninit<X>>(), len, capacity)
        };
        let ptr = NonNull::new(buf.as_mut_ptr()).expect("a vector's pointer is never null");
        Items {
            ptr,
            len,
            _buf: buf,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Gives the items of `range` to a new claim, which moves them out one
    /// by one, or drops them if it is dropped.
    ///
    /// # Safety
    ///
    /// The caller owns every item of `range` (it is within `0..len`, its
    /// items were neither moved out nor dropped, and nobody else may touch
    /// them) and hands that ownership to the claim.
    pub(crate) unsafe fn claim(&self, range: Range<usize>) -> Claim<'_, X> {
        debug_assert!(range.start <= range.end && range.end <= self.len);
        Claim {
            items: self,
            next: range.start,
            end: range.end,
        }
    }

    /// Drops the items of `range` in place (user `Drop` code: run it
    /// outside any lock).
    ///
    /// # Safety
    ///
    /// The caller owns every item of `range` (as for [`Items::claim`]); they
    /// are gone afterwards.
    pub(crate) unsafe fn drop_range(&self, range: Range<usize>) {
        debug_assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: `range` is within the buffer (the caller's contract), so
        // the slice is within one allocation; its items are initialized and
        // owned by the caller, who gives them up: they are dropped once.
        // A panicking `Drop` still drops the slice's other items.
        unsafe {
            let first = self.ptr.as_ptr().add(range.start).cast::<X>();
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(first, range.len()));
        }
    }

    /// Drops the items of every range of `ranges` in place (user `Drop`
    /// code: run it outside any lock). An item whose `Drop` panics costs
    /// only itself: the rest of its range and the ranges after it are still
    /// dropped, then the panic goes on, as with a `Vec`'s drop (and, as
    /// there, a second panic meanwhile aborts).
    ///
    /// # Safety
    ///
    /// As for [`Items::drop_range`], for every range.
    pub(crate) unsafe fn drop_ranges(&self, ranges: impl IntoIterator<Item = Range<usize>>) {
        /// The ranges not dropped yet; its own drop, which runs only if a
        /// range's drop panicked, drops them.
        struct Rest<'a, X, R: Iterator<Item = Range<usize>>> {
            items: &'a Items<X>,
            ranges: R,
        }
        impl<X, R: Iterator<Item = Range<usize>>> Drop for Rest<'_, X, R> {
            fn drop(&mut self) {
                for range in &mut self.ranges {
                    // SAFETY: the caller of `drop_ranges` owns the range
                    // and gave it up; the loop drops each range once.
                    unsafe { self.items.drop_range(range) }
                }
            }
        }
        let mut rest = Rest {
            items: self,
            ranges: ranges.into_iter(),
        };
        for range in rest.ranges.by_ref() {
            // SAFETY: as above; `next` moved past the range, so a panic
            // here leaves only the ranges after it to `rest`.
            unsafe { self.drop_range(range) }
        }
    }
}

/// One runner's claim: it owns the items `next..end` (module docs).
/// Dropping it drops the items it still owns.
pub(crate) struct Claim<'a, X> {
    items: &'a Items<X>,
    next: usize,
    end: usize,
}

impl<X> Claim<'_, X> {
    /// The index of the next item.
    pub(crate) fn start(&self) -> usize {
        self.next
    }

    /// The items it still owns.
    pub(crate) fn len(&self) -> usize {
        self.end - self.next
    }

    /// Gives up the items it still owns, as a range, to the caller (who
    /// must give them to an owner: the bag, or a drop).
    pub(crate) fn into_rest(self) -> Range<usize> {
        let rest = self.next..self.end;
        std::mem::forget(self);
        rest
    }
}

impl<X> Iterator for Claim<'_, X> {
    type Item = X;

    /// Moves the next item out.
    #[inline]
    fn next(&mut self) -> Option<X> {
        if self.next == self.end {
            return None;
        }
        let at = self.next;
        self.next += 1;
        // SAFETY: the claim owns `at` (it was in `next..end`, which the
        // claim's maker owned and gave it, and `next` moved past it just
        // now, so it is read once): it is initialized, within the buffer,
        // and nobody else touches it.
        Some(unsafe { self.items.ptr.as_ptr().add(at).read().assume_init() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl<X> Drop for Claim<'_, X> {
    fn drop(&mut self) {
        // SAFETY: the claim owns `next..end` and is going away.
        unsafe { self.items.drop_range(self.next..self.end) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    /// Counts its drops.
    struct Counted(usize, Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, SeqCst);
        }
    }

    fn counted(n: usize) -> (Items<Counted>, Arc<AtomicUsize>) {
        let drops = Arc::new(AtomicUsize::new(0));
        let items = (0..n).map(|i| Counted(i, drops.clone())).collect();
        (Items::new(items), drops)
    }

    #[test]
    fn every_item_is_moved_out_or_dropped_exactly_once() {
        let (items, drops) = counted(10);
        // SAFETY (here and below): the test owns every index at first and
        // gives each range to one owner once: 2..6 to a claim, whose rest
        // 3..6 comes back and is dropped; 6..10 to a claim; 0..2 dropped.
        let mut claim = unsafe { items.claim(2..6) };
        assert_eq!(claim.next().map(|c| c.0), Some(2));
        assert_eq!(
            drops.load(SeqCst),
            1,
            "the moved-out item was dropped by its taker"
        );
        // The rest goes back, then is dropped by its new owner.
        let rest = claim.into_rest();
        assert_eq!(rest, 3..6);
        assert_eq!(drops.load(SeqCst), 1);
        // SAFETY: see above.
        unsafe { items.drop_range(rest) };
        assert_eq!(drops.load(SeqCst), 4);
        // A claim dropped half-way drops what it still owns.
        // SAFETY: see above.
        let mut claim = unsafe { items.claim(6..10) };
        let taken = claim.next().unwrap();
        assert_eq!(taken.0, 6);
        drop(claim);
        assert_eq!(drops.load(SeqCst), 7);
        drop(taken);
        // SAFETY: see above.
        unsafe { items.drop_range(0..2) };
        assert_eq!(drops.load(SeqCst), 10);
        // The buffer drops no item itself: nothing is dropped twice.
        drop(items);
        assert_eq!(drops.load(SeqCst), 10);
    }

    #[test]
    fn over_aligned_zero_sized_and_not_sync_items_are_each_dropped_once() {
        // Items aligned to 64 bytes (more than an allocator's usual 16),
        // zero-sized items with a `Drop`, and `!Sync` items (a `Cell`): the
        // claims read each at its own address (Miri checks the alignment
        // and the provenance) and drop each once.
        #[repr(align(64))]
        struct Wide(u8, Arc<AtomicUsize>);
        impl Drop for Wide {
            fn drop(&mut self) {
                self.1.fetch_add(1, SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let items = Items::new((0..9).map(|i| Wide(i, drops.clone())).collect());
        // SAFETY (here and below): the test owns every index and gives each
        // range to one owner once.
        let taken: Vec<u8> = unsafe { items.claim(0..4) }.map(|w| w.0).collect();
        assert_eq!(taken, [0, 1, 2, 3]);
        // SAFETY: see above.
        unsafe { items.drop_ranges([4..6, 6..9]) };
        assert_eq!(drops.load(SeqCst), 9);

        static ZST_DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Zst;
        impl Drop for Zst {
            fn drop(&mut self) {
                ZST_DROPS.fetch_add(1, SeqCst);
            }
        }
        let items = Items::new((0..6).map(|_| Zst).collect());
        // SAFETY: see above.
        let mut claim = unsafe { items.claim(1..6) };
        drop(claim.next());
        drop(claim);
        // SAFETY: see above.
        unsafe { items.drop_range(0..1) };
        assert_eq!(ZST_DROPS.load(SeqCst), 6);

        let items = Items::new((0..3).map(std::cell::Cell::new).collect());
        // SAFETY: see above.
        let sum: i32 = unsafe { items.claim(0..3) }
            .map(std::cell::Cell::into_inner)
            .sum();
        assert_eq!(sum, 3);
    }

    #[test]
    fn zero_sized_and_empty_inputs() {
        let items = Items::new(vec![(); 5]);
        // SAFETY: the test owns 0..5 and gives it to this claim only.
        let claim = unsafe { items.claim(0..5) };
        assert_eq!(claim.count(), 5);
        let items = Items::<String>::new(Vec::new());
        assert_eq!(items.len(), 0);
        // SAFETY: an empty range owns nothing.
        assert_eq!(unsafe { items.claim(0..0) }.next(), None);
    }
}
