//! The runs in a list of events: each task's start paired with its end,
//! and the lanes in order of first appearance. Shared by both writers.

use std::collections::HashMap;
use std::time::Duration;

use super::recorder::{Event, Transition};

/// One task's run on one lane.
pub(super) struct Run {
    pub task: u64,
    pub lane: usize,
    pub start: Duration,
    /// `None`: still running when the events were taken.
    pub end: Option<(Duration, Transition)>,
    /// When it was submitted, if that was recorded.
    pub submitted: Option<Duration>,
}

/// The lanes (workers first, then submitting threads, each in order of
/// first appearance) and the runs, in order of start.
pub(super) struct Schedule {
    pub lanes: Vec<String>,
    pub runs: Vec<Run>,
    /// Submissions: (task, lane, when).
    pub submissions: Vec<(u64, usize, Duration)>,
    /// The time of the last event.
    pub span: Duration,
}

impl Schedule {
    pub fn of(events: &[Event]) -> Schedule {
        let mut lanes = Lanes::default();
        // Workers get the first lanes, so they sit together at the top.
        for e in events
            .iter()
            .filter(|e| e.transition == Transition::Started)
        {
            lanes.index(&e.lane);
        }
        let mut schedule = Schedule {
            lanes: Vec::new(),
            runs: Vec::new(),
            submissions: Vec::new(),
            span: events.iter().map(|e| e.at).max().unwrap_or_default(),
        };
        let mut submitted_at = HashMap::new();
        let mut running: HashMap<u64, usize> = HashMap::new();
        let mut in_flight = InFlight::default();
        for e in events {
            match e.transition {
                Transition::Submitted => {
                    submitted_at.insert(e.task, e.at);
                    schedule
                        .submissions
                        .push((e.task, lanes.index(&e.lane), e.at));
                }
                Transition::Started => {
                    running.insert(e.task, schedule.runs.len());
                    schedule.runs.push(Run {
                        task: e.task,
                        lane: lanes.index(&e.lane),
                        start: e.at,
                        end: None,
                        submitted: submitted_at.get(&e.task).copied(),
                    });
                }
                Transition::Finished | Transition::Failed => match running.remove(&e.task) {
                    Some(i) => schedule.runs[i].end = Some((e.at, e.transition)),
                    // No start seen (a Celery client sees only the submission
                    // and the result; a task that could not be sent): drawn
                    // from its submission to its end, "in flight".
                    None => {
                        let start = submitted_at.get(&e.task).copied().unwrap_or(e.at);
                        let slot = in_flight.slot(&e.lane, start, e.at);
                        schedule.runs.push(Run {
                            task: e.task,
                            lane: lanes.index(&format!("{} {slot}", e.lane)),
                            start,
                            end: Some((e.at, e.transition)),
                            submitted: Some(start),
                        });
                    }
                },
            }
        }
        schedule.lanes = lanes.names;
        schedule.one_at_a_time();
        schedule
    }

    /// A lane is one thread or one process, which runs one task at a
    /// time: a run recorded as started before the previous run on its lane
    /// ended (a process pool hands a worker its next task early) is drawn
    /// from that end.
    fn one_at_a_time(&mut self) {
        let mut free_at: HashMap<usize, Duration> = HashMap::new();
        for run in &mut self.runs {
            if let Some(&free) = free_at.get(&run.lane) {
                run.start = run.start.max(free);
            }
            if let Some((end, _)) = run.end {
                free_at.insert(run.lane, end.max(run.start));
            }
        }
    }
}

/// Sub-lanes for runs whose start was not seen: several such tasks are in
/// flight at once, so each goes to the first sub-lane free since its
/// submission (greedy interval colouring; ends arrive in time order).
#[derive(Default)]
struct InFlight {
    /// Per lane name: when each of its sub-lanes is free again.
    free_at: HashMap<String, Vec<Duration>>,
}

impl InFlight {
    fn slot(&mut self, lane: &str, start: Duration, end: Duration) -> usize {
        let slots = self.free_at.entry(lane.to_string()).or_default();
        let i = match slots.iter().position(|&free| free <= start) {
            Some(i) => i,
            None => {
                slots.push(Duration::ZERO);
                slots.len() - 1
            }
        };
        slots[i] = end;
        i + 1
    }
}

#[derive(Default)]
struct Lanes {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Lanes {
    fn index(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }
}
