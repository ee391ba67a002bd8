//! The default `map`: adaptive chunks, sized from the measured cost per item.
//!
//! One task per item costs a task, a future and a wake-up per item, about
//! 0.2-1 us here, which dominates a cheap `f` (measured: 2.5 M items/s
//! against rayon's 1.28 G/s). Fixed chunks fix that for cheap items and
//! break it for slow ones (20 items that each sleep, in one chunk, take 20
//! sleeps). So the default `map` sizes its chunks as it goes.
//!
//! ## How it works
//!
//! `map` takes the whole input into a *bag* (as Python's eager `map` takes it
//! into futures: the items are the pool's from then on; one vector, whose
//! items the runners move out in place, `items.rs`) and submits
//! `min(max_workers, items)` *runner* tasks. A runner takes a *claim*, a run
//! of consecutive items, from the front of the bag, applies `f` to each
//! (under its own `catch_unwind`), publishes each result as it ends into
//! the claim's *run* (`published.rs`), and takes the next claim, until the
//! bag is empty. The iterator yields the results in input order, each as
//! soon as it and every result before it are done: an item may wait for
//! the consumer to take an earlier one, as with CPython's future per item.
//!
//! ## Waiting
//!
//! The iterator waits for the next result on the bag's condition variable.
//! A claim is sized to take about `TARGET`, so it first waits for the
//! claim's end (the runner closes the run under the lock and notifies), up
//! to `SLOW`. A claim still running then has turned slow, or its next item
//! waits for the consumer: from then on the iterator takes its results as
//! they are published and, before each sleep, asks the runner to wake it
//! when the one it needs is published (`published.rs`, "Waking the
//! iterator"). So a cheap map costs one wake-up per claim, as before, and
//! no result waits for the end of its claim for ever.
//!
//! ## The claim size (the policy)
//!
//! * A runner's first claim is **one item**: nothing is known about `f`.
//! * After each claim it knows the cost per item (the claim's time over its
//!   length) and sizes the next claim to take about [`TARGET`] (50 us) at that
//!   cost, but **at most twice the last claim**, so the size climbs to fit
//!   in a few claims (1, 2, 4, ...) and a wrong guess costs little.
//! * A claim is never more than `remaining / (2 * runners)` items (guided
//!   self-scheduling), so near the end of the bag claims get small and the
//!   runners finish together.
//! * **Shrinking at once.** While a claim runs, the runner looks at the
//!   clock every eighth of it; once the claim has taken more than
//!   [`SLOW`] (4 x `TARGET`), the items turned slow: it puts the items it
//!   has not started back at the front of the bag, for any runner, delivers
//!   what it did, and its next claim is sized from the new cost (one item,
//!   for an item that took milliseconds).
//!
//! Why this meets both kinds of `f`:
//!
//! * **Cheap items** (a few ns): claims climb to about 50 us of work, tens of
//!   thousands of items, so the per-claim costs (a lock, an allocation, a
//!   wake-up of the iterator, 1-2 us) are a few percent, and the per-item
//!   cost is the call itself, moving its result, and publishing it (a
//!   store of the count and a look at the iterator's request: `Waiting`).
//! * **Slow items** (20 items that sleep 50 ms, 20 workers): every runner's
//!   first claim is one item, and a runner that measured 50 ms per item
//!   keeps claiming one, so the 20 items run side by side: about one sleep.
//! * **One slow item among cheap ones** delays only itself and the cheap
//!   items after it in its claim (at most about `TARGET` of work): at the next
//!   look at the clock the rest of the claim goes back to the bag, where the
//!   other runners take it meanwhile.
//!
//! The clock is read once per eighth of a claim (at most 9 reads per claim),
//! so its cost (20-30 ns a read) stays out of the per-item path.
//!
//! ## Python's rules, kept
//!
//! Every item is in the bag when `map` returns, and the runners are queued
//! tasks, so a shutdown without `cancel_futures` still runs all of it. An
//! input that panics: the items read before the panic run (CPython had
//! submitted them), and `map` passes the panic on.
//! Cancelling is what closing CPython's `result_iterator` does: a dropped
//! (advanced) iterator empties the bag and stops the runners (below), so no
//! item that had not started runs; the items running finish. The items are
//! the map's queued work, so `shutdown(cancel_futures)` cancels them, as
//! Python 3.14 cancels the map's pending futures: it cancels the queued
//! runners and stops the running ones (below); a broken pool fails them the
//! same way. The items no runner ran then yield `Cancelled` (or the broken
//! pool's error), in order, between the results of the items that ran:
//! each index looks for its run first, since a runner that stopped
//! leaves a gap before the runs of another runner's later claims.
//!
//! ## Stopping
//!
//! A claim is items taken out of the bag, not started ones, so emptying
//! the bag is not enough: a claim of 25,000 cheap items (or of a few slow
//! ones) would run to its end. So a runner looks at two flags **before
//! every item**: the bag's `stop` (the iterator was dropped or timed out)
//! and the pool's `queued_cancelled` (`shutdown(cancel_futures)`, or a
//! broken pool: the pool dropped its queued work, and these items are
//! queued work the queue does not hold). Once one is raised, the runner
//! puts the item and the rest of its claim back (a cancelled bag drops
//! them; otherwise the iterator reports them), closes its run at what it
//! did and ends. The look is two relaxed loads of lines the runner already has in
//! its cache (`Bag::must_stop` says why relaxed is enough), so the per-item
//! path of a cheap map keeps its cost.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use future::{contain, promise, FutureError, TaskError};
use parking_lot::{Condvar, Mutex};

