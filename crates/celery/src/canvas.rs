//! Protocol 2's `embed`: chains, link callbacks and errbacks, handled the
//! way Celery's worker handles them (`celery/app/trace.py`,
//! `celery/backends/base.py`).
//!
//! A message's body is `[args, kwargs, embed]`, and `embed` says what to
//! send when the task ends:
//!
//! * `chain`: the rest of a chain, *last element next*. On success the
//!   worker sends that element with the result prepended to its args, and
//!   the remaining elements as the new message's chain.
//! * `callbacks` (`link`): on success, each is sent with the result
//!   prepended.
//! * `errbacks` (`link_error`): on failure, each is sent with the failed
//!   task's id prepended (what Celery does with an errback it cannot call
//!   in-process, as a Rust worker cannot call a Python function); and the
//!   failure is also stored for every chain element that has a task id, so
//!   that a client waiting for the chain's last task gets the error instead
//!   of waiting for ever.
//!
//! A signature is `{"task", "args", "kwargs", "options", "subtask_type",
//! "immutable"}`; an immutable one (`.si()`) gets nothing prepended.
//! Its options may name the new task's id (`task_id`), its `queue`, and
//! its own `link` / `link_error`.
//!
//! * `chord`: this task is a header task of a chord whose body this is;
//!   the worker reports its result to Celery's Redis chord counter
//!   ([`crate::chord`]), and the last one sends the body.
//!
//! A group or chain where a single signature is expected (a group in
//! `link`, a chord whose body is a group) is not supported:
//! [`Embed::parse`] refuses it, and the worker then stores a FAILURE that
//! says why *without running the task*, so nothing half-runs.

use serde_json::{json, Map, Value};

use crate::chord::ChordBody;
use crate::id::new_task_id;
use crate::message::TaskMessage;
use crate::meta::Outcome;
use crate::registry::excerpt;

/// How deep `link`s inside signatures' options may nest.
const MAX_DEPTH: usize = 8;

/// One signature to send: a task name and its partial arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    task: String,
    args: Vec<Value>,
    kwargs: Value,
    options: Map<String, Value>,
    immutable: bool,
}

/// What a message asks for after its task: see the module docs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Embed {
    callbacks: Vec<Signature>,
    errbacks: Vec<Signature>,
    /// The rest of the chain; the last element is the next task.
    chain: Vec<Signature>,
    /// The body of the chord this task is a header task of
    /// ([`crate::chord`]).
    pub(crate) chord: Option<ChordBody>,
}

/// What the worker sends and stores after a task, besides its own result.
#[derive(Debug, Default)]
pub struct FollowUps {
    /// New task messages (chain step, callbacks or errbacks).
    pub messages: Vec<TaskMessage>,
    /// Other task ids that get the same result record (the chain's
    /// remaining tasks, after a failure).
    pub same_result: Vec<String>,
}

impl Embed {
    /// Reads a message's `embed` (`null` or missing parts: nothing to
    /// send). `Err` says what this worker cannot honour.
    pub fn parse(embed: &Value) -> Result<Embed, String> {
        let Some(embed) = embed.as_object() else {
            return match embed {
                Value::Null => Ok(Embed::default()),
                _ => Err("the message's embed is not an object".to_string()),
            };
        };
        let chord = match embed.get("chord") {
            None | Some(Value::Null) => None,
            Some(body) => Some(ChordBody::parse(body)?),
        };
        Ok(Embed {
            callbacks: signatures(embed.get("callbacks"), 0)?,
            errbacks: signatures(embed.get("errbacks"), 0)?,
            chain: signatures(embed.get("chain"), 0)?,
            chord,
        })
    }

    /// The messages to send (and the ids to store the same result under)
    /// after task `msg` ended with `outcome`.
    pub fn follow_ups(&self, msg: &TaskMessage, outcome: &Outcome) -> FollowUps {
        let mut out = FollowUps::default();
        match outcome {
            Outcome::Success(result) => {
                let prepend = std::slice::from_ref(result);
                for callback in &self.callbacks {
                    out.messages.push(callback.message(prepend, &[], msg));
                }
                if let Some((next, rest)) = self.chain.split_last() {
                    out.messages.push(next.message(prepend, rest, msg));
                }
            }
            Outcome::Failure { .. } => {
                out.same_result = self.chain.iter().filter_map(Signature::task_id).collect();
                let prepend = [Value::String(msg.id.clone())];
                for errback in &self.errbacks {
                    out.messages.push(errback.message(&prepend, &[], msg));
                }
            }
            Outcome::Revoked | Outcome::Expired | Outcome::Terminated => {}
        }
        out
    }
}

