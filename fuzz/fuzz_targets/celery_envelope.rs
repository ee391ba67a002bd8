//! The envelope of a Celery message (`crates/celery/src/message.rs`):
//! `read_envelope`, which reads a message's JSON with lone surrogates in
//! its headers replaced, then `TaskMessage::read`, which says who a refused
//! message was for, so that the worker stores a FAILURE for that task id.
//!
//! Promises checked beyond "no panic":
//! * an envelope that reads, marked redelivered, still reads, and
//!   `TaskMessage::read` agrees on whether it is a task message;
//! * a refused message whose envelope reads and whose headers carry a
//!   string `id` is refused *for that id* (else its client waits for ever),
//!   with a reason a person can read;
//! * a message `read` accepts has the id and task name of its headers.
#![no_main]

use celery::message::{mark_redelivered, read_envelope, TaskMessage};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = read_envelope(data) else {
        assert!(TaskMessage::read(data).is_err());
        return;
    };
    let headers = envelope.get("headers").unwrap_or(&Value::Null);
    let header = |name: &str| headers.get(name).and_then(Value::as_str);
    let marked = mark_redelivered(data).expect("an envelope that reads is marked");
    read_envelope(&marked).expect("a marked envelope reads");
    match TaskMessage::read(data) {
        Ok(message) => {
            assert_eq!(Some(message.id.as_str()), header("id"));
            assert_eq!(Some(message.task.as_str()), header("task"));
            let again = TaskMessage::read(&marked).expect("a marked message reads");
            assert_eq!(again.id, message.id);
        }
        Err(refusal) => {
            assert!(!refusal.why().is_empty());
            if let Some(id) = header("id") {
                assert_eq!(refusal.id.as_deref(), Some(id), "refused for whom?");
            }
            // Marking does not make a refused message readable.
            assert!(TaskMessage::read(&marked).is_err());
        }
    }
});
