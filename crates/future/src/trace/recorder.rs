//! [`Recorder`]: the transitions, appended to one buffer per recording
//! thread and lane (16 bytes an event, no lock per event: `block.rs`),
//! stamped by the recorder's clock (`clock.rs`), and merged by time when
//! they are read.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::Duration;

use super::block::{Chain, Writer, BLOCK_EVENTS};
use super::clock::Clock;
use crate::sync::Arc as SyncArc;

/// What happened to a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// Handed to the executor (Python's `submit`).
    Submitted,
    /// A worker started running it.
    Started,
    /// It returned a value.
    Finished,
    /// It failed: an error, a panic, its worker died, or it could not be
    /// decoded.
    Failed,
}

impl Transition {
    /// The lower-case name used in the files we write.
    pub fn name(self) -> &'static str {
        match self {
            Transition::Submitted => "submitted",
            Transition::Started => "started",
            Transition::Finished => "finished",
            Transition::Failed => "failed",
        }
    }
}

/// One recorded transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The task's number in this recorder, from 0 in submission order.
    pub task: u64,
    /// What happened.
    pub transition: Transition,
    /// Where: the submitting thread for `Submitted`, the worker otherwise
    /// (`"thread <name>"`, `"process <pid>"`, ...).
    pub lane: Arc<str>,
    /// When, since the recorder was made.
    pub at: Duration,
}

/// Records task transitions for one or more executors. Cheap to clone
/// (every clone records into the same picture); give a clone to each
/// executor whose schedule you want in the same picture.
///
/// Each thread that records appends to buffers of its own, one per lane it
/// records on (usually one: its own), registered with the recorder the
/// first time; a buffer stores its lane's name once, and each event as 16
/// bytes (the task's number, and the clock's ticks with the transition in
/// the low two bits) in fixed-size blocks that the thread fills with no
/// lock (`block.rs`). The buffers are merged when the events are read
/// ([`events`](Self::events)). A thread that exits leaves its buffers
/// with the recorder until their events are taken (then they go);
/// [`take_events`](Self::take_events) and
/// [`clear`](Self::clear) hand the blocks read back to a free list that
/// later recording reuses, and so does the last clone of the recorder.
#[derive(Clone, Debug)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Which recorder a thread's buffer belongs to (never reused, unlike
    /// an address).
    id: u64,
    clock: Clock,
    next_task: AtomicU64,
    /// One buffer per (thread, lane) that recorded. Taken when a thread
    /// records on a lane for the first time, and to read the events.
    lanes: Mutex<Vec<Lane>>,
}

/// One thread's events on one lane.
struct Lane {
    name: Arc<str>,
    chain: SyncArc<Chain>,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane").field("name", &self.name).finish()
    }
}

