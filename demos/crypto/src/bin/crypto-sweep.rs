//! `crypto-sweep`: the book's Table 17-1 for sequential, thread-pool and
//! process-pool runs of the crypto jobs with 1..N workers. Prints a Markdown
//! table of median times and speedups, and writes `sweep.csv` and `speedup.svg`
//! into `--out`. Progress goes to stderr.
//!
//! All the logic is in `crypto::cli::run_sweep`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // First, while the program is single-threaded: every process pool worker is
    // forked from this fork server, never from a process with other threads.
    process_pool::start_fork_server();
    // Bad arguments: the error and the usage on stderr, exit status 2.
    let args = crypto::cli::parse_sweep_args(std::env::args_os()).unwrap_or_else(|e| {
        demo_cli::exit_with_usage(
            e,
            &mut <crypto::cli::SweepArgs as clap::CommandFactory>::command(),
        )
    });
    match crypto::cli::run_sweep(&args, &mut std::io::stdout().lock(), &mut std::io::stderr()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crypto-sweep: error: {e}");
            ExitCode::FAILURE
        }
    }
}
