//! CPython's `test_future.py` (reference section E.1), case by case, plus
//! the guarantees this crate adds (broken promise, into_result, map).

mod fixtures;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fixtures::*;
use future::{promise, FutureError, State, TaskError};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn done_callback_with_result() {
    let f = pending();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    f.future
        .add_done_callback(move |fut| *s.lock().unwrap() = Some(fut.result().unwrap()));
    assert_eq!(*seen.lock().unwrap(), None, "ran before completion");
    f.promise.set_result(5).unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(5));
}

#[test]
fn done_callback_with_exception() {
    let f = pending();
    let seen = Arc::new(Mutex::new(String::new()));
    let s = seen.clone();
    f.future.add_done_callback(move |fut| {
        *s.lock().unwrap() = fut.exception().unwrap().unwrap().to_string();
    });
    f.promise.set_error(TaskError::failed(OsError)).unwrap();
    assert_eq!(*seen.lock().unwrap(), "task failed: os error");
}

#[test]
fn done_callback_with_cancel() {
    let f = pending();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    f.future
        .add_done_callback(move |fut| *s.lock().unwrap() = Some(fut.cancelled()));
    assert!(f.future.cancel());
    assert_eq!(*seen.lock().unwrap(), Some(true));
}

#[test]
fn done_callbacks_already_done_run_at_once_on_the_calling_thread() {
    for (fixture, expect) in [
        (successful(), "result 42"),
        (exception(), "error OsError"),
        (cancelled(), "cancelled"),
    ] {
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let caller = thread::current().id();
        fixture.future.add_done_callback(move |fut| {
            assert_eq!(thread::current().id(), caller);
            let text = match fut.result() {
                Ok(v) => format!("result {v}"),
                Err(FutureError::Task(e)) => format!("error {}", e.name()),
                Err(FutureError::Cancelled) => "cancelled".to_string(),
                Err(other) => format!("unexpected {other}"),
            };
            *s.lock().unwrap() = Some(text);
        });
        assert_eq!(seen.lock().unwrap().as_deref(), Some(expect));
    }
}

#[test]
fn callbacks_run_once_in_order() {
    let f = pending();
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..5 {
        let o = order.clone();
        f.future
            .add_done_callback(move |_| o.lock().unwrap().push(i));
    }
    f.promise.set_result(1).unwrap();
    assert!(!f.future.cancel());
    assert!(f.promise.set_result(2).is_err());
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

/// `test_done_callback_raises` and `test_done_callback_raises_already_succeeded`:
/// a panicking callback is reported, and the others still run. The hook is
/// process-wide, so both cases live in one test.
#[test]
fn panicking_callbacks_are_reported_and_the_rest_still_run() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    future::set_callback_panic_hook(move |p| r.lock().unwrap().push(p.clone()));

    let f = pending();
    let ran = Arc::new(Mutex::new(false));
    f.future.add_done_callback(|_| panic!("doh!"));
    let ran2 = ran.clone();
    f.future
        .add_done_callback(move |_| *ran2.lock().unwrap() = true);
    f.promise.set_result(5).unwrap();
    assert!(
        *ran.lock().unwrap(),
        "the callback after the panicking one did not run"
    );

    // Already done: the callback runs at once, and its panic is reported too.
    f.future.add_done_callback(|_| panic!("doh again"));
    future::reset_callback_panic_hook();

    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].message, "doh!");
    assert_eq!(reports[0].future, "<Future state=finished returned i32>");
    assert_eq!(reports[1].message, "doh again");
}

#[test]
fn repr_matches_python() {
    assert_eq!(format!("{:?}", pending().future), "<Future state=pending>");
    assert_eq!(format!("{:?}", running().future), "<Future state=running>");
    assert_eq!(
        format!("{:?}", cancelled().future),
        "<Future state=cancelled>"
    );
    assert_eq!(
        format!("{:?}", cancelled_and_notified().future),
        "<Future state=cancelled>"
    );
    assert_eq!(
        format!("{:?}", exception().future),
        "<Future state=finished raised OsError>"
    );
    assert_eq!(
        format!("{:?}", successful().future),
        "<Future state=finished returned i32>"
    );
    let (p, f) = promise::<String>();
    p.set_error(TaskError::Panicked("x".into())).unwrap();
    assert_eq!(
        format!("{f:?}"),
        "<Future state=finished raised TaskPanicked>"
    );
}

#[test]
fn cancel_follows_the_six_state_table() {
    let cases = [
        (pending(), true, State::Cancelled),
        (running(), false, State::Running),
        (cancelled(), true, State::Cancelled),
        (cancelled_and_notified(), true, State::Cancelled),
        (exception(), false, State::Finished),
        (successful(), false, State::Finished),
    ];
    for (i, (fixture, returns, state)) in cases.into_iter().enumerate() {
        assert_eq!(fixture.future.cancel(), returns, "case {i}");
        assert_eq!(fixture.future.state(), state, "case {i}");
    }
}

