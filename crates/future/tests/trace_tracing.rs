//! The `tracing` feature: each recorded transition is also emitted through
//! the `tracing` crate (a span per run, an event per submission and end).
//! Run with `cargo test -p future --features tracing --test trace_tracing`
//! (the test needs the feature; Cargo.toml's `required-features`).

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use future::trace::Recorder;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Counts what reaches it: span names opened and closed, events. The
/// subscriber is a handle on it, so the test can read it afterwards.
#[derive(Clone, Default)]
struct Handle(Arc<Counting>);

#[derive(Default)]
struct Counting {
    next: AtomicU64,
    opened: Mutex<Vec<String>>,
    closed: AtomicU64,
    events: AtomicU64,
}

impl Subscriber for Handle {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.0
            .opened
            .lock()
            .unwrap()
            .push(span.metadata().name().to_string());
        Id::from_u64(self.0.next.fetch_add(1, SeqCst) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {
        self.0.events.fetch_add(1, SeqCst);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
    fn try_close(&self, _: Id) -> bool {
        self.0.closed.fetch_add(1, SeqCst);
        true
    }
}

#[test]
fn every_run_is_a_span_and_every_submission_and_end_an_event() {
    let handle = Handle::default();
    let counting = handle.0.clone();
    tracing::subscriber::with_default(handle, || {
        let recorder = Recorder::new();
        for ok in [true, false, true] {
            let mut t = recorder.submitted();
            t.started_here();
            t.ended(ok);
        }
    });
    assert_eq!(*counting.opened.lock().unwrap(), ["task", "task", "task"]);
    assert_eq!(
        counting.closed.load(SeqCst),
        3,
        "each span ends with its task"
    );
    assert_eq!(counting.events.load(SeqCst), 6, "3 submissions, 3 ends");
}
