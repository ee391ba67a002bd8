//! Bad command lines: a usage error, exit status 2, never a panic.

mod common;

use std::time::Duration;

use common::run;

const LIMIT: Duration = Duration::from_secs(20);

fn flags2_programs() -> Vec<&'static str> {
    vec![
        env!("CARGO_BIN_EXE_flags2-sequential"),
        env!("CARGO_BIN_EXE_flags2-threadpool"),
        env!("CARGO_BIN_EXE_flags2-procpool"),
    ]
}

/// Every bad command line of every program: status 2, nothing on stdout, and
/// on stderr one format: `error: ...`, a blank line, `Usage: <program> ...`,
/// a blank line, clap's `For more information, try '--help'.`
fn assert_usage_error(exe: &str, args: &[&str]) -> String {
    let out = run(exe, args, LIMIT);
    let name = exe.rsplit('/').next().unwrap();
    let context = format!("{name} {args:?}:\n{}", out.stderr);
    assert_eq!(out.code, Some(2), "{context}");
    assert!(out.stdout.is_empty(), "{context}\nstdout: {}", out.stdout);
    assert!(!out.stderr.contains("panicked"), "{context}");
    if let Err(e) = demo_cli::check_usage_error(name, &out.stderr) {
        panic!("{args:?}: {e}");
    }
    out.stderr
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
            assert_usage_error(exe, args);
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
fn each_program_says_what_it_is() {
    let mut seen = std::collections::HashMap::new();
    for (exe, what) in [
        (env!("CARGO_BIN_EXE_flags"), "one after the other"),
        (
            env!("CARGO_BIN_EXE_flags-threadpool"),
            "thread pool with map",
        ),
        (env!("CARGO_BIN_EXE_flags-threadpool-ac"), "as_completed"),
        (
            env!("CARGO_BIN_EXE_flags-procpool"),
            "process pool with map",
        ),
        (
            env!("CARGO_BIN_EXE_flags2-sequential"),
            "one request at a time",
        ),
        (env!("CARGO_BIN_EXE_flags2-threadpool"), "on a thread pool"),
        (env!("CARGO_BIN_EXE_flags2-procpool"), "on a process pool"),
        (env!("CARGO_BIN_EXE_flag-server"), "Serve /flags"),
    ] {
        let out = run(exe, &["--help"], LIMIT);
        assert_eq!(out.code, Some(0), "{exe}: {}", out.stderr);
        let about = out.stdout.lines().next().unwrap_or_default().to_string();
        assert!(about.contains(what), "{exe}: {about}");
        if let Some(other) = seen.insert(about.clone(), exe) {
            panic!("{exe} and {other} share the description {about:?}");
        }
        if !exe.ends_with("flag-server") {
            // -s says which labels start a server of their own.
            assert!(
                out.stdout.contains("LOCAL, DELAY and")
                    && out.stdout.contains("start a built-in server"),
                "{exe}: {}",
                out.stdout
            );
        }
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
        (env!("CARGO_BIN_EXE_flags"), &["-s", "nowhere"]),
        (env!("CARGO_BIN_EXE_flags-threadpool"), &["-s", "nowhere"]),
        (env!("CARGO_BIN_EXE_flags-threadpool-ac"), &["extra"]),
        (env!("CARGO_BIN_EXE_flags-procpool"), &["--dest"]),
        (env!("CARGO_BIN_EXE_flag-server"), &["--error-rate", "2"]),
        (env!("CARGO_BIN_EXE_flag-server"), &["--port", "70000"]),
        (env!("CARGO_BIN_EXE_flag-server"), &["--bind", "not-an-ip"]),
        (env!("CARGO_BIN_EXE_flag-server"), &["--delay", "-1"]),
        (env!("CARGO_BIN_EXE_flag-server"), &["--delay-rate", "x"]),
        (
            env!("CARGO_BIN_EXE_flag-server"),
            &["--max-connections", "0"],
        ),
    ] {
        assert_usage_error(exe, args);
    }
    // Two options that contradict each other: a usage error too, not a
    // start-up failure (it was exit 1 without the usage).
    let stderr = assert_usage_error(
        env!("CARGO_BIN_EXE_flag-server"),
        &["--port", "0", "--delay", "2", "--delay-max", "1"],
    );
    assert!(
        stderr.starts_with("error: --delay-max 1 is shorter than --delay 2"),
        "{stderr}"
    );
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
