//! Figures: one measured number with its kind, and the store that holds them all.
//!
//! Every source the report reads (criterion folders, the Python peers' JSON lines, the crypto
//! sweep CSV, the timed flag downloads) ends up here as a [`Sample`] filed under a [`Key`]:
//! the operation (`"thread_pool/round_trip"`) and who measured it (`"ours"`, `"rayon_install"`,
//! `"python"`). The table asks the store for a figure *of a given kind*; the store converts
//! (a criterion iteration time becomes a rate when the group declared a throughput, a latency
//! becomes a rate by inversion), so the table never cares where a number came from.

use std::collections::BTreeMap;
use std::fmt;

/// What a number measures. It decides the unit it is printed in and which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Seconds per operation (or for a whole command). Lower is better.
    Time,
    /// Operations (tasks, items) per second. Higher is better.
    Rate,
    /// Bytes per second. Higher is better.
    Bandwidth,
    /// A speed-up factor against a sequential baseline. Higher is better.
    Speedup,
}

impl Kind {
    /// True when a bigger value is the better result.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Kind::Time)
    }
}

/// One measured value, in base units: seconds, per second, bytes per second or a factor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figure {
    /// The value in the kind's base unit.
    pub value: f64,
    /// What the value measures.
    pub kind: Kind,
}

impl Figure {
    /// A figure of `kind` with `value` in base units.
    pub fn new(value: f64, kind: Kind) -> Self {
        Figure { value, kind }
    }

    /// Reads a value written with a unit, as the Python peers print them
    /// (`"us"`, `"tasks/s"`, `"B/s"`, `"x"` ...). Unknown units are an error, not a guess.
    pub fn from_unit(value: f64, unit: &str) -> Result<Figure, UnitError> {
        let time = |scale: f64| Ok(Figure::new(value * scale, Kind::Time));
        let bytes = |scale: f64| Ok(Figure::new(value * scale, Kind::Bandwidth));
        match unit {
            "s" => time(1.0),
            "ms" => time(1e-3),
            "us" | "µs" => time(1e-6),
            "ns" => time(1e-9),
            "B/s" => bytes(1.0),
            "kB/s" => bytes(1e3),
            "MB/s" => bytes(1e6),
            "GB/s" => bytes(1e9),
            "MiB/s" => bytes(1024.0 * 1024.0),
            "GiB/s" => bytes(1024.0 * 1024.0 * 1024.0),
            "x" => Ok(Figure::new(value, Kind::Speedup)),
            // Any "<things>/s" is a rate: tasks/s, items/s, ops/s, flags/s.
            u if u.ends_with("/s") && !u.contains('B') => Ok(Figure::new(value, Kind::Rate)),
            _ => Err(UnitError(unit.to_string())),
        }
    }

    /// The same measurement seen as another kind, when that makes sense: a time per operation
    /// and a rate are inverses of each other. Anything else converts only to itself.
    pub fn as_kind(self, kind: Kind) -> Option<Figure> {
        match (self.kind, kind) {
            (a, b) if a == b => Some(self),
            (Kind::Time, Kind::Rate) | (Kind::Rate, Kind::Time) if self.value > 0.0 => {
                Some(Figure::new(1.0 / self.value, kind))
            }
            _ => None,
        }
    }

    /// How many times better this figure is than `other` (same kind): above 1.0 means this one
    /// wins, whichever way "better" points. `None` if the kinds differ or a value is not positive.
    pub fn advantage_over(self, other: Figure) -> Option<f64> {
        if self.kind != other.kind || self.value <= 0.0 || other.value <= 0.0 {
            return None;
        }
        Some(if self.kind.higher_is_better() {
            self.value / other.value
        } else {
            other.value / self.value
        })
    }
}

impl fmt::Display for Figure {
    /// Prints with a readable prefix: `21.4 us`, `5.90M/s`, `0.73 GB/s`, `1.93x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.value;
        match self.kind {
            Kind::Time => {
                let (scaled, unit) = if v >= 1.0 {
                    (v, "s")
                } else if v >= 1e-3 {
                    (v * 1e3, "ms")
                } else if v >= 1e-6 {
                    (v * 1e6, "us")
                } else {
                    (v * 1e9, "ns")
                };
                write!(f, "{} {unit}", three_digits(scaled))
            }
            Kind::Rate => {
                let (scaled, prefix) = si_prefix(v);
                write!(f, "{}{prefix}/s", three_digits(scaled))
            }
            Kind::Bandwidth => {
                let (scaled, prefix) = si_prefix(v);
                write!(f, "{} {prefix}B/s", three_digits(scaled))
            }
            Kind::Speedup => write!(f, "{v:.2}x"),
        }
    }
}

