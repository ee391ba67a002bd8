//! Celery's task message, protocol 2, as kombu's Redis transport stores it.
//!
//! The value pushed on the queue's list is a JSON envelope:
//! `{"body", "content-encoding", "content-type", "headers", "properties"}`,
//! where `body` is base64 of the JSON array `[args, kwargs, embed]`.
//! [`TaskMessage::to_json`] writes the same fields, in the same order, as a
//! Python client's `app.send_task` (checked against Celery 5.7 in
//! `tests/interop_python.rs`); [`TaskMessage::parse`] reads what a Python
//! client or ours wrote.

use serde_json::{json, Map, Value};

use crate::base64;
use crate::chord::GroupPart;
use crate::error::CeleryError;
use crate::id::new_task_id;
use crate::json;
use crate::limits::Limits;
use crate::registry::excerpt;
use crate::schedule::{format_iso8601, Timing};

/// Kombu's separator inside binding entries and priority queue names.
pub const SEP: &str = "\x06\x16";

/// One task message.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskMessage {
    /// The task's registered name, e.g. `tasks.add`.
    pub task: String,
    /// The task id (also the correlation id and the result key's suffix).
    pub id: String,
    /// Positional arguments (a JSON array).
    pub args: Value,
    /// Keyword arguments (a JSON object).
    pub kwargs: Value,
    /// The queue (routing key on the default exchange).
    pub queue: String,
    /// True when the broker handed this message out before (restored).
    pub redelivered: bool,
    /// Protocol 2's `embed` (the body's third part): `{"callbacks",
    /// "errbacks", "chain", "chord"}`, what to send when the task ends
    /// (see [`crate::canvas`]); all four `null` when there is nothing to send.
    pub embed: Value,
    /// The task whose chain or callback sent this one, if any.
    pub parent_id: Option<String>,
    /// The first task of the workflow this one belongs to (`None`: itself).
    pub root_id: Option<String>,
    /// When it may run: the `eta` and `expires` headers ([`crate::schedule`]).
    pub timing: Timing,
    /// The `timelimit` header's hard and soft limits ([`crate::limits`]).
    pub limits: Limits,
    /// The `group` and `group_index` headers: a chord's header task
    /// ([`crate::chord`]).
    pub group: Option<GroupPart>,
}

impl TaskMessage {
    /// A new message with a fresh id.
    pub fn new(task: &str, args: Value, queue: &str) -> TaskMessage {
        TaskMessage {
            task: task.to_string(),
            id: new_task_id(),
            args,
            kwargs: Value::Object(Map::new()),
            queue: queue.to_string(),
            redelivered: false,
            embed: no_embed(),
            parent_id: None,
            root_id: None,
            timing: Timing::default(),
            limits: Limits::default(),
            group: None,
        }
    }

