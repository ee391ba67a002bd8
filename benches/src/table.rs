//! Building the comparison table: row specs + measured figures -> rows with verdicts.
//!
//! This is the one place where figures meet targets. Each cell keeps an `Option<Figure>` so
//! the renderer can write "not measured" where a bench or a peer is missing, and the ratio of
//! each peer is always "ours against the peer, as a speed": above 1.00x we are faster (less
//! time, or more per second), below it the peer is.

use crate::figure::{Figure, Figures, Key};
use crate::targets::{RowSpec, Verdict};

/// One peer's cell.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerCell {
    /// The peer's label.
    pub label: &'static str,
    /// Its figure, if measured.
    pub figure: Option<Figure>,
    /// How many times better ours is (above 1.0: ours wins), if both were measured.
    pub advantage: Option<f64>,
}

/// One built row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The spec it was built from.
    pub spec: RowSpec,
    /// Our figure, if measured.
    pub ours: Option<Figure>,
    /// The peers, in spec order.
    pub peers: Vec<PeerCell>,
    /// Met, missed, not measured, or no target.
    pub verdict: Verdict,
}

/// Builds one row per spec from the measured figures.
pub fn build(specs: &[RowSpec], figures: &Figures) -> Vec<Row> {
    specs.iter().map(|spec| build_row(*spec, figures)).collect()
}

fn build_row(spec: RowSpec, figures: &Figures) -> Row {
    let ours = figures.get(spec.op, spec.ours, spec.kind);
    let peers: Vec<PeerCell> = spec
        .peers
        .iter()
        .map(|p| {
            let figure = figures.get(p.op, p.who, spec.kind);
            let advantage = match (ours, figure) {
                (Some(o), Some(f)) => o.advantage_over(f),
                _ => None,
            };
            PeerCell {
                label: p.label,
                figure,
                advantage,
            }
        })
        .collect();
    let reference = spec
        .rule
        .reference_peer()
        .and_then(|who| figures.get(spec.op, who, spec.kind));
    let verdict = spec.rule.judge(ours, reference);
    Row {
        spec,
        ours,
        peers,
        verdict,
    }
}

/// Counts of verdicts, for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Targets met.
    pub met: usize,
    /// Targets missed.
    pub missed: usize,
    /// Targets that could not be judged.
    pub not_measured: usize,
}

/// Counts the verdicts of `rows` (rows without a target are not counted).
pub fn tally(rows: &[Row]) -> Tally {
    let mut tally = Tally::default();
    for row in rows {
        match row.verdict {
            Verdict::Met(_) => tally.met += 1,
            Verdict::Missed(_) => tally.missed += 1,
            Verdict::NotMeasured => tally.not_measured += 1,
            Verdict::NoTarget => {}
        }
    }
    tally
}

/// Samples in the store that no row shows (a bench added later, a renamed id): listed under
/// the table so nothing measured is silently dropped.
pub fn unused<'a>(specs: &[RowSpec], figures: &'a Figures) -> Vec<&'a Key> {
    figures
        .keys()
        .filter(|key| {
            !specs.iter().any(|spec| {
                (spec.op == key.op && spec.ours == key.who)
                    || spec
                        .peers
                        .iter()
                        .any(|p| p.op == key.op && p.who == key.who)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::{Kind, Sample, Throughput};
    use crate::targets::{Rule, ROWS};

    fn round_trip_spec() -> RowSpec {
        *ROWS
            .iter()
            .find(|r| r.op == "thread_pool/round_trip")
            .unwrap()
    }

    fn criterion(seconds: f64) -> Sample {
        Sample::Criterion {
            seconds_per_iter: seconds,
            throughput: Some(Throughput::Elements(1)),
        }
    }

    #[test]
    fn a_row_gets_figures_ratios_and_a_verdict() {
        let mut figures = Figures::new();
        figures.insert("thread_pool/round_trip", "ours", criterion(20e-6));
        figures.insert("thread_pool/round_trip", "rayon_install", criterion(25e-6));
        figures.insert(
            "thread_pool/round_trip",
            "python",
            Sample::Direct(Figure::new(280e-6, Kind::Time)),
        );
        let rows = build(&[round_trip_spec()], &figures);
        let row = &rows[0];
        assert_eq!(row.ours, Some(Figure::new(20e-6, Kind::Time)));
        let rayon = &row.peers[0];
        assert_eq!(rayon.label, "rayon install");
        assert!((rayon.advantage.unwrap() - 1.25).abs() < 1e-9);
        let threadpool = &row.peers[1];
        assert_eq!(threadpool.figure, None, "not in the store");
        assert_eq!(threadpool.advantage, None);
        let py = row
            .peers
            .iter()
            .find(|p| p.label.contains("Python"))
            .unwrap();
        assert!((py.advantage.unwrap() - 14.0).abs() < 1e-9);
        assert!(matches!(row.verdict, Verdict::Met(_)), "{:?}", row.verdict);
    }

    #[test]
    fn a_slower_ours_misses_and_the_tally_counts_it() {
        let mut figures = Figures::new();
        figures.insert("thread_pool/round_trip", "ours", criterion(30e-6));
        figures.insert("thread_pool/round_trip", "rayon_install", criterion(25e-6));
        let spec = RowSpec {
            title: "no target",
            rule: Rule::None,
            ..round_trip_spec()
        };
        // ROWS[0] (the future hand-off) has a target but nothing measured.
        let rows = build(&[round_trip_spec(), spec, ROWS[0]], &figures);
        assert!(matches!(rows[0].verdict, Verdict::Missed(_)));
        assert_eq!(rows[1].verdict, Verdict::NoTarget);
        assert_eq!(rows[2].verdict, Verdict::NotMeasured);
        assert_eq!(
            tally(&rows),
            Tally {
                met: 0,
                missed: 1,
                not_measured: 1
            }
        );
    }

    #[test]
    fn samples_no_row_shows_are_listed() {
        let mut figures = Figures::new();
        figures.insert("thread_pool/round_trip", "ours", criterion(30e-6));
        figures.insert("thread_pool/round_trip", "new_peer", criterion(30e-6));
        let unused = unused(ROWS, &figures);
        assert_eq!(
            unused,
            vec![&Key::new("thread_pool/round_trip", "new_peer")]
        );
    }
}
