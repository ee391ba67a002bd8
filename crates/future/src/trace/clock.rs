//! The recorder's clock: the CPU's time-stamp counter where it is a clock,
//! `Instant` elsewhere.
//!
//! Reading `Instant` (`clock_gettime` through the vDSO) costs a few tens of
//! nanoseconds; reading the TSC directly costs about 10 ns, and a task on a
//! thread pool is recorded three times. The TSC is a clock only where the
//! CPU says it ticks at a constant rate (`constant_tsc`) and does not stop
//! in deep sleep (`nonstop_tsc`), both read once from `/proc/cpuinfo`; the
//! kernel then uses the same counter for `CLOCK_MONOTONIC`, so it agrees
//! across cores. Anywhere else (another architecture, a CPU without both
//! flags, Miri, loom) the ticks are `Instant`'s nanoseconds.
//!
//! Ticks become nanoseconds only when the events are read: the rate is the
//! one measured between two (`Instant`, TSC) pairs, the first taken when
//! the process made its first recorder and the second at reading time, so
//! the longer a program has run, the finer the rate.
//!
//! A plain `rdtsc` is not ordered with the instructions around it (an
//! ordered read, `lfence; rdtsc`, costs twice as much here): a worker that
//! takes a task within nanoseconds of its submission may read a counter a
//! few nanoseconds below the submitter's. The recorder's reader puts such a
//! start back at its submission (`recorder.rs`, `in_life_order`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One recorder's clock: where its ticks count from, and in what unit.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    origin: Instant,
    /// The TSC when the recorder was made; `None`: the ticks are
    /// nanoseconds since `origin`.
    tsc_origin: Option<u64>,
}

impl Clock {
    /// The TSC where it is a clock, else `Instant`; starts now.
    pub(super) fn new() -> Clock {
        if tsc_is_a_clock() {
            calibration_start();
            Clock {
                origin: Instant::now(),
                tsc_origin: Some(tsc()),
            }
        } else {
            Clock::instant()
        }
    }

    /// Always `Instant` (for the tests of that path on a machine with a
    /// TSC clock).
    pub(super) fn instant() -> Clock {
        Clock {
            origin: Instant::now(),
            tsc_origin: None,
        }
    }

    /// Ticks since the recorder was made. Never above 2^62 in practice (146
    /// years of nanoseconds, 48 of a 3 GHz counter): the stamp keeps the
    /// top 62 bits.
    #[inline]
    pub(super) fn now(&self) -> u64 {
        match self.tsc_origin {
            Some(origin) => tsc().saturating_sub(origin),
            None => nanos(self.origin.elapsed()),
        }
    }

    /// The ticks of this moment, read in order with what follows (the
    /// reader's cut: no event it reads after this was stamped before it
    /// without being visible).
    pub(super) fn cut(&self) -> u64 {
        match self.tsc_origin {
            Some(origin) => ordered_tsc().saturating_sub(origin),
            None => nanos(self.origin.elapsed()),
        }
    }

    /// The scale that turns ticks into time: measured now, so only a read
    /// that turns ticks into time asks for it (a young process waits for
    /// its baseline, see [`Scale::measure`]).
    pub(super) fn scale(&self) -> Scale {
        match self.tsc_origin {
            Some(_) => Scale::measure(),
            None => Scale::Nanos,
        }
    }
}

/// How ticks become time.
#[derive(Clone, Copy, Debug)]
pub(super) enum Scale {
    /// The ticks are nanoseconds.
    Nanos,
    /// `nanos` nanoseconds passed in `ticks` ticks.
    Measured { nanos: u128, ticks: u128 },
}

impl Scale {
    /// The TSC's rate since the process's first recorder. A pair of reads
    /// less than 10 ms apart would give a rate off by up to a percent (each
    /// `Instant` read may be late by some hundred nanoseconds), so the
    /// first read of a young process waits until 10 ms have passed.
    fn measure() -> Scale {
        const BASELINE: Duration = Duration::from_millis(10);
        let (start, start_tsc) = calibration_start();
        let passed = start.elapsed();
        if passed < BASELINE {
            std::thread::sleep(BASELINE - passed);
        }
        let (now, now_tsc) = (Instant::now(), tsc());
        Scale::Measured {
            nanos: now.duration_since(start).as_nanos(),
            ticks: u128::from(now_tsc.saturating_sub(start_tsc).max(1)),
        }
    }

