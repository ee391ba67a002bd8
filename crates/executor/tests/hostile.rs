//! The hostile-code suite (`../shared/ADVERSARY.md`, class 1):
//! every hostile behaviour of user code that runs on a thread an executor
//! owns, run over every executor.
//!
//! Each test is one behaviour, run over every executor of the shared list,
//! [`Kind::EVERY`] (`support/mod.rs`; [`subject`] says how each is built). For each, a task is held at
//! a gate while listeners attach to its future: the hostile one first, then
//! the others (a waker, a done-callback, a `wait`, an `as_completed` and a
//! blocked `result()` caller, each on its own). The gate opens, and the
//! suite checks that every other listener is served, that the executor
//! still runs tasks afterwards (unless the behaviour shut it down or dropped
//! it), and that shutting it down returns. Every wait has a hang guard.
//!
//! A behaviour that cannot apply to an executor says why in
//! [`Subject::not_applicable`]; it is never skipped in silence.

use std::future::{Future as _, IntoFuture};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use celery::Registry;
use executor::{
    ErrorKind, Executor, ExecutorError, InlineExecutor, ProcessPoolExecutor, ThreadPoolExecutor,
};
use future::{as_completed, wait, Future, ReturnWhen};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Hang guard for every wait.
const LONG: Duration = Duration::from_secs(120);

mod support;
#[path = "../../future/tests/wakers/mod.rs"]
mod wakers;

use support::{in_test_process, CeleryUnderTest, Kind};
use wakers::{PanickingWaker, SendingWaker};

// ---------------------------------------------------------------------------
// The executors.

/// One executor under test.
struct Subject {
    name: &'static str,
    make: fn() -> Arc<dyn Hostile>,
    /// Behaviours that cannot apply to this executor, and why.
    not_applicable: &'static [(Behaviour, &'static str)],
    /// Runs each task inside `submit` (so no gate can hold it).
    runs_in_submit: bool,
}

/// How the suite runs on each executor of [`Kind::EVERY`].
fn subject(kind: Kind) -> Subject {
    let name = kind.name();
    match kind {
        Kind::Inline => Subject {
            name,
            make: || Arc::new(InlineExecutor::new()),
            not_applicable: &[
                (Behaviour::FailingSerialize, "it never serializes a value"),
                (
                    Behaviour::PanickingResultDrop,
                    "a result is dropped by the caller's own drop of its future, in its own thread",
                ),
            ],
            runs_in_submit: true,
        },
        Kind::ThreadPool => Subject {
            name,
            make: || Arc::new(ThreadPoolExecutor::new(2)),
            not_applicable: &[(Behaviour::FailingSerialize, "it never serializes a value")],
            runs_in_submit: false,
        },
        Kind::ProcessPool => Subject {
            name,
            make: || Arc::new(ProcessPoolExecutor::new(2).expect("a process pool")),
            not_applicable: &[],
            runs_in_submit: false,
        },
        Kind::Celery => Subject {
            name,
            make: || Arc::new(CeleryUnderTest::start(registry, None)),
            not_applicable: &[],
            runs_in_submit: false,
        },
    }
}

/// What the suite asks of an executor, object-safe (the `Executor` trait's
/// methods are generic), implemented once for every `Executor`.
trait Hostile: Send + Sync {
    fn square(&self, x: u64) -> Result<Future<u64>, ExecutorError>;
    fn held_square(&self, gate: Gate) -> Result<Future<u64>, ExecutorError>;
    fn held_panics_on_drop(
        &self,
        gate: Gate,
        armed: bool,
    ) -> Result<Future<PanicsOnDrop>, ExecutorError>;
    fn unserializable_argument(&self) -> Result<Future<u64>, ExecutorError>;
    fn reports_tasks(&self) -> bool;
    fn shutdown(&self, wait: bool, cancel_futures: bool);
}

impl<E: Executor + Send + Sync> Hostile for E {
    fn square(&self, x: u64) -> Result<Future<u64>, ExecutorError> {
        self.submit(square, x)
    }

