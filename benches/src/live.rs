//! The live run: the steps that measure, each leaving its raw output in the results folder.
//!
//! Steps, in order: the criterion benches of every package (one `cargo bench` per bench
//! target, so one broken bench cannot take the others down), the Python peers, the crypto
//! worker sweep, and the flag downloads timed as whole commands. Each step returns notes
//! instead of failing: a missing tool or bench becomes a line on the page and a "not
//! measured" cell, never a crash.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::machine::LoadSampler;
use crate::peers::{self, PeerError};
use crate::provenance::{self, RoundLoad, Stamp, ROUNDS_DIR, ROUND_STAMP};
use crate::run::{self, median};
use crate::sources::{CELERY_FIGURES, CRYPTO_CONDITION, SWEEP_CSV};
use crate::targets::{ops, BUSY};

/// How long and how often to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Rough figures fast: criterion `--quick`, small peer runs.
    Quick,
    /// The default: a few minutes on 2 cores.
    Default,
    /// Longer measurements for figures worth quoting.
    Long,
}

impl Mode {
    /// Arguments given to every criterion bench binary (after `cargo bench ... --`). The
    /// settings go through the environment instead ([`Mode::bench_env`]): a group's own
    /// settings override criterion's flags, so the benches apply ours themselves.
    pub fn criterion_args(self) -> Vec<String> {
        vec!["--noplot".to_string()]
    }

    /// (warm-up ms, measurement ms, samples, bootstrap resamples) of every criterion group.
    pub fn bench_settings(self) -> (u64, u64, u64, u64) {
        match self {
            Mode::Quick => (150, 400, 10, 2_000),
            Mode::Default => (500, 1_500, 20, 10_000),
            Mode::Long => (2_000, 5_000, 50, 100_000),
        }
    }

    /// The environment that passes the settings to the benches (`benches/support/harness.rs`).
    pub fn bench_env(self) -> Vec<(&'static str, String)> {
        let (warm, measure, samples, resamples) = self.bench_settings();
        vec![
            ("BENCH_WARM_UP_MS", warm.to_string()),
            ("BENCH_MEASURE_MS", measure.to_string()),
            ("BENCH_SAMPLES", samples.to_string()),
            ("BENCH_RESAMPLES", resamples.to_string()),
        ]
    }

    /// Rounds of every bench on a quiet machine (ratios are judged over these).
    pub fn rounds(self) -> u32 {
        match self {
            Mode::Quick | Mode::Default => 3,
            Mode::Long => 5,
        }
    }

    /// Rounds of the key rows with two busy loops beside them.
    pub fn busy_rounds(self) -> u32 {
        3
    }

    /// Arguments for the Python peer scripts.
    pub fn python_args(self) -> Vec<String> {
        match self {
            Mode::Quick => vec!["--quick".into()],
            Mode::Default => vec![],
            Mode::Long => vec!["--runs".into(), "9".into()],
        }
    }

    /// How many times each timed command (and each sweep point) is run; the median is kept.
    pub fn runs(self) -> u32 {
        match self {
            Mode::Quick => 1,
            Mode::Default => 3,
            Mode::Long => 7,
        }
    }

    /// How long one `cargo bench` (compiling included) may run before it is killed as hung.
    pub fn bench_limit(self) -> Duration {
        Duration::from_secs(match self {
            Mode::Quick => 6 * 60,
            Mode::Default => 10 * 60,
            Mode::Long => 40 * 60,
        })
    }

    /// A sentence for the page.
    pub fn describe(self) -> String {
        let name = match self {
            Mode::Quick => "quick",
            Mode::Default => "default",
            Mode::Long => "long",
        };
        let (warm, measure, samples, _) = self.bench_settings();
        format!(
            "{name}: {} quiet rounds and {} busy rounds of the benches, every group with \
             {:.2} s warm-up, {:.2} s measurement, {samples} samples (flat sampling; the idle \
             round trips a tenth of those times); Python peers and timed commands: median of {} \
             run(s); crypto sweep: {} rounds of one run each; the groups of rows left \
             unsettled get up to {EXTRA_ROUNDS} extra rounds",
            self.rounds(),
            self.busy_rounds(),
            warm as f64 / 1000.0,
            measure as f64 / 1000.0,
            self.runs(),
            crypto_rounds(self)
        )
    }
}

/// Two (or more) shell loops that keep CPUs busy while the busy rounds run; stopped (killed
/// and reaped) when dropped.
#[derive(Debug)]
pub struct BusyLoops {
    children: Vec<std::process::Child>,
}

impl BusyLoops {
    /// Starts `n` loops.
    pub fn start(n: usize) -> std::io::Result<BusyLoops> {
        let mut loops = BusyLoops {
            children: Vec::new(),
        };
        for _ in 0..n {
            let child = Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()?;
            loops.children.push(child);
        }
        Ok(loops)
    }

    /// The loops' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|c| c.id()).collect()
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where the workspace and its build output are.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The workspace root (with the root `Cargo.toml`).
    pub root: PathBuf,
    /// The cargo target folder (`$CARGO_TARGET_DIR` or `<root>/target`).
    pub target_dir: PathBuf,
}

