//! # `soak`: both pools under a seeded mix of everything a caller may do
//!
//! Round after round, for a given number of seconds, the soak builds a
//! fresh pool (thread pool and process pool in turn) and has a few threads
//! throw a random mix at it: submits, cancels, panicking tasks, done-callbacks
//! that submit to the same pool and wait, `Future::map` chains, `map` with and
//! without a window (read fully, partly, or dropped at once), and on the
//! process pool also tasks that crash their worker, tasks that outlive the
//! per-task timeout and `max_tasks_per_child`. Each round ends in a random
//! way: a waited shutdown with or without cancelling, a shutdown that does
//! not wait, `terminate_workers`, `kill_workers`, or a plain drop, sometimes
//! while the submitters are still at work.
//!
//! After every round it checks:
//! * every future the round made ended exactly once (its done-callback ran
//!   once), and as its task and the round's ending allow;
//! * `stats()` after a waited shutdown adds up to the tasks accepted;
//! * no zombie, no worker process left, no descriptor and no thread more
//!   than before the round.
//!
//! A watchdog ends the run with a message if a round takes longer than
//! `--round-timeout`: a hang is a failure too. The choices come from
//! `--seed`, so a failing round can be replayed with `--seed S --round R`
//! (the thread interleaving is the machine's, as in any soak).
//!
//! ```text
//! cargo run --release -p soak -- --seconds 60            # what CI runs
//! cargo run --release -p soak -- --seconds 3600 --seed 7  # an hour
//! cargo run --release -p soak -- --seconds 60 --env ctrl-c  # Ctrl-C all along
//! ```
//!
//! `--env` runs it in a process environment nobody expected (see `env.rs`):
//! SIGHUP ignored with hangups sent all along, SIGINT or SIGCHLD ignored, a SIGINT
//! handler with Ctrl-Cs sent all along, every signal blocked, standard
//! descriptors closed, a low `RLIMIT_NOFILE`.

mod env;
mod ledger;
mod process;
mod procs;
mod rng;
mod round;
mod threads;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{CommandFactory, Parser, ValueEnum};

use crate::process::Baseline;
use crate::rng::Rng;

#[derive(Parser, Debug)]
#[command(
    name = "soak",
    about = "Runs both pools through a seeded random mix of submits, cancels, callbacks, panics, maps, worker kills, timeouts and shutdowns, checking every round's invariants"
)]
struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// The seed of the random choices (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Replay only this round of the seed's run.
    #[arg(long)]
    round: Option<u64>,
    /// Which pools to soak.
    #[arg(long, value_enum, default_value_t = Pools::Both)]
    pools: Pools,
    /// A round that takes longer than this many seconds is reported as a hang.
    #[arg(long, default_value_t = 300)]
    round_timeout: u64,
    /// Print one line per round.
    #[arg(long, short)]
    verbose: bool,
    /// The process environment to run in (set up before the fork server
    /// starts; see soak/src/env.rs).
    #[arg(long, value_enum, default_value_t = env::Env::Plain)]
    env: env::Env,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Pools {
    Threads,
    Procs,
    Both,
}

/// What one round did and found.
pub struct Outcome {
    pub futures: u64,
    pub map_items: u64,
    pub refused: u64,
    pub problems: Vec<String>,
}

fn main() {
    // Quiet the panics the soak makes on purpose (before the fork server, so
    // its workers inherit the hook); any other panic still prints.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let intended = future::panic_message(info.payload()).starts_with("soak: intended");
        if !intended {
            default_hook(info);
        }
    }));
    // Parsing starts no thread: the program is still single-threaded.
    let args =
        Args::try_parse().unwrap_or_else(|e| demo_cli::exit_with_usage(e, &mut Args::command()));
    let set_up = env::set_up(args.env).unwrap_or_else(|e| {
        eprintln!("soak: could not set up --env {}: {e}", args.env.name());
        std::process::exit(1)
    });
    // First thing after that, while the program is single-threaded.
    process_pool::start_fork_server();
    let signals_sent = set_up.after_fork_server();

    if !(args.seconds.is_finite() && args.seconds >= 0.0) {
        let error = Args::command().error(
            clap::error::ErrorKind::ValueValidation,
            format!(
                "--seconds must be a number of seconds >= 0, not {}",
                args.seconds
            ),
        );
        demo_cli::exit_with_usage(error, &mut Args::command());
    }
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    std::process::exit(run(&args, seed, signals_sent));
}

