//! `interrupt(&future)` on threads: cooperative. A task submitted with
//! `submit_interruptible` gets a token the verb sets; the future says
//! whether the task saw it. A task without a token is refused, never
//! half-stopped.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::LONG;
use future::{FutureError, Interrupt, TaskError};
use thread_pool::{Interrupted, NotInterruptible, ThreadPoolExecutor};

fn interrupted<T: std::fmt::Debug>(r: Result<T, FutureError>) -> Interrupted {
    match r {
        Err(FutureError::Task(TaskError::Executor(e))) => e
            .downcast_ref::<Interrupted>()
            .unwrap_or_else(|| panic!("expected Interrupted, got {e:?}"))
            .clone(),
        other => panic!("expected Interrupted, got {other:?}"),
    }
}

#[test]
fn a_task_sleeping_on_its_token_stops_at_once() {
    let pool = ThreadPoolExecutor::new(1);
    let (started, is_started) = mpsc::channel();
    let f = pool
        .submit_interruptible(move |token| {
            started.send(()).unwrap();
            token.sleep(Duration::MAX)?; // only the request ends it
            Ok(1)
        })
        .unwrap();
    is_started.recv_timeout(LONG).unwrap();
    assert_eq!(pool.interrupt(&f), Ok(Interrupt::Requested));
    let e = interrupted(f.result_timeout(LONG));
    assert!(e.to_string().starts_with("interrupted by request"), "{e}");
    // The worker is free again.
    assert_eq!(pool.submit(|| 5).unwrap().result_timeout(LONG).unwrap(), 5);
    assert_eq!(pool.interrupt(&f), Ok(Interrupt::AlreadyDone));
}

#[test]
fn a_polling_task_stops_at_its_next_check() {
    let pool = ThreadPoolExecutor::new(1);
    let (started, is_started) = mpsc::channel();
    let f = pool
        .submit_interruptible(move |token| {
            started.send(()).unwrap();
            let mut steps = 0u64;
            loop {
                token.check()?;
                steps += 1;
                std::thread::yield_now();
                if steps == u64::MAX {
                    return Ok(steps);
                }
            }
        })
        .unwrap();
    is_started.recv_timeout(LONG).unwrap();
    assert_eq!(pool.interrupt(&f), Ok(Interrupt::Requested));
    interrupted(f.result_timeout(LONG));
}

#[test]
fn a_task_that_finishes_without_looking_keeps_its_value() {
    let pool = ThreadPoolExecutor::new(1);
    let (started, is_started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let f = pool
        .submit_interruptible(move |_token| {
            started.send(()).unwrap();
            released.recv().unwrap();
            Ok(7)
        })
        .unwrap();
    is_started.recv_timeout(LONG).unwrap();
    assert_eq!(pool.interrupt(&f), Ok(Interrupt::Requested));
    release.send(()).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 7, "the task never saw it");
}

#[test]
fn a_task_without_a_token_is_refused_and_runs_to_its_end() {
    let pool = ThreadPoolExecutor::new(1);
    let (started, is_started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let f = pool
        .submit(move || {
            started.send(()).unwrap();
            released.recv().unwrap();
            3
        })
        .unwrap();
    is_started.recv_timeout(LONG).unwrap();
    let refused = pool.interrupt(&f).unwrap_err();
    assert_eq!(refused, NotInterruptible);
    assert!(
        refused.to_string().contains("submit_interruptible"),
        "{refused}"
    );
    release.send(()).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 3);
    assert_eq!(pool.interrupt(&f), Ok(Interrupt::AlreadyDone));
}

#[test]
fn a_pending_task_is_cancelled_and_never_runs() {
    let pool = ThreadPoolExecutor::new(1);
    let (started, is_started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let blocker = pool
        .submit(move || {
            started.send(()).unwrap();
            released.recv().unwrap();
        })
        .unwrap();
    is_started.recv_timeout(LONG).unwrap();
    let (ran, did_run) = mpsc::channel();
    let queued = pool
        .submit_interruptible(move |_| {
            ran.send(()).unwrap();
            Ok(())
        })
        .unwrap();
    let plain = pool.submit(|| 1).unwrap();
    assert_eq!(pool.interrupt(&queued), Ok(Interrupt::Cancelled));
    assert_eq!(pool.interrupt(&plain), Ok(Interrupt::Cancelled));
    release.send(()).unwrap();
    blocker.result_timeout(LONG).unwrap();
    assert!(matches!(
        queued.result_timeout(LONG),
        Err(FutureError::Cancelled)
    ));
    pool.shutdown(true, false);
    assert!(did_run.try_recv().is_err(), "a cancelled task ran");
}

#[test]
fn a_foreign_future_is_not_interruptible() {
    let pool = ThreadPoolExecutor::new(1);
    let (promise, foreign) = future::promise::<u8>();
    assert!(promise.set_running_or_notify_cancel().unwrap());
    assert_eq!(pool.interrupt(&foreign), Err(NotInterruptible));
    promise.set_result(1).unwrap();
}
