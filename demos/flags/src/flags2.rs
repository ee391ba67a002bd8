//! What the flags2 programs share (the book's `flags2_common.py`): parse the
//! command line, start the site, print the initial report, time
//! `download_many`, print the final report.
//!
//! Each program supplies its own `download_many` and its concurrency
//! defaults, exactly as each book script passes its own to
//! `flags2_common.main`. `download_many` returns a [`Counter`]; every code
//! must be counted exactly once (the 1e's `assert`), unless Ctrl-C stopped
//! the run, in which case the codes never tried are reported apart.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use future::trace::Recorder;

use crate::cli::{Flags2Args, Flags2Plan};
use crate::client::{Client, ClientConfig};
use crate::download::Downloader;
use crate::embedded::Site;
use crate::progress::Progress;
use crate::report::{final_report, initial_report, Counter};
use crate::{interrupt, save};

/// A flags2 program's identity and limits (`DEFAULT_CONCUR_REQ`, `MAX_CONCUR_REQ`).
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// The binary's name, for usage and messages.
    pub name: &'static str,
    /// `-m`'s default.
    pub default_concur: usize,
    /// The most concurrency allowed, whatever `-m` says.
    pub max_concur: usize,
}

/// What a `download_many` gets.
#[derive(Debug)]
pub struct Job<'a> {
    /// The sorted codes to fetch.
    pub codes: &'a [String],
    /// The shared downloader.
    pub downloader: Arc<Downloader>,
    /// The number of requests to run at once.
    pub concurrency: usize,
    /// The progress bar (hidden with `-v` or without a terminal).
    pub progress: &'a Progress,
    /// `--timeout`, for workers that build their own client.
    pub timeout: std::time::Duration,
    /// `--trace`: the recorder to build the executor with (or to record
    /// each download with, when there is none).
    pub trace: Option<Recorder>,
}

/// Runs a flags2 program; returns its exit status.
pub fn main(program: Program, download_many: impl FnOnce(Job<'_>) -> Counter) -> ExitCode {
    let plan = Flags2Args::plan(program.name, program.default_concur, program.max_concur);
    run(program, plan, download_many)
}

/// [`main`] after parsing.
pub fn run(
    program: Program,
    plan: Flags2Plan,
    download_many: impl FnOnce(Job<'_>) -> Counter,
) -> ExitCode {
    let Flags2Plan {
        args,
        codes,
        concurrency,
    } = plan;
    let trace = match args.trace.start() {
        Ok(trace) => trace,
        Err(e) => {
            eprintln!("{}: {e}", program.name);
            return ExitCode::FAILURE;
        }
    };
    // Early, so that a Ctrl-C at any point ends the run through the summary.
    interrupt::install();
    let site = match Site::open(args.server, args.url.as_deref()) {
        Ok(site) => site,
        Err(e) => {
            eprintln!("{}: {e}", program.name);
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = save::ensure_dest(&args.dest) {
        eprintln!(
            "{}: cannot create {}: {e}",
            program.name,
            args.dest.display()
        );
        return ExitCode::FAILURE;
    }
    let downloader = Arc::new(Downloader {
        client: Client::new(&ClientConfig::with_timeout(args.timeout)),
        base_url: site.base_url.clone(),
        dest: args.dest.clone(),
        verbose: args.verbose,
    });
    print!(
        "{}",
        initial_report(site.banner_name(), &site.base_url, &codes, concurrency)
    );
    let _ = std::io::stdout().flush();
    let progress = Progress::new(codes.len(), !args.verbose);
    let t0 = Instant::now();
    let counter = download_many(Job {
        codes: &codes,
        downloader,
        concurrency,
        progress: &progress,
        timeout: args.timeout,
        trace: trace.as_ref().map(demo_cli::Trace::recorder),
    });
    let elapsed = t0.elapsed();
    progress.finish();
    if interrupt::interrupted() {
        // A worker process killed by Ctrl-C may have died between write and rename.
        save::sweep_temporaries(&args.dest);
    }
    print!("{}", final_report(&counter, elapsed));
    let _ = std::io::stdout().flush();
    drop(site); // stops an embedded server
    if let Some(Err(e)) = trace.map(demo_cli::Trace::finish) {
        eprintln!("{}: {e}", program.name);
        return ExitCode::FAILURE;
    }
    finish(program, &counter, codes.len())
}

fn finish(program: Program, counter: &Counter, wanted: usize) -> ExitCode {
    if interrupted_or(counter.total() == wanted) {
        if interrupt::interrupted() {
            eprintln!(
                "{}: interrupted: {} of {} codes were not tried",
                program.name,
                wanted - counter.total().min(wanted),
                wanted
            );
            return ExitCode::from(130);
        }
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "{}: some downloads are unaccounted for ({} of {})",
        program.name,
        counter.total(),
        wanted
    );
    ExitCode::FAILURE
}

fn interrupted_or(ok: bool) -> bool {
    ok || interrupt::interrupted()
}
