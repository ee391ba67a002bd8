//! The process environment nobody expected (the environment matrix of
//! docs/process-pool.md, "Signals"): the pool's key cases under
//! every odd environment a program may be started in, one line each.
//!
//! | line | the pool's process, before the fork server starts | then, while two tasks run |
//! |---|---|---|
//! | `plain` | nothing changed (the reference line) | - |
//! | `nohup` | SIGHUP ignored | SIGHUP to the whole process group (a terminal hangup) |
//! | `sigint-ignored` | SIGINT ignored | SIGINT to the whole process group |
//! | `sigchld-ignored` | SIGCHLD ignored (the kernel reaps children by itself) | - |
//! | `ctrl-c-handled` | a SIGINT handler (no `SA_RESTART`) | SIGINT to the whole process group (Ctrl-C) |
//! | `blocked-mask` | every signal that can be blocked is blocked | - |
//! | `closed-stdio` | 0, 1 and 2 closed (stderr given back afterwards, for the report) | - |
//! | `low-nofile` | `RLIMIT_NOFILE` lowered to 24 | - |
//! | `ctrl-c-default` | nothing changed | SIGINT to the whole process group: the program dies of it |
//!
//! In each line but the last, the key cases must all hold: a task round
//! trip; a `SharedBytes` round trip; the two running tasks finish with
//! their results through the signal (the pool's process decides what
//! Ctrl-C means; its workers and fork server ignore SIGINT, and whatever
//! the user ignored stays ignored); a worker SIGKILLed mid-task is reported
//! as `WorkerDied` and replaced; shutdown returns and leaves no zombie, no
//! worker and no descriptor. In `ctrl-c-default` the program must die of
//! the SIGINT and take its fork server and workers with it.
//!
//! Each line runs in a child process of this test (this binary again, with
//! `PP_ENVIRONMENT` naming the line), so each starts from a clean process
//! and changes its environment before its fork server starts. The child is
//! the leader of a process group of its own, so "the whole process group"
//! is the child, its fork server and its workers, never cargo. After each
//! child, the parent checks that nothing of that group is left alive.
//!
//! Its own `main` (`harness = false`): the environment must be set while
//! the process is single-threaded, before anything else runs.

#[path = "common/checks.rs"]
mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use future::{FutureError, TaskError};
use process_pool::{ExitCause, ProcessPoolExecutor, SharedBytes, WorkerDied};

/// Every line of the matrix, in the order they run.
const ENVIRONMENTS: &[Environment] = &[
    Environment::Plain,
    Environment::Nohup,
    Environment::SigintIgnored,
    Environment::SigchldIgnored,
    Environment::CtrlCHandled,
    Environment::BlockedMask,
    Environment::ClosedStdio,
    Environment::LowNofile,
    Environment::CtrlCDefault,
];

/// The hang guard of one child: generous, for a loaded 2-core machine.
const CHILD_GUARD: Duration = Duration::from_secs(180);

/// The soft `RLIMIT_NOFILE` of `low-nofile`: room for the test's own
/// descriptors and two workers' (four each), not much more.
const LOW_NOFILE: libc::rlim_t = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Environment {
    Plain,
    Nohup,
    SigintIgnored,
    SigchldIgnored,
    CtrlCHandled,
    BlockedMask,
    ClosedStdio,
    LowNofile,
    CtrlCDefault,
}

impl Environment {
    fn name(self) -> &'static str {
        match self {
            Environment::Plain => "plain",
            Environment::Nohup => "nohup",
            Environment::SigintIgnored => "sigint-ignored",
            Environment::SigchldIgnored => "sigchld-ignored",
            Environment::CtrlCHandled => "ctrl-c-handled",
            Environment::BlockedMask => "blocked-mask",
            Environment::ClosedStdio => "closed-stdio",
            Environment::LowNofile => "low-nofile",
            Environment::CtrlCDefault => "ctrl-c-default",
        }
    }

    fn from_name(name: &str) -> Option<Environment> {
        ENVIRONMENTS.iter().copied().find(|e| e.name() == name)
    }

    /// The signal sent to the whole process group while tasks run, if any.
    fn delivered(self) -> Option<libc::c_int> {
        match self {
            Environment::Nohup => Some(libc::SIGHUP),
            Environment::SigintIgnored | Environment::CtrlCHandled | Environment::CtrlCDefault => {
                Some(libc::SIGINT)
            }
            _ => None,
        }
    }
}

fn main() {
    match std::env::var("PP_ENVIRONMENT") {
        Ok(name) => {
            let Some(env) = Environment::from_name(&name) else {
                eprintln!("environments: unknown PP_ENVIRONMENT {name:?}");
                std::process::exit(2);
            };
            child(env)
        }
        Err(_) => parent(),
    }
}

/// The lines the command line selects, as libtest would: `--list` lists
/// them, and words that are not options keep the lines whose names contain
/// one of them (`cargo test --test environments -- nohup`).
fn selected() -> Vec<Environment> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let lines: Vec<Environment> = ENVIRONMENTS
        .iter()
        .copied()
        .filter(|e| filters.is_empty() || filters.iter().any(|f| e.name().contains(f.as_str())))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for e in &lines {
            println!("{}: test", e.name());
        }
        std::process::exit(0);
    }
    lines
}

