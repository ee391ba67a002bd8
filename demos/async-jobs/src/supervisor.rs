//! The async loop: submit every job to the pool, then await them in the
//! order they complete while a timer prints progress.
//!
//! This is `flags2_asyncio_executor.py` turned around: there, asyncio does
//! the I/O and `loop.run_in_executor` takes the blocking part off the event
//! loop; here the jobs are CPU-bound, our pool runs them, and the event loop
//! (one thread) only waits. It never blocks: `as_completed_stream` wakes it
//! when a job is done, the timer when a progress line is due.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io::{self, Write};
use std::pin::Pin;
use std::time::{Duration, Instant};

use executor::Executor;
use future::{as_completed_stream, Future, FutureError, State};
use futures_core::Stream;

use crate::jobs::{render_flag, Job, Rendered};

/// What a run counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub rendered: usize,
    pub errors: usize,
    /// Progress lines printed while jobs were running.
    pub ticks: usize,
}

/// Runs every job on `executor` from an async loop, printing to `out`.
///
/// Any [`Executor`] will do: the loop only submits and awaits. `pool_name`
/// says what runs the jobs in the first line ("2 worker processes").
pub async fn supervise<E: Executor>(
    executor: &E,
    pool_name: &str,
    jobs: Vec<Job>,
    tick: Duration,
    verbose: bool,
    out: &mut impl Write,
) -> io::Result<Counts> {
    let start = Instant::now();
    let total = jobs.len();
    if let (Some(first), Some(last)) = (jobs.first(), jobs.last()) {
        writeln!(
            out,
            "Rendering {total} flags on {pool_name}: from {} to {}",
            first.cc, last.cc
        )?;
    }
    // Future -> country code, the book's `to_do_map` (futures hash by identity).
    let mut to_do_map = HashMap::new();
    let mut futures = Vec::with_capacity(total);
    for job in jobs {
        let cc = job.cc.clone();
        let future = executor
            .submit_fallible(render_flag, job)
            .map_err(io::Error::other)?;
        to_do_map.insert(future.clone(), cc);
        futures.push(future);
    }
    let mut done_iter = as_completed_stream(&futures);
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut counts = Counts::default();
    loop {
        tokio::select! {
            next = next_done(&mut done_iter) => {
                let Some(future) = next else { break };
                let cc = &to_do_map[&future];
                // Done already: the await returns at once, moving the value out.
                match future.await {
                    Ok(flag) => {
                        counts.rendered += 1;
                        if verbose {
                            writeln!(
                                out,
                                "{} rendered: {} px x {} passes, checksum {:016x}, {} ms in pid {}",
                                flag.cc, flag.pixels, flag.passes, flag.checksum, flag.millis, flag.pid
                            )?;
                        }
                    }
                    Err(error) => {
                        counts.errors += 1;
                        if verbose {
                            writeln!(out, "{cc} error: {}", describe_error(&error))?;
                        }
                    }
                }
            }
            _ = ticker.tick() => {
                counts.ticks += 1;
                progress(out, start, &futures)?;
            }
        }
    }
    progress(out, start, &futures)?;
    writeln!(out, "{}", "-".repeat(20))?;
    writeln!(out, "{} flags rendered.", counts.rendered)?;
    if counts.errors > 0 {
        writeln!(out, "{} errors.", counts.errors)?;
    }
    writeln!(
        out,
        "Elapsed time: {:.2}s (progress lines printed while waiting: {})",
        start.elapsed().as_secs_f64(),
        counts.ticks
    )?;
    Ok(counts)
}

/// The next future to complete (`StreamExt::next`, without a combinator crate).
async fn next_done<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

/// One progress line: how many are done, running on a worker, still
/// queued, read from the futures' states (no lock held across the count, so
/// the three may be a moment apart; they always add up).
fn progress(out: &mut impl Write, start: Instant, futures: &[Future<Rendered>]) -> io::Result<()> {
    let (mut done, mut running) = (0, 0);
    for state in futures.iter().map(Future::state) {
        match state {
            State::Running => running += 1,
            s if s.is_done() => done += 1,
            _ => {}
        }
    }
    let queued = futures.len() - done - running;
    writeln!(
        out,
        "[{:6.2}s] {done}/{} done, {running} running, {queued} queued",
        start.elapsed().as_secs_f64(),
        futures.len()
    )
}

/// A task error as the user should read it.
fn describe_error(error: &FutureError) -> String {
    match error {
        FutureError::Task(task) => task.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use executor::InlineExecutor;

    fn job(cc: &str, fail: bool) -> Job {
        Job {
            cc: cc.to_string(),
            width: 30,
            passes: 1,
            fail,
        }
    }

    /// The loop is written against the trait: the inline executor (not one
    /// of the two the program offers) runs it too, with the same report.
    #[test]
    fn any_executor_runs_the_loop() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let jobs = vec![job("BR", false), job("JP", true), job("NG", false)];
        let mut out = Vec::new();
        let counts = runtime
            .block_on(supervise(
                &InlineExecutor::new(),
                "this thread",
                jobs,
                Duration::from_secs(3600),
                true,
                &mut out,
            ))
            .unwrap();
        assert_eq!((counts.rendered, counts.errors), (2, 1));
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("Rendering 3 flags on this thread: from BR to NG\n"),
            "{out}"
        );
        for line in [
            "BR rendered: ",
            "NG rendered: ",
            "JP error: ",
            "2 flags rendered.",
            "1 errors.",
        ] {
            assert!(out.contains(line), "{line:?} missing from {out}");
        }
    }
}