use crate::asymmetric::Fences;
use crate::items::{Claim, Items};
use crate::job::PromiseJob;
use crate::published::{Reader, Run, Watch, Writer};
use crate::raw::RawJob;
use crate::shared::Shared;

/// The work a claim is sized to take, at the cost per item last measured.
pub(crate) const TARGET: Duration = Duration::from_micros(50);
/// A claim that has run this long has turned slow: the rest goes back.
pub(crate) const SLOW: Duration = Duration::from_micros(200);

/// The next claim's size from the last one: about `TARGET` of work at the
/// measured cost, at most twice the last size, at least one item.
pub(crate) fn next_claim(last_len: usize, last_time: Duration) -> usize {
    let per_item_ns = (last_time.as_nanos() / last_len.max(1) as u128).max(1);
    let fit = (TARGET.as_nanos() / per_item_ns).min(usize::MAX as u128) as usize;
    fit.clamp(1, last_len.max(1).saturating_mul(2))
}

/// The guided cap: never more than `remaining / (2 * runners)` (at least 1).
pub(crate) fn guided_cap(remaining: usize, runners: usize) -> usize {
    (remaining / (2 * runners.max(1))).max(1)
}

struct State<T> {
    /// The indexes of the unclaimed items, in input order (a claim given
    /// back goes in front). These ranges own their items (`items.rs`).
    unclaimed: VecDeque<Range<usize>>,
    remaining: usize,
    /// The claims' results, by first index, from the claim until the
    /// iterator takes them (`published.rs`: they fill as the items end).
    runs: BTreeMap<usize, Arc<Run<T>>>,
    /// Runner tasks that ended, ran or not (their closure was dropped).
    runners_gone: usize,
    /// The iterator was dropped or timed out: claim nothing more.
    cancelled: bool,
    /// Claims that turned slow and gave their rest back (for the tests).
    given_back: usize,
    /// The iterator sleeps until the run at this index opens.
    awaited_run: Option<usize>,
    /// The first index of the run the iterator has seen outlast `SLOW`:
    /// it takes that run's results as they are published, without
    /// waiting `SLOW` again at each (module docs, "Waiting").
    slow_run: Option<usize>,
    /// Waits for a running claim's end that timed out at `SLOW` (for the
    /// tests).
    slow_waits: usize,
}

/// What the runners and the iterator share.
struct Bag<X, T> {
    /// The input, read in place: a claim is a range of it (`items.rs`).
    items: Items<X>,
    state: Mutex<State<T>>,
    /// `state.cancelled`, readable without the lock: the runners look at it
    /// before every item (module docs, "Stopping").
    stop: AtomicBool,
    /// The pool's `Shared::queued_cancelled`: `shutdown(cancel_futures)` or
    /// a broken pool dropped the queued work, this map's items included.
    pool_cancelled: Arc<AtomicBool>,
    /// Signalled when a run is opened or closed, when a result the
    /// iterator watches for is published, and when a runner leaves.
    changed: Condvar,
    runners: usize,
    /// The iterator's request to be woken by one result (`published.rs`).
    watch: Watch,
}

impl<X, T> Bag<X, T> {
    /// A bag of every item of `input`, for `runners(total)` runners.
    fn new(
        input: impl Iterator<Item = X>,
        runners: impl FnOnce(usize) -> usize,
        pool_cancelled: Arc<AtomicBool>,
    ) -> Self {
        let items = Items::new(input.collect());
        let total = items.len();
        Bag {
            state: Mutex::new(State {
                unclaimed: std::iter::once(0..total).collect(),
                remaining: total,
                runs: BTreeMap::new(),
                runners_gone: 0,
                cancelled: false,
                given_back: 0,
                awaited_run: None,
                slow_run: None,
                slow_waits: 0,
            }),
            items,
            stop: AtomicBool::new(false),
            pool_cancelled,
            changed: Condvar::new(),
            runners: runners(total),
            watch: Watch::new(Fences::new()),
        }
    }

