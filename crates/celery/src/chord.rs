//! Chords on the Redis result backend, as Celery 5.7's Redis backend runs
//! them (`RedisBackend.on_chord_part_return`).
//!
//! A Python client's `chord(header)(body)` stores the header's size under
//! `celery-taskset-meta-<group>.s` and sends each header task as a plain
//! task message whose headers name the group (`group`, `group_index`) and
//! whose `embed.chord` is the body's signature. Each header task that ends
//! (success or failure) runs one Lua script, [`PART_RETURN_LUA`] (Celery's
//! own, verbatim), that adds `[1, task id, state, result]` to the group's
//! ordered join key `.j` (once per task and index: `.d`), counts the parts
//! and, when all are in, takes the right to send the body (`.c`, a claim
//! with a token). The worker that took it reads the parts in header order
//! and:
//!
//! * all succeeded: sends the body with the list of results prepended to
//!   its args, then deletes the chord's keys and marks it done
//!   ([`CLEANUP_LUA`], Celery's too), so a late duplicate part is ignored;
//! * one failed or was revoked: stores FAILURE `ChordError("Dependency <id>
//!   raised <exception>")` for the body, and deletes the size key, as
//!   Celery does.
//!
//! A body that is a group gets the same list in each of its tasks (and a
//! failure is stored for each), as Celery's `group.delay(results)`.
//!
//! The worker runs this *before* it stores the header task's result and
//! acks it: a worker that dies in between has its message redelivered, the
//! task runs again, and the script's `.d` set and done marker make the
//! second report a no-op. One window is Celery's too: a worker that dies
//! after sending the body but before the cleanup leaves the claim to
//! expire (10 s), after which the rerun header task sends the body again. Not supported (refused before the header task
//! runs, see [`crate::canvas`]): a body that is a chain or a chord,
//! a header saved as a nested `GroupResult`, and the body's `link_error`
//! on a chord error (Celery calls it; we store the body's failure only).

use serde_json::{json, Value};

use crate::canvas::Signature;
use crate::connection_pool::Pool;
use crate::error::CeleryError;
use crate::id::new_task_id;
use crate::message::TaskMessage;
use crate::meta::{result_key, Outcome};
use crate::resp::Reply;

/// Celery 5.7's `CHORD_PART_RETURN_LUA` (celery/backends/redis.py).
pub const PART_RETURN_LUA: &str = r#"
local jkey, tkey, skey, dkey, gkey, ckey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local tid, value, ordered, score = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local expires, group_expires = tonumber(ARGV[5]), tonumber(ARGV[6])
local claim_expires = tonumber(ARGV[7])
local claim_token = ARGV[8]

-- Prevent late duplicates from recreating chord state after successful cleanup.
local done_marker = redis.call('GET', ckey)
if done_marker == 'done' then
    return {-1, 0, 0, 0}
end

-- Key the check on the task id and header index, so it doesn't merge two
-- header entries that share the task id of a reused frozen signature.
local member = tid .. ':' .. score
if redis.call('SISMEMBER', dkey, member) == 0 then
    if ordered == '1' then
        redis.call('ZADD', jkey, score, value)
    else
        redis.call('RPUSH', jkey, value)
    end
    redis.call('SADD', dkey, member)
end
local readycount
if ordered == '1' then
    readycount = redis.call('ZCOUNT', jkey, '-inf', '+inf')
else
    readycount = redis.call('LLEN', jkey)
end
if expires > 0 then
    for _, key in ipairs({jkey, tkey, skey, dkey}) do
        redis.call('EXPIRE', key, expires)
    end
    if group_expires > 0 then
        redis.call('EXPIRE', gkey, group_expires)
    end
end

local totaldiff = redis.call('GET', tkey)
local size = redis.call('GET', skey)
local claimed = 0
if size and readycount == tonumber(size) + tonumber(totaldiff or 0) then
    if redis.call('SET', ckey, claim_token, 'NX', 'EX', claim_expires) then
        claimed = 1
    end
end

return {readycount, totaldiff, size, claimed}
"#;

/// Celery 5.7's `CHORD_CLEANUP_LUA`: deletes the chord's keys and marks it
/// done, if the claim is still ours.
pub const CLEANUP_LUA: &str = r#"
local ckey = KEYS[1]
local jkey = KEYS[2]
local tkey = KEYS[3]
local skey = KEYS[4]
local dkey = KEYS[5]
local token = ARGV[1]
local done_expires = tonumber(ARGV[2])

if redis.call('GET', ckey) == token then
    redis.call('DEL', jkey, tkey, skey, dkey)
    if done_expires and done_expires > 0 then
        redis.call('SET', ckey, 'done', 'EX', done_expires)
    end
    return 1
end
return 0
"#;

/// How long the right to send the body is held: Celery's default
/// (`max(5, 2 * result_chord_join_timeout)`, the timeout being 5 s).
const CLAIM_SECS: &str = "10";
/// How long the done marker stays: Celery's `max(2 * claim, 300)`.
const DONE_SECS: &str = "300";

