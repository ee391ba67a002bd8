//! The worker binary's command line: usage errors exit 2, `--list` names the tasks.

use std::process::Command;

fn worker(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_celery-worker"))
        .args(args)
        .output()
        .expect("run celery-worker")
}

#[test]
fn bad_arguments_print_the_usage_and_exit_2() {
    for args in [
        &["--bogus"][..],
        &["-c", "zero"],
        &["--broker", "http://x"],
        &["--pool", "fibers"],
        // Seconds that no Duration holds, or too small to mean anything:
        // a usage error, not a panic.
        &["--visibility-timeout", "1e30"],
        &["--restore-interval", "1e300"],
        &["--result-expires", "18446744073709551616"],
        &["--restore-interval", "1e-12"],
        &["--visibility-timeout", "NaN"],
        &["--result-expires", "-1"],
        // More runner threads than any machine starts: `usize::MAX`
        // overflowed the connection pools' size (a panic), a million
        // aborted the process when thread creation failed.
        &["-c", "18446744073709551615"],
        &["-c", "1000000"],
    ] {
        let out = worker(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("usage: celery-worker"), "{args:?}: {err}");
    }
}

#[test]
fn help_and_list_exit_0() {
    let out = worker(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--visibility-timeout"));
    let out = worker(&["--list"]);
    assert_eq!(out.status.code(), Some(0));
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(names.lines().any(|l| l == "rust.add"), "{names}");
}
