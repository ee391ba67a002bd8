//! One claim's results, published to the iterator one by one.
//!
//! A runner of the default map (`adaptive.rs`) runs a claim of `n`
//! consecutive items. Its results must reach the iterator as each one ends,
//! not when the whole claim ends: an item may wait for the consumer to take
//! an earlier result (a semaphore the consumer releases per result), and
//! CPython, with a future per item, goes on there. So each claim gets a
//! [`Run`]: a buffer of `n` slots allocated once and never moved, which the
//! runner fills in order ([`Writer`]) and the iterator empties in order
//! ([`Reader`]).
//!
//! ## The hand-off
//!
//! * The runner writes slot `i` (a value, or for a panicked item a failure
//!   in the run's small locked list), then stores the count `i + 1` in
//!   `published` with `Release`.
//! * The iterator loads `published` with `Acquire` and moves the values of
//!   the slots below it out, in order. The `Release`/`Acquire` pair makes
//!   each slot's write happen before its read; each slot is written once
//!   (the writer's count only grows) and read once (the reader's only
//!   grows), so no slot is touched by two threads at once.
//!
//! `fold` takes every published slot in one loop over the buffer.
//!
//! ## Ownership of the slots
//!
//! Slots `taken..published` hold values nobody has moved out (less the
//! failed ones, which hold nothing). When the reader goes, it stores
//! `taken` and puts its failures not yet yielded back in the run; the run's
//! own `Drop`, once neither side is left (the `Arc`), drops those values.
//!
//! ## Waking the iterator ([`Watch`])
//!
//! Publishing costs a plain store, and a runner must not pay a wake-up per
//! item. So the iterator asks: before it sleeps on a claim that has run
//! past `SLOW`, it stores in `Watch` the count it waits for (the index of
//! the item + 1), and after each result the runner compares that word with
//! the count it just published; on a match it wakes the iterator (through
//! the bag's lock, under which the iterator looks and goes to sleep).
//! Between the runner's store of the count and its load of the word, and
//! between the iterator's store of the word and its load of the count, sit
//! the two sides of an asymmetric fence pair (`asymmetric.rs`): one of the
//! two loads sees the other side's store, so either the iterator sees the
//! result and does not sleep, or the runner sees the request and wakes it.
//! The loom model at the end checks that no wake-up is lost.

use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;

use future::TaskError;
use parking_lot::Mutex;

use crate::asymmetric::Fences;
use crate::sync::AtomicUsize;

/// The iterator's request to be woken when a given result is published
/// (module docs, "Waking the iterator").
pub(crate) struct Watch {
    /// The count the iterator waits for (its item's index + 1); 0: none.
    /// `Relaxed` everywhere: the fences order it against the counts, and
    /// the wake-up itself goes through the caller's lock.
    until: AtomicUsize,
    fences: Fences,
}

impl Watch {
    pub(crate) fn new(fences: Fences) -> Self {
        Watch {
            until: AtomicUsize::new(0),
            fences,
        }
    }

    /// The runner, after publishing the results up to `end` (an index of
    /// the input): must it wake the iterator?
    #[inline]
    pub(crate) fn published(&self, end: usize) -> bool {
        self.fences.light();
        self.until.load(Relaxed) == end
    }

    /// The iterator, before it looks once more and sleeps: wake me when
    /// the result of item `index` is published. Whether the wake-up is
    /// sure: `false` when the fence pair no longer holds (`asymmetric.rs`),
    /// and then the iterator must not sleep long without looking.
    #[must_use]
    pub(crate) fn ask(&self, index: usize) -> bool {
        self.until.store(index + 1, Relaxed);
        self.fences.heavy()
    }

    /// The iterator is awake: no more wake-ups (a runner that still sees
    /// the old request wakes it once for nothing).
    pub(crate) fn clear(&self) {
        self.until.store(0, Relaxed);
    }
}

