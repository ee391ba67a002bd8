//! The JSON a Python client writes (`crates/celery/src/json.rs`): the
//! arguments of every task message and the values of result records are
//! read by `parse_python`, which lifts serde_json's depth limit after its
//! own scan.
//!
//! Promises checked beyond "no panic" (and no stack overflow: the scan must
//! bound the depth before serde_json recurses):
//! * a value it reads nests at most `MAX_DEPTH` levels, and written back
//!   (`Value::to_string`) reads back equal, numbers digit for digit;
//! * a refusal for depth names a depth above `MAX_DEPTH`;
//! * after `without_surrogates`, no text is refused for a lone surrogate.
#![no_main]

use celery::json::{parse_python, without_surrogates, MAX_DEPTH};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match parse_python(data) {
        Ok(value) => {
            assert!(depth(&value) <= MAX_DEPTH, "read deeper than MAX_DEPTH");
            let again = parse_python(value.to_string().as_bytes()).expect("to_string reads back");
            assert_eq!(again, value);
        }
        Err(why) => {
            assert!(!why.is_empty());
            if let Some(levels) = why.strip_prefix("the arguments nest ") {
                let n: usize = levels.split(' ').next().unwrap().parse().unwrap();
                assert!(n > MAX_DEPTH, "refused at depth {n}: {why}");
            }
        }
    }
    if let Err(why) = parse_python(&without_surrogates(data)) {
        assert!(!why.contains("lone surrogate"), "{why}");
    }
});

/// Levels of arrays and objects: `[]` is 1, a scalar 0.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
