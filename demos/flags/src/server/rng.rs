//! A tiny deterministic random number generator (SplitMix64, Steele, Lea and
//! Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014).
//!
//! Good enough to draw flag colours and noise, delays and error rolls; not for
//! anything secret. Deterministic seeds make the generated flags the same in
//! every run, so a download can be compared byte for byte with the server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A sequential generator, one per flag image.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// A number in `0..n` (`n > 0`; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A generator shared by all connection threads without a lock: each draw
/// takes the next counter value and mixes it (SplitMix64 is a counter-based
/// generator, so this is the same sequence a single thread would see).
#[derive(Debug)]
pub struct SharedRng(AtomicU64);

impl SharedRng {
    /// Seeded from the clock: every server run rolls differently.
    pub fn from_clock() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        SharedRng(AtomicU64::new(mix(nanos)))
    }

    /// A number in `[0, 1)`.
    pub fn unit(&self) -> f64 {
        // Relaxed: only the uniqueness of the counter values matters.
        let z = self
            .0
            .fetch_add(GOLDEN, Ordering::Relaxed)
            .wrapping_add(GOLDEN);
        (mix(z) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_and_units_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], xs[1]);
        let shared = SharedRng::from_clock();
        let mut sum = 0.0;
        for _ in 0..1000 {
            let u = shared.unit();
            assert!((0.0..1.0).contains(&u));
            sum += u;
        }
        assert!(
            (400.0..600.0).contains(&sum),
            "mean near 0.5, got {}",
            sum / 1000.0
        );
    }
}
