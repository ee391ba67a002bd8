//! The operations the report shows, their peers, and the targets of docs/design.md section 3
//! (plus the future hand-off, whose target is stated in its bench rather than in the design).
//!
//! Each [`RowSpec`] names where its figures live in the store (the criterion group id and
//! function ids, or the op name a peer script prints), the kind the row is shown in, and the
//! [`Rule`] that decides "met" or "missed". The rules are plain comparisons, written once:
//!
//! * [`Rule::RelativeTo`]`{ peer, factor }`: ours must be no worse than `factor` times the
//!   peer *measured in the same run* (for a time: `ours <= factor * peer`; for a rate or a
//!   bandwidth: `ours >= factor * peer`). Comparing within one run is what makes these
//!   targets meaningful on two noisy shared cores.
//! * [`Rule::Absolute`]: ours must reach a fixed figure (`>= 100k tasks/s`, `< 0.6 s`).
//!
//! A row whose figure (or whose reference peer) was not measured gets no verdict at all:
//! "not measured" is never counted as met.

use crate::figure::{Figure, Kind};

/// How a target is decided.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// No target: the row is shown for information.
    None,
    /// Ours against `factor` times the figure of peer `peer` (a `who` of the same row).
    RelativeTo {
        /// The peer's `who` (e.g. `"rayon_install"`).
        peer: &'static str,
        /// The allowed factor (1.0: at least as good; 1.5: at most 1.5x the time).
        factor: f64,
    },
    /// Ours against a fixed figure.
    Absolute(Figure),
}

/// The outcome of a rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The target is met; the text says by what margin.
    Met(String),
    /// The target is missed; the text gives the figure against the target.
    Missed(String),
    /// Ours or the reference peer has no figure in this run.
    NotMeasured,
    /// The row has no target.
    NoTarget,
}

impl Rule {
    /// Judges `ours` (and `reference`, the peer named by a relative rule).
    pub fn judge(&self, ours: Option<Figure>, reference: Option<Figure>) -> Verdict {
        let Some(ours) = ours else {
            return match self {
                Rule::None => Verdict::NoTarget,
                _ => Verdict::NotMeasured,
            };
        };
        let (goal, against) = match *self {
            Rule::None => return Verdict::NoTarget,
            Rule::Absolute(goal) => (goal, format!("target {goal}")),
            Rule::RelativeTo { peer, factor } => {
                let Some(reference) = reference else {
                    return Verdict::NotMeasured;
                };
                let goal = Figure::new(reference.value * factor, reference.kind);
                (goal, format!("{factor}x {peer} = {goal}"))
            }
        };
        if goal.kind != ours.kind {
            return Verdict::NotMeasured;
        }
        let met = if ours.kind.higher_is_better() {
            ours.value >= goal.value
        } else {
            ours.value <= goal.value
        };
        let text = format!("{ours} vs {against}");
        if met {
            Verdict::Met(text)
        } else {
            Verdict::Missed(text)
        }
    }

    /// The peer a relative rule compares against.
    pub fn reference_peer(&self) -> Option<&'static str> {
        match self {
            Rule::RelativeTo { peer, .. } => Some(peer),
            _ => None,
        }
    }
}

/// A peer column of a row: a label and where its figure is filed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeerSpec {
    /// Shown in the table (e.g. `"rayon install"`).
    pub label: &'static str,
    /// The op it is filed under (often the row's own op).
    pub op: &'static str,
    /// Who measured it (a criterion function id, or `"python"`).
    pub who: &'static str,
}

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowSpec {
    /// What the row measures, in words.
    pub title: &'static str,
    /// Where our figure is filed: the op ...
    pub op: &'static str,
    /// ... and who (usually `"ours"`).
    pub ours: &'static str,
    /// The kind the row is shown in.
    pub kind: Kind,
    /// The peers, in the order they are shown.
    pub peers: &'static [PeerSpec],
    /// The target as docs/design.md words it.
    pub target: &'static str,
    /// How the target is decided.
    pub rule: Rule,
}

const fn peer(label: &'static str, op: &'static str, who: &'static str) -> PeerSpec {
    PeerSpec { label, op, who }
}

const fn python(op: &'static str) -> PeerSpec {
    peer("Python concurrent.futures", op, "python")
}

/// Ops that are not criterion groups: the crypto sweep and the timed flag downloads.
pub mod ops {
    /// Crypto jobs with 2 workers on 2 cores; who = `threads` or `processes`.
    pub const CRYPTO_SPEEDUP_2: &str = "crypto/speedup_2_workers";
    /// `flags2-threadpool -s DELAY`: 20 flags from a server with a 0.5 s delay.
    pub const FLAGS_DELAY_20: &str = "flags/delay_20";
    /// `flags2-threadpool -e -s LOCAL`: every code AA..ZZ from a local server, no delay.
    pub const FLAGS_EVERY_LOCAL: &str = "flags/every_local";
    /// The Python map with a chunksize larger than 1000.
    pub const MAP_CHUNKED_LARGE: &str = "process_pool/map_chunked_large";
}

