//! The Chrome trace-event JSON writer (the "JSON Object Format": a
//! `traceEvents` array), by hand: a few fixed shapes need no JSON crate.
//!
//! * `M` events name the process (`pid` 1, "executor") and each lane
//!   (`tid` 1, 2, ... in the [`Schedule`]'s order), and fix their order;
//! * one `X` (complete) event per run: `ts` and `dur` in microseconds,
//!   `args` with the outcome and the time the task waited in the queue;
//! * one `i` (instant, thread-scoped) event per submission.

use std::fmt::Write;
use std::time::Duration;

use super::recorder::Event;
use super::run::Schedule;

const PID: u32 = 1;

/// The whole document.
pub(super) fn render(events: &[Event]) -> String {
    let schedule = Schedule::of(events);
    let mut out = Vec::new();
    out.push(format!(
        r#"{{"name":"process_name","ph":"M","pid":{PID},"tid":0,"args":{{"name":"executor"}}}}"#
    ));
    for (i, lane) in schedule.lanes.iter().enumerate() {
        let tid = i + 1;
        out.push(format!(
            r#"{{"name":"thread_name","ph":"M","pid":{PID},"tid":{tid},"args":{{"name":{}}}}}"#,
            quote(lane)
        ));
        out.push(format!(
            r#"{{"name":"thread_sort_index","ph":"M","pid":{PID},"tid":{tid},"args":{{"sort_index":{tid}}}}}"#
        ));
    }
    for run in &schedule.runs {
        let (end, outcome) = match run.end {
            Some((at, t)) => (at, t.name()),
            None => (schedule.span, "unfinished"),
        };
        let mut args = format!(r#""outcome":"{outcome}""#);
        if let Some(submitted) = run.submitted {
            let _ = write!(
                args,
                r#","queued_us":{}"#,
                micros(run.start.saturating_sub(submitted))
            );
        }
        out.push(format!(
            r#"{{"name":"task {}","cat":"task","ph":"X","ts":{},"dur":{},"pid":{PID},"tid":{},"args":{{{args}}}}}"#,
            run.task,
            micros(run.start),
            micros(end.saturating_sub(run.start)),
            run.lane + 1,
        ));
    }
    for &(task, lane, at) in &schedule.submissions {
        let name = format!("submit task {task}");
        out.push(format!(
            r#"{{"name":{},"cat":"task","ph":"i","s":"t","ts":{},"pid":{PID},"tid":{}}}"#,
            quote(&name),
            micros(at),
            lane + 1
        ));
    }
    format!(
        "{{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n{}\n]}}\n",
        out.join(",\n")
    )
}

/// Microseconds with nanosecond digits, as the format's `ts` and `dur` take.
fn micros(d: Duration) -> String {
    format!("{}.{:03}", d.as_micros(), d.as_nanos() % 1000)
}

/// A JSON string literal (lanes carry thread names, which are user text).
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