impl Workspace {
    /// The workspace at `root`, with the target folder cargo would use.
    pub fn at(root: &Path) -> Workspace {
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| if t.is_absolute() { t } else { root.join(t) })
            .unwrap_or_else(|| root.join("target"));
        Workspace {
            root: root.to_path_buf(),
            target_dir,
        }
    }

    /// The folder where the live run leaves its raw outputs.
    pub fn results_dir(&self) -> PathBuf {
        self.target_dir.join("bench-report")
    }

    /// A release binary built in this workspace.
    pub fn release_bin(&self, name: &str) -> PathBuf {
        self.target_dir.join("release").join(name)
    }

    fn cargo(&self) -> Command {
        // Under `cargo run`, $CARGO is the cargo that started us: use the same toolchain.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&self.root);
        cmd
    }
}

/// A criterion bench target of some package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchTarget {
    /// The package name (from its `Cargo.toml`).
    pub package: String,
    /// The bench target name (the file stem in `benches/`).
    pub bench: String,
}

/// The `name` of the `[package]` section of a `Cargo.toml` text.
pub fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim() == "name" {
                    return Some(value.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    None
}

/// Every `benches/*.rs` of the packages under `crates/` and `demos/`, sorted.
pub fn discover_benches(root: &Path) -> Vec<BenchTarget> {
    let mut found = Vec::new();
    for group in ["crates", "demos"] {
        let Ok(packages) = fs::read_dir(root.join(group)) else {
            continue;
        };
        for package_dir in packages.flatten().map(|e| e.path()) {
            let Some(package) = fs::read_to_string(package_dir.join("Cargo.toml"))
                .ok()
                .and_then(|m| package_name(&m))
            else {
                continue;
            };
            let Ok(benches) = fs::read_dir(package_dir.join("benches")) else {
                continue;
            };
            for file in benches.flatten().map(|e| e.path()) {
                if file.extension().is_some_and(|e| e == "rs") {
                    if let Some(stem) = file.file_stem() {
                        found.push(BenchTarget {
                            package: package.clone(),
                            bench: stem.to_string_lossy().into_owned(),
                        });
                    }
                }
            }
        }
    }
    found.sort_by(|a, b| (&a.package, &a.bench).cmp(&(&b.package, &b.bench)));
    found
}

/// Prints a progress line on stderr (stdout stays free for the final summary).
fn say(text: &str) {
    eprintln!("report: {text}");
}

/// Empties the results folder of a previous run's outputs, so they cannot pose as new. With
/// `keep_rounds` (the benches are skipped) the earlier rounds stay: their stamps then say which
/// commit they measured, and the page judges them only if it is this one.
pub fn prepare_results_dir(ws: &Workspace, keep_rounds: bool) -> std::io::Result<PathBuf> {
    let dir = ws.results_dir();
    fs::create_dir_all(&dir)?;
    for entry in fs::read_dir(&dir)?.flatten() {
        let path = entry.path();
        if path.is_file() {
            fs::remove_file(&path)?;
        } else if !keep_rounds && path.file_name().is_some_and(|n| n == ROUNDS_DIR) {
            fs::remove_dir_all(&path)?;
        }
    }
    Ok(dir)
}

/// Where and how a round runs.
struct Round<'a> {
    condition: &'a str,
    number: u32,
    commit: &'a str,
    /// Only these criterion groups (busy rounds).
    groups: Option<&'a [&'a str]>,
}

/// The bench targets with a group in `groups` (a group id starts with the package name,
/// dashes as underscores: `thread_pool/...` lives in package `thread-pool`).
pub fn targets_for<'t>(targets: &'t [BenchTarget], groups: &[&str]) -> Vec<&'t BenchTarget> {
    targets
        .iter()
        .filter(|t| {
            let prefix = format!("{}/", t.package.replace('-', "_"));
            groups.iter().any(|g| g.starts_with(&prefix))
        })
        .collect()
}

/// Runs every discovered criterion bench in rounds: [`Mode::rounds`] quiet rounds of all of
/// them, then [`Mode::busy_rounds`] rounds of the `busy_groups` with two busy loops beside.
/// Each round goes to `results/rounds/<condition>-<n>/` with a stamp. Returns notes for the
/// page.
pub fn run_benches(
    ws: &Workspace,
    mode: Mode,
    limit: Duration,
    results: &Path,
    commit: &str,
    busy_groups: &[&str],
) -> Vec<String> {
    let mut notes = Vec::new();
    let targets = discover_benches(&ws.root);
    if targets.is_empty() {
        notes.push("no criterion benches found under crates/*/benches or demos/*/benches".into());
        return notes;
    }
    notes.extend(build_benches(ws, &targets));
    for number in 1..=mode.rounds() {
        let round = Round {
            condition: "quiet",
            number,
            commit,
            groups: None,
        };
        let all: Vec<&BenchTarget> = targets.iter().collect();
        notes.extend(run_round(ws, mode, limit, results, &round, &all));
    }
    let busy_targets = targets_for(&targets, busy_groups);
    if mode.busy_rounds() == 0 || busy_targets.is_empty() {
        return notes;
    }
    let loops = match BusyLoops::start(2) {
        Ok(loops) => loops,
        Err(e) => {
            notes.push(format!(
                "busy rounds not run: cannot start the busy loops: {e}"
            ));
            return notes;
        }
    };
    say(&format!("busy loops started (pids {:?})", loops.pids()));
    for number in 1..=mode.busy_rounds() {
        let round = Round {
            condition: "busy",
            number,
            commit,
            groups: Some(busy_groups),
        };
        notes.extend(run_round(ws, mode, limit, results, &round, &busy_targets));
    }
    drop(loops);
    say("busy loops stopped");
    notes
}

