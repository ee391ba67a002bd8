//! A checker of the Chrome trace-event format, for the tests of every
//! crate that writes one (`#[path]`-included: the demos' tests use it too).
//!
//! It checks what Perfetto and `chrome://tracing` need to open a file, from
//! the format's specification ("Trace Event Format", the JSON Object
//! Format): a `traceEvents` array of objects; every event's `ph` one of the
//! specified phases, `name` a string, `pid` and `tid` integers, `ts` a
//! number (all but metadata events); `X` events a `dur` >= 0; `i` events a
//! scope `s` of `g`, `p` or `t`; `B`/`E` pairs balanced per thread; `M`
//! events one of the five metadata names with the argument it takes;
//! `args`, where present, an object. And what our writer promises beyond
//! the format: every lane (`pid`, `tid`) that has events is named by a
//! `thread_name` metadata event.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// What a valid file held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `X` events, and `B` events (each closed by its `E`).
    pub runs: usize,
    /// `i` / `I` events.
    pub instants: usize,
    /// The named lanes: (pid, tid) -> name.
    pub lanes: HashMap<(i64, i64), String>,
}

const PHASES: &[&str] = &[
    "B", "E", "X", "i", "I", "C", "b", "n", "e", "S", "T", "p", "F", "s", "t", "f", "P", "N", "O",
    "D", "M", "V", "v", "R", "c", "(", ")",
];

/// Checks `text`; the error names the event and what is wrong with it.
pub fn check(text: &str) -> Result<Summary, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let events = match &doc {
        Value::Array(events) => events,
        Value::Object(o) => match o.get("traceEvents") {
            Some(Value::Array(events)) => events,
            _ => return Err("the top-level object has no traceEvents array".into()),
        },
        _ => return Err("neither an array nor an object at the top".into()),
    };
    let mut summary = Summary::default();
    let mut open: HashMap<(i64, i64), usize> = HashMap::new();
    let mut used: HashSet<(i64, i64)> = HashSet::new();
    for (i, e) in events.iter().enumerate() {
        let at = |what: &str| format!("event {i} ({e}): {what}");
        let o = e.as_object().ok_or_else(|| at("not an object"))?;
        let ph = o
            .get("ph")
            .and_then(Value::as_str)
            .ok_or_else(|| at("no string ph"))?;
        if !PHASES.contains(&ph) {
            return Err(at(&format!("unknown phase {ph:?}")));
        }
        if ph != "E" && !o.get("name").is_some_and(Value::is_string) {
            return Err(at("no string name"));
        }
        let int = |key: &str| {
            o.get(key)
                .and_then(Value::as_i64)
                .ok_or_else(|| at(&format!("no integer {key}")))
        };
        let lane = (int("pid")?, int("tid")?);
        if let Some(args) = o.get("args") {
            if !args.is_object() {
                return Err(at("args is not an object"));
            }
        }
        if let Some(cat) = o.get("cat") {
            if !cat.is_string() {
                return Err(at("cat is not a string"));
            }
        }
        if ph == "M" {
            check_metadata(o, &at)?;
            if o["name"] == "thread_name" {
                summary.lanes.insert(
                    lane,
                    o["args"]["name"].as_str().unwrap_or_default().to_string(),
                );
            }
            continue;
        }
        let ts = o
            .get("ts")
            .and_then(Value::as_f64)
            .ok_or_else(|| at("no number ts"))?;
        // JSON has no NaN: a number is ordered.
        if ts < 0.0 {
            return Err(at("negative ts"));
        }
        used.insert(lane);
        match ph {
            "X" => {
                let dur = o
                    .get("dur")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| at("X without a number dur"))?;
                if dur < 0.0 {
                    return Err(at("negative dur"));
                }
                summary.runs += 1;
            }
            "B" => *open.entry(lane).or_default() += 1,
            "E" => {
                let n = open.entry(lane).or_default();
                if *n == 0 {
                    return Err(at("E without a B on its thread"));
                }
                *n -= 1;
                summary.runs += 1;
            }
            "i" | "I" => {
                if let Some(s) = o.get("s") {
                    if !matches!(s.as_str(), Some("g" | "p" | "t")) {
                        return Err(at("instant scope not g, p or t"));
                    }
                }
                summary.instants += 1;
            }
            _ => {}
        }
    }
    if let Some((lane, _)) = open.iter().find(|(_, &n)| n > 0) {
        return Err(format!("a B event on lane {lane:?} has no E"));
    }
    if let Some(lane) = used.iter().find(|l| !summary.lanes.contains_key(l)) {
        return Err(format!("lane {lane:?} has events but no thread_name"));
    }
    Ok(summary)
}

fn check_metadata(
    o: &serde_json::Map<String, Value>,
    at: &dyn Fn(&str) -> String,
) -> Result<(), String> {
    let args = o.get("args").ok_or_else(|| at("metadata without args"))?;
    match o["name"].as_str().unwrap_or_default() {
        "process_name" | "thread_name" | "process_labels" => {
            let key = if o["name"] == "process_labels" {
                "labels"
            } else {
                "name"
            };
            if !args.get(key).is_some_and(Value::is_string) {
                return Err(at(&format!("metadata without a string args.{key}")));
            }
        }
        "process_sort_index" | "thread_sort_index" => {
            if args.get("sort_index").and_then(Value::as_i64).is_none() {
                return Err(at("sort index without an integer args.sort_index"));
            }
        }
        other => return Err(at(&format!("unknown metadata name {other:?}"))),
    }
    Ok(())
}
