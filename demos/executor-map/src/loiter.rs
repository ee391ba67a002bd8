//! The task of the demo: `loiter(n)` sleeps `n` time units and returns `n * 10`,
//! announcing its start and end indented by `n` tabs, so each task has its own
//! column in the output.

use std::time::Duration;

use crate::display::Display;

/// Sleeps `n * unit`, showing when it starts and ends, and returns `n * 10`.
///
/// `thread::sleep` is honest here: sleeping *is* this demo's workload (it stands
/// for a task that waits on I/O), and it is what makes the out-of-order
/// completion visible. No primitive of ours sleeps to wait for anything.
pub fn loiter(n: u64, unit: Duration, display: &Display) -> u64 {
    let tabs = "\t".repeat(n as usize);
    let nap = unit * n as u32;
    display.show(&format!(
        "{tabs}loiter({n}): doing nothing for {}...",
        seconds(nap)
    ));
    std::thread::sleep(nap);
    display.show(&format!("{tabs}loiter({n}): done."));
    n * 10
}

/// `1s`, `0s`, `0.25s`: whole seconds as the book prints them, fractions when
/// the unit is shortened.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        let text = format!("{:.3}", d.as_secs_f64());
        format!("{}s", text.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_the_book() {
        assert_eq!(seconds(Duration::from_secs(1)), "1s");
        assert_eq!(seconds(Duration::ZERO), "0s");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25s");
        assert_eq!(seconds(Duration::from_millis(20)), "0.02s");
    }

    #[test]
    fn loiter_returns_ten_times_n_and_indents_by_n_tabs() {
        let display = Display::capture();
        assert_eq!(loiter(2, Duration::from_millis(1), &display), 20);
        let lines = display.lines();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].ends_with("] \t\tloiter(2): doing nothing for 0.002s..."),
            "{lines:?}"
        );
        assert!(lines[1].ends_with("] \t\tloiter(2): done."), "{lines:?}");
    }
}
