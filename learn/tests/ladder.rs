//! Checks over the whole ladder, so that it cannot rot silently:
//!
//! * every step is one file of 30 to 110 lines, listed in `learn::STEPS` in
//!   reading order;
//! * every step ends with its "The production crate adds" note, and every
//!   file that note names exists, with the item named before it
//!   ("`Sleep::sleep` in `crates/thread-pool/src/sleep.rs`");
//! * every step runs, exits 0 and leaves no process behind (a fork server or
//!   worker that outlived its step would show up in its process group), and
//!   `docs/ladder.md` shows exactly what it prints.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn step_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(format!("{name}.rs"))
}

/// The step files on disk, sorted: the reading order.
fn step_files_on_disk() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names: Vec<String> = fs::read_dir(src)
        .expect("read learn/src")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('s') && n.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn every_step_file_is_listed_in_reading_order() {
    let listed: Vec<String> = learn::STEPS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(listed, step_files_on_disk(), "learn::STEPS and learn/src/s*.rs differ");
}

#[test]
fn every_step_is_30_to_110_lines() {
    for (name, _) in learn::STEPS {
        let lines = fs::read_to_string(step_file(name)).expect("read a step").lines().count();
        assert!((30..=110).contains(&lines), "{name}.rs has {lines} lines; a step has 30 to 110");
    }
}

/// The comment block that ends a step, joined into one line of prose.
fn closing_note(name: &str) -> String {
    let text = fs::read_to_string(step_file(name)).expect("read a step");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().rposition(|l| !l.starts_with("// ")).map_or(0, |i| i + 1);
    lines[start..].iter().map(|l| l.trim_start_matches("// ")).collect::<Vec<_>>().join(" ")
}

#[test]
fn every_step_ends_with_what_production_adds_and_where() {
    for (name, _) in learn::STEPS {
        let note = closing_note(name);
        assert!(
            note.starts_with("The production crate adds"),
            "{name}.rs must end with a `// The production crate adds ...` note, found {note:?}"
        );
        let quoted: Vec<&str> = note.split('`').skip(1).step_by(2).collect();
        let files: Vec<&&str> = quoted.iter().filter(|q| q.starts_with("crates/")).collect();
        assert!(!files.is_empty(), "{name}.rs: the note names no `crates/...` file");
        for file in files {
            let path = workspace().join(file);
            let source =
                fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}.rs names {file}: {e}"));
            // "`Item::name` in `file`": the item must still be defined there.
            if let Some(item) = note
                .split(&format!("` in `{file}`"))
                .next()
                .and_then(|before| before.rsplit('`').next())
            {
                if !note.contains(&format!("`{item}` in `{file}`")) {
                    continue;
                }
                let last = item.rsplit("::").next().unwrap_or(item);
                let defined = ["fn", "struct", "enum", "trait", "type"]
                    .iter()
                    .any(|kw| source.contains(&format!("{kw} {last}")));
                assert!(
                    defined,
                    "{name}.rs points at `{item}` in {file}, which no longer defines `{last}`"
                );
            }
        }
    }
}

/// The process-group ids of every live process (zombies left out: once a
/// step has exited, a zombie in its group is dead and its reaper is init).
fn live_groups() -> Vec<(i32, i32)> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| {
            let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?;
            let pgrp = fields.nth(1)?.parse().ok()?;
            (state != "Z").then_some((pid, pgrp))
        })
        .collect()
}

fn kill_group(group: i32) {
    // SAFETY: SIGKILL to the process group this test created for the step.
    unsafe { libc::killpg(group, libc::SIGKILL) };
}

/// Runs `learn <step>` in a new process group: its stdout, once it and
/// every process it started are gone (60 s hang guard each).
fn run_step(name: &str) -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_learn"))
        .arg(name)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the learn binary");
    let group = child.id() as i32;
    let (done, outcome) = mpsc::channel();
    std::thread::spawn(move || drop(done.send(child.wait_with_output())));
    let Ok(Ok(output)) = outcome.recv_timeout(Duration::from_secs(60)) else {
        kill_group(group);
        panic!("{name} did not finish in 60 s, or a process it started kept its output open");
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: Vec<i32> =
            live_groups().into_iter().filter(|&(_, g)| g == group).map(|(p, _)| p).collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            kill_group(group);
            panic!(
                "{name} exited but left processes {left:?} running (a fork server or a worker?)"
            );
        }
        std::thread::yield_now();
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name} failed ({}): {stderr}", output.status);
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn every_step_runs_leaves_no_process_and_its_output_is_in_the_docs() {
    let docs_path = workspace().join("docs/ladder.md");
    let docs = fs::read_to_string(&docs_path).unwrap_or_default();
    let mut missing = Vec::new();
    for (name, _) in learn::STEPS {
        let output = run_step(name);
        let short = &name[..3];
        let listing = format!("```text\n$ cargo run -q -p learn -- {short}\n{output}```");
        if !docs.contains(&listing) {
            missing.push(format!("{listing}\n"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/ladder.md must show each step's output as it is now:\n{}",
        missing.join("\n")
    );
}