    fn held_square(&self, gate: Gate) -> Result<Future<u64>, ExecutorError> {
        self.submit(held_square, gate)
    }

    fn held_panics_on_drop(
        &self,
        gate: Gate,
        armed: bool,
    ) -> Result<Future<PanicsOnDrop>, ExecutorError> {
        self.submit(held_panics_on_drop, (gate, armed))
    }

    fn unserializable_argument(&self) -> Result<Future<u64>, ExecutorError> {
        self.submit(takes_unserializable, FailsToSerialize)
    }

    fn reports_tasks(&self) -> bool {
        Executor::reports_tasks(self)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        Executor::shutdown(self, wait, cancel_futures);
    }
}

/// The Celery executor is reached through its handle (`Deref`).
impl Hostile for CeleryUnderTest {
    fn square(&self, x: u64) -> Result<Future<u64>, ExecutorError> {
        (**self).square(x)
    }

    fn held_square(&self, gate: Gate) -> Result<Future<u64>, ExecutorError> {
        (**self).held_square(gate)
    }

    fn held_panics_on_drop(
        &self,
        gate: Gate,
        armed: bool,
    ) -> Result<Future<PanicsOnDrop>, ExecutorError> {
        (**self).held_panics_on_drop(gate, armed)
    }

    fn unserializable_argument(&self) -> Result<Future<u64>, ExecutorError> {
        (**self).unserializable_argument()
    }

    fn reports_tasks(&self) -> bool {
        Hostile::reports_tasks(&**self)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        Hostile::shutdown(&**self, wait, cancel_futures);
    }
}

/// The tasks a Celery worker on worker processes finds (`support`
/// installs them before the fork server starts): this file's.
fn celery_process_registry() -> Registry {
    registry()
}

fn registry() -> Registry {
    let mut r = celery::tasks::builtin();
    r.register("hostile.square", square);
    r.register("hostile.held_square", held_square);
    r.register("hostile.held_panics_on_drop", held_panics_on_drop);
    r.register("hostile.takes_unserializable", takes_unserializable);
    r
}

// ---------------------------------------------------------------------------
// The tasks and their values.

fn square(x: u64) -> u64 {
    x * x
}

/// A gate a task waits at, in any process: a file that the test creates.
#[derive(Clone, Serialize, Deserialize)]
struct Gate(PathBuf);

impl Gate {
    fn new() -> Gate {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "executor-hostile-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&path);
        Gate(path)
    }

    fn open(&self) {
        std::fs::write(&self.0, b"open").unwrap();
    }

    /// Waits (in whichever process runs the task) until the gate is open;
    /// gives up after `LONG` as a hang guard.
    fn pass(&self) {
        let deadline = Instant::now() + LONG;
        while !self.0.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if in_test_process() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn held_square(gate: Gate) -> u64 {
    gate.pass();
    std::mem::forget(gate); // the test removes the file
    7 * 7
}

/// A result whose `Drop` panics when it is armed. A deserialized copy is
/// always armed: only the copy in the test process panics, never the one a
/// worker drops after sending it.
#[derive(Serialize)]
struct PanicsOnDrop {
    #[serde(skip)]
    armed: bool,
    value: u64,
}

impl<'de> Deserialize<'de> for PanicsOnDrop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            value: u64,
        }
        Raw::deserialize(d).map(|raw| PanicsOnDrop {
            armed: true,
            value: raw.value,
        })
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.armed {
            panic!("this result panics when dropped ({})", self.value);
        }
    }
}

fn held_panics_on_drop((gate, armed): (Gate, bool)) -> PanicsOnDrop {
    gate.pass();
    std::mem::forget(gate);
    PanicsOnDrop { armed, value: 1 }
}

/// An argument whose `Serialize` fails with its own message.
#[derive(Deserialize)]
struct FailsToSerialize;

const SERIALIZE_MESSAGE: &str = "FailsToSerialize refuses to be serialized";

