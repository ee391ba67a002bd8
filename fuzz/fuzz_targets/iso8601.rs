//! The dates of a Celery message's `eta` and `expires` headers
//! (`crates/celery/src/schedule.rs`: `parse_iso8601`, what Python's
//! `datetime.isoformat()` writes).
//!
//! Promises checked beyond "no panic":
//! * a date it accepts is within Python's years 1 to 9999, and written back
//!   by `meta::iso_utc` reads to the same instant, to the microsecond;
//! * the f64 form (`parse_iso8601`) is that instant to within a f64's step.
#![no_main]

use celery::meta::iso_utc;
use celery::schedule::{parse_iso8601, parse_iso8601_exact};
use libfuzzer_sys::fuzz_target;

/// 0001-01-01T00:00:00 and 9999-12-31T23:59:59 UTC, in Unix seconds.
const FIRST: i64 = -62_135_596_800;
const LAST: i64 = 253_402_300_799;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let exact = parse_iso8601_exact(text);
    let float = parse_iso8601(text);
    assert_eq!(exact.is_ok(), float.is_ok());
    let Ok((secs, micros)) = exact else {
        return;
    };
    assert!((FIRST..=LAST).contains(&secs), "{text}: {secs}");
    assert!(micros < 1_000_000, "{text}: {micros} µs");
    let back = iso_utc(secs, micros);
    assert_eq!(
        parse_iso8601_exact(&back),
        Ok((secs, micros)),
        "{text} -> {back}"
    );
    let instant = secs as f64 + f64::from(micros) / 1e6;
    assert_eq!(float, Ok(instant));
});
