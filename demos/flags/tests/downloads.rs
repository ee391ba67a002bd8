//! End-to-end: each program against a flag server started here (127.0.0.1,
//! port 0), counting what the book counts and checking what lands on disk.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{counts, run, Scratch};
use flags::client::{Client, ClientConfig};
use flags::codes;
use flags::server::{FlagServer, ServerConfig};

const SEQUENTIAL: &str = env!("CARGO_BIN_EXE_flags2-sequential");
const THREADPOOL: &str = env!("CARGO_BIN_EXE_flags2-threadpool");
const PROCPOOL: &str = env!("CARGO_BIN_EXE_flags2-procpool");
const LIMIT: Duration = Duration::from_secs(60);

fn local() -> FlagServer {
    FlagServer::start(ServerConfig::default()).unwrap()
}

/// The flags2 programs to check (more join as the executors land).
fn flags2_programs() -> Vec<&'static str> {
    vec![SEQUENTIAL, THREADPOOL, PROCPOOL]
}

fn flags2(exe: &str, server: &FlagServer, dest: &Scratch, args: &[&str]) -> common::Output {
    let url = server.base_url();
    let dest = dest.path().to_str().unwrap();
    let mut all = vec!["--url", &url, "--dest", dest];
    all.extend_from_slice(args);
    let out = run(exe, &all, LIMIT);
    assert_eq!(
        out.code,
        Some(0),
        "{exe} {args:?}\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}

#[test]
fn a_b_c_finds_43_of_78() {
    let server = local();
    for exe in flags2_programs() {
        let dest = Scratch::new("abc");
        let out = flags2(exe, &server, &dest, &["a", "b", "c"]);
        assert!(
            out.stdout
                .contains("Searching for 78 flags: from AA to CZ\n"),
            "{}",
            out.stdout
        );
        assert_eq!(counts(&out.stdout), (43, 35, 0), "{exe}\n{}", out.stdout);
        let files = std::fs::read_dir(dest.path()).unwrap().count();
        assert_eq!(files, 43, "{exe}: one file per flag found, no leftovers");
    }
}

#[test]
fn every_code_finds_194_of_676() {
    let server = local();
    for exe in flags2_programs() {
        let dest = Scratch::new("every");
        let out = flags2(exe, &server, &dest, &["-e"]);
        assert!(out
            .stdout
            .contains("Searching for 676 flags: from AA to ZZ\n"));
        assert_eq!(counts(&out.stdout), (194, 482, 0), "{exe}\n{}", out.stdout);
    }
}

#[test]
fn error_server_accounts_for_every_code_once() {
    let server = FlagServer::start(ServerConfig {
        error_rate: 0.25,
        delay: Duration::from_millis(5),
        delay_rate: 0.5,
        ..ServerConfig::default()
    })
    .unwrap();
    for exe in flags2_programs() {
        let dest = Scratch::new("error");
        let out = flags2(exe, &server, &dest, &["-e", "-v"]);
        let (ok, not_found, errors) = counts(&out.stdout);
        assert_eq!(ok + not_found + errors, 676, "{exe}\n{}", out.stdout);
        // 25% of 676: zero errors would be a 1e-84 fluke.
        assert!(errors > 50 && errors < 300, "{exe}: {errors} errors");
        // -v: exactly one line per code, and each line agrees with the counts.
        let mut seen: HashMap<String, String> = HashMap::new();
        for line in out.stdout.lines() {
            let Some((cc, rest)) = line.split_once(' ') else {
                continue;
            };
            if cc.len() != 2 || !cc.bytes().all(|b| b.is_ascii_uppercase()) {
                continue;
            }
            assert!(
                seen.insert(cc.to_string(), rest.to_string()).is_none(),
                "{exe}: {cc} twice"
            );
            match rest {
                "OK" => assert!(codes::has_flag(cc), "{cc} OK but has no flag"),
                "not found" => assert!(!codes::has_flag(cc), "{cc} not found but has a flag"),
                other => assert_eq!(other, "error: HTTP error 418 - I'm a Teapot"),
            }
        }
        assert_eq!(seen.len(), 676, "{exe}");
        assert_eq!(seen.values().filter(|v| *v == "OK").count(), ok);
        assert_eq!(
            seen.values().filter(|v| v.starts_with("error")).count(),
            errors
        );
    }
}

#[test]
fn saved_files_are_byte_identical_to_what_was_served() {
    let server = local();
    let client = Client::new(&ClientConfig::default());
    for exe in flags2_programs() {
        let dest = Scratch::new("bytes");
        let out = flags2(exe, &server, &dest, &["-a"]);
        assert_eq!(counts(&out.stdout), (194, 0, 0), "{}", out.stdout);
        let mut names: Vec<String> = std::fs::read_dir(dest.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let expected: Vec<String> = codes::all_codes()
            .iter()
            .map(|cc| format!("{}.gif", cc.to_lowercase()))
            .collect();
        assert_eq!(names, expected, "exactly the 194 flags, no temporary files");
        for cc in codes::all_codes() {
            let on_disk =
                std::fs::read(dest.path().join(format!("{}.gif", cc.to_lowercase()))).unwrap();
            let served = client.get_flag(&server.base_url(), &cc).unwrap();
            assert_eq!(on_disk, served, "{cc}");
            assert!(on_disk.starts_with(b"GIF89a"));
        }
    }
}

#[test]
fn default_run_is_pop20_and_reports_like_the_book() {
    let server = local();
    let dest = Scratch::new("pop20");
    let out = flags2(SEQUENTIAL, &server, &dest, &[]);
    let expected_head = format!(
        "URL site: {}\nSearching for 20 flags: from BD to VN\n1 concurrent connection will be used.\n--------------------\n20 flags downloaded.\nElapsed time: ",
        server.base_url()
    );
    assert!(out.stdout.starts_with(&expected_head), "{}", out.stdout);
    assert!(
        out.stderr.is_empty(),
        "no progress bar without a terminal: {:?}",
        out.stderr
    );
}

#[test]
fn embedded_delay_server_needs_no_setup() {
    // No --url: the program starts its own DELAY server (0.5 s per response).
    let dest = Scratch::new("embedded");
    let d = dest.path().to_str().unwrap();
    let out = run(SEQUENTIAL, &["-s", "delay", "--dest", d, "br", "zz"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("DELAY site: http://127.0.0.1:"),
        "{}",
        out.stdout
    );
    assert_eq!(counts(&out.stdout), (1, 1, 0));
    assert!(
        out.elapsed >= Duration::from_millis(1000),
        "two delayed responses in a row"
    );
}

#[test]
fn first_generation_flags_prints_codes_then_summary() {
    let server = local();
    let dest = Scratch::new("flags1");
    let url = server.base_url();
    let out = run(
        env!("CARGO_BIN_EXE_flags"),
        &["--url", &url, "--dest", dest.path().to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next().unwrap().trim_end(),
        codes::pop20_sorted().join(" ")
    );
    let summary = lines.next().unwrap();
    assert!(
        summary.starts_with("20 flags downloaded in ") && summary.ends_with('s'),
        "{summary}"
    );
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 20);
}

#[test]
fn ctrl_c_stops_cleanly_and_still_reports() {
    // A slow server and many codes: interrupt once the first flag is saved
    // (so the program is running and its handler installed, whatever the
    // machine's load). -e then has at least 20 s to go, even on the pool:
    // 676 x 1 s / 30 connections.
    let server = FlagServer::start(ServerConfig {
        delay: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .unwrap();
    for exe in flags2_programs() {
        let dest = Scratch::new("ctrlc");
        let url = server.base_url();
        let child = std::process::Command::new(exe)
            .args(["--url", &url, "--dest", dest.path().to_str().unwrap(), "-e"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let saved = dest.path().to_path_buf();
        let interrupt = Box::new(move |pid: u32| {
            if std::fs::read_dir(&saved).unwrap().next().is_none() {
                return false;
            }
            // SAFETY: kill(2) only sends a signal; `pid` is our own child,
            // still running (not yet reaped), so the number names it.
            let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
            assert_eq!(rc, 0, "kill(SIGINT) failed");
            true
        });
        let out = common::wait_with_deadline(child, LIMIT, Some(interrupt));
        assert_eq!(out.code, Some(130), "{exe}\n{}\n{}", out.stdout, out.stderr);
        let (ok, nf, err) = counts(&out.stdout);
        assert!(ok + nf + err < 676, "stopped early: {}", out.stdout);
        assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
        // Nothing half-written: every file in dest is a whole flag.
        for entry in std::fs::read_dir(dest.path()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                name.ends_with(".gif") && !name.starts_with('.'),
                "leftover {name}"
            );
        }
        assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), ok);
    }
}

#[test]
fn threadpool_reports_its_concurrency_and_overlaps_the_delays() {
    // Structural, not a stopwatch: with an hour's delay, the server must see
    // all 40 requests waiting at once; then its shutdown ends them (as 503s).
    let server = FlagServer::start(ServerConfig {
        delay: Duration::from_secs(3600),
        ..ServerConfig::default()
    })
    .unwrap();
    let dest = Scratch::new("concurrency");
    let url = server.base_url();
    let child = std::process::Command::new(THREADPOOL)
        .args(["--url", &url, "--dest", dest.path().to_str().unwrap()])
        .args(["--timeout", "3600", "-a", "-l", "40", "-m", "40"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Some(server);
    let all_waiting = Box::new(move |_pid: u32| {
        if server.as_ref().is_some_and(|s| s.delayed_now() == 40) {
            server.take().unwrap().shutdown();
        }
        server.is_none()
    });
    let out = common::wait_with_deadline(child, LIMIT, Some(all_waiting));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("\n40 concurrent connections will be used.\n"),
        "{}",
        out.stdout
    );
    assert_eq!(counts(&out.stdout), (0, 0, 40), "{}", out.stdout);
    let server = local();
    let seq = flags2(THREADPOOL, &server, &dest, &["-a", "-l", "5", "-m", "1"]);
    assert!(
        seq.stdout
            .contains("\n1 concurrent connection will be used.\n"),
        "{}",
        seq.stdout
    );
}

#[test]
fn first_generation_thread_pool_programs() {
    let server = local();
    let url = server.base_url();
    let dest = Scratch::new("flags1-pool");
    let d = dest.path().to_str().unwrap();
    let out = run(
        env!("CARGO_BIN_EXE_flags-threadpool"),
        &["--url", &url, "--dest", d],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut lines = out.stdout.lines();
    let mut got: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    got.sort();
    assert_eq!(
        got,
        codes::pop20_sorted(),
        "every code once, in completion order"
    );
    assert!(lines.next().unwrap().starts_with("20 flags downloaded in "));

    let out = run(
        env!("CARGO_BIN_EXE_flags-threadpool-ac"),
        &["--url", &url, "--dest", d],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let scheduled: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("Scheduled for "))
        .collect();
    assert_eq!(scheduled.len(), 5, "{}", out.stdout);
    for (line, cc) in scheduled.iter().zip(["BR", "CN", "ID", "IN", "US"]) {
        assert!(
            line.starts_with(&format!("Scheduled for {cc}: <Future state=")),
            "{line}"
        );
    }
    let mut results: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once("<Future state=finished returned String> result: "))
        .map(|(_, r)| r.to_string())
        .collect();
    results.sort();
    assert_eq!(
        results,
        ["\"BR\"", "\"CN\"", "\"ID\"", "\"IN\"", "\"US\""],
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("5 flags downloaded in "));
}

/// `flags-procpool`, the process-pool twin of `flags-threadpool` (the same
/// `download_many`, `flags::pooled::map_downloads`): every code once.
#[test]
fn first_generation_process_pool_program() {
    let server = local();
    let url = server.base_url();
    let dest = Scratch::new("flags1-procpool");
    let out = run(
        env!("CARGO_BIN_EXE_flags-procpool"),
        &["--url", &url, "--dest", dest.path().to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut lines = out.stdout.lines();
    let mut got: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    got.sort();
    assert_eq!(got, codes::pop20_sorted(), "every code once");
    assert!(lines.next().unwrap().starts_with("20 flags downloaded in "));
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 20);
}

#[test]
fn first_generation_programs_stop_at_the_first_error() {
    // The book's first scripts have no error handling: a 418 ends the run.
    let server = FlagServer::start(ServerConfig {
        error_rate: 1.0,
        ..ServerConfig::default()
    })
    .unwrap();
    let url = server.base_url();
    let dest = Scratch::new("flags1-error");
    for exe in [
        env!("CARGO_BIN_EXE_flags"),
        env!("CARGO_BIN_EXE_flags-threadpool"),
        env!("CARGO_BIN_EXE_flags-threadpool-ac"),
        env!("CARGO_BIN_EXE_flags-procpool"),
    ] {
        let out = run(
            exe,
            &["--url", &url, "--dest", dest.path().to_str().unwrap()],
            LIMIT,
        );
        assert_eq!(out.code, Some(1), "{exe}: {}", out.stdout);
        assert!(
            out.stderr.contains("HTTP error 418 - I'm a Teapot"),
            "{exe}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"));
    }
}
