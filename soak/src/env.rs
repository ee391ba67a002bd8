//! `--env`: the soak in a process environment nobody expected (the
//! adversary's class 2; the lines of the process pool's
//! `tests/environments.rs` but its last, in which the program dies of its
//! Ctrl-C).
//!
//! The environment is set up first thing in `main`, while the program is
//! single-threaded and before the fork server starts, so the fork server
//! and every worker inherit it as they would from a real program. The two
//! signal lines (`nohup`, `ctrl-c`) also send their signal to the soak's
//! whole process group every few milliseconds for the whole run, as a
//! terminal does on a hangup or a Ctrl-C: the soak first becomes the
//! leader of a group of its own, so the signal reaches the soak, its fork
//! server and its workers, and never the shell or cargo that started it.
//! (A terminal's own Ctrl-C then no longer reaches the soak; `--seconds`
//! bounds the run.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::ValueEnum;

/// The process environment of a soak run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Env {
    /// As started: nothing changed.
    Plain,
    /// SIGHUP ignored (`nohup`), and SIGHUP sent to the process group all along.
    Nohup,
    /// SIGINT ignored (a job started in the background by a script).
    SigintIgnored,
    /// SIGCHLD ignored (the kernel reaps children by itself; some daemons).
    SigchldIgnored,
    /// A SIGINT handler without `SA_RESTART`, and SIGINT (Ctrl-C) sent to the
    /// process group all along: every blocking call may see EINTR.
    CtrlC,
    /// Every signal that can be blocked is blocked.
    BlockedMask,
    /// Standard descriptors 0-2 closed when the fork server starts (1 and 2
    /// given back afterwards, for the soak's report).
    ClosedStdio,
    /// `RLIMIT_NOFILE` lowered to 64 descriptors.
    LowNofile,
}

/// The soft `RLIMIT_NOFILE` of `--env low-nofile`: room for the largest
/// round (two workers of four descriptors each, the pools' doorbells) and
/// not much more.
const LOW_NOFILE: libc::rlim_t = 64;

/// How often the signal lines signal the process group.
const SIGNAL_EVERY: Duration = Duration::from_millis(5);

/// SIGINTs the `ctrl-c` handler has seen.
static SIGINTS: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_sigint(_: libc::c_int) {
    // Relaxed: a lone counter, read only for the final report.
    SIGINTS.fetch_add(1, Ordering::Relaxed);
}

impl Env {
    /// The name `--env` takes.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_string())
    }
}

/// What `set_up` changed that `after_fork_server` must finish.
pub struct SetUp {
    env: Env,
    /// Copies of stdout and stderr while 0-2 are closed.
    saved_stdio: Option<(libc::c_int, libc::c_int)>,
}

/// Changes this (still single-threaded) process as `env` says. Call before
/// the fork server starts.
pub fn set_up(env: Env) -> Result<SetUp, String> {
    let mut saved_stdio = None;
    // SAFETY (every block below): plain changes of this single-threaded
    // process's dispositions, mask, limits, descriptors and process group;
    // the handler only bumps an atomic counter (async-signal-safe).
    match env {
        Env::Plain => {}
        Env::Nohup => unsafe {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        },
        Env::SigintIgnored => unsafe {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
        },
        Env::SigchldIgnored => unsafe {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        },
        Env::CtrlC => unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = count_sigint as *const () as libc::sighandler_t;
            action.sa_flags = 0; // no SA_RESTART: EINTR everywhere
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) != 0 {
                return Err(format!("sigaction: {}", std::io::Error::last_os_error()));
            }
        },
        Env::BlockedMask => unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        },
        Env::ClosedStdio => unsafe {
            let out = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 100);
            let err = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 100);
            if out < 0 || err < 0 {
                return Err("could not keep a copy of stdout and stderr".into());
            }
            for fd in 0..3 {
                libc::close(fd);
            }
            saved_stdio = Some((out, err));
        },
        Env::LowNofile => unsafe {
            let mut limit: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = LOW_NOFILE.min(limit.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
            }
        },
    }
    if signal_of(env).is_some() {
        // SAFETY: makes this process the leader of a new process group.
        if unsafe { libc::setpgid(0, 0) } != 0 {
            return Err(format!("setpgid: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(SetUp { env, saved_stdio })
}

/// The signal a line sends to the process group all along, if any.
fn signal_of(env: Env) -> Option<libc::c_int> {
    match env {
        Env::Nohup => Some(libc::SIGHUP),
        Env::CtrlC => Some(libc::SIGINT),
        _ => None,
    }
}

impl SetUp {
    /// Finishes the set-up once the fork server runs: gives stdout and
    /// stderr back (stdin stays closed), and starts the signalling thread.
    /// Returns a counter of the signals sent.
    pub fn after_fork_server(self) -> &'static AtomicU64 {
        static SENT: AtomicU64 = AtomicU64::new(0);
        if let Some((out, err)) = self.saved_stdio {
            // SAFETY: descriptor moves on descriptors this process owns.
            unsafe {
                libc::dup2(out, 1);
                libc::dup2(err, 2);
                libc::close(out);
                libc::close(err);
            }
        }
        if let Some(signal) = signal_of(self.env) {
            std::thread::Builder::new()
                .name("soak-signaller".into())
                .spawn(move || loop {
                    // SAFETY: kill() of our own process group (set_up made
                    // us its leader): the soak, its fork server, its workers.
                    unsafe { libc::kill(0, signal) };
                    // Relaxed: a lone counter, read only for the report.
                    SENT.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(SIGNAL_EVERY);
                })
                .expect("the signalling thread starts");
        }
        &SENT
    }
}

/// One line for the final report, if the environment sent signals.
pub fn report(env: Env, sent: u64) -> Option<String> {
    let signal = match signal_of(env)? {
        libc::SIGHUP => "SIGHUP",
        _ => "SIGINT",
    };
    let handled = match env {
        // Relaxed: read once, for the report.
        Env::CtrlC => format!(
            ", {} seen by the soak's handler",
            SIGINTS.load(Ordering::Relaxed)
        ),
        _ => String::new(),
    };
    Some(format!(
        "{sent} {signal}s sent to the process group{handled}"
    ))
}