    pub(super) fn duration(self, ticks: u64) -> Duration {
        match self {
            Scale::Nanos => Duration::from_nanos(ticks),
            Scale::Measured { nanos, ticks: per } => {
                let ns = u128::from(ticks) * nanos / per;
                Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The (`Instant`, TSC) pair taken when the process made its first
/// recorder with a TSC clock.
fn calibration_start() -> (Instant, u64) {
    static START: OnceLock<(Instant, u64)> = OnceLock::new();
    *START.get_or_init(|| (Instant::now(), tsc()))
}

/// Whether the TSC is a clock here (the CPU says it is constant and
/// non-stop, and the kernel clocks by it): read once per process.
fn tsc_is_a_clock() -> bool {
    static IS_A_CLOCK: OnceLock<bool> = OnceLock::new();
    *IS_A_CLOCK.get_or_init(|| {
        cfg!(all(target_arch = "x86_64", not(miri), not(loom)))
            && std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| cpuinfo_says_so(&info))
            && kernel_clocks_by_the_tsc()
    })
}

/// The kernel's own clock (`CLOCK_MONOTONIC`, behind `Instant`) reads the
/// TSC too. A kernel that found the counter unstable (its clocksource
/// watchdog, some virtual machines) switches to another clocksource but
/// leaves the CPU flags as they were: only this file says it no longer
/// trusts the counter.
fn kernel_clocks_by_the_tsc() -> bool {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .is_ok_and(|name| name.trim() == "tsc")
}

/// Every CPU's `flags` line has both `constant_tsc` and `nonstop_tsc`.
fn cpuinfo_says_so(info: &str) -> bool {
    let mut flag_lines = info.lines().filter(|l| l.starts_with("flags")).peekable();
    flag_lines.peek().is_some()
        && flag_lines.all(|line| {
            let has = |name: &str| line.split_whitespace().any(|f| f == name);
            has("constant_tsc") && has("nonstop_tsc")
        })
}

/// The time-stamp counter.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[inline]
#[allow(unsafe_code)]
fn tsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86_64 CPU, reads a counter and
    // touches no memory; it is only used as a clock where `tsc_is_a_clock`
    // found the counter constant and non-stop.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// The time-stamp counter, read after every instruction before it.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[allow(unsafe_code)]
fn ordered_tsc() -> u64 {
    // SAFETY: `lfence` (SSE2, part of every x86_64 CPU) only waits for the
    // instructions before it; `rdtsc` as in `tsc` above.
    unsafe {
        std::arch::x86_64::_mm_lfence();
        let t = std::arch::x86_64::_rdtsc();
        // And before every instruction after it (Intel's recipe: the loads
        // of the read that follows come after this moment).
        std::arch::x86_64::_mm_lfence();
        t
    }
}

/// No TSC here: never called (`tsc_is_a_clock` is false).
#[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
fn tsc() -> u64 {
    0
}

#[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
fn ordered_tsc() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tsc_is_a_clock_only_when_every_cpu_has_both_flags() {
        let both = "flags\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n";
        let one = "flags\t: fpu tsc constant_tsc rdtscp\n";
        assert!(cpuinfo_says_so(&format!("processor : 0\n{both}")));
        assert!(cpuinfo_says_so(&format!("{both}{both}")));
        assert!(!cpuinfo_says_so(&format!("{both}{one}")));
        assert!(!cpuinfo_says_so("processor : 0\n"), "no flags at all");
        assert!(!cpuinfo_says_so("flags : nonstop_tsc_x constant_tsc\n"));
    }

    #[test]
    fn a_measured_scale_turns_ticks_into_nanoseconds() {
        let scale = Scale::Measured {
            nanos: 1_000,
            ticks: 3_000,
        };
        assert_eq!(scale.duration(3_000_000), Duration::from_millis(1));
        assert_eq!(Scale::Nanos.duration(5), Duration::from_nanos(5));
    }

    #[test]
    fn both_clocks_agree_with_instant() {
        for clock in [Clock::new(), Clock::instant()] {
            std::thread::sleep(Duration::from_millis(20));
            let scale = clock.scale();
            let ticks = clock.cut();
            let measured = scale.duration(ticks);
            let since_origin = clock.origin.elapsed();
            // The clock started before the sleep and was cut before
            // `since_origin` was read: between the two, give or take the
            // rate's error (well under 0.1%; no deadline here, two clocks
            // compared).
            assert!(
                measured >= Duration::from_millis(20),
                "{clock:?}: {measured:?}"
            );
            assert!(
                measured <= since_origin + since_origin / 1000,
                "{clock:?}: {measured:?} vs {since_origin:?}"
            );
        }
    }
}