    /// Must a runner start no more items? The iterator was dropped or timed
    /// out, or the pool dropped its queued work (`shutdown(cancel_futures)`,
    /// a broken pool), which includes this map's unstarted items.
    ///
    /// Two relaxed loads of flags written once, on lines that stay in the
    /// runner's cache until then, so the look costs next to nothing per item.
    /// Relaxed is enough: the flags publish no data (the items a runner runs
    /// were moved to it under the lock), they only say "start nothing more".
    /// A cancel that happens before the look, in the happens-before order
    /// (say, the caller then opens a gate the running item waits on), is
    /// seen by coherence: a load cannot return a value older than a store
    /// that happens before it. A look concurrent with the cancel may miss
    /// it, and its item starts: it started before the cancel reached it, as
    /// a task a worker popped just before the queue was drained.
    #[inline]
    fn must_stop(&self) -> bool {
        self.stop.load(Relaxed) || self.pool_cancelled.load(Relaxed)
    }

    /// Takes up to `want` items from the front (guided cap applied): the
    /// front of the first unclaimed range, as a claim that owns them.
    fn claim(&self, want: usize) -> Option<Claim<'_, X>> {
        let mut state = self.state.lock();
        if state.cancelled {
            return None;
        }
        let cap = guided_cap(state.remaining, self.runners);
        let range = state.unclaimed.front_mut()?;
        let take = want.min(cap).min(range.len());
        let claimed = range.start..range.start + take;
        range.start += take;
        if range.start == range.end {
            state.unclaimed.pop_front();
        }
        state.remaining -= take;
        // SAFETY: `claimed` was unclaimed, so the bag owned its items, and
        // it is no longer in `unclaimed`: the claim is their only owner.
        Some(unsafe { self.items.claim(claimed) })
    }

    /// Puts the unstarted rest of a claim back in front, or drops it if
    /// the map was cancelled.
    fn give_back(&self, claim: Claim<'_, X>) {
        let rest = claim.into_rest();
        let mut state = self.state.lock();
        if state.cancelled || rest.is_empty() {
            drop(state);
            // User `Drop` code, outside the lock and contained: this runs
            // on a worker.
            contain(
                "thread-pool",
                "the drop of map items cancelled with their iterator",
                // SAFETY: the claim gave its items up to us, and a cancelled
                // bag takes none back: we are their only owner.
                || unsafe { self.items.drop_range(rest) },
            );
            return;
        }
        state.remaining += rest.len();
        state.given_back += 1;
        // The bag owns them again.
        state.unclaimed.push_front(rest);
    }

    /// A run for the results of the claim `start .. start + len`, where
    /// the iterator finds it from now on.
    fn open(&self, start: usize, len: usize) -> Writer<T> {
        // Allocated outside the lock; its items are not started yet.
        let (run, writer) = Run::open(start, len);
        let mut state = self.state.lock();
        state.runs.insert(start, run);
        let awaited = state.awaited_run == Some(start);
        drop(state);
        if awaited {
            self.changed.notify_one();
        }
        writer
    }

    /// After publishing the results up to `end` (an index of the input):
    /// wakes the iterator if it sleeps waiting for the last of them
    /// (`published.rs`, "Waking the iterator": a compiler fence and the
    /// look of a word that stays in this core's cache until the iterator
    /// writes it).
    #[inline]
    fn published(&self, end: usize) {
        if self.watch.published(end) {
            self.wake_watcher();
        }
    }

    #[cold]
    fn wake_watcher(&self) {
        // Through the lock: the iterator looks at the count and goes to
        // sleep under it, so the notify cannot fall between the two.
        drop(self.state.lock());
        self.changed.notify_one();
    }

    /// The claim's end: nothing more is published in its run (an empty
    /// run leaves the bag: its index goes back with the claim's rest).
    fn close(&self, writer: Writer<T>) {
        let mut state = self.state.lock();
        if writer.len() == 0 {
            let start = writer.run().start();
            if state
                .runs
                .get(&start)
                .is_some_and(|run| Arc::ptr_eq(run, writer.run()))
            {
                state.runs.remove(&start);
            }
        }
        writer.close();
        drop(state);
        self.changed.notify_one();
    }

    fn runner_gone(&self) {
        self.state.lock().runners_gone += 1;
        self.changed.notify_one();
    }
}

impl<X, T> Drop for Bag<X, T> {
    /// Drops the items never claimed (no runner and no iterator is left):
    /// the ranges still in `unclaimed` own them (`items.rs`).
    fn drop(&mut self) {
        let unclaimed = std::mem::take(&mut self.state.get_mut().unclaimed);
        // SAFETY: the ranges were unclaimed, so the bag owned their items,
        // and `&mut self` means no claim is left (a claim borrows the bag):
        // we are their only owner. A panicking item still lets the others
        // drop (`drop_ranges`).
        unsafe { self.items.drop_ranges(unclaimed) }
    }
}