impl Drop for Inner {
    /// Frees the events now, also those of threads that are still alive
    /// (their thread-local entry keeps only the block it was filling, until
    /// it records into a new recorder or exits).
    fn drop(&mut self) {
        for lane in lock(&self.lanes).drain(..) {
            lane.chain.free();
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder; its clock starts now.
    pub fn new() -> Self {
        Self::with_clock(Clock::new())
    }

    fn with_clock(clock: Clock) -> Self {
        // Relaxed: the id only has to be unique.
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Recorder {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Relaxed),
                clock,
                next_task: AtomicU64::new(0),
                lanes: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Records that a task was submitted, from the current thread, and
    /// returns the handle its executor records the rest of its life with.
    pub fn submitted(&self) -> TaskTrace {
        TaskTrace {
            recorder: self.clone(),
            task: self.submitted_number(),
            lane: None,
            #[cfg(feature = "tracing")]
            span: None,
        }
    }

    /// Records that a task was submitted, from the current thread, and
    /// returns only its number: for an executor that reaches the recorder
    /// again on the thread that runs the task ([`started_here`]), so that
    /// what it queues per task is one word, not a [`TaskTrace`].
    ///
    /// [`started_here`]: Self::started_here
    pub fn submitted_number(&self) -> u64 {
        // Relaxed: the number only has to be unique; the events' order is
        // their times'.
        let task = self.inner.next_task.fetch_add(1, Relaxed);
        #[cfg(feature = "tracing")]
        tracing::trace!(target: "future::trace", task, lane = %current_thread_lane(), "task submitted");
        self.push_here(task, Transition::Submitted);
        task
    }

    /// Task number `task` (from [`submitted_number`](Self::submitted_number))
    /// started on the current thread, which runs it to its end: the handle
    /// records that end on this thread's lane, `Failed` if it is dropped
    /// without [`LocalRun::ended`] (the run unwound).
    pub fn started_here(&self, task: u64) -> LocalRun<'_> {
        #[cfg(feature = "tracing")]
        let span = Some(task_span(task, &current_thread_lane()));
        self.push_here(task, Transition::Started);
        LocalRun {
            recorder: self,
            task,
            ended: false,
            #[cfg(feature = "tracing")]
            span,
        }
    }

    /// A copy of every event recorded so far, in time order: each thread's
    /// events in the order it recorded them, merged by time (events of one
    /// instant on different threads in the order of a task's life:
    /// submitted, started, ended).
    ///
    /// The copy is the moment of the call: the clock is read first, and
    /// every event stamped before that moment and published is in it (one
    /// stamped later is left for the next read). An event is published
    /// before anything it causes happens (a task is queued after its
    /// submission is recorded), so an event in the copy has the events of
    /// its task that caused it in it too: a task's start is never without
    /// its submission. Each task's events are in the order of its life
    /// (a start read a few nanoseconds before its submission, see the
    /// clock's notes in the module docs, is put at its submission).
    pub fn events(&self) -> Vec<Event> {
        self.read(Read::Copy)
    }

    /// As [`events`](Self::events), and removes the events returned from
    /// the recorder: the next read starts after them, and the blocks they
    /// filled go back to a free list that later recording reuses. For a
    /// program that writes its trace in parts (every minute, every batch),
    /// or a benchmark that records many rounds, so that the events do not
    /// grow for ever. A task whose submission was taken before its end is
    /// drawn from its start in the next part.
    pub fn take_events(&self) -> Vec<Event> {
        self.read(Read::Take)
    }

    /// Drops every event recorded so far, as [`take_events`](Self::take_events)
    /// does, without copying them.
    pub fn clear(&self) {
        self.read(Read::Drop);
    }

    /// The events as a Chrome trace-event JSON document (see the module docs).
    pub fn chrome_json(&self) -> String {
        super::chrome::render(&self.events())
    }

    /// The events as an SVG timeline, one lane per worker.
    pub fn svg(&self) -> String {
        super::svg::render(&self.events())
    }

    /// Writes [`chrome_json`](Self::chrome_json) to `path`, or, when
    /// `path` ends in `.svg`, [`svg`](Self::svg).
    pub fn write_to(&self, path: &std::path::Path) -> std::io::Result<()> {
        let is_svg = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
        let text = if is_svg {
            self.svg()
        } else {
            self.chrome_json()
        };
        std::fs::write(path, text)
    }

    /// The event's second word: the clock's ticks now, and the transition.
    #[inline]
    fn stamp(&self, transition: Transition) -> u64 {
        (self.inner.clock.now() << 2) | transition.code()
    }

    /// Records on the current thread's own lane.
    #[inline]
    fn push_here(&self, task: u64, transition: Transition) {
        let stamp = self.stamp(transition);
        let pushed = BUFFERS.try_with(|local| match local.try_borrow_mut() {
            Ok(mut local) => {
                local.own_writer(&self.inner).push(task, stamp);
                true
            }
            Err(_) => false,
        });
        if pushed != Ok(true) {
            self.push_alone(current_thread_lane(), task, stamp);
        }
    }

    /// Records on the lane named `lane`, from the current thread.
    fn push_on(&self, lane: &Arc<str>, task: u64, transition: Transition) {
        let stamp = self.stamp(transition);
        let pushed = BUFFERS.try_with(|local| match local.try_borrow_mut() {
            Ok(mut local) => {
                local.writer_on(&self.inner, lane).push(task, stamp);
                true
            }
            Err(_) => false,
        });
        if pushed != Ok(true) {
            self.push_alone(Arc::clone(lane), task, stamp);
        }
    }

    /// The thread's list of buffers is gone (a task ended by a
    /// thread-local's destructor as its thread exits): a buffer of its
    /// own, of one event.
    #[cold]
    fn push_alone(&self, lane: Arc<str>, task: u64, stamp: u64) {
        let (chain, mut writer) = Chain::new(1, 1);
        writer.push(task, stamp);
        lock(&self.inner.lanes).push(Lane { name: lane, chain });
    }

    fn read(&self, how: Read) -> Vec<Event> {
        // The rate, only to turn ticks into time: measuring it may wait
        // (a young process), which `clear` has no reason to do.
        let scale = (how != Read::Drop).then(|| self.inner.clock.scale());
        // The moment of the copy, read before any buffer is.
        let cut = self.inner.clock.cut();
        let mut lanes = lock(&self.inner.lanes);
        let mut per_lane = Vec::with_capacity(lanes.len());
        for lane in lanes.iter() {
            let mut events = Vec::new();
            let keep = |stamp: u64| stamp >> 2 <= cut;
            let take = how != Read::Copy;
            lane.chain.read(keep, take, |task, stamp| {
                if let Some(scale) = scale {
                    events.push(Event {
                        task,
                        transition: Transition::from_code(stamp),
                        lane: Arc::clone(&lane.name),
                        at: scale.duration(stamp >> 2),
                    });
                }
            });
            per_lane.push(events);
        }
        if how != Read::Copy {
            // The buffers of threads that are gone, now empty: forgotten.
            lanes.retain(|lane| !lane.chain.is_done());
        }
        drop(lanes);
        in_life_order(&mut per_lane);
        merge(per_lane.iter().map(Vec::as_slice).collect())
    }
}

/// What a read does with the events it reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    Copy,
    Take,
    Drop,
}

impl Transition {
    /// The transition's two bits in a stamp.
    fn code(self) -> u64 {
        match self {
            Transition::Submitted => 0,
            Transition::Started => 1,
            Transition::Finished => 2,
            Transition::Failed => 3,
        }
    }

