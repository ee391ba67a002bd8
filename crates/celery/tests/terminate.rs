//! `revoke(terminate=True)` both ways with Python Celery:
//! Python's revoke on our worker's process pool stops the running task
//! (SIGTERM to its process) and stores REVOKED `terminated`, as Celery's
//! prefork pool does; our `CeleryExecutor::interrupt` on a Python prefork
//! worker does the same, and the future says "terminated by request".

mod common;

use std::process::{Command, Stdio};

use common::*;
use future::{FutureError, Interrupt, TaskError};
use serde_json::Value;

const NODE: &str = "rusty@terminate";

fn gate(name: &str) -> String {
    std::env::temp_dir()
        .join(format!(
            "celery-terminate-{name}-{}",
            celery::id::new_task_id()
        ))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn python_revoke_terminate_stops_a_task_on_our_worker_processes() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "processes", "-n", NODE]);
    let gate = gate("ours");
    let script = format!(
        r#"
import json, os, time
from tasks import app
r = app.send_task("rust.wait_for", args=({gate:?},))
while not os.path.exists({gate:?} + ".started"):
    time.sleep(0.02)
term = app.control.revoke(r.id, terminate=True, signal="SIGTERM", reply=True,
                          destination=[{NODE:?}], timeout=60)
out = {{"term": term}}
try:
    out["result"] = r.get(timeout=120)
except Exception as e:
    out["error"] = [type(e).__name__, str(e)]
out["state"] = r.state
out["after"] = app.send_task("rust.add", args=(2, 3)).get(timeout=120)
print(json.dumps(out))
"#
    );
    let out = python(&url, &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    let term = v["term"][0][NODE]["ok"].as_str().unwrap_or_default();
    assert!(term.starts_with("terminate: "), "{v}");
    assert_eq!(v["error"][0], "TaskRevokedError", "{v}");
    assert!(
        v["error"][1]
            .as_str()
            .unwrap_or_default()
            .contains("terminated"),
        "{v}"
    );
    assert_eq!(v["state"], "REVOKED", "{v}");
    assert_eq!(v["after"], 5, "the worker goes on: {v}");
    assert!(w.stderr().contains("Terminating"), "{}", w.stderr());
    let _ = std::fs::remove_file(format!("{gate}.started"));
}

/// A Python `celery worker` with the prefork pool (the solo pool cannot
/// terminate a task), one process, consuming `queue`.
fn python_prefork_worker(broker: &str, queue: &str) -> ChildGuard {
    let venv = celery_venv();
    let child = Command::new(venv.join("bin/celery"))
        .args(["-A", "tasks", "worker", "--pool", "prefork", "-c", "1"])
        .args(["--loglevel", "WARNING", "-Q", queue])
        .args([
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ])
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python"))
        .env("CELERY_TEST_BROKER", broker)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the Python celery worker");
    ChildGuard(child)
}

#[test]
fn our_interrupt_stops_a_task_on_a_python_prefork_worker() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _py = python_prefork_worker(&url, "py");
    let executor = celery::CeleryExecutor::builder(&url)
        .queue("py")
        .connect()
        .unwrap();
    let gate = gate("python");
    let f: future::Future<Value> = executor
        .submit_named("tasks.wait_for", (gate.clone(),))
        .unwrap();
    wait_until(LONG, "the Python task to start", || {
        std::path::Path::new(&format!("{gate}.started")).exists()
    });
    assert_eq!(executor.interrupt(&f), Interrupt::Requested);
    match f.result_timeout(LONG) {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            let t = e
                .downcast_ref::<celery::TerminatedByRequest>()
                .unwrap_or_else(|| panic!("expected TerminatedByRequest, got {e:?}"));
            assert_eq!(t.signal, "SIGTERM");
            assert!(t.stored.contains("terminated"), "{t}");
            assert!(t.to_string().starts_with("terminated by request"), "{t}");
        }
        other => panic!("expected TerminatedByRequest, got {other:?}"),
    }
    // The Python worker goes on.
    let next: future::Future<i64> = executor.submit_named("tasks.add", (2, 2)).unwrap();
    assert_eq!(next.result_timeout(LONG).unwrap(), 4);
    assert_eq!(executor.interrupt(&next), Interrupt::AlreadyDone);
    let _ = std::fs::remove_file(format!("{gate}.started"));
}
