//! The command line shared by `demo-executor-map` and `demo-executor-submit`.

use std::time::Duration;

use clap::Parser;

use crate::demos::DemoConfig;

/// Options of both demos; the defaults are the book's.
#[derive(Parser, Debug, Clone)]
#[command(about = "The book's loiter demo: 3 workers, 5 tasks that sleep 0..4 time units")]
pub struct DemoArgs {
    /// Length of one time unit in milliseconds (the book's is one second).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub unit_ms: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: u64,
    /// Number of tasks, loiter(0) .. loiter(tasks - 1).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub tasks: u64,
    /// `--trace FILE`: the pool's schedule, written when the demo ends.
    #[command(flatten)]
    pub trace: demo_cli::TraceArgs,
}

impl DemoArgs {
    /// The demo configuration these options ask for.
    pub fn config(&self) -> DemoConfig {
        DemoConfig {
            workers: self.workers as usize,
            tasks: self.tasks,
            unit: Duration::from_millis(self.unit_ms),
        }
    }
}

/// What each demo shows, for the first line of its `--help`.
pub fn about(name: &str) -> &'static str {
    match name {
        "demo-executor-map" => {
            "The book's loiter demo with Executor.map: 3 workers, 5 tasks that sleep 0..4 time \
             units; the results come back in input order while the tasks finish out of order \
             (demo_executor_map.py)."
        }
        "demo-executor-submit" => {
            "The loiter demo with submit: the same 5 tasks, printing each future's done() flag \
             before and after waiting, then the results (the book's attic demo_executor_submit.py)."
        }
        _ => "The book's loiter demo: 3 workers, 5 tasks that sleep 0..4 time units.",
    }
}

/// Parses the arguments of the program named `name`. Help and version exit 0;
/// an error prints the usage line too and exits 2 (clap omits the usage from
/// some value errors, so we add it).
pub fn parse_or_exit(name: &'static str) -> DemoArgs {
    let mut command = <DemoArgs as clap::CommandFactory>::command()
        .name(name)
        .about(about(name));
    let matches = command
        .clone()
        .try_get_matches()
        .unwrap_or_else(|e| demo_cli::exit_with_usage(e, &mut command.clone()));
    <DemoArgs as clap::FromArgMatches>::from_arg_matches(&matches)
        .unwrap_or_else(|e| demo_cli::exit_with_usage(e, &mut command))
}
