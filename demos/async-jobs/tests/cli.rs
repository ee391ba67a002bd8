//! The built `async-jobs` binary: a small run on each pool, progress while
//! waiting, errors, `--help` and bad arguments.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_async-jobs");

/// Runs the binary; kills it and fails if it takes over a minute (never
/// hang). Returns its output and its pid.
fn run(args: &[&str]) -> (Output, u32) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    // std offers no wait-with-timeout for a child; a 10 ms poll in a test helper.
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("async-jobs {args:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), pid)
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `(cc, checksum, pid)` for each "XX rendered: ..." line.
fn rendered(stdout: &str) -> Vec<(String, String, u32)> {
    stdout
        .lines()
        .filter(|l| l.contains(" rendered: "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let checksum = words[words.iter().position(|w| *w == "checksum").unwrap() + 1];
            (
                words[0].to_string(),
                checksum.trim_end_matches(',').to_string(),
                words.last().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

const SMALL: [&str; 5] = ["--width", "60", "--passes", "2", "-v"];

#[test]
fn a_process_pool_run_renders_every_flag_once_in_worker_processes() {
    let (out, pid) = run(&[&SMALL[..], &["BR", "jp", "US", "--fail", "JP"]].concat());
    let stdout = stdout_of(&out);
    assert!(
        stdout.starts_with("Rendering 3 flags on 2 worker processes: from BR to US\n"),
        "{stdout}"
    );
    let mut flags = rendered(&stdout);
    flags.sort();
    let codes: Vec<&str> = flags.iter().map(|(cc, _, _)| cc.as_str()).collect();
    assert_eq!(codes, ["BR", "US"]);
    assert!(
        flags.iter().all(|(_, _, worker)| *worker != pid),
        "{stdout}"
    );
    assert!(
        stdout.contains("JP error: task failed: the renderer refused JP"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3/3 done, 0 running, 0 queued\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n2 flags rendered.\n1 errors.\n"),
        "{stdout}"
    );
}

#[test]
fn both_pools_compute_the_same_checksums() {
    let codes = ["CN", "IN", "BR", "NG"];
    let (procs, _) = run(&[&SMALL[..], &codes].concat());
    let (threads, pid) = run(&[&SMALL[..], &codes, &["--executor", "threads"]].concat());
    let threads = stdout_of(&threads);
    assert!(threads.starts_with("Rendering 4 flags on 2 worker threads"));
    let sums = |stdout: &str| {
        let mut v: Vec<_> = rendered(stdout)
            .into_iter()
            .map(|(cc, sum, _)| (cc, sum))
            .collect();
        v.sort();
        v
    };
    assert_eq!(sums(&stdout_of(&procs)), sums(&threads));
    assert_eq!(sums(&threads).len(), 4);
    // Threads run in the program's own process.
    assert!(rendered(&threads)
        .iter()
        .all(|(_, _, worker)| *worker == pid));
}

/// With a 1 ms tick and jobs that take far longer (debug build, one
/// worker), the event loop prints progress lines while it waits: it is not
/// blocked by the jobs. (A slow machine only makes the jobs longer.)
#[test]
fn the_event_loop_prints_progress_while_the_jobs_run() {
    let (out, _) = run(&[
        "--workers",
        "1",
        "--width",
        "400",
        "--passes",
        "10",
        "--tick-ms",
        "1",
        "BR",
        "JP",
    ]);
    let stdout = stdout_of(&out);
    let progress: Vec<&str> = stdout.lines().filter(|l| l.starts_with('[')).collect();
    let while_running = progress.iter().filter(|l| !l.contains(" 2/2 done")).count();
    assert!(while_running >= 2, "{stdout}");
    assert!(progress
        .last()
        .unwrap()
        .ends_with("2/2 done, 0 running, 0 queued"));
}

#[test]
fn help_exits_zero_with_usage() {
    let (out, _) = run(&["--help"]);
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("Usage: async-jobs [OPTIONS] [CC]..."),
        "{stdout}"
    );
    assert!(stdout.contains("--executor"));
}

#[test]
fn bad_arguments_exit_two_with_usage() {
    for bad in [
        &["BRA"][..],
        &["--workers", "0"],
        &["--executor", "gpu"],
        &["--every", "BR"],
    ] {
        let (out, _) = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("Usage: async-jobs"), "{bad:?}: {stderr}");
    }
}