/// The results of one claim: items `start .. start + capacity`.
pub(crate) struct Run<T> {
    start: usize,
    capacity: usize,
    /// `capacity` slots from `Box<[MaybeUninit<T>]>::into_raw`, freed by
    /// `Drop`; only the writer writes and only the reader reads, each slot
    /// once (module docs).
    slots: NonNull<MaybeUninit<T>>,
    /// Items done (value written or failure recorded); `Release` by the
    /// writer, `Acquire` by the reader.
    published: AtomicUsize,
    /// Failures recorded so far; written by the writer before the
    /// `published` store that covers them, so a reader that saw that count
    /// sees at least these (`Relaxed` is enough: the `Release`/`Acquire` of
    /// `published` orders it).
    failed: AtomicUsize,
    /// The failed items, by offset, in order, not yet taken by the reader.
    failures: Mutex<VecDeque<(usize, TaskError)>>,
    /// The writer has finished (1) or not (0): nothing more is published.
    closed: AtomicUsize,
    /// The reader's position when it went (`Relaxed`: read only by `Drop`,
    /// after the `Arc` has ordered both sides before it).
    taken: AtomicUsize,
}

// SAFETY: a `Run` is a buffer of `T`s moved from the writer's thread to the
// reader's, each slot handed over once through `published` (module docs),
// and the failures are behind a lock: what a channel of `T` needs, `T:
// Send`. (`TaskError` is `Send + Sync`.)
unsafe impl<T: Send> Send for Run<T> {}
// SAFETY: as above: the shared accesses are the atomics and the lock; the
// slots are written by the one writer and read by the one reader.
unsafe impl<T: Send> Sync for Run<T> {}

impl<T> Run<T> {
    /// An empty run for the `capacity` items from `start`, and its writer.
    pub(crate) fn open(start: usize, capacity: usize) -> (Arc<Run<T>>, Writer<T>) {
        let slots = Box::<[T]>::new_uninit_slice(capacity);
        // `into_raw` of a boxed slice is never null (a dangling, aligned
        // pointer when it is empty or `T` is zero-sized).
        let slots = NonNull::new(Box::into_raw(slots).cast::<MaybeUninit<T>>())
            .expect("a box's pointer is never null");
        let run = Arc::new(Run {
            start,
            capacity,
            slots,
            published: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            failures: Mutex::new(VecDeque::new()),
            closed: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
        });
        let writer = Writer {
            run: run.clone(),
            slots,
            capacity,
            done: 0,
            failed: 0,
        };
        (run, writer)
    }

    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// Has the writer finished? (`Acquire`: it pairs with `close`'s
    /// `Release`, so every count published before is seen after.)
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Acquire) == 1
    }
}

impl<T> Drop for Run<T> {
    /// Drops the values published and never taken; frees the buffer. A
    /// value that panics in its `Drop` costs only itself, as in a `Vec`:
    /// the other values are still dropped and the buffer freed, then the
    /// panic goes on.
    fn drop(&mut self) {
        let taken = self.taken.load(Relaxed);
        let published = self.published.load(Relaxed);
        let failures = std::mem::take(self.failures.get_mut());
        // Declared first, so dropped last: after the values, even when
        // one of their drops panics.
        let _buffer = Buffer {
            slots: self.slots,
            capacity: self.capacity,
        };
        // The failed slots hold nothing: the values are the runs between them.
        let mut from = taken;
        let ranges = failures
            .into_iter()
            .map(|(offset, _)| offset)
            .filter(|&offset| offset >= taken && offset < published)
            .chain(std::iter::once(published))
            .map(move |until| {
                let range = from..until;
                from = until + 1;
                range
            });
        let mut values = Values {
            slots: self.slots,
            ranges,
        };
        for range in values.ranges.by_ref() {
            // SAFETY: the values published and not taken, between the
            // failed slots, each range once (`drop_range`); `next` moved
            // past it, so a panic here leaves only the later ones to
            // `values`.
            unsafe { drop_range(values.slots, range) }
        }
    }
}

/// A run's buffer, freed when this goes (`Run`'s `Drop`).
struct Buffer<T> {
    slots: NonNull<MaybeUninit<T>>,
    capacity: usize,
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        // SAFETY: `slots` came from `Box::into_raw` of a boxed slice of
        // `capacity` `MaybeUninit<T>`s, freed only here (one `Buffer` per
        // run, in its `Drop`); `MaybeUninit` drops nothing, the values
        // were dropped before.
        drop(unsafe {
            Box::from_raw(ptr::slice_from_raw_parts_mut(
                self.slots.as_ptr(),
                self.capacity,
            ))
        });
    }
}