    fn from_code(stamp: u64) -> Transition {
        match stamp & 3 {
            0 => Transition::Submitted,
            1 => Transition::Started,
            2 => Transition::Finished,
            _ => Transition::Failed,
        }
    }
}

/// A thread's buffers: one per (recorder, lane) it recorded on.
#[derive(Default)]
struct ThreadBuffers {
    /// Usually one entry: a worker's own lane in its pool's recorder.
    entries: Vec<Entry>,
}

struct Entry {
    recorder: u64,
    /// Gone when the recorder is: the entry is then forgotten.
    alive: Weak<Inner>,
    lane: Arc<str>,
    /// `lane` is the thread's own (`thread <name>`).
    own: bool,
    writer: Writer,
}

thread_local! {
    static BUFFERS: RefCell<ThreadBuffers> = RefCell::default();
}

impl ThreadBuffers {
    /// This thread's writer on its own lane in `recorder`.
    #[inline]
    fn own_writer(&mut self, recorder: &Arc<Inner>) -> &mut Writer {
        let found = self
            .entries
            .iter()
            .position(|e| e.recorder == recorder.id && e.own);
        let i = match found {
            Some(i) => i,
            None => self.register(recorder, current_thread_lane(), true),
        };
        &mut self.entries[i].writer
    }

    /// This thread's writer on the lane named `lane` in `recorder`.
    fn writer_on(&mut self, recorder: &Arc<Inner>, lane: &Arc<str>) -> &mut Writer {
        let found = self.entries.iter().position(|e| {
            e.recorder == recorder.id && (Arc::ptr_eq(&e.lane, lane) || e.lane == *lane)
        });
        let i = match found {
            Some(i) => i,
            None => self.register(recorder, Arc::clone(lane), false),
        };
        &mut self.entries[i].writer
    }

