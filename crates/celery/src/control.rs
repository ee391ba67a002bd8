//! Celery's remote control over Redis: the pidbox.
//!
//! A broadcast is a PUBLISH on `/<db>.celery.pidbox` (kombu's fanout
//! exchange `celery.pidbox`) of an envelope like a task message's, whose
//! body is `{"method", "arguments", "destination", "pattern", "matcher"}`,
//! plus `"ticket"` and `"reply_to": {"exchange", "routing_key"}` when the
//! client waits for replies. A worker answers only a broadcast meant for it
//! (no `destination`, or its node name among them, a destination of any
//! other type naming no one; a `pattern` with the
//! `glob` matcher) and replies `{"<node name>": <answer>}` in an envelope
//! with a `ticket` header, LPUSHed on the client's reply list: the queue
//! bound to `reply_to`'s routing key in `_kombu.binding.reply.celery.pidbox`
//! (`<client oid>.reply.celery.pidbox`), which the client BRPOPs.
//!
//! Our worker ([`Remote`]) answers `ping`, `stats`, `active`, `registered`,
//! `revoke` and `shutdown` (a warm shutdown, no reply, as in Celery); any
//! other command gets `{"error": ...}` naming the ones it knows.
//! `revoke(terminate=True)` of a task that is running in a worker process
//! terminates it as Celery's prefork pool does (SIGTERM to its process, then
//! SIGKILL after the pool's grace: [`crate::terminate`]) and stores REVOKED
//! `terminated`; on the threads pool it is refused with a logged reason (a
//! thread cannot be killed), and the task runs to its end. Workers that are offline miss a broadcast (Celery keeps revoked
//! ids in worker memory only), which is why the executor also stores
//! REVOKED in the result backend and our worker checks that record before
//! it runs a task.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::base64;
use crate::connection_pool::Pool;
use crate::id::new_task_id;
use crate::message::{TaskMessage, SEP};
use crate::task_costs::TaskCosts;
use crate::url::RedisUrl;

/// A control envelope around `body` (what kombu's producer publishes).
fn envelope(body: &Value, headers: Value, exchange: &str, routing_key: &str) -> String {
    json!({
        "body": base64::encode(body.to_string().as_bytes()),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "delivery_mode": 2,
            "delivery_info": {"exchange": exchange, "routing_key": routing_key},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": new_task_id(),
        },
    })
    .to_string()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The envelope of `app.control.revoke(task_id)`.
pub fn revoke_message(task_id: &str) -> String {
    revoke_envelope(task_id, false)
}

/// The envelope of `app.control.revoke(task_id, terminate=True,
/// signal="SIGTERM")` (what `AsyncResult.revoke(terminate=True)` sends).
pub fn terminate_message(task_id: &str) -> String {
    revoke_envelope(task_id, true)
}

fn revoke_envelope(task_id: &str, terminate: bool) -> String {
    let body = json!({
        "method": "revoke",
        "arguments": {"task_id": task_id, "terminate": terminate, "signal": "SIGTERM"},
        "destination": null, "pattern": null, "matcher": null,
    });
    // Celery gives a broadcast a 1 s life; 10 s tolerates clock skew.
    let headers = json!({"clock": 1, "expires": unix_now() + 10.0});
    envelope(&body, headers, "celery.pidbox", "")
}

/// A control message's body, decoded from its envelope; `None` if it is
/// not one (the pidbox channel is open to anyone who can PUBLISH).
fn decode_body(raw: &[u8]) -> Option<Value> {
    let v = serde_json::from_slice::<Value>(raw).ok()?;
    let body = base64::decode(v.get("body")?.as_str()?)?;
    let body = serde_json::from_slice::<Value>(&body).ok()?;
    body.is_object().then_some(body)
}