/// The table, in the order of docs/design.md section 3, then the rows without a target.
pub const ROWS: &[RowSpec] = &[
    RowSpec {
        title: "future hand-off ping-pong: value set on one thread, read by a blocked waiter",
        op: "future/handoff",
        ours: "future",
        kind: Kind::Time,
        peers: &[
            peer(
                "crossbeam zero-capacity channel",
                "future/handoff",
                "crossbeam_zero",
            ),
            peer("std mpsc channel", "future/handoff", "std_mpsc"),
            python("future/handoff"),
        ],
        // Not in docs/design.md section 3: the target the bench itself states.
        target: "<= crossbeam zero channel (the bench's own target)",
        rule: Rule::RelativeTo {
            peer: "crossbeam_zero",
            factor: 1.0,
        },
    },
    RowSpec {
        title: "thread pool submit->result round trip, idle pool",
        op: "thread_pool/round_trip",
        ours: "ours",
        kind: Kind::Time,
        peers: &[
            peer("rayon install", "thread_pool/round_trip", "rayon_install"),
            peer(
                "threadpool crate",
                "thread_pool/round_trip",
                "threadpool_crate",
            ),
            peer(
                "raw thread ping-pong",
                "thread_pool/round_trip",
                "raw_thread_ping_pong",
            ),
            python("thread_pool/round_trip"),
        ],
        target: "<= rayon in the same run",
        rule: Rule::RelativeTo {
            peer: "rayon_install",
            factor: 1.0,
        },
    },
    RowSpec {
        title: "thread pool: 200k tiny tasks, each with a future",
        op: "thread_pool/throughput_200k",
        ours: "ours",
        kind: Kind::Rate,
        peers: &[
            peer(
                "threadpool crate",
                "thread_pool/throughput_200k",
                "threadpool_crate",
            ),
            peer(
                "rayon scope.spawn",
                "thread_pool/throughput_200k",
                "rayon_scope",
            ),
            python("thread_pool/throughput_200k"),
        ],
        target: ">= 1.2x threadpool crate",
        rule: Rule::RelativeTo {
            peer: "threadpool_crate",
            factor: 1.2,
        },
    },
    RowSpec {
        title: "thread pool map over 1M items",
        op: "thread_pool/map_1m",
        ours: "ours",
        kind: Kind::Rate,
        peers: &[
            peer("rayon par_iter", "thread_pool/map_1m", "rayon_par_iter"),
            peer(
                "Python concurrent.futures (200k items)",
                "thread_pool/map_1m",
                "python",
            ),
        ],
        target: "-",
        rule: Rule::None,
    },
    RowSpec {
        title: "process pool round trip, tiny task",
        op: "process_pool/round_trip",
        ours: "ours",
        kind: Kind::Time,
        peers: &[
            peer(
                "raw pipe ping-pong",
                "process_pool/round_trip",
                "raw_pipe_ping_pong",
            ),
            python("process_pool/round_trip"),
        ],
        target: "<= 1.5x raw pipe ping-pong",
        rule: Rule::RelativeTo {
            peer: "raw_pipe_ping_pong",
            factor: 1.5,
        },
    },
    RowSpec {
        title: "process pool: tiny tasks, one per submit",
        op: "process_pool/tiny_tasks",
        ours: "ours",
        kind: Kind::Rate,
        peers: &[python("process_pool/tiny_tasks")],
        target: ">= 100k/s",
        rule: Rule::Absolute(Figure {
            value: 100e3,
            kind: Kind::Rate,
        }),
    },
    RowSpec {
        title: "process pool map, chunked (u64 -> u64)",
        op: "process_pool/map_chunked",
        ours: "ours",
        kind: Kind::Rate,
        peers: &[
            peer(
                "Python concurrent.futures (chunksize 1000)",
                "process_pool/map_chunked",
                "python",
            ),
            peer(
                "Python concurrent.futures (chunksize 100000)",
                ops::MAP_CHUNKED_LARGE,
                "python",
            ),
        ],
        target: ">= 10M/s",
        rule: Rule::Absolute(Figure {
            value: 10e6,
            kind: Kind::Rate,
        }),
    },
    RowSpec {
        title: "process pool: 16 MiB payload in and out (bytes moved both ways per second)",
        op: "process_pool/payload_16mib",
        ours: "ours",
        kind: Kind::Bandwidth,
        peers: &[
            peer("raw pipe", "process_pool/payload_16mib", "raw_pipe"),
            python("process_pool/payload_16mib"),
        ],
        target: ">= 0.8x raw pipe",
        rule: Rule::RelativeTo {
            peer: "raw_pipe",
            factor: 0.8,
        },
    },
    RowSpec {
        title: "AES-128-CTR, one core",
        op: "crypto/aes_ctr",
        ours: "ours",
        kind: Kind::Bandwidth,
        peers: &[peer("RustCrypto ctr crate", "crypto/aes_ctr", "ctr_crate")],
        target: ">= 0.9x ctr crate",
        rule: Rule::RelativeTo {
            peer: "ctr_crate",
            factor: 0.9,
        },
    },
    RowSpec {
        title: "crypto jobs, 2 workers on 2 cores: threads",
        op: ops::CRYPTO_SPEEDUP_2,
        ours: "threads",
        kind: Kind::Speedup,
        peers: &[],
        target: ">= 1.85x",
        rule: Rule::Absolute(Figure {
            value: 1.85,
            kind: Kind::Speedup,
        }),
    },
    RowSpec {
        title: "crypto jobs, 2 workers on 2 cores: processes",
        op: ops::CRYPTO_SPEEDUP_2,
        ours: "processes",
        kind: Kind::Speedup,
        peers: &[],
        target: ">= 1.85x",
        rule: Rule::Absolute(Figure {
            value: 1.85,
            kind: Kind::Speedup,
        }),
    },
    RowSpec {
        title: "flags2-threadpool -s DELAY: 20 flags, 0.5 s server delay (whole command)",
        op: ops::FLAGS_DELAY_20,
        ours: "ours",
        kind: Kind::Time,
        peers: &[python(ops::FLAGS_DELAY_20)],
        target: "< 0.6 s (0.5 s floor)",
        rule: Rule::Absolute(Figure {
            value: 0.6,
            kind: Kind::Time,
        }),
    },
    RowSpec {
        title: "flags2-threadpool -e -s LOCAL: every code AA..ZZ, no delay (whole command)",
        op: ops::FLAGS_EVERY_LOCAL,
        ours: "ours",
        kind: Kind::Time,
        peers: &[],
        target: "-",
        rule: Rule::None,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn t(us: f64) -> Option<Figure> {
        Some(Figure::new(us * 1e-6, Kind::Time))
    }

    fn r(per_s: f64) -> Option<Figure> {
        Some(Figure::new(per_s, Kind::Rate))
    }

    #[test]
    fn relative_time_rule_is_met_only_at_or_under_the_factor() {
        let rule = Rule::RelativeTo {
            peer: "raw_pipe_ping_pong",
            factor: 1.5,
        };
        assert!(matches!(rule.judge(t(140.0), t(100.0)), Verdict::Met(_)));
        let missed = rule.judge(t(160.0), t(100.0));
        let Verdict::Missed(text) = missed else {
            panic!("expected missed, got {missed:?}");
        };
        assert!(text.contains("160 us"), "the figure is in the text: {text}");
        assert!(text.contains("150 us"), "so is the goal: {text}");
    }

    #[test]
    fn relative_rate_rule_needs_the_factor_above_the_peer() {
        let rule = Rule::RelativeTo {
            peer: "threadpool_crate",
            factor: 1.2,
        };
        assert!(matches!(rule.judge(r(6e6), r(4.5e6)), Verdict::Met(_)));
        assert!(matches!(rule.judge(r(5e6), r(4.5e6)), Verdict::Missed(_)));
    }

    #[test]
    fn absolute_rules_follow_the_kind_direction() {
        let rate = Rule::Absolute(Figure::new(100e3, Kind::Rate));
        assert!(matches!(rate.judge(r(150e3), None), Verdict::Met(_)));
        assert!(matches!(rate.judge(r(50e3), None), Verdict::Missed(_)));
        let time = Rule::Absolute(Figure::new(0.6, Kind::Time));
        assert!(matches!(time.judge(t(550e3), None), Verdict::Met(_)));
        assert!(matches!(time.judge(t(700e3), None), Verdict::Missed(_)));
    }

    #[test]
    fn missing_figures_are_never_met() {
        let rule = Rule::RelativeTo {
            peer: "rayon_install",
            factor: 1.0,
        };
        assert_eq!(rule.judge(None, t(20.0)), Verdict::NotMeasured);
        assert_eq!(rule.judge(t(20.0), None), Verdict::NotMeasured);
        assert_eq!(Rule::None.judge(t(1.0), None), Verdict::NoTarget);
        let mismatched = Rule::Absolute(Figure::new(1.0, Kind::Speedup));
        assert_eq!(mismatched.judge(t(1.0), None), Verdict::NotMeasured);
    }

    #[test]
    fn every_relative_rule_names_one_of_its_rows_peers() {
        for row in ROWS {
            if let Some(reference) = row.rule.reference_peer() {
                assert!(
                    row.peers
                        .iter()
                        .any(|p| p.who == reference && p.op == row.op),
                    "{}: rule peer {reference} is not a peer of the row",
                    row.title
                );
            }
            if let Rule::Absolute(goal) = row.rule {
                assert_eq!(goal.kind, row.kind, "{}", row.title);
            }
        }
    }
}