// ---------------------------------------------------------------------------
// The parent: one child per line, then a table.
// ---------------------------------------------------------------------------

fn parent() {
    let lines = selected();
    let mut failed = 0;
    for &env in &lines {
        let verdict = run_line(env);
        match &verdict {
            Ok(()) => println!("environment {:<15} ok", env.name()),
            Err(why) => {
                failed += 1;
                println!("environment {:<15} FAILED: {why}", env.name());
            }
        }
    }
    if failed > 0 {
        println!("environments: {failed} of {} lines failed", lines.len());
        std::process::exit(1);
    }
    println!(
        "environments: every line ok ({} of {} lines selected)",
        lines.len(),
        ENVIRONMENTS.len()
    );
}

/// Runs one line in a child and judges how it ended.
fn run_line(env: Environment) -> Result<(), String> {
    let log = std::env::temp_dir().join(format!(
        "pp-environments-{}-{}.log",
        std::process::id(),
        env.name()
    ));
    let out = std::fs::File::create(&log).map_err(|e| format!("creating {log:?}: {e}"))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env("PP_ENVIRONMENT", env.name())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: a signal "to the whole group" reaches the
        // child, its fork server and its workers, and nothing else.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the child: {e}"))?;
    let group = child.id() as i32;
    let deadline = Instant::now() + CHILD_GUARD;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill() of the child's own process group.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = child.wait();
            return Err(format!(
                "hang: the child did not finish within {CHILD_GUARD:?} (killed); its output:\n{}",
                read_log(&log)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let judged = judge(env, status);
    let left = wait_for_group_to_go(group);
    let output = read_log(&log);
    let _ = std::fs::remove_file(&log);
    judged
        .and(left)
        .map_err(|why| format!("{why}; the child's output:\n{output}"))
}

fn judge(env: Environment, status: ExitStatus) -> Result<(), String> {
    match env {
        Environment::CtrlCDefault if status.signal() == Some(libc::SIGINT) => Ok(()),
        Environment::CtrlCDefault => Err(format!(
            "the program should have died of its Ctrl-C, but ended with {status}"
        )),
        _ if status.success() => Ok(()),
        _ => Err(format!("the child ended with {status}")),
    }
}

/// Waits until no live process (zombies count as gone: they belong to
/// whoever adopted them) is left in process group `group`.
fn wait_for_group_to_go(group: i32) -> Result<(), String> {
    let deadline = Instant::now() + CHILD_GUARD;
    loop {
        let left = live_members(group);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            // SAFETY: kill() of the child's own process group.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            return Err(format!(
                "processes of the child's group still alive after {CHILD_GUARD:?} \
                 (fork server or workers left behind): {left:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of the non-zombie processes in process group `group`.
fn live_members(group: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid pgrp ...": the name may hold spaces.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let state = fields.first().copied().unwrap_or("?");
        let pgrp = fields.get(2).and_then(|s| s.parse::<i32>().ok());
        if pgrp == Some(group) && state != "Z" {
            out.push(pid);
        }
    }
    out
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"))
}

// ---------------------------------------------------------------------------
// The child: set the environment up, start the fork server, run the cases.
// ---------------------------------------------------------------------------

/// SIGINTs the `ctrl-c-handled` handler has seen.
static SIGINTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_sigint(_: libc::c_int) {
    // Relaxed: a lone counter, read after `wait_until` sees it move.
    SIGINTS.fetch_add(1, Ordering::Relaxed);
}

fn child(env: Environment) {
    common::PARENT_PID.get_or_init(std::process::id);
    // Still single-threaded: nothing but `main` has run.
    let saved_stderr = set_up(env);
    process_pool::start_fork_server();
    if let Some(fd) = saved_stderr {
        // Stderr back on 2 for the report (and panics); 0 and 1 stay
        // closed in this process for the whole run.
        // SAFETY: descriptor moves on descriptors this process owns.
        unsafe {
            libc::dup2(fd, 2);
            libc::close(fd);
        }
    }
    key_cases(env);
    eprintln!("environment {}: every key case held", env.name());
}

/// Changes this process as the line says. Returns the saved stderr when
/// the standard descriptors were closed.
fn set_up(env: Environment) -> Option<libc::c_int> {
    // SAFETY (all blocks below): plain changes of this single-threaded
    // process's dispositions, mask, limits and descriptors; the handler
    // only bumps an atomic counter, which is async-signal-safe.
    match env {
        Environment::Plain | Environment::CtrlCDefault => {}
        Environment::Nohup => unsafe {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        },
        Environment::SigintIgnored => unsafe {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
        },
        Environment::SigchldIgnored => unsafe {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        },
        Environment::CtrlCHandled => unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = count_sigint as *const () as libc::sighandler_t;
            // No SA_RESTART: the pool's own system calls see EINTR.
            action.sa_flags = 0;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()),
                0
            );
        },
        Environment::BlockedMask => unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut()),
                0
            );
        },
        Environment::ClosedStdio => unsafe {
            let saved = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 100);
            for fd in 0..3 {
                libc::close(fd);
            }
            return (saved >= 0).then_some(saved);
        },
        Environment::LowNofile => unsafe {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
            limit.rlim_cur = LOW_NOFILE;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        },
    }
    None
}

