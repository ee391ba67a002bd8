//! `demo-executor-map`: see `executor_map::map_demo`. `--unit-ms 100` runs it ten
//! times faster than the book's one-second unit.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = executor_map::cli::parse_or_exit("demo-executor-map");
    let config = args.config();
    let display = executor_map::Display::stdout().with_millis(config.unit.subsec_nanos() != 0);
    match executor_map::map_demo(&config, &display) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-executor-map: error: {e}");
            ExitCode::FAILURE
        }
    }
}
