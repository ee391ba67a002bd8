//! The flags2 reports, word for word as the book prints them (1e wording:
//! counts not padded, `1 concurrent connection will be used.`).
//!
//! ```text
//! DELAY site: http://127.0.0.1:PORT/flags
//! Searching for 78 flags: from AA to CZ
//! 30 concurrent connections will be used.
//! --------------------
//! 43 flags downloaded.
//! 35 not found.
//! Elapsed time: 0.52s
//! ```

use std::fmt::Write as _;
use std::time::Duration;

/// How one download ended (the book's `DownloadStatus`). Serialisable, so
/// that a process-pool worker can send it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// The flag was downloaded and saved.
    Ok,
    /// The server answered 404.
    NotFound,
    /// Anything else: another HTTP status, a timeout, a broken connection,
    /// a failed save.
    Error,
}

/// The book's `Counter` of statuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Flags downloaded.
    pub ok: usize,
    /// 404s.
    pub not_found: usize,
    /// Everything else.
    pub error: usize,
}

impl Counter {
    /// Counts one outcome.
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Ok => self.ok += 1,
            Status::NotFound => self.not_found += 1,
            Status::Error => self.error += 1,
        }
    }

    /// All outcomes counted so far.
    pub fn total(&self) -> usize {
        self.ok + self.not_found + self.error
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The three lines printed before the downloads start.
pub fn initial_report(label: &str, base_url: &str, codes: &[String], concurrency: usize) -> String {
    let n = codes.len();
    let cc_msg = if n <= 10 {
        codes.join(", ")
    } else {
        format!("from {} to {}", codes[0], codes[n - 1])
    };
    let mut out = String::new();
    let _ = writeln!(out, "{label} site: {base_url}");
    let _ = writeln!(out, "Searching for {n} flag{}: {cc_msg}", plural(n));
    let _ = writeln!(
        out,
        "{concurrency} concurrent connection{} will be used.",
        plural(concurrency)
    );
    out
}

/// The summary block printed when the downloads are over.
pub fn final_report(counter: &Counter, elapsed: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", "-".repeat(20));
    let _ = writeln!(out, "{} flag{} downloaded.", counter.ok, plural(counter.ok));
    if counter.not_found > 0 {
        let _ = writeln!(out, "{} not found.", counter.not_found);
    }
    if counter.error > 0 {
        let _ = writeln!(out, "{} error{}.", counter.error, plural(counter.error));
    }
    let _ = writeln!(out, "Elapsed time: {:.2}s", elapsed.as_secs_f64());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn initial_report_matches_the_book() {
        let many: Vec<String> =
            crate::codes::expand_cc_args(false, false, &codes(&["a", "b", "c"]), usize::MAX)
                .unwrap();
        assert_eq!(
            initial_report("DELAY", "http://localhost:8002/flags", &many, 30),
            "DELAY site: http://localhost:8002/flags\n\
             Searching for 78 flags: from AA to CZ\n\
             30 concurrent connections will be used.\n"
        );
        assert_eq!(
            initial_report("LOCAL", "u", &codes(&["BR"]), 1),
            "LOCAL site: u\nSearching for 1 flag: BR\n1 concurrent connection will be used.\n"
        );
        assert!(initial_report("L", "u", &codes(&["BR", "CN"]), 2).contains("2 flags: BR, CN\n"));
    }

    #[test]
    fn final_report_matches_the_book() {
        let mut c = Counter::default();
        for _ in 0..43 {
            c.add(Status::Ok);
        }
        for _ in 0..35 {
            c.add(Status::NotFound);
        }
        assert_eq!(
            final_report(&c, Duration::from_millis(1720)),
            "--------------------\n43 flags downloaded.\n35 not found.\nElapsed time: 1.72s\n"
        );
        let one = Counter {
            ok: 1,
            not_found: 0,
            error: 1,
        };
        assert_eq!(
            final_report(&one, Duration::from_millis(640)),
            "--------------------\n1 flag downloaded.\n1 error.\nElapsed time: 0.64s\n"
        );
        assert_eq!(one.total(), 2);
    }
}
