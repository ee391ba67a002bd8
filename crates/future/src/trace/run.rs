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
    /// Tasks that failed without starting: (task, lane, when).
    pub failed_unstarted: Vec<(u64, usize, Duration)>,
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
            failed_unstarted: Vec::new(),
            span: events.iter().map(|e| e.at).max().unwrap_or_default(),
        };
        let mut submitted_at = HashMap::new();
        let mut running: HashMap<u64, usize> = HashMap::new();
        for e in events {
            let lane = lanes.index(&e.lane);
            match e.transition {
                Transition::Submitted => {
                    submitted_at.insert(e.task, e.at);
                    schedule.submissions.push((e.task, lane, e.at));
                }
                Transition::Started => {
                    running.insert(e.task, schedule.runs.len());
                    schedule.runs.push(Run {
                        task: e.task,
                        lane,
                        start: e.at,
                        end: None,
                        submitted: submitted_at.get(&e.task).copied(),
                    });
                }
                Transition::Finished | Transition::Failed => match running.remove(&e.task) {
                    Some(i) => schedule.runs[i].end = Some((e.at, e.transition)),
                    None => schedule.failed_unstarted.push((e.task, lane, e.at)),
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
