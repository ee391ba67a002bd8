//! `report`: run every benchmark and peer, then rewrite `docs/benchmarks.md`.
//!
//! ```sh
//! cargo run --release -p benches --bin report [-- --quick | --long]
//! cargo run --release -p benches --bin report -- --from-samples benches/tests/data --out /tmp/b.md
//! ```
//!
//! This file only reads the arguments and calls the steps in order; the steps live in the
//! `benches` library (see its docs for the design).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use benches::machine::utc_date;
use benches::provenance::{self, Stamp, RUN_STAMP};
use benches::targets::{busy_groups, BUSY_ROWS, ROWS};

use benches::live::{self, Mode, Workspace};
use benches::machine::{overload_warning, Machine};
use benches::markdown::REPRODUCE;
use benches::page::{self, RunInfo};
use benches::sources::{self, Sources};
use benches::table::{self, tally, Judging};

const USAGE: &str = "\
usage: report [--quick | --long] [--skip STEP]... [--bench-timeout SECS] [--out FILE]
              [--workspace DIR]
       report --from-samples DIR [--criterion-dir DIR] [--out FILE]

Runs the criterion benches of every package in rounds (then the key rows again with two
busy loops beside them), the Celery rounds (own redis-server), the Python peers, the crypto
sweep and the flag downloads, then
rewrites docs/benchmarks.md and its SVG plots in docs/img/.

  --quick              short settings: at most about 10 minutes on 2 cores once built
  --long               longer runs and more rounds, for stable figures
  --skip STEP          skip a step: benches, celery, peers, crypto, flags (repeatable)
  --bench-timeout SECS kill one `cargo bench` (compiling included) after SECS as hung
                       (default: 360 quick, 600 default, 2400 long)
  --from-samples DIR   measure nothing: build the page from recorded outputs in DIR
                       (DIR/rounds/*/, DIR/*.jsonl, DIR/crypto-sweep.csv, DIR/run.json),
                       e.g. target/bench-report after a run
  --criterion-dir DIR  with --from-samples: also read a bare criterion folder (the older
                       layout: one unstamped round, shown but never judged)
  --out FILE           where to write the page (default: <workspace>/docs/benchmarks.md;
                       plots go to img/ beside it)
  --workspace DIR      the workspace root (default: the one this binary was built from)
  -h, --help           this text";

/// The steps `--skip` accepts.
const STEPS: [&str; 5] = ["benches", "celery", "peers", "crypto", "flags"];

#[derive(Debug)]
struct Args {
    mode: Mode,
    skip: Vec<String>,
    bench_timeout: Option<Duration>,
    samples: Option<PathBuf>,
    criterion_dir: Option<PathBuf>,
    out: Option<PathBuf>,
    workspace: PathBuf,
    /// The arguments as given, for the "command" line of the page.
    raw: Vec<String>,
}

/// Parses the arguments; `Err` holds the message to print before the usage.
fn parse_args(raw: Vec<String>) -> Result<Option<Args>, String> {
    let default_root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut args = Args {
        mode: Mode::Default,
        skip: Vec::new(),
        bench_timeout: None,
        samples: None,
        criterion_dir: None,
        out: None,
        workspace: default_root,
        raw: raw.clone(),
    };
    let mut quick_or_long = None;
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" | "--long" => {
                if quick_or_long.is_some_and(|m| m != arg) {
                    return Err("--quick and --long exclude each other".into());
                }
                args.mode = if arg == "--quick" {
                    Mode::Quick
                } else {
                    Mode::Long
                };
                quick_or_long = Some(arg);
            }
            "--skip" => {
                let step = value("--skip")?;
                if !STEPS.contains(&step.as_str()) {
                    return Err(format!(
                        "unknown step {step:?} for --skip (one of {STEPS:?})"
                    ));
                }
                args.skip.push(step);
            }
            "--bench-timeout" => {
                let text = value("--bench-timeout")?;
                let secs: u64 = text.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                    format!("--bench-timeout needs whole seconds > 0, not {text:?}")
                })?;
                args.bench_timeout = Some(Duration::from_secs(secs));
            }
            "--from-samples" => args.samples = Some(value("--from-samples")?.into()),
            "--criterion-dir" => args.criterion_dir = Some(value("--criterion-dir")?.into()),
            "--out" => args.out = Some(value("--out")?.into()),
            "--workspace" => args.workspace = value("--workspace")?.into(),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.criterion_dir.is_some() && args.samples.is_none() {
        return Err("--criterion-dir only goes with --from-samples".into());
    }
    // A typo must not rewrite the committed page from an empty table.
    for (flag, dir) in [
        ("--from-samples", &args.samples),
        ("--criterion-dir", &args.criterion_dir),
    ] {
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(format!("{flag} {}: no such folder", dir.display()));
            }
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("report: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let ws = Workspace::at(&args.workspace);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| ws.root.join("docs/benchmarks.md"));
    let command = if args.raw.is_empty() {
        REPRODUCE.to_string()
    } else {
        format!("{REPRODUCE} -- {}", args.raw.join(" "))
    };

    // Read before measuring: the load average then shows what else was running.
    let machine = Machine::detect(&ws.root);
    let overload = overload_warning(&machine.load, machine.cores);
    if let Some(warning) = &overload {
        shout(warning);
    }
    let (sources, run) = match &args.samples {
        Some(dir) => (
            Sources {
                criterion_dir: args
                    .criterion_dir
                    .clone()
                    .or(Sources::samples(dir).criterion_dir),
                ..Sources::samples(dir)
            },
            RunInfo {
                command,
                mode: format!("recorded samples from {} (nothing measured)", dir.display()),
                notes: Vec::new(),
            },
        ),
        None => match measure(&ws, &args, &machine.source) {
            Ok(pair) => {
                let (sources, notes) = pair;
                let run = RunInfo {
                    command,
                    mode: args.mode.describe(),
                    notes,
                };
                (sources, run)
            }
            Err(message) => {
                eprintln!("report: {message}");
                return ExitCode::FAILURE;
            }
        },
    };

    let loaded = sources::load(&sources);
    if loaded.figures.is_empty() {
        eprintln!(
            "report: no figures found, so {} is left as it is:\n  {}",
            out.display(),
            loaded.notes.join("\n  ")
        );
        return ExitCode::FAILURE;
    }
    let measured_benches = args.samples.is_none() && !args.skip.iter().any(|s| s == "benches");
    if measured_benches && loaded.rounds.iter().all(|r| r.results == 0) {
        // Every bench failed (a full disk, a broken build): a page of "not measured" rows
        // would only hide the last good one.
        eprintln!(
            "report: no criterion bench produced a result, so {} is left as it is:\n  {}",
            out.display(),
            run.notes.join("\n  ")
        );
        return ExitCode::FAILURE;
    }
    if let Some(warning) = &overload {
        // Again, right before the page changes, where it cannot scroll away unseen.
        shout(&format!("{warning}; rewriting {} anyway", out.display()));
    }
    match page::write(&loaded, &machine, &run, &out) {
        Ok(written) => {
            let t = tally(&written.rows);
            println!(
                "wrote {} and {} plot(s): {} targets met, {} missed, {} unsettled, {} not \
                 measured, {} not judged",
                written.page.display(),
                written.plots.len(),
                t.met,
                t.missed,
                t.unsettled,
                t.not_measured,
                t.not_judged
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a warning so that it cannot be missed in a scrolling log.
fn shout(text: &str) {
    let bar = "!".repeat(78);
    eprintln!("{bar}\nreport: WARNING: {text}\n{bar}");
}

/// Runs the measuring steps; returns where their outputs are and the notes they left.
/// `commit` is the sources line every output is stamped with.
fn measure(ws: &Workspace, args: &Args, commit: &str) -> Result<(Sources, Vec<String>), String> {
    let skip = |step: &str| args.skip.iter().any(|s| s == step);
    let results = live::prepare_results_dir(ws, skip("benches"))
        .map_err(|e| format!("cannot prepare {}: {e}", ws.results_dir().display()))?;
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stamp = Stamp {
        commit: commit.to_string(),
        started: utc_date(started),
        finished: None,
        condition: "run".into(),
        round: 0,
        load: None,
    };
    provenance::write(&results, RUN_STAMP, &stamp)
        .map_err(|e| format!("cannot write the run's stamp in {}: {e}", results.display()))?;
    let mut notes = Vec::new();
    if !skip("benches") {
        let limit = args.bench_timeout.unwrap_or(args.mode.bench_limit());
        notes.extend(live::run_benches(
            ws,
            args.mode,
            limit,
            &results,
            commit,
            &busy_groups(),
        ));
        // Rows whose rounds fall on both sides of their target get more rounds.
        let unsettled = || {
            let loaded = sources::load(&Sources {
                results_dir: results.clone(),
                criterion_dir: None,
            });
            let judging = Judging { commit };
            let mut rows = table::build(ROWS, &loaded.figures, judging);
            rows.extend(table::build(BUSY_ROWS, &loaded.figures, judging));
            table::rerun_groups(&rows, &loaded.runs)
        };
        notes.extend(live::run_extra_rounds(
            ws, args.mode, limit, &results, commit, unsettled,
        ));
    }
    if !skip("celery") {
        notes.extend(live::run_celery(ws, args.mode, &results, commit));
    }
    if !skip("peers") {
        notes.extend(live::run_peers(ws, args.mode, &results));
    }
    if !skip("crypto") {
        notes.extend(live::run_crypto_sweep(ws, args.mode, &results, commit));
    }
    if !skip("flags") {
        notes.extend(live::run_flags(ws, args.mode, &results));
    }
    // Relative to the workspace when inside it: the page is committed, local paths are noise.
    let shown = results.strip_prefix(&ws.root).unwrap_or(&results);
    notes.push(format!(
        "raw outputs and logs of this run: `{}`",
        shown.display()
    ));
    for step in &args.skip {
        notes.push(format!("step `{step}` skipped (--skip {step})"));
    }
    let sources = Sources {
        results_dir: results,
        criterion_dir: None,
    };
    Ok((sources, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|a| a.to_string()).collect())
    }

    #[test]
    fn modes_and_options_are_read() {
        let args = parse(&[
            "--quick",
            "--skip",
            "flags",
            "--out",
            "/tmp/x.md",
            "--bench-timeout",
            "90",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(args.mode, Mode::Quick);
        assert_eq!(args.skip, vec!["flags".to_string()]);
        assert_eq!(args.out, Some(PathBuf::from("/tmp/x.md")));
        assert_eq!(args.bench_timeout, Some(Duration::from_secs(90)));
        assert_eq!(parse(&[]).unwrap().unwrap().mode, Mode::Default);
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse(&["--quick", "--long"])
            .unwrap_err()
            .contains("exclude"));
        assert!(parse(&["--skip", "lunch"])
            .unwrap_err()
            .contains("unknown step"));
        assert!(parse(&["--out"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--fast"]).unwrap_err().contains("unknown argument"));
        assert!(parse(&["--bench-timeout", "0"])
            .unwrap_err()
            .contains("seconds"));
        assert!(parse(&["--criterion-dir", "x"])
            .unwrap_err()
            .contains("--from-samples"));
    }
}
