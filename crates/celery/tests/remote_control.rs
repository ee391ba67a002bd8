//! Celery's remote control against our worker, from a real Python client:
//! `inspect().ping()`, `active()`, `registered()`,
//! `stats()`, `control.ping()`, `revoke(reply=True)` with and without
//! `terminate`, and a `shutdown` broadcast.
//!
//! Every call names our worker as its `destination`, so the client returns
//! as soon as the one reply arrives: the 60 s `timeout` is only a hang
//! guard, and a worker that does not answer makes the call return nothing.

mod common;

use common::*;
use serde_json::Value;

const NODE: &str = "rusty@test";

/// Runs `code` (with `node`, `gate` and `json` defined) in a Python client;
/// its last line of output, read as JSON.
fn python_json(url: &str, code: &str, gate: &str) -> Value {
    let script = format!(
        "import json, os, time\nfrom tasks import app\nnode = {NODE:?}\ngate = {gate:?}\n{code}"
    );
    let out = python(url, &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn a_python_client_inspects_our_worker() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let w = Spawned::start(&url, || {}, &["-c", "2", "--pool", "threads", "-n", NODE]);
    let gate = std::env::temp_dir().join(format!("celery-inspect-{}", celery::id::new_task_id()));
    let gate = gate.to_string_lossy().into_owned();
    // A task held running (until the gate file exists) while the client asks.
    let v = python_json(
        &url,
        r#"
r = app.send_task("rust.wait_for", args=(gate,))
while not os.path.exists(gate + ".started"):
    time.sleep(0.02)
i = app.control.inspect(destination=[node], timeout=60)
out = {"id": r.id, "ping": i.ping()}
if out["ping"] is None:  # no answer: the rest would wait 60 s each for nothing
    print(json.dumps(out))
    raise SystemExit
out.update(active=i.active(), registered=i.registered(), stats=i.stats(),
           cping=app.control.ping(destination=[node], timeout=60))
open(gate, "w").close()
out["result"] = r.get(timeout=120)
print(json.dumps(out))
"#,
        &gate,
    );
    assert_eq!(v["ping"], serde_json::json!({NODE: {"ok": "pong"}}), "{v}");
    assert_eq!(
        v["cping"],
        serde_json::json!([{NODE: {"ok": "pong"}}]),
        "{v}"
    );
    let active = &v["active"][NODE];
    assert_eq!(active.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(active[0]["id"], v["id"], "{v}");
    assert_eq!(active[0]["name"], "rust.wait_for", "{v}");
    assert_eq!(active[0]["hostname"], NODE, "{v}");
    assert_eq!(active[0]["delivery_info"]["routing_key"], "celery", "{v}");
    let registered = v["registered"][NODE].as_array().expect("a list of names");
    assert!(registered.contains(&Value::from("rust.add")), "{v}");
    let stats = &v["stats"][NODE];
    assert_eq!(stats["pid"], w.pid(), "{v}");
    assert_eq!(stats["pool"]["max-concurrency"], 2, "{v}");
    assert_eq!(stats["broker"]["transport"], "redis", "{v}");
    assert_eq!(stats["broker"]["port"], redis.port(), "{v}");
    assert!(stats["uptime"].is_number(), "{v}");
    assert_eq!(v["result"], w.pid(), "{v}");
}

#[test]
fn revoke_replies_and_a_running_task_refuses_terminate_with_the_reason() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "threads", "-n", NODE]);
    let gate = std::env::temp_dir().join(format!("celery-revoke-{}", celery::id::new_task_id()));
    let gate = gate.to_string_lossy().into_owned();
    let v = python_json(
        &url,
        r#"
r = app.send_task("rust.wait_for", args=(gate,))
while not os.path.exists(gate + ".started"):
    time.sleep(0.02)
# Queued behind the running one (one runner): revoked before it starts.
q = app.send_task("rust.add", args=(1, 2))
plain = app.control.revoke(q.id, reply=True, destination=[node], timeout=60)
if not plain:  # no answer: the rest would wait 60 s for nothing
    print(json.dumps({"plain": plain}))
    raise SystemExit
term = app.control.revoke(r.id, terminate=True, reply=True, destination=[node], timeout=60)
open(gate, "w").close()
out = {"plain": plain, "term": term, "result": r.get(timeout=120)}
try:
    q.get(timeout=120)
    out["queued"] = "ran"
except Exception as e:
    out["queued"] = type(e).__name__
print(json.dumps(out))
"#,
        &gate,
    );
    let plain = v["plain"][0][NODE]["ok"].as_str().unwrap_or_default();
    assert!(plain.contains("flagged as revoked"), "{v}");
    let term = v["term"][0][NODE]["error"].as_str().unwrap_or_default();
    assert!(
        term.contains("terminate") && term.contains("runs to its end"),
        "{v}"
    );
    assert_eq!(v["result"], w.pid(), "the running task ran to its end: {v}");
    assert_eq!(v["queued"], "TaskRevokedError", "{v}");
    let log = w.stderr();
    assert!(
        log.contains("terminate") && log.contains("refused"),
        "{log}"
    );
}

#[test]
fn a_shutdown_broadcast_is_a_warm_shutdown() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let mut w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "threads", "-n", NODE]);
    wait_until(LONG, "the worker's ready line", || {
        w.stderr().contains("ready")
    });
    // Only once it answers a ping is it surely listening on the pidbox.
    let v = python_json(
        &url,
        r#"
pong = app.control.ping(destination=[node], timeout=60)
app.control.shutdown(destination=[node])
print(json.dumps(pong))
"#,
        "",
    );
    assert_eq!(v, serde_json::json!([{NODE: {"ok": "pong"}}]));
    assert_eq!(
        w.wait_exit(),
        Some(0),
        "a remote shutdown is a warm one: exit 0"
    );
    assert!(
        w.stderr().contains("shutdown from remote"),
        "{}",
        w.stderr()
    );
}

#[test]
fn broadcasts_for_another_node_get_no_reply_and_unknown_commands_an_error() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "threads", "-n", NODE]);
    let v = python_json(
        &url,
        r#"
pong = app.control.ping(destination=[node], timeout=60)
# Not for us: no reply within a short wait (an absence, so the wait is short on purpose
# and a slow machine can only make this pass, never fail wrongly).
other = app.control.ping(destination=["someone@else"], timeout=1)
unknown = app.control.broadcast("no_such_command", reply=True, destination=[node], timeout=60)
print(json.dumps({"pong": pong, "other": other, "unknown": unknown}))
"#,
        "",
    );
    assert_eq!(
        v["pong"],
        serde_json::json!([{NODE: {"ok": "pong"}}]),
        "{v}"
    );
    assert_eq!(v["other"], serde_json::json!([]), "{v}");
    let err = v["unknown"][0][NODE]["error"].as_str().unwrap_or_default();
    assert!(err.contains("no_such_command"), "{v}");
}