/// The most extra rounds the groups of unsettled rows get (quiet and busy alike) before their
/// verdict stays "unsettled after N rounds".
pub const EXTRA_ROUNDS: u32 = 4;

/// Measures the groups of unsettled rows again, one extra round at a time (quiet rounds
/// numbered after [`Mode::rounds`], busy ones after [`Mode::busy_rounds`], with the busy loops
/// beside those), until `unsettled()` names no group or [`EXTRA_ROUNDS`] were added.
/// `unsettled()` rebuilds the table from the results so far and returns the groups to rerun
/// (see `table::rerun_groups`; busy groups end in [`BUSY`]). Returns notes for the page.
pub fn run_extra_rounds(
    ws: &Workspace,
    mode: Mode,
    limit: Duration,
    results: &Path,
    commit: &str,
    mut unsettled: impl FnMut() -> Vec<String>,
) -> Vec<String> {
    let targets = discover_benches(&ws.root);
    let mut notes = Vec::new();
    let mut rerun: Vec<String> = Vec::new();
    let mut added = 0;
    for extra in 1..=EXTRA_ROUNDS {
        let groups = unsettled();
        if groups.is_empty() {
            break;
        }
        let busy: Vec<&str> = groups.iter().filter_map(|g| g.strip_suffix(BUSY)).collect();
        let quiet: Vec<&str> = groups
            .iter()
            .map(String::as_str)
            .filter(|g| !g.ends_with(BUSY))
            .collect();
        say(&format!(
            "extra round {extra} of at most {EXTRA_ROUNDS} for {groups:?}"
        ));
        // Never an empty BENCH_GROUPS: the benches would read it as "every group".
        if !quiet.is_empty() {
            let round = Round {
                condition: "quiet",
                number: mode.rounds() + extra,
                commit,
                groups: Some(&quiet),
            };
            let picked = targets_for(&targets, &quiet);
            notes.extend(run_round(ws, mode, limit, results, &round, &picked));
        }
        if !busy.is_empty() {
            match BusyLoops::start(2) {
                Ok(loops) => {
                    let round = Round {
                        condition: "busy",
                        number: mode.busy_rounds() + extra,
                        commit,
                        groups: Some(&busy),
                    };
                    let picked = targets_for(&targets, &busy);
                    notes.extend(run_round(ws, mode, limit, results, &round, &picked));
                    drop(loops);
                }
                Err(e) => notes.push(format!(
                    "extra busy round {extra} not run: cannot start the busy loops: {e}"
                )),
            }
        }
        rerun.extend(groups);
        added = extra;
    }
    rerun.sort();
    rerun.dedup();
    if added > 0 {
        notes.push(format!(
            "unsettled rows were measured again: {added} extra round(s) (at most \
             {EXTRA_ROUNDS}) of the groups {}",
            rerun
                .iter()
                .map(|g| format!("`{g}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    notes
}

/// Builds every bench target before the first round, so that no round (and no per-bench time
/// limit) pays for compiling. A failure is a note; the rounds then try anyway.
fn build_benches(ws: &Workspace, targets: &[BenchTarget]) -> Vec<String> {
    let mut cmd = ws.cargo();
    cmd.args(["bench", "--no-run"]);
    let mut packages: Vec<&str> = targets.iter().map(|t| t.package.as_str()).collect();
    packages.dedup();
    for package in packages {
        cmd.args(["-p", package]);
    }
    say(&format!("building {}", run::describe(&cmd)));
    match run::timed(cmd, Duration::from_secs(40 * 60)) {
        Ok((_, took)) => {
            say(&format!("  built in {took:.0?}"));
            Vec::new()
        }
        Err(e) => vec![format!("building the benches failed: {e}")],
    }
}

fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    crate::machine::utc_date(secs)
}

/// Runs `targets` once as `round`; returns notes.
fn run_round(
    ws: &Workspace,
    mode: Mode,
    limit: Duration,
    results: &Path,
    round: &Round<'_>,
    targets: &[&BenchTarget],
) -> Vec<String> {
    let mut notes = Vec::new();
    let name = provenance::round_dir_name(round.condition, round.number);
    let dir = results.join(ROUNDS_DIR).join(&name);
    let _ = fs::remove_dir_all(&dir);
    if let Err(e) = fs::create_dir_all(&dir) {
        return vec![format!(
            "round {name}: cannot create {}: {e}",
            dir.display()
        )];
    }
    let mut stamp = Stamp {
        commit: round.commit.to_string(),
        started: now_utc(),
        finished: None,
        condition: round.condition.to_string(),
        round: round.number,
        load: None,
    };
    let _ = provenance::write(&dir, ROUND_STAMP, &stamp);
    say(&format!("round {name}"));
    let sampler = start_load_sampler(&mut notes, &name);
    for target in targets {
        let mut cmd = ws.cargo();
        cmd.args([
            "bench",
            "-p",
            &target.package,
            "--bench",
            &target.bench,
            "--",
        ])
        .args(mode.criterion_args())
        .envs(mode.bench_env())
        .env("CRITERION_HOME", dir.join("criterion"))
        .env("BENCH_ROUND", round.number.to_string())
        .env("BENCH_SIDE_DIR", &dir);
        if let Some(groups) = round.groups {
            cmd.env("BENCH_GROUPS", groups.join(","));
        }
        let line = run::describe(&cmd);
        say(&format!("  running {line}"));
        let start = Instant::now();
        let started = std::time::SystemTime::now();
        match run::timed(cmd, limit) {
            Ok((output, _)) => {
                let log = results.join(format!(
                    "cargo-bench-{}-{}-{name}.log",
                    target.package, target.bench
                ));
                let mut text = output.stdout;
                text.extend_from_slice(&output.stderr);
                let _ = fs::write(&log, text);
                say(&format!("    done in {:.0?}", start.elapsed()));
                // A bench that exits early "successfully" would otherwise vanish silently.
                let fresh = crate::criterion::scan(&dir.join("criterion"), Some(started))
                    .map_or(0, |scan| scan.results.len());
                if fresh == 0 {
                    notes.push(format!(
                        "round {name}: bench `{}` of package `{}` ran but wrote no criterion \
                         results (see {})",
                        target.bench,
                        target.package,
                        log.display()
                    ));
                }
            }
            Err(e) => {
                say(&format!("    failed: {e}"));
                notes.push(format!(
                    "round {name}: bench `{}` of package `{}` did not run: {e}",
                    target.bench, target.package
                ));
            }
        }
    }
    stamp.finished = Some(now_utc());
    stamp.load = sampler.map(|s| round_load(s, round.condition));
    let _ = provenance::write(&dir, ROUND_STAMP, &stamp);
    notes
}

/// How often the load average is sampled during a round.
const LOAD_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Starts sampling the load average for round `name`; a sampler that cannot start is a note
/// (the round's figures then say "not sampled").
fn start_load_sampler(notes: &mut Vec<String>, name: &str) -> Option<LoadSampler> {
    match LoadSampler::start(LOAD_SAMPLE_EVERY) {
        Ok(sampler) => Some(sampler),
        Err(e) => {
            notes.push(format!(
                "round {name}: the load average was not sampled: {e}"
            ));
            None
        }
    }
}

/// The samples of a finished round with the threshold of its condition.
fn round_load(sampler: LoadSampler, condition: &str) -> RoundLoad {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = RoundLoad {
        samples: sampler.finish(),
        threshold: RoundLoad::threshold_for(condition, cores),
    };
    if load.foreign() {
        say(&format!(
            "  foreign load: the load average reached {:.2}, above the {:.2} this round explains",
            load.peak(),
            load.threshold
        ));
    }
    load
}

/// (round trips, tasks, Python round trips, Python tasks) of one Celery round.
fn celery_counts(mode: Mode) -> [usize; 4] {
    match mode {
        Mode::Quick => [200, 1_000, 50, 300],
        Mode::Default => [500, 2_000, 100, 600],
        Mode::Long => [1_000, 4_000, 200, 1_000],
    }
}

/// The Celery rows: builds `celery-worker` and the `celery_rounds` example in release and runs
/// it for [`Mode::rounds`] rounds on its own redis-server (see that example). Round `n`'s
/// figures go to `rounds/quiet-<n>/celery.jsonl`, judged with that round's stamp (a round
/// folder that does not exist yet, as after `--skip benches` on a fresh tree, gets a stamp of
/// `commit`). What could not be measured (no redis-server, no virtualenv) becomes a note.
pub fn run_celery(ws: &Workspace, mode: Mode, results: &Path, commit: &str) -> Vec<String> {
    let mut build = ws.cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "celery",
        "--bin",
        "celery-worker",
        "--example",
        "celery_rounds",
    ]);
    say(&format!("building {}", run::describe(&build)));
    if let Err(e) = run::timed(build, Duration::from_secs(20 * 60)) {
        return vec![format!(
            "Celery rows not measured: could not build them: {e}"
        )];
    }
    let rounds = mode.rounds();
    // No figure of an earlier run may survive this one's failure.
    for round in 1..=rounds.max(5) {
        let old = results
            .join(ROUNDS_DIR)
            .join(provenance::round_dir_name("quiet", round))
            .join(CELERY_FIGURES);
        let _ = fs::remove_file(old);
    }
    let [rt, tasks, py_rt, py_tasks] = celery_counts(mode);
    let mut cmd = Command::new(ws.target_dir.join("release/examples/celery_rounds"));
    cmd.current_dir(&ws.root)
        .args([rounds as usize, rt, tasks, py_rt, py_tasks].map(|n| n.to_string()));
    say(&format!("running {}", run::describe(&cmd)));
    let start = Instant::now();
    let text = match run::output(cmd, Duration::from_secs(10 * 60)) {
        Ok(text) => text,
        Err(e) => return vec![format!("Celery rows not measured: {e}")],
    };
    say(&format!("  done in {:.0?}", start.elapsed()));
    let _ = fs::write(results.join("celery-rounds.log"), &text);
    let (per_round, mut notes) = split_celery_rounds(&text);
    for (round, lines) in per_round {
        let dir = results
            .join(ROUNDS_DIR)
            .join(provenance::round_dir_name("quiet", round));
        if !dir.join(ROUND_STAMP).is_file() {
            let stamp = Stamp {
                commit: commit.to_string(),
                started: now_utc(),
                finished: Some(now_utc()),
                condition: "quiet".into(),
                round,
                load: None,
            };
            if let Err(e) = fs::create_dir_all(&dir)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    provenance::write(&dir, ROUND_STAMP, &stamp).map_err(|e| e.to_string())
                })
            {
                notes.push(format!(
                    "Celery round {round}: cannot write {}: {e}",
                    dir.display()
                ));
                continue;
            }
        }
        if let Err(e) = fs::write(dir.join(CELERY_FIGURES), lines) {
            notes.push(format!("Celery round {round}: {e}"));
        }
    }
    notes
}