/// The task ids of a raw `embed`'s chain and of its chord's body, read
/// leniently: for an `embed` [`Embed::parse`] refused, so that those who
/// wait for the chain's last task or the chord's body (a client polling
/// its state) still get the failure.
pub fn chain_task_ids(embed: &Value) -> Vec<String> {
    let id = |s: &Value| {
        s.pointer("/options/task_id")
            .and_then(Value::as_str)
            .map(String::from)
    };
    let chain = embed.get("chain").and_then(Value::as_array);
    let chord_body = embed.get("chord");
    // A group body's own tasks are what its client waits on.
    let group_tasks = chord_body
        .and_then(|b| b.pointer("/kwargs/tasks"))
        .and_then(Value::as_array);
    chain
        .into_iter()
        .flatten()
        .chain(chord_body)
        .chain(group_tasks.into_iter().flatten())
        .filter_map(id)
        .collect()
}

/// The failure stored for a task whose `embed` this worker cannot honour.
pub fn refused(msg: &TaskMessage, why: &str) -> Outcome {
    Outcome::Failure {
        exc_type: "NotImplementedError".to_string(),
        exc_module: Some("builtins".to_string()),
        message: format!(
            "task {} ({}) did not run: {why}; this Rust worker supports chains, \
             link and link_error of single tasks, and chords whose body is a single \
             task or a group of single tasks",
            excerpt(&msg.task),
            excerpt(&msg.id)
        ),
        traceback: None,
    }
}

fn unsupported(what: &str) -> String {
    format!(
        "the message asks for a {}, which this worker does not support",
        excerpt(&what)
    )
}

/// A list of signatures (`null` or missing: none; one object: one).
fn signatures(v: Option<&Value>, depth: usize) -> Result<Vec<Signature>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|s| Signature::parse(s, depth)).collect(),
        Some(one @ Value::Object(_)) => Ok(vec![Signature::parse(one, depth)?]),
        Some(_) => Err("a callback list is neither a list nor a signature".to_string()),
    }
}