impl Serialize for FailsToSerialize {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(SERIALIZE_MESSAGE))
    }
}

fn takes_unserializable(_: FailsToSerialize) -> u64 {
    0
}

// ---------------------------------------------------------------------------
// The behaviours.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    PanickingWaker,
    PanickingCallback,
    PanickingCallbackPanicHook,
    PanickingResultDrop,
    FailingSerialize,
    CallbackSubmitsAndWaits,
    CallbackShutsDown,
    CallbackDropsLastHandle,
}

/// What a behaviour did to the executor, so the checks know what to expect.
enum After {
    /// It should still run tasks; the suite shuts it down at the end.
    Running(Arc<dyn Hostile>),
    /// A callback shut it down (the handle is still here).
    ShutDown(Arc<dyn Hostile>),
    /// A callback dropped its last handle.
    Gone,
}

/// Runs `behaviour` over every executor.
fn over_every_executor(behaviour: Behaviour) {
    for subject in Kind::EVERY.map(subject) {
        if let Some((_, why)) = subject.not_applicable.iter().find(|(b, _)| *b == behaviour) {
            eprintln!(
                "{behaviour:?} on the {}: does not apply: {why}",
                subject.name
            );
            continue;
        }
        eprintln!("{behaviour:?} on the {}", subject.name);
        match behaviour {
            Behaviour::PanickingResultDrop => panicking_result_drop(&subject),
            Behaviour::FailingSerialize => failing_serialize(&subject),
            _ => listeners_survive(&subject, behaviour),
        }
    }
}

/// The common check: a held task, the hostile listener first, the others
/// after it; all of them served once the gate opens.
fn listeners_survive(subject: &Subject, behaviour: Behaviour) {
    let name = subject.name;
    let executor = (subject.make)();
    let gate = Gate::new();
    if subject.runs_in_submit {
        gate.open();
    }
    let held = executor.held_square(gate.clone()).expect("submit");
    let (served, heard) = mpsc::channel::<&'static str>();

    // The hostile listener, first.
    let mut bad_await = (&held).into_future();
    let mut handle = Holder(Some(executor));
    let bad_waker = Waker::from(Arc::new(PanickingWaker));
    let (callback_done, callback_ended) = mpsc::channel::<Option<u64>>();
    match behaviour {
        Behaviour::PanickingWaker => {
            let _ = Pin::new(&mut bad_await).poll(&mut Context::from_waker(&bad_waker));
        }
        Behaviour::PanickingCallback | Behaviour::PanickingCallbackPanicHook => {
            held.add_done_callback(|_| panic!("this callback panics"));
        }
        Behaviour::CallbackSubmitsAndWaits => {
            let ex = Arc::clone(handle.0.as_ref().unwrap());
            held.add_done_callback(move |_| {
                let got = ex.square(6).ok().and_then(|f| f.result_timeout(LONG).ok());
                let _ = callback_done.send(got);
            });
        }
        Behaviour::CallbackShutsDown => {
            let ex = Arc::clone(handle.0.as_ref().unwrap());
            held.add_done_callback(move |_| {
                ex.shutdown(true, false);
                let _ = callback_done.send(None);
            });
        }
        Behaviour::CallbackDropsLastHandle => {
            let ex = handle.0.take().unwrap();
            held.add_done_callback(move |_| {
                drop(ex);
                let _ = callback_done.send(None);
            });
        }
        Behaviour::PanickingResultDrop | Behaviour::FailingSerialize => unreachable!(),
    }

    // The others, after it.
    let (tx, woken) = mpsc::channel();
    let good_waker = Waker::from(Arc::new(SendingWaker(Mutex::new(tx))));
    let mut good_await = (&held).into_future();
    if Pin::new(&mut good_await)
        .poll(&mut Context::from_waker(&good_waker))
        .is_ready()
    {
        good_waker.wake_by_ref(); // already done: nothing to register
    }
    let s = served.clone();
    held.add_done_callback(move |_| {
        let _ = s.send("a done-callback");
    });
    let mut threads = Vec::new();
    let (f, s) = (held.clone(), served.clone());
    threads.push(std::thread::spawn(move || {
        if wait([&f], Some(LONG), ReturnWhen::AllCompleted)
            .not_done
            .is_empty()
        {
            let _ = s.send("a wait");
        }
    }));
    let (f, s) = (held.clone(), served.clone());
    threads.push(std::thread::spawn(move || {
        if as_completed([&f], Some(LONG)).all(|done| done.is_ok()) {
            let _ = s.send("an as_completed");
        }
    }));
    let (f, s) = (held.clone(), served.clone());
    threads.push(std::thread::spawn(move || {
        if f.result_timeout(LONG).ok() == Some(49) {
            let _ = s.send("a blocked result()");
        }
    }));
    drop(served);

    gate.open();
    let mut heard_from: Vec<&str> = (0..4)
        .map(|_| {
            heard
                .recv_timeout(LONG)
                .unwrap_or_else(|_| panic!("{name}, {behaviour:?}: a listener was never served"))
        })
        .collect();
    heard_from.sort();
    assert_eq!(
        heard_from,
        [
            "a blocked result()",
            "a done-callback",
            "a wait",
            "an as_completed"
        ],
        "{name}, {behaviour:?}"
    );
    woken
        .recv_timeout(LONG)
        .unwrap_or_else(|_| panic!("{name}, {behaviour:?}: the good waker was never woken"));
    for t in threads {
        t.join().unwrap();
    }

    let after = match behaviour {
        Behaviour::CallbackSubmitsAndWaits => {
            let got = callback_ended
                .recv_timeout(2 * LONG)
                .unwrap_or_else(|_| panic!("{name}: the callback that submits never ended"));
            assert_eq!(
                got,
                Some(36),
                "{name}: the callback's own task never completed"
            );
            After::Running(handle.0.take().unwrap())
        }
        Behaviour::CallbackShutsDown => {
            callback_ended
                .recv_timeout(LONG)
                .unwrap_or_else(|_| panic!("{name}: shutdown inside a callback did not return"));
            After::ShutDown(handle.0.take().unwrap())
        }
        Behaviour::CallbackDropsLastHandle => {
            callback_ended.recv_timeout(LONG).unwrap_or_else(|_| {
                panic!("{name}: dropping the last handle inside a callback panicked or hung")
            });
            After::Gone
        }
        _ => After::Running(handle.0.take().unwrap()),
    };
    finish(name, after);
}