    fn register(&mut self, recorder: &Arc<Inner>, lane: Arc<str>, own: bool) -> usize {
        // The entries of recorders that are gone: their writers' blocks go
        // back to the free list.
        self.entries.retain(|e| e.alive.strong_count() > 0);
        // A thread's own lane gets full blocks at once; another lane (a
        // worker process's, on the dispatcher) may see two events only.
        let first = if own { BLOCK_EVENTS } else { FIRST_OTHER_BLOCK };
        if !own {
            self.forget_oldest_other_lane(recorder.id);
        }
        let (chain, writer) = Chain::new(first, BLOCK_EVENTS);
        lock(&recorder.lanes).push(Lane {
            name: Arc::clone(&lane),
            chain,
        });
        self.entries.push(Entry {
            recorder: recorder.id,
            alive: Arc::downgrade(recorder),
            lane,
            own,
            writer,
        });
        self.entries.len() - 1
    }
}

/// The writers a thread keeps for lanes other than its own, per recorder.
/// A process pool that replaces its workers makes a lane per pid, so the
/// dispatcher would otherwise keep (and search) one writer per worker that
/// ever lived.
const MAX_OTHER_LANES: usize = 16;

/// The first block of a lane other than the thread's own: 8 events, 128
/// bytes (a replaced worker's lane may hold one task).
const FIRST_OTHER_BLOCK: usize = 8;

impl ThreadBuffers {
    /// Makes room for one more writer on another lane of `recorder`: the
    /// oldest one goes (its events stay in the recorder; if that lane is
    /// recorded on again, a new buffer takes its next events, and the
    /// writers draw both under the one lane name).
    fn forget_oldest_other_lane(&mut self, recorder: u64) {
        let others = |e: &&Entry| e.recorder == recorder && !e.own;
        if self.entries.iter().filter(others).count() >= MAX_OTHER_LANES {
            if let Some(i) = self
                .entries
                .iter()
                .position(|e| e.recorder == recorder && !e.own)
            {
                self.entries.remove(i);
            }
        }
    }
}

/// A lock of the recorder's. Nothing panics with one held but an
/// allocation failure: take the data back.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Puts each task's events in the order of its life, across threads: a
/// start stamped before its submission (the unordered TSC read of the
/// worker that took it within nanoseconds) is moved to the submission, an
/// end before its start to the start.
fn in_life_order(lanes: &mut [Vec<Event>]) {
    let mut at_least: HashMap<u64, Duration> = HashMap::new();
    for step in [Transition::Submitted, Transition::Started] {
        for e in lanes.iter().flatten().filter(|e| e.transition == step) {
            at_least.insert(e.task, e.at);
        }
        for e in lanes.iter_mut().flatten() {
            if life_step(e.transition) > life_step(step) {
                if let Some(&floor) = at_least.get(&e.task) {
                    e.at = e.at.max(floor);
                }
            }
        }
    }
}

/// Each thread's events (each in the order its thread recorded them)
/// merged into one list by time. Each thread's order is kept as it is.
/// Between threads, events of the same instant (the clock counts
/// nanoseconds, so rarely) go in the order of a task's life: submitted,
/// then started, then ended; a task's events on different threads follow
/// each other in time (each is recorded before the next is caused), so a
/// task's submission always comes before its start, and its start before
/// its end.
fn merge(threads: Vec<&[Event]>) -> Vec<Event> {
    let mut merged = Vec::with_capacity(threads.iter().map(|t| t.len()).sum());
    // Each thread's next event, by (time, step of a task's life, thread).
    let key = |e: &Event, thread: usize| Reverse((e.at, life_step(e.transition), thread));
    let mut next = vec![0; threads.len()];
    let mut heads: BinaryHeap<_> = threads
        .iter()
        .enumerate()
        .filter_map(|(t, events)| events.first().map(|e| key(e, t)))
        .collect();
    while let Some(Reverse((_, _, t))) = heads.pop() {
        merged.push(threads[t][next[t]].clone());
        next[t] += 1;
        if let Some(e) = threads[t].get(next[t]) {
            heads.push(key(e, t));
        }
    }
    merged
}

/// Where a transition comes in a task's life.
fn life_step(transition: Transition) -> u8 {
    match transition {
        Transition::Submitted => 0,
        Transition::Started => 1,
        Transition::Finished | Transition::Failed => 2,
    }
}

/// One task's handle on its recorder: the executor calls
/// [`started`](Self::started) when a worker takes it and
/// [`ended`](Self::ended) when it is done.
#[derive(Debug)]
pub struct TaskTrace {
    recorder: Recorder,
    task: u64,
    /// The worker it started on: where its end is drawn.
    lane: Option<Arc<str>>,
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
}

impl TaskTrace {
    /// The task's number in its recorder.
    pub fn task(&self) -> u64 {
        self.task
    }

