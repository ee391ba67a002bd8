//! `sha-futures` logic in process, with every executor: the same digests on
//! `seq`, `threads` and `procs`, equal to hashing each job's data directly, and
//! the book's output format. (The built binary's runs and usage errors are in
//! `tests/cli.rs`, next to `crypto-futures`'.)

use std::collections::BTreeMap;

#[ctor::ctor]
unsafe fn start_fork_server_before_main() {
    // The test harness has not started its threads yet: the fork server is
    // forked from a single-threaded process, as `main` does in the binaries.
    process_pool::start_fork_server();
}

use crypto::cli::{parse_sha_args, run_sha_futures};
use crypto::executors::ExecutorKind;
use crypto::jobs::make_data;
use crypto::sha256::{hex, Sha256};
use crypto::sha_jobs::{run_sha, sha_specs, ShaResult};

/// Job index -> hex digest, computed here without any executor: the job's data
/// made in one buffer, hashed in one call.
fn direct_digests(jobs: usize, size: usize, seed: u64) -> BTreeMap<usize, String> {
    sha_specs(jobs, size, seed)
        .into_iter()
        .map(|spec| (spec.index, hex(&Sha256::digest(&make_data(spec)))))
        .collect()
}

fn by_index(results: &[ShaResult]) -> BTreeMap<usize, String> {
    let map: BTreeMap<usize, String> = results
        .iter()
        .map(|r| (r.index, r.hex_digest.clone()))
        .collect();
    assert_eq!(map.len(), results.len(), "a job came back twice");
    map
}

#[test]
fn same_digests_on_every_executor_as_a_direct_computation() {
    // 100,005 bytes: a whole 64 KiB chunk and a partial one, and not a
    // multiple of the generator's 8-byte words.
    let (jobs, size, seed) = (7, 100_005, 42);
    let expected = direct_digests(jobs, size, seed);
    let specs = sha_specs(jobs, size, seed);
    for executor in ExecutorKind::ALL {
        let mut printed = Vec::new();
        let report = run_sha(executor, 2, &specs, |r| printed.push(r.index)).unwrap();
        assert_eq!(by_index(&report.results), expected, "{executor}");
        assert!(report.results.iter().all(|r| r.size == size));
        let reported: Vec<usize> = report.results.iter().map(|r| r.index).collect();
        assert_eq!(printed, reported, "{executor}: on_done in completion order");
        let workers = if executor == ExecutorKind::Seq { 1 } else { 2 };
        assert_eq!(report.workers, workers, "{executor}");
    }
}

#[test]
fn program_output_hex_lines_then_the_status_line() {
    for executor in ExecutorKind::ALL {
        let mut argv = vec![
            "sha-futures",
            "--executor",
            executor.name(),
            "--size",
            "10K",
            "--seed",
            "7",
        ];
        if executor != ExecutorKind::Seq {
            argv.extend(["--workers", "2"]);
        }
        let args = parse_sha_args(&argv).unwrap();
        let mut out = Vec::new();
        let report = run_sha_futures(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 13, "{executor}: {text}");

        // One line per job, in completion order: the hex digest and nothing else.
        let in_report: Vec<&str> = report.results.iter().map(|r| &r.hex_digest[..]).collect();
        assert_eq!(lines[..12], in_report[..], "{executor}");
        for line in &lines[..12] {
            assert_eq!(line.len(), 64, "{line:?}");
            assert!(
                line.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{line:?}"
            );
        }
        let mut printed: Vec<String> = lines[..12].iter().map(|l| l.to_string()).collect();
        printed.sort();
        let mut expected: Vec<String> = direct_digests(12, 10 * 1024, 7).into_values().collect();
        expected.sort();
        assert_eq!(printed, expected, "{executor}");

        let status = lines[12];
        let prefix = if executor == ExecutorKind::Seq {
            "sequential, elapsed time: "
        } else {
            "2 workers, elapsed time: "
        };
        let seconds = status
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('s'))
            .unwrap_or_else(|| panic!("status line: {status}"));
        assert_eq!(seconds.split('.').nth(1).map(str::len), Some(2), "{status}");
        assert!(seconds.parse::<f64>().unwrap() >= 0.0, "{status}");
    }
}
