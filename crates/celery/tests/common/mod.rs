//! Shared by the Celery integration tests: workers as child processes.
#![allow(dead_code, unused_imports)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub use celery::testing::{celery_venv, wait_until, RedisServer};
use celery::{Worker, WorkerConfig};

/// Hang guard for anything a test waits on.
pub const LONG: std::time::Duration = std::time::Duration::from_secs(120);

/// A child process killed and reaped on drop.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Our test worker (`celery-worker` plus the test tasks of
/// `celery::testing::tasks`) on `broker` with extra arguments.
pub fn rust_worker(broker: &str, args: &[&str]) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_celery-test-worker"))
        .args(["--broker", broker])
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("start celery-test-worker");
    ChildGuard(child)
}

/// A worker in its own process group, so a test can play the terminal's
/// Ctrl-C; its stderr is collected (unless the environment closed it).
pub struct Spawned {
    pub child: ChildGuard,
    stderr: Arc<Mutex<String>>,
    /// Set by the reader thread at the end of the worker's stderr.
    stderr_done: Arc<std::sync::atomic::AtomicBool>,
}

impl Spawned {
    /// Starts `celery-worker` on `url` with `args`; `setup` runs in the
    /// child between fork and exec (only async-signal-safe calls).
    pub fn start(url: &str, setup: fn(), args: &[&str]) -> Spawned {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_celery-test-worker"));
        cmd.args(["--broker", url])
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: each `setup` makes only async-signal-safe calls (see them).
        unsafe {
            cmd.pre_exec(move || {
                setup();
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start celery-test-worker");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        let stderr_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = stderr_done.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[worker] {line}");
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Spawned {
            child: ChildGuard(child),
            stderr,
            stderr_done,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `signal` to the worker's whole process group, as a terminal does.
    pub fn signal_group(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the process group our child leads (it is not
        // reaped yet, so the group exists).
        assert_eq!(unsafe { libc::kill(-self.pid(), signal) }, 0);
    }

    /// Waits (hang guard only) for the worker to exit, and for the reader
    /// thread to have copied all it wrote (its last words may still be in
    /// the pipe when the exit is seen); its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut status = None;
        wait_until(LONG, "the worker to exit", || {
            status = self.child.0.try_wait().unwrap();
            status.is_some()
        });
        wait_until(LONG, "the end of the worker's stderr", || {
            self.stderr_done.load(std::sync::atomic::Ordering::SeqCst)
        });
        status.unwrap().code()
    }
}

/// A worker on threads of this process, with its counters in reach;
/// stopped and joined on drop.
pub struct ThreadWorker {
    pub worker: Arc<Worker>,
    handle: Option<JoinHandle<()>>,
}

impl ThreadWorker {
    /// A worker with the test tasks on `queues`.
    pub fn start(broker: &str, queues: &[&str], concurrency: usize) -> ThreadWorker {
        Self::with_registry(
            broker,
            queues,
            concurrency,
            celery::testing::tasks::registry(),
        )
    }

    pub fn with_registry(
        broker: &str,
        queues: &[&str],
        concurrency: usize,
        registry: celery::Registry,
    ) -> ThreadWorker {
        let mut config = WorkerConfig::new(broker);
        config.queues = queues.iter().map(|q| q.to_string()).collect();
        config.concurrency = concurrency;
        Self::with_config(config, registry)
    }

    pub fn with_config(config: WorkerConfig, registry: celery::Registry) -> ThreadWorker {
        let worker = Arc::new(Worker::new(config, registry));
        let w = worker.clone();
        let handle = std::thread::spawn(move || w.run().expect("worker runs"));
        ThreadWorker {
            worker,
            handle: Some(handle),
        }
    }

    pub fn stats(&self) -> celery::WorkerStats {
        self.worker.stats()
    }
}

impl Drop for ThreadWorker {
    fn drop(&mut self) {
        self.worker.stop_handle().stop();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A private Redis server and our test worker on it (`args`, such as
/// `["-c", "1", "--pool", "threads"]`), with the server's db-0 URL: the
/// set-up most worker tests begin with. Bind all three (`let (_redis, url,
/// _w)`): the worker stops first, then the server.
pub fn redis_with_worker(args: &[&str]) -> (RedisServer, String, ChildGuard) {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let worker = rust_worker(&url, args);
    (redis, url, worker)
}

/// [`redis_with_worker`] with the worker's stderr collected ([`Spawned`]).
pub fn redis_with_spawned(args: &[&str]) -> (RedisServer, String, Spawned) {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let worker = Spawned::start(&url, || {}, args);
    (redis, url, worker)
}

/// A fresh path for a gate file (see `celery::testing::tasks::wait_for`).
pub fn gate_path() -> PathBuf {
    std::env::temp_dir().join(format!("celery-gate-{}", celery::id::new_task_id()))
}

/// `LLEN key`.
pub fn llen(redis: &RedisServer, key: &str) -> i64 {
    match redis.connect().command(&[b"LLEN", key.as_bytes()]).unwrap() {
        celery::resp::Reply::Integer(n) => n,
        other => panic!("LLEN {key}: {other:?}"),
    }
}

/// `HLEN unacked`: the messages fetched and not acked.
pub fn hlen_unacked(redis: &RedisServer) -> i64 {
    match redis.connect().command(&[b"HLEN", b"unacked"]).unwrap() {
        celery::resp::Reply::Integer(n) => n,
        other => panic!("HLEN unacked: {other:?}"),
    }
}

/// Task `id`'s stored result record, if there is one.
pub fn result_of(redis: &RedisServer, id: &str) -> Option<serde_json::Value> {
    let key = format!("celery-task-meta-{id}");
    redis
        .connect()
        .command(&[b"GET", key.as_bytes()])
        .unwrap()
        .into_bytes()
        .map(|raw| serde_json::from_slice(&raw).unwrap())
}

/// Runs `code` in Python and returns the line that starts with `prefix`
/// (without it), panicking with the whole output if there is none.
pub fn python_line(url: &str, code: &str, args: &[&str], prefix: &str) -> String {
    let out = python_with_args(url, code, args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
        .to_string()
}

fn python_dir() -> PathBuf {
    celery::testing::python_app_dir()
}

/// A Python `celery worker` (solo pool) on `broker`, consuming `queue`.
pub fn python_worker(broker: &str, queue: &str) -> ChildGuard {
    let child = celery::testing::python_worker_command(&celery_venv(), broker, "WARNING")
        .args(["-Q", queue])
        .stdin(Stdio::null())
        .spawn()
        .expect("start the Python celery worker");
    ChildGuard(child)
}

/// Runs a Python snippet with the test app importable; returns its output.
pub fn python(broker: &str, code: &str) -> Output {
    python_with_args(broker, code, &[])
}

/// [`python`] with `sys.argv[1:]` set to `args`.
pub fn python_with_args(broker: &str, code: &str, args: &[&str]) -> Output {
    let venv = celery_venv();
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", code])
        .args(args)
        .current_dir(python_dir())
        .env("CELERY_TEST_BROKER", broker)
        .output()
        .expect("run python");
    if !out.status.success() {
        panic!(
            "python failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Threads of this process whose name starts with `prefix` (from /proc).
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim().starts_with(prefix))
                })
                .count()
        })
        .unwrap_or(0)
}

/// The id of a thread of process `pid` named `name` (its `comm`, at most
/// 15 bytes), if there is one.
pub fn thread_named(pid: u32, name: &str) -> Option<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(Result::ok)
        .find(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .and_then(|t| t.file_name().to_str()?.parse().ok())
}

/// The scheduling state of thread `tid` of process `pid` (`R`, `S`, `D`...),
/// `?` if it is gone.
pub fn thread_state(pid: u32, tid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap_or_default();
    // The state follows the parenthesised name, which may hold spaces.
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .unwrap_or('?')
}

/// The system call thread `tid` of this process is in, if it is in one
/// (`/proc/self/task/<tid>/syscall`; `None` while it runs).
pub fn current_syscall(tid: i32) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How many times thread `tid` of process `pid` has blocked and been woken
/// (the kernel's `voluntary_ctxt_switches`): a thread that sleeps until an
/// event keeps this still while no event comes; one that wakes on a timer
/// to look does not.
pub fn wakeups(pid: u32, tid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/task/{tid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches in /proc/<pid>/task/<tid>/status")
}

/// How many times the server ran `command` (from `INFO commandstats`).
pub fn server_calls(c: &mut celery::resp::Connection, command: &str) -> u64 {
    let info = c.command(&[b"INFO", b"commandstats"]).unwrap();
    let text = String::from_utf8(info.into_bytes().unwrap()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .map_or(0, |v| v.split(',').next().unwrap().parse().unwrap())
}

/// Asserts that thread `tid` of process `pid` does not wake while an idle
/// worker's fetch waits on the server three times (`BLMOVE`, a second
/// each: Redis's timeout, the only clock here).
pub fn assert_asleep_across_three_fetch_waits(
    c: &mut celery::resp::Connection,
    pid: u32,
    tid: i32,
    what: &str,
) {
    let before = wakeups(pid, tid);
    let start = server_calls(c, "blmove");
    wait_until(LONG, "three fetch waits", || {
        server_calls(c, "blmove") >= start + 3
    });
    let woke = wakeups(pid, tid) - before;
    assert_eq!(
        woke, 0,
        "{what} woke {woke} times while the worker idled through three 1 s fetch waits: \
         it wakes on a timer to look instead of sleeping until an event"
    );
}

/// An executor on `url` that knows the test tasks
/// (`celery::testing::tasks`).
pub fn test_executor(url: &str) -> celery::CeleryExecutor {
    celery::CeleryExecutor::builder(url)
        .registry(celery::testing::tasks::registry())
        .connect()
        .expect("connect")
}

/// A Python worker on `url`'s `celery` queue, an executor, and the sum
/// `tasks.add(20, 22)` that worker computed (42, checked).
pub fn python_worker_and_a_sum(
    url: &str,
) -> (ChildGuard, celery::CeleryExecutor, future::Future<i64>) {
    let py = python_worker(url, "celery");
    let ex = celery::CeleryExecutor::connect(url).unwrap();
    let f = ex.submit_named::<_, i64>("tasks.add", (20, 22)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 42);
    (py, ex, f)
}

/// A reply held in a proxy (see [`hold_reply`]).
pub struct HeldReply {
    held: std::sync::mpsc::Receiver<()>,
    go: std::sync::mpsc::Sender<()>,
}

/// Holds the first reply through `link` that `when` picks: the whole link
/// waits (in the proxy's matcher) until [`HeldReply::release`], then that
/// reply is cut (`cut`, its connection closed) or let through.
pub fn hold_reply(
    link: &celery::testing::Proxy,
    when: impl Fn(&[u8]) -> bool + Send + 'static,
    cut: bool,
) -> HeldReply {
    use std::sync::atomic::AtomicBool;
    let (held_tx, held) = std::sync::mpsc::channel::<()>();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    let (held_tx, go_rx) = (Mutex::new(held_tx), Mutex::new(go_rx));
    let once = AtomicBool::new(false);
    link.drop_mid_reply_if(
        move |reply| {
            if !when(reply) || once.swap(true, Ordering::SeqCst) {
                return false;
            }
            let _ = held_tx.lock().unwrap().send(());
            let _ = go_rx.lock().unwrap().recv_timeout(LONG);
            cut
        },
        0,
    );
    HeldReply { held, go }
}

impl HeldReply {
    /// Waits until the reply is held; `what` says what that means.
    pub fn wait(&self, what: &str) {
        self.held
            .recv_timeout(LONG)
            .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
    }

    /// Lets the link go on.
    pub fn release(&self) {
        let _ = self.go.send(());
    }
}
