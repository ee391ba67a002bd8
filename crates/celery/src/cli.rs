//! The command line of a worker binary: `celery-worker` is
//! `worker_main("celery-worker", tasks::builtin())`, and a program with its
//! own tasks is the same one line with its own registry:
//!
//! ```no_run
//! fn square(x: u64) -> u64 { x * x }
//!
//! fn main() -> std::process::ExitCode {
//!     let mut tasks = celery::tasks::builtin();
//!     tasks.register("my.square", square);
//!     celery::worker_main("my-worker", tasks)
//! }
//! ```

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::registry::Registry;
use crate::worker::MAX_CONCURRENCY;
use crate::{PoolKind, RedisUrl, Worker, WorkerConfig};

const USAGE: &str = "\
usage: NAME [--broker URL] [--backend URL] [-Q QUEUE[,QUEUE...]] [-c N]
                     [--visibility-timeout SECS] [--restore-interval SECS] [--lease SECS]
                     [--result-expires SECS] [--pool processes|threads]
                     [-n NODENAME] [--track-started] [--list]

Consumes Celery task messages (protocol 2, JSON) from Redis and runs the
registered tasks in worker processes (or threads), acking late.

  --broker URL                 redis://host:port/db   (default redis://127.0.0.1:6379/0)
  --backend URL                result backend          (default: the broker)
  -Q, --queues LIST            queues to consume       (default celery)
  -c, --concurrency N          tasks at once, 1 to 1024 (default: cores)
  --visibility-timeout SECS    restore unacked messages older than this (default 3600)
  --restore-interval SECS      how often to look for them               (default 100)
  --lease SECS                 lease period: a running task's lease is renewed every
                               third of it and it is never restored while it runs; a
                               dead worker's tasks come back after it lapses (default 30,
                               at least 1)
  --result-expires SECS        result lifetime                          (default 86400)
  --pool processes|threads     where tasks run          (default processes)
  -n, --hostname NODENAME      the name remote control uses (default celery@%h;
                               %h is this machine's host name)
  --track-started              store STARTED when a task starts (Celery's
                               task_track_started; default off, as Celery's)
  --list                       print the task names and exit
Ctrl-C (SIGINT) or SIGTERM: warm shutdown: stop fetching, finish the running
tasks, store their results, return the tasks held for their eta to their
queues, exit 0. A second one: cold shutdown: the running tasks are not acked,
their messages (and the held ones) go back to their queues for another
worker, exit 130. A third one exits at once (130): the messages not yet
returned go back once their lease lapses. A signal ignored when the
worker starts stays ignored.";

/// Stop requests (SIGINT or SIGTERM) received so far.
static STOPS: AtomicUsize = AtomicUsize::new(0);

/// Posted once per stop request; the signal thread sleeps in `sem_wait` on
/// it, so it wakes only when a signal came (a POSIX semaphore: `sem_post`
/// is async-signal-safe, and it needs no descriptor, which a process
/// started with 0-2 closed would hand out as its stdio).
static REQUESTS: Semaphore = Semaphore(UnsafeCell::new(MaybeUninit::uninit()));

struct Semaphore(UnsafeCell<MaybeUninit<libc::sem_t>>);

// SAFETY: the semaphore is only used through sem_post and sem_wait, which
// are made for concurrent use, after sem_init ran (once, before the handler
// is installed and the thread started).
unsafe impl Sync for Semaphore {}

impl Semaphore {
    fn get(&self) -> *mut libc::sem_t {
        self.0.get().cast()
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic add, sem_post and `_exit`: all async-signal-safe.
    let stops = STOPS.fetch_add(1, Ordering::SeqCst) + 1;
    if stops >= 3 {
        // The cold shutdown runs on the watcher thread and may be stuck (a
        // broker that does not answer): the third request ends the worker
        // here and now. The running tasks' messages it had not returned yet
        // stay in `unacked`; another worker restores them once their lease
        // lapses.
        // SAFETY: `_exit` is async-signal-safe and runs no Rust code.
        unsafe { libc::_exit(COLD_EXIT) };
    }
    // SAFETY: REQUESTS was initialised by `catch_stop_signals` before this
    // handler was installed; sem_post is async-signal-safe. It leaves errno
    // as it was unless it fails (an overflow, past billions of signals).
    unsafe { libc::sem_post(REQUESTS.get()) };
}

/// The exit code of a cold shutdown: 128 + SIGINT, as a shell reports a
/// program Ctrl-C ended.
const COLD_EXIT: i32 = 130;

/// Takes SIGINT and SIGTERM as stop requests, except one the worker was
/// started with ignored (`nohup`-style or a background job): that choice is
/// kept, as CPython keeps it. Both are unblocked (a parent may have blocked
/// them): call this before any thread starts, so every thread inherits it.
fn catch_stop_signals() {
    static INIT: std::sync::Once = std::sync::Once::new();
    // SAFETY: REQUESTS is static (its address is stable) and initialised
    // once, before any handler that posts it is installed.
    INIT.call_once(|| unsafe {
        libc::sem_init(REQUESTS.get(), 0, 0);
    });
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `old` is a valid sigaction to write to; a null new action
        // only reads the current disposition.
        let ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut old);
            old.sa_sigaction == libc::SIG_IGN
        };
        if ignored {
            continue;
        }
        // SAFETY: `on_signal` only adds to an atomic, posts a semaphore
        // (initialised above) and may `_exit`: all async-signal-safe.
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
    // SAFETY: `set` is initialised by sigemptyset before use;
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Watches the stop requests: the first sets the worker's stop flag (warm
/// shutdown), the second returns the running tasks' messages to their
/// queues and exits (cold shutdown).
fn watch_stop_signals(name: String, worker: &Worker) {
    let stop = worker.stop_handle();
    let cold = worker.cold_shutdown_handle();
    let watcher = std::thread::Builder::new().name("celery-signals".to_string());
    let spawned = watcher.spawn(move || {
        let mut seen = 0;
        loop {
            wait_for_a_request();
            let stops = STOPS.load(Ordering::SeqCst);
            if stops >= 2 {
                match cold.now() {
                    Ok(n) => eprintln!(
                        "{name}: cold shutdown: {n} running task(s) returned to their queue"
                    ),
                    Err(e) => eprintln!(
                        "{name}: cold shutdown: could not return the running tasks to their \
                         queue ({e}); another worker restores them once their lease lapses"
                    ),
                }
                std::process::exit(COLD_EXIT);
            }
            if stops == 1 && seen == 0 {
                seen = 1;
                eprintln!(
                    "{name}: warm shutdown: finishing the running tasks \
                     (Ctrl-C again for a cold shutdown: they go back to their queue)"
                );
                stop.stop();
            }
        }
    });
    spawned.expect("spawn the signal thread");
}

/// Sleeps until the handler posts a stop request.
fn wait_for_a_request() {
    // SAFETY: REQUESTS was initialised by `catch_stop_signals`, which
    // `worker_main` calls before starting this thread.
    while unsafe { libc::sem_wait(REQUESTS.get()) } != 0 {
        // EINTR: another signal's handler ran; wait again. Nothing else can
        // fail on an initialised semaphore.
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "sem_wait: {e}");
    }
}

fn usage_error(name: &str, msg: &str) -> ExitCode {
    eprintln!("{name}: error: {msg}\n\n{}", USAGE.replace("NAME", name));
    ExitCode::from(2)
}

/// The seconds flags accept 1 ms to 100 years: below that a restore loop
/// would spin, above it `Instant` arithmetic and Redis's `SETEX` overflow.
const MIN_SECS: f64 = 0.001;
const MAX_SECS: f64 = 100.0 * 365.0 * 86_400.0;

fn secs(v: Option<String>, flag: &str) -> Result<Duration, String> {
    let v = v.ok_or(format!("{flag} needs a value"))?;
    let s: f64 = v
        .parse()
        .map_err(|_| format!("{flag}: {v:?} is not a number"))?;
    if !(MIN_SECS..=MAX_SECS).contains(&s) {
        // Also catches NaN, which no range contains.
        return Err(format!(
            "{flag}: {v} is out of range (from {MIN_SECS} to {MAX_SECS} seconds, 100 years)"
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Runs a worker with `registry`'s tasks from the command line (`--help`
/// for the flags): the whole `main` of a worker binary. Call it first thing
/// in `main`, while the program is single-threaded: it installs the registry
/// for worker processes and starts the process pool's fork server. Exits 2
/// with the usage on bad arguments.
pub fn worker_main(name: &str, registry: Registry) -> ExitCode {
    // First, while single-threaded: worker processes are forked from the fork
    // server, and inherit the task registry installed before it starts.
    // The signal set-up too, so that every thread inherits the mask.
    catch_stop_signals();
    crate::install_process_registry(registry.clone());
    process_pool::start_fork_server();
    let mut config = WorkerConfig::new("redis://127.0.0.1:6379/0");
    config.pool = PoolKind::Processes;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let r: Result<(), String> = (|| {
            match a.as_str() {
                "-h" | "--help" => {
                    println!("{}", USAGE.replace("NAME", name));
                    std::process::exit(0);
                }
                "--list" => {
                    for n in registry.names() {
                        println!("{n}");
                    }
                    std::process::exit(0);
                }
                "--broker" => config.broker = args.next().ok_or("--broker needs a URL")?,
                "--backend" => config.backend = Some(args.next().ok_or("--backend needs a URL")?),
                "-Q" | "--queues" => {
                    let v = args.next().ok_or("-Q needs a queue name")?;
                    config.queues = v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect();
                    if config.queues.is_empty() {
                        return Err("-Q: no queue named".to_string());
                    }
                }
                "-c" | "--concurrency" => {
                    let v = args.next().ok_or("-c needs a number")?;
                    config.concurrency = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_CONCURRENCY).contains(n))
                        .ok_or(format!(
                            "-c: {v:?} is not a number from 1 to {MAX_CONCURRENCY}"
                        ))?;
                }
                "--visibility-timeout" => config.visibility_timeout = secs(args.next(), &a)?,
                "--restore-interval" => config.restore_interval = secs(args.next(), &a)?,
                "--lease" => {
                    config.lease = secs(args.next(), &a)?;
                    crate::lease::check_period(config.lease)
                        .map_err(|e| format!("--lease: {e}"))?;
                }
                "--result-expires" => config.result_expires = secs(args.next(), &a)?,
                "--track-started" => config.track_started = true,
                "--pool" => {
                    config.pool = match args.next().as_deref() {
                        Some("processes") => PoolKind::Processes,
                        Some("threads") => PoolKind::Threads,
                        other => {
                            return Err(format!("--pool: {other:?} is not processes or threads"))
                        }
                    }
                }
                "-n" | "--hostname" => {
                    let v = args.next().ok_or("-n needs a node name")?;
                    if v.is_empty() {
                        return Err("-n: the node name is empty".to_string());
                    }
                    config.hostname = v.replace("%h", &crate::message::hostname());
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
            Ok(())
        })();
        if let Err(e) = r {
            return usage_error(name, &e);
        }
    }
    // Shown parsed: its `Display` masks the password (`redis://:**@host`).
    let broker = match RedisUrl::parse(&config.broker) {
        Ok(url) => url,
        Err(e) => return usage_error(name, &e.to_string()),
    };
    let worker = Worker::new(config.clone(), registry);
    watch_stop_signals(name.to_string(), &worker);
    eprintln!(
        "{name} {} ready as {}: queues {:?} on {}, concurrency {} ({:?})",
        std::process::id(),
        config.hostname,
        config.queues,
        broker,
        config.concurrency,
        config.pool
    );
    match worker.run() {
        Ok(()) => {
            let s = worker.stats();
            eprintln!(
                "{name}: stopped ({} ran, {} revoked, {} restored)",
                s.ran, s.revoked, s.restored
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
