//! Building the comparison table: row specs + measured figures -> rows with verdicts.
//!
//! This is the one place where figures meet targets. Each cell keeps an `Option<Figure>` so
//! the renderer can write "not measured" where a bench or a peer is missing, and the ratio of
//! each peer is always "ours against the peer, as a speed": above 1.00x we are faster (less
//! time, or more per second), below it the peer is. A ratio is the median of the per-round
//! ratios (ours and the peer ran interleaved in each round), with its range.
//!
//! Before a target is judged, the origin of its figures is checked: every round of ours (and
//! of the reference peer) must carry the commit this page is for. A figure from another
//! commit, or without a recorded commit, is "not judged", whatever it says.

use crate::figure::{Figure, Figures, Key, Origin, Ratio};
use crate::sources::FunctionRun;
use crate::targets::{RowSpec, Rule, Verdict};

/// One peer's cell.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerCell {
    /// The peer's label.
    pub label: &'static str,
    /// Its figure (median over its rounds), if measured.
    pub figure: Option<Figure>,
    /// Ours against the peer over the rounds both ran, if both were measured.
    pub ratio: Option<Ratio>,
}

impl PeerCell {
    /// How many times better ours is (the median ratio), if both were measured.
    pub fn advantage(&self) -> Option<f64> {
        self.ratio.map(|r| r.median)
    }
}

/// One built row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The spec it was built from.
    pub spec: RowSpec,
    /// Our figure (median over the rounds), if measured.
    pub ours: Option<Figure>,
    /// How many rounds measured ours.
    pub rounds: usize,
    /// The peers, in spec order.
    pub peers: Vec<PeerCell>,
    /// Met, missed, not measured, not judged, or no target.
    pub verdict: Verdict,
}

/// What the figures must come from to be judged.
#[derive(Clone, Copy, Debug)]
pub struct Judging<'a> {
    /// The commit this page is for (the "sources" line).
    pub commit: &'a str,
}

/// Builds one row per spec from the measured figures.
pub fn build(specs: &[RowSpec], figures: &Figures, judging: Judging<'_>) -> Vec<Row> {
    specs
        .iter()
        .map(|spec| build_row(*spec, figures, judging))
        .collect()
}

/// Why the figures of (op, who) cannot be judged for `commit`, if they cannot.
fn stale(figures: &Figures, op: &str, who: &str, commit: &str) -> Option<String> {
    let origins = figures.origins(op, who);
    if origins.iter().any(Option::is_none) {
        return Some(format!("`{who}`: no commit recorded with its figures"));
    }
    origins
        .into_iter()
        .flatten()
        .find(|o: &&Origin| o.commit != commit)
        .map(|o| {
            format!(
                "`{who}` was measured on {} at {}, not on {commit}",
                o.commit, o.time
            )
        })
}

fn build_row(spec: RowSpec, figures: &Figures, judging: Judging<'_>) -> Row {
    let ours = figures.get(spec.op, spec.ours, spec.kind);
    let rounds = figures.rounds(spec.op, spec.ours, spec.kind).len();
    let peers: Vec<PeerCell> = spec
        .peers
        .iter()
        .map(|p| PeerCell {
            label: p.label,
            figure: figures.get(p.op, p.who, spec.kind),
            ratio: figures.ratio((spec.op, spec.ours), (p.op, p.who), spec.kind),
        })
        .collect();
    let reference = spec.rule.reference_peer();
    let ratio = reference.and_then(|who| {
        spec.peers
            .iter()
            .zip(&peers)
            .find(|(p, _)| p.who == who && p.op == spec.op)
            .and_then(|(_, cell)| cell.ratio)
    });
    // Best of several peers: the smallest advantage of ours is over the best peer.
    let best = match spec.rule {
        Rule::RelativeToBest { peers: best, .. } => best
            .iter()
            .filter_map(|&(op, who)| {
                // Ours' median over its rounds against the peer's one figure (never paired
                // with one round of ours: a once-per-report figure belongs to no round).
                let advantage = ours?.advantage_over(figures.get(op, who, spec.kind)?)?;
                let r = crate::figure::Ratio {
                    median: advantage,
                    low: advantage,
                    high: advantage,
                    rounds: 1,
                };
                Some(((op, who), r))
            })
            .min_by(|a, b| a.1.median.total_cmp(&b.1.median)),
        _ => None,
    };
    let ratio = ratio.or(best.map(|(_, r)| r));
    let measured = ours.is_some() && (reference.is_none() || ratio.is_some());
    let staleness = if measured && spec.rule != Rule::None {
        stale(figures, spec.op, spec.ours, judging.commit)
            .or_else(|| reference.and_then(|who| stale(figures, spec.op, who, judging.commit)))
            .or_else(|| best.and_then(|((op, who), _)| stale(figures, op, who, judging.commit)))
    } else {
        None
    };
    // An absolute rule is judged round by round too: ours in each round against the goal.
    let ratio = match spec.rule {
        Rule::Absolute(goal) => against_goal(figures, spec, goal),
        _ => ratio,
    };
    let verdict = match staleness {
        Some(why) => Verdict::NotJudged(why),
        None => with_load_note(spec.rule.judge(ours, ratio), figures, spec),
    };
    Row {
        spec,
        ours,
        rounds,
        peers,
        verdict,
    }
}