#[test]
fn predicates_follow_the_state_table() {
    // (fixture, cancelled, done, running)
    let cases = [
        (pending(), false, false, false),
        (running(), false, false, true),
        (cancelled(), true, true, false),
        (cancelled_and_notified(), true, true, false),
        (exception(), false, true, false),
        (successful(), false, true, false),
    ];
    for (i, (f, cancelled, done, running)) in cases.into_iter().enumerate() {
        assert_eq!(f.future.cancelled(), cancelled, "cancelled(), case {i}");
        assert_eq!(f.future.done(), done, "done(), case {i}");
        assert_eq!(f.future.running(), running, "running(), case {i}");
    }
}

#[test]
fn result_with_zero_timeout_never_blocks() {
    let t = Duration::ZERO;
    assert!(matches!(
        pending().future.result_timeout(t),
        Err(FutureError::Timeout(_))
    ));
    assert!(matches!(
        running().future.result_timeout(t),
        Err(FutureError::Timeout(_))
    ));
    assert!(matches!(
        cancelled().future.result_timeout(t),
        Err(FutureError::Cancelled)
    ));
    assert!(matches!(
        cancelled_and_notified().future.result_timeout(t),
        Err(FutureError::Cancelled)
    ));
    match exception().future.result_timeout(t) {
        Err(FutureError::Task(TaskError::Failed(e))) => {
            assert!(e.downcast_ref::<OsError>().is_some())
        }
        other => panic!("expected the OsError, got {other:?}"),
    }
    assert_eq!(successful().future.result_timeout(t).unwrap(), 42);
}

#[test]
fn a_timeout_leaves_the_future_usable() {
    let f = pending();
    let start = Instant::now();
    assert!(matches!(
        f.future.result_timeout(Duration::from_millis(20)),
        Err(FutureError::Timeout(d)) if d == Duration::from_millis(20)
    ));
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "returned before the deadline"
    );
    assert_eq!(f.future.state(), State::Pending);
    f.promise.set_result(3).unwrap();
    assert_eq!(f.future.result_timeout(Duration::ZERO).unwrap(), 3);
}

#[test]
fn result_set_from_another_thread() {
    let (f, t) = spawn_after(Duration::from_millis(50), || Ok(42));
    assert_eq!(f.result_timeout(LONG).unwrap(), 42);
    t.join().unwrap();
}

#[test]
fn result_woken_by_a_cancel_from_another_thread() {
    let f = pending();
    let fut = f.future.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50)); // let the reader block first
        assert!(fut.cancel());
    });
    assert!(matches!(
        f.future.result_timeout(LONG),
        Err(FutureError::Cancelled)
    ));
    t.join().unwrap();
}

#[test]
fn exception_with_zero_timeout() {
    let t = Duration::ZERO;
    assert!(matches!(
        pending().future.exception_timeout(t),
        Err(FutureError::Timeout(_))
    ));
    assert!(matches!(
        running().future.exception_timeout(t),
        Err(FutureError::Timeout(_))
    ));
    assert!(matches!(
        cancelled().future.exception_timeout(t),
        Err(FutureError::Cancelled)
    ));
    assert!(matches!(
        cancelled_and_notified().future.exception_timeout(t),
        Err(FutureError::Cancelled)
    ));
    assert_eq!(
        exception()
            .future
            .exception_timeout(t)
            .unwrap()
            .unwrap()
            .name(),
        "OsError"
    );
    assert!(successful().future.exception_timeout(t).unwrap().is_none());
}

#[test]
fn exception_set_from_another_thread() {
    let (f, t) = spawn_after(Duration::from_millis(50), || {
        Err::<i32, _>(TaskError::failed(OsError))
    });
    assert_eq!(
        f.exception_timeout(LONG).unwrap().unwrap().name(),
        "OsError"
    );
    t.join().unwrap();
}

#[test]
fn second_set_result_is_refused_and_the_first_kept() {
    let f = pending();
    f.promise.set_result(1).unwrap();
    let err = f.promise.set_result(2).unwrap_err();
    assert_eq!(
        err.message,
        "FINISHED: <Future state=finished returned i32>"
    );
    assert!(f.future.done());
    assert_eq!(f.future.result().unwrap(), 1);
}

#[test]
fn second_set_error_is_refused_and_the_first_kept() {
    let f = pending();
    f.promise
        .set_error(TaskError::Panicked("first".into()))
        .unwrap();
    let err = f.promise.set_error(TaskError::failed(OsError)).unwrap_err();
    assert_eq!(
        err.message,
        "FINISHED: <Future state=finished raised TaskPanicked>"
    );
    assert!(matches!(f.future.exception().unwrap(), Some(TaskError::Panicked(m)) if m == "first"));
}