    /// The task started on the worker named `lane`.
    pub fn started(&mut self, lane: impl Into<Arc<str>>) {
        let lane = lane.into();
        #[cfg(feature = "tracing")]
        {
            self.span = Some(task_span(self.task, &lane));
        }
        self.recorder.push_on(&lane, self.task, Transition::Started);
        self.lane = Some(lane);
    }

    /// The task started on the current thread (a thread pool's worker, an
    /// inline executor's caller).
    pub fn started_here(&mut self) {
        self.started(current_thread_lane());
    }

    /// The task ended: `ok` if it returned a value. Drawn on the lane it
    /// started on; a task that ends without starting (it could not be
    /// encoded, its pool broke) on the current thread's.
    pub fn ended(mut self, ok: bool) {
        let lane = self.lane.take().unwrap_or_else(current_thread_lane);
        self.end_on(ok, lane);
    }

    fn end_on(&mut self, ok: bool, lane: Arc<str>) {
        // Closes the span: it ends when the task does.
        #[cfg(feature = "tracing")]
        drop(self.span.take());
        self.recorder.ended(self.task, ok, Some(&lane));
    }
}

/// A task running on the current thread, from [`Recorder::started_here`]:
/// the borrowed, one-thread form of a started [`TaskTrace`].
#[derive(Debug)]
pub struct LocalRun<'a> {
    recorder: &'a Recorder,
    task: u64,
    ended: bool,
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
}

impl LocalRun<'_> {
    /// The task ended here: `ok` if it returned a value.
    pub fn ended(mut self, ok: bool) {
        self.end(ok);
    }

    fn end(&mut self, ok: bool) {
        self.ended = true;
        // Closes the span: it ends when the task does.
        #[cfg(feature = "tracing")]
        drop(self.span.take());
        self.recorder.ended(self.task, ok, None);
    }
}

impl Drop for LocalRun<'_> {
    /// A run dropped before it ended unwound: it failed.
    fn drop(&mut self) {
        if !self.ended {
            self.end(false);
        }
    }
}

/// The `tracing` span of one run. Not entered: the task may end on another
/// thread (a process pool's dispatcher); the span's life is the task's run.
#[cfg(feature = "tracing")]
fn task_span(task: u64, lane: &str) -> tracing::Span {
    tracing::info_span!(target: "future::trace", "task", task, lane = %lane)
}

impl Recorder {
    /// Records a task's end on `lane` (`None`: the current thread's own).
    fn ended(&self, task: u64, ok: bool, lane: Option<&Arc<str>>) {
        let transition = if ok {
            Transition::Finished
        } else {
            Transition::Failed
        };
        #[cfg(feature = "tracing")]
        tracing::trace!(target: "future::trace", task, "task {}", transition.name());
        match lane {
            Some(lane) => self.push_on(lane, task, transition),
            None => self.push_here(task, transition),
        }
    }
}

impl TaskTrace {
    /// The task ended somewhere this process cannot see (a Celery worker):
    /// the files draw it "in flight" from its submission to this moment,
    /// on the first free sub-lane of `lane` (`"<lane> 1"`, `"<lane> 2"`, ...).
    pub fn ended_unseen(mut self, ok: bool, lane: &str) {
        self.lane = None;
        self.end_on(ok, lane.into());
    }
}

