//! The programs' logic at tiny sizes, in process, with every executor this build has.

use std::collections::BTreeMap;

#[ctor::ctor]
unsafe fn start_fork_server_before_main() {
    // The test harness has not started its threads yet: the fork server is
    // forked from a single-threaded process, as `main` does in the binaries.
    process_pool::start_fork_server();
}

use crypto::cli::{parse_futures_args, parse_sweep_args, run_futures, run_sweep};
use crypto::executors::ExecutorKind;
use crypto::jobs::{format_kb, job_sizes};
use crypto::sweep::Sweep;

/// Counts of each line, order ignored.
fn tally<'a>(lines: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        *counts.entry(line).or_insert(0) += 1;
    }
    counts
}

fn check_futures_output(text: &str, jobs: usize, size: usize, status_prefix: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), jobs + 1, "{text}");
    let expected: Vec<String> = job_sizes(jobs, size).into_iter().map(format_kb).collect();
    assert_eq!(
        tally(lines[..jobs].iter().copied()),
        tally(expected.iter().map(String::as_str))
    );
    let status = lines[jobs];
    assert!(status.starts_with(status_prefix), "status line: {status}");
    let seconds = status.rsplit(' ').next().unwrap().trim_end_matches('s');
    assert!(seconds.parse::<f64>().unwrap() >= 0.0, "{status}");
}

#[test]
fn crypto_futures_with_every_executor() {
    for executor in ExecutorKind::ALL {
        for ship in [false, true] {
            let mut argv = vec![
                "crypto-futures",
                "--executor",
                executor.name(),
                "--size",
                "8K",
            ];
            if executor != ExecutorKind::Seq {
                argv.extend(["--workers", "2"]);
            }
            if ship {
                argv.push("--ship-data");
            }
            let args = parse_futures_args(&argv).unwrap();
            let mut out = Vec::new();
            let report = run_futures(&args, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            let prefix = if executor == ExecutorKind::Seq {
                "sequential, "
            } else {
                "2 workers, "
            };
            check_futures_output(&text, 12, 8192, prefix);
            // Every job came back once, with the digest the sequential code computes.
            let mut indices: Vec<usize> = report.results.iter().map(|r| r.index).collect();
            indices.sort_unstable();
            assert_eq!(
                indices,
                (0..12).collect::<Vec<_>>(),
                "{executor} ship={ship}"
            );
            for result in &report.results {
                let spec = crypto::jobs::job_specs(12, 8192, args.seed)[result.index];
                assert_eq!(*result, crypto::jobs::run_job(spec).unwrap());
            }
        }
    }
}

#[test]
fn crypto_sweep_table_and_csv_parse_back() {
    let dir = std::env::temp_dir().join(format!("crypto-sweep-test-{}", std::process::id()));
    let dir_arg = dir.to_str().unwrap();
    let args = parse_sweep_args([
        "crypto-sweep",
        "--max-workers",
        "2",
        "--runs",
        "2",
        "--jobs",
        "4",
        "--size",
        "4K",
        "--out",
        dir_arg,
    ])
    .unwrap();
    let (mut out, mut progress) = (Vec::new(), Vec::new());
    let sweep = run_sweep(&args, &mut out, &mut progress).unwrap();
    let out = String::from_utf8(out).unwrap();

    let configurations = 1 + 2 * 2; // seq, then threads and procs with 1 and 2 workers
    assert_eq!(sweep.rows.len(), configurations);
    assert_eq!(
        String::from_utf8(progress).unwrap().lines().count(),
        2 * configurations
    );
    let seq = &sweep.rows[0];
    assert_eq!(
        (seq.executor, seq.workers, seq.runs),
        (ExecutorKind::Seq, 1, 2)
    );
    assert!((seq.speedup - 1.0).abs() < 1e-9);
    for row in &sweep.rows {
        assert!(row.min <= row.median && row.median <= row.max, "{row:?}");
    }

    // The CSV file holds the same rows (to its 6 decimals).
    let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let parsed = Sweep::parse_csv(&csv).unwrap();
    assert_eq!(parsed.rows.len(), sweep.rows.len());
    for (a, b) in parsed.rows.iter().zip(&sweep.rows) {
        assert_eq!(
            (a.executor, a.workers, a.runs),
            (b.executor, b.workers, b.runs)
        );
        assert!((a.median - b.median).abs() < 1e-5 && (a.speedup - b.speedup).abs() < 1e-5);
    }

    // The printed table: one Markdown row per configuration, in the same order.
    let table_rows: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| executor"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(table_rows.len(), sweep.rows.len(), "{out}");
    for (cells, row) in table_rows.iter().zip(&sweep.rows) {
        assert_eq!(cells[0], row.executor.name());
        assert_eq!(cells[1].parse::<usize>().unwrap(), row.workers);
        let median: f64 = cells[2].trim_end_matches(" s").parse().unwrap();
        assert!(
            (median - row.median).abs() <= 0.005 + 1e-9,
            "{cells:?} vs {row:?}"
        );
        let speedup: f64 = cells[5].trim_end_matches('x').parse().unwrap();
        assert!(
            (speedup - row.speedup).abs() <= 0.005 + 1e-9,
            "{cells:?} vs {row:?}"
        );
    }

    let svg = std::fs::read_to_string(dir.join("speedup.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("speedup"),
        "{}",
        &svg[..svg.len().min(200)]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