/// Ends a runner's count when its closure is dropped: after it ran, or
/// unrun (cancelled by `shutdown(cancel_futures)`, failed by a broken pool).
struct RunnerToken<X, T>(Arc<Bag<X, T>>);

impl<X, T> Drop for RunnerToken<X, T> {
    fn drop(&mut self) {
        self.0.runner_gone();
    }
}

/// A runner: claims until the bag is empty (module docs, the policy), or
/// until it is told to stop (module docs, "Stopping").
fn run<X, T>(bag: &Bag<X, T>, f: &(impl Fn(X) -> T + ?Sized)) {
    let mut want = 1;
    while let Some(mut claim) = bag.claim(want) {
        let (start, n) = (claim.start(), claim.len());
        let look_every = (n / 8).max(1);
        let mut until_look = look_every;
        let mut out = bag.open(start, n);
        let began = Instant::now();
        let mut done = 0;
        let ended = loop {
            if bag.must_stop() {
                // The next item is not taken: it goes back with the rest
                // (the bag drops them, or they yield `Cancelled`).
                break Ended::Stopped;
            }
            let Some(x) = claim.next() else {
                break Ended::Done;
            };
            out.push(catch_unwind(AssertUnwindSafe(|| f(x))).map_err(TaskError::from_panic));
            done += 1;
            // Each result reaches the iterator as it ends: the next item
            // may wait for the consumer to take this one.
            bag.published(start + done);
            until_look -= 1;
            if until_look == 0 {
                until_look = look_every;
                if done < n && began.elapsed() > SLOW {
                    break Ended::TurnedSlow;
                }
            }
        };
        let stopped = matches!(ended, Ended::Stopped);
        let took = began.elapsed();
        // Closed first: an empty run leaves the bag before its index goes
        // back with the rest (a new claim of it opens a run there).
        bag.close(out);
        if !matches!(ended, Ended::Done) {
            // Stopped, or turned slow: the rest goes back for any runner.
            bag.give_back(claim);
        }
        if stopped {
            return;
        }
        want = next_claim(done, took);
    }
}

/// Reads the whole input; if the input panics, the items read before the
/// panic and the panic's payload (`Adaptive::start` runs those items, then
/// passes the panic on).
fn read_input<X>(input: impl Iterator<Item = X>) -> (Vec<X>, Option<Box<dyn Any + Send>>) {
    let mut items = Vec::new();
    // AssertUnwindSafe: after a panic the input is dropped unread, and
    // `items` holds the items read before it (`Vec::extend` keeps its
    // length right when the iterator panics), which is all we look at.
    let read = catch_unwind(AssertUnwindSafe(|| items.extend(input)));
    (items, read.err())
}

/// How a runner's claim ended.
enum Ended {
    /// Every item of it ran.
    Done,
    /// Told to stop (module docs, "Stopping").
    Stopped,
    /// It ran past `SLOW` with items left.
    TurnedSlow,
}

/// The iterator's side of an adaptive map.
pub(crate) struct Adaptive<T> {
    source: Arc<dyn Source<T>>,
    shared: Arc<Shared>,
    total: usize,
    /// The index of the next item to yield.
    next: usize,
    /// The run (a claim's results) that holds `next`, once found: yielding
    /// one of its values is a compare and a read (`published.rs`).
    reader: Option<Reader<T>>,
    /// Every runner is gone with items unrun: those yield this error (the
    /// results of the items that ran are still yielded).
    orphaned: Option<FutureError>,
}

/// How waiting for the next result ended.
enum Wait {
    /// `reader` holds it.
    Ready,
    /// No runner is left to produce it.
    Orphaned,
    TimedOut,
}

/// `SLOW` from now, or the deadline if it comes first.
fn soon(deadline: Option<Instant>) -> Instant {
    let soon = Instant::now() + SLOW;
    deadline.map_or(soon, |d| d.min(soon))
}

/// The iterator's view of the bag, without the item type.
trait Source<T>: Send + Sync {
    /// Waits until the result of item `next` is ready in `reader` (which
    /// it replaces with the run that holds `next` once the current one
    /// has nothing more), until `deadline`.
    fn wait(&self, reader: &mut Option<Reader<T>>, next: usize, deadline: Option<Instant>) -> Wait;
    /// Claims nothing more and drops the unclaimed items.
    fn cancel(&self);
}

