//! Helpers for tests, examples and benchmarks: a private `redis-server` on a
//! free loopback port, a fault-injecting [`Proxy`] in front of it, and the
//! Python Celery virtualenv made by `scripts/test`.
//!
//! Missing tools are errors that say what to install, never silent skips.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::resp::Connection;
use crate::url::RedisUrl;

pub mod proxy;
pub mod tasks;
pub use proxy::{Proxy, ProxyStats};

const INSTALL_HINT: &str = "run the tests through `scripts/test cargo test --workspace` \
    (it installs Debian's redis-server and the pinned Celery virtualenv), \
    or `apt-get install -y redis-server` yourself";

/// A `redis-server` child process, stopped (and reaped) on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    persistent: bool,
    /// Further `redis-server` arguments (`--requirepass`, `--bind`, ...).
    extra: Vec<String>,
}

/// The `redis-server` binary: `$REDIS_SERVER`, then `PATH`, then Debian's path.
pub fn redis_server_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("redis-server not found: {INSTALL_HINT}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

impl RedisServer {
    /// Starts a server with persistence off on a free port.
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// Starts a server; `persistent` turns the append-only file on (in a
    /// private directory), so data survives [`restart`](Self::restart).
    pub fn start_with(persistent: bool) -> RedisServer {
        Self::start_full(persistent, &[])
    }

    /// Starts a server with persistence off and further `redis-server`
    /// arguments, such as `["--requirepass", "s3cret"]` or
    /// `["--bind", "127.0.0.1", "::1"]` (replacing the default bind); each
    /// word its own argument, as on redis-server's command line.
    pub fn start_args(extra: &[&str]) -> RedisServer {
        Self::start_full(false, extra)
    }

    fn start_full(persistent: bool, extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!(
            "celery-test-redis-{}-{}",
            std::process::id(),
            crate::id::new_task_id()
        ));
        std::fs::create_dir_all(&dir).expect("create the redis test directory");
        let mut last_err = String::new();
        for _ in 0..5 {
            let mut s = RedisServer {
                child: None,
                port: free_port(),
                dir: dir.clone(),
                persistent,
                extra: extra.iter().map(|a| a.to_string()).collect(),
            };
            match s.spawn() {
                Ok(()) => return s,
                Err(e) => last_err = e,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("could not start redis-server: {last_err}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let bin = redis_server_binary().unwrap_or_else(|e| panic!("{e}"));
        let aof = if self.persistent { "yes" } else { "no" };
        let mut cmd = Command::new(&bin);
        // SAFETY: the closure runs in the child between fork and exec and
        // only calls prctl(2), which is async-signal-safe and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                // Dies with the thread that started it: a killed test run
                // leaves no redis-server behind.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", aof, "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e} ({INSTALL_HINT})", bin.display()))?;
        self.child = Some(child);
        // Hang guard only: a loaded machine may take a while.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = Connection::open(&self.redis_url()) {
                // PONG, not `-LOADING`: a persistent server answers that
                // while it reads its append-only file, and refuses the
                // clients' commands until it is done.
                // NOAUTH: a server started with a password is up too.
                match c.command(&[b"PING"]) {
                    Ok(crate::resp::Reply::Status(s)) if s == "PONG" => return Ok(()),
                    Ok(crate::resp::Reply::Error(e)) if e.starts_with("NOAUTH") => return Ok(()),
                    _ => {}
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("redis-server exited at start: {status}"));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err("redis-server did not answer PING within 30 s".to_string());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    fn redis_url(&self) -> RedisUrl {
        RedisUrl::parse(&self.url(0)).expect("own URL")
    }

    /// A plain connection to db 0, for assertions.
    pub fn connect(&self) -> Connection {
        Connection::open(&self.redis_url()).expect("connect to the test redis-server")
    }

    /// Kills the server (SIGKILL: no goodbye to clients) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server, waits until the port refuses connections, and
    /// starts it again on the same port (data kept only if persistent).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn()
            .unwrap_or_else(|e| panic!("restart redis-server: {e}"));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Python virtualenv with Celery: `$CELERY_VENV`, else `target/celery-venv`
/// in the workspace. Panics, saying how to make it, if it is missing.
pub fn celery_venv() -> PathBuf {
    let venv = std::env::var_os("CELERY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/celery-venv"));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no Python Celery virtualenv at {}: run the tests through \
         `scripts/test cargo test --workspace`, which creates it with the pinned \
         versions of scripts/celery-requirements.txt",
        venv.display()
    );
    venv
}

/// The directory of the Python test app (`tests/python`: `tasks.py` and the
/// scripts the tests and examples run with the virtualenv's Python).
pub fn python_app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// The command that starts the test app's Python `celery worker` on
/// `broker`, with the virtualenv at `venv`: the solo pool, and no gossip,
/// mingle or heartbeat (they only slow a one-machine peer down). The caller
/// adds what differs (`-Q`, stdio) and spawns it.
pub fn python_worker_command(venv: &Path, broker: &str, loglevel: &str) -> Command {
    let mut command = Command::new(venv.join("bin/celery"));
    command
        .args(["-A", "tasks", "worker", "--pool", "solo"])
        .args(["--loglevel", loglevel])
        .args([
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ])
        .current_dir(python_app_dir())
        .env("CELERY_TEST_BROKER", broker);
    command
}

/// Waits until `cond` holds, polling every 20 ms, panicking with `what`
/// after `limit` (a hang guard: pass a generous limit).
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
