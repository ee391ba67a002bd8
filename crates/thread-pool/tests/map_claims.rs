//! The default `map`'s consumer path that takes a claim whole (`fold`, so
//! `sum`, `for_each`, `count`, ...): it must yield exactly what `next()`
//! yields, in the same order, with the same errors, and a drop, a timeout
//! or `shutdown(cancel_futures)` must start no more items than with
//! `next()`. Each test here is a `next()` test of `map_adaptive.rs` run
//! through `fold`. No wall-clock bounds.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::Event;
use thread_pool::{FutureError, MapOptions, TaskError, ThreadPoolExecutor};

/// Every item of a map over `0..n` as `fold` collected it.
fn folded<I: Iterator>(it: I) -> Vec<I::Item> {
    it.fold(Vec::new(), |mut out, r| {
        out.push(r);
        out
    })
}

/// Panics at every item `x % 1000 == 7`; doubles the rest.
fn double_or_panic(x: u32) -> u32 {
    if x % 1000 == 7 {
        panic!("bad {x}");
    }
    x * 2
}

fn check_doubled_with_panics(out: &[Result<u32, FutureError>], from: u32) {
    for (i, r) in out.iter().enumerate() {
        let x = from + i as u32;
        match r {
            Err(FutureError::Task(TaskError::Panicked(m))) => {
                assert_eq!(x % 1000, 7, "{m}");
                assert_eq!(*m, format!("bad {x}"));
            }
            Ok(v) => {
                assert_ne!(x % 1000, 7, "item {x} should have failed");
                assert_eq!(*v, x * 2);
            }
            other => panic!("item {x}: {other:?}"),
        }
    }
}

#[test]
fn fold_yields_every_result_in_order_with_panics_in_place() {
    const N: u32 = 200_000;
    let pool = ThreadPoolExecutor::new(3);
    let out = folded(pool.map(double_or_panic, 0..N).unwrap());
    assert_eq!(out.len(), N as usize);
    check_doubled_with_panics(&out, 0);
}

#[test]
fn fold_after_some_next_calls_goes_on_from_the_next_item() {
    // A consumer that took a few items with `next()` (inside a claim) and
    // then sums the rest: no item is lost or repeated at the seam.
    const N: u32 = 100_000;
    let pool = ThreadPoolExecutor::new(2);
    let mut it = pool.map(double_or_panic, 0..N).unwrap();
    let head: Vec<_> = it.by_ref().take(30).collect();
    check_doubled_with_panics(&head, 0);
    let rest = folded(it);
    assert_eq!(rest.len(), (N - 30) as usize);
    check_doubled_with_panics(&rest, 30);
}

#[test]
fn sum_of_a_cheap_map_is_right() {
    // The benchmark's own consumer: `map(Result::unwrap).sum()`.
    const N: u64 = 1_000_000;
    let pool = ThreadPoolExecutor::new(2);
    let sum: u64 = pool
        .map(|x: u64| x * 2, 0..N)
        .unwrap()
        .map(Result::unwrap)
        .sum();
    assert_eq!(sum, N * (N - 1));
}

#[test]
fn a_consumer_that_panics_in_fold_cancels_the_unstarted_items() {
    // The consumer's closure panics at item 0 while the only runner is held
    // inside item 40 (cheap items: it is inside a claim of many). The panic
    // drops the map mid-iteration, which cancels like a dropped iterator:
    // exactly items 0..=40 run.
    const HOLD: u32 = 40;
    let pool = ThreadPoolExecutor::new(1);
    let (ran, started, gate) = (Arc::new(AtomicUsize::new(0)), Event::new(), Event::new());
    let it = pool
        .map(
            common::counted_holding(&ran, HOLD, &started, &gate),
            0..1000,
        )
        .unwrap();
    let s = started.clone();
    let consumer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        it.for_each(|r| {
            if r.is_ok_and(|x| x == 0) {
                assert!(s.wait(), "item {HOLD} never started");
                panic!("the consumer gives up");
            }
        })
    }));
    assert!(consumer.is_err(), "the consumer's panic was lost");
    gate.set();
    pool.shutdown(true, false);
    let ran = ran.load(SeqCst);
    assert_eq!(
        ran,
        HOLD as usize + 1,
        "{ran} items ran: some after the drop"
    );
}