/// The header task's place in its chord: the `group` and `group_index`
/// headers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupPart {
    /// The group id (`celery-taskset-meta-<id>` keys).
    pub id: String,
    /// Its index in the header (`None`: unordered, scored `+inf`).
    pub index: Option<i64>,
}

impl GroupPart {
    /// Reads the `group` and `group_index` headers (`None`: no group).
    pub fn from_headers(headers: &Value) -> Option<GroupPart> {
        let id = headers.get("group").and_then(Value::as_str)?;
        Some(GroupPart {
            id: id.to_string(),
            index: headers.get("group_index").and_then(Value::as_i64),
        })
    }
}

/// A chord's body: one task, or a group of tasks that each get the
/// header's results (Celery's `callback.delay(results)` on a group).
#[derive(Clone, Debug, PartialEq)]
pub enum ChordBody {
    /// `chord(header)(task)`.
    Task(Signature),
    /// `chord(header)(group(tasks))`.
    Group(Vec<Signature>),
}

impl ChordBody {
    /// Reads `embed.chord`; a body that is a chain or a chord, or a group
    /// of those, is refused with the reason.
    pub fn parse(body: &Value) -> Result<ChordBody, String> {
        if body.get("subtask_type").and_then(Value::as_str) != Some("group") {
            return Signature::parse(body, 0).map(ChordBody::Task);
        }
        let tasks = body
            .pointer("/kwargs/tasks")
            .and_then(Value::as_array)
            .ok_or_else(|| "a chord's group body has no list of tasks".to_string())?;
        let tasks: Result<Vec<Signature>, String> =
            tasks.iter().map(|t| Signature::parse(t, 0)).collect();
        Ok(ChordBody::Group(tasks?))
    }

    /// The messages that run the body on the header's `results`.
    fn messages(&self, results: Vec<Value>, parent: &TaskMessage) -> Vec<TaskMessage> {
        let prepend = [Value::Array(results)];
        match self {
            ChordBody::Task(task) => vec![task.message(&prepend, &[], parent)],
            ChordBody::Group(tasks) => tasks
                .iter()
                .map(|t| t.message(&prepend, &[], parent))
                .collect(),
        }
    }

    /// The task ids a client waits on: the body's, or each group task's.
    fn task_ids(&self) -> Vec<String> {
        let tasks = match self {
            ChordBody::Task(task) => std::slice::from_ref(task),
            ChordBody::Group(tasks) => tasks.as_slice(),
        };
        tasks.iter().filter_map(Signature::task_id).collect()
    }
}

/// The chord's keys, in the order the scripts take them.
struct Keys {
    j: String,
    t: String,
    s: String,
    d: String,
    g: String,
    c: String,
}

impl Keys {
    fn of(group: &str) -> Keys {
        let g = format!("celery-taskset-meta-{group}");
        let key = |suffix: &str| format!("{g}{suffix}");
        Keys {
            j: key(".j"),
            t: key(".t"),
            s: key(".s"),
            d: key(".d"),
            c: key(".c"),
            g,
        }
    }
}

