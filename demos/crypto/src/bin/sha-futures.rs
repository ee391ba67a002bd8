//! `sha-futures`: the twin of the book's `sha_futures.py` (Example A-9). Runs a
//! dozen SHA-256 jobs on an executor and prints each job's hex digest as it
//! completes, then the time:
//!
//! ```text
//! $ sha-futures --executor procs --workers 2
//! 0b4bd8d3c4f9d6e2...
//! ...
//! 2 workers, elapsed time: 0.78s
//! ```
//!
//! All the logic is in `crypto::cli::run_sha_futures`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // First, while the program is single-threaded: every process pool worker is
    // forked from this fork server, never from a process with other threads.
    process_pool::start_fork_server();
    // Bad arguments: the error and the usage on stderr, exit status 2.
    let args = crypto::cli::parse_sha_args(std::env::args_os()).unwrap_or_else(|e| {
        demo_cli::exit_with_usage(
            e,
            &mut <crypto::cli::ShaArgs as clap::CommandFactory>::command(),
        )
    });
    match crypto::cli::run_sha_futures(&args, &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sha-futures: error: {e}");
            ExitCode::FAILURE
        }
    }
}
