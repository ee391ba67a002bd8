//! When a task may run: protocol 2's `eta` and `expires` headers, and the
//! messages a worker holds until their `eta`.
//!
//! A Python client's `countdown=8` arrives as an `eta` (now + 8 s, an ISO
//! 8601 date); `expires=60` as an `expires` date. Celery's worker:
//!
//! * holds an `eta` task in memory until it is due, its message fetched
//!   but unacked (kombu's `unacked` hash), so that the message is restored
//!   to its queue if the worker dies; the task then waits for a free pool
//!   slot like any other;
//! * does not run a task whose `expires` has passed, when it is received
//!   or when it falls due, and stores REVOKED with the reason `expired`.
//!
//! Our worker does the same (`Held` is the holding), with two choices:
//!
//! * The due time is turned into a delay on the monotonic clock when the
//!   message arrives: a wall clock that jumps later moves nothing.
//! * A held message's score in `unacked_index` is its eta, not the time it
//!   was fetched, so the visibility timeout counts from when it is due: a
//!   worker holding a task an hour ahead is not robbed of it by another
//!   worker's restore after the visibility timeout (Celery's documented
//!   caveat for eta tasks, where the task then runs twice).
//!
//! An eta or expires the worker cannot read is refused: the task is not
//! run and a FAILURE that says why is stored ([`refusal`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::message::TaskMessage;
use crate::meta::Outcome;
use crate::registry::excerpt;

/// A message's `eta` and `expires`, as Unix times in seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timing {
    /// Not before this time (`None`: at once).
    pub eta: Option<f64>,
    /// Not after this time (`None`: never expires).
    pub expires: Option<f64>,
    /// A header that could not be read: the task is refused.
    pub error: Option<String>,
}

impl Timing {
    /// Reads the `eta` and `expires` headers (`null` or missing: none).
    pub fn from_headers(headers: &Value) -> Timing {
        let mut timing = Timing::default();
        let mut read = |name: &str| match headers.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match parse_iso8601(s) {
                Ok(t) => Some(t),
                Err(why) => {
                    let s = excerpt(&format_args!("{s:?}"));
                    timing.error = Some(format!("its {name} header {s} {why}"));
                    None
                }
            },
            Some(other) => {
                timing.error = Some(format!(
                    "its {name} header {} is not an ISO 8601 date string",
                    excerpt(other)
                ));
                None
            }
        };
        let (eta, expires) = (read("eta"), read("expires"));
        timing.eta = eta;
        timing.expires = expires;
        timing
    }

    /// Whether [`TaskMessage::to_json`] can write `eta` and `expires` as
    /// the dates they are: a time past what an ISO 8601 date says (years 1
    /// to 9999), or NaN or infinite, would go out as another date (NaN as
    /// 1970-01-01: a NaN eta would run at once) or as one the worker
    /// refuses. The error names the header and says what to give.
    pub fn check_writable(&self) -> Result<(), String> {
        for (name, t) in [("eta", self.eta), ("expires", self.expires)] {
            let Some(t) = t else { continue };
            let readable = t.is_finite() && parse_iso8601(&format_iso8601(t)).is_ok();
            if !readable {
                return Err(format!(
                    "the message's {name} ({t} s since 1970) is no date of years 1 to 9999: \
                     give a finite Unix time in that range, or None"
                ));
            }
        }
        Ok(())
    }

    /// How long from `now` (a Unix time) until the task is due; `None` if
    /// it is due now.
    pub fn wait(&self, now: f64) -> Option<Duration> {
        let left = self.eta? - now;
        // `try_from_secs_f64` refuses only what no clock reaches: such a
        // task is held until the worker stops.
        (left > 0.0).then(|| Duration::try_from_secs_f64(left).unwrap_or(Duration::MAX))
    }

    /// Whether the task has expired at `now` (a Unix time).
    pub fn expired(&self, now: f64) -> bool {
        self.expires.is_some_and(|e| now > e)
    }

    /// The message's score in `unacked_index`: its eta if later than
    /// `now`, so that the visibility timeout counts from when it is due.
    pub fn unacked_score(&self, now: f64) -> f64 {
        self.eta.map_or(now, |eta| eta.max(now))
    }
}

/// The FAILURE stored for a task whose eta or expires cannot be read.
pub fn refusal(msg: &TaskMessage) -> Option<Outcome> {
    let why = msg.timing.error.as_ref()?;
    Some(Outcome::Failure {
        exc_type: "ValueError".to_string(),
        exc_module: Some("builtins".to_string()),
        message: format!(
            "task {} ({}) did not run: {why}",
            excerpt(&msg.task),
            excerpt(&msg.id)
        ),
        traceback: None,
    })
}

