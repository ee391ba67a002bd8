//! Running the measured commands with a time limit.
//!
//! A report that hangs on one broken bench is worse than a report with a hole in it, so every
//! child runs with a limit. The child is started in its own process group; a helper thread
//! blocks in `wait_with_output` and sends the result over a channel, and the caller blocks in
//! `recv_timeout` (no polling). When the limit passes, the whole group is killed (`cargo bench`
//! has the bench binary as a child, and that must die too), which makes the helper's wait
//! return.

use std::fmt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Why a command produced nothing usable.
#[derive(Debug)]
pub enum RunError {
    /// It could not be started (not installed, not built).
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It exited with a failure status.
    Failed {
        /// The command line.
        command: String,
        /// `exit status: 1`, `signal: 9`, ...
        status: String,
        /// The last lines of its stderr, to say why.
        stderr_tail: String,
    },
    /// It ran past its limit and was killed.
    TimedOut {
        /// The command line.
        command: String,
        /// The limit.
        limit: Duration,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Spawn { command, source } => {
                write!(f, "could not start `{command}`: {source}")
            }
            RunError::Failed {
                command,
                status,
                stderr_tail,
            } => write!(f, "`{command}` failed ({status}): {stderr_tail}"),
            RunError::TimedOut { command, limit } => {
                write!(f, "`{command}` ran longer than {limit:?} and was killed")
            }
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The command line as a reader would type it (for messages).
pub fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Runs `cmd` to completion within `limit`, capturing stdout and stderr, and returns the
/// output and how long it took. A non-zero exit is an error carrying the tail of stderr.
pub fn timed(mut cmd: Command, limit: Duration) -> Result<(Output, Duration), RunError> {
    let command = describe(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so a timeout can kill the child and everything it started.
        .process_group(0);
    let start = Instant::now();
    let child = cmd.spawn().map_err(|source| RunError::Spawn {
        command: command.clone(),
        source,
    })?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        // The receiver may be gone if we timed out; the send result does not matter then.
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(limit) {
        Ok(output) => output,
        Err(_) => {
            kill_group(pid);
            // The kill makes the helper's wait return once every holder of the output pipes
            // is gone. A grandchild that left the group (setsid) could keep them open, so
            // the helper is not joined here: it ends by itself, and the report goes on.
            drop(waiter);
            return Err(RunError::TimedOut { command, limit });
        }
    };
    let elapsed = start.elapsed();
    let _ = waiter.join();
    let output = output.map_err(|source| RunError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(RunError::Failed {
            command,
            status: output.status.to_string(),
            stderr_tail: tail(&String::from_utf8_lossy(&output.stderr), 6),
        });
    }
    Ok((output, elapsed))
}

/// Runs `cmd` within `limit` and returns its stdout as text.
pub fn output(cmd: Command, limit: Duration) -> Result<String, RunError> {
    timed(cmd, limit).map(|(out, _)| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Sends SIGKILL to the process group `pgid` (our child and its descendants).
fn kill_group(pgid: u32) {
    // `kill` the utility keeps this crate free of libc; the group id is our own child's pid,
    // which cannot have been reused: the child is not reaped until the waiter thread's
    // wait returns, after this kill.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The last `n` non-empty lines of `text`, joined with " | ".
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join(" | ")
}

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn output_is_captured() {
        let out = output(sh("echo hello; echo noise >&2"), Duration::from_secs(20)).unwrap();
        assert_eq!(out, "hello\n");
    }

    #[test]
    fn a_failure_carries_its_status_and_stderr() {
        let err = output(sh("echo why >&2; exit 3"), Duration::from_secs(20)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("why"), "{text}");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = output(
            Command::new("/nonexistent/program"),
            Duration::from_secs(20),
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }));
    }

    #[test]
    fn a_hung_command_and_its_children_are_killed_at_the_limit() {
        let start = Instant::now();
        // The shell starts a child sleep; both must die or wait_with_output would block on
        // the pipe the grandchild still holds.
        let err = output(sh("sleep 30 & sleep 30; wait"), Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, RunError::TimedOut { .. }), "{err}");
        // Generous bound: proves "no hang", not speed.
        assert!(start.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn tail_keeps_the_last_non_empty_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(tail("", 3), "");
    }
}
