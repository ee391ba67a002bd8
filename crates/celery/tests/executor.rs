//! Our executor against our worker (in-process), on a private redis-server.

mod common;

use std::time::Duration;

use celery::testing::tasks as test_tasks;
use celery::{tasks, CeleryExecutor};
use common::*;
use future::{as_completed, FutureError, TaskError};

fn executor(redis: &RedisServer) -> CeleryExecutor {
    CeleryExecutor::builder(&redis.url(0))
        .registry(test_tasks::registry())
        .connect()
        .expect("connect")
}

#[test]
fn submit_runs_on_a_rust_worker_and_the_future_gets_the_value() {
    let redis = RedisServer::start();
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 2);
    let ex = executor(&redis);
    let f = ex.submit_fallible(tasks::add, (2, 3)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
    let g = ex.submit_named::<_, i64>("rust.add", (40, 2)).unwrap();
    assert_eq!(g.result_timeout(LONG).unwrap(), 42);
    assert_eq!(ex.pending(), 0);
}

#[test]
fn many_futures_complete_through_one_listener_in_as_completed() {
    let redis = RedisServer::start();
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 4);
    let ex = executor(&redis);
    let futures: Vec<_> = (0..200i64)
        .map(|i| ex.submit_fallible(tasks::add, (i, i)).unwrap())
        .collect();
    let mut sum = 0;
    for f in as_completed(futures.clone(), Some(LONG)) {
        sum += f.unwrap().result().unwrap();
    }
    assert_eq!(sum, (0..200).map(|i| 2 * i).sum::<i64>());
}

#[test]
fn a_panic_and_an_error_reach_the_future_with_their_messages() {
    let redis = RedisServer::start();
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    let ex = executor(&redis);
    let p = ex.submit(tasks::panic, "the sky fell".to_string()).unwrap();
    match p.result_timeout(LONG) {
        Err(FutureError::Task(TaskError::Panicked(m))) => assert_eq!(m, "the sky fell"),
        other => panic!("expected a panic, got {other:?}"),
    }
    let e = ex
        .submit_fallible(tasks::fail, "bad input".to_string())
        .unwrap();
    match e.result_timeout(LONG) {
        Err(FutureError::Task(err)) => {
            assert_eq!(err.name(), "RustTaskError");
            assert!(err.to_string().contains("bad input"), "{err}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let unknown = ex.submit_named::<_, ()>("rust.nope", ()).unwrap();
    let err = unknown.result_timeout(LONG).unwrap_err();
    assert!(err.to_string().contains("not registered"), "{err}");
}

#[test]
fn result_timeout_leaves_the_future_pending_and_it_completes_later() {
    let redis = RedisServer::start();
    let ex = executor(&redis);
    let f = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    // No worker yet: the wait times out and the future is untouched.
    assert!(matches!(
        f.result_timeout(Duration::from_millis(200)),
        Err(FutureError::Timeout(_))
    ));
    assert!(!f.done());
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    assert_eq!(f.result_timeout(LONG).unwrap(), 2);
}

#[test]
fn cancel_before_start_revokes_the_task_and_it_never_runs() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("celery-revoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("ran");
    let _ = std::fs::remove_file(&marker);
    let ex = executor(&redis);
    let f = ex
        .submit_fallible(test_tasks::touch, marker.to_string_lossy().into_owned())
        .unwrap();
    assert!(f.cancel());
    assert!(f.cancelled());
    // The worker starts after the revoke broadcast (it missed it) and still
    // skips the task: the REVOKED record in the backend tells it.
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    let after = ex.submit_fallible(tasks::add, (1, 2)).unwrap();
    assert_eq!(after.result_timeout(LONG).unwrap(), 3); // FIFO: the revoked one was fetched first
    assert!(!marker.exists(), "the revoked task ran");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_with_wait_waits_for_pending_results_then_refuses_submits() {
    let redis = RedisServer::start();
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 2);
    let ex = executor(&redis);
    let futures: Vec<_> = (0..20)
        .map(|i| ex.submit(tasks::sleep_ms, i).unwrap())
        .collect();
    ex.shutdown(true, false);
    assert!(futures.iter().all(|f| f.done()));
    assert!(matches!(
        ex.submit_fallible(tasks::add, (1, 1)),
        Err(celery::CeleryError::Shutdown)
    ));
}

#[test]
fn the_broker_restarting_mid_run_loses_no_result_and_nothing_hangs() {
    let mut redis = RedisServer::start_with(true);
    let ex = CeleryExecutor::builder(&redis.url(0))
        .registry(test_tasks::registry())
        .reconnect_timeout(Duration::from_secs(60))
        .connect()
        .unwrap();
    let first: Vec<_> = (0..10i64)
        .map(|i| ex.submit_fallible(tasks::add, (i, 1)).unwrap())
        .collect();
    redis.restart();
    // Submitted before the restart, run after it: the messages survived in
    // the append-only file; the listener resubscribed and GETs them.
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 2);
    let second: Vec<_> = (0..10i64)
        .map(|i| ex.submit_fallible(tasks::add, (i, 2)).unwrap())
        .collect();
    for (i, f) in first.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i as i64 + 1);
    }
    for (i, f) in second.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i as i64 + 2);
    }
}

#[test]
fn a_broker_that_stays_down_fails_pending_futures_with_a_clear_error() {
    let mut redis = RedisServer::start();
    let ex = CeleryExecutor::builder(&redis.url(0))
        .registry(test_tasks::registry())
        .reconnect_timeout(Duration::from_millis(500))
        .connect()
        .unwrap();
    let f = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    redis.stop();
    let err = f.result_timeout(LONG).unwrap_err();
    assert!(err.to_string().contains("lost the Redis broker"), "{err}");
    let e = ex.submit_fallible(tasks::add, (1, 1)).unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

#[test]
fn a_broker_restarting_without_its_data_fails_pending_futures_instead_of_hanging() {
    let mut redis = RedisServer::start(); // persistence off: a restart loses everything
    let ex = executor(&redis);
    let lost = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    redis.restart();
    let err = lost.result_timeout(LONG).unwrap_err();
    assert!(
        err.to_string().contains("came back without its data"),
        "{err}"
    );
    // The executor goes on working on the new server.
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    let f = ex.submit_fallible(tasks::add, (2, 2)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 4);
}

/// A result stored before the client's subscription took effect (its PUBLISH
/// went to nobody) is still found: the listener GETs the record when no
/// PUBLISH follows the subscription. No worker runs here: the record is
/// written by hand, without a PUBLISH, before the task is even sent.
#[test]
fn a_result_stored_before_the_subscription_is_found_without_its_publish() {
    let redis = RedisServer::start();
    let ex = executor(&redis);
    let msg = celery::TaskMessage::new("rust.add", serde_json::json!([1, 2]), "celery");
    let record = celery::meta::Outcome::Success(serde_json::json!(3)).to_json(&msg.id);
    let key = format!("celery-task-meta-{}", msg.id);
    let mut c = redis.connect();
    c.command(&[b"SET", key.as_bytes(), record.as_bytes()])
        .unwrap()
        .ok()
        .unwrap();
    let f = ex.send::<i64>(msg).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 3);
    assert_eq!(ex.pending(), 0);
}
