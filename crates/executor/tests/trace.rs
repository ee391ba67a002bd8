//! Recording the schedule (`future::trace`), checked on every executor
//! with the same generic code: each task's submission, its start on the
//! worker that really ran it (a thread's name, a worker process's pid; a
//! Celery client sees neither and draws the task in flight), and its end,
//! finished or failed; and the Chrome trace-event file of the whole run
//! valid for Perfetto (`future`'s `trace_format` checker).

#[path = "../../future/tests/trace_format/mod.rs"]
mod trace_format;

mod support;

use std::collections::HashMap;
use std::time::Duration;

use celery::Registry;
use executor::{Executor, InlineExecutor, ProcessPoolExecutor, ThreadPoolExecutor};
use future::trace::{Recorder, Transition};
use future::{wait, Future, FutureError, ReturnWhen};

/// Hang guard for every wait.
const LONG: Duration = Duration::from_secs(120);

/// Tasks per executor; task 3 panics.
const N: u64 = 8;

use support::{CeleryUnderTest, Kind};

/// Where the task ran: its process id and its thread's name.
fn whereabouts(x: u64) -> (u32, String) {
    assert_ne!(x, 3, "three is not welcome");
    let name = std::thread::current().name().unwrap_or("").to_string();
    (std::process::id(), name)
}

/// Submits the `N` tasks, waits for them, and checks the recording:
/// `lane_of` says on which lane a task that ran at `(pid, thread)` must
/// have started (`None`: its start cannot be seen, as on Celery's client).
fn check(name: &str, e: &impl Executor, lane_of: impl Fn(&(u32, String)) -> Option<String>) {
    // Generic code finds the recorder on the executor itself.
    let recorder = e
        .recorder()
        .unwrap_or_else(|| panic!("{name}: built with a recorder"));
    let futures: Vec<Future<(u32, String)>> =
        (0..N).map(|x| e.submit(whereabouts, x).unwrap()).collect();
    let done = wait(&futures, Some(LONG), ReturnWhen::AllCompleted);
    assert!(done.not_done.is_empty(), "{name}: hang guard fired");
    // The end is recorded before the future completes on every executor,
    // so every event is in by now.
    let events = recorder.events();
    let mut by_task: HashMap<u64, Vec<_>> = HashMap::new();
    for e in &events {
        by_task.entry(e.task).or_default().push(e);
    }
    assert_eq!(by_task.len(), N as usize, "{name}: {events:#?}");
    // Tasks are numbered in submission order, and submitted from here.
    for (x, f) in futures.iter().enumerate() {
        let of = &by_task[&(x as u64)];
        let kinds: Vec<_> = of.iter().map(|e| e.transition).collect();
        assert_eq!(
            of[0].transition,
            Transition::Submitted,
            "{name} task {x}: {kinds:?}"
        );
        let end = of.last().unwrap();
        match f.result() {
            Ok(at) => {
                assert_eq!(end.transition, Transition::Finished, "{name} task {x}");
                match lane_of(&at) {
                    Some(lane) => {
                        assert_eq!(kinds[1], Transition::Started, "{name} task {x}: {kinds:?}");
                        assert_eq!(
                            &*of[1].lane,
                            lane.as_str(),
                            "{name} task {x}: started elsewhere"
                        );
                        assert_eq!(
                            &*end.lane,
                            lane.as_str(),
                            "{name} task {x}: ended elsewhere"
                        );
                    }
                    None => assert_eq!(kinds.len(), 2, "{name} task {x}: {kinds:?}"),
                }
            }
            Err(FutureError::Task(_)) => {
                assert_eq!(x, 3, "{name}: only task 3 fails");
                assert_eq!(end.transition, Transition::Failed, "{name} task {x}");
            }
            Err(other) => panic!("{name} task {x}: {other:?}"),
        }
    }
    let summary = trace_format::check(&recorder.chrome_json())
        .unwrap_or_else(|err| panic!("{name}: not a valid trace-event file: {err}"));
    assert_eq!(summary.runs, N as usize, "{name}: one run per task");
    assert_eq!(
        summary.instants, N as usize,
        "{name}: one submission per task"
    );
    assert!(recorder.svg().matches("<title>task ").count() >= N as usize);
}

/// Records `N` tasks on an executor of `kind`, built with a recorder, and
/// checks that each started on the lane of the worker that ran it.
fn records_every_task(kind: Kind) {
    let name = kind.name();
    let recorder = Recorder::new();
    match kind {
        Kind::Inline => {
            let e = InlineExecutor::traced(recorder);
            check(name, &e, |(_, thread)| Some(format!("thread {thread}")));
        }
        Kind::ThreadPool => {
            let e = ThreadPoolExecutor::builder()
                .max_workers(2)
                .thread_name_prefix("traced")
                .trace(recorder)
                .build()
                .unwrap();
            check(name, &e, |(_, thread)| Some(format!("thread {thread}")));
        }
        Kind::ProcessPool => {
            let e = ProcessPoolExecutor::builder()
                .max_workers(2)
                .trace(recorder)
                .build()
                .unwrap();
            check(name, &e, |(pid, _)| {
                assert_ne!(*pid, std::process::id(), "ran in a worker process");
                Some(format!("process {pid}"))
            });
        }
        Kind::Celery => {
            // A Celery client sees neither the worker's pid nor its
            // threads: every task is drawn in flight on the client's lane.
            let celery = CeleryUnderTest::start(registry, Some(recorder.clone()));
            check(name, &*celery, |_| None);
            let summary = trace_format::check(&recorder.chrome_json()).unwrap();
            assert!(
                summary.lanes.values().any(|l| l == "celery celery 1"),
                "{:?}",
                summary.lanes
            );
        }
    }
}