fn square(x: u64) -> u64 {
    x * x
}

fn reversed(data: SharedBytes) -> SharedBytes {
    let mut bytes = data.to_vec();
    bytes.reverse();
    SharedBytes::from_slice(&bytes).expect("a memfd in the worker")
}

/// Waits until the file `gate` exists (the test creates it), then returns
/// this worker's pid. Only a signal can end it before that.
fn until_gate(gate: String) -> u32 {
    while !Path::new(&gate).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::process::id()
}

/// Writes this worker's pid to the file `paths.0` (whole, by a rename),
/// then waits at the gate `paths.1`.
fn note_pid_then_wait(paths: (String, String)) -> u32 {
    let (pid_file, gate) = paths;
    let partial = format!("{pid_file}.partial");
    std::fs::write(&partial, std::process::id().to_string()).expect("writing the pid file");
    std::fs::rename(&partial, &pid_file).expect("renaming the pid file");
    until_gate(gate)
}

fn gate(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pp-env-gate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn key_cases(env: Environment) {
    let clean = common::clean();
    let pool = ProcessPoolExecutor::new(2).expect("a pool");

    // A task round trip.
    assert_eq!(
        pool.submit(square, 7)
            .unwrap()
            .result_timeout(common::T)
            .unwrap(),
        49
    );

    // A SharedBytes round trip (a sealed memfd each way).
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let back = pool
        .submit(reversed, SharedBytes::from_slice(&data).unwrap())
        .unwrap()
        .result_timeout(common::T)
        .unwrap();
    assert!(
        back.iter().eq(data.iter().rev()),
        "SharedBytes came back wrong"
    );
    drop(back); // its memfd, before the descriptor count is checked

    // Two running tasks, and the line's signal to the whole process group.
    two_gated_tasks(&pool, "signal", || {
        if let Some(signal) = env.delivered() {
            // SAFETY: kill() of our own process group (the parent made us
            // its leader): this process, its fork server and its workers.
            assert_eq!(unsafe { libc::kill(0, signal) }, 0);
            if env == Environment::CtrlCHandled {
                common::wait_until("the program's SIGINT handler to run", || {
                    SIGINTS.load(Ordering::Relaxed) == 1
                });
            }
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.worker_exits.signal, 0, "no worker died: {stats:?}");

    // A worker SIGKILLed mid-task is reported, and replaced.
    let never = gate("never");
    let pid_file = gate("pid");
    let doomed = pool
        .submit(
            note_pid_then_wait,
            (pid_file.display().to_string(), never.display().to_string()),
        )
        .unwrap();
    let mut victim = 0;
    common::wait_until("the doomed task to note its worker's pid", || {
        victim = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        victim > 0
    });
    let _ = std::fs::remove_file(&pid_file);
    let started = pool.stats().workers_started;
    // SAFETY: kill() of a worker of our fork server.
    assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
    match doomed.result_timeout(common::T) {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            let died = e.downcast_ref::<WorkerDied>().expect("WorkerDied");
            assert_eq!(died.cause, ExitCause::Signaled(libc::SIGKILL), "{died}");
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    // Two tasks at once need two workers: the dead one was replaced.
    let ran_in = two_gated_tasks(&pool, "again", || {});
    assert!(
        !ran_in.contains(&victim),
        "{ran_in:?} ran in the dead {victim}"
    );
    assert_eq!(pool.stats().workers_started, started + 1, "one replacement");

    // Shutdown returns, and leaves nothing behind.
    pool.shutdown(true, false);
    drop(pool);
    clean.check();
}

/// Runs two gated tasks at once (so on two workers), calls `meanwhile`
/// while both run, opens the gate and returns the pids they ran in, after
/// checking that those are the pool's two workers.
fn two_gated_tasks(pool: &ProcessPoolExecutor, name: &str, meanwhile: impl FnOnce()) -> Vec<i32> {
    let open = gate(name);
    let running: Vec<_> = (0..2)
        .map(|_| pool.submit(until_gate, open.display().to_string()).unwrap())
        .collect();
    common::wait_until("both gated tasks to be running", || {
        pool.stats().tasks_running == 2
    });
    let workers = sorted(common::workers());
    meanwhile();
    std::fs::write(&open, b"open").unwrap();
    let ran_in: Vec<i32> = running
        .into_iter()
        .map(|f| f.result_timeout(common::T).expect("a gated task's result") as i32)
        .collect();
    let _ = std::fs::remove_file(&open);
    assert_eq!(
        sorted(ran_in.clone()),
        workers,
        "the tasks ran in the pool's two workers"
    );
    ran_in
}

fn sorted(mut v: Vec<i32>) -> Vec<i32> {
    v.sort_unstable();
    v
}