/// The ranges of values a run's `Drop` has still to drop; its own drop,
/// which runs only if a value's drop panicked, drops them.
struct Values<T, R: Iterator<Item = Range<usize>>> {
    slots: NonNull<MaybeUninit<T>>,
    ranges: R,
}

/// Drops the values of `range`.
///
/// # Safety
///
/// The slots of `range` are within the buffer, were published with a
/// value (not failed) and not taken, neither side is left, and each range
/// is dropped once: this is their only drop.
unsafe fn drop_range<T>(slots: NonNull<MaybeUninit<T>>, range: Range<usize>) {
    // SAFETY: as the caller promised.
    unsafe {
        let first = slots.as_ptr().add(range.start).cast::<T>();
        ptr::drop_in_place(ptr::slice_from_raw_parts_mut(first, range.len()));
    }
}

impl<T, R: Iterator<Item = Range<usize>>> Drop for Values<T, R> {
    fn drop(&mut self) {
        for range in &mut self.ranges {
            // SAFETY: as in `Run`'s `Drop`: the ranges not dropped yet,
            // each once (the iterator moves past it).
            unsafe { drop_range(self.slots, range) }
        }
    }
}

// SAFETY: a `Writer` is its run's one writer; moving it to another thread
// moves the right to write the next slots, which needs `T: Send` only (its
// copied pointer is the run's, shared under the run's own rules).
unsafe impl<T: Send> Send for Writer<T> {}

/// The runner's side of a run: it fills the slots in order.
pub(crate) struct Writer<T> {
    run: Arc<Run<T>>,
    /// The run's `slots` and `capacity`, copied: the per-item path reads
    /// them from registers, not through the `Arc` after every fence.
    slots: NonNull<MaybeUninit<T>>,
    capacity: usize,
    done: usize,
    failed: usize,
}

impl<T> Writer<T> {
    /// Items published so far.
    pub(crate) fn len(&self) -> usize {
        self.done
    }

    pub(crate) fn run(&self) -> &Arc<Run<T>> {
        &self.run
    }

    /// Publishes the next item's result.
    ///
    /// # Panics
    ///
    /// If the run is full (a runner bug: a claim has `capacity` items).
    #[inline]
    pub(crate) fn push(&mut self, result: Result<T, TaskError>) {
        let at = self.done;
        assert!(at < self.capacity, "a run got more items than its claim");
        match result {
            // SAFETY: `at` is within the buffer (checked above); only this
            // writer writes, and only at `done`, which then moves past it,
            // so each slot is written once, and the reader reads it only
            // after the `Release` store below covers it.
            Ok(value) => unsafe { self.slots.as_ptr().add(at).write(MaybeUninit::new(value)) },
            Err(error) => self.fail(at, error),
        }
        self.done = at + 1;
        // Release: the slot's write (or the failure) happens before any
        // read that loads this count.
        self.run.published.store(self.done, Release);
    }

    #[cold]
    fn fail(&mut self, at: usize, error: TaskError) {
        self.run.failures.lock().push_back((at, error));
        self.failed += 1;
        // Relaxed: ordered by the `published` store that follows.
        self.run.failed.store(self.failed, Relaxed);
    }

    /// Nothing more will be published. `Release`: every count stored
    /// before is seen by a reader that sees the run closed.
    pub(crate) fn close(self) {
        self.run.closed.store(1, Release);
    }
}

// SAFETY: as for `Writer`: the one reader, moved with the right to read
// the next slots (the map's iterator may be sent to another thread).
unsafe impl<T: Send> Send for Reader<T> {}
// SAFETY: through `&Reader` nothing touches a slot (only `&mut self`
// methods read them), so sharing one shares only its indexes and the run.
unsafe impl<T: Sync> Sync for Reader<T> {}

/// The iterator's side of a run: it takes the results in order.
pub(crate) struct Reader<T> {
    run: Arc<Run<T>>,
    /// The run's `slots`, copied (as in `Writer`).
    slots: NonNull<MaybeUninit<T>>,
    /// Slots moved out (or failures yielded): the next offset to yield.
    taken: usize,
    /// The count last loaded from `published`.
    seen: usize,
    /// The failures taken from the run, in order, not yet yielded.
    failures: VecDeque<(usize, TaskError)>,
    /// The failures taken from the run so far (to know when to look again).
    failures_taken: usize,
    /// The offset of the next failure (`usize::MAX`: none known).
    next_failure: usize,
}

