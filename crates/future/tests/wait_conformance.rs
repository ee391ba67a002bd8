//! CPython's `test_wait.py` (reference section E.2), case by case. The one
//! deliberate difference: a future cancelled by hand counts as done at once
//! (CPython leaves it "not done" until an executor notices: gh-92001).

mod fixtures;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fixtures::*;
use future::{wait, Future, ReturnWhen, TaskError};

const LONG: Duration = Duration::from_secs(30);

fn ids<T>(futures: &[Future<T>]) -> BTreeSet<usize> {
    futures.iter().map(Future::id).collect()
}

fn set<T>(futures: &[&Future<T>]) -> BTreeSet<usize> {
    futures.iter().map(|f| f.id()).collect()
}

#[test]
fn duplicates_collapse() {
    // test_20369
    let (f, t) = spawn_after(Duration::from_millis(50), || Ok(1));
    let split = wait([&f, &f], Some(LONG), ReturnWhen::AllCompleted);
    assert_eq!(split.done, vec![f.clone()]);
    assert!(split.not_done.is_empty());
    t.join().unwrap();
}

#[test]
fn empty_input_returns_at_once() {
    let none: Vec<Future<i32>> = Vec::new();
    for when in [
        ReturnWhen::FirstCompleted,
        ReturnWhen::FirstException,
        ReturnWhen::AllCompleted,
    ] {
        let split = wait(&none, None, when);
        assert!(split.done.is_empty() && split.not_done.is_empty());
    }
}

#[test]
fn first_completed() {
    let c = cancelled_and_notified();
    let (f1, t1) = spawn_after(Duration::ZERO, || Ok(42));
    let slow = pending();
    let split = wait(
        [&c.future, &f1, &slow.future],
        Some(LONG),
        ReturnWhen::FirstCompleted,
    );
    // Ours counts the cancelled future as done (CPython: only once notified).
    // f1 may or may not have finished by then: it is in one half, once.
    assert!(split.done.contains(&c.future));
    assert!(split.not_done.contains(&slow.future));
    assert_eq!(split.done.len() + split.not_done.len(), 3);
    assert!(split.done.contains(&f1) != split.not_done.contains(&f1));
    t1.join().unwrap();
}

#[test]
fn first_completed_wakes_on_the_first_completion() {
    let (f1, t1) = spawn_after(Duration::from_millis(20), || Ok(42));
    let slow = pending();
    let split = wait([&f1, &slow.future], Some(LONG), ReturnWhen::FirstCompleted);
    assert_eq!(split.done, vec![f1.clone()]);
    assert_eq!(split.not_done, vec![slow.future.clone()]);
    t1.join().unwrap();
}

#[test]
fn first_completed_some_already_completed() {
    let c = cancelled_and_notified();
    let s = successful();
    let slow = pending();
    let start = Instant::now();
    let split = wait(
        [&c.future, &s.future, &slow.future],
        Some(LONG),
        ReturnWhen::FirstCompleted,
    );
    assert!(start.elapsed() < LONG);
    assert_eq!(ids(&split.done), set(&[&c.future, &s.future]));
    assert_eq!(split.not_done, vec![slow.future.clone()]);
}

#[test]
fn first_exception() {
    let (f1, t1) = spawn_after(Duration::ZERO, || Ok(42));
    f1.wait(Some(LONG)); // f1 done before f2 fails, as mul(2, 21) is in Python
    let (f2, t2) = spawn_after(Duration::from_millis(30), || {
        Err::<i32, _>(TaskError::failed(OsError))
    });
    let f3 = pending();
    let split = wait(
        [&f1, &f2, &f3.future],
        Some(LONG),
        ReturnWhen::FirstException,
    );
    assert_eq!(ids(&split.done), set(&[&f1, &f2]));
    assert_eq!(split.not_done, vec![f3.future.clone()]);
    t1.join().unwrap();
    t2.join().unwrap();
}

#[test]
fn first_exception_some_already_complete() {
    let s = successful();
    let c = cancelled();
    let cn = cancelled_and_notified();
    let (f1, t1) = spawn_after(Duration::ZERO, || Err::<i32, _>(TaskError::failed(OsError)));
    let f2 = pending();
    let split = wait(
        [&s.future, &c.future, &cn.future, &f1, &f2.future],
        Some(LONG),
        ReturnWhen::FirstException,
    );
    // CPython leaves the never-notified `c` in not_done; ours counts it done.
    assert_eq!(
        ids(&split.done),
        set(&[&s.future, &c.future, &cn.future, &f1])
    );
    assert_eq!(split.not_done, vec![f2.future.clone()]);
    t1.join().unwrap();
}

