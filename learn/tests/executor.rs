//! The executor rung (steps s12-s14): each test checks a claim its step makes.

use std::cell::{Cell, RefCell};
use std::thread::{self, ThreadId};

use future::Future;
use learn::s12_executor_trait_inline::{sum_of_squares, Executor, Inline, ShutdownError};
use learn::s13_executor_map_eager::map;
use learn::s14_executor_map_windowed::map_windowed;

/// An executor the test drives by hand: `submit` only queues; the test runs
/// the queued tasks when, and in the order, it likes.
#[derive(Default)]
struct Manual {
    /// Each job returns whether it ran its task (false: it was cancelled).
    queued: RefCell<Vec<Box<dyn FnOnce() -> bool>>>,
    submitted: Cell<usize>,
    /// Refuse every submit once this many were accepted.
    refuse_after: Cell<Option<usize>>,
}

impl Manual {
    /// Runs every queued job in submission order; how many tasks ran.
    fn run_all(&self) -> usize {
        let jobs = std::mem::take(&mut *self.queued.borrow_mut());
        jobs.into_iter().map(|job| job()).filter(|&ran| ran).count()
    }

    fn run_all_backwards(&self) -> usize {
        let jobs = std::mem::take(&mut *self.queued.borrow_mut());
        jobs.into_iter().rev().map(|job| job()).filter(|&ran| ran).count()
    }
}

impl Executor for Manual {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, ShutdownError>
    where
        A: Send + 'static,
        R: Send + 'static,
    {
        if self.refuse_after.get().is_some_and(|n| self.submitted.get() >= n) {
            return Err(ShutdownError);
        }
        self.submitted.set(self.submitted.get() + 1);
        let (promise, future) = future::promise();
        self.queued.borrow_mut().push(Box::new(move || {
            let run = promise.set_running_or_notify_cancel() == Ok(true);
            if run {
                let _ = promise.set_result(f(arg));
            }
            run
        }));
        Ok(future)
    }

    fn shutdown(&self) {
        self.refuse_after.set(Some(0));
    }
}

fn current_thread(_: ()) -> ThreadId {
    thread::current().id()
}

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn s12_inline_runs_each_task_in_the_caller_during_submit() {
    let inline = Inline::default();
    let future = inline.submit(current_thread, ()).expect("open");
    assert!(future.done(), "finished before submit returned");
    assert_eq!(future.result().ok(), Some(thread::current().id()));
}

#[test]
fn s12_after_shutdown_every_submit_is_refused_with_pythons_message() {
    let inline = Inline::default();
    assert_eq!(sum_of_squares(&inline, 10), Ok(385));
    inline.shutdown();
    let refused = inline.submit(square, 3).map(|_| ()).unwrap_err();
    assert_eq!(refused.to_string(), "cannot schedule new futures after shutdown");
    assert_eq!(sum_of_squares(&inline, 10), Err(ShutdownError));
}

#[test]
fn s12_generic_code_runs_on_any_executor() {
    let manual = Manual::default();
    // Manual runs nothing by itself: finish every task first, from inside.
    let futures: Vec<_> = (1..=4).map(|x| manual.submit(square, x).expect("open")).collect();
    assert_eq!(manual.run_all_backwards(), 4);
    assert_eq!(futures.iter().filter_map(|f| f.result().ok()).sum::<u64>(), 30);
}

#[test]
fn s13_submits_every_item_at_the_call_and_yields_in_input_order() {
    let manual = Manual::default();
    let results = map(&manual, square, 1..=6).expect("open");
    assert_eq!(manual.submitted.get(), 6, "eager: all submitted before any result");
    assert_eq!(manual.run_all_backwards(), 6); // complete in reverse order
    let squares: Vec<u64> = results.map(|r| r.expect("a result")).collect();
    assert_eq!(squares, [1, 4, 9, 16, 25, 36], "input order, not completion order");
}

#[test]
fn s13_dropping_the_results_cancels_what_was_not_yielded() {
    let manual = Manual::default();
    let mut results = map(&manual, square, 1..=5).expect("open");
    let first = manual.queued.borrow_mut().remove(0); // only item 0 runs now
    assert!(first());
    assert_eq!(results.next().map(|r| r.ok()), Some(Some(1)));
    drop(results);
    assert_eq!(manual.run_all(), 0, "the four items not yielded were cancelled");
}

#[test]
fn s13_a_refusal_fails_the_call() {
    let manual = Manual::default();
    manual.refuse_after.set(Some(2));
    assert!(matches!(map(&manual, square, 1..=5), Err(ShutdownError)));
}

#[test]
fn s14_keeps_at_most_the_window_in_flight_and_reads_the_input_lazily() {
    let manual = Manual::default();
    let window = 3;
    let mut results = map_windowed(&manual, square, 1.., window); // endless input
    assert_eq!(manual.submitted.get(), window);
    for (yielded, x) in (1..=20).enumerate() {
        manual.run_all(); // the head is done before `next` waits on it
        assert_eq!(results.next().map(|r| r.ok()), Some(Some(x * x)));
        // In flight: submitted and not yet yielded, counting the one being waited for.
        assert!(manual.submitted.get() - (yielded + 1) < window, "more than {window} in flight");
    }
    assert!(manual.submitted.get() <= 20 + window);
}

#[test]
fn s14_a_refusal_part_way_is_one_error_after_the_items_in_flight() {
    let manual = Manual::default();
    manual.refuse_after.set(Some(4));
    let mut results = map_windowed(&manual, square, 1..=10, 2);
    let mut seen = Vec::new();
    loop {
        manual.run_all(); // every submitted item is done before we wait on it
        let Some(result) = results.next() else { break };
        seen.push(result.map_err(|e| e.to_string()));
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[..4], [Ok(1), Ok(4), Ok(9), Ok(16)]);
    let refusal = seen[4].as_ref().err().map(String::as_str).unwrap_or_default();
    assert!(refusal.contains("cannot schedule new futures after shutdown"), "{seen:?}");
}

#[test]
fn s14_dropping_the_map_cancels_the_window() {
    let manual = Manual::default();
    let mut results = map_windowed(&manual, square, 1..=10, 4);
    let first = manual.queued.borrow_mut().remove(0); // only item 0 runs now
    assert!(first());
    assert_eq!(results.next().map(|r| r.ok()), Some(Some(1)));
    drop(results);
    assert_eq!(manual.run_all(), 0, "the three items in flight were cancelled");
    assert_eq!(manual.submitted.get(), 4, "and nothing more was read from the input");
}
