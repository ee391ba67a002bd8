//! The cause and cost of the tasks our worker ran in its worker processes,
//! summed in its `stats` remote-control reply under `task_costs` (a key
//! Python's `inspect().stats()` passes through as it is): how many tasks,
//! their run and CPU times, the highest peak RSS of a worker process, and
//! how many lost their worker process.
//!
//! Not in the result meta: a Python client would ignore an extra key there
//! (its `AsyncResult` reads the keys it knows), but nothing would read it.

mod common;

use common::*;
use serde_json::Value;

const NODE: &str = "costly@test";

#[test]
fn the_stats_reply_sums_the_costs_of_the_tasks_run_in_worker_processes() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "processes", "-n", NODE]);
    let script = format!(
        r#"
import json
from tasks import app
node = {NODE:?}
results = [app.send_task("rust.pid", args=()) for _ in range(3)]
pids = [r.get(timeout=120) for r in results]
lost = app.send_task("rust.panic", args=("boom",))
try:
    lost.get(timeout=120)
except Exception:
    pass
stats = app.control.inspect(destination=[node], timeout=60).stats()
print(json.dumps({{"pids": pids, "stats": stats}}))
"#
    );
    let out = python(&url, &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}\nworker: {}",
            String::from_utf8_lossy(&out.stderr),
            w.stderr()
        )
    });
    let costs = &v["stats"][NODE]["task_costs"];
    assert_eq!(costs["tasks"], 4, "{v}");
    assert!(costs["run_time"].as_f64().is_some_and(|s| s > 0.0), "{v}");
    assert!(costs["user_cpu"].as_f64().is_some(), "{v}");
    assert!(costs["system_cpu"].as_f64().is_some(), "{v}");
    assert!(
        costs["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0),
        "{v}"
    );
    assert_eq!(costs["worker_lost"], 0, "{v}");
    // The tasks ran in a worker process, not in the worker itself.
    assert_ne!(v["pids"][0], w.pid(), "{v}");
}