/// Ours in each round as "times the goal" (above 1.0: better than the goal), so an absolute
/// rule sees the spread of its rounds; `None` for fewer than two rounds.
fn against_goal(figures: &Figures, spec: RowSpec, goal: Figure) -> Option<Ratio> {
    let advantages: Vec<f64> = figures
        .rounds(spec.op, spec.ours, spec.kind)
        .values()
        .filter_map(|f| f.advantage_over(goal))
        .collect();
    if advantages.len() < 2 {
        return None;
    }
    Some(Ratio {
        median: crate::figure::median(&advantages)?,
        low: advantages.iter().copied().fold(f64::INFINITY, f64::min),
        high: advantages.iter().copied().fold(0.0, f64::max),
        rounds: advantages.len(),
    })
}

/// Adds to a decided (or unsettled) verdict how many of ours' rounds ran without foreign load
/// beside them: "; rests on 2 clean rounds of 3 (1 beside foreign load)". A figure measured
/// once (a peer script, a timed command) has no rounds to count.
fn with_load_note(verdict: Verdict, figures: &Figures, spec: RowSpec) -> Verdict {
    let origins = figures.origins(spec.op, spec.ours);
    if origins.len() < 2 {
        return verdict;
    }
    let marks: Vec<Option<bool>> = origins
        .iter()
        .map(|o| o.and_then(|o| o.foreign_load))
        .collect();
    let count = |mark: Option<bool>| marks.iter().filter(|m| **m == mark).count();
    let (clean, loaded, unsampled) = (count(Some(false)), count(Some(true)), count(None));
    let mut note = format!(
        "; rests on {clean} clean round{} of {}",
        if clean == 1 { "" } else { "s" },
        marks.len()
    );
    let mut why = Vec::new();
    if loaded > 0 {
        why.push(format!("{loaded} beside foreign load"));
    }
    if unsampled > 0 {
        why.push(format!("{unsampled} not sampled"));
    }
    if !why.is_empty() {
        note.push_str(&format!(" ({})", why.join(", ")));
    }
    match verdict {
        Verdict::Met(text) => Verdict::Met(text + &note),
        Verdict::Missed(text) => Verdict::Missed(text + &note),
        Verdict::Unsettled(text) => Verdict::Unsettled(text + &note),
        other => other,
    }
}

