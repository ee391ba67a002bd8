//! `future::trace`: the recorder, the Chrome trace-event writer (checked
//! against the format by `trace_format`) and the SVG writer.

mod trace_format;

use std::sync::{Arc, Barrier};
use std::thread;

use future::trace::{Recorder, Transition};

/// `n` tasks submitted here, each run on one of two named threads.
fn two_lanes(n: usize) -> Recorder {
    let recorder = Recorder::new();
    let traces: Vec<_> = (0..n).map(|_| recorder.submitted()).collect();
    let (even, odd): (Vec<_>, Vec<_>) = traces.into_iter().partition(|t| t.task() % 2 == 0);
    let handles: Vec<_> = [("lane \"a\"\n", even), ("lane <b&c>", odd)]
        .into_iter()
        .map(|(name, traces)| {
            thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    for mut t in traces {
                        t.started_here();
                        let ok = t.task() != 3;
                        t.ended(ok);
                    }
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    recorder
}

#[test]
fn every_transition_is_recorded_on_its_thread() {
    let recorder = two_lanes(6);
    let events = recorder.events();
    assert_eq!(events.len(), 18);
    for task in 0..6u64 {
        let of: Vec<_> = events.iter().filter(|e| e.task == task).collect();
        let kinds: Vec<_> = of.iter().map(|e| e.transition).collect();
        let end = if task == 3 {
            Transition::Failed
        } else {
            Transition::Finished
        };
        assert_eq!(
            kinds,
            [Transition::Submitted, Transition::Started, end],
            "task {task}"
        );
        let lane = if task % 2 == 0 {
            "thread lane \"a\"\n"
        } else {
            "thread lane <b&c>"
        };
        assert_eq!(&*of[1].lane, lane);
        assert_eq!(&*of[2].lane, lane);
        assert!(of[0].at <= of[1].at && of[1].at <= of[2].at);
    }
}

#[test]
fn the_chrome_json_is_valid_trace_event_format() {
    let recorder = two_lanes(6);
    let summary = trace_format::check(&recorder.chrome_json()).unwrap();
    assert_eq!(summary.runs, 6);
    assert_eq!(summary.instants, 6, "one per submission");
    let mut names: Vec<_> = summary.lanes.values().cloned().collect();
    names.sort();
    let submitter = format!("thread {}", thread::current().name().unwrap());
    let mut want = vec![
        "thread lane \"a\"\n".to_string(),
        "thread lane <b&c>".to_string(),
        submitter,
    ];
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn an_empty_recorder_writes_valid_files() {
    let recorder = Recorder::new();
    let summary = trace_format::check(&recorder.chrome_json()).unwrap();
    assert_eq!((summary.runs, summary.instants), (0, 0));
    assert!(recorder.svg().starts_with("<svg "));
}

#[test]
fn the_checker_refuses_what_perfetto_would() {
    let lane = r#"{"name":"thread_name","ph":"M","pid":1,"tid":1,"args":{"name":"w"}}"#;
    let bad = [
        ("not json", "not JSON"),
        (r#"{"events":[]}"#, "no traceEvents"),
        (r#"[{"name":"t","pid":1,"tid":1,"ts":0}]"#, "no string ph"),
        (
            r#"[{"name":"t","ph":"Q","pid":1,"tid":1,"ts":0}]"#,
            "unknown phase",
        ),
        (
            &format!(r#"[{lane},{{"name":"t","ph":"X","pid":1,"tid":1,"ts":0}}]"#),
            "dur",
        ),
        (
            &format!(r#"[{lane},{{"name":"t","ph":"X","pid":1,"tid":"1","ts":0,"dur":1}}]"#),
            "integer tid",
        ),
        (
            &format!(r#"[{lane},{{"name":"t","ph":"i","s":"x","pid":1,"tid":1,"ts":0}}]"#),
            "scope",
        ),
        (
            &format!(r#"[{lane},{{"name":"t","ph":"B","pid":1,"tid":1,"ts":0}}]"#),
            "has no E",
        ),
        (
            r#"[{"name":"t","ph":"X","pid":1,"tid":2,"ts":0,"dur":1}]"#,
            "no thread_name",
        ),
        (
            r#"[{"name":"thread_name","ph":"M","pid":1,"tid":1,"args":{}}]"#,
            "args.name",
        ),
    ];
    for (text, why) in bad {
        let err = trace_format::check(text).expect_err(text);
        assert!(err.contains(why), "{text}: {err}");
    }
}

#[test]
fn runs_on_one_lane_never_overlap_in_the_files() {
    // A process pool records a task as started when it is handed to a
    // worker that is still running the one before: the files draw it from
    // that one's end.
    let recorder = Recorder::new();
    let mut first = recorder.submitted();
    let mut second = recorder.submitted();
    first.started("process 7");
    second.started("process 7");
    first.ended(true);
    second.ended(true);
    let json: serde_json::Value = serde_json::from_str(&recorder.chrome_json()).unwrap();
    let runs: Vec<_> = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| ns(&e["ts"])..ns(&e["ts"]) + ns(&e["dur"]))
        .collect();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].end <= runs[1].start, "{runs:?}");
}

/// Microseconds with three decimals, as nanoseconds.
fn ns(v: &serde_json::Value) -> u64 {
    (v.as_f64().unwrap() * 1000.0).round() as u64
}

#[test]
fn the_svg_draws_every_run_and_escapes_lane_names() {
    let recorder = two_lanes(6);
    let svg = recorder.svg();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    for task in 0..6 {
        let outcome = if task == 3 { "failed" } else { "finished" };
        assert!(
            svg.contains(&format!("<title>task {task} {outcome}:")),
            "task {task}"
        );
    }
    assert!(svg.contains("thread lane &lt;b&amp;c&gt;"));
    assert!(!svg.contains("<b&c>"));
    // Every element that opens is closed: as many <rect as </rect> or />.
    assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
    assert_eq!(
        svg.matches("<title>").count(),
        svg.matches("</title>").count()
    );
}

#[test]
fn many_threads_record_into_one_recorder() {
    let recorder = Recorder::new();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (recorder, barrier) = (recorder.clone(), barrier.clone());
            thread::Builder::new()
                .name(format!("w{i}"))
                .spawn(move || {
                    barrier.wait();
                    for _ in 0..500 {
                        let mut t = recorder.submitted();
                        t.started_here();
                        t.ended(true);
                    }
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let summary = trace_format::check(&recorder.chrome_json()).unwrap();
    assert_eq!(summary.runs, 4000);
    let mut tasks: Vec<_> = recorder.events().iter().map(|e| e.task).collect();
    tasks.sort();
    tasks.dedup();
    assert_eq!(tasks.len(), 4000, "task numbers are unique");
}

#[test]
fn runs_whose_start_was_not_seen_are_drawn_in_flight_on_sub_lanes() {
    // A Celery client sees a task's submission and its result only.
    let recorder = Recorder::new();
    let a = recorder.submitted();
    let b = recorder.submitted();
    a.ended_unseen(true, "celery");
    let c = recorder.submitted();
    b.ended_unseen(false, "celery");
    c.ended_unseen(true, "celery");
    let summary = trace_format::check(&recorder.chrome_json()).unwrap();
    assert_eq!(summary.runs, 3);
    let mut names: Vec<_> = summary
        .lanes
        .values()
        .filter(|n| n.starts_with("celery"))
        .collect();
    names.sort();
    // a and b overlap; c is submitted after a ended, so it takes a's lane.
    assert_eq!(names, ["celery 1", "celery 2"]);
    let svg = recorder.svg();
    assert!(svg.contains("<title>task 1 failed:"), "{svg}");
}

#[test]
fn a_run_still_going_when_written_is_drawn_unfinished() {
    let recorder = Recorder::new();
    let mut running = recorder.submitted();
    running.started_here();
    let json: serde_json::Value = serde_json::from_str(&recorder.chrome_json()).unwrap();
    let run = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ph"] == "X")
        .cloned();
    assert_eq!(run.unwrap()["args"]["outcome"], "unfinished");
    assert!(recorder.svg().contains("<title>task 0 unfinished:"));
    running.ended(true);
    trace_format::check(&recorder.chrome_json()).unwrap();
}

#[test]
fn the_events_of_a_thread_that_exited_are_kept() {
    // Each thread records into a buffer of its own; when the thread exits,
    // the recorder keeps that buffer.
    let recorder = Recorder::new();
    let mut traces: Vec<_> = (0..3).map(|_| recorder.submitted()).collect();
    let worker = thread::Builder::new().name("gone".into());
    let handle = worker
        .spawn(move || {
            for t in &mut traces {
                t.started_here();
            }
            for t in traces {
                t.ended(true);
            }
        })
        .unwrap();
    handle.join().unwrap();
    let events = recorder.events();
    let on_worker: Vec<_> = events
        .iter()
        .filter(|e| &*e.lane == "thread gone")
        .map(|e| (e.task, e.transition))
        .collect();
    // The worker's own order, as it recorded it.
    assert_eq!(
        on_worker,
        [
            (0, Transition::Started),
            (1, Transition::Started),
            (2, Transition::Started),
            (0, Transition::Finished),
            (1, Transition::Finished),
            (2, Transition::Finished),
        ]
    );
    assert_eq!(events.len(), 9);
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at), "time order");
}

#[test]
fn two_recorders_on_one_thread_keep_their_own_events() {
    let (a, b) = (Recorder::new(), Recorder::new());
    let mut x = a.submitted();
    let y = b.submitted();
    x.started_here();
    drop(b.clone());
    x.ended(false);
    y.ended(true);
    let kinds = |r: &Recorder| -> Vec<_> { r.events().iter().map(|e| e.transition).collect() };
    assert_eq!(
        kinds(&a),
        [
            Transition::Submitted,
            Transition::Started,
            Transition::Failed
        ]
    );
    assert_eq!(kinds(&b), [Transition::Submitted, Transition::Finished]);
    // A recorder made after another was dropped starts empty.
    drop(a);
    let c = Recorder::new();
    c.submitted().ended(true);
    assert_eq!(c.events().len(), 2);
}

#[test]
fn a_run_by_number_records_its_start_and_end_on_its_thread() {
    // The form a thread pool uses: the number at submit, the run on the
    // worker; a run dropped without `ended` (it unwound) failed.
    let recorder = Recorder::new();
    let (a, b) = (recorder.submitted_number(), recorder.submitted_number());
    let r = recorder.clone();
    thread::Builder::new()
        .name("runner".into())
        .spawn(move || {
            r.started_here(a).ended(true);
            drop(r.started_here(b));
        })
        .unwrap()
        .join()
        .unwrap();
    let events: Vec<_> = recorder
        .events()
        .iter()
        .map(|e| (e.task, e.transition, e.lane.to_string()))
        .collect();
    let here = format!("thread {}", thread::current().name().unwrap());
    let runner = "thread runner".to_string();
    assert_eq!(
        events,
        [
            (0, Transition::Submitted, here.clone()),
            (1, Transition::Submitted, here),
            (0, Transition::Started, runner.clone()),
            (0, Transition::Finished, runner.clone()),
            (1, Transition::Started, runner.clone()),
            (1, Transition::Failed, runner),
        ]
    );
}

#[test]
fn take_events_hands_over_the_events_and_clear_drops_them() {
    let kinds = |events: Vec<future::trace::Event>| -> Vec<_> {
        events.iter().map(|e| (e.task, e.transition)).collect()
    };
    let recorder = Recorder::new();
    let mut a = recorder.submitted();
    a.started_here();
    assert_eq!(
        kinds(recorder.take_events()),
        [(0, Transition::Submitted), (0, Transition::Started)]
    );
    a.ended(true);
    assert_eq!(kinds(recorder.take_events()), [(0, Transition::Finished)]);
    assert!(recorder.events().is_empty(), "taken events are gone");
    // Across many blocks, on two threads.
    let r = recorder.clone();
    let worker = thread::spawn(move || {
        for _ in 0..3000 {
            let task = r.submitted_number();
            r.started_here(task).ended(true);
        }
    });
    worker.join().unwrap();
    assert_eq!(recorder.events().len(), 9000);
    recorder.clear();
    assert!(recorder.events().is_empty(), "cleared");
    // Recording goes on after a clear, on the same buffers.
    let task = recorder.submitted_number();
    recorder.started_here(task).ended(false);
    assert_eq!(
        kinds(recorder.events()),
        [
            (3001, Transition::Submitted),
            (3001, Transition::Started),
            (3001, Transition::Failed)
        ]
    );
}