impl<T> Reader<T> {
    pub(crate) fn new(run: Arc<Run<T>>) -> Self {
        Reader {
            slots: run.slots,
            run,
            taken: 0,
            seen: 0,
            failures: VecDeque::new(),
            failures_taken: 0,
            next_failure: usize::MAX,
        }
    }

    pub(crate) fn run(&self) -> &Arc<Run<T>> {
        &self.run
    }

    /// The index (in the whole input) of the next item to yield.
    pub(crate) fn position(&self) -> usize {
        self.run.start + self.taken
    }

    /// Is a result (value or failure) ready at the next offset, as far as
    /// the last `refresh` saw?
    pub(crate) fn has_next(&self) -> bool {
        self.taken < self.seen
    }

    /// Loads the published count (and any new failures); whether a result
    /// is ready now.
    pub(crate) fn refresh(&mut self) -> bool {
        // Acquire: pairs with the writer's Release, so the slots below the
        // count are written (and the failures below it are listed).
        let published = self.run.published.load(Acquire);
        if published > self.seen {
            self.seen = published;
            if self.run.failed.load(Relaxed) > self.failures_taken {
                let mut list = self.run.failures.lock();
                self.failures_taken += list.len();
                self.failures.extend(list.drain(..));
                drop(list);
                self.next_failure = self.failures.front().map_or(usize::MAX, |f| f.0);
            }
        }
        self.has_next()
    }

    /// The next value, if it is ready and not a failure: the per-item path
    /// of a cheap map, a compare and a read.
    #[inline]
    pub(crate) fn next_value(&mut self) -> Option<T> {
        if self.taken < self.seen && self.taken != self.next_failure {
            let at = self.taken;
            self.taken += 1;
            // SAFETY: `at` is below a published count this reader loaded
            // with Acquire, so its slot was written, with a value (it is
            // not a failure's offset: failures are listed before they are
            // published, and `refresh` took them); `taken` moved past it,
            // so it is read once.
            Some(unsafe { self.slots.as_ptr().add(at).read().assume_init() })
        } else {
            None
        }
    }

    /// Folds the ready values up to the next failure into `acc` in one
    /// loop over the buffer; returns the accumulator and how many it took.
    #[inline]
    pub(crate) fn fold_values<B>(
        &mut self,
        mut acc: B,
        mut g: impl FnMut(B, T) -> B,
    ) -> (B, usize) {
        let from = self.taken;
        let until = self.seen.min(self.next_failure).max(from);
        let slots = self.slots.as_ptr();
        /// Keeps `taken` right if `g` panics: the values read are gone,
        /// the rest stay for the run's `Drop`.
        struct Taken<'a>(&'a mut usize, usize);
        impl Drop for Taken<'_> {
            fn drop(&mut self) {
                *self.0 = self.1;
            }
        }
        let mut taken = Taken(&mut self.taken, from);
        while taken.1 < until {
            let at = taken.1;
            // Moved past before `g` runs: if `g` panics, the value is gone
            // and the slot is not dropped again.
            taken.1 += 1;
            // SAFETY: as in `next_value`: below the loaded count, not a
            // failure (below `next_failure`), read once.
            acc = g(acc, unsafe { slots.add(at).read().assume_init() });
        }
        drop(taken);
        (acc, until - from)
    }

    /// The failure at the next offset, if that item failed.
    pub(crate) fn next_failure(&mut self) -> Option<TaskError> {
        if self.taken < self.seen && self.taken == self.next_failure {
            let (_, error) = self.failures.pop_front()?;
            self.next_failure = self.failures.front().map_or(usize::MAX, |f| f.0);
            self.taken += 1;
            Some(error)
        } else {
            None
        }
    }
}

