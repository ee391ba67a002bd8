//! `async-jobs`: render flags on a process pool (or thread pool) from an
//! async event loop that keeps printing progress. See the library docs.

use std::process::ExitCode;

use async_jobs::cli::{Args, ExecutorKind};
use async_jobs::supervisor::supervise;
use executor::{Executor, ProcessPoolExecutor, ThreadPoolExecutor};

fn main() -> ExitCode {
    // First, while the program is single-threaded: every process pool worker
    // is forked from this fork server, never from a process with threads.
    process_pool::start_fork_server();
    let args = Args::try_parse_from_os(std::env::args_os()).unwrap_or_else(|e| {
        demo_cli::exit_with_usage(e, &mut <Args as clap::CommandFactory>::command())
    });
    let workers = usize::from(args.workers);
    // The one place that names a pool: from here on the program is generic
    // over the `Executor` trait.
    match args.executor {
        ExecutorKind::Procs => match ProcessPoolExecutor::new(workers) {
            Ok(pool) => run(&pool, &args),
            Err(e) => {
                eprintln!("async-jobs: cannot start the process pool: {e}");
                ExitCode::FAILURE
            }
        },
        ExecutorKind::Threads => run(&ThreadPoolExecutor::new(workers), &args),
    }
}

/// Runs the jobs on `executor` from a single-threaded event loop.
fn run(executor: &impl Executor, args: &Args) -> ExitCode {
    // One thread, one event loop: asyncio's model.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("async-jobs: cannot start the event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pool_name = args.executor.describe(usize::from(args.workers));
    let mut stdout = std::io::stdout().lock();
    let run = supervise(
        executor,
        &pool_name,
        args.jobs(),
        args.tick(),
        args.verbose,
        &mut stdout,
    );
    match runtime.block_on(run) {
        Ok(counts) if counts.errors == 0 => ExitCode::SUCCESS,
        // Like flags2: failed jobs are reported, and the run still succeeds
        // when they were asked for.
        Ok(_) if !args.fail.is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("async-jobs: error: {e}");
            ExitCode::FAILURE
        }
    }
}