impl<X: Send, T: Send> Source<T> for Bag<X, T> {
    fn wait(&self, reader: &mut Option<Reader<T>>, next: usize, deadline: Option<Instant>) -> Wait {
        let mut state = self.state.lock();
        // The current run outlasted `SLOW` (in this wait or an earlier
        // one): from then on we ask for each of its results (module docs,
        // "Waiting").
        let mut slow = reader
            .as_ref()
            .is_some_and(|current| state.slow_run == Some(current.run().start()));
        let mut deadline_passed = false;
        loop {
            // Where is item `next`'s result?
            match reader {
                Some(current) => {
                    // Closed first: a closed run has published everything.
                    let ended = current.run().is_closed() || state.runners_gone == self.runners;
                    // A running claim's results are taken only once it has
                    // turned slow (or at the deadline): before, the claim's
                    // end is near, and chasing its count item by item would
                    // pull the runner's cache line back and forth for nothing.
                    if (ended || slow || deadline_passed) && current.refresh() {
                        return Wait::Ready;
                    }
                    if ended {
                        // It stopped before `next`: the rest is in another run.
                        *reader = None;
                        state.slow_run = None;
                        slow = false;
                        continue;
                    }
                }
                None => {
                    if let Some(run) = state.runs.remove(&next) {
                        *reader = Some(Reader::new(run));
                        continue;
                    }
                    if state.runners_gone == self.runners {
                        return Wait::Orphaned;
                    }
                }
            }
            if deadline_passed {
                return Wait::TimedOut;
            }
            let until = match (reader.is_some() && !slow, deadline) {
                // Waiting for a running claim to end: it is sized to take
                // `TARGET`, so it normally ends first; past `SLOW`, it has
                // turned slow or its item waits for us.
                (true, _) => Some(soon(deadline)),
                (false, deadline) => deadline,
            };
            let mut until = until;
            if slow {
                // Ask the runner for the result of `next`, then look once
                // more: either we see it now or the runner sees the request.
                let sure = self.watch.ask(next);
                if reader.as_mut().is_some_and(Reader::refresh) {
                    self.watch.clear();
                    return Wait::Ready;
                }
                if !sure {
                    // The fence pair was refused (`asymmetric.rs`): the
                    // runner may miss the request, so look again at SLOW.
                    until = Some(soon(deadline));
                }
            }
            if reader.is_none() {
                state.awaited_run = Some(next);
            }
            let timed_out = match until {
                None => {
                    self.changed.wait(&mut state);
                    false
                }
                Some(until) => self.changed.wait_until(&mut state, until).timed_out(),
            };
            state.awaited_run = None;
            if slow {
                self.watch.clear();
            }
            if timed_out {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // One more look, then the timeout.
                    deadline_passed = true;
                } else {
                    if !slow {
                        state.slow_waits += 1;
                    }
                    slow = true;
                    state.slow_run = reader.as_ref().map(|current| current.run().start());
                }
            }
        }
    }

    fn cancel(&self) {
        // Before the lock: a runner inside an item sees it at its next look.
        // Relaxed: see `must_stop`.
        self.stop.store(true, Relaxed);
        let dropped = {
            let mut state = self.state.lock();
            state.cancelled = true;
            state.remaining = 0;
            std::mem::take(&mut state.unclaimed)
        };
        // User `Drop` code runs outside the lock.
        contain(
            "thread-pool",
            "the drop of map items cancelled with their iterator",
            // SAFETY: the ranges were unclaimed, so the bag owned their
            // items, and they left `unclaimed` under the lock: we are their
            // only owner. A panicking item still lets the others drop
            // (`drop_ranges`).
            || unsafe { self.items.drop_ranges(dropped) },
        );
    }
}

impl<T: Send + 'static> Adaptive<T> {
    /// Takes every item into the bag and submits the runners. Errs (with
    /// the items dropped) if not one runner could be submitted. If the
    /// input panics, the items read before it run and the panic goes on.
    pub(crate) fn start<X, F>(
        shared: Arc<Shared>,
        f: Arc<F>,
        input: impl Iterator<Item = X>,
    ) -> Result<Self, crate::shared::Refusal>
    where
        X: Send + 'static,
        F: Fn(X) -> T + Send + Sync + 'static,
    {
        let max_workers = shared.config.max_workers;
        let (items, input_panic) = read_input(input);
        let bag = Arc::new(Bag::new(
            items.into_iter(),
            |total| max_workers.min(total),
            shared.queued_cancelled_flag(),
        ));
        let started = Self::submit_runners(shared, bag, f);
        if let Some(payload) = input_panic {
            // CPython submits each item as it reads it, so the items read
            // before the input raised run, and `map` raises. The runners
            // are queued: dropping the never-advanced iterator (`started`
            // goes here) cancels nothing, so they run those items.
            drop(started);
            std::panic::resume_unwind(payload);
        }
        started
    }

    /// Submits the runners of `bag`. Errs (with the items dropped) if not
    /// one runner could be submitted.
    fn submit_runners<X, F>(
        shared: Arc<Shared>,
        bag: Arc<Bag<X, T>>,
        f: Arc<F>,
    ) -> Result<Self, crate::shared::Refusal>
    where
        X: Send + 'static,
        F: Fn(X) -> T + Send + Sync + 'static,
    {
        let (total, runners) = (bag.items.len(), bag.runners);
        let mut submitted = 0;
        for _ in 0..runners {
            let ticket = match shared.enter(true) {
                Ok(ticket) => ticket,
                Err(refusal) if submitted == 0 => return Err(refusal),
                // A shutdown raced with us: the runners already queued
                // take the whole bag.
                Err(_) => break,
            };
            let (token, f) = (RunnerToken(bag.clone()), f.clone());
            let body = move || {
                let token = token;
                run(&token.0, &*f);
                Ok(())
            };
            let (promise, _future) = promise::<()>();
            ticket.push(RawJob::new(PromiseJob::new(body, promise)));
            submitted += 1;
        }
        if submitted < runners {
            // Count the runners never submitted as gone already.
            let mut state = bag.state.lock();
            state.runners_gone += runners - submitted;
        }
        Ok(Adaptive {
            source: bag,
            shared,
            total,
            next: 0,
            reader: None,
            orphaned: None,
        })
    }
}

