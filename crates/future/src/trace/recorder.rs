//! [`Recorder`]: the shared, append-only list of transitions.

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
/// (every clone appends to the same list); give a clone to each executor
/// whose schedule you want in the same picture.
#[derive(Clone, Debug)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    origin: Instant,
    next_task: AtomicU64,
    events: Mutex<Vec<Event>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder; its clock starts now.
    pub fn new() -> Self {
        Recorder {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                next_task: AtomicU64::new(0),
                events: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Records that a task was submitted, from the current thread, and
    /// returns the handle its executor records the rest of its life with.
    pub fn submitted(&self) -> TaskTrace {
        // Relaxed: the number only has to be unique; the events' order is
        // the list's, under its lock.
        let task = self.inner.next_task.fetch_add(1, Relaxed);
        let lane = current_thread_lane();
        #[cfg(feature = "tracing")]
        tracing::trace!(target: "future::trace", task, lane = %lane, "task submitted");
        self.push(task, Transition::Submitted, lane);
        TaskTrace {
            recorder: self.clone(),
            task,
            lane: None,
            #[cfg(feature = "tracing")]
            span: None,
        }
    }

    /// A copy of every event recorded so far, in the order recorded.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
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
        let at = self.inner.origin.elapsed();
        self.lock().push(Event {
            task,
            transition,
            lane,
            at,
        });
    }

    /// The list survives a panic while it was held (nothing here panics
    /// with it held but an allocation failure): take it back.
    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.inner.events.lock().unwrap_or_else(|p| p.into_inner())
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
            // Not entered: the task may end on another thread (a process
            // pool's dispatcher); the span's life is the task's run.
            self.span = Some(tracing::info_span!(
                target: "future::trace",
                "task",
                task = self.task,
                lane = %lane
            ));
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
        let transition = if ok {
            Transition::Finished
        } else {
            Transition::Failed
        };
        #[cfg(feature = "tracing")]
        {
            tracing::trace!(target: "future::trace", task = self.task, "task {}", transition.name());
            // Closes the span: it ends when the task does.
            drop(self.span.take());
        }
        self.recorder.push(self.task, transition, lane);
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
