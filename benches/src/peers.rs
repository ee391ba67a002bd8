//! The Python peers: running the scripts in `benches/peers/` and reading what they print.
//!
//! Each script measures the same operations as our benches with `concurrent.futures`, and
//! prints one JSON object per line: `{"op": "thread_pool/round_trip", "value": 281.5,
//! "unit": "us"}` (a median of several runs). Anything else on stdout (a stray warning) is
//! kept as a note instead of failing the whole report, and a missing `python3` is not an
//! error either: the report says "python3 not found" and shows those cells as not measured.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::figure::{Figure, Figures, Sample};
use crate::run::{self, RunError};

/// The name the Python figures are filed under in the store.
pub const PYTHON: &str = "python";

/// The peer scripts, in the order the report runs them.
pub const SCRIPTS: [&str; 3] = ["future.py", "thread_pool.py", "process_pool.py"];

/// The script that downloads flags from our server (run separately: it needs a server URL).
pub const FLAGS_SCRIPT: &str = "flags.py";

/// One line of a peer's output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PeerLine {
    /// The operation, named like the criterion group it is compared with.
    pub op: String,
    /// The median figure.
    pub value: f64,
    /// Its unit (`"us"`, `"tasks/s"`, `"B/s"`, ...).
    pub unit: String,
    /// Who measured it; the Python scripts leave it out (it is then [`PYTHON`]), the report
    /// writes `"ours"` for the commands it times itself.
    #[serde(default = "python_who")]
    pub who: String,
}

fn python_who() -> String {
    PYTHON.to_string()
}

/// What parsing a peer's output found.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The figures, with their operation names and who measured them.
    pub figures: Vec<(String, String, Figure)>,
    /// Lines that were not results, with the reason.
    pub notes: Vec<String>,
}

impl Parsed {
    /// Files every figure into `figures` under (op, who).
    pub fn add_to(&self, figures: &mut Figures) {
        for (op, who, figure) in &self.figures {
            figures.insert(op, who, Sample::Direct(*figure));
        }
    }
}

/// Parses JSON-lines output. Blank lines are skipped; other bad lines become notes.
pub fn parse(output: &str) -> Parsed {
    let mut parsed = Parsed::default();
    for (n, line) in output.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let result = serde_json::from_str::<PeerLine>(line)
            .map_err(|e| e.to_string())
            .and_then(|l| {
                if !l.value.is_finite() || l.value <= 0.0 {
                    return Err(format!("value {} is not a positive number", l.value));
                }
                Figure::from_unit(l.value, &l.unit)
                    .map(|f| (l.op, l.who, f))
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(pair) => parsed.figures.push(pair),
            Err(e) => parsed
                .notes
                .push(format!("line {}: {e}: {}", n + 1, shorten(line))),
        }
    }
    parsed
}

/// The first 80 characters of a line, for notes.
fn shorten(line: &str) -> String {
    if line.chars().count() <= 80 {
        line.to_string()
    } else {
        format!("{}...", line.chars().take(80).collect::<String>())
    }
}

/// `python3 --version`, or `None` when there is no usable python3.
pub fn python_version() -> Option<String> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    // Old Pythons print the version on stderr.
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    Some(String::from_utf8_lossy(&text).trim().to_string())
}

/// Why a peer produced no figures.
#[derive(Debug)]
pub enum PeerError {
    /// There is no `python3` on the PATH.
    PythonNotFound,
    /// The script failed, hung or could not be started.
    Run(RunError),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::PythonNotFound => {
                write!(
                    f,
                    "python3 not found: install Python 3.11+ to measure the peers"
                )
            }
            PeerError::Run(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PeerError {}

/// Runs `python3 <script> [args]` with a time limit and returns its raw stdout.
pub fn run_script(script: &Path, args: &[String], limit: Duration) -> Result<String, PeerError> {
    if python_version().is_none() {
        return Err(PeerError::PythonNotFound);
    }
    let mut cmd = Command::new("python3");
    cmd.arg(script).args(args);
    run::output(cmd, limit).map_err(PeerError::Run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::Kind;

    #[test]
    fn lines_become_figures_and_junk_becomes_notes() {
        let out = "{\"op\": \"thread_pool/round_trip\", \"value\": 281.5, \"unit\": \"us\"}\n\
                   \n\
                   DeprecationWarning: something\n\
                   {\"op\": \"x\", \"value\": 3, \"unit\": \"parsecs\"}\n\
                   {\"op\": \"y\", \"value\": -1, \"unit\": \"us\"}\n\
                   {\"op\": \"process_pool/tiny_tasks\", \"value\": 2800, \"unit\": \"tasks/s\"}\n\
                   {\"op\": \"flags/delay_20\", \"who\": \"ours\", \"value\": 0.55, \"unit\": \"s\"}\n";
        let parsed = parse(out);
        assert_eq!(parsed.figures.len(), 3);
        assert_eq!(parsed.figures[2].1, "ours");
        assert_eq!(parsed.figures[0].0, "thread_pool/round_trip");
        assert_eq!(parsed.figures[0].1, PYTHON, "who defaults to python");
        assert_eq!(parsed.figures[0].2.kind, Kind::Time);
        assert_eq!(parsed.figures[1].2, Figure::new(2800.0, Kind::Rate));
        assert_eq!(parsed.notes.len(), 3, "{:?}", parsed.notes);
        assert!(parsed.notes[0].starts_with("line 3"));
        assert!(parsed.notes[1].contains("parsecs"));
        assert!(parsed.notes[2].contains("not a positive number"));
    }

    #[test]
    fn the_recorded_peer_output_parses_completely() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let text = [
            "python-future.jsonl",
            "python-thread_pool.jsonl",
            "python-process_pool.jsonl",
        ]
        .map(|f| std::fs::read_to_string(data.join(f)).unwrap())
        .concat();
        let parsed = parse(&text);
        assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
        let ops: Vec<&str> = parsed
            .figures
            .iter()
            .map(|(op, _, _)| op.as_str())
            .collect();
        for op in [
            "future/handoff",
            "thread_pool/round_trip",
            "thread_pool/throughput_200k",
            "process_pool/round_trip",
            "process_pool/tiny_tasks",
            "process_pool/map_chunked",
            "process_pool/map_chunked_large",
            "process_pool/payload_16mib",
        ] {
            assert!(ops.contains(&op), "{op} missing from {ops:?}");
        }
    }
}