#[test]
fn inline_records_every_task_on_the_callers_thread() {
    records_every_task(Kind::Inline);
}

#[test]
fn the_thread_pool_records_every_task_on_its_worker_thread() {
    records_every_task(Kind::ThreadPool);
}

#[test]
fn the_process_pool_records_every_task_on_its_worker_process() {
    records_every_task(Kind::ProcessPool);
}

#[test]
fn the_celery_executor_records_every_task_in_flight() {
    records_every_task(Kind::Celery);
}

#[test]
fn every_executor_has_its_trace_test() {
    // The four tests above run in parallel; this one says that they cover
    // the whole shared list (a new `Kind` fails to compile in
    // `records_every_task` and then fails here until it gets its test).
    assert_eq!(
        Kind::EVERY.len(),
        4,
        "add a test for the new executor above"
    );
}

#[test]
fn the_map_of_every_pool_is_recorded() {
    // A map's items (or chunks) are tasks too: each is submitted, started
    // and ended.
    let recorder = Recorder::new();
    let threads = ThreadPoolExecutor::builder()
        .max_workers(2)
        .trace(recorder.clone())
        .build()
        .unwrap();
    let processes = ProcessPoolExecutor::builder()
        .max_workers(2)
        .trace(recorder.clone())
        .build()
        .unwrap();
    let n = Executor::map(&threads, square, 0..20).unwrap().count();
    let m = Executor::map(&processes, square, 0..20).unwrap().count();
    assert_eq!((n, m), (20, 20));
    let events = recorder.events();
    let count = |t| events.iter().filter(|e| e.transition == t).count();
    let submitted = count(Transition::Submitted);
    // One per thread-pool item, at least one chunk for the process pool.
    assert!(submitted > 20, "{submitted}");
    assert_eq!(count(Transition::Started), submitted);
    assert_eq!(count(Transition::Finished), submitted);
    trace_format::check(&recorder.chrome_json()).unwrap();
}

#[test]
fn an_executor_without_a_recorder_records_nothing() {
    // The recorder is only reached through the executors given one.
    let recorder = Recorder::new();
    let _traced = ThreadPoolExecutor::builder()
        .trace(recorder.clone())
        .build()
        .unwrap();
    let plain = ThreadPoolExecutor::new(2);
    assert!(Executor::recorder(&plain).is_none());
    assert!(Executor::recorder(&InlineExecutor::new()).is_none());
    let f = Executor::submit(&plain, square, 4).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 16);
    assert!(recorder.events().is_empty());
}

fn square(x: u64) -> u64 {
    x * x
}

/// The tasks a Celery worker on worker processes finds (`support`
/// installs them before the fork server starts): this file's.
fn celery_process_registry() -> Registry {
    registry()
}

fn registry() -> Registry {
    let mut r = celery::tasks::builtin();
    r.register("trace.whereabouts", whereabouts);
    r.register("trace.square", square);
    r
}

/// Kills its own worker process.
fn die(_: u64) -> u64 {
    std::process::abort()
}

#[test]
fn a_task_whose_worker_died_ends_failed_on_that_workers_lane() {
    let recorder = Recorder::new();
    let e = ProcessPoolExecutor::builder()
        .max_workers(1)
        .trace(recorder.clone())
        .build()
        .unwrap();
    let f = Executor::submit(&e, die, 0).unwrap();
    assert!(f.result_timeout(LONG).is_err(), "the worker died");
    // The pool goes on with a fresh worker.
    assert_eq!(
        Executor::submit(&e, square, 3)
            .unwrap()
            .result_timeout(LONG)
            .unwrap(),
        9
    );
    let events = recorder.events();
    let of = |task| -> Vec<_> { events.iter().filter(|e| e.task == task).collect() };
    let dead = of(0);
    assert_eq!(
        dead.last().unwrap().transition,
        Transition::Failed,
        "{events:#?}"
    );
    assert!(dead[1].lane.starts_with("process "), "{events:#?}");
    assert_eq!(dead[1].lane, dead.last().unwrap().lane);
    let next = of(1);
    assert_ne!(next[1].lane, dead[1].lane, "a new worker, a new lane");
    trace_format::check(&recorder.chrome_json()).unwrap();
}

#[test]
fn a_cancelled_task_records_its_submission_only() {
    // One worker, held by the first task, so the second is still queued
    // when it is cancelled.
    let recorder = Recorder::new();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .trace(recorder.clone())
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let held = pool.submit(move || rx.recv_timeout(LONG).is_ok()).unwrap();
    let queued = pool.submit(|| 1).unwrap();
    assert!(queued.cancel());
    tx.send(()).unwrap();
    assert!(held.result_timeout(LONG).unwrap());
    pool.shutdown(true, false);
    let kinds: Vec<_> = recorder
        .events()
        .iter()
        .filter(|e| e.task == 1)
        .map(|e| e.transition)
        .collect();
    assert_eq!(kinds, [Transition::Submitted]);
    let summary = trace_format::check(&recorder.chrome_json()).unwrap();
    assert_eq!((summary.runs, summary.instants), (1, 2));
}
