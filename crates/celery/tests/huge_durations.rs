//! A worker configured through the library with durations no clock holds
//! (`Duration::MAX`): it must store results (Redis refuses an expiry that
//! large) and its restore thread must survive its first round (an
//! `Instant` cannot be that far away). (Its own test binary: it counts
//! threads.)

mod common;

use std::time::Duration;

use celery::meta::result_key;
use celery::resp::Reply;
use celery::{tasks, TaskMessage, Worker, WorkerConfig};
use common::*;
use serde_json::{json, Value};

#[test]
fn a_worker_with_durations_too_long_for_any_clock_still_restores_and_stores_results() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    // The message of a worker that died long ago: unacked since 1970.
    let msg = TaskMessage::new("rust.add", json!([1, 2]), "celery");
    let envelope: Value = serde_json::from_str(&msg.to_json()).unwrap();
    let entry = json!([envelope, "", "celery"]).to_string();
    let mut c = redis.connect();
    c.command(&[b"ZADD", b"unacked_index", b"0", b"old-tag"])
        .unwrap();
    c.command(&[b"HSET", b"unacked", b"old-tag", entry.as_bytes()])
        .unwrap();
    let mut config = WorkerConfig::new(&url);
    config.concurrency = 1;
    config.visibility_timeout = Duration::from_secs(1);
    config.restore_interval = Duration::MAX;
    config.result_expires = Duration::MAX;
    let worker = Worker::new(config, tasks::builtin());
    let stop = worker.stop_flag();
    let run = std::thread::spawn(move || worker.run());
    // The first restore puts it back; the worker runs it and stores 3.
    let key = result_key(&msg.id);
    wait_until(LONG, "the restored task's stored result", || {
        c.command(&[b"GET", key.as_bytes()])
            .unwrap()
            .into_bytes()
            .is_some()
    });
    match c.command(&[b"TTL", key.as_bytes()]).unwrap() {
        Reply::Integer(ttl) => assert!(ttl > 0, "the record expires some day: {ttl}"),
        other => panic!("TTL: {other:?}"),
    }
    assert_eq!(
        threads_named("celery-restore"),
        1,
        "the restore thread outlives its first round"
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    run.join().unwrap().unwrap();
}