/// Parses what Python's `datetime.isoformat()` writes:
/// `YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM|-HH:MM|Z]` (a space for the `T`
/// is accepted). A date without an offset is UTC, Celery's default
/// timezone. Returns a Unix time in seconds: exact to the microsecond
/// until 2106 (2^32 s); a f64 further from 1970 has coarser steps (30 µs at
/// year 9999), so use [`parse_iso8601_exact`] to keep every microsecond.
pub fn parse_iso8601(s: &str) -> Result<f64, String> {
    let (secs, micros) = parse_iso8601_exact(s)?;
    Ok(secs as f64 + f64::from(micros) / 1e6)
}

/// [`parse_iso8601`] as Unix seconds and microseconds (0 to 999,999),
/// exact: [`crate::meta::iso_utc`] of them reads back to the same pair.
/// Digits past the sixth of the fraction are dropped, as Python's
/// `datetime.fromisoformat` does.
pub fn parse_iso8601_exact(s: &str) -> Result<(i64, u32), String> {
    let bad = || "is not an ISO 8601 date (YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM])".to_string();
    let b = s.as_bytes();
    if b.len() < 19 || b.len() > 40 || !s.is_ascii() {
        return Err(bad());
    }
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = &s[from..from + len];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let seps = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b[i] != c) || !matches!(b[10], b'T' | b' ') {
        return Err(bad());
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err("is not a valid date and time".to_string());
    }
    let mut rest = &s[19..];
    let mut micros = 0;
    if let Some(digits) = rest.strip_prefix('.') {
        let n = digits.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return Err(bad());
        }
        // The first six digits, padded: ".5" is 500,000 µs.
        let six = format!("{:0<6}", &digits[..n.min(6)]);
        micros = six.parse().map_err(|_| bad())?;
        rest = &digits[n..];
    }
    let offset = match rest {
        "" | "Z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad()),
            };
            let (h, m) = (num(s.len() - 5, 2)?, num(s.len() - 2, 2)?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    // Python's datetime spans years 1 to 9999; an aware date whose UTC
    // instant falls outside cannot be converted there either.
    let first = days_from_civil(1, 1, 1) * 86_400;
    let last = days_from_civil(9999, 12, 31) * 86_400 + 86_399;
    if !(first..=last).contains(&secs) {
        return Err("is outside the years 1 to 9999 (UTC)".to_string());
    }
    Ok((secs, micros))
}

