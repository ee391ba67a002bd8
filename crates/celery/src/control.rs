//! Celery's remote control over Redis: the `revoke` broadcast.
//!
//! A broadcast is a PUBLISH on `/<db>.celery.pidbox` (kombu's fanout
//! exchange `celery.pidbox`) of an envelope like a task message's, whose
//! body is `{"method", "arguments", "destination", "pattern", "matcher"}`.
//! Workers that are offline miss it (Celery keeps revoked ids in worker
//! memory only), which is why the executor also stores REVOKED in the
//! result backend and our worker checks that record before it runs a task.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::base64;
use crate::id::new_task_id;

/// The envelope of `app.control.revoke(task_id)`.
pub fn revoke_message(task_id: &str) -> String {
    let body = json!({
        "method": "revoke",
        "arguments": {"task_id": task_id, "terminate": false, "signal": "SIGTERM"},
        "destination": null, "pattern": null, "matcher": null,
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    json!({
        "body": base64::encode(body.to_string().as_bytes()),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        // Celery gives a broadcast a 1 s life; 10 s tolerates clock skew.
        "headers": {"clock": 1, "expires": now + 10.0},
        "properties": {
            "delivery_mode": 2,
            "delivery_info": {"exchange": "celery.pidbox", "routing_key": ""},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": new_task_id(),
        },
    })
    .to_string()
}

/// The task ids a control message revokes (one id or a list), if it is a revoke.
pub fn revoked_ids(raw: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(raw) else {
        return Vec::new();
    };
    let Some(body) = v
        .get("body")
        .and_then(Value::as_str)
        .and_then(base64::decode)
    else {
        return Vec::new();
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return Vec::new();
    };
    if body.get("method").and_then(Value::as_str) != Some("revoke") {
        return Vec::new();
    }
    match body.pointer("/arguments/task_id") {
        Some(Value::String(id)) => vec![id.clone()],
        Some(Value::Array(ids)) => ids
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
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
