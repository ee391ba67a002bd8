//! The command lines (clap), with the book's options and messages.
//!
//! * [`Flags2Args`]: the flags2 family, `flags2_common.py`'s options plus
//!   `--url`, `--dest` and `--timeout`.
//! * [`FlagsArgs`]: the first-generation programs, which in the book have no
//!   options at all; here just where to download from and to.
//! * [`ServerArgs`]: the command line of `flag-server`.
//!
//! Bad arguments print an error and the usage and exit with status 2 (clap's
//! convention, and the 2e's "command line usage error").

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::codes;
use crate::embedded::ServerLabel;
use crate::save::DEFAULT_DEST;

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be >= 1".into()),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|e| format!("not a number of seconds: {e}"))?;
    if !(0.0..=3600.0).contains(&v) {
        return Err("must be between 0 and 3600 seconds".into());
    }
    Ok(Duration::from_secs_f64(v))
}

fn positive_seconds(s: &str) -> Result<Duration, String> {
    let d = seconds(s)?;
    if d.is_zero() {
        return Err("must be more than 0 seconds".into());
    }
    Ok(d)
}

fn probability(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("not a number: {e}"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err("must be between 0 and 1".into());
    }
    Ok(v)
}

fn label(s: &str) -> Result<ServerLabel, String> {
    s.parse::<ServerLabel>()
        .map_err(|_| "must be one of DELAY, ERROR, LOCAL, REMOTE".to_string())
}

pub use demo_cli::exit_with_usage;

/// What each downloader is, for the first line of its `--help`: the programs
/// share their options, not their purpose.
pub fn about(bin: &str) -> &'static str {
    match bin {
        "flags" => {
            "Download the flags of the 20 most populous countries one after the other: \
             the sequential baseline (the book's flags.py)."
        }
        "flags-threadpool" => {
            "Download the flags of the 20 most populous countries on a thread pool with map \
             (the book's flags_threadpool.py)."
        }
        "flags-threadpool-ac" => {
            "Download five flags on a thread pool with submit and as_completed, printing each \
             future as it completes (the book's flags_threadpool_ac.py)."
        }
        "flags-procpool" => {
            "Download the flags of the 20 most populous countries on a process pool with map \
             (the book's flags_processpool.py)."
        }
        "flags2-sequential" => {
            "Download flags for country codes one request at a time, with a progress bar and \
             error counts (the book's flags2_sequential.py). Default: top 20 countries by \
             population."
        }
        "flags2-threadpool" => {
            "Download flags for country codes with concurrent requests on a thread pool, \
             counting outcomes with as_completed (the book's flags2_threadpool.py). Default: top \
             20 countries by population."
        }
        "flags2-procpool" => {
            "Download flags for country codes with concurrent requests on a process pool, \
             counting outcomes with as_completed. Default: top 20 countries by population."
        }
        _ => "Download flags for country codes. Default: top 20 countries by population.",
    }
}

/// The flags2 command line.
#[derive(Debug, Clone, Parser)]
#[command(about = "Download flags for country codes. Default: top 20 countries by population.")]
pub struct Flags2Args {
    /// country code or 1st letter (eg. B for BA...BZ)
    #[arg(value_name = "CC")]
    pub cc: Vec<String>,
    /// get all available flags (AD to ZW)
    #[arg(short, long)]
    pub all: bool,
    /// get flags for every possible code (AA...ZZ)
    #[arg(short, long)]
    pub every: bool,
    /// limit to N first codes
    #[arg(short, long, value_name = "N", value_parser = at_least_one)]
    pub limit: Option<usize>,
    /// maximum concurrent requests
    #[arg(short = 'm', long = "max_req", visible_alias = "max-req", value_name = "CONCURRENT", value_parser = at_least_one)]
    pub max_req: Option<usize>,
    /// Server to hit; one of DELAY, ERROR, LOCAL, REMOTE (default=LOCAL). LOCAL, DELAY and
    /// ERROR start a built-in server on 127.0.0.1 (DELAY: every response 0.5 s late; ERROR: 25%
    /// of responses fail, half are 0.5 s late); REMOTE is the book's public site
    #[arg(short, long, value_name = "LABEL", default_value = "LOCAL", value_parser = label, hide_default_value = true)]
    pub server: ServerLabel,
    /// output detailed progress info
    #[arg(short, long)]
    pub verbose: bool,
    /// download from this base URL instead (no built-in server; -s is then ignored)
    #[arg(long, value_name = "BASE")]
    pub url: Option<String>,
    /// download directory, created if missing
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DEST)]
    pub dest: PathBuf,
    /// give up on a request after this many seconds
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = positive_seconds)]
    pub timeout: Duration,
    /// `--trace FILE`: the schedule of the downloads, written at the end.
    #[command(flatten)]
    pub trace: demo_cli::TraceArgs,
}

