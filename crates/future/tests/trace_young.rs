//! A young process (its first recorder made just now) measures the clock's
//! rate only when it turns ticks into time: `clear()`, which turns nothing
//! into time, never waits for the rate's 10 ms baseline (`trace/clock.rs`).
//!
//! Its own test binary, one test only: the process's first recorder must be
//! the one this test makes, so the process is young when it clears it.

use future::trace::Recorder;

/// This thread's voluntary context switches: each time it blocked (a sleep,
/// a lock it waited for, a read from a pipe).
fn voluntary_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status")
        .expect("this test reads /proc/thread-self/status: run it on Linux with /proc mounted");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("/proc/thread-self/status has no voluntary_ctxt_switches line")
}

#[test]
fn clearing_a_young_recorder_does_not_sleep() {
    let recorder = Recorder::new();
    let task = recorder.submitted_number();
    recorder.started_here(task).ended(true);
    let before = voluntary_switches();
    recorder.clear();
    let blocked = voluntary_switches() - before;
    assert_eq!(
        blocked, 0,
        "clear() blocked {blocked} time(s): it waited to measure a clock rate it does not use"
    );
    assert!(recorder.events().is_empty());
}