/// The executor keeps running tasks (if it should), and shutting it down
/// and dropping it return.
fn finish(name: &str, after: After) {
    let executor = match after {
        After::Running(executor) => {
            let mut executor = Holder(Some(executor));
            for x in 0..3u64 {
                let executor = executor.0.as_ref().unwrap();
                let f = executor.square(x).expect("submit after the hostile code");
                assert_eq!(
                    f.result_timeout(LONG)
                        .unwrap_or_else(|e| panic!("{name}: a later task never ran: {e}")),
                    x * x
                );
            }
            executor.0.take().unwrap()
        }
        After::ShutDown(executor) => {
            let refused = executor
                .square(1)
                .expect_err("a shut-down executor refuses work");
            assert_eq!(refused.kind(), ErrorKind::Shutdown, "{name}");
            executor
        }
        After::Gone => return,
    };
    // On another thread, so that a hang fails the guard below.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        executor.shutdown(true, false);
        drop(executor);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(LONG)
        .unwrap_or_else(|_| panic!("{name}: shutdown(wait) or the drop did not return"));
}

/// Holds an executor in a test; if the test fails, the executor is leaked
/// rather than dropped on unwind (its drop could hang, and then the test
/// would hang instead of failing).
struct Holder(Option<Arc<dyn Hostile>>);

impl Drop for Holder {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::mem::forget(self.0.take());
        }
    }
}

