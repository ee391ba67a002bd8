//! `demo-executor-submit`: see `executor_map::submit_demo`. `--unit-ms 100` runs it ten
//! times faster than the book's one-second unit.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = executor_map::cli::parse_or_exit("demo-executor-submit");
    let config = args.config();
    let display = executor_map::Display::stdout().with_millis(config.unit.subsec_nanos() != 0);
    match executor_map::submit_demo(&config, &display) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-executor-submit: error: {e}");
            ExitCode::FAILURE
        }
    }
}
