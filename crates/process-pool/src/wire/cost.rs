//! The cost of one task, measured in the worker around it, and the report
//! the pool builds from it (`Future::report`).
//!
//! The worker reads the monotonic clock when it begins a task
//! ([`Meter::start`]) and when its result is ready to send
//! ([`Meter::finish`]), and sends both in the task's `RESULT` frame, right
//! after the outcome tag:
//!
//! ```text
//! start ns u64 | end ns u64 | measured u8 | user CPU ns u64 | system CPU ns u64 | peak RSS bytes u64
//! ```
//!
//! The clock is `CLOCK_MONOTONIC`, which is one clock for every process on
//! the machine (the workers are forked from ours, in our time namespace),
//! so the pool subtracts the instant `submit` read from the worker's start
//! to get the queue wait. Two clock reads cost about 0.1 µs (vDSO).
//!
//! CPU times and the peak RSS come from `getrusage(RUSAGE_SELF)`, read at
//! both ends of the task, only when the task's id carries [`MEASURE_BIT`]
//! (the pool sets it under `Builder::report_usage` or
//! `max_memory_per_child`): the two calls cost about 4 µs, as much as a
//! tiny task's whole trip through the pool. Otherwise `measured` is 0 and
//! the three numbers are zeros. The peak RSS is `ru_maxrss`: the worker's
//! peak so far, which is what `max_memory_per_child` compares (as billiard
//! does).

use std::time::Duration;

use future::TaskReport;

use crate::wire::frame::{BodyReader, FrameError};

/// Bytes of a [`Cost`] in a `RESULT` frame.
pub(crate) const COST_LEN: usize = 41;

/// Bit 62 of a `TASK` frame's id: measure this task's CPU times and peak
/// RSS (ids are counters and never get there; bit 63 is `fd_passing`'s).
pub(crate) const MEASURE_BIT: u64 = 1 << 62;

/// What one task cost its worker (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cost {
    pub start_ns: u64,
    pub end_ns: u64,
    /// CPU times and peak RSS, if they were measured.
    pub usage: Option<Usage>,
}

/// CPU times (this task's, as a difference) and the peak RSS (the
/// worker's, so far).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub user_ns: u64,
    pub system_ns: u64,
    pub peak_rss: u64,
}

/// The readings taken when a task began.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Meter {
    start_ns: u64,
    usage: Option<Usage>,
}

impl Meter {
    /// Reads the clock now, at the start of a task, and the CPU times if
    /// `measure`.
    pub fn start(measure: bool) -> Meter {
        Meter {
            usage: measure.then(Usage::now),
            start_ns: monotonic_nanos(),
        }
    }

    /// The cost since [`Meter::start`].
    pub fn finish(&self) -> Cost {
        let end_ns = monotonic_nanos();
        let usage = self.usage.map(|before| {
            let now = Usage::now();
            Usage {
                user_ns: now.user_ns.saturating_sub(before.user_ns),
                system_ns: now.system_ns.saturating_sub(before.system_ns),
                peak_rss: now.peak_rss,
            }
        });
        Cost {
            start_ns: self.start_ns,
            end_ns,
            usage,
        }
    }
}

impl Cost {
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.start_ns.to_le_bytes());
        out.extend_from_slice(&self.end_ns.to_le_bytes());
        out.push(self.usage.is_some() as u8);
        let u = self.usage.unwrap_or_default();
        for n in [u.user_ns, u.system_ns, u.peak_rss] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }

    pub fn read(body: &mut BodyReader<'_>) -> Result<Cost, FrameError> {
        let start_ns = body.u64()?;
        let end_ns = body.u64()?;
        let measured = body.u8()?;
        let usage = Usage {
            user_ns: body.u64()?,
            system_ns: body.u64()?,
            peak_rss: body.u64()?,
        };
        let usage = match measured {
            0 => None,
            1 => Some(usage),
            _ => return Err(FrameError::BadBody("unknown cost flag")),
        };
        Ok(Cost {
            start_ns,
            end_ns,
            usage,
        })
    }

    /// The run time, as the worker measured it.
    pub fn run_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// The report of a task that finished on worker `pid` as its
    /// `position`-th task, submitted at `enqueued_ns`.
    pub fn report(&self, pid: i32, position: u64, enqueued_ns: u64) -> TaskReport {
        let mut report = placed(pid, position);
        report.queued = Some(Duration::from_nanos(
            self.start_ns.saturating_sub(enqueued_ns),
        ));
        report.run_time = Some(Duration::from_nanos(self.run_ns()));
        if let Some(u) = self.usage {
            report.user_cpu = Some(Duration::from_nanos(u.user_ns));
            report.system_cpu = Some(Duration::from_nanos(u.system_ns));
            report.peak_rss_bytes = Some(u.peak_rss);
        }
        report
    }
}

/// A report that says only where the task was: a task that ended without
/// a measurement (its worker died or was killed) gets this, plus the cause.
pub(crate) fn placed(pid: i32, position: u64) -> TaskReport {
    let mut report = TaskReport::new();
    report.worker_pid = u32::try_from(pid).ok();
    report.position = (position > 0).then_some(position);
    report
}

/// `CLOCK_MONOTONIC` in nanoseconds.
pub(crate) fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the one we own;
    // CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

impl Usage {
    /// This process's CPU times and peak RSS, now.
    fn now() -> Usage {
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes one rusage into the one we own. It
        // cannot fail for RUSAGE_SELF and a valid pointer; were it to, the
        // zeros stand (a cost of nothing, never garbage).
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let nanos = |t: libc::timeval| {
            (t.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add((t.tv_usec as u64).saturating_mul(1000))
        };
        Usage {
            user_ns: nanos(ru.ru_utime),
            system_ns: nanos(ru.ru_stime),
            // Linux gives ru_maxrss in KiB.
            peak_rss: (ru.ru_maxrss as u64).saturating_mul(1024),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(cost: &Cost) -> Vec<u8> {
        let mut out = Vec::new();
        cost.write(&mut out);
        out
    }

    #[test]
    fn a_cost_reads_back_as_written_with_and_without_usage() {
        for usage in [
            None,
            Some(Usage {
                user_ns: 1,
                system_ns: 2,
                peak_rss: 3,
            }),
        ] {
            let cost = Cost {
                start_ns: 10,
                end_ns: 25,
                usage,
            };
            let bytes = encoded(&cost);
            assert_eq!(bytes.len(), COST_LEN);
            assert_eq!(Cost::read(&mut BodyReader::new(&bytes)), Ok(cost));
        }
    }

    /// Bytes from a worker are not trusted: a short block or an unknown
    /// flag is a frame error, never a panic; clocks that disagree give a
    /// zero duration, never an overflow.
    #[test]
    fn a_truncated_or_bad_cost_is_an_error_and_odd_clocks_saturate() {
        let bytes = encoded(&Cost::default());
        for cut in 0..COST_LEN {
            assert!(Cost::read(&mut BodyReader::new(&bytes[..cut])).is_err());
        }
        let mut bad = bytes.clone();
        bad[16] = 2;
        assert!(Cost::read(&mut BodyReader::new(&bad)).is_err());
        let backwards = Cost {
            start_ns: u64::MAX,
            end_ns: 0,
            usage: None,
        };
        let report = backwards.report(1, 1, u64::MAX);
        assert_eq!(report.run_time, Some(Duration::ZERO));
        assert_eq!(report.queued, Some(Duration::ZERO));
    }
}