/// Splits a value into a mantissa below 1000 and its SI prefix (k, M, G, T).
fn si_prefix(v: f64) -> (f64, &'static str) {
    const PREFIXES: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, prefix) in PREFIXES {
        if v >= scale {
            return (v / scale, prefix);
        }
    }
    (v, "")
}

/// Three significant digits, which is already more than two noisy cores can back up.
fn three_digits(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A unit string the report does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError(pub String);

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown unit {:?}: use s/ms/us/ns, <things>/s, B/s..GB/s or x",
            self.0
        )
    }
}

impl std::error::Error for UnitError {}

/// What criterion says a group processes per iteration (`Throughput` in the bench).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throughput {
    /// Items per iteration.
    Elements(u64),
    /// Bytes per iteration.
    Bytes(u64),
}

/// A stored measurement, before anyone decided which kind they want to see it as.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sample {
    /// A criterion benchmark: the time of one iteration and what one iteration processes.
    Criterion {
        /// Median time of one iteration, in seconds.
        seconds_per_iter: f64,
        /// What one iteration processes, if the group said so.
        throughput: Option<Throughput>,
    },
    /// A figure that arrived already in its kind (Python peers, sweeps, timed commands).
    Direct(Figure),
}

impl Sample {
    /// The sample as a figure of `kind`, if it can be one.
    ///
    /// A criterion iteration that processes `n` elements gives a rate of `n / t` and a time per
    /// element of `t / n` (so a round-trip group may batch 100 round trips per iteration and
    /// still report one round trip's latency). Bytes give a bandwidth.
    pub fn as_kind(self, kind: Kind) -> Option<Figure> {
        match self {
            Sample::Direct(figure) => figure.as_kind(kind),
            Sample::Criterion {
                seconds_per_iter: t,
                throughput,
            } => {
                if t <= 0.0 {
                    return None;
                }
                let value = match (kind, throughput) {
                    (Kind::Time, None) => t,
                    (Kind::Time, Some(Throughput::Elements(n))) if n > 0 => t / n as f64,
                    (Kind::Rate, None) => 1.0 / t,
                    (Kind::Rate, Some(Throughput::Elements(n))) => n as f64 / t,
                    (Kind::Bandwidth, Some(Throughput::Bytes(n))) => n as f64 / t,
                    _ => return None,
                };
                Some(Figure::new(value, kind))
            }
        }
    }
}

/// Where a sample is filed: the operation and who measured it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// The operation, e.g. the criterion group id `"thread_pool/round_trip"`.
    pub op: String,
    /// Who ran it: a criterion function id (`"ours"`, `"rayon_install"`) or `"python"`.
    pub who: String,
}

impl Key {
    /// A key from two string slices.
    pub fn new(op: &str, who: &str) -> Self {
        Key {
            op: op.to_string(),
            who: who.to_string(),
        }
    }
}

/// Where a figure came from: the sources it measured and when (the report writes a stamp
/// next to each round's results; a figure without one is never judged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The commit measured, as the page's "sources" line prints it (`abc1234`, or with
    /// "plus uncommitted changes in ...").
    pub commit: String,
    /// When it was measured (`YYYY-MM-DD HH:MM UTC`).
    pub time: String,
    /// Whether the load average sampled during its round rose above what the round itself
    /// explains (see `provenance::RoundLoad`); `None` when nobody sampled it.
    pub foreign_load: Option<bool>,
}

/// One round's sample and its origin.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundSample {
    /// The sample.
    pub sample: Sample,
    /// Where it came from, if recorded.
    pub origin: Option<Origin>,
}

/// The ratio of ours to a peer over the rounds where both were measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    /// The median of the per-round advantages (above 1.0: ours is better).
    pub median: f64,
    /// The lowest per-round advantage.
    pub low: f64,
    /// The highest per-round advantage.
    pub high: f64,
    /// How many rounds had both figures.
    pub rounds: usize,
}

/// Every sample of one report run, per round: under each key, round number -> sample.
/// A later insert for the same key and round replaces the earlier one.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    samples: BTreeMap<Key, BTreeMap<u32, RoundSample>>,
}

impl Figures {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Files `sample` under (`op`, `who`) as round 1, with no origin.
    pub fn insert(&mut self, op: &str, who: &str, sample: Sample) {
        self.insert_round(op, who, 1, sample, None);
    }

