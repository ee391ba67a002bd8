//! `--trace FILE` on both loiter demos: the file opens in Perfetto (it is
//! valid trace-event JSON, checked by `future`'s `trace_format`), with one
//! run per task on the pool's worker lanes; `.svg` gives the timeline.

#[path = "../../../crates/future/tests/trace_format/mod.rs"]
mod trace_format;

use std::path::PathBuf;
use std::process::Command;

const MAP: &str = env!("CARGO_BIN_EXE_demo-executor-map");
const SUBMIT: &str = env!("CARGO_BIN_EXE_demo-executor-submit");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loiter-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run(program: &str, trace: &PathBuf) {
    let out = Command::new(program)
        .args(["--unit-ms", "20", "--trace"])
        .arg(trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn both_demos_write_a_valid_trace_with_one_run_per_task_on_three_workers() {
    for (program, name) in [(MAP, "map.json"), (SUBMIT, "submit.json")] {
        let path = scratch(name);
        run(program, &path);
        let text = std::fs::read_to_string(&path).unwrap();
        let summary = trace_format::check(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(summary.runs, 5, "{name}");
        assert_eq!(summary.instants, 5, "{name}");
        let workers = summary
            .lanes
            .values()
            .filter(|l| l.starts_with("thread ThreadPoolExecutor"))
            .count();
        assert!((1..=3).contains(&workers), "{name}: {:?}", summary.lanes);
    }
}

#[test]
fn a_trace_ending_in_svg_is_the_timeline() {
    let path = scratch("map.svg");
    run(MAP, &path);
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg "), "{svg}");
    for task in 0..5 {
        assert!(
            svg.contains(&format!("<title>task {task} finished:")),
            "task {task}"
        );
    }
}

#[test]
fn an_unwritable_trace_file_is_refused_before_the_demo_runs() {
    let out = Command::new(MAP)
        .args(["--unit-ms", "20", "--trace", "/nonexistent-dir/trace.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot write the trace to /nonexistent-dir/trace.json"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "the demo did not run: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