/// Reports header task `msg`'s `outcome` to its chord (whose body is
/// `body`), and sends the body or stores its failure if this was the last
/// part. `expires` is the result lifetime in seconds. An `Err` means the
/// report may not have been made: the caller must not ack the message.
pub(crate) fn part_return(
    broker: &Pool,
    backend: &Pool,
    msg: &TaskMessage,
    body: &ChordBody,
    outcome: &Outcome,
    expires: u64,
) -> Result<(), CeleryError> {
    let Some(group) = &msg.group else {
        return Ok(()); // not a chord's header task (as Celery: no group, no report)
    };
    let keys = Keys::of(&group.id);
    // The part is what the task's own record holds as its result; read as
    // deep as the worker reads arguments (serde_json alone stops at 128).
    let record = crate::json::parse_python(outcome.to_json(&msg.id).as_bytes())
        .map_err(CeleryError::Json)?;
    let part = json!([1, msg.id, outcome.status(), record["result"]]).to_string();
    let score = group.index.map_or("+inf".to_string(), |i| i.to_string());
    let (expires, token) = (expires.to_string(), new_task_id());
    let reply = backend.with(|c| {
        c.command(&[
            b"EVAL",
            PART_RETURN_LUA.as_bytes(),
            b"6",
            keys.j.as_bytes(),
            keys.t.as_bytes(),
            keys.s.as_bytes(),
            keys.d.as_bytes(),
            keys.g.as_bytes(),
            keys.c.as_bytes(),
            msg.id.as_bytes(),
            part.as_bytes(),
            b"1",
            score.as_bytes(),
            expires.as_bytes(),
            expires.as_bytes(),
            CLAIM_SECS.as_bytes(),
            token.as_bytes(),
        ])?
        .ok()
    })?;
    let mut fields = reply.into_array().into_iter();
    let int = |r: Option<Reply>| match r {
        Some(Reply::Integer(n)) => Some(n),
        Some(Reply::Bulk(Some(b))) => std::str::from_utf8(&b).ok()?.parse().ok(),
        _ => None,
    };
    let (ready, diff, size, claimed) = (
        int(fields.next()),
        int(fields.next()),
        int(fields.next()),
        int(fields.next()),
    );
    let (Some(ready), Some(size)) = (ready, size) else {
        return Ok(()); // done already (-1), or no size stored: not ours to finish
    };
    if ready != size + diff.unwrap_or(0) || claimed != Some(1) {
        return Ok(()); // parts still missing, or another worker finishes it
    }
    let parts = backend.with(|c| {
        c.command(&[b"ZRANGE", keys.j.as_bytes(), b"0", b"-1"])?
            .ok()
    })?;
    match joined(parts.into_array()) {
        Ok(results) => {
            let messages = body.messages(results, msg);
            let sent = broker.with(|c| {
                for next in &messages {
                    c.queue(&[b"LPUSH", next.queue.as_bytes(), next.to_json().as_bytes()]);
                }
                c.flush()?;
                for _ in &messages {
                    c.read_reply()?.ok()?;
                }
                Ok(())
            });
            // Cleaned up even if sending failed, as Celery's `finally`.
            let cleaned = backend.with(|c| {
                c.command(&[
                    b"EVAL",
                    CLEANUP_LUA.as_bytes(),
                    b"5",
                    keys.c.as_bytes(),
                    keys.j.as_bytes(),
                    keys.t.as_bytes(),
                    keys.s.as_bytes(),
                    keys.d.as_bytes(),
                    token.as_bytes(),
                    DONE_SECS.as_bytes(),
                ])?
                .ok()
            });
            sent?;
            cleaned?;
        }
        Err(error) => {
            let ids = body.task_ids();
            backend.with(|c| {
                for id in &ids {
                    let (key, record) = (result_key(id), error.to_json(id));
                    c.queue(&[
                        b"SETEX",
                        key.as_bytes(),
                        expires.as_bytes(),
                        record.as_bytes(),
                    ]);
                    c.queue(&[b"PUBLISH", key.as_bytes(), record.as_bytes()]);
                }
                // A copy of a header task that arrives later does not fail
                // the chord again (Celery deletes the size too).
                c.queue(&[b"DEL", keys.s.as_bytes()]);
                c.flush()?;
                for _ in 0..(2 * ids.len() + 1) {
                    c.read_reply()?.ok()?;
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// The header's results in order, or the body's `ChordError` for the first
/// part that failed or was revoked (Celery's `PROPAGATE_STATES`).
fn joined(parts: Vec<Reply>) -> Result<Vec<Value>, Outcome> {
    let mut results = Vec::with_capacity(parts.len());
    for raw in parts.into_iter().filter_map(Reply::into_bytes) {
        let part = crate::json::parse_python(&raw).unwrap_or(Value::Null);
        let (tid, state) = (part[1].as_str().unwrap_or("?"), part[2].as_str());
        let result = part[3].clone();
        match state {
            Some("SUCCESS") => results.push(result),
            Some("FAILURE" | "REVOKED") => return Err(chord_error(tid, &result)),
            // An unreadable part: say so rather than pass it on.
            _ => {
                return Err(chord_error(
                    tid,
                    &json!({"exc_type": "ValueError", "exc_message": ["an unreadable chord part"]}),
                ))
            }
        }
    }
    Ok(results)
}

/// `ChordError("Dependency <id> raised <Type>('<message>')")`, Celery's
/// text for a failed header task.
fn chord_error(tid: &str, exc: &Value) -> Outcome {
    let exc_type = exc["exc_type"].as_str().unwrap_or("Exception");
    let message = match &exc["exc_message"] {
        Value::Array(args) if args.len() == 1 => match &args[0] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        other => other.to_string(),
    };
    Outcome::Failure {
        exc_type: "ChordError".to_string(),
        exc_module: Some("celery.exceptions".to_string()),
        message: format!("Dependency {tid} raised {exc_type}('{message}')"),
        traceback: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_part_is_the_bodys_chord_error_with_celerys_text() {
        let ok =
            |v: Value| Reply::Bulk(Some(json!([1, "a", "SUCCESS", v]).to_string().into_bytes()));
        assert_eq!(
            joined(vec![ok(json!(3)), ok(json!([7]))]),
            Ok(vec![json!(3), json!([7])])
        );
        let failed = Reply::Bulk(Some(
            json!([1, "b", "FAILURE", {"exc_type": "RustTaskError", "exc_message": ["boom"],
                                       "exc_module": null}])
            .to_string()
            .into_bytes(),
        ));
        match joined(vec![ok(json!(3)), failed]) {
            Err(Outcome::Failure {
                exc_type, message, ..
            }) => {
                assert_eq!(exc_type, "ChordError");
                assert_eq!(message, "Dependency b raised RustTaskError('boom')");
            }
            other => panic!("{other:?}"),
        }
        let garbage = Reply::Bulk(Some(b"not json".to_vec()));
        assert!(joined(vec![garbage]).is_err());
    }

    #[test]
    fn reads_the_group_headers() {
        let part = GroupPart::from_headers(&json!({"group": "g", "group_index": 2})).unwrap();
        assert_eq!((part.id.as_str(), part.index), ("g", Some(2)));
        assert_eq!(GroupPart::from_headers(&json!({"group": null})), None);
    }
}