#[test]
fn completing_a_cancelled_future_is_refused() {
    let f = cancelled();
    assert_eq!(
        f.promise.set_result(1).unwrap_err().message,
        "CANCELLED: <Future state=cancelled>"
    );
    let f = cancelled_and_notified();
    assert_eq!(
        f.promise.set_result(1).unwrap_err().message,
        "CANCELLED_AND_NOTIFIED: <Future state=cancelled>"
    );
}

#[test]
fn set_running_or_notify_cancel_in_unexpected_states_is_an_error() {
    assert!(running().promise.set_running_or_notify_cancel().is_err());
    assert!(successful().promise.set_running_or_notify_cancel().is_err());
    assert!(cancelled_and_notified()
        .promise
        .set_running_or_notify_cancel()
        .is_err());
}

#[test]
fn set_result_is_allowed_straight_from_pending() {
    let f = pending();
    f.promise.set_result(9).unwrap();
    assert_eq!(f.future.state(), State::Finished);
}

#[test]
fn a_dropped_promise_breaks_its_future_and_wakes_the_reader() {
    let (p, f) = promise::<i32>();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30)); // let the reader block first
        drop(p);
    });
    assert!(matches!(
        f.result_timeout(LONG),
        Err(FutureError::Task(TaskError::BrokenPromise))
    ));
    t.join().unwrap();
    // Dropping a completed promise changes nothing.
    let (p, f) = promise::<i32>();
    p.set_result(1).unwrap();
    drop(p);
    assert_eq!(f.result().unwrap(), 1);
    // Nor does dropping the promise of a cancelled future.
    let (p, f) = promise::<i32>();
    f.cancel();
    drop(p);
    assert!(matches!(f.result(), Err(FutureError::Cancelled)));
}

#[test]
fn into_result_moves_the_value_out() {
    let (p, f) = promise::<Vec<u8>>();
    let other = f.clone();
    p.set_result(vec![1, 2, 3]).unwrap();
    assert_eq!(f.into_result().unwrap(), vec![1, 2, 3]);
    assert!(matches!(other.result(), Err(FutureError::ValueTaken)));
    assert_eq!(other.state(), State::Finished);
    assert!(other.exception().unwrap().is_none());
}

/// The last handle of a done future takes its outcome without the lock
/// (`into_result`'s fast path): each kind of outcome comes out as with the
/// locked path, and a handle that is not the last one still goes through it.
#[test]
fn into_result_on_the_last_handle_of_a_done_future() {
    let (p, f) = promise::<String>();
    p.set_result("v".to_string()).unwrap();
    drop(p);
    assert_eq!(f.into_result().unwrap(), "v");

    let (p, f) = promise::<String>();
    p.set_error(TaskError::Panicked("boom".into())).unwrap();
    drop(p);
    assert!(matches!(
        f.into_result(),
        Err(FutureError::Task(TaskError::Panicked(m))) if m == "boom"
    ));

    let (p, f) = promise::<String>();
    assert!(f.cancel());
    drop(p);
    assert!(matches!(f.into_result(), Err(FutureError::Cancelled)));

    // The promise is still alive: not the last handle, same answer.
    let (p, f) = promise::<String>();
    p.set_result("w".to_string()).unwrap();
    assert_eq!(f.into_result().unwrap(), "w");
    drop(p);
}

#[test]
fn map_transforms_values_and_passes_errors_and_cancellation_through() {
    let (p, f) = promise::<i32>();
    let doubled = f.map(|n| n * 2);
    assert!(!doubled.done());
    p.set_result(21).unwrap();
    assert_eq!(doubled.result().unwrap(), 42);

    let (p, f) = promise::<i32>();
    let mapped = f.map(|n| n + 1);
    p.set_error(TaskError::failed(OsError)).unwrap();
    assert_eq!(mapped.exception().unwrap().unwrap().name(), "OsError");

    let (_p, f) = promise::<i32>();
    let mapped = f.clone().map(|n| n + 1);
    f.cancel();
    assert!(mapped.cancelled());

    let (p, f) = promise::<i32>();
    let mapped = f.map(|_| -> i32 { panic!("bad map") });
    p.set_result(1).unwrap();
    assert!(matches!(mapped.exception().unwrap(), Some(TaskError::Panicked(m)) if m == "bad map"));
}

#[test]
fn futures_compare_and_hash_by_identity() {
    use std::collections::HashMap;
    let (_p1, a) = promise::<i32>();
    let (_p2, b) = promise::<i32>();
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
    let mut to_do = HashMap::new();
    to_do.insert(a.clone(), "BR");
    to_do.insert(b.clone(), "CN");
    assert_eq!(to_do[&a], "BR");
    assert_eq!(to_do[&b], "CN");
}

#[test]
fn wait_on_a_single_future_reports_whether_it_is_done() {
    let f = pending();
    assert!(!f.future.wait(Some(Duration::ZERO)));
    f.promise.set_result(1).unwrap();
    assert!(f.future.wait(Some(Duration::ZERO)));
    assert!(f.future.wait(None));
}
