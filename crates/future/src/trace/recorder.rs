//! [`Recorder`]: the transitions, appended to one buffer per recording
//! thread and merged by time when they are read.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

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
/// Each thread that records appends to a buffer of its own (registered
/// with the recorder the first time that thread records into it), so
/// threads that record at once never wait for each other; the buffers are
/// merged when the events are read ([`events`](Self::events)). A thread
/// that exits leaves its buffer with the recorder, and the last clone of
/// the recorder to go frees every buffer.
#[derive(Clone, Debug)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Which recorder a thread's buffer belongs to (never reused, unlike
    /// an address).
    id: u64,
    origin: Instant,
    next_task: AtomicU64,
    /// One buffer per thread that recorded. Taken when a thread records
    /// into this recorder for the first time, and to read the events.
    buffers: Mutex<Vec<Arc<Buffer>>>,
}

/// One thread's events, in the order that thread recorded them.
///
/// A lock of its own, not shared: only its thread appends, so the lock is
/// free whenever that thread takes it, except while the events are being
/// read. Taking a free lock touches no other thread's memory, which is
/// what the one shared list cost (three threads taking one lock per task).
#[derive(Debug, Default)]
struct Buffer {
    events: Mutex<Vec<Event>>,
}

impl Buffer {
    /// Nothing panics with the lock held but an allocation failure: take
    /// the list back.
    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Inner {
    /// Frees the events now, also those of threads that are still alive
    /// (their thread-local entry keeps the empty buffer until they record
    /// into a new recorder).
    fn drop(&mut self) {
        for buffer in lock(&self.buffers).drain(..) {
            drop(std::mem::take(&mut *buffer.lock()));
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
        // Relaxed: the id only has to be unique.
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Recorder {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Relaxed),
                origin: Instant::now(),
                next_task: AtomicU64::new(0),
                buffers: Mutex::new(Vec::new()),
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
        let lane = current_thread_lane();
        #[cfg(feature = "tracing")]
        tracing::trace!(target: "future::trace", task, lane = %lane, "task submitted");
        self.push(task, Transition::Submitted, lane);
        task
    }

    /// Task number `task` (from [`submitted_number`](Self::submitted_number))
    /// started on the current thread, which runs it to its end: the handle
    /// records that end on this thread's lane, `Failed` if it is dropped
    /// without [`LocalRun::ended`] (the run unwound).
    pub fn started_here(&self, task: u64) -> LocalRun<'_> {
        let lane = current_thread_lane();
        #[cfg(feature = "tracing")]
        let span = Some(task_span(task, &lane));
        self.push(task, Transition::Started, lane);
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
    /// submitted, started, ended). The copy is one moment's: every buffer is
    /// locked while it is taken, so an event in it has every event that
    /// happened before it in it too (a task's start is never without its
    /// submission).
    pub fn events(&self) -> Vec<Event> {
        let buffers = lock(&self.inner.buffers);
        // Every buffer locked at once; no thread holds one buffer's lock
        // while it takes another's, so this cannot deadlock.
        let guards: Vec<_> = buffers.iter().map(|b| b.lock()).collect();
        merge(guards.iter().map(|events| events.as_slice()).collect())
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

    fn push(&self, task: u64, transition: Transition, lane: Arc<str>) {
        let event = Event {
            task,
            transition,
            lane,
            at: self.inner.origin.elapsed(),
        };
        let mut event = Some(event);
        // Into this thread's buffer, found in its thread-local list...
        let _ = BUFFERS.try_with(|local| {
            if let Ok(mut local) = local.try_borrow_mut() {
                let buffer = local.buffer_for(&self.inner);
                buffer.lock().extend(event.take());
            }
        });
        // ...or, when that list is gone (a task ended by a thread-local's
        // destructor as its thread exits), into a buffer of its own.
        if let Some(event) = event {
            let buffer = Arc::new(Buffer::default());
            buffer.lock().push(event);
            lock(&self.inner.buffers).push(buffer);
        }
    }
}

/// A thread's buffers: one per recorder it recorded into.
#[derive(Default)]
struct ThreadBuffers {
    /// (recorder id, its buffer for this thread). Usually one entry.
    entries: Vec<(u64, Arc<Buffer>)>,
}

thread_local! {
    static BUFFERS: RefCell<ThreadBuffers> = RefCell::default();
}

impl ThreadBuffers {
    /// This thread's buffer in `recorder`, registered there the first time.
    fn buffer_for(&mut self, recorder: &Inner) -> &Buffer {
        let found = self.entries.iter().position(|(id, _)| *id == recorder.id);
        let i = match found {
            Some(i) => i,
            None => self.register(recorder),
        };
        &self.entries[i].1
    }

    fn register(&mut self, recorder: &Inner) -> usize {
        // A buffer only this thread still holds belongs to a recorder that
        // is gone: forget it.
        self.entries.retain(|(_, b)| Arc::strong_count(b) > 1);
        let buffer = Arc::new(Buffer::default());
        lock(&recorder.buffers).push(Arc::clone(&buffer));
        self.entries.push((recorder.id, buffer));
        self.entries.len() - 1
    }
}

/// The lock of the list of buffers. Nothing panics with it held but an
/// allocation failure: take the list back.
fn lock(buffers: &Mutex<Vec<Arc<Buffer>>>) -> MutexGuard<'_, Vec<Arc<Buffer>>> {
    buffers.lock().unwrap_or_else(|p| p.into_inner())
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
    let key = |e: &Event, thread: usize| Reverse((e.at, step(e.transition), thread));
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
fn step(transition: Transition) -> u8 {
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
        self.recorder
            .push(self.task, Transition::Started, lane.clone());
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
        self.recorder.ended(self.task, ok, lane);
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
        self.recorder.ended(self.task, ok, current_thread_lane());
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
    /// Records a task's end on `lane`.
    fn ended(&self, task: u64, ok: bool, lane: Arc<str>) {
        let transition = if ok {
            Transition::Finished
        } else {
            Transition::Failed
        };
        #[cfg(feature = "tracing")]
        tracing::trace!(target: "future::trace", task, "task {}", transition.name());
        self.push(task, transition, lane);
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
