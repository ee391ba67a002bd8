//! The machine the figures were measured on: cores, CPU model, compiler, Python, date.
//!
//! Benchmark figures mean nothing without the machine, so the page opens with it. Everything
//! here is read from the system (`/proc/cpuinfo`, `rustc --version`, `python3 --version`, the
//! clock); the parsing is split from the reading so it can be tested on recorded text.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the page says about the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// `model name` from `/proc/cpuinfo`, or "unknown CPU".
    pub cpu: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `python3 --version`, or "python3 not found".
    pub python: String,
    /// The date and time of the run, UTC.
    pub date: String,
    /// The load averages (1, 5, 15 minutes) when the machine was read: above the core count,
    /// other work was competing with the benchmarks.
    pub load: String,
    /// The commit measured, and the folders with uncommitted changes to tracked files (a
    /// shared checkout may hold work in progress), or "unknown" outside git.
    pub source: String,
}

impl Machine {
    /// Reads the machine this process runs on, and the state of the sources under `root`.
    pub fn detect(root: &Path) -> Machine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| cpu_model(&text))
            .unwrap_or_else(|| "unknown CPU".to_string());
        let rustc =
            command_line("rustc", &["--version"]).unwrap_or_else(|| "rustc not found".to_string());
        let python =
            crate::peers::python_version().unwrap_or_else(|| "python3 not found".to_string());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| load_average(&text))
            .unwrap_or_else(|| "unknown".to_string());
        let source = source_state(root);
        Machine {
            cores,
            cpu,
            rustc,
            python,
            date: utc_date(now),
            load,
            source,
        }
    }
}

/// The first line of a command's stdout, if it runs and succeeds.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

/// The `model name` of the first CPU in `/proc/cpuinfo` text (x86); falls back to
/// `Model`/`Hardware` lines that ARM kernels print.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    for key in ["model name", "Model", "Hardware"] {
        let found = cpuinfo.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key && !v.trim().is_empty()).then(|| v.trim().to_string())
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

/// `<short commit>` plus the folders with uncommitted changes, from git in `root`.
fn source_state(root: &Path) -> String {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".to_string();
    };
    let status = git(&["status", "--porcelain", "--untracked-files=no"]).unwrap_or_default();
    describe_source(commit.trim(), &status)
}