#[test]
fn cancel_futures_during_a_fold_yields_the_unstarted_items_as_cancelled() {
    // The only runner is inside item 1 when the pool is shut down with
    // cancel_futures; the fold then sees item 1's value and every later
    // item `Cancelled`, and nothing after item 1 started.
    let pool = ThreadPoolExecutor::new(1);
    let (ran, started, gate) = (Arc::new(AtomicUsize::new(0)), Event::new(), Event::new());
    let mut it = pool
        .map(common::counted_holding(&ran, 1, &started, &gate), 0..100)
        .unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert!(started.wait(), "item 1 never started");
    pool.shutdown(false, true);
    gate.set();
    let out = folded(it);
    assert_eq!(out.len(), 99);
    assert_eq!(*out[0].as_ref().unwrap(), 1);
    for (i, r) in out.iter().enumerate().skip(1) {
        assert!(
            matches!(r, Err(FutureError::Cancelled)),
            "item {}: {r:?}",
            i + 1
        );
    }
    assert_eq!(ran.load(SeqCst), 2);
}

#[test]
fn a_timeout_during_a_fold_ends_it_and_starts_nothing_more() {
    // As `a_timeout_during_a_claim_starts_nothing_more_of_it`, through
    // `fold`: the delivered pieces, then one timeout, then the end.
    const HOLD: u32 = 40;
    let pool = ThreadPoolExecutor::new(1);
    let (ran, started, gate) = (Arc::new(AtomicUsize::new(0)), Event::new(), Event::new());
    let it = pool
        .map_with(
            common::counted_holding(&ran, HOLD, &started, &gate),
            0..1000,
            MapOptions::new().timeout(Duration::from_millis(1)),
        )
        .unwrap();
    assert!(started.wait(), "item {HOLD} never started");
    let out = folded(it);
    let (last, values) = out.split_last().expect("at least the timeout");
    assert!(matches!(last, Err(FutureError::Timeout(_))), "{last:?}");
    for (i, v) in values.iter().enumerate() {
        assert_eq!(*v.as_ref().unwrap(), i as u32);
    }
    assert!(values.len() <= HOLD as usize);
    gate.set();
    pool.shutdown(true, false);
    let ran = ran.load(SeqCst);
    assert_eq!(
        ran,
        HOLD as usize + 1,
        "{ran} items ran: some after the timeout"
    );
}

#[test]
fn fold_over_a_windowed_or_chunked_map_is_the_plain_iteration() {
    let pool = ThreadPoolExecutor::new(2);
    for options in [
        MapOptions::new().window(7),
        MapOptions::new().chunk_size(64),
    ] {
        let out = folded(pool.map_with(double_or_panic, 0..5_000, options).unwrap());
        assert_eq!(out.len(), 5_000);
        check_doubled_with_panics(&out, 0);
    }
}

/// A panic payload whose own `Drop` panics (a user's value, ADVERSARY.md
/// class 1).
struct PayloadPanicsOnDrop;

impl Drop for PayloadPanicsOnDrop {
    fn drop(&mut self) {
        panic!("the payload's drop panics");
    }
}

#[test]
fn a_panic_payload_whose_drop_panics_fails_only_its_item() {
    // Item 3 panics with a payload that panics again when dropped. That
    // item yields its panic error; the items of its claim that ran keep
    // their values, and the items after it still run (one runner: a lost
    // runner would leave every later item `Cancelled`).
    const N: u32 = 200;
    let pool = ThreadPoolExecutor::new(1);
    let f = |x: u32| {
        if x == 3 {
            std::panic::panic_any(PayloadPanicsOnDrop);
        }
        x * 2
    };
    let out: Vec<_> = pool.map(f, 0..N).unwrap().collect();
    assert_eq!(out.len(), N as usize);
    for (x, r) in out.iter().enumerate() {
        match r {
            Err(FutureError::Task(TaskError::Panicked(_))) if x == 3 => {}
            Ok(v) if x != 3 => assert_eq!(*v, x as u32 * 2),
            other => panic!("item {x}: {other:?}"),
        }
    }
}

#[test]
fn fold_over_items_that_wait_for_the_consumer_does_not_hang() {
    // As `an_item_that_waits_for_the_consumer_does_not_hang_the_map`
    // (map_adaptive.rs), through `fold`: the consumer gives a permit back
    // per result, so `fold` must take each result as soon as it is done,
    // not only whole claims.
    const N: u32 = 1000;
    let pool = ThreadPoolExecutor::new(1);
    let sem = common::Semaphore::new(4);
    let map = pool.map(common::takes_a_permit(&sem), 0..N).unwrap();
    let out = map.fold(Vec::new(), |mut out, r| {
        out.push(r.unwrap());
        sem.release();
        out
    });
    common::check_every_item_got_a_permit(&out, N);
}
