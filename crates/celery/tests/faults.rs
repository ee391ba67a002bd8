//! Faults between our code and Redis (ADVERSARY.md classes 4 and 5), each
//! checked against the rule: nothing acknowledged that did not run, nothing
//! lost, nothing run twice without saying so, no hang, a clear error.
//!
//! Time is played by expiring keys by hand; the network by
//! [`celery::testing::Proxy`], which cuts a connection at a chosen byte of a
//! chosen reply, delays replies, or cuts the link until told otherwise.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use celery::resp::{Connection, Reply};
use celery::{tasks, CeleryExecutor, Worker, WorkerConfig, WorkerStats};
use common::*;

/// A worker on threads of this process, with its counters in reach;
/// stopped and joined on drop.
struct InProcessWorker {
    worker: Arc<Worker>,
    handle: Option<JoinHandle<()>>,
}

impl InProcessWorker {
    fn start(broker: &str, queues: &[&str], concurrency: usize) -> InProcessWorker {
        Self::with_registry(broker, queues, concurrency, tasks::builtin())
    }

    fn with_registry(
        broker: &str,
        queues: &[&str],
        concurrency: usize,
        registry: celery::Registry,
    ) -> InProcessWorker {
        let mut config = WorkerConfig::new(broker);
        config.queues = queues.iter().map(|q| q.to_string()).collect();
        config.concurrency = concurrency;
        let worker = Arc::new(Worker::new(config, registry));
        let w = worker.clone();
        let handle = std::thread::spawn(move || w.run().expect("worker runs"));
        InProcessWorker {
            worker,
            handle: Some(handle),
        }
    }

    fn stats(&self) -> WorkerStats {
        self.worker.stats()
    }
}

impl Drop for InProcessWorker {
    fn drop(&mut self) {
        self.worker.stop_flag().store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn executor(url: &str) -> CeleryExecutor {
    CeleryExecutor::builder(url)
        .registry(tasks::builtin())
        .reconnect_timeout(LONG)
        .connect()
        .expect("connect")
}

/// What any amount of time does to a Redis database: every key that has a
/// TTL is gone; keys without one (queues, bindings) stay.
fn expire_every_key_with_a_ttl(c: &mut Connection) -> usize {
    let keys = c.command(&[b"KEYS", b"*"]).unwrap().into_array();
    let mut expired = 0;
    for key in keys.into_iter().filter_map(Reply::into_bytes) {
        if let Reply::Integer(ttl) = c.command(&[b"TTL", &key]).unwrap() {
            if ttl >= 0 {
                c.command(&[b"DEL", &key]).unwrap();
                expired += 1;
            }
        }
    }
    expired
}

/// Nothing run twice, nothing left behind: the worker ran `n` tasks (its
/// counter moves just after the result is published, so wait for it), and
/// no message is left queued or unacked that could run again.
fn assert_each_ran_once(worker: &InProcessWorker, n: u64, c: &mut Connection) {
    wait_until(LONG, "the worker to count its runs", || {
        worker.stats().ran >= n
    });
    assert_eq!(worker.stats().ran, n, "tasks run");
    assert_eq!(c.command(&[b"LLEN", b"celery"]).unwrap(), Reply::Integer(0));
    assert_eq!(
        c.command(&[b"HLEN", b"unacked"]).unwrap(),
        Reply::Integer(0)
    );
}

/// Item 12: a connection blip after a long uptime is a blip, not a broker
/// that lost its data. The message is still queued, so failing the future
/// with `BrokerLost` (whose advice is "submit them again") would run the
/// task twice.
#[test]
fn a_connection_blip_after_a_long_uptime_is_not_taken_for_a_lost_broker() {
    let redis = RedisServer::start();
    let ex = executor(&redis.url(0));
    let f = ex.submit(tasks::add, (40, 2)).unwrap();
    let mut c = redis.connect();
    expire_every_key_with_a_ttl(&mut c);
    // The blip: the server drops the listener's (subscribed) connection.
    let killed = c
        .command(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"])
        .unwrap();
    assert_eq!(killed, Reply::Integer(1), "the listener's connection");
    let worker = InProcessWorker::start(&redis.url(0), &["celery"], 1);
    assert_eq!(f.result_timeout(LONG).unwrap(), 42);
    assert_each_ran_once(&worker, 1, &mut c);
}
