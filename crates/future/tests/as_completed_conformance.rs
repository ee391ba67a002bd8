//! CPython's `test_as_completed.py` (reference section E.3), case by case,
//! plus the hand-cancel fix (gh-87893) and completion order.

mod fixtures;

use std::collections::BTreeSet;
use std::time::Duration;

use fixtures::*;
use future::{as_completed, promise, Future, TimeoutError};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn no_timeout_yields_everything() {
    let cn = cancelled_and_notified();
    let e = exception();
    let s = successful();
    let (f1, t1) = spawn_after(Duration::ZERO, || Ok(42));
    let (f2, t2) = spawn_after(Duration::from_millis(10), || Ok(42));
    let all = [&cn.future, &e.future, &s.future, &f1, &f2];
    let got: BTreeSet<usize> = as_completed(all, None).map(|f| f.unwrap().id()).collect();
    assert_eq!(got, all.iter().map(|f| f.id()).collect());
    t1.join().unwrap();
    t2.join().unwrap();
}

#[test]
fn future_times_out_after_yielding_the_finished_ones() {
    for timeout in [Duration::ZERO, Duration::from_millis(50)] {
        let cn = cancelled_and_notified();
        let e = exception();
        let s = successful();
        let slow = pending();
        let mut it = as_completed(
            [&cn.future, &e.future, &s.future, &slow.future],
            Some(timeout),
        );
        let mut yielded = BTreeSet::new();
        for _ in 0..3 {
            yielded.insert(it.next().unwrap().unwrap().id());
        }
        assert_eq!(
            yielded,
            [&cn.future, &e.future, &s.future]
                .iter()
                .map(|f| f.id())
                .collect()
        );
        assert_eq!(
            it.next().unwrap().unwrap_err(),
            TimeoutError {
                unfinished: 1,
                total: 4
            }
        );
        assert!(it.next().is_none(), "the iterator ends after its timeout");
    }
}

#[test]
fn duplicate_futures_are_yielded_once() {
    let (f, t) = spawn_after(Duration::from_millis(10), || Ok(1));
    let got: Vec<_> = as_completed(std::iter::repeat_n(&f, 3), Some(LONG)).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].as_ref().unwrap(), &f);
    t.join().unwrap();
}

#[test]
fn yielded_futures_are_not_kept_alive() {
    // test_free_reference_yielded_future: the iterator drops its handle to
    // each future it yields. A Weak to the shared slot is not public, so the
    // test watches the value's own Drop instead: a value dropped as soon as
    // the last handle goes proves no hidden handle is left.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Tracked(Arc<AtomicUsize>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let mut promises = Vec::new();
    let mut futures = Vec::new();
    for _ in 0..8 {
        let (p, f) = promise::<Tracked>();
        promises.push(p);
        futures.push(f);
    }
    let mut it = as_completed(futures, Some(LONG));
    for (i, p) in promises.drain(..).enumerate() {
        p.set_result(Tracked(drops.clone())).unwrap();
        drop(p);
        let f = it.next().unwrap().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), i, "dropped too early");
        drop(f);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            i + 1,
            "the iterator kept future {i} alive"
        );
    }
    assert!(it.next().is_none());
}

#[test]
fn timeout_message_counts_the_unfinished() {
    let cn = cancelled_and_notified();
    let p = pending();
    let r = running();
    let s = successful();
    let err = as_completed(
        [&cn.future, &p.future, &r.future, &s.future],
        Some(Duration::ZERO),
    )
    .find_map(Result::err)
    .unwrap();
    assert_eq!(err.to_string(), "2 (of 4) futures unfinished");
}

#[test]
fn yields_in_completion_order() {
    let futures: Vec<(future::Promise<u32>, Future<u32>)> = (0..5).map(|_| promise()).collect();
    let mut it = as_completed(futures.iter().map(|(_, f)| f), Some(LONG));
    for i in [3, 1, 4, 0, 2] {
        futures[i].0.set_result(i as u32).unwrap();
        assert_eq!(it.next().unwrap().unwrap().result().unwrap(), i as u32);
    }
    assert!(it.next().is_none());
}

#[test]
fn a_hand_cancelled_future_is_yielded() {
    // gh-87893: CPython raises TimeoutError('1 (of 1) futures unfinished') here.
    let p = pending();
    let mut it = as_completed([&p.future], Some(Duration::from_millis(200)));
    p.future.cancel();
    assert!(it.next().unwrap().unwrap().cancelled());
}

#[test]
fn completions_from_other_threads_wake_the_iterator() {
    let handles: Vec<_> = (0..4)
        .map(|i| spawn_after(Duration::from_millis(10 * (4 - i)), move || Ok(i)))
        .collect();
    let got: Vec<u64> = as_completed(handles.iter().map(|(f, _)| f), Some(LONG))
        .map(|f| f.unwrap().result().unwrap())
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 1, 2, 3]);
    for (_, t) in handles {
        t.join().unwrap();
    }
}

#[test]
fn dropping_the_iterator_unlinks_it() {
    let p = pending();
    let it = as_completed([&p.future], None);
    drop(it);
    // Completion after the drop posts to nobody and must not fail or hang.
    p.promise.set_result(1).unwrap();
    assert_eq!(p.future.result().unwrap(), 1);
}
