//! What every criterion bench of the workspace shares with the report (this file is included
//! by each bench with `#[path = ".../benches/support/harness.rs"] mod harness;`, so no bench
//! needs a dependency on the `benches` package).
//!
//! The report, not criterion's command line, decides how long each group runs: a group's own
//! `sample_size`/`measurement_time` override criterion's flags, so the report passes its
//! settings in the environment and every group applies them (see [`Settings`]). The report
//! then knows what really ran, and prints it.
//!
//! * `BENCH_WARM_UP_MS`, `BENCH_MEASURE_MS`, `BENCH_SAMPLES`, `BENCH_RESAMPLES`: the settings.
//! * `BENCH_ROUND`: the round number (1, 2, 3 ...). Ours and the peers of a group run in
//!   the order the group lists them in odd rounds and in reverse order in even rounds, so
//!   nobody always runs first ([`run_in_round_order`]).
//! * `BENCH_GROUPS`: a comma-separated list of group ids; when set, only those groups run
//!   (the report's busy-machine rounds run only the key rows).
//! * `BENCH_SIDE_DIR`: a folder where a bench appends figures criterion cannot hold (CPU time
//!   per operation) to `side-figures.jsonl` and each group's settings to `settings.jsonl`.
#![allow(dead_code)] // Each bench uses a different part of this file.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{Bencher, BenchmarkGroup, Criterion, SamplingMode, Throughput};

/// How long a group measures, as the report asked (defaults: a plain `cargo bench`).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Warm-up time of each function.
    pub warm_up: Duration,
    /// Measurement time of each function (flat sampling: about this long, or samples x one
    /// iteration when an iteration is longer).
    pub measurement: Duration,
    /// Number of samples (criterion needs at least 10).
    pub samples: usize,
    /// Bootstrap resamples for criterion's confidence intervals (the report reads only the
    /// median, so fewer resamples cost nothing it uses).
    pub resamples: usize,
}

fn env_number(name: &str) -> Option<u64> {
    number(std::env::var(name).ok())
}

fn number(text: Option<String>) -> Option<u64> {
    text?.trim().parse().ok()
}

impl Settings {
    /// The settings from the environment, with defaults for a plain `cargo bench`.
    pub fn from_env() -> Settings {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings from `lookup` (a variable's name to its value), with defaults for what
    /// is missing or unreadable; criterion's minimum of 10 samples is kept.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Settings {
        let get = |name| number(lookup(name));
        let ms = |name, default| Duration::from_millis(get(name).unwrap_or(default));
        Settings {
            warm_up: ms("BENCH_WARM_UP_MS", 1000),
            measurement: ms("BENCH_MEASURE_MS", 3000),
            samples: get("BENCH_SAMPLES").map_or(20, |n| n as usize).max(10),
            resamples: get("BENCH_RESAMPLES")
                .map_or(10_000, |n| n as usize)
                .max(100),
        }
    }

    /// The same settings with both times multiplied by `factor`: for a group whose
    /// iterations each wait (untimed) for a quiet pool, so that its wall time stays close to
    /// the others'.
    pub fn scaled(self, factor: f64) -> Settings {
        Settings {
            warm_up: self.warm_up.mul_f64(factor),
            measurement: self.measurement.mul_f64(factor),
            ..self
        }
    }
}

/// This round's number (1 when the report did not say).
pub fn round() -> u64 {
    env_number("BENCH_ROUND").unwrap_or(1).max(1)
}

/// Whether group `id` runs in this invocation (`BENCH_GROUPS`).
pub fn wanted(id: &str) -> bool {
    wanted_in(std::env::var("BENCH_GROUPS").ok().as_deref(), id)
}

/// Whether group `id` is in `list` (comma-separated group ids); no list or an empty one
/// runs every group.
pub fn wanted_in(list: Option<&str>, id: &str) -> bool {
    match list {
        Some(list) if !list.trim().is_empty() => list.split(',').any(|g| g.trim() == id),
        _ => true,
    }
}

/// Whether round `n` runs a group's functions in reverse order (even rounds do).
pub fn reversed(n: u64) -> bool {
    n.is_multiple_of(2)
}

/// A group with `settings` applied (flat sampling: every sample the same iteration count, so
/// a slow iteration cannot blow the time up), and `throughput`; `None` when this invocation
/// does not run it. The settings are recorded for the report.
pub fn group<'a>(
    c: &'a mut Criterion,
    id: &str,
    settings: Settings,
    throughput: Throughput,
) -> Option<BenchmarkGroup<'a, WallTime>> {
    if !wanted(id) {
        return None;
    }
    let mut g = c.benchmark_group(id);
    g.sampling_mode(SamplingMode::Flat)
        .warm_up_time(settings.warm_up)
        .measurement_time(settings.measurement)
        .sample_size(settings.samples)
        .nresamples(settings.resamples)
        .throughput(throughput);
    side_line(
        "settings.jsonl",
        &format!(
            "{{\"group\": \"{id}\", \"warm_up_s\": {:.3}, \"measurement_s\": {:.3}, \
             \"samples\": {}, \"sampling\": \"flat\", \"round\": {}}}",
            settings.warm_up.as_secs_f64(),
            settings.measurement.as_secs_f64(),
            settings.samples,
            round()
        ),
    );
    Some(g)
}

/// One function of a group: its id and its body.
pub type Entry<'a> = (&'a str, Box<dyn FnMut(&mut Bencher) + 'a>);

/// Runs `entries` in the group's order in odd rounds and reversed in even rounds. Each entry
/// is dropped right after it ran, so a pool it owns is gone before the next one starts.
pub fn run_in_round_order(group: &mut BenchmarkGroup<'_, WallTime>, mut entries: Vec<Entry<'_>>) {
    if reversed(round()) {
        entries.reverse();
    }
    for (id, mut body) in entries {
        group.bench_function(id, |b| body(b));
    }
}

fn side_line(file: &str, line: &str) {
    let Some(dir) = std::env::var_os("BENCH_SIDE_DIR") else {
        return;
    };
    let path = PathBuf::from(dir).join(file);
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        eprintln!("bench: cannot append to {}: {e}", path.display());
    }
}

/// Records a figure criterion cannot hold, in the peers' line format.
pub fn side_figure(op: &str, who: &str, value: f64, unit: &str) {
    side_line(
        "side-figures.jsonl",
        &format!(
            "{{\"op\": \"{op}\", \"who\": \"{who}\", \"value\": {value:.6}, \"unit\": \"{unit}\"}}"
        ),
    );
}
