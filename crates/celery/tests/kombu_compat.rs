//! Our worker's fetch (a script that pops and records the message as
//! unacked in one step, and a `BLMOVE q q` wait) beside real Celery: kombu
//! must still read and restore the unacked entries we write, and a Python
//! worker must still share a queue with ours.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use celery::resp::{Connection, Reply};
use celery::{tasks, CeleryExecutor, Registry, TaskMessage, Worker, WorkerConfig};
use common::*;

/// A worker on a thread of this process; stopped and joined on drop.
struct InProcessWorker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl InProcessWorker {
    fn start(broker: &str, registry: Registry) -> InProcessWorker {
        let mut config = WorkerConfig::new(broker);
        config.concurrency = 1;
        let worker = Worker::new(config, registry);
        let stop = worker.stop_flag();
        let handle = std::thread::spawn(move || worker.run().expect("worker runs"));
        InProcessWorker {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for InProcessWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// `test.wait_for_file`: creates `<path>.started`, waits until `path`
/// exists (a gate the test opens), returns 7; gives up after the hang
/// guard (returning 0) so that a failing test still ends.
fn wait_for_file(path: String) -> u32 {
    std::fs::write(format!("{path}.started"), b"").unwrap();
    let deadline = std::time::Instant::now() + LONG;
    while !std::path::Path::new(&path).exists() {
        if std::time::Instant::now() > deadline {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    7
}

/// Python's `tasks.add`, in Rust, so both workers can run it.
fn add((x, y): (i64, i64)) -> i64 {
    x + y
}

fn int(r: Reply) -> i64 {
    match r {
        Reply::Integer(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// kombu's `restore_visible` (what a Python worker runs every 100 s) puts
/// a message our worker recorded as unacked back on its queue, readable,
/// with the same id and marked redelivered.
#[test]
fn kombu_restores_a_message_our_worker_recorded_as_unacked() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let mut registry = tasks::builtin();
    registry.register("test.wait_for_file", wait_for_file);
    let worker = InProcessWorker::start(&url, registry);
    let ex = CeleryExecutor::builder(&url)
        .registry(tasks::builtin())
        .connect()
        .unwrap();
    let gate = std::env::temp_dir().join(format!("celery-gate-{}", celery::id::new_task_id()));
    let gate_path = gate.to_string_lossy().into_owned();
    let msg = TaskMessage::new(
        "test.wait_for_file",
        serde_json::json!([gate_path.clone()]),
        "celery",
    );
    let id = msg.id.clone();
    let f = ex.send::<u32>(msg).unwrap();
    let started = format!("{gate_path}.started");
    wait_until(LONG, "the task to start", || {
        std::path::Path::new(&started).exists()
    });
    let mut c: Connection = redis.connect();
    assert_eq!(int(c.command(&[b"HLEN", b"unacked"]).unwrap()), 1);
    python(
        &url,
        r#"
from tasks import app
with app.connection() as conn:
    channel = conn.default_channel
    channel.visibility_timeout = 0  # every entry is old enough
    channel.qos.restore_visible()
"#,
    );
    assert_eq!(int(c.command(&[b"HLEN", b"unacked"]).unwrap()), 0);
    assert_eq!(int(c.command(&[b"LLEN", b"celery"]).unwrap()), 1);
    let raw = c
        .command(&[b"LINDEX", b"celery", b"0"])
        .unwrap()
        .into_bytes()
        .unwrap();
    let restored = TaskMessage::parse(&raw).expect("kombu's restored message parses");
    assert_eq!(restored.id, id);
    assert!(restored.redelivered, "kombu marks it redelivered");
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 7);
    drop(worker);
    for p in [&gate_path, &started] {
        let _ = std::fs::remove_file(p);
    }
}

/// A Python worker (kombu's BRPOP) and ours (the fetch script and its
/// `BLMOVE q q` wait) on one queue: every task runs and returns its result.
#[test]
fn a_python_worker_and_ours_share_a_queue() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _py = python_worker(&url, "celery");
    let mut registry = tasks::builtin();
    registry.register("tasks.add", add);
    let _ours = InProcessWorker::start(&url, registry);
    let ex = CeleryExecutor::connect(&url).unwrap();
    let futures: Vec<_> = (0..20i64)
        .map(|i| ex.submit_named::<_, i64>("tasks.add", (i, 1000)).unwrap())
        .collect();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i as i64 + 1000);
    }
}
