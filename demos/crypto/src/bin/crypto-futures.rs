//! `crypto-futures`: the twin of the book's `arcfour_futures.py`. Runs a dozen
//! AES-CTR jobs on an executor and prints each as it completes, then the time:
//!
//! ```text
//! $ crypto-futures --executor procs --workers 2
//! 294912.0 KB
//! ...
//! 2 workers, elapsed time: 1.04s
//! ```
//!
//! All the logic is in `crypto::cli::run_futures`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // First, while the program is single-threaded: every process pool worker is
    // forked from this fork server, never from a process with other threads.
    process_pool::start_fork_server();
    // Bad arguments: the error and the usage on stderr, exit status 2.
    let args = crypto::cli::parse_futures_args(std::env::args_os()).unwrap_or_else(|e| {
        demo_cli::exit_with_usage(
            e,
            &mut <crypto::cli::FuturesArgs as clap::CommandFactory>::command(),
        )
    });
    match crypto::cli::run_futures(&args, &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crypto-futures: error: {e}");
            ExitCode::FAILURE
        }
    }
}
