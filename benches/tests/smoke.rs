//! Smoke test: the report, in its quickest mode (`--from-samples`, which measures nothing),
//! builds the whole page from the recorded outputs of a real run in `tests/data/`, and every
//! row of the table gets a figure; judged for the commit that recorded them, and "not
//! judged" for any other.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use benches::provenance::{self, RUN_STAMP};
use benches::sources::{self, Sources};
use benches::table::{self, Judging};
use benches::targets::{Rule, BUSY_ROWS, ROWS};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("benches-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Rows whose bench group came after the samples were recorded (the 256 MiB groups and their
/// `ours_shared` functions exist now; the samples predate them; so do the Celery rounds and the
/// process pool's `map_auto` entry, and the thread pool's `trace_200k` group).
const NOT_IN_SAMPLES: &[(&str, &str)] = &[
    ("thread_pool/trace_200k", "traced"),
    ("process_pool/payload_256mib", "ours_shared"),
    ("process_pool/digest_256mib", "ours_shared"),
    ("celery/round_trip", "ours"),
    ("celery/throughput", "ours"),
    ("process_pool/map_chunked", "ours_auto"),
];

fn targets(rows: &[benches::targets::RowSpec]) -> usize {
    rows.iter().filter(|r| r.rule != Rule::None).count()
}

/// The targets among the rows the samples predate (the echo row has none).
fn awaited_targets() -> usize {
    ROWS.iter()
        .filter(|r| r.rule != Rule::None && NOT_IN_SAMPLES.contains(&(r.op, r.ours)))
        .count()
}

#[test]
fn every_row_and_every_peer_has_a_figure_from_the_samples() {
    let loaded = sources::load(&Sources::samples(&samples()));
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
    let recorded = provenance::read(&samples(), RUN_STAMP).unwrap().commit;
    let judging = Judging { commit: &recorded };
    let mut rows = table::build(ROWS, &loaded.figures, judging);
    rows.extend(table::build(BUSY_ROWS, &loaded.figures, judging));
    assert_eq!(rows.len(), ROWS.len() + BUSY_ROWS.len());
    for row in &rows {
        if NOT_IN_SAMPLES.contains(&(row.spec.op, row.spec.ours)) {
            assert!(
                row.ours.is_none(),
                "re-record the samples: {}",
                row.spec.title
            );
            continue;
        }
        assert!(row.ours.is_some(), "no figure for {}", row.spec.title);
        for peer in &row.peers {
            assert!(
                peer.figure.is_some(),
                "no figure for peer {} of {}",
                peer.label,
                row.spec.title
            );
            assert!(peer.advantage().is_some());
        }
    }
    let tally = table::tally(&rows);
    assert_eq!(tally.not_measured, awaited_targets());
    assert_eq!(tally.not_judged, 0, "{rows:#?}");
    assert_eq!(
        tally.met + tally.missed + tally.unsettled,
        targets(ROWS) + targets(BUSY_ROWS) - awaited_targets(),
        "every other target judged"
    );
    // The recorded rounds disagree on some rows (that is why `unsettled` exists).
    assert!(tally.unsettled > 0, "{rows:#?}");
}

#[test]
fn figures_of_another_commit_are_never_judged() {
    let loaded = sources::load(&Sources::samples(&samples()));
    let judging = Judging {
        commit: "not-the-recording-commit",
    };
    let rows = table::build(ROWS, &loaded.figures, judging);
    let tally = table::tally(&rows);
    assert_eq!(tally.met + tally.missed, 0);
    assert_eq!(tally.not_judged, targets(ROWS) - awaited_targets());
}

#[test]
fn the_older_layout_loads_unstamped_and_unjudged() {
    let legacy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/legacy");
    let loaded = sources::load(&Sources::samples(&legacy));
    assert!(!loaded.figures.is_empty());
    assert!(
        loaded.notes.iter().any(|n| n.contains("unstamped")),
        "{:?}",
        loaded.notes
    );
    let rows = table::build(ROWS, &loaded.figures, Judging { commit: "any" });
    assert_eq!(
        table::tally(&rows).met,
        0,
        "nothing without a commit is met"
    );
}

#[test]
fn the_report_binary_writes_the_page_and_plots_from_the_samples() {
    let dir = scratch("smoke");
    let page = dir.join("benchmarks.md");
    let out = Command::new(env!("CARGO_BIN_EXE_report"))
        .arg("--from-samples")
        .arg(samples())
        .arg("--out")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The samples were recorded on another commit than this checkout's: shown, not judged.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "0 targets met, 0 missed, 0 unsettled, {} not measured",
            awaited_targets()
        )),
        "{stdout}"
    );
    let text = fs::read_to_string(&page).unwrap();
    assert!(text.contains("## Quiet and busy"), "busy table");
    assert!(text.contains("## Where the figures come from"), "rounds");
    assert!(text.contains("## Settings as run"), "settings");
    assert!(text.contains("| quiet-3 |"), "three quiet rounds listed");
    let table: Vec<&str> = text
        .lines()
        .filter(|l| {
            ROWS.iter()
                .any(|r| l.starts_with(&format!("| {}", r.title)))
        })
        .collect();
    assert!(table.len() >= ROWS.len(), "one line per row");
    let awaited: Vec<&str> = ROWS
        .iter()
        .filter(|r| NOT_IN_SAMPLES.contains(&(r.op, r.ours)))
        .map(|r| r.title)
        .collect();
    for line in table
        .iter()
        .filter(|l| !awaited.iter().any(|t| l.starts_with(&format!("| {t}"))))
    {
        assert!(
            !line.contains("not measured"),
            "a cell without a figure: {line}"
        );
        let ours = line.split(" | ").nth(1).unwrap();
        assert!(
            ours.starts_with("**") && ours.len() > 4,
            "no figure for ours: {line}"
        );
    }
    assert!(text.contains("not judged: `"), "stale figures say why");
    for svg in [
        "thread-pool-throughput.svg",
        "process-pool-throughput.svg",
        "crypto-speedup.svg",
    ] {
        let path = dir.join("img").join(svg);
        let body = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{svg}: {e}"));
        assert!(body.starts_with("<svg"), "{svg} is not an SVG");
        assert!(text.contains(&format!("(img/{svg})")), "{svg} not embedded");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_print_usage_and_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_report"))
        .arg("--sideways")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown argument"), "{stderr}");
    assert!(stderr.contains("usage: report"), "{stderr}");
}

