//! The built binaries: a tiny successful run, and bad arguments -> usage + exit 2.

use std::process::{Command, Output};
use std::time::Duration;

const FUTURES: &str = env!("CARGO_BIN_EXE_crypto-futures");
const SWEEP: &str = env!("CARGO_BIN_EXE_crypto-sweep");
const SHA: &str = env!("CARGO_BIN_EXE_sha-futures");

/// Runs a binary, killing it if it takes more than a minute (a test never hangs).
fn run(bin: &str, args: &[&str]) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Polling a child's exit status is the only portable std way to bound it; 10 ms
    // steps in a test helper, not in a primitive.
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{bin} {args:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Runs a binary that must succeed, and returns its standard output.
fn run_ok(bin: &str, args: &[&str]) -> String {
    let out = run(bin, args);
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_usage_error(bin: &str, args: &[&str]) {
    let out = run(bin, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    let name = bin.rsplit('/').next().unwrap();
    if let Err(e) = demo_cli::check_usage_error(name, &stderr) {
        panic!("{args:?}: {e}");
    }
    assert!(out.stdout.is_empty(), "{args:?}: printed to stdout");
}

#[test]
fn crypto_futures_sequential_run() {
    let stdout = run_ok(
        FUTURES,
        &["--executor", "seq", "--size", "4K", "--jobs", "3"],
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..3], ["6.0 KB", "4.7 KB", "3.3 KB"], "{stdout}");
    assert!(
        lines[3].starts_with("sequential, elapsed time: "),
        "{stdout}"
    );
}

/// `crypto-futures` output: one "... KB" line per job, then the status line.
fn assert_twelve_jobs_on_two_workers(stdout: &str) {
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(" KB")).count(),
        12,
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("2 workers, elapsed time: "),
        "{stdout}"
    );
}

#[test]
fn crypto_futures_thread_pool_run() {
    let stdout = run_ok(
        FUTURES,
        &["--executor", "threads", "--workers", "2", "--size", "4K"],
    );
    assert_twelve_jobs_on_two_workers(&stdout);
}

#[test]
fn crypto_futures_process_pool_run_with_large_shipped_data() {
    let stdout = run_ok(
        FUTURES,
        &[
            "--executor",
            "procs",
            "--workers",
            "2",
            "--size",
            "1M", // jobs of 0.6-1.5 MiB: several chunks each, frames larger than a pipe buffer
            "--ship-data",
        ],
    );
    assert_twelve_jobs_on_two_workers(&stdout);
}

/// Bad values of the options `crypto-futures` and `sha-futures` share.
const BAD_BATCH_ARGUMENTS: [&[&str]; 8] = [
    &["--executor", "fibers"],
    &["--workers", "0"],
    &["--workers", "many"],
    &["--jobs", "0"],
    &["--size", "12Q"],
    &["--size", "-1"],
    &["--executor", "seq", "--workers", "2"],
    &["extra"],
];

#[test]
fn crypto_futures_bad_arguments() {
    for args in BAD_BATCH_ARGUMENTS
        .into_iter()
        .chain([&["--frobnicate"][..]])
    {
        assert_usage_error(FUTURES, args);
    }
}

#[test]
fn sha_futures_process_pool_run() {
    let stdout = run_ok(
        SHA,
        &["--workers", "2", "--jobs", "3", "--size", "100K"], // procs by default
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    // The digest of the first job (seed 2015, 100 KiB of SplitMix64 bytes),
    // whichever order the jobs completed in.
    let first = crypto::sha256::hex(&crypto::sha256::Sha256::digest(&crypto::jobs::make_data(
        crypto::jobs::JobSpec {
            index: 0,
            size: 100 * 1024,
            seed: 2015,
        },
    )));
    assert!(lines[..3].contains(&first.as_str()), "{stdout}");
    assert!(lines[..3].iter().all(|l| l.len() == 64), "{stdout}");
    assert!(
        lines[3].starts_with("2 workers, elapsed time: "),
        "{stdout}"
    );
}

#[test]
fn sha_futures_bad_arguments() {
    let own: [&[&str]; 3] = [
        &["--jobs", "10001"],
        &["--seed", "-1"],
        &["--ship-data"], // crypto-futures' option, not this one's
    ];
    for args in BAD_BATCH_ARGUMENTS.into_iter().chain(own) {
        assert_usage_error(SHA, args);
    }
}

#[test]
fn crypto_sweep_bad_arguments() {
    let file = std::env::temp_dir().join(format!("crypto-sweep-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, "x").unwrap();
    for args in [
        &["--runs", "0"][..],
        &["--max-workers", "0"],
        &["--max-workers", "two"],
        &["--size", "1T"],
        &["--out", file.to_str().unwrap()],
    ] {
        assert_usage_error(SWEEP, args);
    }
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn help_exits_zero() {
    for bin in [FUTURES, SHA, SWEEP] {
        let out = run(bin, &["--help"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"));
    }
}

#[test]
fn crypto_sweep_that_cannot_write_its_files_exits_1() {
    // /proc refuses new directories, even to root.
    let out = run(
        SWEEP,
        &[
            "--max-workers",
            "1",
            "--runs",
            "1",
            "--jobs",
            "2",
            "--size",
            "1K",
            "--out",
            "/proc/crypto-sweep",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("crypto-sweep: error: cannot write the output"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Usage:"),
        "a run failure is not a usage error: {stderr}"
    );
}
