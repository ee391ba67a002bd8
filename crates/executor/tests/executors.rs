//! The `Executor` trait's promises, checked on all three executors with the
//! same generic code: submit, errors and panics, `map` with Python 3.14's
//! semantics, shutdown and drop, and futures from several executors mixed
//! in one `wait` / `as_completed`.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use executor::{
    ErrorKind, Executor, InlineExecutor, Interrupt, ProcessPoolExecutor, ThreadPoolExecutor,
};
use future::{as_completed, wait, FutureError, ReturnWhen, State, TaskError};

/// Hang guard for every wait: a bug fails the test instead of hanging it.
const T: Duration = Duration::from_secs(60);

mod support;

/// The tasks of this file a Celery worker runs, by name; worker processes
/// find them too (`support` installs this before the fork server starts).
fn celery_process_registry() -> celery::Registry {
    let mut r = celery::tasks::builtin();
    r.register("executors.square", square)
        .register("executors.mark", mark)
        .register("executors.block_on_fifo", block_on_fifo);
    r
}

fn square(x: u64) -> u64 {
    x * x
}

fn square_but_panic_on_3(x: u64) -> u64 {
    assert_ne!(x, 3, "three is not welcome");
    x * x
}

fn parse(s: String) -> Result<u64, std::num::ParseIntError> {
    s.parse()
}

/// Creates `dir/name`: a trace, visible to the test, that the task ran
/// (whichever process it ran in).
fn mark((dir, name): (PathBuf, u64)) -> u64 {
    fs::write(dir.join(name.to_string()), b"ran").unwrap();
    name
}

/// Blocks until someone opens the FIFO at `path` for writing and closes it.
fn block_on_fifo(path: PathBuf) -> u64 {
    fs::read(path).unwrap().len() as u64
}

/// Runs `check` on a fresh executor of each kind of the shared list
/// ([`support::Kind::EVERY`]), the pools with `workers` workers (the
/// process pool holding one task per worker at a time).
fn on_each(workers: usize, check: impl Fn(&str, Box<dyn FnOnce() -> Kind>)) {
    for kind in support::Kind::EVERY {
        let name = kind.name();
        match kind {
            support::Kind::Inline => check(name, Box::new(|| Kind::Inline(InlineExecutor::new()))),
            support::Kind::ThreadPool => check(
                name,
                Box::new(move || Kind::Threads(ThreadPoolExecutor::new(workers))),
            ),
            support::Kind::ProcessPool => check(
                name,
                Box::new(move || {
                    Kind::Processes(
                        ProcessPoolExecutor::builder()
                            .max_workers(workers)
                            .tasks_per_worker(1)
                            .build()
                            .unwrap(),
                    )
                }),
            ),
            // Said, not skipped in silence.
            support::Kind::Celery => eprintln!(
                "celery: not here: these checks watch files and FIFOs its tasks touch on \
                 this machine; crates/celery/tests/executor_trait.rs runs the trait's \
                 generic checks on it"
            ),
        }
    }
}

/// One of the three executors, so one test body can take any (the test
/// bodies themselves are generic over `Executor`).
enum Kind {
    Inline(InlineExecutor),
    Threads(ThreadPoolExecutor),
    Processes(ProcessPoolExecutor),
}

macro_rules! with_executor {
    ($kind:expr, |$e:ident| $body:expr) => {
        match $kind {
            Kind::Inline($e) => $body,
            Kind::Threads($e) => $body,
            Kind::Processes($e) => $body,
        }
    };
}

/// A fresh, empty directory for one test's traces.
fn scratch_dir(test: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "executor-test-{}-{test}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn traces(dir: &std::path::Path) -> BTreeSet<u64> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "fifo")
        .map(|name| name.parse().unwrap())
        .collect()
}

fn make_fifo(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("fifo");
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo touches no memory of ours.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    path
}

/// Opens the FIFO for writing, which returns once the task blocked on it
/// has opened it for reading, i.e. once that task is running. Dropping the
/// returned file releases the task (it reads end-of-file).
fn hold_running(fifo: &std::path::Path) -> fs::File {
    let (tx, rx) = mpsc::channel();
    let path = fifo.to_path_buf();
    // A thread, so that a task that never starts fails the test after `T`
    // instead of hanging it.
    std::thread::spawn(move || {
        let _ = tx.send(fs::OpenOptions::new().write(true).open(path).unwrap());
    });
    rx.recv_timeout(T).expect("the blocking task did not start")
}

