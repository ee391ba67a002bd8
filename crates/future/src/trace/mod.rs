//! A picture of the schedule: one event per task transition, written as a
//! Chrome trace-event file or an SVG timeline.
//!
//! An executor built with a [`Recorder`] records, for every task, when it
//! was submitted (and from which thread), when it started and on which
//! worker (a thread's name, a worker process's pid), and when it finished
//! or failed. Nothing is recorded, and nothing is paid beyond one test of
//! an `Option` per transition, when no recorder was given.
//!
//! * [`Recorder::chrome_json`] writes the
//!   [trace-event format](https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU)
//!   that Perfetto (<https://ui.perfetto.dev>) and `chrome://tracing` open:
//!   one `X` (complete) event per task run, one lane (`tid`) per worker,
//!   `M` (metadata) events naming the lanes, and an `i` (instant) event
//!   per submission on the submitting thread's lane.
//! * [`Recorder::svg`] draws the same runs as an SVG timeline, one lane per
//!   worker, with our own code (no plotting crate).
//! * With the crate's `tracing` feature, every transition is also emitted
//!   through the `tracing` crate: an event at submission, and a `task` span
//!   from start to end on the worker, for programs that already collect
//!   traces.

mod block;
mod chrome;
mod clock;
mod recorder;
mod run;
mod svg;

pub use recorder::{Event, LocalRun, Recorder, TaskTrace, Transition};