/// The ids a revoke's arguments name (one id or a list).
fn task_ids(arguments: &Value) -> Vec<String> {
    match arguments.get("task_id") {
        Some(Value::String(id)) => vec![id.clone()],
        Some(Value::Array(ids)) => ids
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// The task ids a control message revokes (one id or a list), if it is a revoke.
pub fn revoked_ids(raw: &[u8]) -> Vec<String> {
    match decode_body(raw) {
        Some(body) if body.get("method").and_then(Value::as_str) == Some("revoke") => {
            task_ids(body.get("arguments").unwrap_or(&Value::Null))
        }
        _ => Vec::new(),
    }
}

/// Whether a broadcast's `destination` / `pattern` names `node` (kombu's
/// `Node.handle_message`): no destination and no pattern means everyone.
fn is_for(body: &Value, node: &str) -> bool {
    match body.get("destination") {
        None | Some(Value::Null) => {}
        Some(Value::Array(names)) if names.is_empty() => {}
        Some(Value::String(name)) if name.is_empty() => {}
        Some(Value::Array(names)) => return names.iter().any(|n| n.as_str() == Some(node)),
        Some(Value::String(name)) => return name == node,
        // Not a list of names: it names no node we can tell, so not this
        // one (read as "everyone", a `shutdown` would stop every worker).
        Some(other) => {
            eprintln!(
                "celery-worker: ignoring a broadcast whose destination {other} is not a list \
                 of node names"
            );
            return false;
        }
    }
    let pattern = body.get("pattern").and_then(Value::as_str);
    let matcher = body.get("matcher").and_then(Value::as_str);
    match (pattern, matcher) {
        (Some(p), Some("glob")) => glob_match(p.as_bytes(), node.as_bytes()),
        (Some(p), Some(m)) => {
            eprintln!(
                "celery-worker: a broadcast with the {m:?} matcher (pattern {p:?}) is not \
                 answered: only destination lists and glob patterns are supported"
            );
            false
        }
        _ => true,
    }
}

/// Shell-style `*` and `?` (what kombu's default `glob` matcher, `fnmatch`,
/// does for node names; character classes are not supported).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and the name position it has taken up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the `*` take one more byte and try again.
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    p = sp + 1;
                    n = sn + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// The tasks a worker is running now and how many of each it has started:
/// what `inspect().active()` and `stats()["total"]` report.
#[derive(Default)]
pub(crate) struct Active {
    state: Mutex<ActiveState>,
}

#[derive(Default)]
struct ActiveState {
    /// Celery's `Request.info()` of each running task, by delivery tag.
    running: HashMap<String, Value>,
    /// Tasks started, by name.
    totals: BTreeMap<String, u64>,
}

/// Ends an [`Active`] entry when the runner is done with the task, however
/// it leaves [`crate::Worker`]'s `serve`.
pub(crate) struct ActiveGuard<'a> {
    active: &'a Active,
    tag: String,
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        lock(&self.active.state).running.remove(&self.tag);
    }
}

impl Active {
    /// Records that task `msg` (delivery `tag`) starts on node `node`.
    pub(crate) fn begin(&self, tag: &str, msg: &TaskMessage, node: &str) -> ActiveGuard<'_> {
        let info = json!({
            "id": msg.id, "name": msg.task, "args": msg.args, "kwargs": msg.kwargs,
            "type": msg.task, "hostname": node, "time_start": unix_now(),
            // Late ack: acknowledged only once the result is stored.
            "acknowledged": false,
            "delivery_info": {
                "exchange": "", "routing_key": msg.queue, "priority": 0,
                "redelivered": msg.redelivered,
            },
            "worker_pid": std::process::id(),
        });
        let mut state = lock(&self.state);
        state.running.insert(tag.to_string(), info);
        *state.totals.entry(msg.task.clone()).or_default() += 1;
        ActiveGuard {
            active: self,
            tag: tag.to_string(),
        }
    }

    /// Whether task `id` is running now.
    fn is_running(&self, id: &str) -> bool {
        lock(&self.state)
            .running
            .values()
            .any(|info| info["id"].as_str() == Some(id))
    }

    fn list(&self) -> Value {
        Value::Array(lock(&self.state).running.values().cloned().collect())
    }

    fn totals(&self) -> Value {
        json!(lock(&self.state).totals)
    }
}

