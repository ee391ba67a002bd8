//! The demos' logic in process, with a 20 ms time unit and captured output.

use std::time::Duration;

use executor_map::{map_demo, submit_demo, DemoConfig, Display};

fn fast() -> DemoConfig {
    DemoConfig {
        unit: Duration::from_millis(20),
        ..DemoConfig::default()
    }
}

/// The message after the `[HH:MM:SS] ` stamp.
fn message(line: &str) -> &str {
    let (stamp, rest) = line.split_once("] ").expect("a stamped line");
    assert!(
        stamp.starts_with('[') && stamp.len() == 9,
        "bad stamp in {line:?}"
    );
    rest
}

fn position(lines: &[String], wanted: &str) -> usize {
    lines
        .iter()
        .position(|l| message(l) == wanted)
        .unwrap_or_else(|| panic!("no line {wanted:?} in {lines:#?}"))
}

/// Checks the loiter lines: indentation, and never more than `workers` running.
fn check_loiter_lines(lines: &[String], tasks: u64, workers: usize) {
    let mut running = 0usize;
    let mut starts = 0;
    for line in lines {
        let text = message(line);
        let tabs = text.len() - text.trim_start_matches('\t').len();
        if let Some(rest) = text.trim_start_matches('\t').strip_prefix("loiter(") {
            let n: usize = rest[..rest.find(')').unwrap()].parse().unwrap();
            assert_eq!(
                tabs, n,
                "loiter({n}) must be indented by {n} tabs: {text:?}"
            );
            if text.ends_with("...") {
                running += 1;
                starts += 1;
                assert!(
                    running <= workers,
                    "more than {workers} tasks running at {text:?}"
                );
            } else {
                assert!(text.ends_with("done."), "{text:?}");
                running -= 1;
            }
        }
    }
    assert_eq!((starts, running), (tasks, 0));
}

#[test]
fn map_yields_in_input_order() {
    let display = Display::capture();
    let results = map_demo(&fast(), &display).unwrap();
    assert_eq!(results, [0, 10, 20, 30, 40]);
    let lines = display.lines();
    assert_eq!(message(&lines[0]), "Script starting.");
    check_loiter_lines(&lines, 5, 3);
    assert!(
        lines
            .iter()
            .any(|l| message(l).starts_with("results: Map {")),
        "{lines:#?}"
    );
    let waiting = position(&lines, "Waiting for individual results:");
    let mut previous = waiting;
    for i in 0..5u64 {
        let result = position(&lines, &format!("result {i}: {}", i * 10));
        let done = position(
            &lines,
            &format!("{}loiter({i}): done.", "\t".repeat(i as usize)),
        );
        assert!(result > previous, "result {i} out of order: {lines:#?}");
        assert!(
            result > done,
            "result {i} shown before loiter({i}) was done"
        );
        previous = result;
    }
    // Only three workers: loiter(3) can start only after some task finished.
    let first_done = lines
        .iter()
        .position(|l| message(l).ends_with("done."))
        .unwrap();
    assert!(position(&lines, "\t\t\tloiter(3): doing nothing for 0.06s...") > first_done);
    assert_eq!(lines.len(), 1 + 10 + 1 + 1 + 5);
}

#[test]
fn submit_shows_done_flags() {
    let display = Display::capture();
    let results = submit_demo(&fast(), &display).unwrap();
    assert_eq!(results, [0, 10, 20, 30, 40]);
    let lines = display.lines();
    check_loiter_lines(&lines, 5, 3);
    let flags: Vec<&str> = lines
        .iter()
        .map(|l| message(l))
        .filter(|m| m.starts_with("done? "))
        .collect();
    assert_eq!(flags.len(), 2, "{lines:#?}");
    // Before waiting: five flags (which are true depends on timing, so only the shape).
    let before = flags[0].trim_start_matches("done? [").trim_end_matches(']');
    assert!(
        before.split(", ").all(|f| f == "true" || f == "false") && before.split(", ").count() == 5
    );
    assert_eq!(flags[1], "done? [true, true, true, true, true]");
    let futures = lines
        .iter()
        .map(|l| message(l))
        .find(|m| m.starts_with("futures: ["))
        .unwrap();
    assert_eq!(futures.matches("<Future state=").count(), 5, "{futures}");
    for i in 0..5u64 {
        position(&lines, &format!("result[{i}]: {}", i * 10));
    }
}

#[test]
fn other_shapes_of_pool() {
    for (workers, tasks) in [(1, 3), (5, 5), (2, 7)] {
        let config = DemoConfig {
            workers,
            tasks,
            unit: Duration::from_millis(2),
        };
        let display = Display::capture();
        let expected: Vec<u64> = (0..tasks).map(|n| n * 10).collect();
        assert_eq!(map_demo(&config, &display).unwrap(), expected);
        check_loiter_lines(&display.lines(), tasks, workers);
    }
}