    /// The JSON envelope a Python client would LPUSH.
    pub fn to_json(&self) -> String {
        // As it was read: one that is not an object is refused when run,
        // here as where it came from.
        let embed = match &self.embed {
            Value::Null => no_embed(),
            other => other.clone(),
        };
        let body = json!([self.args, self.kwargs, embed]);
        let argsrepr = cap_repr(repr_args(&self.args));
        let envelope = json!({
            "body": base64::encode(body.to_string().as_bytes()),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": self.task,
                "id": self.id,
                "shadow": null,
                "eta": self.timing.eta.map(format_iso8601),
                "expires": self.timing.expires.map(format_iso8601),
                "group": self.group.as_ref().map(|g| &g.id),
                "group_index": self.group.as_ref().and_then(|g| g.index),
                "retries": 0,
                "timelimit": [self.limits.hard, self.limits.soft],
                "root_id": self.root_id.as_deref().unwrap_or(&self.id),
                "parent_id": self.parent_id,
                "argsrepr": argsrepr,
                "kwargsrepr": cap_repr(self.kwargs.to_string()),
                "origin": origin(),
                "ignore_result": false,
                "replaced_task_nesting": 0,
                "stamped_headers": null,
                "stamps": {},
            },
            "properties": {
                "correlation_id": self.id,
                "reply_to": new_task_id(),
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": self.queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": new_task_id(),
            },
        });
        envelope.to_string()
    }

    /// Reads an envelope from the queue. Protocol 1 messages (task name in the
    /// body), other content types and unknown compressions are refused with
    /// the reason (see [`TaskMessage::read`] for who they were for).
    pub fn parse(raw: &[u8]) -> Result<TaskMessage, CeleryError> {
        TaskMessage::read(raw).map_err(|r| r.error)
    }

    /// [`parse`](Self::parse), and on refusal the task id and name when they
    /// are readable, so that the worker can store a FAILURE for that id
    /// (the client would otherwise wait for ever) and log who it was for.
    pub fn read(raw: &[u8]) -> Result<TaskMessage, Box<Refusal>> {
        let v = read_envelope(raw).map_err(|e| Box::new(Refusal::unreadable(e)))?;
        let headers = v.get("headers").unwrap_or(&Value::Null);
        let mut who = Refusal::of(headers);
        let props = v
            .get("properties")
            .ok_or_else(|| who.refuse(DECODE_ERROR, "no properties"))?;
        let body = v
            .get("body")
            .and_then(Value::as_str)
            .ok_or_else(|| who.refuse(DECODE_ERROR, "no body"))?;
        let body = match props.get("body_encoding").and_then(Value::as_str) {
            Some("base64") => base64::decode(body)
                .ok_or_else(|| who.refuse(DECODE_ERROR, "the body is not base64"))?,
            _ => body.as_bytes().to_vec(),
        };
        let body = decompress(headers, body).map_err(|why| who.refuse(CONTENT_DISALLOWED, &why))?;
        if who.task.is_none() && who.id.is_some() {
            // Protocol 2 by its id, without a name: refused for that id, so
            // that its client is told.
            return Err(who.refuse(INVALID_TASK, "no task name in the headers"));
        }
        if who.task.is_none() {
            // Protocol 1 keeps the task's name and id in the body.
            who = Refusal::of_protocol_1(&body);
            return Err(who.refuse(
                INVALID_TASK,
                "protocol 1 message (the task name is in the body, not the headers): \
                 this worker reads protocol 2 only (Celery's default; set task_protocol=2)",
            ));
        }
        let ctype = v.get("content-type").and_then(Value::as_str).unwrap_or("");
        if ctype != "application/json" {
            return Err(who.refuse(
                CONTENT_DISALLOWED,
                &format!(
                    "content-type {}: only application/json is supported \
                     (set task_serializer='json')",
                    excerpt(&format_args!("{ctype:?}"))
                ),
            ));
        }
        let (Some(task), Some(id)) = (who.task.clone(), who.id.clone()) else {
            return Err(who.refuse(INVALID_TASK, "no task id in the headers"));
        };
        let body = json::parse_python(&body).map_err(|why| who.refuse(DECODE_ERROR, &why))?;
        let (args, kwargs, embed) = match body {
            Value::Array(parts) if parts.len() >= 2 => {
                let mut parts = parts.into_iter();
                let args = parts.next().unwrap_or_default();
                let kwargs = parts.next().unwrap_or_default();
                // No embed (or null) is nothing to send after.
                let embed = parts.next().filter(|e| !e.is_null());
                (args, kwargs, embed.unwrap_or_else(no_embed))
            }
            _ => return Err(who.refuse(DECODE_ERROR, "the body is not [args, kwargs, embed]")),
        };
        let header = |name: &str| headers.get(name).and_then(Value::as_str).map(String::from);
        let queue = props
            .pointer("/delivery_info/routing_key")
            .and_then(Value::as_str)
            .unwrap_or("celery")
            .to_string();
        let redelivered = props
            .get("redelivered")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || headers
                .get("redelivered")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        Ok(TaskMessage {
            parent_id: header("parent_id"),
            // Our own messages name themselves; keep `None` for "itself".
            root_id: header("root_id").filter(|r| *r != id),
            task,
            id,
            args,
            kwargs,
            queue,
            redelivered,
            embed,
            timing: Timing::from_headers(headers),
            limits: Limits::from_headers(headers),
            group: GroupPart::from_headers(headers),
        })
    }
}