fn run(args: &Args, seed: u64, signals_sent: &AtomicU64) -> i32 {
    println!(
        "soak: seed {seed}, {} s, pools {:?}, env {}",
        args.seconds,
        args.pools,
        args.env.name()
    );
    let watchdog = watchdog(Duration::from_secs(args.round_timeout), seed);
    let baseline = Baseline::now();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.seconds);
    let (mut rounds, mut futures, mut map_items, mut refused) = ([0u64; 2], 0, 0, 0);
    let mut next_round = args.round.unwrap_or(0);
    loop {
        let round = next_round;
        next_round += 1;
        let procs = match args.pools {
            Pools::Threads => false,
            Pools::Procs => true,
            Pools::Both => round % 2 == 1,
        };
        let mut rng = Rng::for_round(seed, round);
        let _ = watchdog.send(round);
        let outcome = if procs {
            procs::round(&mut rng)
        } else {
            threads::round(&mut rng)
        };
        let mut problems = outcome.problems;
        problems.extend(baseline.check(Duration::from_secs(30)));
        rounds[procs as usize] += 1;
        futures += outcome.futures;
        map_items += outcome.map_items;
        refused += outcome.refused;
        let pool = if procs { "process pool" } else { "thread pool" };
        if args.verbose {
            println!(
                "round {round} ({pool}): {} futures, {} map items, {} refused after shutdown",
                outcome.futures, outcome.map_items, outcome.refused
            );
        }
        if !problems.is_empty() {
            eprintln!("soak: round {round} ({pool}) of seed {seed} FAILED:");
            for p in problems.iter().take(10) {
                eprintln!("  - {p}");
            }
            if problems.len() > 10 {
                eprintln!("  ... and {} more", problems.len() - 10);
            }
            eprintln!(
                "replay it with: soak --seed {seed} --round {round} --seconds 0 --env {}",
                args.env.name()
            );
            return 1;
        }
        if args.round.is_some() || Instant::now() >= end {
            break;
        }
    }
    println!(
        "soak: {} rounds ({} thread pool, {} process pool) in {:.1} s, seed {seed}: \
         {futures} futures each ended exactly once, {map_items} map items in order, \
         {refused} submits refused after shutdown; no zombie, no leaked descriptor or thread",
        rounds[0] + rounds[1],
        rounds[0],
        rounds[1],
        start.elapsed().as_secs_f64()
    );
    // Relaxed: the signalling thread's own counter, read once for the report.
    if let Some(line) = env::report(args.env, signals_sent.load(Ordering::Relaxed)) {
        println!("soak: --env {}: {line}", args.env.name());
    }
    0
}

/// A thread that ends the process if a round does not finish in time: the
/// main thread sends each round's number as it starts it.
fn watchdog(limit: Duration, seed: u64) -> mpsc::Sender<u64> {
    let (tx, rx) = mpsc::channel::<u64>();
    std::thread::Builder::new()
        .name("soak-watchdog".into())
        .spawn(move || {
            let mut current = None;
            loop {
                match rx.recv_timeout(limit) {
                    Ok(round) => current = Some(round),
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        eprintln!(
                            "soak: round {current:?} of seed {seed} did not finish within {limit:?}: a hang"
                        );
                        std::process::exit(1);
                    }
                }
            }
        })
        .expect("the watchdog thread starts");
    tx
}