/// Formats a commit and `git status --porcelain` output: `abc1234`, or `abc1234 plus
/// uncommitted changes in crates/thread-pool`. `Cargo.lock` alone does not count.
pub fn describe_source(commit: &str, porcelain: &str) -> String {
    let mut dirs: Vec<String> = porcelain
        .lines()
        .filter_map(|line| line.get(3..))
        .map(|path| path.rsplit(" -> ").next().unwrap_or(path))
        .filter(|path| *path != "Cargo.lock")
        .map(|path| {
            // Two levels (`crates/thread-pool`) say which package; a top-level file stays.
            let parts: Vec<&str> = path.split('/').collect();
            parts[..parts.len().min(2)].join("/")
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    if dirs.is_empty() {
        commit.to_string()
    } else {
        format!("{commit} plus uncommitted changes in {}", dirs.join(", "))
    }
}

/// The three load averages of `/proc/loadavg` text, as `6.42, 4.60, 4.38`.
pub fn load_average(loadavg: &str) -> Option<String> {
    let fields: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    let all_numbers = fields.iter().all(|f| f.parse::<f64>().is_ok());
    (fields.len() == 3 && all_numbers).then(|| fields.join(", "))
}

/// The 1-minute load average of `/proc/loadavg` text.
pub fn one_minute_load(loadavg: &str) -> Option<f64> {
    loadavg.split_whitespace().next()?.parse().ok()
}

/// Reads the 1-minute load average now (`None` where there is no `/proc/loadavg`).
fn read_one_minute_load() -> Option<f64> {
    one_minute_load(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// Samples the 1-minute load average while a round runs: once when started, then every
/// `every` on a thread of its own, and once more when finished. A load read only at the start
/// of the report misses the build that starts halfway through a round beside it.
#[derive(Debug)]
pub struct LoadSampler {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Vec<f64>>,
}

impl LoadSampler {
    /// Takes the first sample and starts the sampling thread.
    pub fn start(every: std::time::Duration) -> std::io::Result<LoadSampler> {
        let first: Vec<f64> = read_one_minute_load().into_iter().collect();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("load-sampler".into())
            .spawn(move || {
                let mut samples = first;
                // A timeout is the next tick; a message (or the sender gone) is the end.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    samples.extend(read_one_minute_load());
                }
                samples
            })?;
        Ok(LoadSampler { stop, thread })
    }

    /// Stops the thread and returns every sample, the last one taken now.
    pub fn finish(self) -> Vec<f64> {
        let _ = self.stop.send(());
        let mut samples = self.thread.join().unwrap_or_default();
        samples.extend(read_one_minute_load());
        samples
    }
}

/// A warning when the 1-minute load average (the first of `load`, as [`load_average`] formats
/// it) is above `cores`: other work was competing for the CPUs, so the figures are noise.
pub fn overload_warning(load: &str, cores: usize) -> Option<String> {
    let one_minute: f64 = load.split(',').next()?.trim().parse().ok()?;
    (one_minute > cores as f64).then(|| {
        format!(
            "the machine is busy: load average {one_minute:.2} is above its {cores} core(s), so \
             other work competed with the benchmarks and their figures are noise; run the report \
             again on a quiet machine before quoting them"
        )
    })
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
///
/// The calendar conversion is Howard Hinnant's `civil_from_days` (public domain algorithm):
/// shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era's year.
pub fn utc_date(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let rem = unix_seconds % 86_400;
    let (hour, minute) = (rem / 3600, rem % 3600 / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_model_is_read_from_cpuinfo() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\n\
                   model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nprocessor\t: 1\n\
                   model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(
            cpu_model(x86).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        let arm = "processor : 0\nBogoMIPS : 108.00\nModel : Raspberry Pi 4 Model B\n";
        assert_eq!(cpu_model(arm).as_deref(), Some("Raspberry Pi 4 Model B"));
        assert_eq!(cpu_model("processor : 0\n"), None);
    }

    #[test]
    fn the_source_state_names_folders_with_uncommitted_changes() {
        assert_eq!(describe_source("abc1234", ""), "abc1234");
        assert_eq!(describe_source("abc1234", " M Cargo.lock\n"), "abc1234");
        let porcelain = " M crates/thread-pool/src/pool.rs\n M crates/thread-pool/src/sleep.rs\n\
                         M  README.md\nR  docs/a.md -> docs/b.md\n";
        assert_eq!(
            describe_source("abc1234", porcelain),
            "abc1234 plus uncommitted changes in README.md, crates/thread-pool, docs/b.md"
        );
    }

    #[test]
    fn the_load_average_is_read_from_proc() {
        let text = "6.42 4.60 4.38 3/812 12345\n";
        assert_eq!(load_average(text).as_deref(), Some("6.42, 4.60, 4.38"));
        assert_eq!(load_average("garbage"), None);
        assert_eq!(load_average("1.0 x 2.0"), None);
    }

    #[test]
    fn the_load_sampler_samples_at_start_and_finish() {
        assert_eq!(one_minute_load("6.42 4.60 4.38 3/812 12345\n"), Some(6.42));
        assert_eq!(one_minute_load("x 1 2"), None);
        assert!(
            Path::new("/proc/loadavg").exists(),
            "this test needs Linux's /proc/loadavg"
        );
        // An interval far longer than the test: only the start and finish samples.
        let sampler = LoadSampler::start(std::time::Duration::from_secs(3600)).unwrap();
        let samples = sampler.finish();
        assert_eq!(samples.len(), 2, "{samples:?}");
        assert!(samples.iter().all(|s| *s >= 0.0), "{samples:?}");
    }

    #[test]
    fn a_load_above_the_core_count_is_a_warning() {
        assert_eq!(overload_warning("1.50, 3.00, 3.00", 2), None);
        assert_eq!(
            overload_warning("2.00, 0.10, 0.10", 2),
            None,
            "equal is not above"
        );
        let warning = overload_warning("6.42, 4.60, 4.38", 2).unwrap();
        assert!(warning.contains("6.42"), "{warning}");
        assert!(warning.contains("2 core"), "{warning}");
        assert_eq!(overload_warning("unknown", 2), None);
    }

    #[test]
    fn dates_are_converted_in_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34 UTC: a leap day in a century leap year.
        assert_eq!(utc_date(951_827_640), "2000-02-29 12:34 UTC");
        // 2026-11-25 22:20 UTC.
        assert_eq!(utc_date(1_795_645_200), "2026-11-25 22:20 UTC");
    }

    #[test]
    fn detect_fills_every_field() {
        let m = Machine::detect(Path::new(env!("CARGO_MANIFEST_DIR")));
        assert!(m.cores >= 1);
        assert!(!m.cpu.is_empty());
        assert!(m.rustc.starts_with("rustc"), "{}", m.rustc);
        assert!(m.date.ends_with("UTC"));
        assert!(!m.source.is_empty());
    }
}
