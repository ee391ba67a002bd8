//! What a Celery worker and client read from Redis: task messages
//! (`crates/celery/src/message.rs`: the envelope, its headers and
//! properties, the base64 body), result records (`meta.rs`) and base64
//! (`base64.rs`).
//!
//! Promises checked beyond "no panic":
//! * a message that parses, written back with `to_json`, parses to the same
//!   message (`redelivered` aside: a fresh message is never redelivered;
//!   times to the microsecond), and `to_json` never writes a header that
//!   reads back as unreadable;
//! * `mark_redelivered` of a message whose properties are an object gives
//!   a message that parses as redelivered;
//! * a SUCCESS record's value, written back by `Outcome::to_json`, reads
//!   back equal, and a panic's message survives the same trip;
//! * base64 decodes what it encodes, for any bytes.
#![no_main]

use celery::base64;
use celery::message::{mark_redelivered, TaskMessage};
use celery::meta::{parse_final, Outcome};
use future::TaskError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_message(data);
    check_record(data);
    check_base64(data);
});

fn check_message(data: &[u8]) {
    let Ok(message) = TaskMessage::parse(data) else {
        return;
    };
    let again = TaskMessage::parse(message.to_json().as_bytes()).expect("to_json parses");
    // to_json never writes a header that reads back as unreadable.
    assert_eq!(again.timing.error, None);
    assert_eq!(again.limits.error, None);
    // A message with an unreadable header is refused, never sent on: only
    // the readable ones must survive the trip (times to the microsecond,
    // numbers to the last bits of their decimal form).
    if message.timing.error.is_none() && message.limits.error.is_none() {
        assert!(close(again.timing.eta, message.timing.eta), "{again:?}");
        assert!(close(again.timing.expires, message.timing.expires), "{again:?}");
        assert!(close(again.limits.hard, message.limits.hard), "{again:?}");
        assert!(close(again.limits.soft, message.limits.soft), "{again:?}");
        assert_eq!(
            TaskMessage {
                timing: message.timing.clone(),
                limits: message.limits.clone(),
                ..again
            },
            TaskMessage {
                redelivered: false,
                ..message.clone()
            }
        );
    }
    let properties_are_an_object = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .is_some_and(|v| v["properties"].is_object());
    let marked = mark_redelivered(data).expect("a message that parsed is JSON");
    let marked = TaskMessage::parse(&marked).expect("marking keeps a message parseable");
    if properties_are_an_object {
        assert!(marked.redelivered);
    }
}

/// Equal to a microsecond, or to a relative 1e-12 for large values.
fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6_f64.max(a.abs() * 1e-12),
        _ => false,
    }
}

fn check_record(data: &[u8]) {
    match parse_final(data) {
        Ok(Some(Ok(value))) => {
            let json = Outcome::Success(value.clone()).to_json("id");
            let again = parse_final(json.as_bytes()).expect("to_json parses");
            assert_eq!(again.map(|r| r.ok()), Some(Some(value)));
        }
        Ok(Some(Err(TaskError::Panicked(message)))) => {
            let outcome = Outcome::from_task_error(&TaskError::Panicked(message.clone()));
            let again = parse_final(outcome.to_json("id").as_bytes()).expect("to_json parses");
            match again {
                Some(Err(TaskError::Panicked(m))) => assert_eq!(m, message),
                other => panic!("a panic record read back as {other:?}"),
            }
        }
        _ => {}
    }
}

fn check_base64(data: &[u8]) {
    assert_eq!(base64::decode(&base64::encode(data)).as_deref(), Some(data));
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(bytes) = base64::decode(text) {
            // Each 4 characters give at most 3 bytes.
            assert!(bytes.len() <= text.len() / 4 * 3 + 2);
        }
    }
}
