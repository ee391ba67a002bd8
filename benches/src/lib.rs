//! The benchmark report: one command measures every primitive against every peer and
//! rewrites `docs/benchmarks.md`.
//!
//! ```sh
//! cargo run --release -p benches --bin report            # ~20 minutes on 2 cores
//! cargo run --release -p benches --bin report -- --quick # <= ~10 minutes on 2 cores
//! cargo run --release -p benches --bin report -- --long  # stable figures, slow
//! ```
//!
//! # How it works
//!
//! The criterion benches live in each package (`crates/*/benches`, `demos/*/benches`) and
//! put our implementation and its Rust peers in the same bench group. The report:
//!
//! 1. runs each of those benches with `cargo bench` in rounds, each round stamped with the
//!    commit and time ([`provenance`]), the order of ours and the peers reversed every other
//!    round, the settings of the mode passed to every group; then the key rows again with two
//!    busy loops beside them; then the Python `concurrent.futures` peers in `benches/peers/`
//!    ([`peers`]), the crypto worker sweep, and the flag downloaders, timed as whole
//!    commands ([`live`]); the raw outputs stay in plain files;
//! 2. loads those files into one store of figures, round by round, each with its origin
//!    ([`sources`], [`criterion`], [`sweep`], [`figure`]);
//! 3. builds one row per operation with ours, each peer, the median per-round ratio and its
//!    range, and the verdict of the target, judging only figures of this commit measured in
//!    enough rounds ([`targets`], [`table`]);
//! 4. draws the SVG plots ([`plot`]) and writes the Markdown page ([`markdown`], [`page`]),
//!    headed by the machine it ran on ([`machine`]).
//!
//! `--from-samples DIR` skips step 1 and reads a folder of recorded outputs instead; the tests
//! use it on `tests/data/`, so the parsing and table building are tested on real output.
//!
//! # Example
//!
//! Judging one row from figures, the way the report does for every row:
//!
//! ```
//! use benches::figure::{Figure, Figures, Origin, Sample, Throughput};
//! use benches::table::{self, Judging};
//! use benches::targets::{Verdict, ROWS};
//!
//! let mut figures = Figures::new();
//! let here = Origin {
//!     commit: "abc1234".into(),
//!     time: "2026-12-02 18:00 UTC".into(),
//!     foreign_load: Some(false), // the load average stayed within what the round explains
//! };
//! // criterion: one iteration of 200k tasks took 30 ms for us, 50 ms for the threadpool
//! // crate, in each of three rounds.
//! let batch = |seconds| Sample::Criterion {
//!     seconds_per_iter: seconds,
//!     throughput: Some(Throughput::Elements(200_000)),
//! };
//! for round in 1..=3 {
//!     let op = "thread_pool/throughput_200k";
//!     figures.insert_round(op, "ours", round, batch(0.030), Some(here.clone()));
//!     figures.insert_round(op, "threadpool_crate", round, batch(0.050), Some(here.clone()));
//! }
//! // The Python peer printed {"op": "thread_pool/throughput_200k", "value": 30000, "unit": "tasks/s"}.
//! let python = Figure::from_unit(30_000.0, "tasks/s").unwrap();
//! figures.insert("thread_pool/throughput_200k", "python", Sample::Direct(python));
//!
//! let rows = table::build(ROWS, &figures, Judging { commit: "abc1234" });
//! let row = rows.iter().find(|r| r.spec.op == "thread_pool/throughput_200k").unwrap();
//! assert_eq!(row.ours.unwrap().to_string(), "6.67M/s");
//! // Ours against the threadpool crate: 1.67x in every round, above the 1.2x target.
//! assert!((row.peers[0].advantage().unwrap() - 5.0 / 3.0).abs() < 1e-9);
//! assert!(matches!(row.verdict, Verdict::Met(_)));
//! // Python's cell: 30.0k/s, and we are 222x faster.
//! assert_eq!(row.peers[2].figure.unwrap().to_string(), "30.0k/s");
//!
//! // The same figures measured on another commit decide nothing.
//! let rows = table::build(ROWS, &figures, Judging { commit: "def5678" });
//! let row = rows.iter().find(|r| r.spec.op == "thread_pool/throughput_200k").unwrap();
//! assert!(matches!(row.verdict, Verdict::NotJudged(_)));
//! ```

pub mod criterion;
pub mod figure;
pub mod flag_server;
pub mod live;
pub mod machine;
pub mod markdown;
pub mod page;
pub mod peers;
pub mod plot;
pub mod provenance;
pub mod run;
pub mod sources;
pub mod sweep;
pub mod table;
pub mod targets;