/// A flags2 command line, checked: the codes to fetch and the concurrency.
#[derive(Debug, Clone)]
pub struct Flags2Plan {
    /// The parsed arguments.
    pub args: Flags2Args,
    /// The codes, sorted (the book's `expand_cc_args`).
    pub codes: Vec<String>,
    /// `min(-m, max_concur, len(codes))`, at least 1.
    pub concurrency: usize,
}

impl Flags2Args {
    /// The clap command, named `bin` and with its `-m` default in the help.
    pub fn command_for(bin: &'static str, default_concur: usize) -> clap::Command {
        Flags2Args::command()
            .name(bin)
            .bin_name(bin)
            .about(about(bin))
            .mut_arg("max_req", |a| {
                a.help(format!(
                    "maximum concurrent requests (default={default_concur})"
                ))
            })
    }

    /// Parses `argv` into a plan, or returns clap's error (exit status 2).
    pub fn plan_from(
        bin: &'static str,
        default_concur: usize,
        max_concur: usize,
        argv: impl IntoIterator<Item = std::ffi::OsString>,
    ) -> Result<Flags2Plan, clap::Error> {
        let mut cmd = Flags2Args::command_for(bin, default_concur);
        let matches = cmd.try_get_matches_from_mut(argv)?;
        let args = Flags2Args::from_arg_matches(&matches)?;
        let limit = args.limit.unwrap_or(usize::MAX);
        let codes = codes::expand_cc_args(args.every, args.all, &args.cc, limit)
            .map_err(|e| cmd.error(ErrorKind::InvalidValue, format!("*** Usage error: {e}")))?;
        let wanted = args.max_req.unwrap_or(default_concur);
        let concurrency = wanted.min(max_concur).min(codes.len()).max(1);
        Ok(Flags2Plan {
            args,
            codes,
            concurrency,
        })
    }

    /// Parses the process's arguments; on error prints it with the usage and
    /// exits (status 2; 0 for `--help`).
    pub fn plan(bin: &'static str, default_concur: usize, max_concur: usize) -> Flags2Plan {
        Flags2Args::plan_from(bin, default_concur, max_concur, std::env::args_os()).unwrap_or_else(
            |e| exit_with_usage(e, &mut Flags2Args::command_for(bin, default_concur)),
        )
    }
}

/// The first-generation programs' command line.
#[derive(Debug, Clone, Parser)]
#[command(about = "Download the flags of the 20 most populous countries.")]
pub struct FlagsArgs {
    /// Server to hit; one of DELAY, ERROR, LOCAL, REMOTE (default=LOCAL). LOCAL, DELAY and
    /// ERROR start a built-in server on 127.0.0.1 (DELAY: every response 0.5 s late; ERROR: 25%
    /// of responses fail, half are 0.5 s late); REMOTE is the book's public site
    #[arg(short, long, value_name = "LABEL", default_value = "LOCAL", value_parser = label, hide_default_value = true)]
    pub server: ServerLabel,
    /// download from this base URL instead (no built-in server; -s is then ignored)
    #[arg(long, value_name = "BASE")]
    pub url: Option<String>,
    /// download directory, created if missing
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DEST)]
    pub dest: PathBuf,
    /// `--trace FILE`: the schedule of the downloads, written at the end.
    #[command(flatten)]
    pub trace: demo_cli::TraceArgs,
}

impl FlagsArgs {
    /// Parses the process's arguments for program `bin` (exit 2 on error).
    pub fn parse_for(bin: &'static str) -> FlagsArgs {
        let mut cmd = FlagsArgs::command()
            .name(bin)
            .bin_name(bin)
            .about(about(bin));
        let parsed = cmd
            .try_get_matches_from_mut(std::env::args_os())
            .and_then(|m| FlagsArgs::from_arg_matches(&m));
        parsed.unwrap_or_else(|e| exit_with_usage(e, &mut cmd))
    }
}