impl<T> Drop for Reader<T> {
    /// Leaves the values not taken to the run's `Drop`: says where it
    /// stopped, and gives back the failures it had not yielded (the run
    /// must know which slots hold nothing).
    fn drop(&mut self) {
        if !self.failures.is_empty() {
            let mut list = self.run.failures.lock();
            for failure in self.failures.drain(..).rev() {
                list.push_front(failure);
            }
        }
        // Relaxed: the `Arc`'s drop orders this before the run's `Drop`.
        self.run.taken.store(self.taken, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize as Count, Ordering::SeqCst};

    /// Counts its drops.
    struct Counted(usize, Arc<Count>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, SeqCst);
        }
    }

    fn failure(i: usize) -> TaskError {
        TaskError::Panicked(format!("item {i}"))
    }

    #[test]
    fn results_are_read_in_order_with_failures_in_place() {
        let (run, mut writer) = Run::<usize>::open(10, 6);
        let mut reader = Reader::new(run.clone());
        assert!(!reader.refresh());
        writer.push(Ok(0));
        writer.push(Err(failure(1)));
        assert!(reader.refresh());
        assert_eq!(reader.next_value(), Some(0));
        assert_eq!(reader.next_value(), None, "a failure is not a value");
        assert!(matches!(reader.next_failure(), Some(TaskError::Panicked(m)) if m == "item 1"));
        assert_eq!(reader.position(), 12);
        for i in 2..6 {
            writer.push(Ok(i));
        }
        writer.close();
        assert!(run.is_closed());
        reader.refresh();
        let (sum, n) = reader.fold_values(0, |a, v| a + v);
        assert_eq!((sum, n), (2 + 3 + 4 + 5, 4));
        assert!(!reader.refresh());
    }

    #[test]
    fn values_never_taken_are_dropped_once_whoever_goes_last() {
        for reader_goes_first in [true, false] {
            let drops = Arc::new(Count::new(0));
            let (run, mut writer) = Run::open(0, 8);
            let mut reader = Reader::new(run);
            for i in 0..3 {
                writer.push(Ok(Counted(i, drops.clone())));
            }
            writer.push(Err(failure(3)));
            writer.push(Ok(Counted(4, drops.clone())));
            reader.refresh();
            assert_eq!(reader.next_value().map(|c| c.0), Some(0));
            assert_eq!(drops.load(SeqCst), 1);
            if reader_goes_first {
                drop(reader);
                writer.push(Err(failure(5)));
                writer.push(Ok(Counted(6, drops.clone())));
                writer.close();
            } else {
                writer.push(Err(failure(5)));
                writer.push(Ok(Counted(6, drops.clone())));
                writer.close();
                drop(reader);
            }
            // 0 taken; 1, 2, 4, 6 left in the run; 3 and 5 hold nothing.
            assert_eq!(drops.load(SeqCst), 5);
        }
    }

    /// Counts its drops and panics in its `Drop` if its index is `bad`.
    struct PanicsOnDrop(usize, usize, Arc<Count>);

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            self.2.fetch_add(1, SeqCst);
            if self.0 == self.1 {
                panic!("result {} panics in its drop", self.0);
            }
        }
    }

    #[test]
    fn a_result_that_panics_in_its_drop_costs_only_itself() {
        // As a `Vec` does (and the bag's unclaimed items, `items.rs`): the
        // run's `Drop` passes the panic on, and still drops the values
        // after the one that panicked, past a failed slot, and frees the
        // buffer (Miri's leak check sees a buffer left behind).
        let drops = Arc::new(Count::new(0));
        let (run, mut writer) = Run::open(0, 5);
        writer.push(Ok(PanicsOnDrop(0, 0, drops.clone())));
        writer.push(Ok(PanicsOnDrop(1, 0, drops.clone())));
        writer.push(Err(failure(2)));
        writer.push(Ok(PanicsOnDrop(3, 0, drops.clone())));
        writer.push(Ok(PanicsOnDrop(4, 0, drops.clone())));
        writer.close();
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(run)));
        assert!(dropped.is_err(), "the result's panic was lost");
        assert_eq!(
            drops.load(SeqCst),
            4,
            "the values after the failed slot were leaked"
        );
    }

    #[test]
    fn a_fold_that_panics_leaves_the_values_it_did_not_take_to_the_run() {
        // The consumer's closure panics at the third value (a `for_each`
        // that panics): the two values it took and the one it was given
        // are its own; the other five stay in the run, and each of the
        // eight is dropped exactly once.
        let drops = Arc::new(Count::new(0));
        let (run, mut writer) = Run::open(0, 8);
        for i in 0..8 {
            writer.push(Ok(Counted(i, drops.clone())));
        }
        writer.close();
        let mut reader = Reader::new(run);
        reader.refresh();
        let folded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reader.fold_values(0, |n, c: Counted| {
                assert!(c.0 != 2, "the consumer gives up at 2");
                n + 1
            })
        }));
        assert!(folded.is_err());
        assert_eq!(
            drops.load(SeqCst),
            3,
            "taken: 0, 1 and the one it panicked on"
        );
        assert_eq!(reader.position(), 3);
        assert_eq!(reader.next_value().map(|c| c.0), Some(3));
        drop(reader);
        assert_eq!(drops.load(SeqCst), 8);
    }

    #[test]
    fn a_reader_on_another_thread_sees_each_value_as_it_is_published() {
        // Small enough for Miri, whose race detector checks the hand-off:
        // the writer publishes one value at a time and waits until the
        // reader took it before it writes the next.
        const N: usize = 50;
        let (run, mut writer) = Run::<String>::open(0, N);
        let took = Arc::new(Count::new(0));
        let t = took.clone();
        let reader = std::thread::spawn(move || {
            let mut reader = Reader::new(run);
            let mut got = Vec::new();
            while got.len() < N {
                if reader.refresh() {
                    got.push(reader.next_value().unwrap());
                    t.store(got.len(), SeqCst);
                } else {
                    std::thread::yield_now();
                }
            }
            got
        });
        for i in 0..N {
            writer.push(Ok(i.to_string()));
            while took.load(SeqCst) <= i {
                std::thread::yield_now();
            }
        }
        writer.close();
        let got = reader.join().unwrap();
        assert!(got.iter().enumerate().all(|(i, s)| *s == i.to_string()));
    }
}

