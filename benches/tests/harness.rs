//! The part of the benches' shared harness (`support/harness.rs`) that decides what runs:
//! the settings read from the report's environment, the groups a busy round runs, and the
//! order of ours and the peers in each round.

#[path = "../support/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{reversed, wanted_in, Settings};

#[test]
fn settings_come_from_the_report_with_defaults_and_criterions_minimum() {
    let given = |name: &str| {
        match name {
            "BENCH_WARM_UP_MS" => Some("150"),
            "BENCH_MEASURE_MS" => Some(" 400 "),
            "BENCH_SAMPLES" => Some("3"),
            "BENCH_RESAMPLES" => Some("not a number"),
            _ => None,
        }
        .map(String::from)
    };
    let s = Settings::from_lookup(given);
    assert_eq!(s.warm_up, Duration::from_millis(150));
    assert_eq!(s.measurement, Duration::from_millis(400));
    assert_eq!(s.samples, 10, "criterion needs at least 10 samples");
    assert_eq!(s.resamples, 10_000, "unreadable: the default");
    let scaled = s.scaled(0.1);
    assert_eq!(scaled.measurement, Duration::from_millis(40));
    assert_eq!(scaled.samples, 10);

    let plain = Settings::from_lookup(|_| None);
    assert_eq!(plain.measurement, Duration::from_secs(3));
    assert_eq!(plain.samples, 20);
}

#[test]
fn a_busy_round_runs_only_its_groups() {
    let list = Some("thread_pool/throughput_200k, thread_pool/round_trip_hot");
    assert!(wanted_in(list, "thread_pool/round_trip_hot"));
    assert!(
        !wanted_in(list, "thread_pool/round_trip"),
        "whole ids, not prefixes"
    );
    assert!(!wanted_in(list, "thread_pool/map_1m"));
    assert!(wanted_in(None, "thread_pool/map_1m"));
    assert!(wanted_in(Some(" "), "thread_pool/map_1m"));
}

#[test]
fn every_other_round_runs_the_peers_first() {
    let orders: Vec<bool> = (1..=4).map(reversed).collect();
    assert_eq!(orders, [false, true, false, true]);
}