/// The `celery_rounds` output split by round: (round, its JSON lines) and the notes it printed.
pub fn split_celery_rounds(text: &str) -> (Vec<(u32, String)>, Vec<String>) {
    let mut rounds: Vec<(u32, String)> = Vec::new();
    let mut notes = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => {
                notes.push(format!("celery_rounds printed a stray line: {line}"));
                continue;
            }
        };
        if let Some(note) = value.get("note").and_then(|n| n.as_str()) {
            notes.push(note.to_string());
            continue;
        }
        let Some(round) = value.get("round").and_then(|r| r.as_u64()) else {
            notes.push(format!(
                "celery_rounds printed a line without a round: {line}"
            ));
            continue;
        };
        let round = round as u32;
        match rounds.iter_mut().find(|(r, _)| *r == round) {
            Some((_, lines)) => {
                lines.push_str(line);
                lines.push('\n');
            }
            None => rounds.push((round, format!("{line}\n"))),
        }
    }
    (rounds, notes)
}

/// Runs each Python peer script, saving its stdout as `python-<script>.jsonl`.
pub fn run_peers(ws: &Workspace, mode: Mode, results: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    for script in peers::SCRIPTS {
        let path = ws.root.join("benches/peers").join(script);
        say(&format!(
            "running python3 {} {}",
            path.display(),
            mode.python_args().join(" ")
        ));
        let start = Instant::now();
        match peers::run_script(&path, &mode.python_args(), Duration::from_secs(15 * 60)) {
            Ok(stdout) => {
                let stem = script.trim_end_matches(".py");
                let _ = fs::write(results.join(format!("python-{stem}.jsonl")), stdout);
                say(&format!("  done in {:.0?}", start.elapsed()));
            }
            Err(PeerError::PythonNotFound) => {
                notes.push(PeerError::PythonNotFound.to_string());
                say("python3 not found: skipping the Python peers");
                return notes;
            }
            Err(e) => notes.push(format!("Python peer {script}: {e}")),
        }
    }
    notes
}