fn submit_gives_values_errors_and_panics(e: &impl Executor) {
    let futures: Vec<_> = (0..20).map(|x| e.submit(square, x).unwrap()).collect();
    let values: Vec<u64> = futures
        .iter()
        .map(|f| f.result_timeout(T).unwrap())
        .collect();
    assert_eq!(values, (0..20).map(|x| x * x).collect::<Vec<_>>());

    let bad = e.submit_fallible(parse, "x".to_string()).unwrap();
    match bad.result_timeout(T) {
        Err(FutureError::Task(TaskError::Failed(err))) => {
            assert_eq!(err.type_name(), "ParseIntError");
            assert_eq!(err.to_string(), "invalid digit found in string");
        }
        other => panic!("expected the task's error, got {other:?}"),
    }
    let good = e.submit_fallible(parse, "42".to_string()).unwrap();
    assert_eq!(good.result_timeout(T).unwrap(), 42);

    let panicked = e.submit(square_but_panic_on_3, 3).unwrap();
    match panicked.result_timeout(T) {
        Err(FutureError::Task(TaskError::Panicked(message))) => {
            assert!(message.contains("three is not welcome"), "{message}")
        }
        other => panic!("expected the panic, got {other:?}"),
    }
    // The executor goes on after the panic.
    assert_eq!(e.submit(square, 9).unwrap().result_timeout(T).unwrap(), 81);
}

/// An executor's futures carry a report exactly when it says they do,
/// finished with a value or failed, and a report names a worker other than
/// this process.
fn reports_are_there_exactly_when_the_executor_says(name: &str, e: &impl Executor) {
    let ok = e.submit(square, 4).unwrap();
    let failed = e.submit(square_but_panic_on_3, 3).unwrap();
    assert_eq!(ok.result_timeout(T).unwrap(), 16);
    assert!(failed.result_timeout(T).is_err());
    for f in [&ok, &failed] {
        let report = f.report();
        assert_eq!(
            report.is_some(),
            e.reports_tasks(),
            "{name}: report {report:?}, reports_tasks() {}",
            e.reports_tasks()
        );
        if let Some(r) = report {
            assert!(
                r.worker_pid.is_some_and(|p| p != std::process::id()),
                "{name}: {r:?}"
            );
            assert!(r.run_time.is_some() && r.queued.is_some(), "{name}: {r:?}");
        }
    }
}

#[test]
fn reports_are_there_exactly_when_the_executor_says_on_every_executor() {
    on_each(2, |name, make| {
        eprintln!("{name}");
        with_executor!(
            make(),
            |e| reports_are_there_exactly_when_the_executor_says(name, &e)
        );
    });
}

#[test]
fn submit_gives_values_errors_and_panics_on_every_executor() {
    on_each(2, |name, make| {
        eprintln!("{name}");
        with_executor!(make(), |e| submit_gives_values_errors_and_panics(&e));
    });
}

fn map_yields_in_input_order_one_result_per_item(e: &impl Executor) {
    let results: Vec<Result<u64, FutureError>> =
        e.map(square_but_panic_on_3, 0..8).unwrap().collect();
    assert_eq!(results.len(), 8);
    for (x, result) in results.into_iter().enumerate() {
        match result {
            Ok(v) => assert_eq!(v, (x * x) as u64),
            Err(FutureError::Task(TaskError::Panicked(m))) if x == 3 => {
                assert!(m.contains("three is not welcome"), "{m}")
            }
            other => panic!("item {x}: {other:?}"),
        }
    }
    assert_eq!(e.map(square, Vec::new()).unwrap().count(), 0);
}

#[test]
fn map_yields_in_input_order_one_result_per_item_on_every_executor() {
    on_each(3, |name, make| {
        eprintln!("{name}");
        with_executor!(make(), |e| map_yields_in_input_order_one_result_per_item(
            &e
        ));
    });
}

