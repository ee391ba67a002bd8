//! Bad command lines: a usage error, exit status 2, never a panic.

mod common;

use std::time::Duration;

use common::run;

const LIMIT: Duration = Duration::from_secs(20);

fn flags2_programs() -> Vec<&'static str> {
    vec![
        env!("CARGO_BIN_EXE_flags2-sequential"),
        env!("CARGO_BIN_EXE_flags2-threadpool"),
    ]
}

#[test]
fn flags2_bad_arguments_exit_2_with_usage() {
    for exe in flags2_programs() {
        for args in [
            &["-l", "0"][..],
            &["-m", "0"],
            &["-m", "many"],
            &["-s", "FAST"],
            &["abc"],
            &["1"],
            &["--timeout", "-1"],
            &["--no-such-option"],
        ] {
            let out = run(exe, args, LIMIT);
            assert_eq!(out.code, Some(2), "{exe} {args:?}: {}", out.stderr);
            assert!(
                out.stderr.contains("Usage:"),
                "{exe} {args:?}: {}",
                out.stderr
            );
            assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
            assert!(out.stdout.is_empty(), "nothing downloaded: {}", out.stdout);
        }
        let out = run(exe, &["abc"], LIMIT);
        assert!(
            out.stderr
                .contains("*** Usage error: each CC argument must be A to Z or AA to ZZ"),
            "{}",
            out.stderr
        );
        let out = run(exe, &["-s", "FAST"], LIMIT);
        assert!(
            out.stderr
                .contains("must be one of DELAY, ERROR, LOCAL, REMOTE"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn help_lists_the_book_options() {
    let out = run(env!("CARGO_BIN_EXE_flags2-threadpool"), &["--help"], LIMIT);
    assert_eq!(out.code, Some(0));
    for needle in [
        "-a, --all",
        "-e, --every",
        "-l, --limit <N>",
        "-m, --max_req <CONCURRENT>",
        "(default=30)",
        "-s, --server <LABEL>",
        "-v, --verbose",
        "[CC]...",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle} missing from:\n{}",
            out.stdout
        );
    }
    let out = run(env!("CARGO_BIN_EXE_flags2-sequential"), &["--help"], LIMIT);
    assert!(out.stdout.contains("(default=1)"), "{}", out.stdout);
}

#[test]
fn other_programs_refuse_bad_arguments_too() {
    for (exe, args) in [
        (env!("CARGO_BIN_EXE_flags"), &["--bogus"][..]),
        (env!("CARGO_BIN_EXE_flags-threadpool"), &["-s", "nowhere"]),
        (env!("CARGO_BIN_EXE_flags-threadpool-ac"), &["extra"]),
        (env!("CARGO_BIN_EXE_flag-server"), &["--error-rate", "2"]),
        (env!("CARGO_BIN_EXE_flag-server"), &["--port", "70000"]),
        (env!("CARGO_BIN_EXE_flag-server"), &["--bind", "not-an-ip"]),
        (env!("CARGO_BIN_EXE_flag-server"), &["--delay", "-1"]),
    ] {
        let out = run(exe, args, LIMIT);
        assert_eq!(out.code, Some(2), "{exe} {args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("Usage:"),
            "{exe} {args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn flag_server_reports_a_busy_port_and_a_bad_dir() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(env!("CARGO_BIN_EXE_flag-server"), &["--port", &port], LIMIT);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot listen on 127.0.0.1:"),
        "{}",
        out.stderr
    );
    let out = run(
        env!("CARGO_BIN_EXE_flag-server"),
        &["--port", "0", "--dir", "/nonexistent"],
        LIMIT,
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot serve flags from /nonexistent"),
        "{}",
        out.stderr
    );
}
