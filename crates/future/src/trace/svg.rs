//! The SVG timeline writer: one horizontal lane per worker (and one per
//! submitting thread, below), time left to right, one bar per run
//! (green: finished, red: failed, grey: still running), a tick per
//! submission, and an axis in milliseconds. Plain text, no plotting crate.

use std::fmt::Write;
use std::time::Duration;

use super::recorder::{Event, Transition};
use super::run::Schedule;

const WIDTH: f64 = 960.0;
const LABEL: f64 = 170.0;
const LANE: f64 = 24.0;
const TOP: f64 = 30.0;
const AXIS: f64 = 34.0;

/// The whole picture.
pub(super) fn render(events: &[Event]) -> String {
    let s = Schedule::of(events);
    let plot = WIDTH - LABEL - 20.0;
    // At least 1 ms, so that an empty or instant schedule still has a scale.
    let span_ms = (ms(s.span)).max(1.0);
    let x = |d: Duration| LABEL + ms(d) / span_ms * plot;
    let height = TOP + LANE * s.lanes.len() as f64 + AXIS;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{LABEL}" y="18" font-weight="bold">{} tasks on {} lanes, {:.1} ms</text>"#,
        s.submissions.len().max(s.runs.len()),
        s.lanes.len(),
        ms(s.span)
    );
    for (i, lane) in s.lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64;
        let shade = if i % 2 == 0 { "#f4f4f4" } else { "#ffffff" };
        let _ = writeln!(
            out,
            r#"<rect x="0" y="{y}" width="{WIDTH}" height="{LANE}" fill="{shade}"/><text x="6" y="{}">{}</text>"#,
            y + 16.0,
            escape(lane)
        );
    }
    for run in &s.runs {
        let (end, color, outcome) = match run.end {
            Some((at, Transition::Finished)) => (at, "#4caf50", "finished"),
            Some((at, _)) => (at, "#e53935", "failed"),
            None => (s.span, "#9e9e9e", "unfinished"),
        };
        let (x0, x1) = (x(run.start), x(end));
        let y = TOP + LANE * run.lane as f64 + 3.0;
        let w = (x1 - x0).max(1.0);
        let _ = write!(
            out,
            r##"<rect x="{x0:.2}" y="{y}" width="{w:.2}" height="{}" fill="{color}" stroke="#1b1b1b" stroke-width="0.5"><title>task {} {outcome}: {:.3} ms to {:.3} ms</title></rect>"##,
            LANE - 6.0,
            run.task,
            ms(run.start),
            ms(end)
        );
        // The task's number, where it fits.
        if w > 8.0 * (run.task.to_string().len() as f64 + 1.0) {
            let _ = write!(
                out,
                r##"<text x="{:.2}" y="{}" fill="#ffffff" font-size="10">{}</text>"##,
                x0 + 3.0,
                y + 12.0,
                run.task
            );
        }
        out.push('\n');
    }
    for &(task, lane, at) in &s.submissions {
        let (xs, y) = (x(at), TOP + LANE * lane as f64);
        let _ = writeln!(
            out,
            r##"<line x1="{xs:.2}" y1="{}" x2="{xs:.2}" y2="{}" stroke="#1565c0"><title>task {task} submitted at {:.3} ms</title></line>"##,
            y + 4.0,
            y + LANE - 4.0,
            ms(at)
        );
    }
    axis(&mut out, TOP + LANE * s.lanes.len() as f64, span_ms, plot);
    out.push_str("</svg>\n");
    out
}

/// The time axis: a line and about ten labelled ticks at round values.
fn axis(out: &mut String, y: f64, span_ms: f64, plot: f64) {
    let _ = writeln!(
        out,
        r##"<line x1="{LABEL}" y1="{y}" x2="{}" y2="{y}" stroke="#000000"/>"##,
        LABEL + plot
    );
    let step = round_step(span_ms / 10.0);
    let mut t = 0.0;
    while t <= span_ms + step * 1e-9 {
        let xt = LABEL + t / span_ms * plot;
        let _ = writeln!(
            out,
            r##"<line x1="{xt:.2}" y1="{y}" x2="{xt:.2}" y2="{}" stroke="#000000"/><text x="{xt:.2}" y="{}" text-anchor="middle" font-size="10">{}</text>"##,
            y + 4.0,
            y + 16.0,
            trim(t)
        );
        t += step;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end" font-size="10">ms</text>"#,
        LABEL + plot,
        y + 30.0
    );
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn round_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * power)
}

fn trim(t: f64) -> String {
    let s = format!("{t:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Text content: `&`, `<` and `>` escaped (lane names are user text).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
