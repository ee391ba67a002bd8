//! [`Backoff`]: how a searching worker waits between looks at an empty
//! queue before it parks.
//!
//! An empty queue is often refilled within microseconds (a caller that waits
//! for one result and submits the next). Parking and being woken costs two
//! context switches and a futex call on each side, so a worker first looks
//! again for a short while: a few rounds of `spin_loop` hints (the first
//! round as long as the pacing gap of `pacing.rs`, then 2, 4, 8 and 16 per
//! round), then some `yield_now` rounds, and only then parks (`sleep.rs`).
//! The whole spin lasts tens of microseconds; an idle pool then costs
//! nothing. This is speed only: a worker that parked at once would miss no
//! task (the park protocol's last look sees it), it would just pay for a
//! wake-up more often.

use std::hint::spin_loop;
use std::thread;

/// Rounds of `spin_loop` hints (the pacing gap, 2, 4, 8, then 16 per
/// round) before yielding. The queue is looked at between rounds, so a
/// round is kept short (16 hints are well under a microsecond) to notice a
/// new task quickly.
pub(crate) const SPIN_ROUNDS: u32 = 12;
/// The most `spin_loop` hints in one round, as a power of two.
const MAX_SPIN_SHIFT: u32 = 4;
/// Rounds of `yield_now` before parking.
pub(crate) const YIELD_ROUNDS: u32 = 64;

/// What one [`Backoff::snooze`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Snooze {
    /// Spun: the wait was measured in pause hints (the pacing learns from
    /// the look that follows).
    Spun,
    /// Gave the CPU away once.
    Yielded,
    /// The back-off is over: park.
    Park,
}

/// One search's position in the spin-yield-park sequence. See the module
/// docs.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    round: u32,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff { round: 0 }
    }

    /// True before the first wait of this search.
    pub(crate) fn is_fresh(&self) -> bool {
        self.round == 0
    }

    /// Skip the spinning: the next snooze says park.
    pub(crate) fn park_next(&mut self) {
        self.round = SPIN_ROUNDS + YIELD_ROUNDS;
    }

    /// Waits once before the next look, or says it is time to park. The
    /// first spin round lasts `first_gap` pause hints (the pacing gap).
    pub(crate) fn snooze(&mut self, first_gap: u32) -> Snooze {
        if self.round < SPIN_ROUNDS {
            let pauses = if self.round == 0 {
                first_gap
            } else {
                1 << self.round.min(MAX_SPIN_SHIFT)
            };
            for _ in 0..pauses {
                spin_loop();
            }
            self.round += 1;
            Snooze::Spun
        } else if self.round < SPIN_ROUNDS + YIELD_ROUNDS {
            thread::yield_now();
            self.round += 1;
            Snooze::Yielded
        } else {
            Snooze::Park
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(mut backoff: Backoff) -> Vec<Snooze> {
        let mut steps = Vec::new();
        loop {
            let step = backoff.snooze(1);
            steps.push(step);
            if step == Snooze::Park {
                return steps;
            }
        }
    }

    #[test]
    fn spins_then_yields_then_parks() {
        let steps = sequence(Backoff::new());
        let spun = steps.iter().filter(|s| **s == Snooze::Spun).count();
        let yielded = steps.iter().filter(|s| **s == Snooze::Yielded).count();
        assert_eq!(spun, SPIN_ROUNDS as usize);
        assert_eq!(yielded, YIELD_ROUNDS as usize);
        assert_eq!(steps.len(), (SPIN_ROUNDS + YIELD_ROUNDS + 1) as usize);
        // In that order.
        assert!(steps.windows(2).all(|w| w[0] as u8 <= w[1] as u8));
    }

    #[test]
    fn park_next_skips_the_spinning_and_parking_repeats() {
        let mut backoff = Backoff::new();
        assert!(backoff.is_fresh());
        backoff.park_next();
        assert!(!backoff.is_fresh());
        assert_eq!(backoff.snooze(1), Snooze::Park);
        assert_eq!(backoff.snooze(1), Snooze::Park);
    }
}