impl<T> Adaptive<T> {
    /// The next value, if it is published in the current run and did not
    /// fail: the per-item path of a cheap map, kept small.
    #[inline]
    pub(crate) fn next_ready(&mut self) -> Option<T> {
        let value = self.reader.as_mut()?.next_value()?;
        self.next += 1;
        Some(value)
    }

    /// Folds the current run's published values up to its next failure
    /// into `acc` in one go: the consumer's path that takes a claim whole
    /// (`Map::fold`), in one loop over the run's buffer, so a cheap `g` (a
    /// sum) costs little per item.
    pub(crate) fn fold_ready<B>(&mut self, acc: B, g: impl FnMut(B, T) -> B) -> B {
        let Some(reader) = self.reader.as_mut() else {
            return acc;
        };
        // What the last look saw (`Bag::wait` decides when to look again).
        let (acc, n) = reader.fold_values(acc, g);
        self.next += n;
        acc
    }

    /// The next result in input order, waiting until `deadline`; `None` at
    /// the end, `Some(Err(()))` if the deadline passed.
    pub(crate) fn next(
        &mut self,
        deadline: Option<Instant>,
    ) -> Option<Result<Result<T, FutureError>, ()>> {
        if let Some(value) = self.next_ready() {
            return Some(Ok(Ok(value)));
        }
        if self.next >= self.total {
            return None;
        }
        if let Some(error) = self.reader.as_mut().and_then(Reader::next_failure) {
            // The current run's next item failed.
            self.next += 1;
            return Some(Ok(Err(FutureError::Task(error))));
        }
        match self.source.wait(&mut self.reader, self.next, deadline) {
            Wait::Ready => {
                debug_assert_eq!(self.reader.as_ref().map(Reader::position), Some(self.next));
                self.next(deadline)
            }
            Wait::TimedOut => Some(Err(())),
            Wait::Orphaned => {
                // This item never ran. Later ones may have: a runner that
                // stopped leaves a gap before another runner's run. So
                // every index still looks for its run first.
                let error = self.orphaned_error();
                self.next += 1;
                Some(Ok(Err(error)))
            }
        }
    }

    /// The error of the items no runner will run: the broken pool's, or
    /// `Cancelled`. Decided once, at the first such item; the bag's
    /// unclaimed items are dropped then.
    fn orphaned_error(&mut self) -> FutureError {
        if let Some(error) = &self.orphaned {
            return error.clone();
        }
        let error = match self.shared.broken() {
            Some(msg) => FutureError::Task(TaskError::BrokenExecutor(msg)),
            None => FutureError::Cancelled,
        };
        self.source.cancel();
        self.orphaned = Some(error.clone());
        error
    }

    /// Items not yet yielded.
    pub(crate) fn left(&self) -> usize {
        self.total - self.next
    }