/// Builds release binaries of `package`; `Err` carries a note.
fn build_bins(ws: &Workspace, package: &str) -> Result<(), String> {
    let mut cmd = ws.cargo();
    cmd.args(["build", "--release", "-p", package, "--bins"]);
    say(&format!("building {}", run::describe(&cmd)));
    run::timed(cmd, Duration::from_secs(20 * 60))
        .map(|_| ())
        .map_err(|e| format!("could not build the {package} binaries: {e}"))
}

/// Runs of the crypto sweep: each is a round of its own (`rounds/crypto-<n>/`, with a stamp
/// and the load sampled while it ran), so the speed-up rows are judged round by round like
/// the benches. Each round runs the sweep once (`--runs 1`); as many rounds as the mode's
/// runs, and at least [`crate::targets::MIN_ROUNDS`].
pub fn crypto_rounds(mode: Mode) -> u32 {
    mode.runs().max(crate::targets::MIN_ROUNDS as u32)
}

/// Runs the crypto sweep with 2 workers in [`crypto_rounds`] rounds; each round's CSV goes to
/// `results/rounds/crypto-<n>/crypto-sweep.csv` beside its stamp.
pub fn run_crypto_sweep(ws: &Workspace, mode: Mode, results: &Path, commit: &str) -> Vec<String> {
    if let Err(note) = build_bins(ws, "crypto") {
        return vec![note];
    }
    let bin = ws.release_bin("crypto-sweep");
    if !bin.exists() {
        return vec![format!(
            "crypto-sweep not measured: {} does not exist",
            bin.display()
        )];
    }
    // No round of an earlier, longer run may pose as one of this run's.
    if let Ok(entries) = fs::read_dir(results.join(ROUNDS_DIR)) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if provenance::parse_round_dir_name(&name).is_some_and(|(c, _)| c == CRYPTO_CONDITION) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let mut notes = Vec::new();
    for number in 1..=crypto_rounds(mode) {
        notes.extend(crypto_round(&bin, results, commit, number));
    }
    notes
}

