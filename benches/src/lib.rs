//! The benchmark report: one command measures every primitive against every peer and
//! rewrites `docs/benchmarks.md`.
//!
//! ```sh
//! cargo run --release -p benches --bin report            # ~5 minutes on 2 cores
//! cargo run --release -p benches --bin report -- --quick # rough figures, fast
//! cargo run --release -p benches --bin report -- --long  # stable figures, slow
//! ```
//!
//! # How it works
//!
//! The criterion benches live in each package (`crates/*/benches`, `demos/*/benches`) and
//! put our implementation and its Rust peers in the same bench group. The report:
//!
//! 1. runs each of those benches with `cargo bench` and criterion settings for the mode
//!    ([`live`]), then the Python `concurrent.futures` peers in `benches/peers/`
//!    ([`peers`]), the crypto worker sweep, and the flag downloaders, timed as whole
//!    commands; the raw outputs stay in plain files;
//! 2. loads those files into one store of figures ([`sources`], [`criterion`], [`sweep`],
//!    [`figure`]);
//! 3. builds one row per operation of docs/design.md section 3 with ours, each peer, the ratio and
//!    the verdict of the target ([`targets`], [`table`]);
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
//! use benches::figure::{Figure, Figures, Kind, Sample, Throughput};
//! use benches::table;
//! use benches::targets::{Verdict, ROWS};
//!
//! let mut figures = Figures::new();
//! // criterion: one iteration of 200k tasks took 30 ms for us, 50 ms for the threadpool crate.
//! let batch = |seconds| Sample::Criterion {
//!     seconds_per_iter: seconds,
//!     throughput: Some(Throughput::Elements(200_000)),
//! };
//! figures.insert("thread_pool/throughput_200k", "ours", batch(0.030));
//! figures.insert("thread_pool/throughput_200k", "threadpool_crate", batch(0.050));
//! // The Python peer printed {"op": "thread_pool/throughput_200k", "value": 30000, "unit": "tasks/s"}.
//! let python = Figure::from_unit(30_000.0, "tasks/s").unwrap();
//! figures.insert("thread_pool/throughput_200k", "python", Sample::Direct(python));
//!
//! let rows = table::build(ROWS, &figures);
//! let row = rows.iter().find(|r| r.spec.op == "thread_pool/throughput_200k").unwrap();
//! assert_eq!(row.ours.unwrap().to_string(), "6.67M/s");
//! // Ours against the threadpool crate: 1.67x, above the 1.2x target.
//! assert!((row.peers[0].advantage.unwrap() - 5.0 / 3.0).abs() < 1e-9);
//! assert!(matches!(row.verdict, Verdict::Met(_)));
//! // Python's cell: 30.0k/s, and we are 222x faster.
//! assert_eq!(row.peers[2].figure.unwrap().to_string(), "30.0k/s");
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
pub mod run;
pub mod sources;
pub mod sweep;
pub mod table;
pub mod targets;