/// `"thread <name>"`, or `"thread <id>"` for an unnamed thread: made once
/// per thread (a thread's name never changes), then shared, so that a
/// transition costs no allocation for its lane.
fn current_thread_lane() -> Arc<str> {
    thread_local! {
        static LANE: Arc<str> = {
            let t = thread::current();
            match t.name() {
                Some(name) => format!("thread {name}").into(),
                None => format!("thread {:?}", t.id()).into(),
            }
        };
    }
    // A task ended by a thread-local's destructor, after LANE's own.
    LANE.try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::from("thread (exiting)"))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The `Instant` clock, the one used where the TSC is no clock: the
    /// same events, in the same order, with times that grow.
    #[test]
    fn a_recorder_on_the_instant_clock_records_in_order() {
        let recorder = Recorder::with_clock(Clock::instant());
        let a = recorder.submitted_number();
        std::thread::sleep(Duration::from_millis(2));
        recorder.started_here(a).ended(true);
        let events = recorder.events();
        let kinds: Vec<_> = events.iter().map(|e| e.transition).collect();
        assert_eq!(
            kinds,
            [
                Transition::Submitted,
                Transition::Started,
                Transition::Finished
            ]
        );
        assert!(events[1].at >= events[0].at + Duration::from_millis(2));
        assert!(events[2].at >= events[1].at);
    }

    #[test]
    fn a_start_stamped_before_its_submission_is_put_at_it() {
        let event = |task, transition, ns| Event {
            task,
            transition,
            lane: Arc::from("l"),
            at: Duration::from_nanos(ns),
        };
        let mut lanes = vec![
            vec![event(0, Transition::Submitted, 100)],
            vec![
                event(0, Transition::Started, 97),
                event(0, Transition::Finished, 98),
            ],
        ];
        in_life_order(&mut lanes);
        let at: Vec<_> = lanes.iter().flatten().map(|e| e.at.as_nanos()).collect();
        assert_eq!(at, [100, 100, 100]);
    }
}

#[cfg(all(test, not(loom)))]
mod lane_tests {
    use super::*;

    /// A process pool's dispatcher records on one lane per worker pid, and
    /// a pool that replaces its workers (`max_tasks_per_child`) makes
    /// thousands: the thread keeps a writer for a few of them only.
    #[test]
    fn a_thread_recording_on_many_lanes_keeps_few_writers() {
        let recorder = Recorder::new();
        for pid in 0..1000 {
            let mut t = recorder.submitted();
            t.started(format!("process {pid}"));
            t.ended(true);
        }
        let writers = BUFFERS.with(|b| b.borrow().entries.len());
        assert!(writers <= 1 + MAX_OTHER_LANES, "{writers} writers kept");
        let events = recorder.events();
        assert_eq!(events.len(), 3000);
        assert!(events
            .iter()
            .filter(|e| e.transition != Transition::Submitted)
            .all(|e| e.lane.starts_with("process ")));
    }
}

#[cfg(all(test, not(loom)))]
mod churn_tests {
    use super::*;

    /// A long-lived recorder emptied in parts (`take_events`, `clear`)
    /// while threads come and go (a thread pool with `idle_timeout`, a
    /// short-lived submitting thread, a process pool's replaced workers):
    /// the buffers of a thread that is gone hold nothing once read, so the
    /// recorder keeps none of them.
    #[test]
    fn buffers_of_gone_threads_and_forgotten_lanes_go_once_taken() {
        let recorder = Recorder::new();
        for _ in 0..20 {
            let r = recorder.clone();
            thread::spawn(move || {
                let task = r.submitted_number();
                r.started_here(task).ended(true);
            })
            .join()
            .unwrap();
        }
        // This thread's writers on other lanes: the first ones are forgotten.
        for pid in 0..(MAX_OTHER_LANES + 4) {
            let mut t = recorder.submitted();
            t.started(format!("process {pid}"));
            t.ended(true);
        }
        assert_eq!(recorder.take_events().len(), 3 * (20 + MAX_OTHER_LANES + 4));
        recorder.clear();
        // Left: this thread's own lane and the lanes it still writes on.
        let lanes = lock(&recorder.inner.lanes).len();
        assert_eq!(
            lanes,
            1 + MAX_OTHER_LANES,
            "the recorder keeps {lanes} buffers after everything was taken"
        );
    }
}