/// One round of the crypto sweep; returns notes.
fn crypto_round(bin: &Path, results: &Path, commit: &str, number: u32) -> Vec<String> {
    let name = provenance::round_dir_name(CRYPTO_CONDITION, number);
    let dir = results.join(ROUNDS_DIR).join(&name);
    let out_dir = dir.join("sweep-output");
    let _ = fs::remove_dir_all(&dir);
    if let Err(e) = fs::create_dir_all(&out_dir) {
        return vec![format!(
            "crypto-sweep round {name}: cannot create {}: {e}",
            out_dir.display()
        )];
    }
    let mut stamp = Stamp {
        commit: commit.to_string(),
        started: now_utc(),
        finished: None,
        condition: CRYPTO_CONDITION.to_string(),
        round: number,
        load: None,
    };
    let mut notes = Vec::new();
    let sampler = start_load_sampler(&mut notes, &name);
    let mut cmd = Command::new(bin);
    cmd.args(["--max-workers", "2", "--runs", "1", "--out"])
        .arg(&out_dir);
    say(&format!("round {name}: running {}", run::describe(&cmd)));
    let ran = run::timed(cmd, Duration::from_secs(15 * 60));
    stamp.finished = Some(now_utc());
    // Crypto jobs keep both cores busy, as a quiet bench round may.
    stamp.load = sampler.map(|s| round_load(s, "quiet"));
    if let Err(e) = ran {
        notes.push(format!("crypto-sweep round {name} failed: {e}"));
        return notes;
    }
    // The sweep names its own file; take the CSV it wrote.
    let csv = fs::read_dir(&out_dir).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "csv"))
    });
    let copied = match csv {
        Some(csv) => fs::copy(&csv, dir.join(SWEEP_CSV))
            .map_err(|e| format!("cannot copy {}: {e}", csv.display())),
        None => Err(format!("wrote no CSV in {}", out_dir.display())),
    };
    // The stamp last: a round folder with a stamp and no CSV would say nothing.
    let stamped = provenance::write(&dir, ROUND_STAMP, &stamp).map_err(|e| e.to_string());
    for problem in [copied.err(), stamped.err()].into_iter().flatten() {
        notes.push(format!("crypto-sweep round {name}: {problem}"));
    }
    notes
}

/// One timed figure in the JSON-lines format of the peers.
fn json_line(op: &str, who: &str, seconds: f64) -> String {
    format!("{{\"op\": \"{op}\", \"who\": \"{who}\", \"value\": {seconds:.6}, \"unit\": \"s\"}}\n")
}

/// Times `make()` commands `runs` times and returns the median wall time in seconds.
fn time_median(runs: u32, make: &dyn Fn() -> Command) -> Result<f64, String> {
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let cmd = make();
        let line = run::describe(&cmd);
        match run::timed(cmd, Duration::from_secs(120)) {
            Ok((_, elapsed)) => times.push(elapsed.as_secs_f64()),
            Err(e) => return Err(format!("`{line}`: {e}")),
        }
    }
    median(&times).ok_or_else(|| "no run finished".to_string())
}

/// Times the flag downloaders (ours, and the Python peer against our server) and writes
/// `flags.jsonl`.
pub fn run_flags(ws: &Workspace, mode: Mode, results: &Path) -> Vec<String> {
    if let Err(note) = build_bins(ws, "flags") {
        return vec![note];
    }
    let downloader = ws.release_bin("flags2-threadpool");
    if !downloader.exists() {
        return vec![format!(
            "flag downloads not measured: {} does not exist",
            downloader.display()
        )];
    }
    let mut notes = Vec::new();
    let mut lines = String::new();
    let dest = results.join("flags-downloads");
    let runs = mode.runs();
    let ours: [(&str, &[&str]); 2] = [
        (ops::FLAGS_DELAY_20, &["-s", "DELAY"]),
        (ops::FLAGS_EVERY_LOCAL, &["-e", "-s", "LOCAL"]),
    ];
    for (op, args) in ours {
        say(&format!("timing flags2-threadpool {}", args.join(" ")));
        let make = || {
            let _ = fs::remove_dir_all(&dest);
            let _ = fs::create_dir_all(&dest);
            let mut cmd = Command::new(&downloader);
            cmd.args(args).current_dir(&dest);
            cmd
        };
        match time_median(runs, &make) {
            Ok(seconds) => lines.push_str(&json_line(op, "ours", seconds)),
            Err(e) => notes.push(format!("flag download {op} not measured: {e}")),
        }
    }
    notes.extend(run_python_flags(ws, mode, &mut lines));
    if let Err(e) = fs::write(results.join("flags.jsonl"), lines) {
        notes.push(format!("cannot write flags.jsonl: {e}"));
    }
    notes
}