/// What a worker's pidbox thread needs to answer remote control.
pub(crate) struct Remote {
    /// The node name (`celery@host`) broadcasts address.
    pub node: String,
    /// Revoked ids, read by the worker before it runs a task.
    pub revoked: Arc<Mutex<RevokedSet>>,
    /// The running tasks.
    pub active: Arc<Active>,
    /// The running tasks `revoke(terminate=True)` can stop (worker processes).
    pub terminable: Arc<crate::terminate::Terminable>,
    /// The worker's stop flag: a `shutdown` sets it.
    pub stop: Arc<AtomicBool>,
    /// Where replies go.
    pub broker: Arc<Pool>,
    /// The registered task names, sorted.
    pub registered: Vec<String>,
    /// `threads` or `processes`.
    pub pool: &'static str,
    /// Tasks run at once.
    pub concurrency: usize,
    /// When the worker started (for `uptime`).
    pub started: Instant,
    /// The costs of the tasks run in worker processes (see `task_costs`).
    pub costs: Arc<TaskCosts>,
}

/// How long a reply list lives if no client takes the reply (a client that
/// gave up): kombu's reply queues expire too; generous, so a client on a
/// slow machine still finds it.
const REPLY_LIST_TTL_MS: &[u8] = b"300000";

impl Remote {
    /// Handles one message heard on the pidbox channel.
    pub fn handle(&self, raw: &[u8]) {
        let Some(body) = decode_body(raw) else {
            eprintln!("celery-worker: ignoring a pidbox message that is not a control envelope");
            return;
        };
        if !is_for(&body, &self.node) {
            return;
        }
        let method = body.get("method").and_then(Value::as_str).unwrap_or("");
        let arguments = body.get("arguments").unwrap_or(&Value::Null);
        let answer = match method {
            "ping" => json!({"ok": "pong"}),
            "stats" => self.stats(),
            "active" => self.active.list(),
            "registered" => json!(self.registered),
            "revoke" => self.revoke(arguments),
            "shutdown" => {
                // Celery raises WorkerShutdown: no reply, a warm shutdown.
                eprintln!("celery-worker: Got shutdown from remote: warm shutdown");
                self.stop.store(true, Ordering::SeqCst);
                return;
            }
            other => json!({"error": format!(
                "no such control command {other:?}: this Rust worker answers ping, stats, \
                 active, registered, revoke and shutdown"
            )}),
        };
        if let Some(to) = body.get("reply_to") {
            let ticket = body.get("ticket").cloned().unwrap_or(Value::Null);
            self.reply(to, ticket, answer);
        }
    }