/// Python 3.14: every item is submitted at the call, so a shutdown right
/// after it loses none.
fn map_submits_every_item_at_the_call(e: &impl Executor) {
    let results = e.map(square, 0..300).unwrap();
    e.shutdown(false, false);
    let values: Vec<u64> = results.map(|r| r.unwrap()).collect();
    assert_eq!(values, (0..300).map(|x| x * x).collect::<Vec<_>>());
    let refused = e.map(square, 0..3).err().expect("map after shutdown");
    assert_eq!(refused.kind(), ErrorKind::Shutdown);
}

#[test]
fn map_submits_every_item_at_the_call_on_every_executor() {
    on_each(2, |name, make| {
        eprintln!("{name}");
        with_executor!(make(), |e| map_submits_every_item_at_the_call(&e));
    });
}

/// Item `n` of a map: leaves its trace; the item with `block` set then
/// waits for the FIFO in `dir`.
fn mark_then_block((dir, n, block): (PathBuf, u64, bool)) -> u64 {
    mark((dir.clone(), n));
    if block {
        block_on_fifo(dir.join("fifo"));
    }
    n
}

/// Dropping a result iterator that was never advanced cancels nothing, as
/// closing an unstarted CPython generator skips its `finally`: every item
/// runs.
fn dropped_fresh_map_iterator_cancels_nothing(e: &impl Executor, dir: &std::path::Path) {
    let items: Vec<(PathBuf, u64)> = (0..10).map(|n| (dir.to_path_buf(), n)).collect();
    drop(e.map(mark, items).unwrap());
    e.shutdown(true, false);
    assert_eq!(traces(dir), (0..10).collect());
}

#[test]
fn dropped_fresh_map_iterator_cancels_nothing_on_every_executor() {
    on_each(1, |name, make| {
        eprintln!("{name}");
        let dir = scratch_dir("drop-fresh");
        with_executor!(make(), |e| dropped_fresh_map_iterator_cancels_nothing(
            &e, &dir
        ));
        fs::remove_dir_all(dir).unwrap();
    });
}

/// Dropping a result iterator that was advanced cancels the items not yet
/// yielded that have not started: with the only worker busy on item 3, items
/// 4.. never run. On the process pool `map` runs in chunks (`map_auto`: 3
/// items each for 10 items on 1 worker): item 3 opens the second chunk, so
/// the first one (0-2) is done when item 0 is yielded, the rest of item 3's
/// chunk (4, 5) runs after it, and the chunks after it are cancelled.
fn dropped_advanced_map_iterator_cancels_items_not_started(
    e: &impl Executor,
    dir: &std::path::Path,
    ran: &[u64],
) {
    let fifo = make_fifo(dir);
    let items: Vec<(PathBuf, u64, bool)> =
        (0..10).map(|n| (dir.to_path_buf(), n, n == 3)).collect();
    let mut results = e.map(mark_then_block, items).unwrap();
    assert_eq!(results.next().unwrap().unwrap(), 0);
    let running = hold_running(&fifo);
    drop(results);
    drop(running);
    e.shutdown(true, false);
    assert_eq!(
        traces(dir),
        ran.iter().copied().collect(),
        "items ran after the iterator was dropped"
    );
}