/// The Python flag downloader against our flag server (started with a 0.5 s delay).
fn run_python_flags(ws: &Workspace, mode: Mode, lines: &mut String) -> Vec<String> {
    let server_bin = ws.release_bin("flag-server");
    if !server_bin.exists() {
        return vec![format!(
            "Python flag download not measured: {} does not exist",
            server_bin.display()
        )];
    }
    if peers::python_version().is_none() {
        return vec![];
    }
    let server = match crate::flag_server::FlagServer::start(&server_bin, 0.5) {
        Ok(server) => server,
        Err(e) => return vec![format!("Python flag download not measured: {e}")],
    };
    let script = ws.root.join("benches/peers").join(peers::FLAGS_SCRIPT);
    let mut args = vec!["--url".to_string(), server.url().to_string()];
    args.extend(mode.python_args());
    say(&format!(
        "running python3 {} {}",
        script.display(),
        args.join(" ")
    ));
    match peers::run_script(&script, &args, Duration::from_secs(10 * 60)) {
        Ok(stdout) => {
            lines.push_str(&stdout);
            Vec::new()
        }
        Err(e) => vec![format!("Python flag download: {e}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `celery_rounds` prints, filed by round as `run_celery` does, is loaded with each
    /// round's stamp and judges both Celery rows over three rounds.
    #[test]
    fn celery_rounds_are_filed_by_round_and_judge_both_rows() {
        use crate::sources::{self, Sources};
        use crate::table::{self, Judging};
        use crate::targets::{ops, Verdict, ROWS};
        let mut out = String::from("{\"note\": \"Python Celery not measured: no venv\"}\n");
        for round in 1..=3 {
            for (op, who, value, unit) in [
                (ops::CELERY_ROUND_TRIP, "raw_ping_pong", 100.0, "us"),
                (
                    ops::CELERY_ROUND_TRIP,
                    "ours",
                    150.0 + f64::from(round),
                    "us",
                ),
                (ops::CELERY_THROUGHPUT, "ours", 4000.0, "tasks/s"),
                (ops::CELERY_THROUGHPUT, "python", 1000.0, "tasks/s"),
            ] {
                out.push_str(&format!(
                    "{{\"round\": {round}, \"op\": \"{op}\", \"who\": \"{who}\", \
                     \"value\": {value}, \"unit\": \"{unit}\"}}\n"
                ));
            }
        }
        out.push_str("stray\n");
        let (rounds, notes) = split_celery_rounds(&out);
        assert_eq!(rounds.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("no venv"), "{notes:?}");

        let dir = std::env::temp_dir().join(format!("benches-celery-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (round, lines) in &rounds {
            let rd = dir
                .join(ROUNDS_DIR)
                .join(provenance::round_dir_name("quiet", *round));
            fs::create_dir_all(&rd).unwrap();
            let stamp = Stamp {
                commit: "abc".into(),
                started: now_utc(),
                finished: None,
                condition: "quiet".into(),
                round: *round,
                load: None,
            };
            provenance::write(&rd, ROUND_STAMP, &stamp).unwrap();
            fs::write(rd.join(CELERY_FIGURES), lines).unwrap();
        }
        let loaded = sources::load(&Sources::samples(&dir));
        fs::remove_dir_all(&dir).unwrap();
        let rows = table::build(ROWS, &loaded.figures, Judging { commit: "abc" });
        let verdict = |op: &str| {
            rows.iter()
                .find(|r| r.spec.op == op)
                .map(|r| r.verdict.clone())
                .unwrap()
        };
        // 151-153 us against a 100 us floor: within 2x; 4x Python's throughput: short of 5x.
        let rt = verdict(ops::CELERY_ROUND_TRIP);
        assert!(
            matches!(&rt, Verdict::Met(t) if t.contains("over 3 rounds")),
            "{rt:?}"
        );
        let tput = verdict(ops::CELERY_THROUGHPUT);
        assert!(
            matches!(&tput, Verdict::Missed(t) if t.contains("over 3 rounds")),
            "{tput:?}"
        );
    }

    /// The extra rounds stop at the cap while rows stay unsettled, are numbered after the
    /// mode's rounds, and stop at once when nothing is unsettled. (A workspace without benches:
    /// each round is only its folder and stamp.)
    #[test]
    fn unsettled_groups_get_extra_rounds_up_to_the_cap() {
        let root = std::env::temp_dir().join(format!("benches-extra-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let results = root.join("results");
        fs::create_dir_all(&results).unwrap();
        let ws = Workspace {
            root: root.clone(),
            target_dir: root.join("target"),
        };
        let limit = Duration::from_secs(60);
        let mut asked = 0;
        let notes = run_extra_rounds(&ws, Mode::Quick, limit, &results, "abc", || {
            asked += 1;
            vec!["thread_pool/round_trip_idle".into()]
        });
        assert_eq!(asked, EXTRA_ROUNDS, "asked before each extra round");
        let rounds = |condition: &str| {
            let mut found: Vec<u32> = fs::read_dir(results.join(ROUNDS_DIR))
                .map(|e| {
                    e.flatten()
                        .filter_map(|e| {
                            provenance::parse_round_dir_name(&e.file_name().to_string_lossy())
                        })
                        .filter(|(c, _)| c == condition)
                        .map(|(_, n)| n)
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            found
        };
        assert_eq!(rounds("quiet"), [4, 5, 6, 7], "after the 3 quick rounds");
        assert!(rounds("busy").is_empty());
        assert!(
            notes
                .iter()
                .any(|n| n.contains("4 extra round(s) (at most 4)")),
            "{notes:?}"
        );
        // Settled at once: nothing runs, nothing is said.
        fs::remove_dir_all(results.join(ROUNDS_DIR)).unwrap();
        let notes = run_extra_rounds(&ws, Mode::Quick, limit, &results, "abc", Vec::new);
        assert!(notes.is_empty(), "{notes:?}");
        assert!(rounds("quiet").is_empty());
        // A busy group alone gets busy rounds only; settled after one.
        let mut left = vec![vec!["thread_pool/throughput_200k@busy".to_string()]];
        run_extra_rounds(&ws, Mode::Quick, limit, &results, "abc", || {
            left.pop().unwrap_or_default()
        });
        assert_eq!(rounds("busy"), [4]);
        assert!(rounds("quiet").is_empty());
        let stamp =
            provenance::read(&results.join(ROUNDS_DIR).join("busy-4"), ROUND_STAMP).unwrap();
        assert!(
            stamp.load.is_some(),
            "the load is sampled in extra rounds too"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_package_name_comes_from_the_package_section() {
        let manifest = "[workspace]\nname = \"not-this\"\n\n[package]\nversion = \"0.1.0\"\n\
                        name = \"thread-pool\"\n\n[dependencies]\nname = \"nor-this\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("thread-pool"));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    }

    #[test]
    fn benches_are_discovered_in_crates_and_demos() {
        let root = std::env::temp_dir().join(format!("benches-discover-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (dir, name, bench) in [
            ("crates/tp", "thread-pool", Some("thread_pool.rs")),
            ("demos/crypto", "crypto", Some("aes_ctr.rs")),
            ("demos/flags", "flags", None),
        ] {
            let pkg = root.join(dir);
            fs::create_dir_all(pkg.join("benches")).unwrap();
            fs::write(
                pkg.join("Cargo.toml"),
                format!("[package]\nname = \"{name}\"\n"),
            )
            .unwrap();
            if let Some(bench) = bench {
                fs::write(pkg.join("benches").join(bench), "fn main() {}").unwrap();
            }
            fs::write(pkg.join("benches/README.md"), "not a bench").unwrap();
        }
        let found = discover_benches(&root);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            found,
            vec![
                BenchTarget {
                    package: "crypto".into(),
                    bench: "aes_ctr".into()
                },
                BenchTarget {
                    package: "thread-pool".into(),
                    bench: "thread_pool".into()
                },
            ]
        );
    }

    #[test]
    fn modes_pass_their_settings_to_the_benches() {
        for mode in [Mode::Quick, Mode::Default, Mode::Long] {
            assert_eq!(mode.criterion_args(), vec!["--noplot".to_string()]);
            assert!(mode.runs() >= 1);
            assert!(mode.rounds() >= crate::targets::MIN_ROUNDS as u32);
            assert!(mode.busy_rounds() >= crate::targets::MIN_ROUNDS as u32);
            assert!(crypto_rounds(mode) >= crate::targets::MIN_ROUNDS as u32);
            let env = mode.bench_env();
            let samples = env.iter().find(|(k, _)| *k == "BENCH_SAMPLES").unwrap();
            assert!(
                samples.1.parse::<u64>().unwrap() >= 10,
                "criterion's minimum"
            );
            assert!(mode.describe().contains("quiet rounds"));
        }
    }

    #[test]
    fn busy_rounds_run_only_the_packages_of_their_groups() {
        let targets = [
            BenchTarget {
                package: "future".into(),
                bench: "handoff".into(),
            },
            BenchTarget {
                package: "thread-pool".into(),
                bench: "thread_pool".into(),
            },
        ];
        let picked = targets_for(&targets, &["thread_pool/throughput_200k"]);
        assert_eq!(picked, vec![&targets[1]]);
    }

    #[test]
    fn a_new_run_clears_old_outputs_and_keeps_rounds_only_when_benches_are_skipped() {
        let root = std::env::temp_dir().join(format!("benches-prepare-{}", std::process::id()));
        let ws = Workspace {
            root: root.clone(),
            target_dir: root.join("target"),
        };
        let make_old = || {
            let round = ws.results_dir().join(ROUNDS_DIR).join("quiet-1");
            fs::create_dir_all(&round).unwrap();
            fs::write(round.join(ROUND_STAMP), "{}").unwrap();
            fs::write(ws.results_dir().join("python-future.jsonl"), "old").unwrap();
        };
        make_old();
        let dir = prepare_results_dir(&ws, true).unwrap();
        assert!(!dir.join("python-future.jsonl").exists(), "old outputs go");
        assert!(dir
            .join(ROUNDS_DIR)
            .join("quiet-1")
            .join(ROUND_STAMP)
            .exists());
        make_old();
        prepare_results_dir(&ws, false).unwrap();
        assert!(
            !dir.join(ROUNDS_DIR).exists(),
            "a measuring run starts without rounds"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn busy_loops_run_until_dropped_and_are_reaped() {
        let loops = BusyLoops::start(2).unwrap();
        let pids = loops.pids();
        assert_eq!(pids.len(), 2);
        for pid in &pids {
            assert!(Path::new(&format!("/proc/{pid}")).exists());
        }
        drop(loops);
        // Killed and waited for: no process, not even a zombie, is left.
        for pid in &pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "{pid} still there"
            );
        }
    }

    #[test]
    fn timed_figures_use_the_peer_line_format() {
        let line = json_line(ops::FLAGS_DELAY_20, "ours", 0.5312);
        let parsed = peers::parse(&line);
        assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
        assert_eq!(parsed.figures[0].0, ops::FLAGS_DELAY_20);
        assert_eq!(parsed.figures[0].1, "ours");
        assert!((parsed.figures[0].2.value - 0.5312).abs() < 1e-9);
    }
}
