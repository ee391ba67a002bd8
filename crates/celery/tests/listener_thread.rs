//! The listener thread's life, alone in its own test binary so that no
//! other test's executor adds threads to the count.

mod common;

use celery::testing::tasks as test_tasks;
use celery::{tasks, CeleryExecutor};
use common::*;

#[test]
fn one_listener_per_executor_and_dropping_the_executor_ends_it() {
    let redis = RedisServer::start();
    let before = threads_named("celery-listen");
    let ex = CeleryExecutor::builder(&redis.url(0))
        .registry(test_tasks::registry())
        .connect()
        .expect("connect");
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 2);
    let done: Vec<_> = (0..50i64)
        .map(|i| ex.submit_fallible(tasks::add, (i, 1)).unwrap())
        .collect();
    for f in &done {
        f.result_timeout(LONG).unwrap();
    }
    assert_eq!(threads_named("celery-listen"), before + 1);
    drop(_w); // no worker: the next task stays pending
    let pending = ex.submit(test_tasks::block_first_run, blocker()).unwrap();
    drop(ex);
    assert_eq!(threads_named("celery-listen"), before);
    let err = pending.result_timeout(LONG).unwrap_err();
    assert!(err.to_string().contains("shut down"), "{err}");
}

/// A path for `rust.block_first_run` that does not exist yet.
fn blocker() -> String {
    let p = std::env::temp_dir().join(format!("celery-listener-{}", celery::id::new_task_id()));
    p.to_string_lossy().into_owned()
}
