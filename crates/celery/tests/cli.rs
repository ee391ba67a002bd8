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
