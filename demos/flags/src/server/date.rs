//! The `Date` header every response carries (RFC 9110 section 6.6.1), in the
//! one format a server must send: IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
//!
//! Formatted by hand from the seconds since the Unix epoch: the calendar
//! arithmetic is Howard Hinnant's `civil_from_days` (public domain, "chrono-
//! Compatible Low-Level Date Algorithms"), for the proleptic Gregorian
//! calendar, which is what HTTP dates use.

use std::time::{SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The current time as an IMF-fixdate.
pub fn http_date_now() -> String {
    // A clock set before 1970 is a broken clock: send the epoch rather than panic.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    http_date(secs)
}

/// `secs` seconds after 1970-01-01 00:00:00 UTC as an IMF-fixdate.
pub fn http_date(secs: u64) -> String {
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[month as usize - 1],
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
    )
}

/// (year, month 1..=12, day 1..=31) of the day `days` after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so a leap day ends its "year".
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_rfc_example_and_edge_days() {
        // RFC 9110's own example.
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // A leap day, the day after it, and the last second of a century leap year.
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(951_868_800), "Wed, 01 Mar 2000 00:00:00 GMT");
        assert_eq!(http_date(978_307_199), "Sun, 31 Dec 2000 23:59:59 GMT");
        assert_eq!(http_date(1_796_256_000), "Thu, 03 Dec 2026 00:00:00 GMT");
    }

    #[test]
    fn now_is_well_formed() {
        let now = http_date_now();
        assert_eq!(now.len(), 29, "{now}");
        assert!(now.ends_with(" GMT"), "{now}");
    }
}
