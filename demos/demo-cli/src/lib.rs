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
//!
//! [`TraceArgs`] is the other option every demo shares: `--trace FILE`
//! records the schedule of the demo's executors and writes it as Chrome
//! trace-event JSON or an SVG timeline ([`trace`]).

pub mod trace;

pub use trace::{Trace, TraceArgs, TraceError};

/// clap's closing hint, after which the usage must not come.
const HINT: &str = "For more information, try '--help'.";

/// Reports a command-line error and exits: the text of [`usage_error`] on
/// stderr, with status 2. `--help` and `--version` print to stdout and exit 0.
pub fn exit_with_usage(error: clap::Error, command: &mut clap::Command) -> ! {
    if !error.use_stderr() {
        error.exit();
    }
    eprint!("{}", usage_error(&error, command));
    std::process::exit(2);
}

/// The one format of every demo's usage error, whatever kind clap reports:
///
/// ```text
/// error: <what is wrong>
///
/// Usage: <program> [OPTIONS] ...
///
/// For more information, try '--help'.
/// ```
///
/// clap writes this itself for most errors; for a value that does not parse
/// it leaves the usage out, and this puts it back in the same place.
pub fn usage_error(error: &clap::Error, command: &mut clap::Command) -> String {
    let message = error.render().to_string();
    if message.contains("Usage:") {
        return message;
    }
    let usage = command.render_usage().to_string();
    match message.find(HINT) {
        Some(at) => format!("{}{usage}\n\n{}", &message[..at], &message[at..]),
        None => format!("{}\n\n{usage}\n\n{HINT}\n", message.trim_end()),
    }
}

/// Checks that `stderr` is a usage error of `program` in the one format of
/// [`usage_error`]: what each demo's integration tests assert of its binaries.
pub fn check_usage_error(program: &str, stderr: &str) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what} in the usage error of {program}:\n{stderr}"));
    if !stderr.starts_with("error: ") {
        return fail("no leading `error: `");
    }
    let Some(usage) = stderr.find(&format!("\n\nUsage: {program}")) else {
        return fail("no usage line");
    };
    let Some(hint) = stderr.find(&format!("\n\n{HINT}\n")) else {
        return fail("no closing hint");
    };
    if usage > hint {
        return fail("the usage after the hint");
    }
    if stderr.matches("Usage:").count() != 1 {
        return fail("not exactly one usage line");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    #[command(name = "demo")]
    struct Args {
        #[arg(long)]
        workers: u16,
    }

    /// The three parts, in order, whatever the kind of error.
    fn assert_one_format(text: &str) {
        check_usage_error("demo", text).unwrap();
        assert!(
            text.contains("\n\nUsage: demo --workers <WORKERS>\n\n"),
            "{text}"
        );
        assert!(text.ends_with(&format!("{HINT}\n")), "{text:?}");
    }

    #[test]
    fn the_checker_refuses_other_formats() {
        let usage_last = "error: bad\n\nFor more information, try '--help'.\n\nUsage: demo\n";
        assert!(check_usage_error("demo", usage_last).is_err());
        assert!(check_usage_error("demo", "demo: bad setting\n").is_err());
        assert!(
            check_usage_error("other", &format!("error: x\n\nUsage: demo\n\n{HINT}\n")).is_err()
        );
        assert!(check_usage_error("demo", &format!("error: x\n\nUsage: demo\n\n{HINT}\n")).is_ok());
    }

    #[test]
    fn every_kind_of_error_reads_the_same() {
        for argv in [
            &["demo", "--workers", "many"][..], // a value that does not parse: clap omits the usage
            &["demo", "--bogus"],               // an unknown option: clap adds it
            &["demo"],                          // a missing option
        ] {
            let err = Args::try_parse_from(argv).unwrap_err();
            assert_one_format(&usage_error(&err, &mut Args::command()));
        }
        // Our own checks, made with `Command::error`, too.
        let mut cmd = Args::command();
        let err = cmd.error(clap::error::ErrorKind::ArgumentConflict, "no good");
        let text = usage_error(&err, &mut Args::command());
        assert!(text.starts_with("error: no good\n"), "{text}");
        assert_one_format(&text);
    }
}
