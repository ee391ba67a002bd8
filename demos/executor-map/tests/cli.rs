//! The built demo binaries: a fast run of each, and bad arguments.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MAP: &str = env!("CARGO_BIN_EXE_demo-executor-map");
const SUBMIT: &str = env!("CARGO_BIN_EXE_demo-executor-submit");

/// Runs a binary; kills it and fails if it takes over a minute (never hang).
fn run(bin: &str, args: &[&str]) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // std offers no wait-with-timeout for a child; a 10 ms poll in a test helper.
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{bin} {args:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn map_binary_prints_results_in_order() {
    let out = run(MAP, &["--unit-ms", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let results: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, m)| m))
        .filter(|m| m.starts_with("result "))
        .collect();
    assert_eq!(
        results,
        [
            "result 0: 0",
            "result 1: 10",
            "result 2: 20",
            "result 3: 30",
            "result 4: 40"
        ]
    );
    // A sub-second unit stamps milliseconds: [HH:MM:SS.mmm].
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with('[') && l.as_bytes()[13] == b']'),
        "{stdout}"
    );
    assert!(
        stdout.contains("\tloiter(1): doing nothing for 0.01s..."),
        "{stdout}"
    );
}

#[test]
fn submit_binary_prints_done_flags() {
    let out = run(SUBMIT, &["--unit-ms", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.matches("done? [").count(), 2, "{stdout}");
    assert!(stdout.contains("] result[4]: 40"), "{stdout}");
}

#[test]
fn each_demo_says_what_it_is() {
    let help = |bin| {
        let out = run(bin, &["--help"]);
        assert_eq!(out.status.code(), Some(0));
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout.lines().next().unwrap_or_default().to_string()
    };
    let (map, submit) = (help(MAP), help(SUBMIT));
    assert!(map.contains("Executor.map"), "{map}");
    assert!(submit.contains("submit"), "{submit}");
    assert_ne!(map, submit);
}

#[test]
fn bad_arguments_print_usage_and_exit_2() {
    for bin in [MAP, SUBMIT] {
        for args in [
            &["--unit-ms", "fast"][..],
            &["--unit-ms", "-5"],
            &["--unit-ms", "100000"],
            &["--workers", "0"],
            &["--tasks", "21"],
            &["--bogus"],
            &["positional"],
        ] {
            let out = run(bin, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{bin} {args:?}: {stderr}");
            let name = bin.rsplit('/').next().unwrap();
            if let Err(e) = demo_cli::check_usage_error(name, &stderr) {
                panic!("{args:?}: {e}");
            }
            assert!(out.stdout.is_empty());
        }
    }
}