/// The hand-off and its wake-up, checked exhaustively with loom (`sync.rs`
/// says how to run it): a runner publishes item 0, then waits for the
/// consumer to take it before it publishes item 1 (the item that waits for
/// the consumer, review 6's semaphore); the consumer sleeps as the bag's
/// `wait` does, asking for the next result through `Watch` when it has
/// none. A lost wake-up leaves the consumer asleep and the runner in its
/// yield loop for ever, which loom reports (with the light fence taken out,
/// this model fails so: loom's path bound is exceeded).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::{Condvar, Mutex};
    use loom::sync::atomic::AtomicBool;

    struct Shared {
        watch: Watch,
        /// The bag's lock and condition variable.
        lock: Mutex<()>,
        changed: Condvar,
        /// The consumer took item 0 (the runner's semaphore).
        took_first: AtomicBool,
    }

    #[test]
    fn loom_each_result_reaches_a_sleeping_consumer() {
        loom::model(|| {
            let shared = Arc::new(Shared {
                watch: Watch::new(Fences::plain()),
                lock: Mutex::new(()),
                changed: Condvar::new(),
                took_first: AtomicBool::new(false),
            });
            let (run, mut writer) = Run::<usize>::open(0, 2);
            let s = shared.clone();
            let runner = loom::thread::spawn(move || {
                for i in 0..2 {
                    writer.push(Ok(i * 10));
                    if s.watch.published(i + 1) {
                        drop(s.lock.lock());
                        s.changed.notify_one();
                    }
                    if i == 0 {
                        // Item 1 waits for the consumer to take item 0.
                        while !s.took_first.load(Acquire) {
                            loom::thread::yield_now();
                        }
                    }
                }
                drop(writer);
            });
            let mut reader = Reader::new(run);
            let mut got = Vec::new();
            let mut guard = shared.lock.lock();
            while got.len() < 2 {
                if reader.refresh() {
                    got.push(reader.next_value().unwrap());
                    shared.took_first.store(true, Release);
                    continue;
                }
                assert!(shared.watch.ask(got.len()), "the SeqCst pair always holds");
                if reader.refresh() {
                    shared.watch.clear();
                    continue;
                }
                shared.changed.wait(&mut guard);
                shared.watch.clear();
            }
            drop(guard);
            runner.join().unwrap();
            assert_eq!(got, [0, 10]);
        });
    }
}