    /// Revokes the ids; `terminate` is refused for a running one.
    fn revoke(&self, arguments: &Value) -> Value {
        let ids = task_ids(arguments);
        let now = Instant::now();
        {
            let mut revoked = lock(&self.revoked);
            for id in &ids {
                revoked.insert(id.clone(), now);
            }
        }
        let list = ids.join(", ");
        let terminate = arguments.get("terminate").and_then(Value::as_bool) == Some(true);
        let running: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| terminate && self.active.is_running(id))
            .collect();
        if running.is_empty() {
            return json!({"ok": format!("tasks {{{list}}} flagged as revoked")});
        }
        // In a worker process: SIGTERM, SIGKILL after the grace, REVOKED
        // `terminated` stored by the runner when the process is gone.
        let (stopped, refused): (Vec<&str>, Vec<&str>) = running
            .into_iter()
            .partition(|id| self.terminable.terminate(id));
        for id in &stopped {
            eprintln!("celery-worker: Terminating {id} (SIGTERM, then SIGKILL after 5 s)");
        }
        if refused.is_empty() {
            return json!({"ok": format!("terminate: {}", stopped.join(", "))});
        }
        let why = format!(
            "revoke(terminate=True) refused for running task(s) {}: they run on this worker's \
             threads (--pool threads), and a thread cannot be stopped, so each runs to its end \
             and its result is stored (--pool processes can terminate one); the tasks \
             {{{list}}} are flagged as revoked and will not start here",
            refused.join(", ")
        );
        eprintln!("celery-worker: {why}");
        json!({"error": why})
    }

    /// Celery's `stats` keys that mean something here.
    fn stats(&self) -> Value {
        let url: &RedisUrl = self.broker.url();
        json!({
            "pid": std::process::id(),
            "uptime": self.started.elapsed().as_secs(),
            "task_costs": self.costs.to_json(),
            "total": self.active.totals(),
            "prefetch_count": self.concurrency,
            "pool": {
                "implementation": format!("rust:{}", self.pool),
                "max-concurrency": self.concurrency,
            },
            // Never the password.
            "broker": {
                "transport": "redis", "hostname": url.host, "port": url.port,
                "virtual_host": url.db.to_string(), "userid": url.username, "ssl": false,
            },
        })
    }

    /// LPUSHes `{node: answer}` on every reply list bound to `to`'s routing key.
    fn reply(&self, to: &Value, ticket: Value, answer: Value) {
        let exchange = to.get("exchange").and_then(Value::as_str).unwrap_or("");
        let routing_key = to.get("routing_key").and_then(Value::as_str).unwrap_or("");
        let body = json!({ self.node.as_str(): answer });
        let headers = json!({"ticket": ticket, "clock": 1});
        let message = envelope(&body, headers, exchange, routing_key);
        let table = format!("_kombu.binding.{exchange}");
        let sent = self.broker.with(|c| {
            let members = c.command(&[b"SMEMBERS", table.as_bytes()])?.ok()?;
            let queues = bound_queues(members.into_array(), routing_key);
            for q in &queues {
                c.queue(&[b"LPUSH", q.as_bytes(), message.as_bytes()]);
                c.queue(&[b"PEXPIRE", q.as_bytes(), REPLY_LIST_TTL_MS]);
            }
            c.flush()?;
            for _ in 0..queues.len() * 2 {
                c.read_reply()?.ok()?;
            }
            Ok(queues.len())
        });
        match sent {
            Ok(0) => eprintln!(
                "celery-worker: no reply list is bound to {routing_key:?} on {exchange:?}: \
                 the client is gone"
            ),
            Ok(_) => {}
            Err(e) => eprintln!("celery-worker: could not send a remote-control reply: {e}"),
        }
    }
}

