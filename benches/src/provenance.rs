//! Where figures come from: the stamps the live run writes beside its raw outputs.
//!
//! A results folder (`target/bench-report/`, or a recorded copy) holds:
//!
//! * `run.json`: the stamp of the run as a whole (commit, start time), which the Python
//!   peers' JSON lines, the timed flag downloads and the crypto sweep of that folder carry;
//! * `rounds/<condition>-<n>/`: one round of every criterion bench (`condition` is `quiet`,
//!   or `busy` with two busy loops beside it), with its own `stamp.json` (commit, start and
//!   end time), criterion's folder `criterion/`, and the benches' side files
//!   (`side-figures.jsonl`, `settings.jsonl`, see `benches/support/harness.rs`).
//!
//! Every figure is filed with the stamp of the file it came from, so the table can refuse to
//! judge a figure measured on another commit, or one whose commit nobody recorded.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::figure::Origin;

/// The name of a round's or a run's stamp file.
pub const ROUND_STAMP: &str = "stamp.json";
/// The name of the run's stamp file.
pub const RUN_STAMP: &str = "run.json";
/// The folder of the rounds inside a results folder.
pub const ROUNDS_DIR: &str = "rounds";

/// A stamp: what was measured, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    /// The sources measured (as the page's "sources" line prints them).
    pub commit: String,
    /// When it started (`YYYY-MM-DD HH:MM UTC`).
    pub started: String,
    /// When it ended, if it did.
    #[serde(default)]
    pub finished: Option<String>,
    /// `quiet` or `busy` for a round; `run` for the run's stamp.
    #[serde(default)]
    pub condition: String,
    /// The round number (0 for the run's stamp).
    #[serde(default)]
    pub round: u32,
    /// The load average sampled while the round ran (absent in older stamps, and in the run's
    /// stamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<RoundLoad>,
}

/// The 1-minute load average sampled about once a second while a round ran, and the most it
/// could be from our own work. Above that, something else was running beside the round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundLoad {
    /// The samples, in order (the first is taken as the round starts).
    pub samples: Vec<f64>,
    /// The highest load our own round explains: the cores (a bench keeps at most that many
    /// threads running) plus 0.5, plus 2 in a busy round for its two busy loops.
    pub threshold: f64,
}

impl RoundLoad {
    /// The threshold for a round of `condition` on `cores` CPUs (see [`RoundLoad::threshold`]).
    pub fn threshold_for(condition: &str, cores: usize) -> f64 {
        let busy_loops = if condition == "busy" { 2.0 } else { 0.0 };
        cores as f64 + busy_loops + 0.5
    }

    /// The highest sample (0 when there is none).
    pub fn peak(&self) -> f64 {
        self.samples.iter().copied().fold(0.0, f64::max)
    }

    /// True when some sample is above the threshold: the round ran beside foreign load.
    pub fn foreign(&self) -> bool {
        self.peak() > self.threshold
    }
}

impl Stamp {
    /// The origin every figure under this stamp carries.
    pub fn origin(&self) -> Origin {
        Origin {
            commit: self.commit.clone(),
            time: self.started.clone(),
            foreign_load: self.load.as_ref().map(RoundLoad::foreign),
        }
    }
}

/// Writes `stamp` as `dir/name`.
pub fn write(dir: &Path, name: &str, stamp: &Stamp) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(stamp).map_err(std::io::Error::other)?;
    fs::write(dir.join(name), text + "\n")
}

/// Reads `dir/name`; `Err` says why there is no usable stamp.
pub fn read(dir: &Path, name: &str) -> Result<Stamp, String> {
    let path = dir.join(name);
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The folder name of round `n` of `condition` (`quiet-1`, `busy-3`).
pub fn round_dir_name(condition: &str, n: u32) -> String {
    format!("{condition}-{n}")
}

/// Splits a round folder name into its condition and number.
pub fn parse_round_dir_name(name: &str) -> Option<(String, u32)> {
    let (condition, n) = name.rsplit_once('-')?;
    Some((condition.to_string(), n.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("benches-stamp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let stamp = Stamp {
            commit: "abc1234".into(),
            started: "2026-12-02 17:00 UTC".into(),
            finished: Some("2026-12-02 17:02 UTC".into()),
            condition: "busy".into(),
            round: 2,
            load: Some(RoundLoad {
                samples: vec![4.1, 4.7],
                threshold: RoundLoad::threshold_for("busy", 2),
            }),
        };
        write(&dir, ROUND_STAMP, &stamp).unwrap();
        assert_eq!(read(&dir, ROUND_STAMP).unwrap(), stamp);
        assert!(read(&dir, "nothing.json")
            .unwrap_err()
            .contains("nothing.json"));
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(stamp.origin().commit, "abc1234");
        assert_eq!(stamp.origin().foreign_load, Some(true), "4.7 > 2 + 2 + 0.5");
        let older = r#"{"commit": "abc", "started": "t", "condition": "quiet", "round": 1}"#;
        let older: Stamp = serde_json::from_str(older).unwrap();
        assert_eq!(older.origin().foreign_load, None, "not sampled");
    }

    #[test]
    fn foreign_load_is_load_above_what_our_round_explains() {
        let quiet = |samples: Vec<f64>| RoundLoad {
            samples,
            threshold: RoundLoad::threshold_for("quiet", 2),
        };
        assert!(!quiet(vec![1.9, 2.5]).foreign(), "2 cores + 0.5");
        assert!(quiet(vec![1.0, 2.51, 1.0]).foreign());
        assert!(!quiet(vec![]).foreign());
        assert_eq!(RoundLoad::threshold_for("busy", 2), 4.5);
    }

    #[test]
    fn round_folder_names_carry_condition_and_number() {
        assert_eq!(round_dir_name("quiet", 3), "quiet-3");
        assert_eq!(parse_round_dir_name("busy-12"), Some(("busy".into(), 12)));
        assert_eq!(parse_round_dir_name("criterion"), None);
    }
}