impl ServerArgs {
    /// Parses `argv`, with the checks that take two options together.
    pub fn parse_from_args(
        argv: impl IntoIterator<Item = std::ffi::OsString>,
    ) -> Result<ServerArgs, clap::Error> {
        let mut cmd = ServerArgs::command();
        let matches = cmd.try_get_matches_from_mut(argv)?;
        let args = ServerArgs::from_arg_matches(&matches)?;
        if let Some(max) = args.delay_max {
            if max < args.delay {
                return Err(cmd.error(
                    ErrorKind::ArgumentConflict,
                    format!(
                        "--delay-max {} is shorter than --delay {}: give a range from the shorter to the longer",
                        max.as_secs_f64(),
                        args.delay.as_secs_f64()
                    ),
                ));
            }
        }
        Ok(args)
    }

    /// Parses the process's arguments (exit 2 with usage on error).
    pub fn parse_or_exit() -> ServerArgs {
        ServerArgs::parse_from_args(std::env::args_os())
            .unwrap_or_else(|e| exit_with_usage(e, &mut ServerArgs::command()))
    }
}

/// `flag-server`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "flag-server",
    about = "Serve /flags/<cc>/<cc>.gif for the 194 countries, optionally slow and faulty."
)]
pub struct ServerArgs {
    /// port to listen on (0: any free port, printed at start)
    #[arg(short, long, default_value = "8001")]
    pub port: u16,
    /// address to bind (beware: anything but a loopback address exposes the server)
    #[arg(short, long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// delay every response by SECONDS
    #[arg(short, long, value_name = "SECONDS", default_value = "0", value_parser = seconds)]
    pub delay: Duration,
    /// draw each delay at random between --delay and SECONDS
    #[arg(long = "delay-max", value_name = "SECONDS", value_parser = seconds)]
    pub delay_max: Option<Duration>,
    /// share of responses that are delayed (the book's ERROR proxy: 0.5)
    #[arg(long = "delay-rate", value_name = "P", default_value = "1", value_parser = probability)]
    pub delay_rate: f64,
    /// share of responses that are "418 I'm a Teapot" (the book's ERROR: 0.25)
    #[arg(short, long = "error-rate", value_name = "P", default_value = "0", value_parser = probability)]
    pub error_rate: f64,
    /// serve DIR/flags/<cc>/<cc>.gif (the book's flags.zip, unzipped) instead of generated flags
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// most connections served at once (more get 503)
    #[arg(long = "max-connections", value_name = "N", default_value = "1024", value_parser = at_least_one)]
    pub max_connections: usize,
    /// log one line per response on stderr
    #[arg(long)]
    pub log: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(argv: &[&str]) -> Result<Flags2Plan, clap::Error> {
        let argv = std::iter::once("flags2-test")
            .chain(argv.iter().copied())
            .map(Into::into);
        Flags2Args::plan_from("flags2-test", 30, 1000, argv)
    }

    #[test]
    fn defaults_are_pop20_local_30() {
        let p = plan(&[]).unwrap();
        assert_eq!(p.codes.len(), 20);
        assert_eq!(p.concurrency, 20, "capped by the number of codes");
        assert_eq!(p.args.server, ServerLabel::Local);
        assert_eq!(p.args.dest, PathBuf::from("downloaded"));
    }

    #[test]
    fn options_combine_like_the_book() {
        let p = plan(&["-s", "delay", "a", "b", "c"]).unwrap();
        assert_eq!(
            (p.codes.len(), p.concurrency, p.args.server),
            (78, 30, ServerLabel::Delay)
        );
        let p = plan(&["-al", "100", "-m", "5000"]).unwrap();
        assert_eq!((p.codes.len(), p.concurrency), (100, 100));
        let p = plan(&["-e", "--max_req", "2000"]).unwrap();
        assert_eq!((p.codes.len(), p.concurrency), (676, 676));
        let p = plan(&["-e", "--max-req", "3", "-v"]).unwrap();
        assert_eq!(p.concurrency, 3);
        assert!(p.args.verbose);
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for argv in [
            &["-l", "0"][..],
            &["-m", "0"],
            &["-m", "x"],
            &["-s", "FAST"],
            &["abc"],
            &["--timeout", "0"],
            &["--bogus"],
        ] {
            let err = plan(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}: {err}");
        }
        let err = plan(&["1"]).unwrap_err();
        assert!(err
            .to_string()
            .contains("*** Usage error: each CC argument must be A to Z or AA to ZZ"));
    }
}