/// The queues of binding-table entries (`routing key SEP pattern SEP queue`)
/// whose routing key is `routing_key`.
fn bound_queues(members: Vec<crate::resp::Reply>, routing_key: &str) -> Vec<String> {
    members
        .into_iter()
        .filter_map(crate::resp::Reply::into_bytes)
        .filter_map(|m| {
            let m = String::from_utf8_lossy(&m).into_owned();
            let mut parts = m.split(SEP);
            let key = parts.next()?;
            let queue = parts.nth(1)?;
            (key == routing_key && !queue.is_empty()).then(|| queue.to_string())
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many revoked ids a worker keeps (Celery's `REVOKES_MAX`).
pub const REVOKES_MAX: usize = 50_000;
/// How long a worker keeps a revoked id (Celery's `REVOKE_EXPIRES`, 3 hours).
pub const REVOKE_EXPIRES: Duration = Duration::from_secs(3 * 3600);

/// The ids a worker was told to revoke: at most [`REVOKES_MAX`], each for
/// [`REVOKE_EXPIRES`], as Celery's `LimitedSet` keeps them. A revoke is
/// also stored as a REVOKED result record, which the worker reads before it
/// runs a task, so forgetting an old id here loses nothing the record keeps.
#[derive(Debug, Default)]
pub struct RevokedSet {
    /// When each id was revoked.
    ids: HashMap<String, Instant>,
    /// The same ids, oldest first (each id once: a repeated revoke keeps
    /// its first time, so this never holds stale entries).
    order: VecDeque<(Instant, String)>,
}

impl RevokedSet {
    /// Records `id` as revoked at `now`, then forgets the expired ids and,
    /// past [`REVOKES_MAX`], the oldest ones.
    pub fn insert(&mut self, id: String, now: Instant) {
        if !self.ids.contains_key(&id) {
            self.ids.insert(id.clone(), now);
            self.order.push_back((now, id));
        }
        while let Some((at, _)) = self.order.front() {
            let expired = now.saturating_duration_since(*at) > REVOKE_EXPIRES;
            if !expired && self.order.len() <= REVOKES_MAX {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Whether `id` was revoked less than [`REVOKE_EXPIRES`] before `now`.
    pub fn contains(&self, id: &str, now: Instant) -> bool {
        self.ids
            .get(id)
            .is_some_and(|at| now.saturating_duration_since(*at) <= REVOKE_EXPIRES)
    }

    /// How many ids are kept.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True if no id is kept.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns_match_node_names_as_fnmatch_does() {
        for (p, n, m) in [
            ("celery@*", "celery@host", true),
            ("*@host", "rusty@host", true),
            ("c?lery@h*t", "celery@host", true),
            ("celery@*", "rusty@host", false),
            ("*a*b", "xaxxb", true),
            ("*a*b", "xaxxbc", false),
            ("", "", true),
            ("**", "x", true),
        ] {
            assert_eq!(glob_match(p.as_bytes(), n.as_bytes()), m, "{p} {n}");
        }
    }

    #[test]
    fn a_destination_this_worker_cannot_read_is_not_for_it() {
        // kombu dispatches only when the node is `in` a non-empty
        // destination; one of another type (an object, a number, true)
        // must not be read as "everyone", or a `shutdown` addressed that
        // way stops every Rust worker.
        let me = "rusty@host";
        for odd in [json!({"other@host": 1}), json!(5), json!(true)] {
            let body = json!({"method": "shutdown", "destination": odd});
            assert!(!is_for(&body, me), "{body}");
        }
        for everyone in [json!(null), json!([]), json!("")] {
            let body = json!({"method": "ping", "destination": everyone});
            assert!(is_for(&body, me), "{body}");
        }
        assert!(is_for(&json!({"destination": [me]}), me));
        assert!(is_for(&json!({"destination": me}), me));
    }

    #[test]
    fn the_revoked_set_keeps_the_newest_50_000_ids_for_3_hours() {
        let t0 = Instant::now();
        let mut set = RevokedSet::default();
        for i in 0..=50_000 {
            set.insert(format!("id-{i}"), t0);
        }
        assert_eq!(set.len(), 50_000, "the set must stay bounded");
        assert!(!set.contains("id-0", t0), "the oldest id goes first");
        assert!(set.contains("id-50000", t0));
        assert!(set.contains("id-1", t0));
        // Three hours on, every id has expired, whether or not new ones come.
        let later = t0 + Duration::from_secs(3 * 3600 + 1);
        assert!(!set.contains("id-50000", later));
        set.insert("new".to_string(), later);
        assert_eq!(set.len(), 1);
        assert!(set.contains("new", later));
    }

    /// Captured from Celery 5.7's `app.control.revoke('abc-123')`.
    const PYTHON_REVOKE: &str = r#"{"body": "eyJtZXRob2QiOiAicmV2b2tlIiwgImFyZ3VtZW50cyI6IHsidGFza19pZCI6ICJhYmMtMTIzIiwgInRlcm1pbmF0ZSI6IGZhbHNlLCAic2lnbmFsIjogIlNJR1RFUk0ifSwgImRlc3RpbmF0aW9uIjogbnVsbCwgInBhdHRlcm4iOiBudWxsLCAibWF0Y2hlciI6IG51bGx9", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"clock": 1, "expires": 1796231339.32631}, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": "celery.pidbox", "routing_key": ""}, "priority": 0, "body_encoding": "base64", "delivery_tag": "73639bf8-981f-40a4-a4e0-fd27045bee44"}}"#;

    #[test]
    fn reads_python_revokes_and_writes_the_same_body() {
        assert_eq!(revoked_ids(PYTHON_REVOKE.as_bytes()), ["abc-123"]);
        let ours = revoke_message("abc-123");
        assert_eq!(revoked_ids(ours.as_bytes()), ["abc-123"]);
        let ours: Value = serde_json::from_str(&ours).unwrap();
        let theirs: Value = serde_json::from_str(PYTHON_REVOKE).unwrap();
        let body = |v: &Value| -> Value {
            serde_json::from_slice(&base64::decode(v["body"].as_str().unwrap()).unwrap()).unwrap()
        };
        assert_eq!(body(&ours), body(&theirs));
        assert_eq!(
            ours["properties"]["delivery_info"],
            theirs["properties"]["delivery_info"]
        );
        assert!(revoked_ids(b"{}").is_empty());
    }
}
