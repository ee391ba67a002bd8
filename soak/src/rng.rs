//! A tiny seeded generator (SplitMix64), so a soak run is repeatable from its
//! seed: the same seed makes the same choices (the interleaving of threads is
//! up to the machine, which is the point of a soak).

/// SplitMix64: one 64-bit state, good enough to pick operations.
pub struct Rng(u64);

impl Rng {
    /// A generator for one round of one run: mixing the round into the seed
    /// lets `--seed S --round R` replay a single round's choices.
    pub fn for_round(seed: u64, round: u64) -> Self {
        let mut rng = Rng(seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True once in `n` draws on average.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    /// A fresh generator for a worker thread of this round.
    pub fn split(&mut self) -> Rng {
        Rng(self.next())
    }
}
