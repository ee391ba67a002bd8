//! `display(*args)` from the book: a line prefixed with the wall-clock time,
//! `[15:56:50] loiter(1): doing nothing for 1s...`.
//!
//! Differences from the book, on purpose:
//! * Each line is written with one call while holding the sink's lock, so lines
//!   from different threads never interleave (the book's `display` makes two
//!   `print` calls and can produce `[21:53:25][21:53:25] ...`).
//! * The time is UTC: `std` has no time zones, and the demo is about the
//!   seconds ticking, not the hour.
//! * A [`Display`] can capture its lines instead of printing them, so the tests
//!   can read what the demo showed.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where timestamped lines go: stdout, or a shared list (for tests).
#[derive(Clone, Debug, Default)]
pub struct Display {
    captured: Option<Arc<Mutex<Vec<String>>>>,
    millis: bool,
}

impl Display {
    /// Lines go to stdout.
    pub fn stdout() -> Self {
        Display {
            captured: None,
            millis: false,
        }
    }

    /// Lines are kept in memory; read them with [`lines`](Self::lines).
    pub fn capture() -> Self {
        Display {
            captured: Some(Arc::default()),
            millis: false,
        }
    }

    /// Stamps with milliseconds, `[15:56:50.250]`: for runs with a time unit
    /// shorter than a second, where whole seconds would all look alike.
    pub fn with_millis(mut self, millis: bool) -> Self {
        self.millis = millis;
        self
    }

    /// Shows `message` as `[HH:MM:SS] message`.
    pub fn show(&self, message: &str) {
        let now = SystemTime::now();
        let stamp = if self.millis {
            timestamp_millis(now)
        } else {
            timestamp(now)
        };
        let line = format!("{stamp} {message}");
        match &self.captured {
            Some(lines) => lock(lines).push(line),
            None => {
                // A closed stdout (e.g. `| head`) must not panic a worker thread.
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
    }

    /// The captured lines so far (empty when printing to stdout).
    pub fn lines(&self) -> Vec<String> {
        self.captured
            .as_ref()
            .map(|lines| lock(lines).clone())
            .unwrap_or_default()
    }
}

/// A poisoned list is still a list of strings: keep using it.
fn lock(lines: &Mutex<Vec<String>>) -> MutexGuard<'_, Vec<String>> {
    lines.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `[HH:MM:SS]` of `time`, in UTC (Python's `strftime('[%H:%M:%S]')` in local time).
pub fn timestamp(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!(
        "[{:02}:{:02}:{:02}]",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// `[HH:MM:SS.mmm]` of `time`, in UTC.
pub fn timestamp_millis(time: SystemTime) -> String {
    let millis = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()) % 1000;
    let seconds = timestamp(time);
    format!("{}.{millis:03}]", seconds.trim_end_matches(']'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_hours_minutes_seconds_of_the_day() {
        let t = UNIX_EPOCH + Duration::from_secs(3 * 86_400 + 15 * 3600 + 56 * 60 + 50);
        assert_eq!(timestamp(t), "[15:56:50]");
        assert_eq!(timestamp(UNIX_EPOCH), "[00:00:00]");
        assert_eq!(
            timestamp_millis(t + Duration::from_millis(7)),
            "[15:56:50.007]"
        );
    }

    #[test]
    fn captured_lines_are_stamped_and_kept_in_order() {
        let display = Display::capture();
        display.show("one");
        display.clone().show("two");
        let lines = display.lines();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].ends_with("] one") && lines[1].ends_with("] two"),
            "{lines:?}"
        );
        assert_eq!(lines[0].len(), "[00:00:00] one".len());
    }
}