/// The header value for a Unix time: what [`parse_iso8601`] reads back
/// (to the microsecond) and Python's `datetime.isoformat()` writes.
pub fn format_iso8601(t: f64) -> String {
    let mut secs = t.floor();
    let mut micros = ((t - secs) * 1e6).round();
    if micros >= 1e6 {
        secs += 1.0;
        micros = 0.0;
    }
    // The last microsecond of 9999 (parse_iso8601 accepts it) is, as a
    // f64, the first second of 10000 (steps of 30 µs there): written as
    // it was, not as a year no date reads.
    let last = days_from_civil(9999, 12, 31) * 86_400 + 86_399;
    if secs as i64 == last + 1 && micros == 0.0 {
        return crate::meta::iso_utc(last, 999_999);
    }
    // In range for every other time parse_iso8601 accepts (years 1 to 9999).
    crate::meta::iso_utc(secs as i64, micros as u32)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's days-from-civil algorithm, the
/// inverse of [`crate::meta::iso_utc`]'s).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The messages a worker holds until their eta, soonest first.
pub(crate) struct Held<J> {
    queue: Mutex<HeldQueue<J>>,
}

struct HeldQueue<J> {
    /// (due, arrival number) → the job; the number keeps equal dues apart.
    jobs: BTreeMap<(Instant, u64), J>,
    arrivals: u64,
}

impl<J> Default for Held<J> {
    fn default() -> Self {
        Held {
            queue: Mutex::new(HeldQueue {
                jobs: BTreeMap::new(),
                arrivals: 0,
            }),
        }
    }
}

impl<J> Held<J> {
    /// Holds `job` for `wait`.
    pub(crate) fn hold(&self, job: J, wait: Duration) {
        // Further away than any clock reaches: held until the worker stops
        // (a far but finite stand-in keeps the map ordered).
        let far = Duration::from_secs(100 * 365 * 86_400);
        let now = Instant::now();
        let due = now
            .checked_add(wait)
            .or_else(|| now.checked_add(far))
            .unwrap_or(now);
        let mut queue = lock(&self.queue);
        let n = queue.arrivals;
        queue.arrivals += 1;
        queue.jobs.insert((due, n), job);
    }

    /// A job that is due now, if any.
    pub(crate) fn take_due(&self) -> Option<J> {
        let mut queue = lock(&self.queue);
        let first = *queue.jobs.keys().next()?;
        (first.0 <= Instant::now()).then(|| queue.jobs.remove(&first))?
    }

    /// When the soonest held job falls due, if any is held.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        lock(&self.queue).jobs.keys().next().map(|(due, _)| *due)
    }

    /// Every held job, to be returned to its queue (shutdown).
    pub(crate) fn drain(&self) -> Vec<J> {
        std::mem::take(&mut lock(&self.queue).jobs)
            .into_values()
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_accepted_date_written_back_reads_to_the_same_microsecond() {
        // Far from 1970 a f64 of seconds holds no microseconds (at year
        // 9999 its step is 30 µs); the exact reading keeps them.
        for (date, secs, micros) in [
            ("9999-12-31T23:59:59.000001", 253_402_300_799, 1),
            ("0001-01-01T00:00:00.999999+00:00", -62_135_596_800, 999_999),
            ("2026-12-07T20:00:00.1234569Z", 1_796_673_600, 123_456),
        ] {
            assert_eq!(parse_iso8601_exact(date), Ok((secs, micros)), "{date}");
            let back = crate::meta::iso_utc(secs, micros);
            assert_eq!(parse_iso8601_exact(&back), Ok((secs, micros)), "{back}");
        }
    }

    #[test]
    fn refuses_dates_outside_python_s_years_1_to_9999() {
        // datetime.fromisoformat("0000-01-01T00:00:00") raises: year 0 is out of range.
        assert!(parse_iso8601("0000-06-01T00:00:00").is_err());
        // Aware dates whose UTC instant leaves the range: Python's astimezone overflows.
        assert!(parse_iso8601("0001-01-01T00:00:00+01:00").is_err());
        assert!(parse_iso8601("9999-12-31T23:59:59-01:00").is_err());
        assert!(parse_iso8601("0001-01-01T00:00:00").is_ok());
        assert!(parse_iso8601("9999-12-31T23:59:59.999999").is_ok());
    }

    #[test]
    fn reads_the_dates_python_writes() {
        // datetime(2026, 12, 7, 17, 30, 0, 123456, tzinfo=timezone.utc).timestamp()
        let t = parse_iso8601("2026-12-07T17:30:00.123456+00:00").unwrap();
        assert!((t - 1_796_664_600.123_456).abs() < 1e-6, "{t}");
        assert_eq!(parse_iso8601("1970-01-01T00:00:00").unwrap(), 0.0);
        assert_eq!(parse_iso8601("1970-01-01T01:00:00+01:00").unwrap(), 0.0);
        assert_eq!(parse_iso8601("1969-12-31T23:00:00-01:00").unwrap(), 0.0);
        assert_eq!(
            parse_iso8601("2000-02-29 00:00:00Z").unwrap(),
            951_782_400.0
        );
        for bad in [
            "",
            "tomorrow",
            "2026-02-30T00:00:00",
            "2026-12-07T24:00:00",
            "2026-12-07T17:30:00+0100",
            "2026-12-07T17:30:00.",
            "2026-12-07T17:30:00+aa:00",
            "２０２６-12-07T17:30:00",
        ] {
            assert!(parse_iso8601(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_unreadable_header_is_an_error_not_a_panic() {
        let t = Timing::from_headers(&json!({"eta": 5, "expires": null}));
        assert!(t.error.unwrap().contains("eta"));
        let t = Timing::from_headers(&json!({"expires": "soon"}));
        assert!(t.error.unwrap().contains("expires"));
        let t = Timing::from_headers(&json!({"eta": "9999-12-31T23:59:59"}));
        assert_eq!(t.error, None);
        // Due in about 8,000 years: held, no overflow.
        assert!(t.wait(0.0).unwrap() > Duration::from_secs(1 << 37));
        assert_eq!(t.unacked_score(0.0), t.eta.unwrap());
    }

    #[test]
    fn any_string_is_a_date_or_an_error_never_a_panic() {
        // Mutations of a good date (every byte replaced by a few
        // troublemakers, truncations), and xorshift noise over the same
        // alphabet: a parser fed by the network must not panic.
        let good = "2026-12-07T17:30:00.123456+01:00";
        let odd = ['0', '9', '-', ':', '+', 'T', '.', 'Z', ' ', 'é', '\u{ff10}'];
        for i in 0..good.len() {
            for c in odd {
                let mut s: Vec<char> = good.chars().collect();
                s[i] = c;
                let _ = parse_iso8601(&s.iter().collect::<String>());
            }
            let _ = parse_iso8601(&good[..i]);
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (x % 42) as usize;
            let s: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    odd[(x % odd.len() as u64) as usize]
                })
                .collect();
            let _ = parse_iso8601(&s);
        }
    }

    #[test]
    fn held_jobs_come_out_when_due_soonest_first() {
        let held = Held::default();
        held.hold("later", Duration::from_secs(3600));
        held.hold("now", Duration::ZERO);
        held.hold("never", Duration::MAX);
        assert_eq!(held.take_due(), Some("now"));
        assert_eq!(held.take_due(), None);
        let mut rest = held.drain();
        rest.sort_unstable();
        assert_eq!(rest, ["later", "never"]);
    }
}