impl Signature {
    pub(crate) fn parse(v: &Value, depth: usize) -> Result<Signature, String> {
        if depth > MAX_DEPTH {
            return Err(format!("links nest deeper than {MAX_DEPTH}"));
        }
        let sig = v
            .as_object()
            .ok_or_else(|| "a signature is not an object".to_string())?;
        if let Some(kind) = sig.get("subtask_type").and_then(Value::as_str) {
            // "group", "chord", "chain", "xmap", "chunks"...
            return Err(unsupported(kind));
        }
        let task = sig
            .get("task")
            .and_then(Value::as_str)
            .ok_or_else(|| "a signature has no task name".to_string())?;
        let quoted = || excerpt(&task); // it comes from the message
        let args = match sig.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(format!("the args of signature {} are not a list", quoted())),
        };
        let kwargs = match sig.get("kwargs") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(k @ Value::Object(_)) => k.clone(),
            Some(_) => {
                return Err(format!(
                    "the kwargs of signature {} are not a dict",
                    quoted()
                ))
            }
        };
        let options = match sig.get("options") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(_) => {
                return Err(format!(
                    "the options of signature {} are not a dict",
                    quoted()
                ))
            }
        };
        if !options.get("chord").is_none_or(Value::is_null) {
            return Err(unsupported("chord"));
        }
        // Its own links become the new message's embed: check them now,
        // so that nothing is refused after the task ran.
        signatures(options.get("link"), depth + 1)?;
        signatures(options.get("link_error"), depth + 1)?;
        Ok(Signature {
            task: task.to_string(),
            args,
            kwargs,
            options,
            immutable: sig.get("immutable").and_then(Value::as_bool) == Some(true),
        })
    }

    pub(crate) fn task_id(&self) -> Option<String> {
        self.options
            .get("task_id")
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// The message that applies this signature after `parent`: `prepend`
    /// before its args (unless immutable), `chain` as the rest of the chain.
    pub(crate) fn message(
        &self,
        prepend: &[Value],
        chain: &[Signature],
        parent: &TaskMessage,
    ) -> TaskMessage {
        let mut args = if self.immutable {
            Vec::new()
        } else {
            prepend.to_vec()
        };
        args.extend(self.args.iter().cloned());
        let queue = self
            .options
            .get("queue")
            .and_then(Value::as_str)
            .unwrap_or("celery");
        let raw_chain: Vec<Value> = chain.iter().map(Signature::to_json).collect();
        let or_null = |v: Option<&Value>| v.cloned().unwrap_or(Value::Null);
        TaskMessage {
            task: self.task.clone(),
            id: self.task_id().unwrap_or_else(new_task_id),
            args: Value::Array(args),
            kwargs: self.kwargs.clone(),
            queue: queue.to_string(),
            redelivered: false,
            embed: json!({
                "callbacks": or_null(self.options.get("link")),
                "errbacks": or_null(self.options.get("link_error")),
                "chain": if raw_chain.is_empty() { Value::Null } else { Value::Array(raw_chain) },
                "chord": null,
            }),
            parent_id: Some(parent.id.clone()),
            root_id: Some(parent.root_id.clone().unwrap_or_else(|| parent.id.clone())),
            timing: Default::default(),
            limits: Default::default(),
            group: None,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "options": self.options,
            "subtask_type": null,
            "immutable": self.immutable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain of a Python client's `chain(add.s(1, 2), add.s(10)).apply_async()`
    /// (Celery 5.7): the second task's signature, frozen with its id.
    const PYTHON_CHAIN: &str = r#"{"callbacks": null, "errbacks": null, "chain": [{"task": "rust.add", "args": [10], "kwargs": {}, "options": {"task_id": "8794dfcb-8dd0-4e81-b575-d4049570bdfc", "reply_to": "8d84f3f5-2052-338d-9441-dc0524696ab4"}, "subtask_type": null, "immutable": false}], "chord": null}"#;

    fn parent() -> TaskMessage {
        TaskMessage::new("rust.add", json!([1, 2]), "celery")
    }

    #[test]
    fn a_chain_sends_its_next_task_with_the_result_prepended() {
        let embed = Embed::parse(&serde_json::from_str(PYTHON_CHAIN).unwrap()).unwrap();
        let p = parent();
        let out = embed.follow_ups(&p, &Outcome::Success(json!(3)));
        assert_eq!(out.messages.len(), 1);
        let next = &out.messages[0];
        assert_eq!(next.id, "8794dfcb-8dd0-4e81-b575-d4049570bdfc");
        assert_eq!(next.args, json!([3, 10]));
        assert_eq!(next.parent_id.as_deref(), Some(p.id.as_str()));
        assert_eq!(next.root_id.as_deref(), Some(p.id.as_str()));
        assert_eq!(next.embed["chain"], Value::Null);
        // A failure goes to the chain's tasks instead.
        let failed = embed.follow_ups(&p, &refused(&p, "test"));
        assert!(failed.messages.is_empty());
        assert_eq!(failed.same_result, ["8794dfcb-8dd0-4e81-b575-d4049570bdfc"]);
    }

    #[test]
    fn an_immutable_callback_gets_nothing_prepended_and_keeps_its_own_links() {
        let embed = Embed::parse(&json!({"callbacks": [{
            "task": "rust.pid", "args": [], "immutable": true,
            "options": {"queue": "rs", "link_error": [{"task": "rust.echo"}]},
        }]}))
        .unwrap();
        let out = embed.follow_ups(&parent(), &Outcome::Success(json!(3)));
        let cb = &out.messages[0];
        assert_eq!(cb.args, json!([]));
        assert_eq!(cb.queue, "rs");
        assert_eq!(cb.embed["errbacks"], json!([{"task": "rust.echo"}]));
    }

    #[test]
    fn groups_chords_and_malformed_embeds_are_refused() {
        for bad in [
            json!({"chord": {"task": "x", "subtask_type": "chain"}}),
            json!({"chord": {"task": "celery.group", "subtask_type": "group"}}),
            json!({"callbacks": [{"task": "x", "subtask_type": "group"}]}),
            json!({"chain": [{"task": "x", "options": {"chord": {"task": "y"}}}]}),
            json!({"callbacks": [{"args": []}]}),
            json!({"errbacks": 5}),
            json!([1]),
        ] {
            assert!(Embed::parse(&bad).is_err(), "{bad}");
        }
        let mut deep = json!({"task": "x"});
        for _ in 0..20 {
            deep = json!({"task": "x", "options": {"link": deep}});
        }
        assert!(Embed::parse(&json!({"callbacks": [deep]})).is_err());
        assert_eq!(Embed::parse(&Value::Null).unwrap(), Embed::default());
    }
}
