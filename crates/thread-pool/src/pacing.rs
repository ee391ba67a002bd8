//! How long a searching worker waits before it looks at an empty queue
//! again: short while a caller waits for each result, longer while
//! submitters stream tasks faster than they can be waited for.
//!
//! ## Why not always look again at once
//!
//! A worker that drains the queue faster than a submitter fills it ends up
//! *chasing* the submitter: it finds the queue empty, looks again a few
//! nanoseconds later, takes the one task just pushed, finds the queue empty
//! again. Every look reads the queue's tail and the slot the submitter is
//! about to write, so every push has to take those cache lines back from
//! the worker's core before it can write them (the tail is a CAS, which
//! waits for the line). Measured on the 200k-task benchmark (2 cores), a
//! submit cost 63 ns with the workers held at a barrier and 150 ns with one
//! worker chasing: the chasing worker, not the work, set the pace.
//!
//! If the worker instead waits a little before its second look, the
//! submitter pushes a batch undisturbed, and the worker then takes the
//! batch, task after task, from lines the submitter has already left.
//!
//! ## The rule
//!
//! After finding the queue empty, the worker waits `gap` pause hints
//! (`std::hint::spin_loop`) before its second look (later looks follow the
//! usual short back-off in `worker.rs`). When a look after such a spin
//! finds a task, the worker counts what it found, the task plus those still
//! queued, and adjusts `gap` (a look after a park does not count: that wait
//! was not the gap):
//!
//! * **a stream** (at least 2 tasks, and at least one per
//!   [`PAUSES_PER_TASK`] pause hints waited): tasks arrive faster than the
//!   worker looks, so doubling the gap (up to [`MAX_GAP`]) makes the batches
//!   bigger and the chase rarer;
//! * **anything less** (one task: a caller waiting for each result; or a few
//!   tasks over a long wait: `map` refilling its window as results are taken)
//!   halves the gap (down to [`MIN_GAP`]), because there the wait is latency
//!   that somebody is blocked on.
//!
//! So a round trip (submit, wait, submit, ...) keeps the gap at one pause
//! hint, and a burst of submits grows it in a few looks. After a burst the
//! gap shrinks again by half per round trip. The rate test is what keeps
//! `map` fast: its window caps the batch, so a long wait never finds "one
//! task per four pause hints" there.
//!
//! A pause hint lasts from a few to about 150 cycles depending on the CPU
//! (25 ns on this project's benchmark machine, so [`MAX_GAP`] is 6.4 us
//! there). The policy only compares pause hints with tasks, so it needs no
//! clock.

/// The shortest wait before the second look: one pause hint.
pub(crate) const MIN_GAP: u32 = 1;
/// The longest wait before the second look, in pause hints.
pub(crate) const MAX_GAP: u32 = 256;
/// A batch is a stream if it brought at least one task per this many pause
/// hints waited.
pub(crate) const PAUSES_PER_TASK: usize = 4;

/// One worker's current wait before its second look. See the module docs.
#[derive(Debug)]
pub(crate) struct Pacing {
    gap: u32,
}

impl Pacing {
    pub(crate) fn new() -> Self {
        Pacing { gap: MIN_GAP }
    }

    /// The wait before the second look at an empty queue, in pause hints.
    pub(crate) fn gap(&self) -> u32 {
        self.gap
    }

    /// A look after a wait found `found` tasks (the one taken, plus those
    /// still queued): lengthen the gap for a stream, shorten it otherwise.
    pub(crate) fn found(&mut self, found: usize) {
        let stream = found >= 2 && found * PAUSES_PER_TASK >= self.gap as usize;
        self.gap = if stream {
            (self.gap * 2).min(MAX_GAP)
        } else {
            (self.gap / 2).max(MIN_GAP)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_waiting_for_each_result_keeps_the_gap_at_its_minimum() {
        let mut pacing = Pacing::new();
        for _ in 0..100 {
            pacing.found(1);
            assert_eq!(pacing.gap(), MIN_GAP);
        }
    }

    #[test]
    fn a_stream_doubles_the_gap_up_to_the_maximum() {
        let mut pacing = Pacing::new();
        let mut gaps = Vec::new();
        for _ in 0..12 {
            // A fast stream: one task per pause hint waited.
            pacing.found((pacing.gap() as usize).max(2));
            gaps.push(pacing.gap());
        }
        assert_eq!(&gaps[..9], &[2, 4, 8, 16, 32, 64, 128, 256, 256]);
        assert!(gaps.iter().all(|&g| g <= MAX_GAP));
    }

    #[test]
    fn a_capped_batch_over_a_long_wait_is_not_a_stream() {
        // `map` with a window of 8: at most 8 tasks, whatever the wait.
        let mut pacing = Pacing::new();
        for _ in 0..50 {
            pacing.found(8);
        }
        // 8 tasks count as a stream up to a gap of 8 * PAUSES_PER_TASK; one
        // doubling past it is undone by the next look.
        let bound = (8 * PAUSES_PER_TASK as u32) * 2;
        assert!(pacing.gap() <= bound, "gap {}", pacing.gap());
        for _ in 0..20 {
            pacing.found(8);
            assert!(pacing.gap() <= bound, "gap {}", pacing.gap());
        }
    }

    #[test]
    fn the_gap_shrinks_back_after_a_burst() {
        let mut pacing = Pacing::new();
        while pacing.gap() < MAX_GAP {
            pacing.found(MAX_GAP as usize);
        }
        let mut looks = 0;
        while pacing.gap() > MIN_GAP {
            pacing.found(1);
            looks += 1;
        }
        // One halving per round trip: log2(MAX_GAP) of them.
        assert_eq!(looks, MAX_GAP.trailing_zeros());
    }
}