#[test]
fn first_exception_one_already_failed() {
    let e = exception();
    let slow = pending();
    let start = Instant::now();
    let split = wait(
        [&e.future, &slow.future],
        Some(LONG),
        ReturnWhen::FirstException,
    );
    assert!(start.elapsed() < LONG);
    assert_eq!(split.done, vec![e.future.clone()]);
    assert_eq!(split.not_done, vec![slow.future.clone()]);
}

#[test]
fn first_exception_without_errors_waits_for_all() {
    let (f1, t1) = spawn_after(Duration::from_millis(10), || Ok(1));
    let (f2, t2) = spawn_after(Duration::from_millis(40), || Ok(2));
    let split = wait([&f1, &f2], Some(LONG), ReturnWhen::FirstException);
    assert_eq!(ids(&split.done), set(&[&f1, &f2]));
    t1.join().unwrap();
    t2.join().unwrap();
}

#[test]
fn cancelled_futures_are_not_exceptions() {
    let c = cancelled();
    let slow = pending();
    let split = wait(
        [&c.future, &slow.future],
        Some(Duration::from_millis(30)),
        ReturnWhen::FirstException,
    );
    assert_eq!(split.done, vec![c.future.clone()]);
    assert_eq!(split.not_done, vec![slow.future.clone()]);
}

#[test]
fn all_completed() {
    let (f1, t1) = spawn_after(Duration::ZERO, || Err::<i32, _>(TaskError::failed(OsError)));
    let (f2, t2) = spawn_after(Duration::from_millis(10), || Ok(42));
    let s = successful();
    let cn = cancelled_and_notified();
    let e = exception();
    let all = [&s.future, &cn.future, &e.future, &f1, &f2];
    let split = wait(all, Some(LONG), ReturnWhen::AllCompleted);
    assert_eq!(ids(&split.done), set(&all));
    assert!(split.not_done.is_empty());
    t1.join().unwrap();
    t2.join().unwrap();
}

#[test]
fn timeout_returns_the_split_without_error() {
    let cn = cancelled_and_notified();
    let e = exception();
    let s = successful();
    let slow = pending();
    let start = Instant::now();
    let split = wait(
        [&cn.future, &e.future, &s.future, &slow.future],
        Some(Duration::from_millis(50)),
        ReturnWhen::AllCompleted,
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(ids(&split.done), set(&[&cn.future, &e.future, &s.future]));
    assert_eq!(split.not_done, vec![slow.future.clone()]);
    // The waiter was removed: completing the slow future later is harmless.
    slow.promise.set_result(1).unwrap();
}

#[test]
fn zero_timeout_never_blocks() {
    let slow = pending();
    let split = wait(
        [&slow.future],
        Some(Duration::ZERO),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(split.not_done.len(), 1);
}

#[test]
fn a_hand_cancelled_future_wakes_wait_at_once() {
    // gh-92001 / gh-109934: CPython hangs here without a timeout.
    let f = pending();
    let other = f.future.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30)); // let wait() block first
        other.cancel();
    });
    let split = wait([&f.future], Some(LONG), ReturnWhen::AllCompleted);
    assert_eq!(split.done, vec![f.future.clone()]);
    t.join().unwrap();
}

#[test]
fn pending_calls_race() {
    // test_pending_calls_race: 100 futures completed from 100 threads at once.
    let gate = std::sync::Arc::new(std::sync::Barrier::new(101));
    let mut futures = Vec::new();
    let mut threads = Vec::new();
    for i in 0..100 {
        let (p, f) = future::promise::<usize>();
        futures.push(f);
        let gate = gate.clone();
        threads.push(std::thread::spawn(move || {
            gate.wait();
            p.set_result(i).unwrap();
        }));
    }
    gate.wait();
    let split = wait(&futures, Some(LONG), ReturnWhen::AllCompleted);
    assert_eq!(split.done.len(), 100);
    for t in threads {
        t.join().unwrap();
    }
}
