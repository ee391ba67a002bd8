//! CPU time and thread states, for benches of thread pools (included with `#[path]` like
//! `harness.rs`; needs the `libc` dev-dependency).
//!
//! * [`CpuMeters`]: process CPU time (every thread: the caller, the workers, their spinning)
//!   per operation, beside criterion's wall time, written as side figures `<who>/cpu`.
//! * [`wait_until_others_sleep`]: blocks until every other thread of the process is asleep
//!   in the kernel (state `S` in `/proc/self/task/*/stat`), i.e. every pool is parked, not
//!   spinning or yielding.
#![allow(dead_code)]

use std::cell::RefCell;
use std::fs;
use std::time::{Duration, Instant};

fn timespec_to_duration(ts: libc::timespec) -> Duration {
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids used here always exist on Linux.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    timespec_to_duration(ts)
}

/// CPU time used so far by every thread of this process.
pub fn process_cpu() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time used so far by the calling thread.
pub fn thread_cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time per operation of each function of a group.
#[derive(Default)]
pub struct CpuMeters {
    /// (who, CPU time, operations), in the order first seen.
    totals: RefCell<Vec<(String, Duration, u64)>>,
}

impl CpuMeters {
    /// Adds `cpu` spent on `ops` operations to `who`.
    pub fn add(&self, who: &str, cpu: Duration, ops: u64) {
        let mut totals = self.totals.borrow_mut();
        match totals.iter_mut().find(|(w, _, _)| w == who) {
            Some((_, c, n)) => {
                *c += cpu;
                *n += ops;
            }
            None => totals.push((who.to_string(), cpu, ops)),
        }
    }

    /// Runs `op` `iters` times back to back; returns the wall time and adds the process CPU
    /// time to `who`.
    pub fn back_to_back(&self, who: &str, iters: u64, mut op: impl FnMut()) -> Duration {
        let cpu = process_cpu();
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        let wall = start.elapsed();
        self.add(who, process_cpu().saturating_sub(cpu), iters);
        wall
    }

    /// Runs `op` `iters` times, each after every other thread is asleep; returns the wall
    /// time of the operations only. The CPU time counts everything the operation caused
    /// (including the workers' spin before they park again), but not the caller's looks at
    /// `/proc`.
    pub fn after_quiet(&self, who: &str, iters: u64, mut op: impl FnMut()) -> Duration {
        let cpu = process_cpu();
        let mut waiting_cpu = Duration::ZERO;
        let mut wall = Duration::ZERO;
        for _ in 0..iters {
            let before_wait = thread_cpu();
            wait_until_others_sleep(Duration::from_millis(50));
            waiting_cpu += thread_cpu().saturating_sub(before_wait);
            let start = Instant::now();
            op();
            wall += start.elapsed();
        }
        // The last operation's after-spin is not waited for: one in `iters`, noise.
        let used = process_cpu()
            .saturating_sub(cpu)
            .saturating_sub(waiting_cpu);
        self.add(who, used, iters);
        wall
    }

    /// Writes `<who>/cpu` side figures (nanoseconds per operation) for group `op`.
    pub fn record(&self, op: &str) {
        for (who, cpu, n) in self.totals.borrow().iter() {
            if *n > 0 {
                let ns = cpu.as_secs_f64() * 1e9 / *n as f64;
                crate::harness::side_figure(op, &format!("{who}/cpu"), ns, "ns");
            }
        }
    }
}

/// The state letter of each other thread of this process (`R` running, `S` sleeping ...).
fn other_thread_states() -> Vec<u8> {
    let me = fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|e| Some(e.file_name().to_string_lossy().into_owned()) != me)
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        // The state follows the command name, which is in parentheses and may hold spaces.
        .filter_map(|stat| {
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.trim_start().bytes().next()
        })
        .collect()
}

/// Sleeps in 100 us steps until no other thread of this process is running (all asleep in
/// the kernel: every pool parked), at most `limit`. Returns whether they all slept.
pub fn wait_until_others_sleep(limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if other_thread_states().iter().all(|&s| s != b'R') {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}