    /// Drop or timeout: nothing more starts (module docs).
    pub(crate) fn cancel(&mut self) {
        self.source.cancel();
        self.next = self.total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_grow_at_most_twofold_up_to_the_target() {
        // 2 ns per item: the fit is 25,000 items.
        let mut len = 1;
        let mut sizes = Vec::new();
        for _ in 0..20 {
            len = next_claim(len, Duration::from_nanos(2 * len as u64));
            sizes.push(len);
        }
        assert_eq!(&sizes[..4], &[2, 4, 8, 16]);
        assert_eq!(*sizes.last().unwrap(), 25_000);
    }

    #[test]
    fn a_slow_claim_shrinks_the_next_at_once() {
        // 20,000 items that took 50 ms: 2.5 us each, so 20 fit in 50 us.
        assert_eq!(next_claim(20_000, Duration::from_millis(50)), 20);
        // One item that slept 50 ms: the next claim is one item.
        assert_eq!(next_claim(1, Duration::from_millis(50)), 1);
    }

    /// Every run's results, by first index: what an iterator would take.
    fn results<X, T>(bag: &Bag<X, T>) -> Vec<(usize, Vec<Result<T, TaskError>>)> {
        let runs = std::mem::take(&mut bag.state.lock().runs);
        runs.into_iter()
            .map(|(start, run)| {
                assert!(run.is_closed(), "a run left open");
                let mut reader = Reader::new(run);
                let mut out = Vec::new();
                reader.refresh();
                loop {
                    if let Some(v) = reader.next_value() {
                        out.push(Ok(v));
                    } else if let Some(e) = reader.next_failure() {
                        out.push(Err(e));
                    } else {
                        break;
                    }
                }
                (start, out)
            })
            .collect()
    }

    fn bag(n: usize, runners: usize) -> Bag<usize, usize> {
        Bag::new(0..n, |_| runners, Arc::new(AtomicBool::new(false)))
    }

    #[test]
    fn a_claim_that_turns_slow_gives_its_rest_back_and_the_next_is_small() {
        // Items from 150,000 on take 300 us each (100 of them): the claim
        // they start in gives its rest back at its next look (an eighth of
        // the claim later, or in the claim after, if they start in its last
        // eighth), and the claims after it are sized from the new cost.
        const N: usize = 200_000;
        const SLOW_ITEM: usize = 150_000;
        let bag = bag(N, 1);
        run(&bag, &|x: usize| {
            if (SLOW_ITEM..SLOW_ITEM + 100).contains(&x) {
                std::thread::sleep(Duration::from_micros(300));
            }
            x * 3
        });
        assert!(
            bag.state.lock().given_back >= 1,
            "the slow claim kept its rest"
        );
        // The runs tile 0..N, each item once, in order, with its value.
        let mut next = 0;
        let mut slow_piece = None;
        let mut after_slow = None;
        for (start, piece) in results(&bag) {
            assert_eq!(start, next);
            for (i, v) in piece.iter().enumerate() {
                assert_eq!(*v.as_ref().unwrap(), (start + i) * 3);
            }
            if (start..start + piece.len()).contains(&SLOW_ITEM) {
                slow_piece = Some(piece.len());
            } else if slow_piece.is_some() && after_slow.is_none() {
                after_slow = Some(piece.len());
            }
            next += piece.len();
        }
        assert_eq!(next, N);
        // At least 300 us over the slow piece's items: the next claim fits
        // 50 us of that cost, at most a sixth of it.
        let (slow_len, after) = (slow_piece.unwrap(), after_slow.unwrap());
        assert!(after <= (slow_len / 6).max(1), "{slow_len} then {after}");
    }

    /// An item that counts its drops.
    struct Counted(usize, Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Relaxed);
        }
    }

    #[test]
    fn each_item_is_claimed_once_and_dropped_once_wherever_it_ends() {
        // Claims, a claim given back (it comes first again), a cancel that
        // drops the unclaimed items, a claim handed back after the cancel
        // (dropped by the bag), and the bag's own drop: every item is
        // dropped exactly once, none is claimed twice.
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let input = (0..100).map(|i| Counted(i, drops.clone()));
        let bag: Bag<Counted, ()> = Bag::new(input, |_| 1, Arc::new(AtomicBool::new(false)));
        let mut first = bag.claim(10).unwrap();
        assert_eq!((first.start(), first.len()), (0, 10));
        let ran: Vec<usize> = first.by_ref().take(4).map(|c| c.0).collect();
        assert_eq!(ran, [0, 1, 2, 3]);
        assert_eq!(drops.load(Relaxed), 4);
        let second = bag.claim(20).unwrap();
        assert_eq!(second.start(), 10);
        bag.give_back(first);
        let again = bag.claim(1_000).unwrap();
        assert_eq!(
            (again.start(), again.len()),
            (4, 6),
            "the given-back rest, alone"
        );
        drop(again); // a claim dropped early drops its items
        assert_eq!(drops.load(Relaxed), 10);
        bag.cancel(); // drops the unclaimed 30..100
        assert_eq!(drops.load(Relaxed), 80);
        assert!(bag.claim(1).is_none(), "a cancelled bag gives no claim");
        bag.give_back(second); // a cancelled bag drops what comes back
        assert_eq!(drops.load(Relaxed), 100);
        drop(bag);
        assert_eq!(drops.load(Relaxed), 100);

        // Never claimed: the bag's drop drops them.
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let input = (0..7).map(|i| Counted(i, drops.clone()));
        let bag: Bag<Counted, ()> = Bag::new(input, |_| 1, Arc::new(AtomicBool::new(false)));
        let claim = bag.claim(2).unwrap();
        bag.give_back(claim);
        drop(bag);
        assert_eq!(drops.load(Relaxed), 7);
    }

    /// An item that counts its drops and panics in its `Drop` if it is
    /// `bad`.
    struct PanicsOnDrop {
        index: usize,
        bad: usize,
        drops: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Relaxed);
            if self.index == self.bad {
                panic!("item {} panics in its drop", self.index);
            }
        }
    }

    /// A bag of 100 `PanicsOnDrop` items whose unclaimed items are in two
    /// ranges, 4..10 (a claim's rest, given back) then 10..100; item 5
    /// panics when dropped.
    fn bag_of_two_ranges() -> (Bag<PanicsOnDrop, ()>, Arc<std::sync::atomic::AtomicUsize>) {
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let input = (0..100).map(|index| PanicsOnDrop {
            index,
            bad: 5,
            drops: drops.clone(),
        });
        let bag: Bag<PanicsOnDrop, ()> = Bag::new(input, |_| 1, Arc::new(AtomicBool::new(false)));
        let mut claim = bag.claim(10).unwrap();
        assert_eq!(claim.by_ref().take(4).count(), 4);
        bag.give_back(claim);
        assert_eq!(bag.state.lock().unclaimed, [4..10, 10..100]);
        (bag, drops)
    }

    #[test]
    fn a_claim_that_outlasted_slow_is_not_waited_for_again_at_each_result() {
        // Module docs, "Waiting": once a running claim has outlasted
        // `SLOW`, the iterator takes its results as they are published. A
        // claim whose items each wait for the consumer (review 6's
        // semaphore) must not cost `SLOW` per result: the second result,
        // published before the iterator asks for it, is taken at once.
        let bag = bag(10, 1);
        let mut writer = bag.open(0, 10);
        writer.push(Ok(0));
        bag.published(1);
        let mut reader = None;
        assert!(matches!(
            Source::wait(&bag, &mut reader, 0, None),
            Wait::Ready
        ));
        assert_eq!(reader.as_mut().and_then(Reader::next_value), Some(0));
        assert_eq!(
            bag.state.lock().slow_waits,
            1,
            "the first result waits SLOW"
        );
        writer.push(Ok(1));
        bag.published(2);
        assert!(matches!(
            Source::wait(&bag, &mut reader, 1, None),
            Wait::Ready
        ));
        assert_eq!(reader.as_mut().and_then(Reader::next_value), Some(1));
        assert_eq!(
            bag.state.lock().slow_waits,
            1,
            "the iterator waited SLOW again for a claim it knew was slow"
        );
        bag.close(writer);
    }

    #[test]
    fn a_panicking_drop_in_one_unclaimed_range_still_drops_the_other_ranges() {
        // A cancel drops the unclaimed items (contained: it runs on the
        // iterator's thread or a worker); the bag's own drop drops what is
        // left and passes the panic on, as a `Vec` does. Either way an
        // item that panics in its `Drop` costs only itself: the items of
        // the ranges after it are dropped too, not leaked.
        let (bag, drops) = bag_of_two_ranges();
        bag.cancel();
        assert_eq!(drops.load(Relaxed), 100, "the cancel leaked items");
        drop(bag);

        let (bag, drops) = bag_of_two_ranges();
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(bag)));
        assert!(dropped.is_err(), "the item's panic was lost");
        assert_eq!(drops.load(Relaxed), 100, "the bag's drop leaked items");
    }

    #[test]
    fn two_runners_and_a_cancel_share_the_items_without_a_race() {
        // Small enough for Miri, whose race detector then checks the
        // in-place reads (`items.rs`): two runners on other threads, and a
        // cancel while they run. Every item runs or is dropped, exactly once.
        const N: usize = 400;
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let input = (0..N).map(|i| Counted(i, drops.clone()));
        let bag: Bag<Counted, usize> = Bag::new(input, |_| 2, Arc::new(AtomicBool::new(false)));
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let f = |c: Counted| {
            if ran.fetch_add(1, Relaxed) == N / 4 {
                bag.cancel();
            }
            c.0 * 2
        };
        std::thread::scope(|s| {
            s.spawn(|| run(&bag, &f));
            s.spawn(|| run(&bag, &f));
        });
        let mut values = 0;
        for (start, piece) in results(&bag) {
            for (i, v) in piece.iter().enumerate() {
                assert_eq!(*v.as_ref().unwrap(), (start + i) * 2);
            }
            values += piece.len();
        }
        assert_eq!(values, ran.load(Relaxed));
        assert!(values < N, "the cancel stopped nothing");
        drop(bag);
        assert_eq!(drops.load(Relaxed), N);
    }

    #[test]
    fn the_guided_cap_leaves_work_for_the_other_runners() {
        assert_eq!(guided_cap(1_000_000, 2), 250_000);
        assert_eq!(guided_cap(20, 20), 1);
        assert_eq!(guided_cap(0, 4), 1);
    }
}