/// A result whose `Drop` panics, and whose future nobody holds when it
/// comes: the executor drops it on its own thread.
fn panicking_result_drop(subject: &Subject) {
    let name = subject.name;
    let mut executor = Holder(Some((subject.make)()));
    let gate = Gate::new();
    // Serializing executors hand over a deserialized (armed) copy; the
    // others hand over the task's own value, armed at its making.
    let serializes = !subject
        .not_applicable
        .iter()
        .any(|(b, _)| *b == Behaviour::FailingSerialize);
    let ex = executor.0.as_ref().unwrap();
    let unheld = ex
        .held_panics_on_drop(gate.clone(), !serializes)
        .expect("submit");
    drop(unheld);
    // A second future that is held, to see that results are still delivered.
    let held = ex.held_square(gate.clone()).expect("submit");
    gate.open();
    assert_eq!(
        held.result_timeout(LONG)
            .unwrap_or_else(|e| panic!("{name}: a result after the panicking drop was lost: {e}")),
        49
    );
    finish(name, After::Running(executor.0.take().unwrap()));
}

/// An argument whose `Serialize` fails: the submit or its future fails with
/// the impl's own message, and the executor goes on.
fn failing_serialize(subject: &Subject) {
    let name = subject.name;
    let mut executor = Holder(Some((subject.make)()));
    let message = match executor.0.as_ref().unwrap().unserializable_argument() {
        Err(refused) => refused.to_string(),
        Ok(f) => f
            .result_timeout(LONG)
            .err()
            .unwrap_or_else(|| panic!("{name}: an unserializable argument ran"))
            .to_string(),
    };
    assert!(
        message.contains(SERIALIZE_MESSAGE),
        "{name}: the Serialize impl's own message is lost: {message}"
    );
    finish(name, After::Running(executor.0.take().unwrap()));
}

#[test]
fn a_panicking_waker() {
    over_every_executor(Behaviour::PanickingWaker);
}

#[test]
fn a_panicking_callback() {
    over_every_executor(Behaviour::PanickingCallback);
}

#[test]
fn a_panicking_callback_panic_hook() {
    // Process-wide: other tests running meanwhile report through it too,
    // which is harmless (their reports are contained the same way).
    future::set_callback_panic_hook(|report| panic!("the hook panicked on {report:?}"));
    over_every_executor(Behaviour::PanickingCallbackPanicHook);
    future::reset_callback_panic_hook();
}

#[test]
fn a_panicking_result_drop() {
    over_every_executor(Behaviour::PanickingResultDrop);
}

#[test]
fn a_failing_serialize_impl() {
    over_every_executor(Behaviour::FailingSerialize);
}

#[test]
fn a_callback_that_submits_to_the_same_executor_and_waits() {
    over_every_executor(Behaviour::CallbackSubmitsAndWaits);
}

#[test]
fn a_callback_that_shuts_the_executor_down() {
    over_every_executor(Behaviour::CallbackShutsDown);
}

#[test]
fn a_callback_that_drops_the_last_handle() {
    over_every_executor(Behaviour::CallbackDropsLastHandle);
}

/// Not hostile code, but one claim to check over every executor, Celery
/// included: a finished future carries a `TaskReport` exactly when its
/// executor's `reports_tasks()` says so, and a report names the process
/// that ran the task. Celery says false (a Python worker's tasks have no
/// report) and its tasks run by our worker, as here, have one.
#[test]
fn reports_are_there_exactly_when_the_executor_says() {
    for (kind, subject) in Kind::EVERY.map(|k| (k, subject(k))) {
        let executor = (subject.make)();
        let f = executor.square(7).expect("submit");
        assert_eq!(f.result_timeout(LONG).expect("the task runs"), 49);
        let report = f.report();
        let our_celery_worker = matches!(kind, Kind::Celery);
        assert_eq!(
            report.is_some(),
            executor.reports_tasks() || our_celery_worker,
            "{}: report {report:?}",
            subject.name
        );
        if let Some(r) = report {
            assert!(r.worker_pid.is_some(), "{}: {r:?}", subject.name);
        }
        executor.shutdown(true, false);
    }
}
