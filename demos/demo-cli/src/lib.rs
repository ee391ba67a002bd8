//! # `demo-cli`: one way for every demo to refuse a bad command line
//!
//! The demos parse their arguments with clap. On an error, clap prints its
//! message and exits with status 2, but for some errors (a value that does
//! not parse, for one) its message leaves out the usage line. The brief for
//! the demos asks for "a usage message and status 2 on bad arguments", so
//! every demo goes through [`exit_with_usage`], which adds the usage when
//! clap left it out. `--help` and `--version` are not errors: they print to
//! stdout and exit 0, as clap does.
//!
//! ```no_run
//! use clap::{CommandFactory, Parser};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[arg(long)]
//!     workers: u16,
//! }
//!
//! let args = Args::try_parse()
//!     .unwrap_or_else(|e| demo_cli::exit_with_usage(e, &mut Args::command()));
//! ```
//!
//! Each demo's integration tests run its binaries with bad arguments and
//! check the status and the usage line.

/// Reports a command-line error and exits: clap's message, then the usage
/// if the message lacks it, on stderr, with status 2. `--help` and
/// `--version` print to stdout and exit 0.
pub fn exit_with_usage(error: clap::Error, command: &mut clap::Command) -> ! {
    if !error.use_stderr() {
        error.exit();
    }
    let message = error.render().to_string();
    eprint!("{message}");
    if !message.contains("Usage:") {
        eprintln!("\n{}", command.render_usage());
    }
    std::process::exit(2);
}