#[test]
fn dropped_advanced_map_iterator_cancels_items_not_started_on_the_pools() {
    let dir = scratch_dir("drop-threads");
    dropped_advanced_map_iterator_cancels_items_not_started(
        &ThreadPoolExecutor::new(1),
        &dir,
        &[0, 1, 2, 3],
    );
    fs::remove_dir_all(dir).unwrap();

    // Item 3 must open a chunk (see above), or the test would wait forever.
    assert_eq!(process_pool::auto_chunksize(10, 1), 3);
    let dir = scratch_dir("drop-procs");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap();
    // Items 4 and 5 share item 3's chunk: they run after it.
    dropped_advanced_map_iterator_cancels_items_not_started(&pool, &dir, &[0, 1, 2, 3, 4, 5]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dropped_advanced_map_iterator_on_the_inline_executor_has_run_everything() {
    let dir = scratch_dir("drop-inline");
    let e = InlineExecutor::new();
    let items: Vec<(PathBuf, u64)> = (0..10).map(|n| (dir.clone(), n)).collect();
    let mut results = e.map(mark, items).unwrap();
    assert_eq!(results.next().unwrap().unwrap(), 0);
    drop(results);
    assert_eq!(traces(&dir), (0..10).collect());
    fs::remove_dir_all(dir).unwrap();
}

/// `shutdown(cancel_futures = true)` during a `map` cancels the map's items
/// that have not started, as Python 3.14 cancels its pending futures: with
/// the only worker busy on item 3, the items after it yield `Cancelled` and
/// never run, and item 3 itself finishes. On the process pool the unit is
/// `map_auto`'s chunk (3 items here, see the drop test above): items 4 and 5
/// share item 3's chunk and run after it.
fn shutdown_cancel_futures_cancels_a_running_maps_unstarted_items(
    e: &impl Executor,
    dir: &std::path::Path,
    ran: &[u64],
) {
    let fifo = make_fifo(dir);
    let items: Vec<(PathBuf, u64, bool)> =
        (0..10).map(|n| (dir.to_path_buf(), n, n == 3)).collect();
    let mut results = e.map(mark_then_block, items).unwrap();
    assert_eq!(results.next().unwrap().unwrap(), 0);
    let running = hold_running(&fifo);
    e.shutdown(false, true);
    drop(running);
    let rest: Vec<Result<u64, FutureError>> = results.collect();
    e.shutdown(true, false);
    assert_eq!(
        traces(dir),
        ran.iter().copied().collect(),
        "items ran after shutdown(cancel_futures)"
    );
    assert_eq!(rest.len(), 9);
    for (n, result) in (1u64..).zip(rest) {
        match result {
            Ok(v) if ran.contains(&n) => assert_eq!(v, n),
            Err(FutureError::Cancelled) if !ran.contains(&n) => {}
            other => panic!("item {n}: {other:?}"),
        }
    }
}

#[test]
fn shutdown_cancel_futures_cancels_a_running_maps_unstarted_items_on_the_pools() {
    let dir = scratch_dir("cancel-map-threads");
    shutdown_cancel_futures_cancels_a_running_maps_unstarted_items(
        &ThreadPoolExecutor::new(1),
        &dir,
        &[0, 1, 2, 3],
    );
    fs::remove_dir_all(dir).unwrap();

    assert_eq!(process_pool::auto_chunksize(10, 1), 3);
    let dir = scratch_dir("cancel-map-procs");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap();
    shutdown_cancel_futures_cancels_a_running_maps_unstarted_items(
        &pool,
        &dir,
        &[0, 1, 2, 3, 4, 5],
    );
    fs::remove_dir_all(dir).unwrap();
}

/// `shutdown(wait, cancel_futures = true)` cancels the queued tasks; the
/// running one finishes; later submits are refused with `Shutdown`.
fn shutdown_cancels_queued_and_refuses_later(e: &impl Executor, dir: &std::path::Path) {
    let fifo = make_fifo(dir);
    let blocker = e.submit(block_on_fifo, fifo.clone()).unwrap();
    let running = hold_running(&fifo);
    let queued: Vec<_> = (0..5)
        .map(|n| e.submit(mark, (dir.to_path_buf(), n)).unwrap())
        .collect();
    e.shutdown(false, true);
    for f in &queued {
        assert!(f.cancelled(), "a queued task was not cancelled: {f:?}");
    }
    drop(running);
    e.shutdown(true, false);
    assert_eq!(
        blocker.state(),
        State::Finished,
        "waited shutdown returned early"
    );
    assert_eq!(blocker.result_timeout(T).unwrap(), 0);
    assert!(traces(dir).is_empty());
    let refused = e.submit(square, 2).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Shutdown);
    assert!(
        refused
            .to_string()
            .ends_with("cannot schedule new futures after shutdown"),
        "{refused}"
    );
    let refused = e.submit_fallible(parse, "1".into()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Shutdown);
}

#[test]
fn shutdown_cancels_queued_tasks_and_refuses_later_ones_on_the_pools() {
    let dir = scratch_dir("shutdown-threads");
    shutdown_cancels_queued_and_refuses_later(&ThreadPoolExecutor::new(1), &dir);
    fs::remove_dir_all(dir).unwrap();
    let dir = scratch_dir("shutdown-procs");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap();
    shutdown_cancels_queued_and_refuses_later(&pool, &dir);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn inline_shutdown_refuses_later_tasks() {
    let e = InlineExecutor::new();
    assert_eq!(
        Executor::submit(&e, square, 4).unwrap().result().unwrap(),
        16
    );
    e.shutdown(true, true);
    e.shutdown(false, false);
    assert!(e.is_shutdown());
    let refused = e.submit(square, 2).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Shutdown);
    assert_eq!(
        refused.to_string(),
        "inline executor: cannot schedule new futures after shutdown"
    );
}

/// Dropping an executor is `shutdown(wait = true)`: every task submitted
/// before the drop has finished when the drop returns.
#[test]
fn drop_waits_for_every_submitted_task_on_every_executor() {
    on_each(2, |name, make| {
        let dir = scratch_dir("drop-waits");
        let futures = with_executor!(make(), |e| {
            (0..12)
                .map(|n| Executor::submit(&e, mark, (dir.clone(), n)).unwrap())
                .collect::<Vec<_>>()
            // `e` is dropped here.
        });
        for f in &futures {
            assert_eq!(f.state(), State::Finished, "{name}: drop returned early");
        }
        assert_eq!(traces(&dir), (0..12).collect(), "{name}");
        fs::remove_dir_all(dir).unwrap();
    });
}

/// One `as_completed` and one `wait` over futures from all three executors
/// at once, and done-callbacks on each.
#[test]
fn futures_from_different_executors_mix_in_wait_as_completed_and_callbacks() {
    let inline = InlineExecutor::new();
    let threads = ThreadPoolExecutor::new(2);
    let processes = ProcessPoolExecutor::new(2).unwrap();
    let dir = scratch_dir("mixed");
    let fifo = make_fifo(&dir);

    // The process pool's task waits for the FIFO: it finishes last, after
    // everything else has been seen.
    let slow = Executor::submit(&processes, block_on_fifo, fifo.clone()).unwrap();
    let running = hold_running(&fifo);
    let mut futures = vec![slow.clone()];
    futures.push(Executor::submit(&inline, square, 2).unwrap());
    futures.push(Executor::submit(&threads, square, 3).unwrap());
    futures.push(Executor::submit(&processes, square, 4).unwrap());

    let (tx, rx) = mpsc::channel();
    for (i, f) in futures.iter().enumerate() {
        let tx = tx.clone();
        f.add_done_callback(move |f| tx.send((i, f.result().unwrap())).unwrap());
    }

    let first = wait(&futures, Some(T), ReturnWhen::FirstCompleted);
    assert!(!first.done.is_empty());
    assert!(
        first.not_done.contains(&slow),
        "the blocked task cannot be done yet"
    );

    let mut seen = Vec::new();
    let mut completions = as_completed(&futures, Some(T));
    for _ in 0..3 {
        seen.push(completions.next().unwrap().unwrap().result().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, [4, 9, 16]);
    drop(running);
    let last = completions.next().unwrap().unwrap();
    assert_eq!(last, slow);
    assert!(completions.next().is_none());

    let all = wait(&futures, Some(T), ReturnWhen::AllCompleted);
    assert_eq!(all.done.len(), 4);
    let mut called: Vec<(usize, u64)> = (0..4).map(|_| rx.recv_timeout(T).unwrap()).collect();
    called.sort_unstable();
    assert_eq!(called, [(0, 0), (1, 4), (2, 9), (3, 16)]);
    fs::remove_dir_all(dir).unwrap();
}

/// `interrupt` at every point of a task's life, the same generic code on
/// every executor: a finished task is left alone, a queued one is
/// cancelled (or, where only the workers know where a task is, as on
/// Celery, its interrupt is requested: it fails "by request") and never
/// runs, and a running one either stops with an error that says "by
/// request" or is refused with `Unsupported` and runs to its end. Never a
/// value lost silently, never a hang.
fn interrupt_at_every_point(e: &impl Executor, dir: &std::path::Path) -> bool {
    let done = e.submit(square, 3).unwrap();
    assert_eq!(done.result_timeout(T).unwrap(), 9);
    assert_eq!(e.interrupt(&done).unwrap(), Interrupt::AlreadyDone);

    let fifo = make_fifo(dir);
    let blocker = e.submit(block_on_fifo, fifo.clone()).unwrap();
    let running = hold_running(&fifo);
    let queued = e.submit(mark, (dir.to_path_buf(), 1)).unwrap();
    let queued_answer = e.interrupt(&queued).unwrap();
    assert!(
        matches!(queued_answer, Interrupt::Cancelled | Interrupt::Requested),
        "a queued task's interrupt answered {queued_answer:?}"
    );

    let stopped = match e.interrupt(&blocker) {
        Ok(Interrupt::Requested) => {
            match blocker.result_timeout(T) {
                Err(FutureError::Task(err)) => {
                    assert!(err.to_string().contains("by request"), "{err}")
                }
                other => panic!("an interrupted task ended with {other:?}"),
            }
            true
        }
        Err(refused) => {
            assert_eq!(refused.kind(), ErrorKind::Unsupported, "{refused}");
            drop(running);
            assert_eq!(blocker.result_timeout(T).unwrap(), 0, "it ran to its end");
            false
        }
        Ok(other) => panic!("a running task's interrupt answered {other:?}"),
    };
    if queued_answer == Interrupt::Cancelled {
        assert!(queued.cancelled());
    } else {
        match queued.result_timeout(T) {
            Err(FutureError::Task(err)) => assert!(err.to_string().contains("by request"), "{err}"),
            other => panic!("a queued task whose interrupt was requested ended with {other:?}"),
        }
    }
    e.shutdown(true, false);
    assert!(traces(dir).is_empty(), "the cancelled task ran");
    stopped
}

#[test]
fn interrupt_at_every_point_of_a_tasks_life_on_the_pools() {
    let dir = scratch_dir("interrupt-threads");
    let stopped = interrupt_at_every_point(&ThreadPoolExecutor::new(1), &dir);
    assert!(!stopped, "a thread pool task without a token was stopped");
    fs::remove_dir_all(dir).unwrap();

    let dir = scratch_dir("interrupt-procs");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap();
    assert!(interrupt_at_every_point(&pool, &dir), "SIGTERM stops it");
    fs::remove_dir_all(dir).unwrap();
}

/// The same generic check over the Celery executor, with a Rust worker on
/// worker processes (one runner: the queued task waits in Redis while the
/// blocking one runs): the queued task's interrupt is `Requested` (only the
/// worker knows where it is), the worker skips it and its future fails "by
/// request"; the running one is terminated (SIGTERM to its process).
#[test]
fn interrupt_at_every_point_of_a_tasks_life_on_celery() {
    let redis = celery::testing::RedisServer::start();
    let url = redis.url(0);
    let mut config = celery::WorkerConfig::new(&url);
    config.concurrency = 1;
    config.pool = celery::PoolKind::Processes;
    let worker = std::sync::Arc::new(celery::Worker::new(config, celery_process_registry()));
    let w = worker.clone();
    let running = std::thread::spawn(move || w.run().expect("the celery worker runs"));
    let ex = celery::CeleryExecutor::builder(&url)
        .registry(celery_process_registry())
        .connect()
        .expect("connect to the test's redis-server");
    let dir = scratch_dir("interrupt-celery");
    assert!(interrupt_at_every_point(&ex, &dir), "SIGTERM stops it");
    fs::remove_dir_all(dir).unwrap();
    drop(ex);
    worker.stop_handle().stop();
    running.join().unwrap();
}

#[test]
fn inline_interrupt_says_it_is_not_applicable() {
    let e = InlineExecutor::new();
    let done = Executor::submit(&e, square, 2).unwrap();
    let refused = e.interrupt(&done).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unsupported);
    assert!(
        refused
            .to_string()
            .starts_with("inline executor: not applicable"),
        "{refused}"
    );
    assert_eq!(done.result().unwrap(), 4, "nothing was touched");
}