/// The criterion groups to measure again: those of the unsettled rows whose figures came
/// from criterion rounds (`measured`, as loaded). A row of a figure measured otherwise (the
/// crypto sweep, Celery, a timed command) cannot be rerun by group and is left out. Group ids
/// of busy rows keep their [`crate::targets::BUSY`] suffix.
pub fn rerun_groups(rows: &[Row], measured: &[FunctionRun]) -> Vec<String> {
    let mut groups: Vec<String> = rows
        .iter()
        .filter(|row| matches!(row.verdict, Verdict::Unsettled(_)))
        .map(|row| row.spec.op)
        .filter(|op| measured.iter().any(|run| run.group == *op))
        .map(str::to_string)
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// Counts of verdicts, for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Targets met.
    pub met: usize,
    /// Targets missed.
    pub missed: usize,
    /// Targets without figures.
    pub not_measured: usize,
    /// Targets whose figures could not decide (stale, too few rounds).
    pub not_judged: usize,
    /// Targets whose rounds fell on both sides of them.
    pub unsettled: usize,
}

/// Counts the verdicts of `rows` (rows without a target are not counted).
pub fn tally(rows: &[Row]) -> Tally {
    let mut tally = Tally::default();
    for row in rows {
        match row.verdict {
            Verdict::Met(_) => tally.met += 1,
            Verdict::Missed(_) => tally.missed += 1,
            Verdict::NotMeasured => tally.not_measured += 1,
            Verdict::NotJudged(_) => tally.not_judged += 1,
            Verdict::Unsettled(_) => tally.unsettled += 1,
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

    const HERE: Judging<'static> = Judging { commit: "abc1234" };

    fn spec(op: &str) -> RowSpec {
        *ROWS.iter().find(|r| r.op == op).unwrap()
    }

    fn criterion(seconds: f64) -> Sample {
        Sample::Criterion {
            seconds_per_iter: seconds,
            throughput: Some(Throughput::Elements(1)),
        }
    }

    fn origin(commit: &str) -> Option<Origin> {
        Some(Origin {
            commit: commit.into(),
            time: "2026-12-02 17:00 UTC".into(),
            foreign_load: Some(false),
        })
    }

    /// Like [`origin`], with the load mark of the round.
    fn origin_loaded(commit: &str, foreign_load: Option<bool>) -> Option<Origin> {
        origin(commit).map(|o| Origin { foreign_load, ..o })
    }

    #[test]
    fn a_verdict_says_how_many_clean_rounds_it_rests_on() {
        let mut figures = idle_rounds([20e-6; 3], [25e-6; 3], "abc1234");
        let op = "thread_pool/round_trip_idle";
        // Round 2 ran beside foreign load, round 3 was not sampled.
        for (round, mark) in [(2, Some(true)), (3, None)] {
            for (who, t) in [("ours", 20e-6), ("rayon_install", 25e-6)] {
                let origin = origin_loaded("abc1234", mark);
                figures.insert_round(op, who, round, criterion(t), origin);
            }
        }
        let rows = build(&[spec(op)], &figures, HERE);
        let Verdict::Met(text) = &rows[0].verdict else {
            panic!("{:?}", rows[0].verdict);
        };
        assert!(
            text.ends_with("; rests on 1 clean round of 3 (1 beside foreign load, 1 not sampled)"),
            "{text}"
        );
        let clean = idle_rounds([20e-6; 3], [25e-6; 3], "abc1234");
        let rows = build(&[spec(op)], &clean, HERE);
        assert!(
            matches!(&rows[0].verdict, Verdict::Met(t) if t.ends_with("; rests on 3 clean rounds of 3")),
            "{:?}",
            rows[0].verdict
        );
    }

    /// Ours and rayon install in three rounds of the idle round trip.
    fn idle_rounds(ours: [f64; 3], rayon: [f64; 3], commit: &str) -> Figures {
        let mut figures = Figures::new();
        for round in 0..3 {
            let r = round as u32 + 1;
            let op = "thread_pool/round_trip_idle";
            figures.insert_round(op, "ours", r, criterion(ours[round]), origin(commit));
            figures.insert_round(
                op,
                "rayon_install",
                r,
                criterion(rayon[round]),
                origin(commit),
            );
        }
        figures
    }

    /// `map_auto` against the better of Python's two chunk sizes, each run once per report.
    fn auto_map(ours_per_item: f64, python: [f64; 2]) -> (RowSpec, Figures) {
        let spec = *ROWS
            .iter()
            .find(|r| r.ours == "ours_auto")
            .expect("the map_auto row");
        let mut figures = Figures::new();
        for r in 1..=3 {
            figures.insert_round(
                spec.op,
                "ours_auto",
                r,
                criterion(ours_per_item),
                origin("abc1234"),
            );
        }
        for (op, rate) in [
            ("process_pool/map_chunked", python[0]),
            (crate::targets::ops::MAP_CHUNKED_LARGE, python[1]),
        ] {
            figures.insert_round(
                op,
                "python",
                1,
                Sample::Direct(Figure::new(rate, Kind::Rate)),
                origin("abc1234"),
            );
        }
        (spec, figures)
    }

    #[test]
    fn a_best_of_peers_rule_judges_against_the_best_peer() {
        // Ours: 10M items/s. Python: 0.5M/s and 1.5M/s: 10x the best (1.5M) is missed,
        // although ours is 20x the other.
        let (spec, figures) = auto_map(1e-7, [0.5e6, 1.5e6]);
        let row = &build(&[spec], &figures, HERE)[0];
        let Verdict::Missed(text) = &row.verdict else {
            panic!("{:?}", row.verdict);
        };
        assert!(text.contains("6.67x") || text.contains("6.7x"), "{text}");
        let (spec, figures) = auto_map(1e-7, [0.5e6, 0.9e6]);
        let row = &build(&[spec], &figures, HERE)[0];
        assert!(matches!(row.verdict, Verdict::Met(_)), "{:?}", row.verdict);
        // Another commit's Python figure: not judged.
        let row = &build(&[spec], &figures, Judging { commit: "other" })[0];
        assert!(
            matches!(row.verdict, Verdict::NotJudged(_)),
            "{:?}",
            row.verdict
        );
    }

    #[test]
    fn a_row_gets_median_figures_ratios_and_a_verdict() {
        let figures = idle_rounds([20e-6, 22e-6, 40e-6], [25e-6, 22e-6, 60e-6], "abc1234");
        let rows = build(&[spec("thread_pool/round_trip_idle")], &figures, HERE);
        let row = &rows[0];
        assert_eq!(row.ours, Some(Figure::new(22e-6, Kind::Time)));
        assert_eq!(row.rounds, 3);
        let rayon = &row.peers[0];
        assert_eq!(rayon.label, "rayon install");
        let ratio = rayon.ratio.unwrap();
        // Per round: 1.25, 1.00, 1.50.
        assert!((ratio.median - 1.25).abs() < 1e-9, "{ratio:?}");
        assert!((ratio.low - 1.0).abs() < 1e-9);
        assert!((ratio.high - 1.5).abs() < 1e-9);
        assert_eq!(row.peers[1].figure, None, "not in the store");
        assert!(matches!(row.verdict, Verdict::Met(_)), "{:?}", row.verdict);
    }

    #[test]
    fn figures_from_another_commit_are_not_judged() {
        let figures = idle_rounds([20e-6; 3], [25e-6; 3], "0ld0ld0");
        let rows = build(&[spec("thread_pool/round_trip_idle")], &figures, HERE);
        let Verdict::NotJudged(why) = &rows[0].verdict else {
            panic!("{:?}", rows[0].verdict);
        };
        assert!(why.contains("measured on 0ld0ld0"), "{why}");
        assert!(why.contains("not on abc1234"), "{why}");
        let mut unstamped = Figures::new();
        unstamped.insert("process_pool/tiny_tasks", "ours", criterion(1e-6));
        let rows = build(&[spec("process_pool/tiny_tasks")], &unstamped, HERE);
        assert!(
            matches!(&rows[0].verdict, Verdict::NotJudged(w) if w.contains("no commit")),
            "{:?}",
            rows[0].verdict
        );
        assert_eq!(tally(&rows).not_judged, 1);
    }

    #[test]
    fn a_slower_ours_misses_and_the_tally_counts_it() {
        let figures = idle_rounds([30e-6; 3], [25e-6; 3], "abc1234");
        let no_target = RowSpec {
            title: "no target",
            rule: Rule::None,
            ..spec("thread_pool/round_trip_idle")
        };
        let rows = build(
            &[spec("thread_pool/round_trip_idle"), no_target, ROWS[0]],
            &figures,
            HERE,
        );
        assert!(matches!(rows[0].verdict, Verdict::Missed(_)));
        assert_eq!(rows[1].verdict, Verdict::NoTarget);
        assert_eq!(rows[2].verdict, Verdict::NotMeasured);
        assert_eq!(
            tally(&rows),
            Tally {
                met: 0,
                missed: 1,
                not_measured: 1,
                not_judged: 0,
                unsettled: 0
            }
        );
    }

    #[test]
    fn rounds_on_both_sides_of_the_target_leave_the_row_unsettled() {
        // Per round: 1.25x, 0.80x, 1.50x against the 1.0x needed: the median meets it, one
        // round does not.
        let figures = idle_rounds([20e-6, 25e-6, 40e-6], [25e-6, 20e-6, 60e-6], "abc1234");
        let rows = build(&[spec("thread_pool/round_trip_idle")], &figures, HERE);
        assert!(
            matches!(&rows[0].verdict, Verdict::Unsettled(t) if t.contains("0.80x-1.50x")),
            "{:?}",
            rows[0].verdict
        );
        assert_eq!(
            tally(&rows),
            Tally {
                unsettled: 1,
                ..Tally::default()
            }
        );
    }

    #[test]
    fn an_absolute_target_is_judged_round_by_round() {
        // 90k, 110k and 120k tasks/s against >= 100k/s: the median meets it, a round not.
        let mut figures = Figures::new();
        let op = "process_pool/tiny_tasks";
        for (r, rate) in [(1, 90e3), (2, 110e3), (3, 120e3)] {
            let sample = Sample::Direct(Figure::new(rate, Kind::Rate));
            figures.insert_round(op, "ours", r, sample, origin("abc1234"));
        }
        let rows = build(&[spec(op)], &figures, HERE);
        assert!(
            matches!(&rows[0].verdict, Verdict::Unsettled(t) if t.contains("90.0k/s-120k/s")),
            "{:?}",
            rows[0].verdict
        );
    }

    #[test]
    fn only_unsettled_rows_measured_by_criterion_are_rerun() {
        let unsettled = |op: &'static str, ours: &'static str| Row {
            spec: RowSpec {
                op,
                ours,
                ..spec("thread_pool/round_trip_idle")
            },
            ours: None,
            rounds: 3,
            peers: vec![],
            verdict: Verdict::Unsettled("after 3 rounds".into()),
        };
        let settled = Row {
            verdict: Verdict::Met("x".into()),
            ..unsettled("thread_pool/round_trip_hot", "ours")
        };
        let rows = [
            unsettled("thread_pool/round_trip_idle", "ours"),
            unsettled("thread_pool/round_trip_idle", "ours/cpu"),
            unsettled("thread_pool/throughput_200k@busy", "ours"),
            unsettled(crate::targets::ops::CRYPTO_SPEEDUP_2, "threads"),
            settled,
        ];
        let run = |group: &str| FunctionRun {
            group: group.into(),
            who: "ours".into(),
            round: 1,
            measured: crate::criterion::Measured {
                samples: 10,
                iterations: 100.0,
                seconds: 1.0,
            },
        };
        let measured = [
            run("thread_pool/round_trip_idle"),
            run("thread_pool/round_trip_hot"),
            run("thread_pool/throughput_200k@busy"),
        ];
        assert_eq!(
            rerun_groups(&rows, &measured),
            [
                "thread_pool/round_trip_idle",
                "thread_pool/throughput_200k@busy"
            ]
        );
    }

    #[test]
    fn samples_no_row_shows_are_listed() {
        let mut figures = Figures::new();
        figures.insert("thread_pool/round_trip_hot", "ours", criterion(30e-6));
        figures.insert("thread_pool/round_trip_hot", "new_peer", criterion(30e-6));
        let unused = unused(ROWS, &figures);
        assert_eq!(
            unused,
            vec![&Key::new("thread_pool/round_trip_hot", "new_peer")]
        );
    }
}