#[test]
fn a_missing_samples_folder_is_a_usage_error_and_writes_nothing() {
    let dir = scratch("missing");
    let page = dir.join("benchmarks.md");
    fs::write(&page, "the committed page").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_report"))
        .args(["--from-samples", "/nonexistent/samples", "--out"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/samples: no such folder"),
        "{stderr}"
    );
    assert!(stderr.contains("usage: report"), "{stderr}");
    assert_eq!(fs::read_to_string(&page).unwrap(), "the committed page");
    assert!(!dir.join("img").exists(), "no plots written either");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_samples_folder_without_figures_leaves_the_page_alone() {
    let dir = scratch("empty");
    let samples = dir.join("samples");
    fs::create_dir_all(&samples).unwrap();
    let page = dir.join("benchmarks.md");
    fs::write(&page, "the committed page").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_report"))
        .arg("--from-samples")
        .arg(&samples)
        .arg("--out")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no figures found"), "{stderr}");
    assert_eq!(fs::read_to_string(&page).unwrap(), "the committed page");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_live_run_whose_benches_all_fail_leaves_the_page_alone() {
    // A workspace whose only bench cannot build: no Cargo workspace around it at all.
    let dir = scratch("failing");
    let package = dir.join("crates/broken");
    fs::create_dir_all(package.join("benches")).unwrap();
    fs::write(package.join("Cargo.toml"), "[package]\nname = \"broken\"\n").unwrap();
    fs::write(package.join("benches/b.rs"), "fn main() {}").unwrap();
    // A peer that does print a figure, so the table would not be empty.
    fs::create_dir_all(dir.join("benches/peers")).unwrap();
    fs::write(
        dir.join("benches/peers/future.py"),
        "print('{\"op\": \"future/handoff\", \"value\": 50, \"unit\": \"us\"}')\n",
    )
    .unwrap();
    let page = dir.join("benchmarks.md");
    fs::write(&page, "the committed page").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_report"))
        .args(["--quick", "--skip", "crypto", "--skip", "flags"])
        .arg("--workspace")
        .arg(&dir)
        .arg("--out")
        .arg(&page)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Without python3 the peer prints nothing either, and the run has no figure at all.
    let reason = if benches::peers::python_version().is_some() {
        "no criterion bench produced a result"
    } else {
        "no figures found"
    };
    assert!(stderr.contains(reason), "{stderr}");
    assert!(stderr.contains("is left as it is"), "{stderr}");
    assert_eq!(fs::read_to_string(&page).unwrap(), "the committed page");
    fs::remove_dir_all(&dir).unwrap();
}
