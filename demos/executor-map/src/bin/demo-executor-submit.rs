//! `demo-executor-submit`: see `executor_map::submit_demo`. `--unit-ms 100` runs it ten
//! times faster than the book's one-second unit.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = executor_map::cli::parse_or_exit("demo-executor-submit");
    let config = args.config();
    let display = executor_map::Display::stdout().with_millis(config.unit.subsec_nanos() != 0);
    let trace = match args.trace.start() {
        Ok(trace) => trace,
        Err(e) => {
            eprintln!("demo-executor-submit: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let recorder = trace.as_ref().map(demo_cli::Trace::recorder);
    if let Err(e) = executor_map::submit_demo_traced(&config, &display, recorder) {
        eprintln!("demo-executor-submit: error: {e}");
        return ExitCode::FAILURE;
    }
    match trace.map(demo_cli::Trace::finish) {
        Some(Err(e)) => {
            eprintln!("demo-executor-submit: error: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