/// Celery's exception for a message it cannot decode (kombu's).
pub const DECODE_ERROR: (&str, &str) = ("kombu.exceptions", "DecodeError");
/// Celery's exception for a content type or compression it does not accept.
pub const CONTENT_DISALLOWED: (&str, &str) = ("kombu.exceptions", "ContentDisallowed");
/// Celery's exception for a message that is not a task it can run.
pub const INVALID_TASK: (&str, &str) = ("celery.exceptions", "InvalidTaskError");

/// A message the worker will not run: why, and for which task when the
/// message says so.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The task id, if readable: the worker stores a FAILURE under it.
    pub id: Option<String>,
    /// The task's name, if readable (for the log).
    pub task: Option<String>,
    /// The Python exception the FAILURE names: (module, class).
    pub exception: (&'static str, &'static str),
    /// Why, as the error [`TaskMessage::parse`] returns.
    pub error: CeleryError,
}

impl Refusal {
    /// Why, for the stored FAILURE (without [`CeleryError`]'s prefix).
    pub fn why(&self) -> String {
        match &self.error {
            CeleryError::Protocol(why) => why.clone(),
            other => other.to_string(),
        }
    }

    /// Not even the envelope could be read: nobody to tell.
    fn unreadable(error: CeleryError) -> Refusal {
        Refusal {
            id: None,
            task: None,
            exception: DECODE_ERROR,
            error,
        }
    }

    /// Who a protocol 2 message is for (its headers' `id` and `task`).
    fn of(headers: &Value) -> Refusal {
        let text = |name: &str| headers.get(name).and_then(Value::as_str).map(String::from);
        Refusal {
            id: text("id"),
            task: text("task"),
            ..Refusal::unreadable(CeleryError::Protocol(String::new()))
        }
    }

    /// Who a protocol 1 message is for (its body's `id` and `task`).
    fn of_protocol_1(body: &[u8]) -> Refusal {
        let body: Value = serde_json::from_slice(body).unwrap_or_default();
        Refusal::of(&body)
    }

    /// This refusal, for `why`.
    fn refuse(&self, exception: (&'static str, &'static str), why: &str) -> Box<Refusal> {
        Box::new(Refusal {
            exception,
            error: CeleryError::Protocol(why.to_string()),
            ..self.clone()
        })
    }
}

/// The most a compressed body may inflate to: 64 MiB. zlib inflates up to
/// about 1,000 times and bzip2 far more, so a message of a few KB (a
/// "decompression bomb") could otherwise make the worker allocate
/// gigabytes; a body past this is refused (`ContentDisallowed`, stored as
/// the task's FAILURE). Celery's own worker has no limit; arguments this
/// big belong in a file or a store, with their name in the message.
pub const MAX_BODY: usize = 64 << 20;

/// How much of the inflated body is read at a time.
const INFLATE_CHUNK: usize = 64 << 10;

/// The body without its compression (kombu's `compression` header): zlib
/// (what Celery's `compression='zlib'` and `'gzip'` both send, as
/// `application/x-gzip`) and bzip2 (`application/x-bz2`); any other
/// (`lzma`, `brotli`, `zstd`) is refused with the reason.
fn decompress(headers: &Value, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let Some(kind) = headers.get("compression").filter(|c| !c.is_null()) else {
        return Ok(body);
    };
    match kind.as_str() {
        Some("application/x-gzip" | "application/zlib" | "zlib" | "gzip") => {
            read_bounded(flate2::read::ZlibDecoder::new(body.as_slice()), "zlib")
        }
        Some("application/x-bz2" | "bzip2" | "bzip") => {
            read_bounded(bzip2::read::BzDecoder::new(body.as_slice()), "bzip2")
        }
        _ => Err(format!(
            "compression {}: this worker reads zlib, gzip and bzip2 only \
             (compression='zlib', 'gzip' or 'bzip2', or none)",
            excerpt(kind)
        )),
    }
}

/// All of `decoder`'s output, refused past [`MAX_BODY`] bytes.
fn read_bounded(decoder: impl std::io::Read, what: &str) -> Result<Vec<u8>, String> {
    read_at_most(decoder, MAX_BODY).map_err(|e| match e {
        Inflate::TooBig => format!(
            "the {what}-compressed body decompresses to more than {} MiB, this \
             worker's limit (MAX_BODY): send big arguments by reference (a file \
             name, a key) instead",
            MAX_BODY >> 20
        ),
        Inflate::Io(e) => format!("the {what}-compressed body does not decompress: {e}"),
    })
}

