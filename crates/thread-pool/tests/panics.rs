//! A panicking task fails its own future and nothing else.

mod common;

use common::LONG;
use thread_pool::{FutureError, TaskError, ThreadPoolExecutor};

#[test]
fn panic_message_reaches_the_future_and_the_worker_survives() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("tppanic")
        .build()
        .unwrap();
    let bad = pool
        .submit(|| -> u32 { panic!("task {} exploded", 7) })
        .unwrap();
    match bad.result_timeout(LONG) {
        Err(FutureError::Task(TaskError::Panicked(msg))) => assert_eq!(msg, "task 7 exploded"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        format!("{bad:?}"),
        "<Future state=finished raised TaskPanicked>"
    );
    // Same single worker, still alive, runs the next task.
    let name = pool
        .submit(|| std::thread::current().name().unwrap().to_string())
        .unwrap();
    assert_eq!(name.result_timeout(LONG).unwrap(), "tppanic-0");
    let stats = pool.stats();
    assert_eq!(
        (stats.workers_alive, stats.completed, stats.failed),
        (1, 1, 1)
    );
}

#[test]
fn non_string_panic_payloads_are_described() {
    let pool = ThreadPoolExecutor::new(1);
    let f = pool.submit(|| std::panic::panic_any(42u8)).unwrap();
    match f.result_timeout(LONG) {
        Err(FutureError::Task(TaskError::Panicked(msg))) => {
            assert!(msg.contains("non-string"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn many_panics_do_not_shrink_the_pool() {
    let pool = ThreadPoolExecutor::new(2);
    let futures: Vec<_> = (0..200)
        .map(|i| {
            pool.submit(move || if i % 2 == 0 { panic!("even {i}") } else { i })
                .unwrap()
        })
        .collect();
    for (i, f) in futures.iter().enumerate() {
        let r = f.result_timeout(LONG);
        if i % 2 == 0 {
            assert!(
                matches!(r, Err(FutureError::Task(TaskError::Panicked(_)))),
                "{r:?}"
            );
        } else {
            assert_eq!(r.unwrap(), i);
        }
    }
    let stats = pool.stats();
    assert!(stats.workers_alive >= 1 && stats.workers_alive <= 2);
    assert_eq!((stats.completed, stats.failed), (100, 100));
}

#[test]
fn fallible_tasks_fail_with_their_error() {
    let pool = ThreadPoolExecutor::new(2);
    let f = pool.submit_fallible(|| "12x".parse::<u32>()).unwrap();
    match f.result_timeout(LONG) {
        Err(FutureError::Task(TaskError::Failed(e))) => {
            assert_eq!(e.type_name(), "ParseIntError");
            assert!(e.downcast_ref::<std::num::ParseIntError>().is_some());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        format!("{f:?}"),
        "<Future state=finished raised ParseIntError>"
    );
    // FIRST_EXCEPTION counts it.
    let ok = pool.submit(|| 1u32).unwrap();
    let done = future::wait([&f, &ok], Some(LONG), future::ReturnWhen::FirstException);
    assert!(done.done.contains(&f));
    let g = pool
        .submit_outcome(|| {
            Err::<u8, _>(TaskError::Failed(future::DynError::from_parts(
                "ValueError",
                "bad",
            )))
        })
        .unwrap();
    assert_eq!(
        g.exception_timeout(LONG).unwrap().unwrap().to_string(),
        "task failed: bad"
    );
}