    /// Files `sample` under (`op`, `who`) for `round`, with its origin.
    pub fn insert_round(
        &mut self,
        op: &str,
        who: &str,
        round: u32,
        sample: Sample,
        origin: Option<Origin>,
    ) {
        self.samples
            .entry(Key::new(op, who))
            .or_default()
            .insert(round, RoundSample { sample, origin });
    }

    /// Gives `origin` to every sample that has none (figures read from files the run
    /// stamped as a whole).
    pub fn stamp_unstamped(&mut self, origin: &Origin) {
        for rounds in self.samples.values_mut() {
            for round in rounds.values_mut() {
                if round.origin.is_none() {
                    round.origin = Some(origin.clone());
                }
            }
        }
    }

    /// Moves every sample of `other` in (replacing same key and round).
    pub fn merge(&mut self, other: Figures) {
        for (key, rounds) in other.samples {
            self.samples.entry(key).or_default().extend(rounds);
        }
    }

    /// Each round's figure of (`op`, `who`) as `kind`.
    pub fn rounds(&self, op: &str, who: &str, kind: Kind) -> BTreeMap<u32, Figure> {
        self.samples
            .get(&Key::new(op, who))
            .map(|rounds| {
                rounds
                    .iter()
                    .filter_map(|(r, s)| Some((*r, s.sample.as_kind(kind)?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The median over the rounds of (`op`, `who`) as a figure of `kind`, if measured and
    /// convertible.
    pub fn get(&self, op: &str, who: &str, kind: Kind) -> Option<Figure> {
        let values: Vec<f64> = self
            .rounds(op, who, kind)
            .values()
            .map(|f| f.value)
            .collect();
        Some(Figure::new(median(&values)?, kind))
    }

    /// The origins of every round of (`op`, `who`), in round order.
    pub fn origins(&self, op: &str, who: &str) -> Vec<Option<&Origin>> {
        self.samples
            .get(&Key::new(op, who))
            .map(|rounds| rounds.values().map(|s| s.origin.as_ref()).collect())
            .unwrap_or_default()
    }

    /// The advantage of `ours` over `peer` (each an (op, who)) round by round, over the
    /// rounds where both were measured. Two figures measured once each (round 1, as the
    /// Python peers are) give a one-round ratio.
    pub fn ratio(&self, ours: (&str, &str), peer: (&str, &str), kind: Kind) -> Option<Ratio> {
        let mine = self.rounds(ours.0, ours.1, kind);
        let theirs = self.rounds(peer.0, peer.1, kind);
        let mut advantages: Vec<f64> = mine
            .iter()
            .filter_map(|(r, f)| f.advantage_over(*theirs.get(r)?))
            .collect();
        if advantages.is_empty() {
            // Measured in different rounds (a peer run once): compare the medians.
            let a = self.get(ours.0, ours.1, kind)?;
            let b = self.get(peer.0, peer.1, kind)?;
            advantages.push(a.advantage_over(b)?);
        }
        let low = advantages.iter().copied().fold(f64::INFINITY, f64::min);
        let high = advantages.iter().copied().fold(0.0, f64::max);
        Some(Ratio {
            median: median(&advantages)?,
            low,
            high,
            rounds: advantages.len(),
        })
    }

    /// Every round's sample of (`op`, `who`), in round order.
    pub fn samples(&self, op: &str, who: &str) -> Vec<(u32, Sample)> {
        self.samples
            .get(&Key::new(op, who))
            .map(|rounds| rounds.iter().map(|(r, s)| (*r, s.sample)).collect())
            .unwrap_or_default()
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when nothing was measured.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// All keys, in order (for the "also measured" list and for debugging).
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.samples.keys()
    }
}

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_read_into_base_units() {
        let us = Figure::from_unit(278.0, "us").unwrap();
        assert_eq!(us.kind, Kind::Time);
        assert!((us.value - 278e-6).abs() < 1e-12);
        assert_eq!(Figure::from_unit(30e3, "tasks/s").unwrap().kind, Kind::Rate);
        let gb = Figure::from_unit(0.73, "GB/s").unwrap();
        assert_eq!(gb.kind, Kind::Bandwidth);
        assert!((gb.value - 0.73e9).abs() < 1.0);
        assert_eq!(Figure::from_unit(1.9, "x").unwrap().kind, Kind::Speedup);
        assert_eq!(
            Figure::from_unit(1.0, "furlongs"),
            Err(UnitError("furlongs".into()))
        );
    }

    #[test]
    fn display_picks_a_readable_prefix() {
        assert_eq!(Figure::new(21.4e-6, Kind::Time).to_string(), "21.4 us");
        assert_eq!(Figure::new(0.532, Kind::Time).to_string(), "532 ms");
        assert_eq!(Figure::new(48e-9, Kind::Time).to_string(), "48.0 ns");
        assert_eq!(Figure::new(5.9e6, Kind::Rate).to_string(), "5.90M/s");
        assert_eq!(Figure::new(30_100.0, Kind::Rate).to_string(), "30.1k/s");
        assert_eq!(Figure::new(0.73e9, Kind::Bandwidth).to_string(), "730 MB/s");
        assert_eq!(Figure::new(1.934, Kind::Speedup).to_string(), "1.93x");
    }

    #[test]
    fn advantage_points_the_right_way_for_each_kind() {
        let fast = Figure::new(20e-6, Kind::Time);
        let slow = Figure::new(80e-6, Kind::Time);
        assert_eq!(fast.advantage_over(slow), Some(4.0));
        assert_eq!(slow.advantage_over(fast), Some(0.25));
        let hi = Figure::new(6.0, Kind::Rate);
        let lo = Figure::new(3.0, Kind::Rate);
        assert_eq!(hi.advantage_over(lo), Some(2.0));
        assert_eq!(hi.advantage_over(fast), None, "kinds differ");
    }

    #[test]
    fn criterion_samples_convert_with_their_throughput() {
        let batch = Sample::Criterion {
            seconds_per_iter: 0.04,
            throughput: Some(Throughput::Elements(200_000)),
        };
        assert_eq!(batch.as_kind(Kind::Rate).unwrap().value, 5_000_000.0);
        assert!((batch.as_kind(Kind::Time).unwrap().value - 2e-7).abs() < 1e-15);
        assert_eq!(
            batch.as_kind(Kind::Bandwidth),
            None,
            "elements are not bytes"
        );

        let bytes = Sample::Criterion {
            seconds_per_iter: 0.5,
            throughput: Some(Throughput::Bytes(1 << 20)),
        };
        assert_eq!(bytes.as_kind(Kind::Bandwidth).unwrap().value, 2097152.0);

        let plain = Sample::Criterion {
            seconds_per_iter: 25e-6,
            throughput: None,
        };
        assert_eq!(plain.as_kind(Kind::Time).unwrap().value, 25e-6);
        assert_eq!(plain.as_kind(Kind::Rate).unwrap().value, 40_000.0);
    }

    #[test]
    fn store_converts_direct_figures_between_time_and_rate() {
        let mut figures = Figures::new();
        figures.insert(
            "op",
            "python",
            Sample::Direct(Figure::from_unit(250.0, "us").unwrap()),
        );
        let rate = figures.get("op", "python", Kind::Rate).unwrap();
        assert!((rate.value - 4000.0).abs() < 1e-6);
        assert_eq!(figures.get("op", "python", Kind::Speedup), None);
        assert_eq!(figures.get("op", "ours", Kind::Time), None);
        assert_eq!(figures.len(), 1);
    }

    fn time(us: f64) -> Sample {
        Sample::Direct(Figure::new(us * 1e-6, Kind::Time))
    }

    #[test]
    fn rounds_give_a_median_figure_and_a_ratio_with_its_range() {
        let mut figures = Figures::new();
        let origin = Origin {
            commit: "abc".into(),
            time: "t".into(),
            foreign_load: Some(false),
        };
        for (round, ours, peer) in [(1, 10.0, 20.0), (2, 10.0, 15.0), (3, 20.0, 20.0)] {
            figures.insert_round("op", "ours", round, time(ours), Some(origin.clone()));
            figures.insert_round("op", "peer", round, time(peer), None);
        }
        // A round only ours has is not paired.
        figures.insert_round("op", "ours", 4, time(1.0), None);
        let peer = figures.get("op", "peer", Kind::Time).unwrap();
        assert!(
            (peer.value - 20e-6).abs() < 1e-15,
            "median of 20, 15, 20 us: {peer}"
        );
        let ratio = figures
            .ratio(("op", "ours"), ("op", "peer"), Kind::Time)
            .unwrap();
        assert_eq!(ratio.rounds, 3);
        assert!((ratio.median - 1.5).abs() < 1e-9, "{ratio:?}");
        assert!((ratio.low - 1.0).abs() < 1e-9);
        assert!((ratio.high - 2.0).abs() < 1e-9);
        assert_eq!(figures.origins("op", "ours")[0], Some(&origin));
        assert_eq!(figures.origins("op", "peer")[0], None);
        figures.stamp_unstamped(&origin);
        assert!(figures.origins("op", "peer").iter().all(|o| o.is_some()));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }
}