/// Why [`read_at_most`] stopped.
#[derive(Debug)]
enum Inflate {
    /// More than the limit.
    TooBig,
    Io(std::io::Error),
}

/// All of `decoder`'s output if it is at most `max` bytes. Read a chunk at
/// a time, and the buffer grows (doubling) to at most `max`: a
/// `read_to_end` would double it past the limit before seeing it.
fn read_at_most(mut decoder: impl std::io::Read, max: usize) -> Result<Vec<u8>, Inflate> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; INFLATE_CHUNK];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Inflate::Io(e)),
        };
        let len = out.len() + n;
        if len > max {
            return Err(Inflate::TooBig);
        }
        if len > out.capacity() {
            let grown = len.max(out.capacity() * 2).min(max);
            out.reserve_exact(grown - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// The `embed` of a message with nothing to send after it.
pub fn no_embed() -> Value {
    json!({"callbacks": null, "errbacks": null, "chain": null, "chord": null})
}

/// The most characters `argsrepr` and `kwargsrepr` quote, as Celery's
/// client (`Task.Request.argsrepr_maxsize`, 1024): the rest is cut and
/// marked `...`.
const REPR_MAX: usize = 1024;

/// `repr` cut to [`REPR_MAX`] characters, `...` marking the cut.
fn cap_repr(repr: String) -> String {
    match repr.char_indices().nth(REPR_MAX) {
        Some((cut, _)) => format!("{}...", &repr[..cut]),
        None => repr,
    }
}

/// Python's repr of an args tuple, close enough for `argsrepr` (only shown
/// in monitoring tools): `[1, 2]` becomes `(1, 2)`.
fn repr_args(args: &Value) -> String {
    match args {
        Value::Array(items) if items.len() == 1 => format!("({},)", items[0]),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(Value::to_string).collect();
            format!("({})", inner.join(", "))
        }
        other => other.to_string(),
    }
}

/// `gen<pid>@<host>`, as Celery's `origin` header.
pub fn origin() -> String {
    format!("gen{}@{}", std::process::id(), hostname())
}

/// This machine's host name (`/proc/sys/kernel/hostname`), or `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// The JSON envelope of a message. Its headers quote the arguments
/// (`argsrepr`, `kwargsrepr`): a lone surrogate there, which serde_json
/// refuses, is read as U+FFFD so that it hides neither the task id nor the
/// message from a restore; the body (base64) is read strictly, later.
pub fn read_envelope(raw: &[u8]) -> Result<Value, CeleryError> {
    serde_json::from_slice(raw)
        .or_else(|e| serde_json::from_slice(&json::without_surrogates(raw)).map_err(|_| e))
        .map_err(CeleryError::from)
}

/// Sets `redelivered: true` in a raw envelope's properties (what kombu does
/// when it restores an unacked message).
pub fn mark_redelivered(raw: &[u8]) -> Result<Vec<u8>, CeleryError> {
    let mut v = read_envelope(raw)?;
    if let Some(props) = v.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("redelivered".to_string(), Value::Bool(true));
    }
    Ok(serde_json::to_vec(&v)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message captured from Celery 5.7's `app.send_task('tasks.add', args=(1, 2))`.
    const PYTHON_ADD: &str = r#"{"body": "W1sxLCAyXSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "tasks.add", "id": "baf6cbc9-702c-4261-8df7-bd2a5ec92b0e", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "baf6cbc9-702c-4261-8df7-bd2a5ec92b0e", "parent_id": null, "argsrepr": "(1, 2)", "kwargsrepr": "{}", "origin": "gen13221@vm", "ignore_result": null, "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}, "properties": {"correlation_id": "baf6cbc9-702c-4261-8df7-bd2a5ec92b0e", "reply_to": "2ffdc6f9-70f9-356e-893c-68905be26871", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "ad39b02a-1fac-4295-895f-8e3c2e8a708a"}}"#;

    #[test]
    fn parses_a_python_clients_message() {
        let m = TaskMessage::parse(PYTHON_ADD.as_bytes()).unwrap();
        assert_eq!(m.task, "tasks.add");
        assert_eq!(m.id, "baf6cbc9-702c-4261-8df7-bd2a5ec92b0e");
        assert_eq!(m.args, json!([1, 2]));
        assert_eq!(m.kwargs, json!({}));
        assert_eq!(m.queue, "celery");
        assert!(!m.redelivered);
    }

    #[test]
    fn writes_the_same_envelope_a_python_client_does() {
        let mut m = TaskMessage::new("tasks.add", json!([1, 2]), "celery");
        m.id = "baf6cbc9-702c-4261-8df7-bd2a5ec92b0e".to_string();
        let ours: Value = serde_json::from_str(&m.to_json()).unwrap();
        let theirs: Value = serde_json::from_str(PYTHON_ADD).unwrap();
        // Same keys everywhere (key order is not significant in JSON), same
        // values except per-send ids and origin.
        let body = |v: &Value| -> Value {
            serde_json::from_slice(&base64::decode(v["body"].as_str().unwrap()).unwrap()).unwrap()
        };
        assert_eq!(body(&ours), body(&theirs));
        for key in ["content-encoding", "content-type"] {
            assert_eq!(ours[key], theirs[key]);
        }
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&ours["headers"]), keys(&theirs["headers"]));
        assert_eq!(keys(&ours["properties"]), keys(&theirs["properties"]));
        for h in [
            "task",
            "id",
            "root_id",
            "argsrepr",
            "kwargsrepr",
            "timelimit",
            "retries",
        ] {
            assert_eq!(ours["headers"][h], theirs["headers"][h], "{h}");
        }
        for p in [
            "correlation_id",
            "delivery_mode",
            "delivery_info",
            "priority",
            "body_encoding",
        ] {
            assert_eq!(ours["properties"][p], theirs["properties"][p], "{p}");
        }
        assert_eq!(TaskMessage::parse(m.to_json().as_bytes()).unwrap(), m);
    }

    #[test]
    fn a_message_keeps_its_eta_expires_time_limits_and_group_through_to_json() {
        let mut m = TaskMessage::new("tasks.add", json!([1, 2]), "celery");
        m.timing.eta = Some(1_796_664_600.123_456);
        m.timing.expires = Some(1_796_668_200.5);
        m.limits.hard = Some(30.0);
        m.limits.soft = Some(20.5);
        m.group = Some(GroupPart {
            id: "g1".to_string(),
            index: Some(3),
        });
        let again = TaskMessage::parse(m.to_json().as_bytes()).unwrap();
        assert_eq!(again.limits, m.limits);
        assert_eq!(again.group, m.group);
        assert!(again.timing.error.is_none(), "{:?}", again.timing);
        let close = |a: Option<f64>, b: Option<f64>| (a.unwrap() - b.unwrap()).abs() < 1e-6;
        assert!(close(again.timing.eta, m.timing.eta), "{:?}", again.timing);
        assert!(
            close(again.timing.expires, m.timing.expires),
            "{:?}",
            again.timing
        );
    }

    /// Celery's client cuts `argsrepr` and `kwargsrepr` at 1024 characters
    /// (`argsrepr_maxsize`): a big argument is not sent twice, once in the
    /// body and once in the headers.
    #[test]
    fn argsrepr_and_kwargsrepr_are_cut_as_celerys_are() {
        let big = "é".repeat(10_000);
        let mut m = TaskMessage::new("tasks.echo", json!([big.clone()]), "celery");
        m.kwargs = json!({ "text": big });
        let envelope: Value = serde_json::from_str(&m.to_json()).unwrap();
        for key in ["argsrepr", "kwargsrepr"] {
            let repr = envelope["headers"][key].as_str().unwrap();
            assert!(
                repr.chars().count() <= REPR_MAX + 3 && repr.ends_with("..."),
                "{key} is {} characters long",
                repr.chars().count()
            );
        }
        let small = TaskMessage::new("tasks.add", json!([1, 2]), "celery");
        let envelope: Value = serde_json::from_str(&small.to_json()).unwrap();
        assert_eq!(envelope["headers"]["argsrepr"], "(1, 2)");
        assert_eq!(envelope["headers"]["kwargsrepr"], "{}");
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        assert!(TaskMessage::parse(b"not json").is_err());
        let pickled = PYTHON_ADD.replace("application/json", "application/x-python-serialize");
        let e = TaskMessage::parse(pickled.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("only application/json"), "{e}");
        let redelivered = mark_redelivered(PYTHON_ADD.as_bytes()).unwrap();
        assert!(TaskMessage::parse(&redelivered).unwrap().redelivered);
    }

    /// A refusal (stored as the task's FAILURE, published, shown to a
    /// Python client) quotes what the message says in part, as the
    /// registry's refusals do: a content type, a compression or an eta of
    /// a megabyte must not come back a megabyte long.
    #[test]
    fn a_refusal_quotes_a_huge_header_in_part() {
        let huge = "x".repeat(1 << 20);
        let mut messages = Vec::new();
        let mut v: Value = serde_json::from_str(PYTHON_ADD).unwrap();
        v["content-type"] = Value::String(huge.clone());
        messages.push(serde_json::to_vec(&v).unwrap());
        messages.push(with_body(b"[[], {}, {}]", &[("compression", json!(huge))]));
        for raw in &messages {
            let m = TaskMessage::parse(raw).unwrap_err().to_string();
            assert!(m.len() < 2000, "{} bytes: {}...", m.len(), &m[..200]);
        }
        for header in ["eta", "expires"] {
            for value in [json!(huge), json!([huge])] {
                let raw = with_body(b"[[], {}, {}]", &[(header, value)]);
                let msg = TaskMessage::parse(&raw).unwrap();
                let Some(crate::meta::Outcome::Failure { message, .. }) =
                    crate::schedule::refusal(&msg)
                else {
                    panic!("an {header} of a megabyte was not refused");
                };
                assert!(
                    message.len() < 2000,
                    "{} bytes: {}...",
                    message.len(),
                    &message[..200]
                );
            }
        }
        let mut long_name: Value = serde_json::from_str(PYTHON_ADD).unwrap();
        long_name["headers"]["task"] = Value::String(huge.clone());
        long_name["headers"]["eta"] = json!("not a date");
        let msg = TaskMessage::parse(&serde_json::to_vec(&long_name).unwrap()).unwrap();
        let Some(crate::meta::Outcome::Failure { message, .. }) = crate::schedule::refusal(&msg)
        else {
            panic!("a bad eta was not refused");
        };
        assert!(
            message.len() < 2000,
            "{} bytes: {}...",
            message.len(),
            &message[..200]
        );
    }

    /// The same for the refusals of a time limit and of a canvas (a chain
    /// or callback this worker cannot honour): a megabyte in the message
    /// comes back in part.
    #[test]
    fn a_refusal_of_limits_or_a_canvas_quotes_in_part() {
        let huge = "x".repeat(1 << 20);
        let short = |m: String| {
            assert!(m.len() < 2000, "{} bytes: {}...", m.len(), &m[..200]);
        };
        let failure = |outcome: Option<crate::meta::Outcome>| match outcome {
            Some(crate::meta::Outcome::Failure { message, .. }) => message,
            other => panic!("not refused: {other:?}"),
        };
        for timelimit in [json!(huge), json!([huge, null]), json!([null, [huge]])] {
            let raw = with_body(b"[[], {}, {}]", &[("timelimit", timelimit)]);
            let msg = TaskMessage::parse(&raw).unwrap();
            short(failure(crate::limits::refusal(&msg, false)));
        }
        let mut long_name: Value = serde_json::from_str(PYTHON_ADD).unwrap();
        long_name["headers"]["task"] = Value::String(huge.clone());
        long_name["headers"]["timelimit"] = json!("not a pair");
        let msg = TaskMessage::parse(&serde_json::to_vec(&long_name).unwrap()).unwrap();
        short(failure(crate::limits::refusal(&msg, false)));
        short(failure(Some(crate::canvas::refused(&msg, "why"))));
        let embeds = [
            json!({"callbacks": [{"task": "t", "subtask_type": huge}]}),
            json!({"callbacks": [{"task": huge, "args": 1}]}),
            json!({"callbacks": [{"task": huge, "kwargs": 1}]}),
            json!({"callbacks": [{"task": huge, "options": 1}]}),
        ];
        let msg = TaskMessage::parse(PYTHON_ADD.as_bytes()).unwrap();
        for embed in embeds {
            let why = crate::canvas::Embed::parse(&embed).expect_err("refused");
            short(failure(Some(crate::canvas::refused(&msg, &why))));
        }
    }

    /// PYTHON_ADD with `body` (base64 of these bytes) and extra headers.
    fn with_body(body: &[u8], headers: &[(&str, Value)]) -> Vec<u8> {
        let mut v: Value = serde_json::from_str(PYTHON_ADD).unwrap();
        v["body"] = Value::String(base64::encode(body));
        for (k, h) in headers {
            v["headers"][k] = h.clone();
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn reads_zlib_compressed_bodies_as_celery_sends_them() {
        use std::io::Write;
        let body =
            br#"[[1, 2], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(body).unwrap();
        let zipped = z.finish().unwrap();
        let raw = with_body(&zipped, &[("compression", json!("application/x-gzip"))]);
        assert_eq!(TaskMessage::parse(&raw).unwrap().args, json!([1, 2]));
        let garbage = with_body(b"not zlib", &[("compression", json!("application/x-gzip"))]);
        let r = TaskMessage::read(&garbage).unwrap_err();
        assert_eq!(
            r.id.as_deref(),
            Some("baf6cbc9-702c-4261-8df7-bd2a5ec92b0e")
        );
        assert!(
            r.error.to_string().contains("does not decompress"),
            "{:?}",
            r.error
        );
    }

    #[test]
    fn a_lone_surrogate_in_the_headers_hides_nothing_and_survives_a_restore() {
        // The headers quote the arguments; the body here has none.
        let raw = with_body(b"[[], {}, {}]", &[("argsrepr", json!("x"))]);
        let raw = String::from_utf8(raw)
            .unwrap()
            .replace(r#""argsrepr":"x""#, r#""argsrepr":"('\ud800',)""#);
        assert!(raw.contains(r"\ud800"), "{raw}");
        let m = TaskMessage::parse(raw.as_bytes()).unwrap();
        assert_eq!(m.id, "baf6cbc9-702c-4261-8df7-bd2a5ec92b0e");
        // A restore marks it redelivered: it must stay readable.
        let marked = mark_redelivered(raw.as_bytes()).unwrap();
        assert!(TaskMessage::parse(&marked).unwrap().redelivered);
    }

    #[test]
    fn reads_bzip2_compressed_bodies() {
        use std::io::Write;
        let body = br#"[[1, 2], {}, {}]"#;
        let mut z = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        z.write_all(body).unwrap();
        let raw = with_body(
            &z.finish().unwrap(),
            &[("compression", json!("application/x-bz2"))],
        );
        assert_eq!(TaskMessage::parse(&raw).unwrap().args, json!([1, 2]));
        let garbage = with_body(b"BZh9", &[("compression", json!("application/x-bz2"))]);
        let r = TaskMessage::read(&garbage).unwrap_err();
        assert!(
            r.error.to_string().contains("bzip2-compressed"),
            "{:?}",
            r.error
        );
    }

    /// `len` zero bytes, compressed by `encoder` a chunk at a time (a
    /// bomb: a few KB that inflate to `len`).
    fn bomb<W: std::io::Write>(mut encoder: W, len: usize) -> W {
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..len / chunk.len() {
            encoder.write_all(&chunk).unwrap();
        }
        encoder
    }

    #[test]
    fn a_decompression_bomb_is_refused_for_its_task_past_max_body() {
        // 65 MiB of zeros: past the 64 MiB cap.
        let over = 65 << 20;
        let level = flate2::Compression::best();
        let zlib = bomb(flate2::write::ZlibEncoder::new(Vec::new(), level), over);
        let zlib = zlib.finish().unwrap();
        let bzip2 = bomb(
            bzip2::write::BzEncoder::new(Vec::new(), Default::default()),
            over,
        );
        let bzip2 = bzip2.finish().unwrap();
        for (bytes, kind) in [(zlib, "application/x-gzip"), (bzip2, "application/x-bz2")] {
            assert!(
                bytes.len() < 100 << 10,
                "{kind}: a {}-byte bomb",
                bytes.len()
            );
            let raw = with_body(&bytes, &[("compression", json!(kind))]);
            let r = TaskMessage::read(&raw).unwrap_err();
            // For its task id: the worker stores this FAILURE under it.
            assert_eq!(
                r.id.as_deref(),
                Some("baf6cbc9-702c-4261-8df7-bd2a5ec92b0e")
            );
            assert_eq!(r.exception, CONTENT_DISALLOWED, "{kind}: {}", r.why());
            assert!(
                r.why().contains("decompresses to more than 64 MiB"),
                "{kind}: {}",
                r.why()
            );
        }
    }

    #[test]
    fn inflating_never_allocates_past_the_limit() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let read = read_at_most(bytes.as_slice(), bytes.len()).unwrap();
        assert_eq!(read, bytes);
        assert!(read.capacity() <= bytes.len(), "{}", read.capacity());
        let over = read_at_most(bytes.as_slice(), bytes.len() - 1);
        assert!(matches!(over, Err(Inflate::TooBig)), "{over:?}");
    }

    #[test]
    fn the_last_microsecond_python_can_date_survives_to_json() {
        // As a f64, 9999-12-31T23:59:59.999999 rounds up to the next
        // second (its step there is 30 µs): to_json wrote year 10000,
        // which the worker refuses as no date.
        for header in ["eta", "expires"] {
            let mut v: Value = serde_json::from_str(PYTHON_ADD).unwrap();
            v["headers"][header] = json!("9999-12-31T23:59:59.999999+00:00");
            let m = TaskMessage::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
            assert_eq!(m.timing.error, None, "{header}");
            let again = TaskMessage::parse(m.to_json().as_bytes()).unwrap();
            assert_eq!(again.timing.error, None, "{header}: {}", m.to_json());
        }
    }

    #[test]
    fn headers_with_an_id_but_no_task_name_are_refused_for_that_id() {
        // Found by the celery_envelope fuzz target.
        let mut v: Value = serde_json::from_str(PYTHON_ADD).unwrap();
        v["headers"].as_object_mut().unwrap().remove("task");
        let r = TaskMessage::read(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(
            r.id.as_deref(),
            Some("baf6cbc9-702c-4261-8df7-bd2a5ec92b0e"),
            "{}",
            r.why()
        );
        assert_eq!(r.exception, INVALID_TASK);
        assert!(r.why().contains("no task name"), "{}", r.why());
    }

    #[test]
    fn an_embed_survives_to_json_as_the_worker_reads_it() {
        // Found by the celery_message fuzz target: a body without its
        // third part read back with an embed, and an embed the worker
        // refuses (not an object) was written as "nothing to send after".
        for (body, embed) in [
            (&b"[[1], {}]"[..], no_embed()),
            (b"[[1], {}, null]", no_embed()),
            (b"[[1], {}, 5]", json!(5)),
            (b"[[1], {}, {\"chain\": null}]", json!({"chain": null})),
        ] {
            let m = TaskMessage::parse(&with_body(body, &[])).unwrap();
            assert_eq!(m.embed, embed, "{}", String::from_utf8_lossy(body));
            let again = TaskMessage::parse(m.to_json().as_bytes()).unwrap();
            assert_eq!(again.embed, embed, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_refusal_names_the_task_and_celerys_exception() {
        let lzma = with_body(b"x", &[("compression", json!("application/x-lzma"))]);
        let r = TaskMessage::read(&lzma).unwrap_err();
        assert_eq!(r.exception, CONTENT_DISALLOWED);
        assert_eq!(r.task.as_deref(), Some("tasks.add"));
        assert!(
            r.error.to_string().contains("zlib, gzip and bzip2 only"),
            "{:?}",
            r.error
        );
        // Protocol 1: the task's name and id are in the body.
        let body = br#"{"task": "tasks.add", "id": "p1-id", "args": [1, 2], "kwargs": {}}"#;
        let old = with_body(body, &[("task", Value::Null), ("id", Value::Null)]);
        let r = TaskMessage::read(&old).unwrap_err();
        assert_eq!(
            (r.id.as_deref(), r.exception),
            (Some("p1-id"), INVALID_TASK)
        );
        // NaN in the arguments: refused, for this id.
        let r = TaskMessage::read(&with_body(b"[[NaN], {}, {}]", &[])).unwrap_err();
        assert_eq!((r.id.is_some(), r.exception), (true, DECODE_ERROR));
        assert!(TaskMessage::read(b"[").unwrap_err().id.is_none());
    }
}
